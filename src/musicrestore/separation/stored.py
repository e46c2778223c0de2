"""Separation computed once: the ``separate`` stage writes the stems of every test mixture,
and the variants that separate the raw mixture (``demucs``, ``demucs_dsp``, ``adaptive``)
read them instead of running the separator again (docs/architecture.md#separation-once).

The stems are stored by the content of what was separated: :func:`stem_key` hashes the
samples, shape and rate of the signal handed to ``Separator.separate``. :class:`StoredSeparator`
answers a call from the store when the key is there and from the real separator otherwise,
so a variant gets the same stems either way (the stage separates each mixture exactly as a
variant would: the whole 10-s clip, on one torch thread). What misses the store separates on
the fly through the same separator: a long file the restore runner cuts into chunks, the
pre-cleaned input of ``demucs_snmf``, a file given to the CLI or the app.

Layout of the stage's output folder::

    <out>/index.json              {"sources": [...], "model": ..., "clips": {"<set>/<id>": key}}
    <out>/<key>/<source>.wav      32-bit float WAV, the separator's output exactly
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import encode_audio, load_audio
from ..core.paths import plain_name
from .errors import SeparationError
from .separator import Separator

INDEX = "index.json"


def stem_key(wave: np.ndarray, sr: int) -> str:
    """The store's key of a signal: a hash of its float32 samples, its shape and its rate."""
    wave = np.ascontiguousarray(wave, dtype=np.float32)
    digest = hashlib.sha256(f"{wave.shape}|{sr}|".encode())
    digest.update(wave.tobytes())
    return digest.hexdigest()[:32]


def separate_task(
    factory: Callable[[], Separator], mixture: str, cache: dict[str, Any]
) -> dict[str, Any]:
    """One mixture, a Dask task: ``{"key", "sources", "files": [(name, float WAV bytes)]}``.

    ``cache`` is shared by the tasks of one worker (:meth:`musicrestore.compute.Engine.share`),
    so the separator is built once per worker."""
    if "separator" not in cache:
        cache["separator"] = factory()
    separator: Separator = cache["separator"]
    wave, sr = load_audio(mixture)
    stems = separator.separate(wave, sr)
    files = [
        (f"{name}.wav", encode_audio(f"{name}.wav", np.asarray(stem, np.float32), sr, "FLOAT"))
        for name, stem in stems.items()
    ]
    return {"key": stem_key(wave, sr), "sources": list(stems), "files": files}


class StoredSeparator:
    """A :class:`~musicrestore.separation.separator.Separator` that reads what the
    ``separate`` stage wrote to ``folder``, and separates what is not there with the
    separator ``fallback()`` builds (once, only when needed)."""

    stored = True  # restore.warm_up: nothing to load or run ahead of the first example

    def __init__(self, folder: str | Path, fallback: Callable[[], Separator]) -> None:
        self.folder = Path(folder)
        index = self.folder / INDEX
        if not index.is_file():
            raise SeparationError(f"{index}: not found (run the separate stage first)")
        meta = json.loads(index.read_text())
        self.sources: list[str] = list(meta["sources"])
        self.samplerate: int = int(meta.get("samplerate", 44100))
        self._fallback = fallback
        self._separator: Separator | None = None
        self.hits = self.misses = 0

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        key = stem_key(wave, sr)
        folder = self.folder / plain_name(key, "stem key")
        if folder.is_dir():
            self.hits += 1
            return {
                s: load_audio(folder / f"{plain_name(s, f'{self.folder}: source')}.wav")[0]
                for s in self.sources
            }
        self.misses += 1
        if self._separator is None:
            self._separator = self._fallback()
        return self._separator.separate(wave, sr)


def stored_factory(
    folder: str | Path, fallback: Callable[[], Separator]
) -> Callable[[], Separator]:
    """A separator factory for :class:`~musicrestore.variants.registry.VariantContext`:
    :class:`StoredSeparator` over ``folder`` with ``fallback`` for what is not stored."""

    def factory() -> Separator:
        return StoredSeparator(folder, fallback)

    return factory
