"""Loading a song's stems as mixes: one target group, the background, the full mix.

Every consumer of RawStems-layout audio (degradation builders, separator training, the
index) goes through here, so stems are summed, padded and resampled the same way everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.audio import load_audio
from ..core.config import load_json
from ..core.errors import StageError
from .taxonomy import Song, Stem


def is_stand_in(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` is the embedded stand-in: its ``dataset.json`` says ``stand_in``.

    Builders copy the flag into every example's ``meta["embedded"]`` so evaluation and the
    report can label results from the stand-in wherever they appear.
    """
    try:
        return bool(load_json(Path(root) / "dataset.json", "dataset description").get("stand_in"))
    except (OSError, StageError, AttributeError):
        return False


def load_stem(root: str | os.PathLike[str], stem: Stem, sr: int, channels: int = 2) -> np.ndarray:
    """One stem file as ``(channels, T)`` at ``sr``."""
    wave, _ = load_audio(Path(root) / stem.path, sr=sr, channels=channels)
    return wave


def sum_waves(waves: list[np.ndarray], channels: int = 2) -> np.ndarray:
    """Sum ``(C, T_i)`` waves, zero-padding to the longest; an empty list gives ``(C, 0)``."""
    if not waves:
        return np.zeros((channels, 0), np.float32)
    length = max(w.shape[-1] for w in waves)
    out = np.zeros((waves[0].shape[0], length), np.float32)
    for w in waves:
        out[:, : w.shape[-1]] += w
    return out


def pad_to(wave: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad or cut ``(C, T)`` to ``length`` samples."""
    if wave.shape[-1] >= length:
        return wave[:, :length]
    return np.pad(wave, ((0, 0), (0, length - wave.shape[-1])))


def load_target_and_background(
    root: str | os.PathLike[str], song: Song, target: str, sr: int, channels: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """``(target_mix, background_mix)`` of one song, both ``(channels, T)`` of equal length.

    The target is every stem of ``target`` (``"Voc"`` or ``"Gtr_EG"``); the background is
    every other stem of the song except room microphones (seed 004 §4.2).
    """
    chosen = {s.path for s in song.stems_of(target)}
    tgt = sum_waves(
        [load_stem(root, s, sr, channels) for s in song.stems if s.path in chosen], channels
    )
    bg = sum_waves(
        [
            load_stem(root, s, sr, channels)
            for s in song.stems
            if s.path not in chosen and s.group != "MiscRoom"
        ],
        channels,
    )
    length = max(tgt.shape[-1], bg.shape[-1])
    return pad_to(tgt, length), pad_to(bg, length)


def load_groups(
    root: str | os.PathLike[str], song: Song, sr: int, channels: int = 2
) -> dict[str, np.ndarray]:
    """Every first-level group of a song summed: ``{group: (channels, T)}``, equal lengths."""
    groups: dict[str, list[np.ndarray]] = {}
    for stem in song.stems:
        if stem.group != "MiscRoom":
            groups.setdefault(stem.group, []).append(load_stem(root, stem, sr, channels))
    mixes = {g: sum_waves(ws, channels) for g, ws in groups.items()}
    length = max((w.shape[-1] for w in mixes.values()), default=0)
    return {g: pad_to(w, length) for g, w in sorted(mixes.items())}


def load_mix(root: str | os.PathLike[str], song: Song, sr: int, channels: int = 2) -> np.ndarray:
    """The song's full mix (all stems but room microphones) as ``(channels, T)``."""
    groups = load_groups(root, song, sr, channels)
    return sum_waves(list(groups.values()), channels)
