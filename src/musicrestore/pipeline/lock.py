"""``dvc.lock`` housekeeping: the entries of stages that no longer exist, and which stages'
outputs differ between two runs.

- **Stale entries.** DVC keeps the lock entry of a stage after the stage is renamed or
  removed from ``dvc.yaml`` (a full run after this wave's renames left 19 of them, and the
  lock 3,200 lines longer). :func:`stale_entries` names them; :func:`prune` rewrites the
  lock without them, line for line otherwise (DVC's own formatting is kept, so the diff is
  only the removed entries). ``python -m musicrestore pipeline --check`` fails while any is
  left; ``--prune-lock`` removes them.
- **Another machine's run.** :func:`compare` lists, per stage, the outputs whose hash
  differs between two locks (matched by output path, so renamed stages still compare) (say the committed one and a fresh clone's after
  ``dvc repro``), so a machine that does not reproduce the committed bytes says at once
  which stages, and therefore which code, to look at. ``python -m musicrestore pipeline
  --compare-lock OTHER`` prints it against ``dvc.lock``. Uncached outputs (timings) are left
  out: their content is wall-clock time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..core.audio import atomic_path
from .stages import foreach_items

#: A stage entry's first line in ``dvc.lock`` (two spaces, the name, a colon).
_ENTRY = re.compile(r"^  (\S[^:]*|'[^']*'|\"[^\"]*\"):\s*$")


def stage_names(stages: Mapping[str, Any], targets: Iterable[str]) -> set[str]:
    """The names DVC gives the stages of ``stages`` (``dvc.yaml``'s mapping): a plain stage
    by its name, a ``foreach`` stage as ``<name>@<item>`` over its list, or over ``targets``
    where it iterates ``${msr.targets}``."""
    names: set[str] = set()
    for name, stage in stages.items():
        if "foreach" not in stage:
            names.add(name)
            continue
        names |= {f"{name}@{item}" for item in foreach_items(stage, list(targets))}
    return names


def read_lock(path: str | Path) -> dict[str, Any]:
    """``stages`` of a ``dvc.lock`` (``{}`` for a missing or empty file)."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text()) if path.is_file() else None
    stages = doc.get("stages") if isinstance(doc, dict) else None
    return stages if isinstance(stages, dict) else {}


def stale_entries(lock: str | Path, names: Iterable[str]) -> list[str]:
    """Entries of ``lock`` whose stage is not among ``names``, in file order."""
    known = set(names)
    return [name for name in read_lock(lock) if name not in known]


def prune(lock: str | Path, names: Iterable[str]) -> list[str]:
    """Rewrite ``lock`` (atomically) without the entries of stages not among ``names``;
    returns the names removed. Every other line stays as DVC wrote it."""
    lock = Path(lock)
    gone = set(stale_entries(lock, names))
    if not gone:
        return []
    out, keep = [], True
    for line in lock.read_text().splitlines(keepends=True):
        entry = _ENTRY.match(line)
        if entry:
            keep = entry.group(1).strip("'\"") not in gone
        elif not line.startswith("  "):
            keep = True  # back at the top level (schema:, stages:)
        if keep:
            out.append(line)
    with atomic_path(lock) as tmp:
        tmp.write_text("".join(out))
        if set(read_lock(tmp)) & gone:  # never replace the lock with a wrong rewrite
            raise RuntimeError(f"{lock}: could not remove {', '.join(sorted(gone))}")
    return sorted(gone)


def _outs(stage: Mapping[str, Any]) -> dict[str, str | None]:
    """``{path: hash}`` of a lock entry's cached outputs."""
    out = {}
    for o in stage.get("outs") or []:
        if isinstance(o, dict) and "path" in o and "timing" not in str(o["path"]):
            out[str(o["path"])] = o.get("md5")
    return out


def _by_path(stages: Mapping[str, Any]) -> dict[str, tuple[str, str | None]]:
    """``{output path: (stage, hash)}`` of a lock's stages."""
    return {path: (name, md5) for name, st in stages.items() for path, md5 in _outs(st).items()}


def compare(a: str | Path, b: str | Path) -> dict[str, list[str]]:
    """``{stage: [its output paths whose hash differs in b, or that b lacks]}`` between the
    locks ``a`` and ``b``, matched by output path (so a stage renamed between the runs still
    compares); an output only ``b`` records is listed under ``"<its stage in b> (not in
    <a>)"``. Stages whose outputs agree are left out."""
    x, y = _by_path(read_lock(a)), _by_path(read_lock(b))
    diff: dict[str, list[str]] = {}
    for path, (stage, md5) in sorted(x.items()):
        if path not in y or y[path][1] != md5:
            diff.setdefault(stage, []).append(path)
    for path, (stage, _) in sorted(y.items()):
        if path not in x:
            diff.setdefault(f"{stage} (not in {Path(a).name})", []).append(path)
    return diff
