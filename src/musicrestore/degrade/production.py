"""Production effects (seed 004 §2.2): dynamics, distortion, reverb, codec and gain through
pedalboard; down-up resampling through julius; Gaussian noise and dither. Each effect is
``apply(wave, sr, **params)`` plus its seeded sampler, registered in
:data:`musicrestore.degrade.effects.EFFECTS`.
"""

from __future__ import annotations

import numpy as np

from ..core.audio import fit_length
from ..core.audio import resample as _resample
from .base import Params, Range, as_f32, db_to_gain, draw_seed, uniform


def compressor(
    wave: np.ndarray,
    sr: int,
    threshold_db: float,
    ratio: float,
    attack_ms: float,
    release_ms: float,
) -> np.ndarray:
    """pedalboard ``Compressor`` (JUCE): gain reduction above ``threshold_db`` by ``ratio``."""
    import pedalboard

    fx = pedalboard.Compressor(
        threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms, release_ms=release_ms
    )
    return as_f32(fx(as_f32(wave), sr))


def sample_compressor(
    rng: np.random.Generator,
    sr: int,
    threshold_db: Range = (-20.0, 0.0),
    ratio: Range = (1.5, 10.0),
    attack_ms: Range = (1.0, 10.0),
    release_ms: Range = (50.0, 200.0),
) -> Params:
    return {
        "threshold_db": uniform(rng, threshold_db),
        "ratio": uniform(rng, ratio),
        "attack_ms": uniform(rng, attack_ms),
        "release_ms": uniform(rng, release_ms),
    }


#: Look-ahead of the brick-wall limiter; pedalboard reports it as latency and removes it.
LIMITER_LOOKAHEAD_MS = 5.0


def limiter(wave: np.ndarray, sr: int, threshold_db: float, release_ms: float) -> np.ndarray:
    """Peak limiter with ceiling ``threshold_db`` (seed 004 §2.2: "any signal exceeding T_l is
    immediately attenuated to maintain the threshold ceiling", release ``release_ms``).

    Uses pedalboard's ``BrickwallLimiter`` (look-ahead, instant attack, no makeup gain, output
    aligned with the input). pedalboard's ``Limiter`` (JUCE ``dsp::Limiter``) is *not* that:
    it adds automatic makeup gain and hard-clips at 0 dBFS whatever the threshold, so it would
    push every limited mixture to full scale. The output's sample peak stays at or below the
    ceiling (measured overshoot < 0.01 dB; inter-sample peaks are not limited).
    """
    import pedalboard

    fx = pedalboard.BrickwallLimiter(
        ceiling_db=threshold_db, release_ms=release_ms, lookahead_ms=LIMITER_LOOKAHEAD_MS
    )
    return as_f32(fx(as_f32(wave), sr))


def sample_limiter(
    rng: np.random.Generator,
    sr: int,
    threshold_db: Range = (-10.0, 0.0),
    release_ms: Range = (50.0, 200.0),
) -> Params:
    return {"threshold_db": uniform(rng, threshold_db), "release_ms": uniform(rng, release_ms)}


def distortion(wave: np.ndarray, sr: int, drive_db: float) -> np.ndarray:
    """``tanh(x · 10^(drive_db/20))`` via pedalboard ``Distortion`` (seed 004 §2.2)."""
    import pedalboard

    return as_f32(pedalboard.Distortion(drive_db=drive_db)(as_f32(wave), sr))


def sample_distortion(rng: np.random.Generator, sr: int, drive_db: Range = (0.0, 5.0)) -> Params:
    return {"drive_db": uniform(rng, drive_db)}


#: Freeverb dry level. JUCE's reverb scales ``dry_level`` by 2, so 0.5 passes the dry signal
#: at unity and the wet level alone sets how much reverb is added (seed 004 gives no dry level).
REVERB_DRY_LEVEL = 0.5


def reverb(
    wave: np.ndarray,
    sr: int,
    room_size: float,
    damping: float,
    wet_level: float,
    width: float,
    dry_level: float = REVERB_DRY_LEVEL,
) -> np.ndarray:
    """Freeverb through pedalboard ``Reverb`` (seed 004 §2.2). The tail past the input's end
    is cut: lengths stay equal."""
    import pedalboard

    fx = pedalboard.Reverb(
        room_size=room_size, damping=damping, wet_level=wet_level, dry_level=dry_level, width=width
    )
    return fit_length(as_f32(fx(as_f32(wave), sr)), wave.shape[-1])


def sample_reverb(
    rng: np.random.Generator,
    sr: int,
    room_size: Range = (0.1, 1.0),
    damping: Range = (0.1, 1.0),
    wet_level: Range = (0.1, 0.5),
    width: Range = (0.1, 1.0),
    dry_level: float = REVERB_DRY_LEVEL,
) -> Params:
    return {
        "room_size": uniform(rng, room_size),
        "damping": uniform(rng, damping),
        "wet_level": uniform(rng, wet_level),
        "width": uniform(rng, width),
        "dry_level": float(dry_level),
    }


#: Sample rates LAME (and so pedalboard's ``MP3Compressor``) accepts.
MP3_RATES_HZ = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def mp3(wave: np.ndarray, sr: int, vbr_quality: float) -> np.ndarray:
    """MP3 VBR round trip through LAME (pedalboard ``MP3Compressor``; seed 004 §2.2).

    pedalboard reports the encoder+decoder delay as latency and removes it, so the output is
    sample-aligned with the input (``tests/test_effects.py`` checks the cross-correlation
    peak is at lag 0); the length is kept.
    """
    import pedalboard

    if sr not in MP3_RATES_HZ:
        raise ValueError(f"MP3 needs one of {MP3_RATES_HZ} Hz, got {sr} Hz")
    out = pedalboard.MP3Compressor(vbr_quality=vbr_quality)(as_f32(wave), sr)
    return fit_length(as_f32(out), wave.shape[-1])


def sample_mp3(rng: np.random.Generator, sr: int, vbr_quality: Range = (1.0, 9.0)) -> Params:
    return {"vbr_quality": uniform(rng, vbr_quality)}


def gain(wave: np.ndarray, sr: int, gain_db: float) -> np.ndarray:
    """``F(x) = a x`` with ``a = 10^(gain_db/20) ≠ 0`` (seed 004 §2.2)."""
    return as_f32(wave.astype(np.float64) * db_to_gain(gain_db))


def sample_gain(rng: np.random.Generator, sr: int, gain_db: Range = (-12.0, 6.0)) -> Params:
    """Our range (the paper gives none): cuts down to -12 dB, boosts up to +6 dB."""
    return {"gain_db": uniform(rng, gain_db)}


#: Down-up resampling rates are drawn on this grid so julius' rational ratio stays small
#: (44100 and 32000 share a factor 50 with every multiple of 50).
RESAMPLE_GRID_HZ = 50


def resample_roundtrip(wave: np.ndarray, sr: int, low_sr: int) -> np.ndarray:
    """Down to ``low_sr`` and back to ``sr`` (band-limits to about 0.47 × ``low_sr``; julius
    sinc). A ``low_sr`` at or above ``sr`` leaves the wave unchanged."""
    low_sr = int(low_sr)
    if low_sr >= sr:
        return as_f32(wave)
    return fit_length(_resample(_resample(as_f32(wave), sr, low_sr), low_sr, sr), wave.shape[-1])


def sample_resample(rng: np.random.Generator, sr: int, low_sr: Range = (8000.0, 32000.0)) -> Params:
    """``low_sr`` uniform in the range (seed 004's code: 8-32 kHz) on a 50-Hz grid, below ``sr``."""
    hi = min(float(low_sr[1]), sr - RESAMPLE_GRID_HZ)
    value = uniform(rng, (float(low_sr[0]), max(hi, float(low_sr[0]))))
    return {"low_sr": int(round(value / RESAMPLE_GRID_HZ) * RESAMPLE_GRID_HZ)}


def gaussian_noise(wave: np.ndarray, sr: int, std: float, seed: int) -> np.ndarray:
    """Add white Gaussian noise of ``std`` (full-scale units), drawn from ``seed``."""
    noise = np.random.default_rng(seed).standard_normal(wave.shape) * std
    return as_f32(wave.astype(np.float64) + noise)


def sample_gaussian_noise(rng: np.random.Generator, sr: int, std: Range = (0.001, 0.005)) -> Params:
    """Seed 004 §4.2 (its "means" is the standard deviation): std U(0.001, 0.005).

    See docs/method.md#msr-mixture-chain.
    """
    return {"std": uniform(rng, std), "seed": draw_seed(rng)}


def dither(wave: np.ndarray, sr: int, std: float, seed: int) -> np.ndarray:
    """Tiny Gaussian dither (seed 000): the same operation as :func:`gaussian_noise`."""
    return gaussian_noise(wave, sr, std, seed)


def sample_dither(rng: np.random.Generator, sr: int, std: Range = (1.5e-5, 6e-5)) -> Params:
    """Our "tiny" (seed 000 gives no level): 0.5-2 LSB of 16-bit audio (1 LSB = 3.05e-5)."""
    return {"std": uniform(rng, std), "seed": draw_seed(rng)}
