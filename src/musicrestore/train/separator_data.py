"""The separator's training data: the training songs' stems summed into Demucs' sources, held
in an LRU bank, and demucs' augmented random batches (Défossez et al. 2019, §4.2: random
gain, sign and channel flips, remixing sources across songs). Used by
:mod:`musicrestore.train.separator`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..data.stems import load_groups
from ..data.taxonomy import Song, test_songs
from ..separation import SOURCES, target_source

if TYPE_CHECKING:
    from .separator import SeparatorTrainConfig


def partition_songs(
    songs: Sequence[Song], splits: Mapping[str, tuple[list[str], list[str]]]
) -> tuple[list[Song], list[Song]]:
    """``(train, test)``: a song in any target's test list is a test song (never trained on)."""
    held_out = test_songs(dict(splits))
    train = [s for s in songs if s.name not in held_out]
    test = [s for s in songs if s.name in held_out]
    return train, test


def song_sources(
    groups: Mapping[str, np.ndarray], sources: Sequence[str] = SOURCES, channels: int = 2
) -> np.ndarray:
    """Sum a song's first-level groups (``{group: (C, T)}``) into ``(S, C, T)`` sources.

    A source the song lacks is silence; groups that map to no source (MiscRoom) are skipped.
    """
    length = max((w.shape[-1] for w in groups.values()), default=0)
    out = np.zeros((len(sources), channels, length), np.float32)
    for group, wave in groups.items():
        if group == "MiscRoom":
            continue
        out[list(sources).index(target_source(group, sources)), :, : wave.shape[-1]] += wave
    return out


class SongBank:
    """Decoded ``(S, C, T)`` sources of a list of songs, an LRU of ``max_cached`` songs.

    The embedded dataset fits entirely; at RawStems scale (354 h) only a window of songs is
    held and the rest is decoded again on demand.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        songs: Sequence[Song],
        sr: int,
        sources: Sequence[str] = SOURCES,
        max_cached: int = 64,
    ) -> None:
        self.root = Path(root)
        self.songs = list(songs)
        self.sr = sr
        self.sources = list(sources)
        self.max_cached = max(1, max_cached)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.songs)

    def __getitem__(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        groups = load_groups(self.root, self.songs[index], self.sr)
        sources = song_sources(groups, self.sources)  # (S, C, T)
        self._cache[index] = sources
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return sources


def sample_batch(
    bank: SongBank, config: SeparatorTrainConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One training batch: ``mix  # (B, C, T)`` and ``sources  # (B, S, C, T)``, mix = sum.

    Each item is a random segment of one song or, with ``remix_p``, of a different random
    song per source; every source gets a random gain and, with ``flip_p``, a sign flip and a
    channel swap (demucs' Scale / FlipSign / FlipChannels / Remix augmentations).
    """
    seg = int(round(config.segment_s * config.sr))
    n_sources = len(bank.sources)
    out = np.zeros((config.batch, n_sources, 2, seg), np.float32)
    for b in range(config.batch):
        remix = rng.random() < config.remix_p
        song, where = int(rng.integers(len(bank))), float(rng.random())
        for s in range(n_sources):
            if remix:
                song, where = int(rng.integers(len(bank))), float(rng.random())
            wave = bank[song][s]  # (C, T)
            start = int(where * max(0, wave.shape[-1] - seg))
            piece = wave[:, start : start + seg]
            gain = 10.0 ** (rng.uniform(*config.gain_db) / 20.0)
            sign = -1.0 if rng.random() < config.flip_p else 1.0
            if rng.random() < config.flip_p:
                piece = piece[::-1]
            out[b, s, :, : piece.shape[-1]] = sign * gain * piece
    return out.sum(axis=1), out
