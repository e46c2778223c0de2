"""Small builders shared by tests: a tiny RawStems-layout folder of synthetic stems, known
signals and the measures of their levels, and separator doubles."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from musicrestore.core.audio import save_audio

#: The repository root (stages/ and benchmarks/ are folders of scripts, not packages).
REPO = Path(__file__).resolve().parents[1]


def load_script(relpath: str, name: str | None = None) -> ModuleType:
    """The repository's script ``relpath`` (``stages/train.py``, ``benchmarks/t1_shift.py``)
    imported as a module named ``name`` (default: ``script_<stem>``); its ``__main__`` block
    does not run."""
    path = REPO / relpath
    spec = importlib.util.spec_from_file_location(name or f"script_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


# --------------------------------------------------------------------------------------------
# Known signals and their levels


def tones(
    sr: int, freqs: list[float], duration_s: float = 2.0, channels: int = 2, amp: float = 0.15
) -> np.ndarray:
    """A sum of sines of amplitude ``amp`` each, identical in every channel, ``(channels, T)``."""
    t = np.arange(int(duration_s * sr)) / sr
    mono = sum(amp * np.sin(2 * np.pi * f * t) for f in freqs)
    return np.repeat(np.asarray(mono)[None], channels, axis=0).astype(np.float32)


def white_noise(rng: np.random.Generator, shape: tuple[int, ...], level_dbfs: float) -> np.ndarray:
    """Gaussian white noise whose RMS is ``level_dbfs`` dB re full scale."""
    return (10.0 ** (level_dbfs / 20.0) * rng.standard_normal(shape)).astype(np.float32)


def level_db(x: np.ndarray) -> float:
    """Mean power of ``x`` (every channel), in dB re full scale."""
    return float(10 * np.log10(np.mean(np.asarray(x, np.float64) ** 2)))


def band_level_db(x: np.ndarray, sr: int, lo_hz: float, hi_hz: float) -> float:
    """Mean power of ``x (C, T)`` in the band ``[lo_hz, hi_hz)``, in dB re full scale
    (Parseval: the band's share of :func:`level_db`)."""
    spec = np.fft.rfft(np.asarray(x, np.float64), axis=-1)
    freqs = np.fft.rfftfreq(x.shape[-1], 1.0 / sr)
    band = (freqs >= lo_hz) & (freqs < hi_hz)
    power = 2.0 * np.sum(np.abs(spec[..., band]) ** 2) / (x.shape[-1] ** 2 * x.shape[0])
    return float(10 * np.log10(max(power, 1e-30)))


def tone_level_db(x: np.ndarray, freq_hz: float, sr: int) -> float:
    """Amplitude of the ``freq_hz`` sinusoid in ``x (C, T)`` (mean over channels), in dB."""
    t = np.arange(x.shape[-1]) / sr
    a = 2 * np.mean(x * np.sin(2 * np.pi * freq_hz * t), axis=-1)
    b = 2 * np.mean(x * np.cos(2 * np.pi * freq_hz * t), axis=-1)
    return float(20 * np.log10(max(float(np.mean(np.hypot(a, b))), 1e-15)))


def plant_clicks(
    clean: np.ndarray, n: int, seed: int = 1, max_width: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Add ``n`` decaying impulses of 1 to ``max_width - 1`` samples to every channel;
    returns (degraded, mask of click samples)."""
    rng = np.random.default_rng(seed)
    deg, mask = clean.copy(), np.zeros(clean.shape, bool)
    for p in rng.choice(np.arange(1000, clean.shape[1] - 1000), n, replace=False):
        width = int(rng.integers(1, max_width))
        amp = rng.uniform(0.2, 0.6) * rng.choice([-1.0, 1.0])
        deg[:, p : p + width] += amp * np.exp(-np.arange(width) / 3.0)
        mask[:, p : p + width] = True
    return deg, mask


# --------------------------------------------------------------------------------------------
# Separator doubles (the interface of :class:`musicrestore.separation.Separator`)


class BandSplitSeparator:
    """A test double of :class:`musicrestore.separation.Separator`: FFT band masks.

    bass < 150 Hz, other 150-1000 Hz, vocals 1-4 kHz, drums above; the stems sum exactly to
    the input, at any rate and channel count, so tests know which stem holds what.
    """

    sources = ["drums", "bass", "other", "vocals"]
    samplerate = 44100
    bands = {"bass": (0.0, 150.0), "other": (150.0, 1000.0), "vocals": (1000.0, 4000.0)}

    def __init__(self) -> None:
        self.calls = 0

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        self.calls += 1
        spec = np.fft.rfft(wave.astype(np.float64), axis=-1)
        freqs = np.fft.rfftfreq(wave.shape[-1], 1.0 / sr)
        out, covered = {}, np.zeros(freqs.shape, bool)
        for name, (lo, hi) in self.bands.items():
            band = (freqs >= lo) & (freqs < hi)
            covered |= band
            out[name] = np.fft.irfft(spec * band, n=wave.shape[-1], axis=-1).astype(np.float32)
        out["drums"] = np.fft.irfft(spec * ~covered, n=wave.shape[-1], axis=-1).astype(np.float32)
        return {name: out[name] for name in self.sources}


class FixedStemsSeparator:
    """A separator double that returns the given stems whatever it is asked to separate
    (copies, so a variant cannot alter them), and remembers what it was given."""

    samplerate = 44100

    def __init__(self, stems: dict[str, np.ndarray]) -> None:
        self.stems = stems
        self.sources = list(stems)
        self.inputs: list[tuple[np.ndarray, int]] = []

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        self.inputs.append((wave.copy(), sr))
        return {name: stem.copy() for name, stem in self.stems.items()}


def random_stems(
    shape: tuple[int, int], sources: tuple[str, ...] = ("drums", "bass", "other", "vocals")
) -> dict[str, np.ndarray]:
    """Distinct seeded noise stems, one per source, each at its own level."""
    rng = np.random.default_rng(7)
    return {
        name: (0.05 * (i + 1) * rng.standard_normal(shape)).astype(np.float32)
        for i, name in enumerate(sources)
    }


class TinyConv(torch.nn.Module):
    """Two 1-D convolutions with a residual: (B, C, T) -> (B, C, T); the network the engine
    and checkpoint tests train, save and load."""

    def __init__(self, channels: int = 1, hidden: int = 4, kernel: int = 9) -> None:
        super().__init__()
        self.inp = torch.nn.Conv1d(channels, hidden, kernel, padding=kernel // 2)
        self.out = torch.nn.Conv1d(hidden, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(torch.tanh(self.inp(x)))


def register_architecture(monkeypatch: Any, name: str, cls: type) -> dict[str, type]:
    """``cls`` as ``name`` in ``musicrestore.models.ARCHITECTURES`` for one test."""
    import musicrestore.models as models

    monkeypatch.setitem(models.ARCHITECTURES, name, cls)
    return models.ARCHITECTURES


class MarkerPayload:
    """A hostile pickle: unpickling it creates ``marker`` (``Path.touch``), standing for any
    code a pickle can run. A test saves it where a loader reads and checks that ``marker``
    never appears."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return Path.touch, (self.marker,)


class SystemPayload(MarkerPayload):
    """The same through ``os.system`` (``posix.system`` to the unpickler)."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        import os

        return os.system, (f"touch '{self.marker}'",)
