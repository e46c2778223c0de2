"""The Degrade tab: a session's clean source through one of the pipeline's degradation
chains (:data:`CHAINS`: the MusicGen-like chain, docs/method.md#musicgen-like, or the MSR
target ("production") and mixture chains, docs/method.md#msr-degradation), seeded, at a
chosen strength (:func:`scaled_probabilities`), with every effect that fired recorded. The
clean/degraded pair is made with the pipeline's own recipe
(:func:`musicrestore.degrade.chains.normalise_and_degrade`); the clean input at the pair's
level is kept as the reference."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core import config
from ..core.audio import load_audio
from ..degrade import chains
from .errors import AppError
from .project import Project
from .session import ProgressFn, Session

#: Degradation chains offered (docs/method.md#degradations), name -> description.
CHAINS: dict[str, str] = {
    "musicgen_like": "MusicGen-like artifacts (seed 000 §3): resampling, quantization, soft "
    "clipping, multi-delay reverb, environmental noise, dither",
    "msr_production": "MSR target chain (seed 004 §4.2): EQ, resampling, compressor, "
    "distortion, reverb",
    "msr_mixture": "MSR mixture chain (seed 004 §4.2): limiter, resampling, MP3, Gaussian noise",
    "msr_full": "MSR target chain, then the mixture chain",
}


def scaled_probabilities(probs: Mapping[str, float], strength: float) -> dict[str, float]:
    """Firing probabilities at ``strength`` in [0, 1]: 0 fires nothing, 0.5 keeps the
    configured probabilities (``params.yaml``, docs/method.md#degradations), 1 fires every
    effect that is enabled; linear in between. An effect configured off (probability 0,
    such as the MSR gain) stays off."""
    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise AppError(f"strength {strength!r}: must be between 0 and 1")
    out = {}
    for name, p in probs.items():
        p = float(p)
        if p <= 0.0:
            out[name] = 0.0
        elif s <= 0.5:
            out[name] = p * 2.0 * s
        else:
            out[name] = p + (1.0 - p) * (2.0 * s - 1.0)
    return out


def degrade_wave(
    wave: np.ndarray,
    sr: int,
    chain: str,
    strength: float,
    seed: int,
    params: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """Degrade a clean ``(C, T)`` with one of :data:`CHAINS`, seeded.

    As the pipeline does (docs/method.md#degradations,
    :func:`musicrestore.degrade.chains.normalise_and_degrade`): the clean signal is first
    brought to the chain's working peak (-1 dBFS: ``target_peak_dbfs`` for the MSR target
    chain, ``mix_peak_dbfs`` for the mixture chain, the MusicGen-like crop's -1 dBFS), then
    the chain runs with ``default_rng(seed)``, then the clean and degraded signals are scaled
    together below ``max_peak``. The clean signal at that scale is the reference, so no
    level offset counts as degradation.

    Args:
        params: the whole ``params.yaml``; its ``musicgen_like.degrade`` / ``msr.degrade``
            blocks override the chain's defaults, as in the pipeline.

    Returns:
        ``(reference, degraded, effects, info)``.
    """
    if chain not in CHAINS:
        raise AppError(f"unknown chain {chain!r}; choose one of {', '.join(CHAINS)}")
    params = params or {}
    rng = np.random.default_rng(int(seed))
    if chain == "musicgen_like":
        block = config.as_mapping(params.get("musicgen_like"), "musicgen_like").get("degrade")
        cfg = chains.musicgen_config(block)
        cfg["chain"] = scaled_probabilities(cfg["chain"], strength)
        peak = chains.MUSICGEN_CLEAN_PEAK_DBFS
        steps: list[tuple[tuple[str, ...], str, str]] = [
            (chains.MUSICGEN_CHAIN, "chain", "mixture")
        ]
    else:
        block = config.as_mapping(params.get("msr"), "msr").get("degrade")
        cfg = chains.msr_config(block)
        for key in ("target_chain", "mixture_chain"):
            cfg[key] = scaled_probabilities(cfg[key], strength)
        target: tuple[tuple[str, ...], str, str] = (chains.TARGET_CHAIN, "target_chain", "target")
        mixture: tuple[tuple[str, ...], str, str] = (
            chains.MIXTURE_CHAIN,
            "mixture_chain",
            "mixture",
        )
        steps = {
            "msr_production": [target],
            "msr_mixture": [mixture],
            "msr_full": [target, mixture],
        }[chain]
        peak = float(cfg["target_peak_dbfs" if steps[0] is target else "mix_peak_dbfs"])

    def run(clean: np.ndarray) -> tuple[np.ndarray, list[dict[str, Any]]]:
        degraded, effects = clean, []
        for order, key, stage in steps:
            # the pipeline's own chain runner: same either/or slots (EQ kind, quantizer kind)
            degraded, fired = chains._run_chain(order, cfg[key], degraded, sr, rng, stage, cfg)
            effects += fired
        return degraded, effects

    out = chains.normalise_and_degrade(wave, run, peak, float(cfg["max_peak"]))
    info = {
        "chain": chain,
        "strength": float(strength),
        "seed": int(seed),
        "input_gain_db": round(20 * math.log10(out.input_gain), 3),
        "headroom_gain_db": round(20 * math.log10(out.headroom_gain), 3),
        "probabilities": {key: cfg[key] for _, key, _ in steps},
    }
    return out.clean, out.degraded, out.effects, info


def degrade(
    project: Project,
    session: Session,
    chain: str,
    strength: float,
    seed: int,
    progress: ProgressFn | None = None,
) -> Session:
    """Degrade the session's clean source; the clean source (at the chain's level) becomes
    the reference and the degraded signal the input to restore. ``progress(fraction,
    text)`` before each step (read, degrade, write)."""
    if session.source is None:
        raise AppError(
            "load a clean source first (Generate tab: MusicGen, a test clip or an upload)"
        )
    report = progress or (lambda fraction, text: None)
    report(0.0, "reading the source")
    wave, sr = load_audio(session.source)
    report(0.2, f"degrading ({chain})")
    reference, degraded, effects, info = degrade_wave(
        wave, sr, chain, strength, seed, project.params
    )
    report(0.8, "writing the reference and the degraded signal")
    origin = session.origin.split(", degraded")[0]
    session = session.restart(f"{origin}, degraded ({chain})")
    session.sr = sr
    session.source = session.reference = session.save("reference", reference, sr)
    session.input = session.save(f"degraded_{chain}", degraded, sr)
    session.effects, session.degrade_info = effects, info
    report(1.0, "degraded")
    return session
