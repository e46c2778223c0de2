"""Audio degradations as recorded, reproducible effects.

Sources: Zang et al., "Music Source Restoration" (seed 004, §2.2 "The Degradation Set" and
§4.2 "Degradation Setting") for the production effects (EQ, dynamics, distortion, reverb,
codec, gain, resampling, noise); seed 000 (§3, "Training") for the MusicGen-like artifacts
(down-up resampling, bit crush or μ-law, soft clipping, light multi-delay reverb,
environmental noise, dither).

The effects live by family in :mod:`.filters` (EQs), :mod:`.production` (dynamics,
distortion, reverb, codec, gain, resampling, noise) and :mod:`.artifacts` (the MusicGen-like
ones), on the helpers of :mod:`.base`; this module registers them and re-exports them.
Every effect is two functions, bundled as an :class:`Effect` in :data:`EFFECTS`:

- ``apply(wave, sr, **params) -> wave``: deterministic. ``wave`` is float32 ``(C, T)`` at
  ``sr``; the output has the same shape. Effects that need randomness (noise) take an integer
  ``seed`` among their params, so the params alone reproduce the output.
- ``sample(rng, sr, **ranges) -> params``: draws params uniformly from the ranges of
  docs/method.md#degradations (the keyword defaults) with the given
  :class:`numpy.random.Generator`. Params are plain JSON types (float, int, str,
  lists/dicts of them) so every applied effect is recorded as ``{"name", "stage",
  "params"}`` in a dataset manifest (:func:`draw_effect`).

Library code does the DSP wherever a library has it: pedalboard for compressor, limiter,
tanh distortion, Freeverb and the LAME MP3 codec; SciPy for filter design and filtering;
julius (through :func:`musicrestore.core.audio.resample`) for resampling. Written by hand, because
no installed library has them: the RBJ-cookbook peak/shelf biquads, the PCM bit-depth
quantizer and μ-law, the sparse multi-delay reverb, the environmental noise generators and
SNR mixing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .artifacts import (
    NOISE_KINDS,
    bitcrush,
    env_noise,
    make_env_noise,
    mulaw,
    multi_delay,
    sample_bitcrush,
    sample_env_noise,
    sample_mulaw,
    sample_multi_delay,
    sample_soft_clip,
    soft_clip,
)
from .base import EPS_ENERGY, Params, Range, as_f32, energy, mix_at_snr, snr_db
from .filters import (
    BAND_TYPES,
    FILTER_DESIGNS,
    GRAPHIC_EQ_CENTERS_HZ,
    band_edges_hz,
    design_band,
    design_parametric_eq,
    graphic_eq,
    graphic_eq_q,
    graphic_eq_sos,
    parametric_eq,
    rbj_biquad,
    sample_graphic_eq,
    sample_parametric_eq,
)
from .production import (
    RESAMPLE_GRID_HZ,
    compressor,
    distortion,
    dither,
    gain,
    gaussian_noise,
    limiter,
    mp3,
    resample_roundtrip,
    reverb,
    sample_compressor,
    sample_distortion,
    sample_dither,
    sample_gain,
    sample_gaussian_noise,
    sample_limiter,
    sample_mp3,
    sample_resample,
    sample_reverb,
)

#: The registry and every effect, importable from here as from their modules.
__all__ = [
    "BAND_TYPES",
    "EFFECTS",
    "EPS_ENERGY",
    "Effect",
    "EffectError",
    "FILTER_DESIGNS",
    "GRAPHIC_EQ_CENTERS_HZ",
    "NOISE_KINDS",
    "Params",
    "RESAMPLE_GRID_HZ",
    "Range",
    "apply_effect",
    "apply_record",
    "band_edges_hz",
    "bitcrush",
    "compressor",
    "design_band",
    "design_parametric_eq",
    "distortion",
    "dither",
    "draw_effect",
    "energy",
    "env_noise",
    "gain",
    "gaussian_noise",
    "graphic_eq",
    "graphic_eq_q",
    "graphic_eq_sos",
    "limiter",
    "make_env_noise",
    "mix_at_snr",
    "mp3",
    "mulaw",
    "multi_delay",
    "parametric_eq",
    "rbj_biquad",
    "resample_roundtrip",
    "reverb",
    "sample_bitcrush",
    "sample_compressor",
    "sample_distortion",
    "sample_dither",
    "sample_env_noise",
    "sample_gain",
    "sample_gaussian_noise",
    "sample_graphic_eq",
    "sample_limiter",
    "sample_mp3",
    "sample_mulaw",
    "sample_multi_delay",
    "sample_parametric_eq",
    "sample_resample",
    "sample_reverb",
    "sample_soft_clip",
    "snr_db",
    "soft_clip",
]


class EffectError(RuntimeError):
    """An effect produced an unusable output (NaN/Inf or a changed shape); names the params."""


@dataclass(frozen=True)
class Effect:
    """One degradation: ``apply(wave (C, T), sr, **params) -> wave`` and its seeded sampler
    ``sample(rng, sr, **ranges) -> params``."""

    name: str
    apply: Callable[..., np.ndarray]
    sample: Callable[..., Params]


EFFECTS: dict[str, Effect] = {
    e.name: e
    for e in (
        Effect("graphic_eq", graphic_eq, sample_graphic_eq),
        Effect("parametric_eq", parametric_eq, sample_parametric_eq),
        Effect("compressor", compressor, sample_compressor),
        Effect("limiter", limiter, sample_limiter),
        Effect("distortion", distortion, sample_distortion),
        Effect("reverb", reverb, sample_reverb),
        Effect("mp3", mp3, sample_mp3),
        Effect("gain", gain, sample_gain),
        Effect("resample", resample_roundtrip, sample_resample),
        Effect("gaussian_noise", gaussian_noise, sample_gaussian_noise),
        Effect("bitcrush", bitcrush, sample_bitcrush),
        Effect("mulaw", mulaw, sample_mulaw),
        Effect("soft_clip", soft_clip, sample_soft_clip),
        Effect("multi_delay", multi_delay, sample_multi_delay),
        Effect("env_noise", env_noise, sample_env_noise),
        Effect("dither", dither, sample_dither),
    )
}


def apply_effect(name: str, wave: np.ndarray, sr: int, params: Params) -> np.ndarray:
    """Run ``EFFECTS[name].apply`` and check the result: same shape, finite, float32.

    Raises:
        EffectError: NaN/Inf or a shape change, naming the effect and its params, so a bad
            draw surfaces instead of silently writing a broken example.
    """
    if name not in EFFECTS:
        raise KeyError(f"unknown effect {name!r}; expected one of {', '.join(EFFECTS)}")
    out = EFFECTS[name].apply(wave, sr, **params)
    if out.shape != wave.shape:
        raise EffectError(f"{name}{params} changed the shape {wave.shape} -> {out.shape}")
    if not np.isfinite(out).all():
        raise EffectError(f"{name}{params} produced NaN/Inf")
    return as_f32(out)


def draw_effect(
    name: str, rng: np.random.Generator, sr: int, stage: str, **ranges: Any
) -> dict[str, Any]:
    """Sample ``name``'s params and return the record ``{"name", "stage", "params"}``."""
    if name not in EFFECTS:
        raise KeyError(f"unknown effect {name!r}; expected one of {', '.join(EFFECTS)}")
    return {"name": name, "stage": stage, "params": EFFECTS[name].sample(rng, sr, **ranges)}


def apply_record(record: dict[str, Any], wave: np.ndarray, sr: int) -> np.ndarray:
    """Re-apply a recorded effect: ``apply_effect(record["name"], wave, sr, record["params"])``."""
    return apply_effect(record["name"], wave, sr, record["params"])
