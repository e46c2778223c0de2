"""MusicGen-like artifacts (seed 000 §3, "Training"): bit crush, μ-law, soft clipping, a
light multi-delay reverb and environmental noise. The quantizers, the sparse multi-delay
reverb and the noise generators are written here, because no installed library has them.
Each effect is ``apply(wave, sr, **params)`` plus its seeded sampler, registered in
:data:`musicrestore.degrade.effects.EFFECTS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import signal

from .base import Params, Range, as_f32, choice, db_to_gain, draw_seed, mix_at_snr, uniform
from .production import distortion


def bitcrush(wave: np.ndarray, sr: int, bits: int) -> np.ndarray:
    """Quantize to ``bits``-bit PCM: ``2**bits`` levels, step ``2 / 2**bits``, clipped to
    ``[-1, 1 - step]``.

    Written here rather than with pedalboard ``Bitcrush``, whose ``bit_depth=b`` rounds to
    ``2**b`` steps per polarity (``2**(b+1) + 1`` levels, i.e. b+1 bits).
    """
    half = 2.0 ** (int(bits) - 1)
    q = np.clip(np.round(wave.astype(np.float64) * half), -half, half - 1)
    return as_f32(q / half)


def sample_bitcrush(rng: np.random.Generator, sr: int, bits: Sequence[int] = (8, 12)) -> Params:
    return {"bits": int(rng.integers(int(bits[0]), int(bits[1]) + 1))}


def mulaw(wave: np.ndarray, sr: int, mu: int = 255, bits: int = 8) -> np.ndarray:
    """μ-law companding round trip (ITU-T G.711 style): compress, quantize to ``bits`` bits
    (``2**bits`` levels, uniformly in the companded domain), expand."""
    x = np.clip(wave.astype(np.float64), -1.0, 1.0)
    comp = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    half = 2.0 ** (int(bits) - 1)
    # mid-rise levels (k + 0.5) / half: symmetric about zero, exactly 2**bits of them
    comp_q = (np.clip(np.floor(comp * half), -half, half - 1) + 0.5) / half
    return as_f32(np.sign(comp_q) * np.expm1(np.abs(comp_q) * math.log1p(mu)) / mu)


def sample_mulaw(rng: np.random.Generator, sr: int, mu: int = 255, bits: int = 8) -> Params:
    return {"mu": int(mu), "bits": int(bits)}


def soft_clip(wave: np.ndarray, sr: int, drive_db: float) -> np.ndarray:
    """Soft clipping with ``drive_db`` of drive (seed 000: 1-6 dB): ``tanh(g x) / g``.

    Dividing by the drive gain ``g`` keeps the small-signal gain at one, so only peaks are
    squashed (by up to ``drive_db``) and the clean reference stays level-aligned.
    """
    return as_f32(distortion(wave, sr, drive_db).astype(np.float64) / db_to_gain(drive_db))


def sample_soft_clip(rng: np.random.Generator, sr: int, drive_db: Range = (1.0, 6.0)) -> Params:
    return {"drive_db": uniform(rng, drive_db)}


def multi_delay(
    wave: np.ndarray, sr: int, delays_ms: Sequence[float], gains_db: Sequence[float]
) -> np.ndarray:
    """Light multi-delay reverb (seed 000): ``y[n] = x[n] + Σ_k g_k x[n - d_k]``, a sparse FIR
    of a few early reflections. Written by hand: pedalboard's ``Delay`` has one tap."""
    x = wave.astype(np.float64)
    y = x.copy()
    for d_ms, g_db in zip(delays_ms, gains_db, strict=True):
        d = int(round(d_ms * sr / 1000.0))
        if 0 < d < x.shape[-1]:
            y[:, d:] += db_to_gain(g_db) * x[:, :-d]
    return as_f32(y)


def sample_multi_delay(
    rng: np.random.Generator,
    sr: int,
    n_taps: Sequence[int] = (2, 6),
    delay_ms: Range = (10.0, 120.0),
    gain_db: Range = (-24.0, -10.0),
) -> Params:
    """2-6 taps at 10-120 ms, each -24..-10 dB: "light" (our ranges; seed 000 gives none)."""
    n = int(rng.integers(int(n_taps[0]), int(n_taps[1]) + 1))
    delays = sorted(uniform(rng, delay_ms) for _ in range(n))
    return {"delays_ms": delays, "gains_db": [uniform(rng, gain_db) for _ in range(n)]}


NOISE_KINDS = ("colored", "hum", "crackle")


def make_env_noise(kind: str, shape: tuple[int, int], sr: int, seed: int, **kw: Any) -> np.ndarray:
    """Environmental noise ``(C, T)`` float64 (unnormalised), generated from ``seed``.

    - ``colored``: Gaussian noise with a ``1/f^slope`` power spectrum (``slope`` 0 = white,
      1 = pink, 2 = brown), then a 2nd-order Butterworth low-pass at ``cutoff_hz``: hiss,
      rumble, air-conditioning.
    - ``hum``: mains hum at ``f0_hz`` (50 or 60 Hz) with ``n_harmonics`` harmonics of
      amplitude ``k^-decay`` and random phases, plus 10 % of white noise: ground loops.
    - ``crackle``: Poisson clicks at ``rate_hz`` with Laplacian amplitudes, each a 1-ms
      exponentially decaying burst, high-passed at 500 Hz: vinyl/dust crackle.
    """
    gen = np.random.default_rng(seed)
    channels, length = shape
    t = np.arange(length) / sr
    if kind == "colored":
        white = gen.standard_normal((channels, length))
        spec = np.fft.rfft(white, axis=-1)
        # the 1/f tilt stops at 20 Hz: below it brown noise would be all inaudible rumble
        freqs = np.maximum(np.fft.rfftfreq(length, 1.0 / sr), 20.0)
        spec *= freqs ** (-kw["slope"] / 2.0)
        noise = np.fft.irfft(spec, n=length, axis=-1)
        sos = signal.butter(
            2, min(kw["cutoff_hz"], 0.45 * sr), btype="lowpass", fs=sr, output="sos"
        )
        return signal.sosfilt(sos, noise, axis=-1)
    if kind == "hum":
        noise = np.zeros((channels, length))
        for k in range(1, int(kw["n_harmonics"]) + 1):
            if k * kw["f0_hz"] >= sr / 2:
                break
            phase = gen.uniform(0, 2 * np.pi, size=(channels, 1))
            noise += k ** (-kw["decay"]) * np.sin(2 * np.pi * k * kw["f0_hz"] * t + phase)
        return noise + 0.1 * gen.standard_normal((channels, length)) * np.std(noise)
    if kind == "crackle":
        n_clicks = gen.poisson(kw["rate_hz"] * length / sr)
        clicks = np.zeros((channels, length))
        pos = gen.integers(0, length, size=n_clicks)
        clicks[:, pos] = gen.laplace(size=(channels, n_clicks))
        burst = np.exp(-np.arange(max(1, int(0.001 * sr))) / (0.0002 * sr))
        noise = signal.lfilter(burst, [1.0], clicks, axis=-1)
        sos = signal.butter(2, 500.0, btype="highpass", fs=sr, output="sos")
        return signal.sosfilt(sos, noise, axis=-1)
    raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")


def env_noise(
    wave: np.ndarray, sr: int, kind: str, snr_db: float, seed: int, **kw: Any
) -> np.ndarray:
    """Add :func:`make_env_noise` at ``snr_db`` relative to ``wave`` (seed 000: U(-5, 20) dB)."""
    noise = make_env_noise(kind, wave.shape, sr, seed, **kw)
    mixed, _ = mix_at_snr(wave, noise.astype(np.float32), snr_db)
    return mixed


def sample_env_noise(
    rng: np.random.Generator,
    sr: int,
    snr_db: Range = (-5.0, 20.0),
    kinds: Sequence[str] = NOISE_KINDS,
    slope: Range = (0.0, 2.0),
    cutoff_hz: Range = (2000.0, 16000.0),
    hum_f0_hz: Sequence[float] = (50.0, 60.0),
    n_harmonics: Sequence[int] = (3, 8),
    decay: Range = (0.5, 2.0),
    rate_hz: Range = (5.0, 60.0),
) -> Params:
    """Noise kind uniform over ``kinds``; SNR uniform (seed 000); the rest our ranges."""
    kind = str(choice(rng, list(kinds)))
    params: Params = {"kind": kind, "snr_db": uniform(rng, snr_db), "seed": draw_seed(rng)}
    if kind == "colored":
        params.update(slope=uniform(rng, slope), cutoff_hz=uniform(rng, cutoff_hz))
    elif kind == "hum":
        params.update(
            f0_hz=float(choice(rng, list(hum_f0_hz))),
            n_harmonics=int(rng.integers(int(n_harmonics[0]), int(n_harmonics[1]) + 1)),
            decay=uniform(rng, decay),
        )
    elif kind == "crackle":
        params.update(rate_hz=uniform(rng, rate_hz))
    return params
