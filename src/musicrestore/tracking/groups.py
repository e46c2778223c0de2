"""Run groups: every stage run of one ``dvc repro`` / ``dvc exp run`` shares one group id,
under which the stage runs are nested (see :mod:`musicrestore.tracking`)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any


def _start_stamp(proc: Any) -> int:
    """A process's start, fixed for its lifetime: on Linux the clock ticks after boot from
    ``/proc/<pid>/stat``. psutil's ``create_time()`` adds a boot time it re-derives from
    the wall clock on every call, so on a machine whose clock is adjusted while a long
    ``dvc repro`` runs, the stages of one run got three different group ids."""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return int(proc.create_time())


def group_id() -> str:
    """Id shared by all stages of one ``dvc repro`` / ``dvc exp run``: ``MUSICRESTORE_RUN_GROUP``
    when set, else the ``dvc`` process that launched the stage (its pid and start time, found
    by walking up the process tree), else a new standalone id that children inherit."""
    if gid := os.environ.get("MUSICRESTORE_RUN_GROUP"):
        return gid
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            cmd = " ".join(proc.cmdline()[:3])
            if "dvc" in Path(proc.cmdline()[0]).name or " -m dvc" in cmd or "/dvc " in cmd + " ":
                return f"dvc-{proc.pid}-{_start_stamp(proc)}"
            proc = proc.parent()
    except Exception:  # no psutil permission, zombie parent...: a standalone run
        pass
    gid = f"standalone-{uuid.uuid4().hex[:12]}"
    os.environ["MUSICRESTORE_RUN_GROUP"] = gid  # children of this process join it
    return gid
