"""The two degradation chains: an MSR training/test example (seed 004 §4.2) and the
MusicGen-like artifact chain (seed 000 §3, "Training").

Both take a :class:`numpy.random.Generator` and a config dict whose defaults are the values
of docs/method.md#degradations (:data:`MSR_DEFAULTS`, :data:`MUSICGEN_DEFAULTS`);
``params.yaml`` overrides any key. Every effect that fires is returned as a
``{"name", "stage", "params"}`` record, so an example can be re-created from its record
alone (:func:`.effects.apply_record`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..core import config
from ..core.config import ConfigError as ConfigError  # re-exported: chains.ConfigError
from .effects import EFFECTS, apply_effect, draw_effect, mix_at_snr, snr_db

#: Effect order of the MSR target chain (seed 004 §4.2: "equalizer, downsampling,
#: compression, distortion, and reverb"). ``gain`` (seed 004 §2.2, ``F(x) = a x``) is off by
#: default: §4.2 does not list it, and the SNR mix and peak normalisations already apply gains.
TARGET_CHAIN = ("gain", "eq", "resample", "compressor", "distortion", "reverb")
#: Effect order of the MSR mixture chain ("limiter, resampling, and codec"), then noise.
MIXTURE_CHAIN = ("limiter", "resample", "mp3", "gaussian_noise")
#: Effect order of the MusicGen-like chain, as seed 000 lists them.
MUSICGEN_CHAIN = ("resample", "quantize", "soft_clip", "multi_delay", "env_noise", "dither")

MSR_DEFAULTS: dict[str, Any] = {
    # probability that each target-chain effect fires (seed 004 §4.2: 0.5 each)
    "target_chain": {
        "gain": 0.0,
        "eq": 0.5,
        "resample": 0.5,
        "compressor": 0.5,
        "distortion": 0.5,
        "reverb": 0.5,
    },
    # mixture chain, same; gaussian_noise: "50% of mixtures" (seed 004 §4.2)
    "mixture_chain": {"limiter": 0.5, "resample": 0.5, "mp3": 0.5, "gaussian_noise": 0.5},
    "graphic_eq_p": 0.5,  # when EQ fires: graphic (16-band) with this probability, else parametric
    "snr_db": [-5.0, 20.0],  # target-to-background SNR, uniform (seed 004 §4.2)
    "target_peak_dbfs": -1.0,  # the target enters its chain at this peak, so the compressor
    # and distortion ranges (in dBFS) act on a known level, as after a gain-staged channel
    "mix_peak_dbfs": -1.0,  # the mixture is normalised to this peak before its chain, so
    # the limiter's -10..0 dB thresholds and the noise std are relative to a known level
    "max_peak": 0.999,  # final safety: mixture and reference are scaled together below this
    # sampler ranges, {effect: {kwarg: [lo, hi]}}; empty = the defaults in effects.py
    "ranges": {},
}

MUSICGEN_DEFAULTS: dict[str, Any] = {
    # probability per artifact; seed 000 gives none, these are ours (each artifact is common,
    # dither always, and ~1/4 of clips miss any one artifact so a model also sees clean parts)
    "chain": {
        "resample": 0.75,
        "quantize": 0.75,
        "soft_clip": 0.5,
        "multi_delay": 0.5,
        "env_noise": 0.75,
        "dither": 1.0,
    },
    "mulaw_p": 0.5,  # when quantize fires: μ-law with this probability, else bit crush 8-12 bit
    "max_peak": 0.999,
    "ranges": {"resample": {"low_sr": [12000.0, 22050.0]}},  # seed 000: 12-22.05 kHz
}


#: Bounds of both chain configs (``fnmatch`` patterns below ``degrade``; a pattern that
#: matches no key of one chain is harmless).
CHAIN_RULES: dict[str, Any] = {
    "ranges": {
        "*chain.*": (0.0, 1.0, "a probability"),
        "*_p": (0.0, 1.0, "a probability"),
        "max_peak": (0.0, 1.0),
        "*_dbfs": (None, 0.0, "a level in dBFS"),
    },
    "positive": ("max_peak",),
    "pairs": ("snr_db",),
}


def merge_config(
    defaults: Mapping[str, Any], cfg: Mapping[str, Any] | None, where: str
) -> dict[str, Any]:
    """Deep-merge ``cfg`` over ``defaults`` with :func:`musicrestore.core.config.merge` (unknown
    keys, wrong types and values outside :data:`CHAIN_RULES` are a one-line
    :class:`~musicrestore.core.config.ConfigError`: a typo in ``params.yaml`` must not be silently
    ignored). ``ranges`` is validated against the effects' sampler signatures."""
    cfg = config.as_mapping(cfg, where)
    special = "ranges" in defaults and "ranges" in cfg
    rest = {k: v for k, v in cfg.items() if not (special and k == "ranges")}
    out: dict[str, Any] = config.merge(defaults, rest, where, **CHAIN_RULES)
    if special:
        out["ranges"] = _merge_ranges(out["ranges"], cfg["ranges"], f"{where}.ranges")
    return out


def _merge_ranges(
    base: Mapping[str, Any], new: Mapping[str, Any] | None, where: str
) -> dict[str, Any]:
    """``{effect: {kwarg: value}}`` checked against the samplers' own keyword defaults (every
    ``[low, high]`` a pair of numbers of the default's type); only what is given is kept, so
    an effect without overrides keeps the defaults of :mod:`.effects`."""
    samplers = {
        name: config.signature_defaults(EFFECTS[name].sample, skip=("rng", "sr"))[0]
        for name in EFFECTS
    }
    given = config.as_mapping(new, where)
    checked = config.merge(samplers, given, where, pairs=("*.*",))
    out = copy.deepcopy(dict(base))
    for name, kwargs in given.items():
        out[name] = {**out.get(name, {}), **{k: checked[name][k] for k in (kwargs or {})}}
    return out


def msr_config(cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`MSR_DEFAULTS` with ``cfg`` merged in and validated."""
    return merge_config(MSR_DEFAULTS, cfg, "degrade")


def musicgen_config(cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:data:`MUSICGEN_DEFAULTS` with ``cfg`` merged in and validated."""
    return merge_config(MUSICGEN_DEFAULTS, cfg, "degrade")


def _db(gain: float) -> float:
    return 20.0 * math.log10(gain) if gain > 0 else -math.inf


def _finite(value: float) -> float | None:
    """JSON has no infinities: silent parts give ``None``."""
    return value if math.isfinite(value) else None


#: Sample peak (dBFS) a clean T1 input is normalised to before the MusicGen-like chain.
MUSICGEN_CLEAN_PEAK_DBFS = -1.0


def peak_gain(wave: np.ndarray, peak_dbfs: float) -> float:
    """Gain that brings ``wave``'s sample peak to ``peak_dbfs``; 1 for silence."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    return 10.0 ** (peak_dbfs / 20.0) / peak if peak > 1e-9 else 1.0


def headroom_gain(*waves: np.ndarray, max_peak: float = 0.999) -> float:
    """Gain (≤ 1) that keeps every wave's sample peak at or below ``max_peak``."""
    peak = max(float(np.max(np.abs(w))) for w in waves)
    return min(1.0, max_peak / peak) if peak > 0 else 1.0


def _scaled(wave: np.ndarray, g: float) -> np.ndarray:
    return (wave.astype(np.float64) * g).astype(np.float32)


class Degraded(NamedTuple):
    """A clean input and its degraded version at one common level (float32 ``(C, T)``)."""

    clean: np.ndarray  # the clean input, peak-normalised, then scaled by the headroom gain
    degraded: np.ndarray  # the chain's output, scaled by the same headroom gain
    effects: list[dict[str, Any]]  # every effect that fired, in order
    input_gain: float  # the peak-normalising gain applied to the input (linear)
    headroom_gain: float  # the common gain (<= 1) that keeps both peaks under ``max_peak``


def normalise_and_degrade(
    clean: np.ndarray,
    chain: Callable[[np.ndarray], tuple[np.ndarray, list[dict[str, Any]]]],
    peak_dbfs: float,
    max_peak: float,
) -> Degraded:
    """The one recipe every clean/degraded pair is made with (the T1 builder, the training
    data on the fly, the app): peak-normalise the clean input to ``peak_dbfs``, run
    ``chain(clean) -> (degraded, effects)``, then scale both by the same headroom gain so
    neither clips (:func:`headroom_gain`). Gains are applied in float64, the results are
    float32, so every caller gets the same bytes from the same input and draws."""
    g_in = peak_gain(clean, peak_dbfs)
    clean = _scaled(clean, g_in)
    degraded, effects = chain(clean)
    g = headroom_gain(clean, degraded, max_peak=max_peak)
    return Degraded(_scaled(clean, g), _scaled(degraded, g), effects, g_in, g)


class MSRExample(NamedTuple):
    """One MSR example (all float32 ``(C, T)`` at the input's rate)."""

    mixture: np.ndarray  # the degraded mixture: the model's input
    reference: np.ndarray  # the unprocessed target at the scale it entered the mixture
    degraded_target: np.ndarray  # the target after its chain, as summed into the mixture
    effects: list[dict[str, Any]]  # every effect that fired, in order
    meta: dict[str, Any]  # SNR, gains; JSON-serialisable


def _run_chain(
    order: tuple[str, ...],
    probs: Mapping[str, float],
    wave: np.ndarray,
    sr: int,
    rng: np.random.Generator,
    stage: str,
    cfg: Mapping[str, Any],
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Fire each effect of ``order`` with its probability; resolve the two either/or slots
    (``eq``: graphic or parametric; ``quantize``: bit crush or μ-law)."""
    records = []
    for slot in order:
        if rng.random() >= float(probs.get(slot, 0.0)):
            continue
        name = slot
        if slot == "eq":
            name = "graphic_eq" if rng.random() < float(cfg["graphic_eq_p"]) else "parametric_eq"
        elif slot == "quantize":
            name = "mulaw" if rng.random() < float(cfg["mulaw_p"]) else "bitcrush"
        record = draw_effect(name, rng, sr, stage, **cfg["ranges"].get(name, {}))
        wave = apply_effect(name, wave, sr, record["params"])
        records.append(record)
    return wave, records


def msr_example(
    target: np.ndarray,
    background: np.ndarray,
    sr: int,
    rng: np.random.Generator,
    cfg: Mapping[str, Any] | None = None,
) -> MSRExample:
    """Build one degraded MSR example (seed 004 §4.2).

    Steps, each recorded:

    1. The target is peak-normalised to ``target_peak_dbfs`` (gain ``g_t``).
    2. Target chain: gain (off by default), EQ (graphic or parametric), down-up resampling,
       compressor, distortion, reverb; each fires with its ``target_chain`` probability.
    3. Target-to-background SNR drawn from ``snr_db``: the background is scaled so that the
       *unprocessed* (normalised) target and the background have that energy ratio
       (:func:`.effects.mix_at_snr`); the mixture is degraded target + scaled background.
       Measuring the SNR on the clean target keeps the reference and the mixture at
       comparable levels even when the chain removes most of the target (a narrow
       band-pass); ``meta["snr_db_degraded"]`` is the SNR of the degraded target actually
       in the mixture.
    4. The mixture is scaled by ``g_m`` so its peak is ``mix_peak_dbfs``, or lower if the
       reference would otherwise peak above that level (a target the chain attenuated).
    5. Mixture chain: limiter, down-up resampling, MP3, Gaussian noise (``mixture_chain``);
       thresholds and noise std act on the level set in step 4.
    6. If the mixture or the reference would exceed ``max_peak`` (codec overshoot, noise)
       both are scaled by the same gain ``g_f`` (FLAC cannot store samples beyond full
       scale).

    The reference is the **unprocessed** target times the same scalar gains the target path
    received outside its effects: ``reference = target · g_t · g_m · g_f``. So the identity
    baseline (mixture vs. reference) measures what the effects and the background did, not
    an arbitrary level difference; ``meta["reference_gain_db"]`` is ``20 log10(g_t g_m g_f)``.

    Args:
        target: ``(C, T)`` sum of the target group's stems.
        background: ``(C, T)`` sum of every other stem.
        sr: sample rate of both (Hz).
        rng: the example's generator; the same state gives the same example.
        cfg: overrides of :data:`MSR_DEFAULTS`.
    """
    if target.shape != background.shape:
        raise ValueError(f"target {target.shape} and background {background.shape} differ in shape")
    cfg = msr_config(cfg)
    target = target.astype(np.float32)
    g_t = peak_gain(target, float(cfg["target_peak_dbfs"]))
    clean = _scaled(target, g_t)
    degraded, effects = _run_chain(TARGET_CHAIN, cfg["target_chain"], clean, sr, rng, "target", cfg)

    snr_lo, snr_hi = (float(v) for v in cfg["snr_db"])
    snr_req = float(rng.uniform(snr_lo, snr_hi))
    _, (_, bg) = mix_at_snr(clean, background.astype(np.float32), snr_req)
    mixture = (degraded.astype(np.float64) + bg).astype(np.float32)

    mix_peak = float(cfg["mix_peak_dbfs"])
    g_m = min(peak_gain(mixture, mix_peak), peak_gain(clean, mix_peak))
    mixture = _scaled(mixture, g_m)
    mixture, mix_effects = _run_chain(
        MIXTURE_CHAIN, cfg["mixture_chain"], mixture, sr, rng, "mixture", cfg
    )
    effects += mix_effects

    reference = _scaled(clean, g_m)
    g_f = headroom_gain(mixture, reference, max_peak=float(cfg["max_peak"]))
    meta = {
        "snr_db": snr_req,
        "snr_db_achieved": _finite(snr_db(clean, bg)),
        "snr_db_degraded": _finite(snr_db(degraded, bg)),
        "target_gain_db": _db(g_t),
        "mix_gain_db": _db(g_m),
        "headroom_gain_db": _db(g_f),
        "reference_gain_db": _db(g_t * g_m * g_f),
    }
    return MSRExample(
        _scaled(mixture, g_f), _scaled(reference, g_f), _scaled(degraded, g_m * g_f), effects, meta
    )


def musicgen_like(
    clean: np.ndarray,
    rng: np.random.Generator,
    cfg: Mapping[str, Any] | None = None,
    sr: int = 32000,
    *,
    merged: bool = False,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """MusicGen-like artifacts (seed 000 §3): down-up resampling through 12-22.05 kHz, bit
    crush (8-12 bit) or μ-law, soft clipping (1-6 dB drive), light multi-delay reverb,
    environmental noise (coloured, hum or crackle) at SNR U(-5, 20) dB, tiny dither; each
    fires with its ``chain`` probability, in that order.

    Args:
        clean: ``(1, T)`` mono at ``sr`` (32 kHz, MusicGen's rate), peak at most 1.
        rng: the example's generator.
        cfg: overrides of :data:`MUSICGEN_DEFAULTS`.
        sr: sample rate (Hz).
        merged: ``cfg`` is already :func:`musicgen_config`'s result (an on-the-fly chain
            merges once, not per training crop: the merge was a third of a crop's cost).

    Returns:
        ``(degraded (1, T), effects)``; the records carry ``stage="mixture"`` (the whole mix
        is degraded). No level change is applied to the clean signal
        (soft clipping keeps unity small-signal gain), so it stays the reference; callers
        keep both below full scale with :func:`headroom_gain`.
    """
    if not merged:
        cfg = musicgen_config(cfg)
    assert cfg is not None
    return _run_chain(
        MUSICGEN_CHAIN, cfg["chain"], clean.astype(np.float32), sr, rng, "mixture", cfg
    )
