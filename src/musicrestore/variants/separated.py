"""Variants that separate the mixture into sources first (docs/method.md#separator).

- ``demucs_dsp`` (seed 001, §3.2): separate into the separator's stems (vocals, drums, bass,
  other), run the seed's DSP chain (:func:`musicrestore.variants.dsp.dsp_chain`, with the
  ``dsp_direct`` params so both are compared with the same numbers) on each stem, remix.
- ``demucs_snmf`` (seed 000, §3 baseline): pre-clean the mixture, upmix to stereo, separate,
  semi-supervised NMF per stem (:mod:`musicrestore.variants.snmf`), recombine.
- ``adaptive`` (seed 001, §5 future work): "apply separation only to tracks with multiple
  meaningful stems". We measure each separated stem's energy relative to the mixture and
  separate-and-process only when at least ``min_active`` stems are above ``threshold_db``;
  otherwise the chain runs on the mixture directly, as ``dsp_direct`` does. The decision, the
  stem levels and the reason are recorded through ``ctx.record``.
- ``demucs`` (the MSR baseline of seed 004): the separated stem of the target group, no
  restoration.

On T2 (``ctx.target`` set) each returns the (restored) stem of the separator source that
holds the target (``ctx.target_source()``, e.g. ``Gtr_EG -> other``) and processes only that
stem; on T1/T3 it returns the remix. For ``demucs`` on T1 the remix is separation followed by
summation, which measures what the separator's errors alone do to a mix.

The separator comes from ``ctx.separator()``; variants never build one themselves, so a run
shares one model across all examples and tests can pass a tiny stand-in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.audio import set_channels
from ..core.config import kwargs_defaults
from ..dsp.preclean import preclean
from .dsp import dsp_chain
from .registry import VariantContext, VariantError, register
from .snmf import snmf_denoise


def separate(wave: np.ndarray, sr: int, ctx: VariantContext) -> dict[str, np.ndarray]:
    """``ctx.separator().separate`` with its promises checked: ``{source: (C, T)}``, same
    shape as ``wave``, float32."""
    stems = ctx.separator().separate(wave, sr)
    out = {}
    for name, stem in stems.items():
        stem = np.asarray(stem, np.float32)
        if stem.shape != wave.shape:
            raise VariantError(
                f"separator returned {name} with shape {stem.shape}, expected {wave.shape}"
            )
        out[name] = stem
    if not out:
        raise VariantError("separator returned no stems")
    return out


def _target_stem_name(stems: dict[str, np.ndarray], ctx: VariantContext) -> str:
    source = ctx.target_source()
    if source not in stems:
        raise VariantError(
            f"target {ctx.target} maps to source {source!r}, but the separator gives {sorted(stems)}"
        )
    return source


def _remix(stems: dict[str, np.ndarray]) -> np.ndarray:
    return np.sum(np.stack(list(stems.values())), axis=0).astype(np.float32)


def _process_stems(stems: dict[str, np.ndarray], ctx: VariantContext, fn: Any) -> np.ndarray:
    """``fn`` on the target's stem (T2) or on every stem, remixed (T1/T3)."""
    if ctx.target is not None:
        name = _target_stem_name(stems, ctx)
        return fn(stems[name])
    return _remix({name: fn(stem) for name, stem in stems.items()})


@register(
    "demucs_dsp",
    description="seed 001: separate, the dsp_direct chain on each stem, remix (T2: target stem)",
    output="stem",
    needs_separator=True,
    separates_mixture=True,
    uses=("dsp_direct",),
)
def demucs_dsp(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    chain = ctx.params_of("dsp_direct")
    stems = separate(wave, sr, ctx)
    return _process_stems(stems, ctx, lambda s: dsp_chain(s, sr, **chain))


#: ``variants.demucs_snmf``: whether to pre-clean first, then :func:`snmf_denoise`'s params.
SNMF_DEFAULTS: dict[str, Any] = {"preclean": True, **kwargs_defaults(snmf_denoise)}


@register(
    "demucs_snmf",
    description="seed 000 baseline: pre-clean, upmix, separate, semi-supervised NMF per stem",
    output="stem",
    needs_separator=True,
    uses=("preclean",),
    defaults=SNMF_DEFAULTS,
)
def demucs_snmf(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    params = dict(ctx.params)
    if params.pop("preclean"):
        info: dict[str, Any] = {}
        wave = preclean(wave, sr, **ctx.params_of("preclean"), info=info)
        for key, value in info.items():
            ctx.record(f"preclean_{key}", value)
    channels = wave.shape[0]
    stereo = set_channels(wave, 2)  # the seed separates in stereo; mono comes back mono
    stems = separate(stereo, sr, ctx)
    out = _process_stems(stems, ctx, lambda s: snmf_denoise(s, sr, **params))
    return set_channels(out, channels)


def stem_levels_db(wave: np.ndarray, stems: dict[str, np.ndarray]) -> dict[str, float]:
    """Energy of each stem relative to the mixture, in dB (``-inf`` for silence)."""
    mix = float(np.sum(wave.astype(np.float64) ** 2))
    out = {}
    for name, stem in stems.items():
        energy = float(np.sum(stem.astype(np.float64) ** 2))
        out[name] = 10.0 * np.log10(energy / mix) if energy > 0 and mix > 0 else float("-inf")
    return out


@register(
    "adaptive",
    description="seed 001 future work: separate-and-process only if >1 stem carries energy, "
    "else the chain on the mix",
    output="stem",
    needs_separator=True,
    separates_mixture=True,
    uses=("dsp_direct",),
    defaults={"threshold_db": -20.0, "min_active": 2},
)
def adaptive(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    threshold_db = float(ctx.params["threshold_db"])
    min_active = int(ctx.params["min_active"])
    chain = ctx.params_of("dsp_direct")
    stems = separate(wave, sr, ctx)
    levels = stem_levels_db(wave, stems)
    active = sorted(name for name, level in levels.items() if level > threshold_db)
    split = len(active) >= min_active
    ctx.record("separated", split)
    ctx.record("active_stems", active)
    ctx.record(
        "stem_levels_db",
        {k: round(float(v), 2) if np.isfinite(v) else None for k, v in levels.items()},
    )
    ctx.record(
        "reason",
        f"{len(active)} stem(s) above {threshold_db:g} dB re mix "
        f"({'>=' if split else '<'} {min_active})",
    )
    if split:
        return _process_stems(stems, ctx, lambda s: dsp_chain(s, sr, **chain))
    if ctx.target is not None:
        name = _target_stem_name(stems, ctx)
        if name not in active and active:
            # The mix is another source playing solo: the mixture is not the target, the
            # (near-silent) separated target stem is the honest estimate.
            ctx.record("output", f"separated {name} stem (not the solo source)")
            return dsp_chain(stems[name], sr, **chain)
    ctx.record("output", "chain on the mixture")
    return dsp_chain(wave, sr, **chain)


@register(
    "demucs",
    description="MSR baseline: the separated target stem, unrestored (T1/T3: the stems remixed)",
    output="stem",
    needs_separator=True,
    separates_mixture=True,
)
def demucs(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    stems = separate(wave, sr, ctx)
    return _process_stems(stems, ctx, lambda s: s)
