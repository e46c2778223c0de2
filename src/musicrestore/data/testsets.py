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
