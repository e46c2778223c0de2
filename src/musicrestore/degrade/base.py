"""What the degradation families share: parameter drawing, energy, SNR and mixing at an SNR.

The effects themselves are in :mod:`.filters` (spectral filtering), :mod:`.production`
(dynamics, distortion, reverb, codec, gain, resampling, noise; seed 004 §2.2) and
:mod:`.artifacts` (MusicGen-like artifacts; seed 000 §3); :mod:`.effects` bundles them into
the registry the chains draw from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Params = dict[str, Any]
Range = Sequence[float]

#: Silence floor for SNR/peak computations: energies below this count as silent.
EPS_ENERGY = 1e-20


def uniform(rng: np.random.Generator, bounds: Range) -> float:
    """A float drawn uniformly from ``[lo, hi]``."""
    lo, hi = float(bounds[0]), float(bounds[1])
    if hi < lo:
        raise ValueError(f"range {list(bounds)} has its upper bound below the lower bound")
    return float(rng.uniform(lo, hi))


def choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    """One of ``options``, uniformly, as a plain Python value (JSON-ready)."""
    if len(options) == 0:
        raise ValueError("empty list of options")
    item = options[int(rng.integers(len(options)))]
    return item.item() if isinstance(item, np.generic) else item


def db_to_gain(db: float) -> float:
    """Decibels to a linear amplitude factor."""
    return float(10.0 ** (db / 20.0))


def as_f32(wave: np.ndarray) -> np.ndarray:
    """``wave`` as contiguous float32 (the dtype every effect returns)."""
    return np.ascontiguousarray(wave, dtype=np.float32)


def energy(wave: np.ndarray) -> float:
    """Sum of squares (float64) over every channel and sample."""
    w = np.asarray(wave, dtype=np.float64)
    return float(np.dot(w.ravel(), w.ravel()))


def snr_db(signal_wave: np.ndarray, noise_wave: np.ndarray) -> float:
    """``10 log10(E_signal / E_noise)``; ``inf`` for a silent noise, ``-inf`` for a silent signal."""
    es, en = energy(signal_wave), energy(noise_wave)
    if en <= EPS_ENERGY:
        return math.inf
    if es <= EPS_ENERGY:
        return -math.inf
    return 10.0 * math.log10(es / en)


def mix_at_snr(
    target: np.ndarray, background: np.ndarray, snr_db_: float
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Sum ``target + g * background`` with ``g`` chosen so that the target-to-background
    energy ratio is ``snr_db_`` (seed 004 §4.2: "target stems with background signals at
    signal-to-noise ratios ranging from -5 to 20 dB").

    Only the background is scaled, so the target keeps its level (the clean reference stays at
    the scale it entered with). The gain is computed in float64 on the float32 parts that are
    returned, so the achieved SNR matches the request to far better than 0.01 dB.

    Silent parts: if either part is silent (energy below :data:`EPS_ENERGY`) no SNR can be
    set; the parts are summed unscaled (the achieved SNR, from :func:`snr_db`, is then
    ``±inf``).

    Args:
        target: ``(C, T)``.
        background: ``(C, T)``, same shape.
        snr_db_: requested target-to-background ratio in dB.

    Returns:
        ``(mixture, (target, scaled_background))``, all float32 ``(C, T)``.
    """
    if target.shape != background.shape:
        raise ValueError(f"target {target.shape} and background {background.shape} differ in shape")
    target = as_f32(target)
    background = as_f32(background)
    et, eb = energy(target), energy(background)
    if et > EPS_ENERGY and eb > EPS_ENERGY:
        gain = math.sqrt(et / (eb * 10.0 ** (snr_db_ / 10.0)))
        background = as_f32(background.astype(np.float64) * gain)
    return as_f32(target.astype(np.float64) + background), (target, background)


def draw_seed(rng: np.random.Generator) -> int:
    """An integer seed for an effect that needs randomness (its params then reproduce it)."""
    return int(rng.integers(0, 2**31 - 1))
