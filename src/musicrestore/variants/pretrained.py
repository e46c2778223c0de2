"""Frozen community checkpoints as T2 variants (docs/method.md#pretrained-roformers).

- ``roformer_chain``: the ICASSP 2026 MSR challenge's winning recipe (summary: arXiv
  2601.04343): per target group a chain of frozen RoFormer checkpoints, each keeping one of
  its output stems and handing it to the next: a BS-RoFormer separator (arXiv 2309.02612)
  keeps ``vocals``, a Mel-RoFormer (arXiv 2310.01809) de-reverb model keeps ``noreverb``, a
  Mel-RoFormer denoiser keeps ``dry``.
- ``msrkit_baseline``: the organisers' baseline generator, one Mel-RoFormer per group, run
  as a one-step chain. MSRKit's own unwrapped generator (its ``MelRoFormer`` class) has a
  different layout from ``bs_roformer``'s and is refused with one line; a Mel-RoFormer
  checkpoint in ZFTurbo's format (weights + YAML) per group loads.

Params (``variants.roformer_chain`` / ``variants.msrkit_baseline``): ``dir`` (the local
folder looked in first, ``pretrained/``; then the Hugging Face cache), the inference window
(``chunk_s``: null = each checkpoint's ``audio.chunk_size``; ``context_s``; ``batch_size``),
``default`` (a chain: a list of steps, or one step) and one key per T2 group (null: the
default chain). A step is ``{file, config, stem, repo, file_url, config_url}``: the weights
and YAML file names, the output stem kept, the Hugging Face repo holding both (or null) and
the URLs they are published at otherwise (for the download command only).

Chunking: the file runner hands each call one chunk of ``chunk_s`` (20 s, registration) with
context and cross-fades; inside it, each checkpoint runs in windows of its own training
length with context and Hann cross-fades (:meth:`~musicrestore.separation.roformer.RoformerModel.stem`),
so memory is bounded and the output has no seams. Models load once per run (cached on the
context) on ``ctx.device``. The pipeline restores with these variants only where
:func:`missing_checkpoints` is empty: no network is needed to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.paths import plain_name
from ..data.taxonomy import TARGETS
from .registry import VariantContext, VariantError, get_variant, register, resolve_params


@dataclass(frozen=True)
class Step:
    """One checkpoint of a chain and the stem kept from it."""

    file: str
    config: str
    stem: str
    repo: str | None = None
    file_url: str | None = None
    config_url: str | None = None


_STEP_KEYS = ("file", "config", "stem", "repo", "file_url", "config_url")

#: The MSR challenge winner's vocal chain (docs/method.md#pretrained-roformers): viperx's
#: BS-RoFormer (UVR release), anvuew's Mel-RoFormer de-reverb (Hugging Face), aufr33's
#: Mel-RoFormer denoiser (ZFTurbo's release v.1.0.7).
WINNER_CHAIN: list[dict[str, Any]] = [
    {
        "file": "model_bs_roformer_ep_317_sdr_12.9755.ckpt",
        "config": "model_bs_roformer_ep_317_sdr_12.9755.yaml",
        "stem": "vocals",
        "repo": None,
        "file_url": "https://github.com/TRvlvr/model_repo/releases/download/"
        "all_public_uvr_models/model_bs_roformer_ep_317_sdr_12.9755.ckpt",
        "config_url": "https://raw.githubusercontent.com/ZFTurbo/Music-Source-Separation-"
        "Training/main/configs/viperx/model_bs_roformer_ep_317_sdr_12.9755.yaml",
    },
    {
        "file": "dereverb_mel_band_roformer_anvuew_sdr_19.1729.ckpt",
        "config": "dereverb_mel_band_roformer_anvuew.yaml",
        "stem": "noreverb",
        "repo": "anvuew/dereverb_mel_band_roformer",
        "file_url": None,
        "config_url": None,
    },
    {
        "file": "denoise_mel_band_roformer_aufr33_sdr_27.9959.ckpt",
        "config": "model_mel_band_roformer_denoise.yaml",
        "stem": "dry",
        "repo": None,
        "file_url": "https://github.com/ZFTurbo/Music-Source-Separation-Training/releases/"
        "download/v.1.0.7/denoise_mel_band_roformer_aufr33_sdr_27.9959.ckpt",
        "config_url": "https://github.com/ZFTurbo/Music-Source-Separation-Training/releases/"
        "download/v.1.0.7/model_mel_band_roformer_denoise.yaml",
    },
]

_WINDOW: dict[str, Any] = {
    "dir": "pretrained",  # looked in first; then the Hugging Face cache
    "chunk_s": None,  # model window; null = each checkpoint's audio.chunk_size
    "context_s": 1.0,  # extra audio each side of a window; the cross-fade spans as much
    "batch_size": 1,  # windows per forward pass
}

#: ``variants.roformer_chain``: the winner's chain for every group unless overridden.
CHAIN_DEFAULTS: dict[str, Any] = {
    **_WINDOW,
    "default": WINNER_CHAIN,
    **{t: None for t in TARGETS},
}
#: ``variants.msrkit_baseline``: one Mel-RoFormer per group; none is configured by default
#: (the organisers publish theirs in MSRKit's own layout, see the module docstring).
MSRKIT_DEFAULTS: dict[str, Any] = {**_WINDOW, "default": None, **{t: None for t in TARGETS}}


@register(
    "roformer_chain",
    description="MSR challenge winner: frozen community RoFormers per group, chained "
    "(separate -> de-reverb -> denoise), each keeping one stem",
    output="stem",
    chunk_s=20.0,
    defaults=CHAIN_DEFAULTS,
    tasks=("T2",),
    pretrained=True,
)
def roformer_chain(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    return _run(wave, sr, ctx, "roformer_chain")


@register(
    "msrkit_baseline",
    description="MSR challenge baseline (MSRKit): one Mel-RoFormer generator per group",
    output="stem",
    chunk_s=20.0,
    defaults=MSRKIT_DEFAULTS,
    tasks=("T2",),
    pretrained=True,
)
def msrkit_baseline(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    return _run(wave, sr, ctx, "msrkit_baseline")


def chain_for(key: str, params: Mapping[str, Any], target: str) -> list[Step]:
    """The checked steps of ``target``'s chain (its own, else ``default``); a chain that is
    missing or malformed is a one-line :class:`VariantError` naming the params key."""
    if target not in TARGETS:
        raise VariantError(
            f"variants.{key}: unknown target {target!r}; one of {', '.join(TARGETS)}"
        )
    own = params.get(target)
    where = f"variants.{key}.{target if own is not None else 'default'}"
    chain = own if own is not None else params.get("default")
    if chain is None:
        raise VariantError(
            f"{where}: no checkpoint configured for {target}; give a chain of "
            "{file, config, stem} steps (docs/method.md#pretrained-roformers)"
        )
    if isinstance(chain, Mapping):
        chain = [chain]
    if not isinstance(chain, list) or not chain:
        raise VariantError(f"{where}: expected a step or a non-empty list of steps")
    return [_step(item, f"{where}[{i}]") for i, item in enumerate(chain)]


def missing_checkpoints(
    variant_name: str,
    variants_params: Mapping[str, Any] | None,
    targets: Iterable[str] | None = None,
) -> list[str]:
    """What ``variant_name`` needs and does not find locally or in the Hugging Face cache,
    one line each with the command that fetches it; empty when it can run. Never touches the
    network.

    Args:
        variant_name: ``"roformer_chain"`` or ``"msrkit_baseline"`` (any other variant: ``[]``).
        variants_params: ``params["variants"]`` (``None``: the registered defaults).
        targets: the T2 groups to check (default: every group).
    """
    from ..separation.roformer import cached_file, download_command

    if variant_name not in ("roformer_chain", "msrkit_baseline"):
        return []
    variant = get_variant(variant_name)
    params, _ = resolve_params(variant, variants_params)
    folder = params["dir"]
    out: list[str] = []
    for target in TARGETS if targets is None else targets:
        try:
            steps = chain_for(variant.params_key, params, target)
        except VariantError as exc:
            out.append(str(exc))
            continue
        for step in steps:
            need = [
                (name, url)
                for name, url in ((step.file, step.file_url), (step.config, step.config_url))
                if cached_file(name, folder, step.repo) is None
            ]
            if need:
                line = (
                    f"{', '.join(n for n, _ in need)} (for {target}): "
                    f"{download_command(need, folder, step.repo)}"
                )
                if line.split(" (for ")[0] not in {o.split(" (for ")[0] for o in out}:
                    out.append(line)
    return out


# ------------------------------------------------------------------------------- helpers


def _run(wave: np.ndarray, sr: int, ctx: VariantContext, key: str) -> np.ndarray:
    p = ctx.params
    if ctx.target is None:
        raise VariantError(f"{key} restores a T2 target stem: give a target (--target Voc, ...)")
    if p["batch_size"] < 1 or p["context_s"] < 0:
        raise VariantError(f"variants.{key}: batch_size >= 1 and context_s >= 0 expected")
    chunk_s = p["chunk_s"]
    if chunk_s is not None and (not isinstance(chunk_s, int | float) or chunk_s <= 0):
        raise VariantError(f"variants.{key}.chunk_s: got {chunk_s!r}; expected null or > 0")
    steps = chain_for(key, p, ctx.target)
    ctx.record("chain", [f"{s.file}:{s.stem}" for s in steps])
    out = wave
    for step in steps:
        model = _model(ctx, step, p["dir"])
        out = model.stem(
            out,
            sr,
            step.stem,
            chunk_s=chunk_s,
            context_s=float(p["context_s"]),
            batch_size=int(p["batch_size"]),
        )
    return out


def _model(ctx: VariantContext, step: Step, folder: str | None) -> Any:
    """The step's loaded model, cached on the context's shared model cache (as ``ctx.model``
    caches the project's own checkpoints), so a run loads each checkpoint once."""
    from ..separation.roformer import fetch_file, load_roformer

    key = f"roformer:{folder}:{step.repo}:{step.file}:{step.config}:{ctx.device}"
    cache = ctx._cache.models  # shared by every derived context of the run
    if key not in cache:
        weights = fetch_file(step.file, folder, step.repo, step.file_url)
        config = fetch_file(step.config, folder, step.repo, step.config_url)
        cache[key] = load_roformer(weights, config, ctx.device)
    return cache[key]


def _step(item: Any, where: str) -> Step:
    if not isinstance(item, Mapping):
        raise VariantError(f"{where}: got {item!r}; expected a mapping {{file, config, stem}}")
    unknown = [k for k in item if k not in _STEP_KEYS]
    if unknown:
        raise VariantError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(_STEP_KEYS)}"
        )
    for k in ("file", "config", "stem"):
        if not isinstance(item.get(k), str) or not item[k]:
            raise VariantError(f"{where}.{k}: got {item.get(k)!r}; expected a name")
    for k in ("repo", "file_url", "config_url"):
        if item.get(k) is not None and not isinstance(item[k], str):
            raise VariantError(f"{where}.{k}: got {item[k]!r}; expected a string or null")
    plain_name(item["file"], f"{where}.file")
    plain_name(item["config"], f"{where}.config")
    return Step(
        file=item["file"],
        config=item["config"],
        stem=item["stem"],
        repo=item.get("repo"),
        file_url=item.get("file_url"),
        config_url=item.get("config_url"),
    )


__all__ = ["CHAIN_DEFAULTS", "MSRKIT_DEFAULTS", "Step", "chain_for", "missing_checkpoints"]
