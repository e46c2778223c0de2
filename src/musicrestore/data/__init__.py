"""Datasets: where the music comes from and how examples are laid out on disk.

- :mod:`.taxonomy`: RawStems' stem groups, the folder layout and the train/test splits.
- :mod:`.rawstems`: fetching RawStems (Hugging Face, a local copy) or the embedded stand-in.
- :mod:`.embedded`: the offline stand-in, rendered from real compositions with a SoundFont.
- :mod:`.stems`: loading and summing a song's stems.
- :mod:`.dataset`: the ``manifest.jsonl`` of every built dataset (one :class:`Example` a line).
- :mod:`.testsets`: the test sets a stage is given on its command line.
- :mod:`.musicgen`: the T3 MusicGen clips (generated, imported, or simulated through
  :mod:`musicrestore.degrade`'s MusicGen-like chain).

May import: :mod:`musicrestore.core` (and :mod:`.musicgen`, lazily, :mod:`musicrestore.degrade`).
"""
