"""The one registry of restoration variants (docs/method.md#methods).

A variant is a function ``fn(wave, sr, ctx) -> wave`` with ``wave`` float32 ``(C, T)`` at
``sr`` Hz in and out (same shape). Everything else a variant needs arrives through its
:class:`VariantContext`: its own params (``params["variants"][params_key]`` merged over the
defaults declared at registration), the T2 target group, a lazily built source separator,
lazily loaded learned models and a place to record decisions (``adaptive`` records whether
it separated, and why). The CLI, the restore stage, the benchmark and the tests all iterate
:data:`VARIANTS`, so a variant registered here is restored, timed and tested everywhere.

Registration metadata also tells :mod:`musicrestore.variants.restore` how to run a variant on long
inputs (``pointwise``, ``chunk_s``: every variant is streamed in bounded chunks, none
sees a whole file) and tells the pipeline which params and artifacts a
variant reads (``params_key`` + ``uses``, ``needs_separator``, ``checkpoint``), so the DVC
stage of each variant can declare exactly its own dependencies.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from ..core import config
from ..core.config import ConfigError
from ..core.errors import StageError
from ..separation import Separator, target_source

OutputKind = Literal["mixture", "stem"]


class VariantError(StageError):
    """A wrong variant name, unknown params key, or a variant that cannot run; one line."""


VariantFn = Callable[[np.ndarray, int, "VariantContext"], np.ndarray]


@dataclass(frozen=True)
class Variant:
    """One registered restoration variant.

    Attributes:
        name: registry key and output folder name (``data/restored/<name>/...``).
        fn: ``fn(wave (C, T), sr, ctx) -> (C, T)``.
        description: one line for ``--list`` and reports.
        params_key: the key it reads under ``params["variants"]``.
        output: ``"stem"`` when, given ``ctx.target`` (T2), it returns the restored target
            stem; ``"mixture"`` when it always returns a restored mix.
        needs_separator: calls ``ctx.separator()``.
        uses: other ``variants`` keys whose params it reads as well (``demucs_dsp`` reuses the
            ``dsp_direct`` chain so both are compared with the same numbers).
        checkpoint: name of the learned model it loads through ``ctx.model(...)``, if any;
            :func:`musicrestore.variants.restore.warm_up` loads it before timing starts. The pipeline
            makes the restore stage depend on ``models/<checkpoint>``.
        separates_mixture: it separates the mixture it is given, as it is (``demucs``,
            ``demucs_dsp``, ``adaptive``): the pipeline hands it the stems the ``separate``
            stage stored (:mod:`musicrestore.separation.stored`) instead of separating again.
        pretrained: it runs checkpoints downloaded by the user into ``pretrained/`` (or the
            HF cache; ``roformer_chain``): its restore stage depends on that folder and is
            skipped, with a note in the report, while they are absent.
        per_target: the checkpoint is a folder of one model per T2 target group
            (``uformer``, seed 004 §4): the variant loads ``ctx.model(v.model_name(target))``
            = ``<checkpoint>/<target>`` (cached after the first example of the group).
        chunk_s: preferred chunk length for long inputs; ``None`` takes the restore default.
        pointwise: each output sample depends on its own input sample only (``identity``):
            the runner streams it in blocks of ``chunk_s`` without overlap, context or
            fades, so the output is bit-exact whatever the chunking. Every other variant is
            cut into cross-faded chunks with context. No variant runs on a whole file: a
            file of any length is restored in memory bounded by the chunk length
            (docs/method.md#methods).
        defaults: default params; ``ctx.params`` is these updated with the configured ones.
        tasks: the tasks whose test sets the pipeline restores with it (``"T1"`` generative
            artifacts, ``"T2"`` source restoration, ``"T3"`` MusicGen samples); a model
            trained per stem group (``uformer``) applies to ``("T2",)`` only.
    """

    name: str
    fn: VariantFn
    description: str
    params_key: str
    output: OutputKind = "mixture"
    needs_separator: bool = False
    uses: tuple[str, ...] = ()
    checkpoint: str | None = None
    chunk_s: float | None = None
    pointwise: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[str, ...] = ("T1", "T2", "T3")
    per_target: bool = False
    separates_mixture: bool = False
    pretrained: bool = False

    def __call__(self, wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
        return self.fn(wave, sr, ctx)

    def model_name(self, target: str | None = None) -> str | None:
        """What it passes to ``ctx.model``: ``checkpoint``, or ``<checkpoint>/<target>`` for
        a per-target model (``None`` without a checkpoint, or per target without one)."""
        if self.checkpoint is None or not self.per_target:
            return self.checkpoint
        return None if target is None else f"{self.checkpoint}/{target}"

    @property
    def reads(self) -> tuple[str, ...]:
        """Every ``variants.<key>`` this variant reads (its own first): its DVC params."""
        return (self.params_key, *(k for k in self.uses if k != self.params_key))


#: name -> Variant, in registration order (the order of ``--list`` and of reports).
VARIANTS: dict[str, Variant] = {}


def register(
    name: str,
    *,
    description: str,
    output: OutputKind = "mixture",
    params_key: str | None = None,
    needs_separator: bool = False,
    uses: tuple[str, ...] = (),
    checkpoint: str | None = None,
    chunk_s: float | None = None,
    pointwise: bool = False,
    defaults: Mapping[str, Any] | None = None,
    tasks: tuple[str, ...] = ("T1", "T2", "T3"),
    per_target: bool = False,
    separates_mixture: bool = False,
    pretrained: bool = False,
) -> Callable[[VariantFn], VariantFn]:
    """Decorator adding ``fn`` to :data:`VARIANTS` under ``name`` (see :class:`Variant`)."""
    if output not in ("mixture", "stem"):
        raise ValueError(f"variant {name}: output must be 'mixture' or 'stem', got {output!r}")
    if per_target and (checkpoint is None or tuple(tasks) != ("T2",)):
        raise ValueError(f"variant {name}: a per-target model needs a checkpoint and tasks ('T2',)")

    def deco(fn: VariantFn) -> VariantFn:
        if name in VARIANTS:
            raise ValueError(f"variant {name!r} is registered twice")
        VARIANTS[name] = Variant(
            name=name,
            fn=fn,
            description=" ".join(description.split()),
            params_key=params_key or name,
            output=output,
            needs_separator=needs_separator,
            uses=tuple(uses),
            checkpoint=checkpoint,
            chunk_s=chunk_s,
            pointwise=pointwise,
            defaults=copy.deepcopy(dict(defaults or {})),
            tasks=tuple(tasks),
            per_target=per_target,
            separates_mixture=separates_mixture,
            pretrained=pretrained,
        )
        return fn

    return deco


def get_variant(name: str) -> Variant:
    """The variant called ``name``; a wrong name raises a one-line error listing the names."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise VariantError(
            f"unknown variant {name!r}; choose from: {', '.join(VARIANTS)}"
        ) from None


class VariantParamsError(VariantError, ConfigError):
    """A ``variants.<key>`` value that is unknown, of the wrong type or out of range."""


#: Bounds every variant's params obey, by key name (``fnmatch`` patterns over the dotted path
#: below ``variants.<key>``): the conventions of the DSP blocks' signatures. STFT sizes,
#: filter orders, block lengths, iteration counts, windows and corner frequencies are
#: positive; durations in ms are not negative; percentiles and fractions have their ranges.
#: Levels and gains in dB stay in [-120, 40] and gains applied to the signal (``*gain_db``)
#: in [-60, 24], so no edit can turn a restoration into a signal at 1e9 (a +200 dB gain);
#: thresholds are levels in dBFS (<= 0); compressor and gate ratios are >= 1 (pedalboard's
#: own limit) and <= 100; frequencies stay below 96 kHz. Every pattern that matches applies.
#: A wrong value fails when the params are read instead of as a NumPy traceback mid-run.
VARIANT_POSITIVE = (
    "*n_fft",
    "*hop",
    "*block",
    "*order",
    "*cycles",
    "*n_iter",
    "*_s",
    "*_hz",
    "*_components",
    "*_ratio",
)
VARIANT_RANGES: dict[str, Any] = {
    "*_ms": (0.0, None),
    "*percentile": (0.0, 100.0, "a percentile"),
    "*smoothing": (0.0, 1.0, "a fraction"),
    "*decision_directed": (0.0, 1.0, "a fraction"),
    "*prop_decrease": (0.0, 1.0, "a fraction"),
    "*mask_floor": (0.0, 1.0, "a fraction"),
    "*gain_db": (-60.0, 24.0, "a gain in dB"),  # the specific patterns first: the first
    "*threshold_db": (-120.0, 0.0, "a level in dBFS"),  # one that fails names the value
    "*_db": (-120.0, 40.0, "a level or gain in dB"),
    "*_ratio": (1.0, 100.0, "a ratio"),
    "*_hz": (0.0, 96000.0, "a frequency in Hz"),
}


def merge_params(
    defaults: Mapping[str, Any], given: Mapping[str, Any] | None, where: str
) -> dict[str, Any]:
    """``defaults`` updated with ``given``, recursively, through :func:`musicrestore.core.config.merge`:
    keys not in ``defaults``, wrong types and values outside :data:`VARIANT_POSITIVE` /
    :data:`VARIANT_RANGES` are a one-line :class:`VariantParamsError` naming the key path.

    An unknown key is almost always a typo in ``params.yaml`` that would otherwise be
    silently ignored, so it fails loudly with the accepted keys.
    """
    try:
        return config.merge(
            defaults, given, where, positive=VARIANT_POSITIVE, ranges=VARIANT_RANGES
        )
    except ConfigError as exc:
        raise VariantParamsError(str(exc)) from None


def resolve_params(
    variant: Variant, variants_params: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(own params, {used key: its params})`` from a ``variants:`` section (or defaults)."""
    try:
        section = config.as_mapping(variants_params, "variants")
    except ConfigError as exc:
        raise VariantParamsError(str(exc)) from None
    own = merge_params(
        variant.defaults, section.get(variant.params_key), f"variants.{variant.params_key}"
    )
    shared: dict[str, dict[str, Any]] = {}
    for key in variant.uses:
        owner = next((v for v in VARIANTS.values() if v.params_key == key), None)
        if owner is None:
            raise VariantError(f"variant {variant.name} uses unknown params key {key!r}")
        shared[key] = merge_params(owner.defaults, section.get(key), f"variants.{key}")
    return own, shared


class _Cache:
    """Objects shared by every context derived from one :func:`build_context` call."""

    def __init__(self) -> None:
        self.separator: Separator | None = None
        self.models: dict[str, Any] = {}
        self.warmed: set[str | None] = set()  # targets warm_up has run for (restore.py)


@dataclass
class VariantContext:
    """Everything a variant may need besides the audio; cheap to copy per example.

    Attributes:
        params: this variant's params (defaults merged with ``params["variants"][key]``).
        target: the T2 target (``"Voc"``, ``"Gtr_EG"``), or ``None`` for T1/T3.
        shared: params of the other ``variants`` keys the variant declared in ``uses``.
        separator_factory: builds the separator on first ``separator()`` call.
        models_dir: where ``model(name)`` looks for checkpoints.
        model_loader: ``loader(name, models_dir) -> model``; set by whoever adds learned
            variants (their checkpoint format lives with them, not here).
        source_map: ``(target, separator sources) -> source`` (default
            :func:`musicrestore.separation.target_source`, which knows 6-source models).
        device: ``"cpu"`` or ``"cuda"`` for learned models.
        chunk_index: which chunk of a long input is being processed (set by ``restore``).
        decisions: what the variant recorded for the current example (see :meth:`record`).
    """

    params: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    shared: dict[str, dict[str, Any]] = field(default_factory=dict)
    separator_factory: Callable[[], Separator] | None = None
    models_dir: Path | None = None
    model_loader: Callable[[str, Path | None], Any] | None = None
    source_map: Callable[[str, Sequence[str]], str] = target_source
    device: str = "cpu"
    chunk_index: int = 0
    decisions: dict[str, Any] = field(default_factory=dict)
    _cache: _Cache = field(default_factory=_Cache, repr=False)

    def separator(self) -> Separator:
        """The source separator, built once and shared by every derived context."""
        if self._cache.separator is None:
            if self.separator_factory is None:
                raise VariantError(
                    "this variant needs a source separator but none is configured "
                    "(pass --separator MODEL [--separator-repo DIR])"
                )
            self._cache.separator = self.separator_factory()
        return self._cache.separator

    def model(self, name: str) -> Any:
        """The learned model ``name``, loaded once from ``models_dir`` and cached."""
        if name not in self._cache.models:
            if self.model_loader is None:
                raise VariantError(
                    f"model {name!r} is needed but no model loader is configured "
                    f"(models_dir={self.models_dir})"
                )
            self._cache.models[name] = self.model_loader(name, self.models_dir)
        return self._cache.models[name]

    def target_source(self) -> str | None:
        """The separator source that holds ``target`` (``None`` on T1/T3)."""
        if self.target is None:
            return None
        return self.source_map(self.target, self.separator().sources)

    def params_of(self, key: str) -> dict[str, Any]:
        """Params of another ``variants`` key; only keys declared in ``uses`` are available,
        so the DVC stage's declared params stay exactly what the variant reads."""
        if key not in self.shared:
            raise VariantError(f"params of {key!r} are not available; declare it in `uses`")
        return self.shared[key]

    def record(self, key: str, value: Any) -> None:
        """Record a decision (JSON-serialisable) for this example; ends up in decisions.json."""
        self.decisions[key] = value

    def derive(self, **changes: Any) -> VariantContext:
        """A copy with ``changes`` and fresh decisions that shares the separator/model cache."""
        changes.setdefault("decisions", {})
        return replace(self, **changes)

    def cold(self) -> VariantContext:
        """A copy with an empty cache: what is sent to Dask workers, each of which then
        builds the separator and loads the models once for itself."""
        return replace(self, decisions={}, _cache=_Cache())


def build_context(
    variant: Variant | str,
    variants_params: Mapping[str, Any] | None = None,
    *,
    target: str | None = None,
    separator_factory: Callable[[], Separator] | None = None,
    models_dir: str | Path | None = None,
    model_loader: Callable[[str, Path | None], Any] | None = None,
    source_map: Callable[[str, Sequence[str]], str] | None = None,
    device: str = "cpu",
) -> VariantContext:
    """A :class:`VariantContext` for ``variant`` from a ``variants:`` params section.

    Args:
        variant: a :class:`Variant` or its name.
        variants_params: ``params["variants"]``; ``None`` runs on the registered defaults.
        target: T2 target group, or ``None``.
        separator_factory: zero-argument callable returning a :class:`Separator`.
        models_dir: folder of learned checkpoints.
        model_loader: ``loader(name, models_dir)``; with a ``models_dir`` and no loader,
            ``musicrestore.models.checkpoint.load_model(folder, device)`` -> ``(net, config)``, the
            folder being ``models_dir/<name>``, or ``models_dir`` itself when it is named
            ``<name>`` and has no such subfolder (the pipeline passes ``models/<name>``).
            ``name`` may be a sub-path (``uformer/Voc``, a per-target model): then
            ``models_dir/uformer/Voc``, or ``models_dir/Voc`` when ``models_dir`` is the
            ``uformer`` folder itself.
        source_map: ``(target, sources) -> source``; default ``separation.target_source``.
        device: torch device for learned models.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    own, shared = resolve_params(variant, variants_params)
    if model_loader is None and models_dir is not None:

        def load_checkpoint(name: str, folder: Path | None) -> Any:
            from ..models import checkpoint  # torch only when a learned variant runs

            assert folder is not None
            parts = PurePosixPath(name).parts
            if not parts or any(p in ("", ".", "..") for p in parts) or name.startswith("/"):
                raise VariantError(f"bad model name {name!r}")
            if folder.name != parts[0] or (folder / parts[0]).is_dir():
                folder = folder.joinpath(*parts)
            else:  # models_dir is the model's (or the per-target models') folder itself
                folder = folder.joinpath(*parts[1:])
            return checkpoint.load_model(folder, device)

        model_loader = load_checkpoint

    ctx = VariantContext(
        params=own,
        target=target,
        shared=shared,
        separator_factory=separator_factory,
        models_dir=Path(models_dir) if models_dir is not None else None,
        model_loader=model_loader,
        device=device,
    )
    if source_map is not None:
        ctx.source_map = source_map
    return ctx


@register(
    "identity",
    description="the degraded input unchanged: the floor every variant is measured against",
    pointwise=True,  # streamed block by block, bit-exact: no fades to round the copy
)
def identity(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    return wave.copy()
