"""The :class:`Separator` interface and :class:`DemucsSeparator`, which applies a Demucs
model to a signal of any length, rate and channel count (:mod:`demucs.apply` does the
chunking, overlap-add and shift trick; Rouard, Massa & Défossez, ICASSP 2023)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..core.audio import fit_length, resample, set_channels, validate_wave
from .sources import SOURCES


@runtime_checkable
class Separator(Protocol):
    """What every restoration variant separates with."""

    sources: list[str]  # e.g. ["drums", "bass", "other", "vocals"]
    samplerate: int  # the model's rate in Hz (44100 for every Demucs release)

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """``wave  # (C, T) at sr`` -> ``{source: (C, T) at sr}``, same C and T as the input."""
        ...


class DemucsSeparator:
    """A Demucs model (or bag of models) behind :class:`Separator`.

    Args:
        model: a ``demucs`` ``HTDemucs`` / ``HDemucs`` / ``Demucs`` or ``BagOfModels``.
        device: where the network runs (``"cpu"``, ``"cuda"``); the full-length input and
            output stay on the CPU, so memory on the device is bounded by one chunk.
        shifts: random time shifts averaged (demucs' "shift trick", +0.2 dB SDR each up to
            ~10); 0 disables it. The shifts are drawn from ``seed``, so output is repeatable.
        overlap: overlap of consecutive chunks (0.25 as in demucs).
        split: chunk the input (always on for any length; off only for short inputs).
        segment_s: chunk length in seconds; ``None`` uses the model's own training segment.
        seed: seeds the shift offsets of every call.
        progress: tqdm bar over chunks.
        num_workers: CPU threads for chunks in parallel (0: sequential).
    """

    def __init__(
        self,
        model: Any,
        device: str = "cpu",
        shifts: int = 1,
        overlap: float = 0.25,
        split: bool = True,
        segment_s: float | None = None,
        seed: int = 0,
        progress: bool = False,
        num_workers: int = 0,
    ) -> None:
        if shifts < 0:
            raise ValueError(f"shifts must be >= 0, got {shifts}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if segment_s is not None and segment_s > _max_segment_s(model):
            raise ValueError(
                f"segment_s={segment_s} exceeds the model's training segment "
                f"({_max_segment_s(model):.2f} s); a transformer model cannot run longer chunks"
            )
        self.model = model.to(device).eval()  # once, not per call (bags move sub-models)
        self.sources: list[str] = list(model.sources)
        self.samplerate: int = int(model.samplerate)
        self.audio_channels: int = int(model.audio_channels)
        self.device = device
        self.shifts = shifts
        self.overlap = overlap
        self.split = split
        self.segment_s = segment_s
        self.seed = seed
        self.progress = progress
        self.num_workers = num_workers

    def __repr__(self) -> str:
        kind = type(self.model).__name__
        return f"DemucsSeparator({kind}, sources={self.sources}, samplerate={self.samplerate})"

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Split ``wave  # (C, T) at sr`` into ``{source: (C, T) at sr}``.

        Mono is upmixed to the model's channels and the stems are downmixed back; any rate is
        resampled to the model's and back; the output length equals the input length.
        """
        import torch
        from demucs.apply import apply_model

        wave = validate_wave(wave, sr)
        channels_in, length_in = wave.shape
        mix = resample(set_channels(wave, self.audio_channels), sr, self.samplerate)  # (C_m, T_m)
        # demucs' CLI scales the whole track to unit std before chunking, so every chunk sees
        # the track's level rather than its own. Unlike the CLI we do not remove the mean: it
        # would be added back to every stem, and the stems would no longer sum to the mix.
        scale = float(mix.mean(axis=0).std()) + 1e-8
        x = torch.from_numpy(mix / scale)[None]  # (1, C_m, T_m)
        with _seeded_python_random(self.seed), torch.no_grad():
            out = apply_model(
                self.model,
                x,
                shifts=self.shifts,
                split=self.split,
                overlap=self.overlap,
                progress=self.progress,
                device=self.device,
                num_workers=self.num_workers,
                segment=self.segment_s,
            )
        stems = (out[0].cpu().numpy() * scale).astype(np.float32)  # (S, C_m, T_m)
        result = {}
        for name, stem in zip(self.sources, stems, strict=True):
            stem = resample(np.ascontiguousarray(stem), self.samplerate, sr)
            stem = fit_length(stem, length_in)
            result[name] = np.ascontiguousarray(set_channels(stem, channels_in), dtype=np.float32)
        return result


def _max_segment_s(model: Any) -> float:
    """Longest chunk a model accepts: HTDemucs (and bags of them) are bound to their training
    segment; the convolutional Demucs versions take any length."""
    from demucs.apply import BagOfModels
    from demucs.htdemucs import HTDemucs

    if isinstance(model, BagOfModels):
        return float(model.max_allowed_segment)
    if isinstance(model, HTDemucs):
        return float(model.segment)
    return float("inf")


@contextlib.contextmanager
def _seeded_python_random(seed: int) -> Iterator[None]:
    """``demucs.apply`` draws its shift offsets with ``random.randint`` from the module it
    imported as ``random``, and ``demucs.transformer`` draws a positional-embedding shift
    (``random.randrange``, always 0 at inference but it still advances the stream); for the
    call both get a private ``random.Random(seed)`` instead (the same draws as
    ``random.seed(seed)``). Seeding the global generator was not enough: in a Dask worker
    other threads (the event loop, heartbeats) draw from it too, and one draw between the seed
    and demucs' own moved the offsets, so one clip in a few runs came out different
    (tests/test_pipeline.py, 2 workers against 1)."""
    import demucs.apply as demucs_apply
    import demucs.transformer as demucs_transformer

    private = random.Random(seed)
    modules = (demucs_apply, demucs_transformer)
    saved = [module.random for module in modules]
    for module in modules:
        module.random = private  # type: ignore[assignment]
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.random = original


def tiny_htdemucs(seed: int = 0, segment_s: float = 2.0, **kwargs: Any) -> Any:
    """A small random-init ``HTDemucs`` (docs/method.md#offline: channels 8, t_layers 1,
    depth 4 runs 5 s of stereo in ~1.7 s on CPU). ``kwargs`` override the small configuration.

    Global torch RNG state is left as it was.
    """
    import torch
    from demucs.htdemucs import HTDemucs

    config: dict[str, Any] = {"channels": 8, "depth": 4, "t_layers": 1, **kwargs}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HTDemucs(sources=list(SOURCES), segment=segment_s, **config).eval()


def tiny_separator(seed: int = 0) -> Separator:
    """A :class:`DemucsSeparator` around :func:`tiny_htdemucs`, without shifts; for tests."""
    return DemucsSeparator(tiny_htdemucs(seed), shifts=0)
