"""``python -m musicrestore restore``: one variant on a file, a folder or a dataset folder.

The engine is :mod:`musicrestore.variants.restore`; this module only turns a command line into calls
of it, and guarantees what a command-line user relies on:

- every error a user can cause is one line on stderr (``error: <what>``) and exit 1, never a
  traceback; Ctrl-C exits 130 and SIGTERM 143, also with one line;
- nothing half-written is ever left: outputs are written beside their final name and renamed
  when complete, and an interrupted run removes its temporary files;
- the input is never overwritten unless asked (``--overwrite``), nor is a write-protected
  OUT (a ``0444`` file); a replaced file keeps its permissions (and owner and group, where
  the process may set them);
- a full disk, a read-only file system or a disk quota is one line naming OUT and the cause;
- a folder is checked as a whole before any work starts (all bad inputs in one message),
  ``--skip-bad`` restores the rest, and each finished output is kept even when a later file
  fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .core.audio import AUDIO_SUFFIXES, check_audio, keep_metadata, temp_prefix, write_protected
from .core.errors import (
    CAUGHT_ERRORS,
    USER_ERRORS,
    AudioError,
    StageError,
    is_user_error,
    user_os_error,
)
from .core.stage import (
    exit_code,
    format_error,
    interrupted_message,
    load_params,
    signals_as_exceptions,
)
from .data.dataset import MANIFEST, read_manifest
from .data.taxonomy import parse_target
from .variants import VARIANTS, Variant, VariantContext, build_context, get_variant
from .variants.restore import (
    DECISIONS_FILE,
    _check_output_path,
    check_not_input,
    make_separator_factory,
    resolve_device,
    restore_dataset,
    restore_file,
    restore_settings,
    same_file,
    warm_up,
)


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
        epilog="What is trusted: nothing this command reads runs code. Separator models load "
        "from safetensors, or from demucs .th packages unpickled with an allowlist of the "
        "Demucs model classes (anything else is refused) unless --trust-pickle; every id and "
        "path in a manifest must stay a plain name inside its folder (and OUT).",
    )
    p.add_argument("inp", nargs="?", metavar="IN", help="audio file or folder")
    p.add_argument(
        "out",
        nargs="?",
        metavar="OUT",
        help="output file or folder (a trailing / always means a folder)",
    )
    p.add_argument("--variant", help="registered variant (see --list)")
    p.add_argument("--list", action="store_true", help="list the variants and exit")
    p.add_argument("--params", help="params.yaml: uses its `variants:` and `restore:` sections")
    p.add_argument(
        "--separator",
        help="separator model (default: restore.separator_model of --params; 'trained' with "
        "--separator-repo; else htdemucs from the Hugging Face cache)",
    )
    p.add_argument("--separator-repo", help="folder of local separator models")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load demucs .th packages in --separator-repo with pickle, which runs whatever "
        "code they hold (default: an allowlist, or refused); also separate.trust_pickle: true "
        "in --params",
    )
    p.add_argument("--models-dir", help="folder of learned-variant checkpoints")
    p.add_argument("--target", help="T2 target group (Voc, Gtr_EG, ...): output that stem")
    p.add_argument(
        "--overwrite",
        "--in-place",
        action="store_true",
        help="allow OUT to be IN itself (replaced atomically once the output is complete)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="folder IN: restore the good files, list the bad ones and exit 1",
    )
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


def main(argv: Sequence[str] | None = None) -> int:
    """``musicrestore restore``; returns the exit status: 0 ok, 1 any user-facing error (and
    ``--skip-bad`` with skipped files), 130 on Ctrl-C, 143 on SIGTERM."""
    try:
        with signals_as_exceptions():
            return _main(list(sys.argv[1:] if argv is None else argv))
    except CAUGHT_ERRORS as exc:  # StageError: usage, config, variant, restore errors
        if not is_user_error(exc):  # an OSError that is a bug, not a full disk
            raise
        print(f"error: {format_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM as stage.Terminated
        print(f"error: {interrupted_message(exc)}", file=sys.stderr)
        return exit_code(exc)


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


def _trust_pickle(args: argparse.Namespace, params: Mapping[str, Any]) -> bool:
    """``--trust-pickle``, else ``separate.trust_pickle`` of ``--params`` (the whole
    ``separate`` block read as the train_separator stage reads it)."""
    if args.trust_pickle or "separate" not in params:
        return bool(args.trust_pickle)
    from .core.config import pipeline_seed
    from .train.separator import separate_settings

    return bool(separate_settings(params["separate"], pipeline_seed(params))["trust_pickle"])


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
    # Everything that can be checked without the variant's models is checked first: a typo
    # fails in a second, not after the separator has loaded.
    ctx = build_context(
        variant,
        params.get("variants"),
        target=args.target,
        separator_factory=make_separator_factory(
            _cli_separator_model(args, params.get("restore") or {}, settings),
            repo=args.separator_repo,
            device=settings["device"],
            trust_pickle=_trust_pickle(args, params),
        ),
        models_dir=args.models_dir,
        device=resolve_device(settings["device"]),
    )
    chunking = {k: settings[k] for k in ("chunk_s", "overlap_s", "context_s")}
    if inp.is_dir():
        return _restore_folder(variant, inp, out, ctx, chunking, args)
    if args.skip_bad:
        raise _UsageError("--skip-bad applies to a folder IN only")
    if args.out.endswith(("/", os.sep)) or out.is_dir():
        out = out / inp.name
    _check_output_path(out)
    check_not_input(inp, out, args.overwrite)
    _check_not_protected([out], args.overwrite)
    check_audio(inp)
    warm_up(variant, ctx)
    info = restore_file(variant, inp, out, ctx, **chunking, overwrite=args.overwrite)
    if ctx.decisions:
        print(json.dumps(ctx.decisions, sort_keys=True), file=sys.stderr)
    _summary(variant, 1, info["audio_s"], info["compute_s"], out)
    return 0


def _check_not_protected(paths: Sequence[Path], overwrite: bool) -> None:
    """Refuse to replace a write-protected file (``0444``, or one this process may not
    write) unless ``--overwrite``: a rename into its folder would replace it silently. With
    ``--overwrite`` the new file keeps the old one's permissions (``core.audio.atomic_path``)."""
    if overwrite:
        return
    protected = [p for p in paths if write_protected(p)]
    if not protected:
        return
    if len(protected) == 1:
        raise StageError(f"{protected[0]}: is write-protected; pass --overwrite to replace it")
    names = ", ".join(str(p) for p in protected[:5]) + (", ..." if len(protected) > 5 else "")
    raise StageError(
        f"{len(protected)} outputs are write-protected ({names}); pass --overwrite to replace them"
    )


def _summary(variant: Variant, n: int, audio_s: float, compute_s: float, out: Path) -> str:
    rtf = compute_s / audio_s if audio_s else float("nan")
    line = (
        f"{variant.name}: restored {n} file(s), {audio_s:.1f} s of audio in {compute_s:.1f} s "
        f"(RTF {rtf:.3f}) -> {out}"
    )
    print(line, file=sys.stderr)
    return line


# --------------------------------------------------------------------------- folder mode


def _folder_inputs(inp: Path, out: Path) -> list[Path]:
    """Every visible file below ``inp`` (not only audio suffixes: a stray ``notes.txt`` is
    reported, not silently left out), minus whatever lies in ``out`` when ``out`` is inside
    ``inp`` (a re-run must not restore its own outputs)."""
    out_real = out.resolve()
    files = []
    for path in sorted(inp.rglob("*")):
        rel = path.relative_to(inp)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        real = path.resolve()
        if out_real != inp.resolve() and out_real in real.parents:
            continue
        files.append(path)
    return files


def _problem(path: Path) -> str | None:
    """Why ``path`` cannot be restored (one line, without the path), or ``None``."""
    if path.suffix.lower() not in AUDIO_SUFFIXES:
        return f"not audio (suffix {path.suffix!r}; use one of {', '.join(AUDIO_SUFFIXES)})"
    try:
        check_audio(path)
    except AudioError as exc:
        return exc.problem
    return None


#: Most bad inputs one message lists (a folder of 100 000 stray files stays one short line).
_MAX_BAD_SHOWN = 20


def _bad_message(inp: Path, bad: list[tuple[Path, str]]) -> str:
    items = "; ".join(f"{p.relative_to(inp).as_posix()}: {why}" for p, why in bad[:_MAX_BAD_SHOWN])
    if len(bad) > _MAX_BAD_SHOWN:
        items += f"; and {len(bad) - _MAX_BAD_SHOWN} more"
    return f"{inp}: {len(bad)} bad input{'s' if len(bad) > 1 else ''}: {items}"


def _restore_folder(
    variant: Variant,
    inp: Path,
    out: Path,
    ctx: VariantContext,
    chunking: Mapping[str, float],
    args: argparse.Namespace,
) -> int:
    """Every file below ``inp`` to the same relative path below ``out``.

    All inputs are opened and validated first; bad ones are reported together (and, with
    ``--skip-bad``, left out). Each output is written atomically straight into ``out`` as
    soon as it is done, so a failure or an interrupt later in the batch keeps it.
    """
    if out.exists() and not out.is_dir():
        raise StageError(f"{out}: exists and is not a folder (IN is a folder)")
    if not out.exists() and out.suffix.lower() in AUDIO_SUFFIXES:
        raise StageError(f"{out}: looks like an audio file, but IN is a folder; give a folder")
    in_place = out.exists() and same_file(inp, out)
    if in_place and not args.overwrite:
        raise StageError(
            f"{out}: is the input folder; pass --overwrite (--in-place) to replace its files"
        )
    if (inp / MANIFEST).is_file():
        return _restore_dataset_folder(variant, inp, out, ctx, chunking, args)
    files = _folder_inputs(inp, out)
    if not files:
        raise StageError(f"{inp}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in this folder")
    bad = [(p, why) for p in files if (why := _problem(p)) is not None]
    if bad and not args.skip_bad:
        raise StageError(_bad_message(inp, bad) + " (--skip-bad restores the others)")
    good = [p for p in files if p not in {b for b, _ in bad}]
    if not in_place:
        _check_not_protected([out / p.relative_to(inp) for p in good], args.overwrite)
    audio_s = compute_s = 0.0
    done = 0
    if good:
        out.mkdir(parents=True, exist_ok=True)  # mode 0777 & ~umask, like any mkdir
        warm_up(variant, ctx)
    for path in good:
        dest = path if in_place else out / path.relative_to(inp)
        try:
            info = restore_file(
                variant, path, dest, ctx.derive(), **chunking, overwrite=args.overwrite
            )
        except USER_ERRORS as exc:
            # An input that passed the check but fails to decode mid-file is a bad input
            # like the others; anything else (a variant's error) ends the batch. Either
            # way, the outputs finished so far stay in OUT.
            if args.skip_bad and isinstance(exc, AudioError) and exc.source == str(path):
                bad.append((path, exc.problem))
                continue
            kept = f"; {done} finished file(s) are in {out}" if done else ""
            raise StageError(f"{format_error(exc)}{kept}") from None
        done += 1
        audio_s += info["audio_s"]
        compute_s += info["compute_s"]
    if bad:  # --skip-bad: what was restored and what was not, on one line, exit 1
        rtf = compute_s / audio_s if audio_s else float("nan")
        print(
            f"error: {variant.name}: restored {done} file(s) (RTF {rtf:.3f}) -> {out}; "
            f"skipped {_bad_message(inp, bad)}",
            file=sys.stderr,
        )
        return 1
    _summary(variant, done, audio_s, compute_s, out)
    return 0


def _restore_dataset_folder(
    variant: Variant,
    inp: Path,
    out: Path,
    ctx: VariantContext,
    chunking: Mapping[str, float],
    args: argparse.Namespace,
) -> int:
    """A dataset folder (``manifest.jsonl``): its examples' mixtures, checked first, then
    :func:`musicrestore.variants.restore.restore_dataset` into a staged folder whose finished files
    move into ``out``."""
    if args.skip_bad:
        raise _UsageError(
            "--skip-bad does not apply to a dataset folder; fix or drop the bad examples "
            f"in {inp / MANIFEST}"
        )
    if same_file(inp, out):
        raise StageError(f"{out}: is the dataset folder; choose another OUT")
    examples = read_manifest(inp)
    mixtures = [inp / ex.mixture for ex in examples]
    bad = [(p, why) for p in mixtures if (why := _problem(p)) is not None]
    if bad:
        raise StageError(_bad_message(inp, bad))
    written = [out / f"{ex.id}.wav" for ex in examples] + [out / DECISIONS_FILE]
    _check_not_protected(written, args.overwrite)
    with _staged_folder(out, args.overwrite) as tmp:
        timing = restore_dataset(
            variant,
            inp,
            tmp,
            ctx,
            chunk_s=chunking["chunk_s"],
            overlap_s=chunking["overlap_s"],
            context_s=chunking["context_s"],
        )
    _summary(variant, len(timing["per_example"]), timing["audio_s"], timing["compute_s"], out)
    return 0


@contextlib.contextmanager
def _staged_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary folder beside ``out`` for a writer that fills a whole folder at once.

    Its finished files move into ``out`` (created with the umask's permissions, never the
    0700 of the temporary folder) when the body ends, on success and on failure alike:
    every file a writer of this package completes is complete (each is written atomically),
    and keeping it costs nothing while deleting it would cost its compute. A file it
    replaces keeps its permissions; a write-protected one is replaced only with
    ``overwrite``. Hidden files (the writers' own temporaries) are not moved; the temporary
    folder is always removed, also on Ctrl-C and SIGTERM.
    """
    tmp: Path | None = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(out), suffix=".tmp", dir=out.parent))
        try:
            yield tmp
        except BaseException:
            _move_finished(tmp, out, overwrite)
            raise
        if protected := _move_finished(tmp, out, overwrite):
            _check_not_protected(protected, overwrite)
    except OSError as exc:
        if (err := user_os_error(exc, out)) is None:
            raise
        raise err from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _move_finished(tmp: Path, out: Path, overwrite: bool) -> list[Path]:
    """Move the finished files of ``tmp`` into ``out``; returns the write-protected files of
    ``out`` left as they were (``overwrite`` false)."""
    files = sorted(
        p
        for p in tmp.rglob("*")
        if p.is_file() and not any(s.startswith(".") for s in p.relative_to(tmp).parts)
    )
    if not files:
        return []
    out.mkdir(parents=True, exist_ok=True)
    protected = []
    for path in files:
        dest = out / path.relative_to(tmp)
        if not overwrite and write_protected(dest):
            protected.append(dest)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        keep_metadata(path, dest)
        os.replace(path, dest)
    return protected
