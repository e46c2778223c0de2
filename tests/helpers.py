"""Small builders shared by tests: a tiny RawStems-layout folder of synthetic stems."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musicrestore.audio import save_audio

#: (group/subgroup path, base frequency in Hz) of the stems every tiny song gets.
TINY_STEMS = {
    "Voc/LV/lead.flac": 440.0,
    "Bass/bass.flac": 55.0,
    "Rhy/DK/kit.flac": 0.0,  # noise bursts
    "Gtr/EG/gtr.flac": 330.0,
}


def make_tiny_rawstems(
    root: Path, n_songs: int = 3, duration_s: float = 2.0, sr: int = 44100, seed: int = 0
) -> Path:
    """Write ``n_songs`` songs of synthetic stems in the RawStems layout under ``root``."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sr)) / sr
    for i in range(n_songs):
        for rel, f0 in TINY_STEMS.items():
            if f0 > 0:
                mono = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.05 * i) * t)
            else:
                env = (np.sin(2 * np.pi * 2 * t) > 0.9).astype(float)
                mono = 0.3 * env * rng.standard_normal(t.size)
            wave = np.stack([mono, 0.8 * mono]).astype(np.float32)
            save_audio(root / f"Artist{i}|Song{i}" / rel, wave, sr)
    return root
