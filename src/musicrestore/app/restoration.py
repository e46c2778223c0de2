"""The Restore tab: a session's input through any registered variant
(:data:`musicrestore.variants.VARIANTS`) whose models exist, any length, mono or stereo,
through :func:`musicrestore.variants.restore.restore_array` (chunked, docs/method.md#methods)
with the context the restore stage builds (:meth:`.Project.context`); the user's edits of
the variant's params (:func:`parse_params`), the T2 target group of a ``stem`` variant
(:func:`targets`, docs/method.md#targets) and per-chunk progress. Each result is kept as an
:class:`~.session.Output` of the session."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.audio import load_audio
from ..core.config import parse_json
from ..core.errors import StageError
from ..data.taxonomy import TARGETS, parse_target
from ..variants import Variant, VariantContext, get_variant
from .errors import AppError
from .project import Project
from .session import MAX_SESSION_OUTPUTS, Output, ProgressFn, Session


def targets(project: Project | None = None, name: str | None = None) -> list[str]:
    """T2 target groups a ``stem`` variant can restore (docs/method.md#targets): for
    variant ``name`` of ``project``, those :meth:`.Project.stem_targets` finds; else every
    group of the taxonomy."""
    if project is None or name is None:
        return list(TARGETS)
    return project.stem_targets(name)[0]


def parse_params(text: str | None, variant: Variant) -> dict[str, Any]:
    """The Restore tab's JSON: ``{variants key: {param: value}}`` for keys ``variant``
    reads; empty text means the defaults. Checked by the registry's merge when the context
    is built (unknown keys, wrong types, values out of range: one line)."""
    if text is None or not text.strip():
        return {}
    try:  # bounded: a deeply nested or huge text is one line, not a RecursionError
        value = parse_json(text, f"params of {variant.name}")
    except StageError as exc:
        raise AppError(str(exc)) from None
    if not isinstance(value, dict):
        raise AppError(
            f"params of {variant.name}: expected a JSON object {{key: {{param: value}}}}"
        )
    if unknown := [k for k in value if k not in variant.reads]:
        raise AppError(
            f"params of {variant.name}: unknown key(s) {', '.join(map(str, unknown))}; it "
            f"reads {', '.join(variant.reads)}"
        )
    return value


def count_chunks(variant: Variant, n_samples: int, sr: int, settings: Mapping[str, Any]) -> int:
    """How many chunks :func:`musicrestore.variants.restore.restore_array` will run (progress)."""
    from ..variants.restore import variant_chunks

    return len(variant_chunks(variant, n_samples, sr, settings["chunk_s"], settings["overlap_s"]))


def restore(
    project: Project,
    session: Session,
    name: str,
    params_text: str | None = None,
    target: str | None = None,
    progress: ProgressFn | None = None,
) -> tuple[Session, Output]:
    """Restore the session's input with variant ``name`` and keep the result as an output.

    Args:
        params_text: the variant's params as JSON (see :func:`parse_params`).
        target: T2 target group (``Voc``, ``Gtr_EG``, ...) for a ``stem`` variant; ``None``
            or empty restores the mixture.
        progress: ``progress(fraction, text)`` before each chunk.
    """
    from ..variants.restore import restore_array

    if session.input is None:
        raise AppError("nothing to restore yet: load or degrade a signal first")
    variant = get_variant(name)
    avail = project.availability()[name]
    if not avail.available:
        raise AppError(
            f"{name} needs {', '.join(avail.missing)}, which is missing: run "
            f"`{'`, `'.join(avail.commands)}` first"
        )
    if len(session.outputs) >= MAX_SESSION_OUTPUTS:
        raise AppError(
            f"this session holds {MAX_SESSION_OUTPUTS} outputs already; Reset to start over"
        )
    target = (target or "").strip() or None
    if target is not None:
        if variant.output != "stem":
            target = None  # a mixture variant ignores the target
        else:
            parse_target(target)
    if variant.output == "stem" and variant.per_target:
        have, todo = project.stem_targets(name)
        if target is None:
            raise AppError(
                f"{name} restores one stem group with that group's model: pick a target group "
                f"({', '.join(have)})"
            )
        if target not in have:
            how = (
                f"run `{todo[target]}`"
                if target in todo
                else "add it to msr.targets in params.yaml and run `dvc repro`"
            )
            raise AppError(f"{name} has no model for {target} here: {how}")
    edited = parse_params(params_text, variant)
    section = {**project.variants_params, **edited}
    ctx = project.context(variant, section, target)
    wave, sr = load_audio(session.input)
    chunking = {k: project.restore[k] for k in ("chunk_s", "overlap_s", "context_s")}
    total = count_chunks(variant, wave.shape[1], sr, chunking)

    def report(w: np.ndarray, sr_: int, c: VariantContext) -> np.ndarray:
        if progress is not None:
            progress(c.chunk_index / total, f"{name}: chunk {c.chunk_index + 1} of {total}")
        return variant.fn(w, sr_, c)

    start = time.perf_counter()
    out = restore_array(dataclasses.replace(variant, fn=report), wave, sr, ctx, **chunking)
    compute_s = time.perf_counter() - start
    if progress is not None:
        progress(1.0, f"{name}: done")
    label = name if target is None else f"{name} ({target})"
    base, k = label, 2
    while label in session.outputs:
        label, k = f"{base} #{k}", k + 1
    path = session.save(f"restored_{label}", out, sr)
    result = Output(
        label=label,
        path=path,
        variant=name,
        target=target,
        params={
            key: ctx.params if key == variant.params_key else ctx.shared[key]
            for key in variant.reads
        },
        decisions=_jsonable(ctx.decisions),
        compute_s=round(compute_s, 3),
    )
    session.outputs[label] = result
    return session, result


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: repr(o)))
