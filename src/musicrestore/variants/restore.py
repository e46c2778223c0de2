"""Run a restoration variant on arrays, files, folders and datasets (docs/method.md#methods).

Every variant of :data:`musicrestore.variants.VARIANTS` has one signature, so this module is
the only place that deals with length, memory, I/O and timing:

- :func:`restore_array`: any length, mono or stereo, any sample rate. Long inputs are cut
  into chunks that overlap by ``overlap_s``; each chunk is processed with ``context_s`` of
  extra audio on both sides (then cropped), and neighbouring chunks are cross-faded with
  complementary raised-cosine ramps, so working memory is bounded by the chunk length and
  there are no seams. Every variant is chunked: a variant may ask for its own chunk length
  (``chunk_s``), and a ``pointwise`` one (``identity``) is streamed in plain blocks, without
  overlap, context or fades, so it stays bit-exact. The learned models chunk again inside
  each chunk (:mod:`musicrestore.models.inference`). Output length always equals input
  length; a wrong shape or a NaN/Inf sample from a variant is an error, never written.
  The engine is :mod:`musicrestore.core.chunks`, the one the learned networks' inference
  uses too: this module plans the regions (:func:`variant_chunks`) and checks each
  variant's output.
- :func:`restore_file`: the same engine streaming from one file to another, written
  atomically. The file is never fully in memory, for every variant: what is read at once
  is one chunk plus its context, so peak memory does not grow with the file's length
  (``benchmarks/bench_memory.py`` measures it; ``tests/test_restore.py`` checks the reads).
- :func:`restore_dataset`: every example of a dataset (:mod:`musicrestore.data.dataset`) ->
  ``{id}.wav`` at the mixture's rate and length, plus ``decisions.json`` (what the variant
  recorded per example); the timings (real-time factor) are returned, never written there.
- the command line, ``python -m musicrestore restore --variant NAME IN OUT``, is
  :mod:`musicrestore.cli`.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..compute import Engine
from ..core import config
from ..core.audio import (
    AUDIO_SUFFIXES,
    atomic_path,
    check_audio,
    encode_audio,
    load_audio,
    open_audio,
    open_for_writing,
    read_block,
    validate_wave,
    write_bytes,
)
from ..core.chunks import plan_chunks, run_chunks
from ..core.config import ConfigError
from ..core.errors import AudioError, StageError
from ..core.paths import plain_name
from ..data.dataset import MANIFEST, read_manifest
from . import Separator, Variant, VariantContext, get_variant

log = logging.getLogger(__name__)

#: The ``restore:`` params block: how long inputs are cut, and which separator to use.
RESTORE_DEFAULTS: dict[str, Any] = {
    "chunk_s": 30.0,  # chunk length for variants without their own preference
    "overlap_s": 1.0,  # cross-faded between neighbouring chunks
    "context_s": 0.5,  # extra audio each side of a chunk, processed then cropped
    "separator_model": "trained",  # separation.load_separator(model, repo=<separator dir>)
    "device": "cpu",  # torch device for the separator and learned models
}

DECISIONS_FILE = "decisions.json"


class RestoreError(StageError):
    """A variant broke its contract (wrong shape, NaN/Inf) or an input cannot be restored."""


def restore_settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """``restore:`` params merged over :data:`RESTORE_DEFAULTS` by
    :func:`musicrestore.core.config.merge`: unknown keys, wrong types (``chunk_s: "abc"``), a
    chunk under 0.1 s, an overlap or context over half a chunk (the cross-fade and the
    context would then reach past the neighbouring chunk) and a device torch does not know
    are a one-line :class:`~musicrestore.core.config.ConfigError` naming ``restore.<key>``."""
    settings: dict[str, Any] = config.merge(
        RESTORE_DEFAULTS,
        section,
        "restore",
        ranges={"chunk_s": (0.1, None), "overlap_s": (0.0, None), "context_s": (0.0, None)},
        checks={"device": config.device_problem},
    )
    for key in ("overlap_s", "context_s"):
        if settings[key] > settings["chunk_s"] / 2:
            raise ConfigError(
                f"restore.{key}: got {settings[key]!r}; expected at most chunk_s / 2 "
                f"= {settings['chunk_s'] / 2:g}"
            )
    return settings


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; other names unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ----------------------------------------------------------------------------- the engine


def _call_variant(variant: Variant, wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    out = np.asarray(variant(wave, sr, ctx))
    if out.shape != wave.shape:
        raise RestoreError(
            f"variant {variant.name} returned shape {out.shape} for an input of shape {wave.shape}"
        )
    if not np.isfinite(out).all():
        raise RestoreError(f"variant {variant.name} produced NaN/Inf samples")
    return np.asarray(out, dtype=np.float32)  # the engine fades a copy, never the input


def variant_chunks(
    variant: Variant, total: int, sr: int, chunk_s: float, overlap_s: float
) -> list[tuple[int, int]]:
    """The regions :func:`restore_array` runs ``variant`` on for ``total`` samples at ``sr``:
    :func:`~musicrestore.core.chunks.plan_chunks` of the variant's own ``chunk_s`` (or
    ``chunk_s``) overlapping by ``overlap_s``, or by nothing for a ``pointwise`` variant.
    A signal no longer than the chunk is one region, processed whole."""
    chunk = max(1, int(round((variant.chunk_s or chunk_s) * sr)))
    return plan_chunks(total, chunk, 0 if variant.pointwise else int(round(overlap_s * sr)))


def _run_chunks(
    variant: Variant,
    ctx: VariantContext,
    sr: int,
    total: int,
    read: Callable[[int, int], np.ndarray],
    write: Callable[[np.ndarray], None],
    chunk_s: float,
    overlap_s: float,
    context_s: float,
) -> None:
    """``variant`` through :func:`musicrestore.core.chunks.run_chunks`, one chunk at a time
    with ``context_s`` each side (none for a single chunk or a ``pointwise`` variant),
    cross-faded (``normalise=False``); each chunk's decisions are kept in order."""
    per_chunk: list[dict[str, Any]] = []

    def process(windows: list[np.ndarray]) -> list[np.ndarray]:
        (window,) = windows  # batch_size 1: variants take one signal
        ctx.chunk_index, ctx.decisions = len(per_chunk), {}
        y = _call_variant(variant, window, sr, ctx)
        per_chunk.append(ctx.decisions)
        return [y]

    chunks = variant_chunks(variant, total, sr, chunk_s, overlap_s)
    context = 0 if variant.pointwise else int(round(context_s * sr))
    run_chunks(process, read, write, total, chunks, context)
    ctx.chunk_index = 0
    ctx.decisions = per_chunk[0] if len(per_chunk) == 1 else {"chunks": per_chunk}


def restore_array(
    variant: Variant | str,
    wave: np.ndarray,
    sr: int,
    ctx: VariantContext,
    chunk_s: float = RESTORE_DEFAULTS["chunk_s"],
    overlap_s: float = RESTORE_DEFAULTS["overlap_s"],
    context_s: float = RESTORE_DEFAULTS["context_s"],
) -> np.ndarray:
    """Restore ``wave (C, T)`` at ``sr`` with ``variant``; returns float32 ``(C, T)``.

    Args:
        variant: a registered :class:`~musicrestore.variants.Variant` or its name.
        wave: mono or stereo, any length.
        sr: sample rate (Hz); variants run at the input's rate.
        ctx: from :func:`musicrestore.variants.build_context`; after the call
            ``ctx.decisions`` holds what the variant recorded (``{"chunks": [...]}`` when
            the input was processed in several chunks).
        chunk_s / overlap_s / context_s: see the module docstring.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    wave = validate_wave(wave, sr)
    out = np.empty_like(wave)
    pos = 0

    def write(block: np.ndarray) -> None:
        nonlocal pos
        out[:, pos : pos + block.shape[1]] = block
        pos += block.shape[1]

    _run_chunks(
        variant,
        ctx,
        sr,
        wave.shape[1],
        lambda a, b: wave[:, a:b],
        write,
        chunk_s,
        overlap_s,
        context_s,
    )
    assert pos == wave.shape[1], (pos, wave.shape)
    return out


def _output_subtype(path: Path) -> str | None:
    # Restored audio may exceed full scale (seed 001's chain adds gain): WAV keeps it as
    # float; FLAC gets 24 bits like musicrestore.core.audio.save_audio (soundfile's default is 16).
    return {".wav": "FLOAT", ".flac": "PCM_24"}.get(path.suffix.lower())


def _check_output_path(path: Path) -> None:
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioError(
            path,
            f"unsupported output format {path.suffix!r}; use one of {', '.join(AUDIO_SUFFIXES)} "
            "(or end OUT with / for a folder)",
        )


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one existing file (other spelling, symlink, hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(in_path: Path, out_path: Path, overwrite: bool) -> Path:
    """Where to write the output of ``in_path``: ``out_path``, or, with ``overwrite``, the
    input's real path when both name the same file (so a symlink OUT replaces the file it
    points to, not the link). Without ``overwrite`` that case is a :class:`RestoreError`:
    restoring over the input would destroy the only copy of it."""
    if not same_file(in_path, out_path):
        return out_path
    if not overwrite:
        raise RestoreError(
            f"{out_path}: is the input file {in_path}; pass --overwrite (--in-place) to replace it"
        )
    return in_path.resolve()


def restore_file(
    variant: Variant | str,
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    ctx: VariantContext,
    chunk_s: float = RESTORE_DEFAULTS["chunk_s"],
    overlap_s: float = RESTORE_DEFAULTS["overlap_s"],
    context_s: float = RESTORE_DEFAULTS["context_s"],
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Stream ``in_path`` through ``variant`` into ``out_path`` (same rate, channels, length).

    The input goes through :func:`musicrestore.core.audio.open_audio`, the same validation as
    :func:`~musicrestore.core.audio.load_audio` (a truncated WAV is an error, not a short output),
    before anything is created. The output appears only when complete (written beside it,
    then renamed, see :func:`~musicrestore.core.audio.atomic_path`), so an error or a signal
    leaves whatever was at ``out_path`` as it was. ``out_path`` naming the input itself is an
    error unless ``overwrite``. Returns ``{"audio_s", "compute_s", "decisions"}``.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    in_path, out_path = Path(in_path), Path(out_path)
    _check_output_path(out_path)
    dest = check_not_input(in_path, out_path, overwrite)
    sr, channels, total = check_audio(in_path)
    fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[out_path.suffix.lower()]
    peak = 0.0
    start = time.perf_counter()
    # the input closes before the output replaces anything (the same file with --overwrite)
    with atomic_path(dest) as tmp, open_audio(in_path) as src:

        def read(a: int, b: int) -> np.ndarray:
            return read_block(src, a, b, in_path)

        try:
            dst = open_for_writing(tmp, sr, channels, _output_subtype(out_path), fmt)
        except Exception as exc:
            raise AudioError(out_path, f"cannot write ({_first_line(exc)})") from None
        with dst:

            def write(block: np.ndarray) -> None:
                nonlocal peak
                peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
                try:
                    dst.write(block.T)
                except Exception as exc:
                    raise AudioError(out_path, f"cannot write ({_first_line(exc)})") from None

            try:
                _run_chunks(variant, ctx, sr, total, read, write, chunk_s, overlap_s, context_s)
            except RestoreError as exc:  # a broken variant: say which input it broke on
                raise RestoreError(f"{in_path}: {exc}") from None
    compute_s = time.perf_counter() - start
    if peak > 1.0 and _output_subtype(out_path) != "FLOAT":
        log.warning(
            "%s: output peaks at %.2f and was clipped by the %s format",
            out_path,
            peak,
            out_path.suffix,
        )
    return {"audio_s": total / sr, "compute_s": compute_s, "decisions": ctx.decisions}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def warm_up(variant: Variant, ctx: VariantContext, sr: int = 44100) -> float:
    """Build the separator, load the model and run the variant once on 0.25 s of faint
    noise (lazy imports such as noisereduce's ~3 s, first-call initialisation), so that
    the timings that follow are compute only. Returns the seconds it took. A per-target
    model (``uformer``) is loaded for ``ctx.target``; without a target nothing is run."""
    start = time.perf_counter()
    if variant.needs_separator and getattr(ctx.separator(), "stored", False):
        return time.perf_counter() - start  # stored stems: nothing to load, no probe to run
    if variant.per_target and ctx.target is None:
        return time.perf_counter() - start  # one model per target group: nothing to load yet
    if (model := variant.model_name(ctx.target)) is not None:
        ctx.model(model)
    probe = 1e-3 * np.random.default_rng(0).standard_normal((2, sr // 4))
    _call_variant(variant, probe.astype(np.float32), sr, ctx.derive())
    return time.perf_counter() - start


def _machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
    }


def _warm_once(variant: Variant, ctx: VariantContext, target: str | None) -> float:
    """:func:`warm_up` once per context cache and target (per-target models) or once per
    cache (everything else): in each Dask worker, the first example of a model loads it,
    untimed. Returns the seconds it took (0 when already warm)."""
    key = target if variant.per_target else None
    if key in ctx._cache.warmed:
        return 0.0
    seconds = warm_up(variant, ctx.derive(target=target))
    ctx._cache.warmed.add(key)
    return seconds


def restore_example(
    variant: Variant,
    ctx: VariantContext,
    mixture: str,
    name: str,
    target: str | None,
    chunking: Mapping[str, float],
    warm: bool,
) -> dict[str, Any]:
    """One example, a Dask task (:mod:`musicrestore.compute`): read ``mixture``, restore it
    with ``target`` as the T2 group, and return the WAV bytes of ``name`` with the timing and
    the variant's decisions. The stage process writes them."""
    setup_s = _warm_once(variant, ctx, target) if warm else 0.0
    wave, sr = load_audio(mixture)
    ex_ctx = ctx.derive(target=target)
    start = time.perf_counter()
    out = restore_array(variant, wave, sr, ex_ctx, **chunking)
    compute_s = time.perf_counter() - start
    return {
        "data": encode_audio(name, out, sr),
        "decisions": ex_ctx.decisions,
        "compute_s": compute_s,
        "audio_s": wave.shape[1] / sr,
        "setup_s": setup_s,
    }


def restore_dataset(
    variant: Variant | str,
    dataset_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    ctx: VariantContext,
    *,
    testset: str | None = None,
    chunk_s: float = RESTORE_DEFAULTS["chunk_s"],
    overlap_s: float = RESTORE_DEFAULTS["overlap_s"],
    context_s: float = RESTORE_DEFAULTS["context_s"],
    progress: bool = True,
    warm: bool = True,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Restore every example of a dataset into ``out_dir/{id}.wav`` plus ``decisions.json``.

    T2 examples run with ``ctx.target = example.group``; T1/T3 with no target. Outputs keep
    the mixture's rate and length. ``out_dir`` is written in place: callers that need
    atomicity pass a temporary folder (the stage uses :func:`musicrestore.core.stage.output_dir`).
    Each example is a task (:func:`restore_example`) on ``engine``
    (:func:`musicrestore.compute.engine`; ``None``: in this process); on a cluster every
    worker gets the context once, without loaded models, and loads them at its first
    example (``warm``: untimed, as :func:`warm_up`), and tasks that run a learned model or
    the separator carry the ``GPU`` resource annotation.

    Everything written is a function of the inputs alone (``decisions.json`` holds what the
    variant recorded per example, e.g. whether ``adaptive`` separated), so a re-run on the
    same inputs gives byte-identical files, whatever the number of workers, and DVC caches
    them. Wall-clock timings are only *returned*: the stage sends them to MLflow and to an
    uncached metrics file.

    Returns:
        The timing dict: ``variant``, ``testset``, ``task`` (of the first example),
        ``audio_s``, ``compute_s``, ``rtf``
        (compute / audio), ``per_example`` ``{id: compute_s}``, plus ``setup_s``
        (model loading, not in ``compute_s``) and ``machine``.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    examples = read_manifest(dataset_dir)
    if not examples:
        raise RestoreError(f"{dataset_dir / MANIFEST}: the dataset has no examples")
    # read_manifest checked every id; checked again where it becomes the name of a write
    ids = [plain_name(ex.id, f"{dataset_dir / MANIFEST}: id", room=4) for ex in examples]
    if len(set(ids)) != len(ids):
        raise RestoreError(f"{dataset_dir / MANIFEST}: example ids are not unique")
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = engine or Engine(None, progress)
    shared = engine.share(ctx, cold=ctx.cold)
    chunking = {"chunk_s": chunk_s, "overlap_s": overlap_s, "context_s": context_s}
    tasks = [
        {
            "variant": variant,
            "ctx": shared,
            "mixture": str(dataset_dir / ex.mixture),
            "name": f"{ex_id}.wav",
            "target": ex.group if ex.task == "T2" else None,
            "chunking": chunking,
            "warm": warm,
        }
        for ex, ex_id in zip(examples, ids, strict=True)
    ]
    per_example: dict[str, float] = {}
    decisions: dict[str, Any] = {}
    audio_s = setup_s = 0.0
    name = testset or dataset_dir.name
    learned = variant.checkpoint is not None or variant.needs_separator
    for i, result in engine.imap(
        restore_example, tasks, f"restore {variant.name} {name}", gpu=learned
    ):
        write_bytes(out_dir / tasks[i]["name"], result["data"])
        per_example[ids[i]] = result["compute_s"]
        decisions[ids[i]] = result["decisions"]
        audio_s += result["audio_s"]
        setup_s += result["setup_s"]
    with atomic_path(out_dir / DECISIONS_FILE) as tmp:
        tmp.write_text(json.dumps(decisions, indent=2, sort_keys=True) + "\n")
    compute_s = float(sum(per_example.values()))
    return {
        "variant": variant.name,
        "testset": name,
        "task": examples[0].task,
        "audio_s": audio_s,
        "compute_s": compute_s,
        "rtf": compute_s / audio_s if audio_s > 0 else float("nan"),
        "per_example": dict(sorted(per_example.items())),
        "setup_s": setup_s,
        "machine": {**_machine(), "device": ctx.device, "workers": engine.workers},
    }


def recorded_separator(repo: str | os.PathLike[str] | None) -> str | None:
    """The model name a ``train_separator`` folder records in ``separator.json``, if any.

    The pipeline names its separator once (``separate.model``); every restore stage reads the
    choice back from the folder it depends on instead of from a second param.
    """
    info = Path(repo) / "separator.json" if repo else None
    if info is None or not info.is_file():
        return None
    return str(json.loads(info.read_text())["model"])


def make_separator_factory(
    model: str,
    repo: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    trust_pickle: bool = False,
) -> Callable[[], Separator]:
    """A lazy ``separation.load_separator(model, repo=repo, device=device)``; ``device``
    ``auto`` is resolved when the separator is built (:func:`resolve_device`).
    ``trust_pickle`` lets ``.th`` packages load with pickle (``--trust-pickle``)."""

    def factory() -> Separator:
        try:
            from ..separation import load_separator
        except ImportError as exc:
            raise RestoreError(f"source separation is unavailable ({exc})") from None
        return load_separator(
            model, repo=repo, device=resolve_device(device), trust_pickle=trust_pickle
        )

    return factory
