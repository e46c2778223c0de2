"""Run a restoration variant on arrays, files, folders and datasets (SPEC §4).

Every variant of :data:`musicrestore.variants.VARIANTS` has one signature, so this module is
the only place that deals with length, memory, I/O and timing:

- :func:`restore_array`: any length, mono or stereo, any sample rate. Long inputs are cut
  into chunks that overlap by ``overlap_s``; each chunk is processed with ``context_s`` of
  extra audio on both sides (then cropped), and neighbouring chunks are cross-faded with
  complementary raised-cosine ramps, so working memory is bounded by the chunk length and
  there are no seams. A variant may opt out (``whole_signal``) or ask for its own chunk
  length (``chunk_s``). Output length always equals input length; a wrong shape or a
  NaN/Inf sample from a variant is an error, never written.
- :func:`restore_file`: the same engine streaming from one file to another (the file is
  never fully in memory), written atomically.
- :func:`restore_dataset`: every example of a dataset (:mod:`musicrestore.dataset`) ->
  ``{id}.wav`` at the mixture's rate and length, plus ``timing.json`` (real-time factor and
  each example's recorded decisions), which the evaluation reads.
- :func:`main`: ``python -m musicrestore restore --variant NAME IN OUT``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .audio import (
    AUDIO_SUFFIXES,
    AudioError,
    atomic_path,
    list_audio,
    load_audio,
    save_audio,
    validate_wave,
)
from .dataset import MANIFEST, read_manifest
from .stage import USER_ERRORS, StageError, load_params
from .taxonomy import parse_target
from .variants import VARIANTS, Separator, Variant, VariantContext, build_context, get_variant
from .variants.registry import merge_params

log = logging.getLogger(__name__)

#: The ``restore:`` params block: how long inputs are cut, and which separator to use.
RESTORE_DEFAULTS: dict[str, Any] = {
    "chunk_s": 30.0,  # chunk length for variants without their own preference
    "overlap_s": 1.0,  # cross-faded between neighbouring chunks
    "context_s": 0.5,  # extra audio each side of a chunk, processed then cropped
    "separator_model": "trained",  # separation.load_separator(model, repo=<separator dir>)
    "device": "cpu",  # torch device for the separator and learned models
}

TIMING_FILE = "timing.json"


class RestoreError(StageError):
    """A variant broke its contract (wrong shape, NaN/Inf) or an input cannot be restored."""


def restore_settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """``restore:`` params merged over :data:`RESTORE_DEFAULTS` (unknown keys are errors)."""
    settings = merge_params(RESTORE_DEFAULTS, section, "restore")
    if not float(settings["chunk_s"]) >= 0.1:
        raise StageError(f"restore.chunk_s must be at least 0.1 s, got {settings['chunk_s']}")
    for key in ("overlap_s", "context_s"):
        if not 0.0 <= float(settings[key]) <= float(settings["chunk_s"]) / 2:
            raise StageError(f"restore.{key} must be in [0, chunk_s / 2], got {settings[key]}")
    return settings


# ----------------------------------------------------------------------------- the engine


def plan_chunks(total: int, chunk: int, overlap: int) -> list[tuple[int, int]]:
    """``[start, stop)`` chunks of at most ``chunk`` samples covering ``total`` samples,
    neighbours overlapping by exactly ``overlap``, all about the same length (no runt last
    chunk that a variant's STFT would have to pad)."""
    if total <= chunk:
        return [(0, total)]
    overlap = min(overlap, chunk // 2)
    n = math.ceil((total - overlap) / (chunk - overlap))
    hop = math.ceil((total - overlap) / n)
    return [(k * hop, min(k * hop + hop + overlap, total)) for k in range(n)]


def _fade_in(n: int) -> np.ndarray:
    """Raised-cosine ramp 0 -> 1; with ``1 - ramp`` it sums to one (no level bump)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def _call_variant(variant: Variant, wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    out = np.asarray(variant(wave, sr, ctx))
    if out.shape != wave.shape:
        raise RestoreError(
            f"variant {variant.name} returned shape {out.shape} for an input of shape {wave.shape}"
        )
    if not np.isfinite(out).all():
        raise RestoreError(f"variant {variant.name} produced NaN/Inf samples")
    # The cross-fade writes into the result: never into the caller's input.
    copy = np.shares_memory(out, wave) or out.dtype != np.float32
    return np.array(out, dtype=np.float32, order="C", copy=True) if copy else out


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
    """Chunk, process with context, crop, cross-fade, and emit samples in order."""
    if variant.whole_signal:
        chunks = [(0, total)]
    else:
        chunk = max(1, int(round((variant.chunk_s or chunk_s) * sr)))
        chunks = plan_chunks(total, chunk, int(round(overlap_s * sr)))
    pad = 0 if len(chunks) == 1 else int(round(context_s * sr))
    per_chunk: list[dict[str, Any]] = []
    pending: np.ndarray | None = None  # the previous chunk's processed overlap tail
    for k, (start, stop) in enumerate(chunks):
        ctx.chunk_index, ctx.decisions = k, {}
        lo, hi = max(0, start - pad), min(total, stop + pad)
        y = _call_variant(variant, read(lo, hi), sr, ctx)[:, start - lo : stop - lo]
        per_chunk.append(ctx.decisions)
        if pending is not None:
            n = pending.shape[1]
            ramp = _fade_in(n)
            y[:, :n] = pending * (1.0 - ramp) + y[:, :n] * ramp
        if k + 1 < len(chunks):
            keep = chunks[k + 1][0] - start  # samples final now; the rest overlaps the next
            write(y[:, :keep])
            pending = y[:, keep:]
        else:
            write(y)
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
    # float; FLAC gets 24 bits like musicrestore.audio.save_audio (soundfile's default is 16).
    return {".wav": "FLOAT", ".flac": "PCM_24"}.get(path.suffix.lower())


def _check_output_path(path: Path) -> None:
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioError(
            path, f"unsupported output format {path.suffix!r}; use one of {AUDIO_SUFFIXES}"
        )


def restore_file(
    variant: Variant | str,
    in_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    ctx: VariantContext,
    chunk_s: float = RESTORE_DEFAULTS["chunk_s"],
    overlap_s: float = RESTORE_DEFAULTS["overlap_s"],
    context_s: float = RESTORE_DEFAULTS["context_s"],
) -> dict[str, Any]:
    """Stream ``in_path`` through ``variant`` into ``out_path`` (same rate, channels, length).

    The output appears only when complete (written beside it, then renamed). Returns
    ``{"audio_s", "compute_s", "decisions"}``.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    in_path, out_path = Path(in_path), Path(out_path)
    _check_output_path(out_path)
    if not in_path.is_file():
        raise AudioError(in_path, "no such file")
    try:
        src = sf.SoundFile(str(in_path))
    except Exception as exc:
        raise AudioError(
            in_path, f"not a readable audio file ({str(exc).splitlines()[0]})"
        ) from None
    with src:
        sr, channels, total = int(src.samplerate), int(src.channels), int(src.frames)
        if total <= 0:
            raise AudioError(in_path, "zero-length audio")
        validate_wave(np.zeros((channels, 1), np.float32), sr, in_path)

        def read(a: int, b: int) -> np.ndarray:
            src.seek(a)
            block = src.read(b - a, dtype="float32", always_2d=True).T
            if block.shape[1] != b - a:
                raise AudioError(in_path, f"truncated file: could not read samples {a}..{b}")
            return validate_wave(block, sr, in_path)

        peak = 0.0
        start = time.perf_counter()
        with atomic_path(out_path) as tmp:
            fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}[
                out_path.suffix.lower()
            ]
            with sf.SoundFile(
                str(tmp), "w", sr, channels, subtype=_output_subtype(out_path), format=fmt
            ) as dst:

                def write(block: np.ndarray) -> None:
                    nonlocal peak
                    peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
                    dst.write(block.T)

                _run_chunks(variant, ctx, sr, total, read, write, chunk_s, overlap_s, context_s)
        compute_s = time.perf_counter() - start
    if peak > 1.0 and _output_subtype(out_path) != "FLOAT":
        log.warning(
            "%s: output peaks at %.2f and was clipped by the %s format",
            out_path,
            peak,
            out_path.suffix,
        )
    return {"audio_s": total / sr, "compute_s": compute_s, "decisions": ctx.decisions}


def warm_up(variant: Variant, ctx: VariantContext, sr: int = 44100) -> float:
    """Build the separator, load the model and run the variant once on 0.25 s of faint
    noise (lazy imports such as noisereduce's ~3 s, first-call initialisation), so that
    the timings that follow are compute only. Returns the seconds it took."""
    start = time.perf_counter()
    if variant.needs_separator:
        ctx.separator()
    if variant.checkpoint:
        ctx.model(variant.checkpoint)
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
) -> dict[str, Any]:
    """Restore every example of a dataset into ``out_dir/{id}.wav`` and write ``timing.json``.

    T2 examples run with ``ctx.target = example.group``; T1/T3 with no target. Outputs keep
    the mixture's rate and length. ``out_dir`` is written in place: callers that need
    atomicity pass a temporary folder (the stage uses :func:`musicrestore.stage.output_dir`).

    Returns:
        The timing dict: ``variant``, ``testset``, ``audio_s``, ``compute_s``, ``rtf``
        (compute / audio), ``per_example`` ``{id: compute_s}``, ``decisions`` ``{id: ...}``,
        plus ``setup_s`` (:func:`warm_up`, not in ``compute_s``) and ``machine``.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    examples = read_manifest(dataset_dir)
    if not examples:
        raise RestoreError(f"{dataset_dir / MANIFEST}: the dataset has no examples")
    ids = [ex.id for ex in examples]
    if len(set(ids)) != len(ids):
        raise RestoreError(f"{dataset_dir / MANIFEST}: example ids are not unique")
    out_dir.mkdir(parents=True, exist_ok=True)
    setup_s = warm_up(variant, ctx)
    per_example: dict[str, float] = {}
    decisions: dict[str, Any] = {}
    audio_s = 0.0
    name = testset or dataset_dir.name
    bar = tqdm(examples, desc=f"restore {variant.name} {name}", unit="ex", disable=not progress)
    for ex in bar:
        wave, sr = load_audio(dataset_dir / ex.mixture)
        ex_ctx = ctx.derive(target=ex.group if ex.task == "T2" else None)
        start = time.perf_counter()
        out = restore_array(variant, wave, sr, ex_ctx, chunk_s, overlap_s, context_s)
        per_example[ex.id] = time.perf_counter() - start
        decisions[ex.id] = ex_ctx.decisions
        audio_s += wave.shape[1] / sr
        save_audio(out_dir / f"{ex.id}.wav", out, sr)
        bar.set_postfix_str(f"{ex.id} RTF {per_example[ex.id] * sr / wave.shape[1]:.2f}")
    compute_s = float(sum(per_example.values()))
    timing = {
        "variant": variant.name,
        "testset": name,
        "audio_s": audio_s,
        "compute_s": compute_s,
        "rtf": compute_s / audio_s if audio_s > 0 else float("nan"),
        "per_example": per_example,
        "decisions": decisions,
        "setup_s": setup_s,
        "machine": {**_machine(), "device": ctx.device},
    }
    with atomic_path(out_dir / TIMING_FILE) as tmp:
        tmp.write_text(json.dumps(timing, indent=2, sort_keys=True) + "\n")
    return timing


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
    model: str, repo: str | os.PathLike[str] | None = None, device: str = "cpu"
) -> Callable[[], Separator]:
    """A lazy ``separation.load_separator(model, repo=repo, device=device)``."""

    def factory() -> Separator:
        try:
            from .separation import load_separator
        except ImportError as exc:
            raise RestoreError(f"source separation is unavailable ({exc})") from None
        return load_separator(model, repo=repo, device=device)

    return factory


# ----------------------------------------------------------------------------------- CLI


class _UsageError(StageError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line and exit 1, like every other error
        raise _UsageError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="musicrestore restore",
        description="Restore an audio file, a folder of audio files, or a dataset folder "
        "(one with manifest.jsonl) with one registered variant.",
    )
    p.add_argument("inp", nargs="?", metavar="IN", help="audio file or folder")
    p.add_argument("out", nargs="?", metavar="OUT", help="output file or folder")
    p.add_argument("--variant", help="registered variant (see --list)")
    p.add_argument("--list", action="store_true", help="list the variants and exit")
    p.add_argument("--params", help="params.yaml: uses its `variants:` and `restore:` sections")
    p.add_argument(
        "--separator",
        help="separator model (default: restore.separator_model of --params; 'trained' with "
        "--separator-repo; else htdemucs from the Hugging Face cache)",
    )
    p.add_argument("--separator-repo", help="folder of local separator models")
    p.add_argument("--models-dir", help="folder of learned-variant checkpoints")
    p.add_argument("--target", help="T2 target group (Voc, Gtr_EG, ...): output that stem")
    return p


def format_variant_list() -> str:
    """The registry as a table: name, output kind, what it needs, description."""
    rows = []
    for v in VARIANTS.values():
        needs = ", ".join(
            x for x in ("separator" if v.needs_separator else "", v.checkpoint or "") if x
        )
        rows.append((v.name, v.output, needs or "-", v.description))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows
    )


@contextlib.contextmanager
def _staged_folder(out: Path) -> Iterator[Path]:
    """A temporary folder beside ``out``; its files move into ``out`` only on success."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        if not out.exists():
            tmp.rename(out)
            return
        for path in sorted(p for p in tmp.rglob("*") if p.is_file()):
            dest = out / path.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _restore_folder(
    variant: Variant, inp: Path, out: Path, ctx: VariantContext, settings: dict[str, Any]
) -> tuple[int, float, float]:
    """Every audio file below ``inp`` to the same relative path below ``out``."""
    if out.exists() and not out.is_dir():
        raise StageError(f"{out}: exists and is not a folder (IN is a folder)")
    files = list_audio(inp)
    if not files:
        raise StageError(f"{inp}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
    chunking = {k: settings[k] for k in ("chunk_s", "overlap_s", "context_s")}
    audio_s = compute_s = 0.0
    with _staged_folder(out) as tmp:
        if (inp / MANIFEST).is_file():
            timing = restore_dataset(variant, inp, tmp, ctx, **chunking)
            return len(timing["per_example"]), timing["audio_s"], timing["compute_s"]
        warm_up(variant, ctx)
        for path in files:
            info = restore_file(
                variant, path, tmp / path.relative_to(inp), ctx.derive(), **chunking
            )
            audio_s += info["audio_s"]
            compute_s += info["compute_s"]
    return len(files), audio_s, compute_s


def main(argv: Sequence[str] | None = None) -> int:
    """``musicrestore restore``; returns the exit status (0 ok, 1 any user-facing error)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except USER_ERRORS as exc:  # StageError covers usage, variant and restore errors
        print(f"error: {' '.join(str(exc).split()) or type(exc).__name__}", file=sys.stderr)
        return 1


def _cli_separator_model(
    args: argparse.Namespace, section: Mapping[str, Any], settings: Mapping[str, Any]
) -> str:
    """--separator, else params' restore.separator_model, else the pipeline's default
    ("trained") when a repo folder is given, else the pretrained "htdemucs" (HF cache)."""
    if args.separator:
        return str(args.separator)
    if "separator_model" in section or args.separator_repo:
        return str(settings["separator_model"])
    return "htdemucs"


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        print(format_variant_list())
        return 0
    if not args.variant:
        raise _UsageError("--variant is required (see --list)")
    if not args.inp or not args.out:
        raise _UsageError("IN and OUT are required")
    variant = get_variant(args.variant)
    params = load_params(args.params) if args.params else {}
    settings = restore_settings(params.get("restore"))
    if args.target:
        parse_target(args.target)
    inp, out = Path(args.inp), Path(args.out)
    if not inp.exists():
        raise StageError(f"{inp}: no such file or folder")
    ctx = build_context(
        variant,
        params.get("variants"),
        target=args.target,
        separator_factory=make_separator_factory(
            _cli_separator_model(args, params.get("restore") or {}, settings),
            repo=args.separator_repo,
            device=settings["device"],
        ),
        models_dir=args.models_dir,
        device=settings["device"],
    )
    if inp.is_dir():
        n, audio_s, compute_s = _restore_folder(variant, inp, out, ctx, settings)
    else:
        if out.is_dir():
            out = out / inp.name
        _check_output_path(out)
        chunking = {k: settings[k] for k in ("chunk_s", "overlap_s", "context_s")}
        warm_up(variant, ctx)
        info = restore_file(variant, inp, out, ctx, **chunking)
        n, audio_s, compute_s = 1, info["audio_s"], info["compute_s"]
        if ctx.decisions:
            print(json.dumps(ctx.decisions, sort_keys=True), file=sys.stderr)
    rtf = compute_s / audio_s if audio_s else float("nan")
    print(
        f"{variant.name}: restored {n} file(s), {audio_s:.1f} s of audio in {compute_s:.1f} s "
        f"(RTF {rtf:.3f}) -> {out}",
        file=sys.stderr,
    )
    return 0
