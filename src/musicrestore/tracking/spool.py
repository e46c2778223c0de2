"""The spool folder: one JSON file per record (plus hard links to its artifacts in
``<record_id>.files/``), written atomically, and the lock that lets one flusher drain it."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .settings import spool_dir


def now_ms() -> int:
    return int(time.time() * 1000)


def link_tree(src: Path, dest: Path) -> None:
    """Hard-link ``src`` (file or folder) at ``dest``; copy across filesystems. A hard link
    keeps the bytes the stage produced even when a later run replaces the output."""
    if src.is_dir():
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            link_tree(path, dest / path.relative_to(src))
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def write_record(spool: Path, record_id: str, record: Mapping[str, Any]) -> None:
    tmp = spool / f".{record_id}.json.tmp"
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, spool / f"{record_id}.json")


def pending(spool: Path | None = None) -> list[Path]:
    """Records waiting in the spool, oldest first."""
    spool = spool or spool_dir()
    return sorted(spool.glob("*.json")) if spool.is_dir() else []


@contextlib.contextmanager
def lock(spool: Path, block: bool) -> Iterator[bool]:
    """Hold the spool's lock; yields ``False`` at once when ``block`` is off and another
    process holds it."""
    spool.mkdir(parents=True, exist_ok=True)
    with open(spool / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
