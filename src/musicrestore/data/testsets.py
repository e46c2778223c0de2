"""Which test sets a stage works on: named folders plus one T2 folder per target group.

The restore and evaluate stages of a variant cover every test set the variant applies to
(T1, each T2 group, T3) in one process, so their start-up is paid once per variant and not
once per (variant, test set). ``dvc.yaml`` passes the mixture test sets by name
(``--testset musicgen_like=data/musicgen_like/test``) and the root of the T2 sets
(``--msr-test data/msr/test``); the T2 groups are ``msr.targets`` of params.yaml, each set
at ``<root>/<group>`` and named ``msr_<group>`` in every output.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.config import as_mapping, merge
from ..core.errors import StageError
from ..core.paths import plain_name

MSR_PREFIX = "msr_"

#: Written instead of outputs by a restore stage whose variant cannot run here (a pretrained
#: variant without its checkpoints), and passed on by its evaluate stage; the report lists
#: such variants as not run: ``{"variant": ..., "reason": ..., "missing": [...]}``.
SKIPPED_FILE = "skipped.json"

#: A T2 group as ``msr.targets`` names it (``Voc``, ``Gtr_EG``): it is a folder name
#: (``<root>/<group>``) and part of a test set's name (``msr_<group>``).
_GROUP = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?")


def _targets_problem(value: Any) -> str | None:
    names = [t for t in value if isinstance(t, str) and _GROUP.fullmatch(t)]
    if len(names) == len(value) and len(set(names)) == len(names):
        return None
    return "a list of distinct target groups (Voc, Rhy, ..., Gtr_AG, Gtr_EG)"


def msr_targets(params: Mapping[str, Any]) -> list[str]:
    """``msr.targets`` of the params file (``[]`` when absent) through
    :func:`musicrestore.core.config.merge`: ``msr`` must be a mapping and ``targets`` a list of
    distinct group names, else a one-line :class:`~musicrestore.core.config.ConfigError`. The
    other ``msr`` keys are the T2 builder's (:func:`musicrestore.degrade.build.block_settings`
    checks them)."""
    msr = as_mapping(params.get("msr"), "msr")
    given = {"targets": msr.get("targets", [])}
    return list(
        merge({"targets": []}, given, "msr", checks={"targets": _targets_problem})["targets"]
    )


def parse_named(text: str) -> tuple[str, str]:
    """``NAME=PATH`` (an argparse ``type``)."""
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The test-set arguments shared by the restore and evaluate stages."""
    parser.add_argument(
        "--testset",
        action="append",
        default=[],
        type=parse_named,
        metavar="NAME=PATH",
        help="a mixture test set folder (repeatable)",
    )
    parser.add_argument(
        "--msr-test", help="folder of T2 test sets, one <group> folder per msr.targets entry"
    )
    parser.add_argument(
        "--target",
        help="one T2 group only (a per-group stage): the msr_<group> set of --msr-test, whose "
        "own folder is then the output (and, to evaluate, the restored folder)",
    )


def chosen_targets(params: Mapping[str, Any], args: argparse.Namespace) -> list[str] | None:
    """The T2 groups a restore or evaluate stage works on: ``msr.targets``
    (:func:`msr_targets`) with ``--msr-test``, only ``--target`` when it is given (a
    per-group stage, ``restore-uformer@Voc``), ``None`` without ``--msr-test``. A
    ``--target`` outside ``msr.targets``, or with ``--testset``, or without ``--msr-test``,
    is a one-line :class:`~musicrestore.core.errors.StageError`."""
    target = getattr(args, "target", None)
    if target is not None and (args.testset or not args.msr_test):
        raise StageError("--target works on one T2 set: give --msr-test and no --testset")
    if not args.msr_test:
        return None
    targets = msr_targets(params)
    if target is None:
        return targets
    if target not in targets:
        raise StageError(f"--target {target!r} is not in msr.targets ({', '.join(targets)})")
    return [target]


def restored_sets(sets: Mapping[str, Path], restored: str | Path) -> dict[str, Path]:
    """The test sets of ``sets`` that a restore stage wrote into ``restored`` (a
    ``<restored>/<name>/`` folder each), in the same order; none is a one-line
    :class:`~musicrestore.core.errors.StageError` naming the sets looked for."""
    found = {name: folder for name, folder in sets.items() if (Path(restored) / name).is_dir()}
    if not found:
        raise StageError(f"{restored}: holds none of the test sets {', '.join(sets)}")
    return found


def set_folder(root: str | Path, name: str, args: argparse.Namespace) -> Path:
    """Where test set ``name`` lives under a stage's output (or restored) folder ``root``:
    ``<root>/<name>``, or ``root`` itself in a per-group stage (``--target``), whose output
    is that one set's folder (``data/restored/uformer/msr_Voc``), the same path as in a
    stage over every group."""
    return Path(root) if getattr(args, "target", None) else Path(root) / name


def resolve(
    named: Sequence[tuple[str, str]], msr_root: str | None, targets: Sequence[str] | None
) -> dict[str, Path]:
    """``{test set name: folder}`` in a stable order: named sets, then ``msr_<group>``."""
    sets: dict[str, Path] = {}
    for name, path in named:
        plain_name(name, "--testset NAME")  # the name of every output folder of the set
        if name in sets:
            raise StageError(f"--testset: the test set name {name!r} is given twice")
        sets[name] = Path(path)
    if msr_root is not None:
        if not targets:
            raise StageError("msr.targets is empty: there is no T2 test set to work on")
        for group in targets:
            plain_name(group, "msr.targets")
            sets[f"{MSR_PREFIX}{group}"] = Path(msr_root) / str(group)
    if not sets:
        raise StageError("no test set given (--testset NAME=PATH or --msr-test DIR)")
    return sets
