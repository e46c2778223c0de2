"""Draining the spool: after a stage writes its record, :func:`dispatch` flushes it (in the
stage, in a detached ``python -m musicrestore.tracking flush --background``, or not at all);
:func:`flush` sends every waiting record to its store, falling back to the local store in
``local`` mode (see :mod:`musicrestore.tracking`)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from .server import redact, server_problem
from .settings import flush_mode, spool_dir, tracking_uri
from .spool import lock, pending
from .store import send

log = logging.getLogger(__package__)  # the package's logger, which ``flush`` quiets


def dispatch(spool: Path) -> None:
    """Flush ``spool`` as ``MUSICRESTORE_TRACKING_FLUSH`` says, after a record was written."""
    mode = flush_mode()
    if mode == "sync":
        flush(spool, block=True)
    elif mode == "background":
        with lock(spool, block=False) as free:
            if not free:  # a flusher is running; it picks this record up before it exits
                return
        subprocess.Popen(
            [sys.executable, "-m", "musicrestore.tracking", "flush", "--background"],
            env={**os.environ, "MUSICRESTORE_TRACKING_SPOOL": str(spool)},
            start_new_session=True,  # survives the stage, is not killed by its Ctrl-C
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )


def flush(
    spool: Path | None = None, block: bool = True, linger_s: float = 0.0, mode: str | None = None
) -> int:
    """Send every spooled record to MLflow; returns how many a store accepted.

    Holds the spool's lock so only one flusher runs; without ``block`` it returns 0 at once
    when another flusher holds it. With ``linger_s`` it waits that long for new records
    before returning. A record goes to its own server, or in ``local`` mode to the local
    store when the server does not take it (``mode`` overrides each record's own
    ``tracking.on_server_down``); one that no store takes stays in the spool (its error is
    appended to ``flush.log`` there) and flushing stops, so nothing is lost or reordered.
    """
    return drain(spool or spool_dir(), block, linger_s, mode).sent


@dataclasses.dataclass
class Flushed:
    """What one :func:`drain` did."""

    sent: int = 0  #: records a store accepted, the local fallbacks included
    local: int = 0  #: records sent to the local store because their server did not take them
    #: (server, error, local store) of the last local fallback
    missed: tuple[str, str, str] | None = None
    #: (server, error, mode) of the record that no store took and that stopped the flush
    failed: tuple[str, str, str] | None = None


def drain(spool: Path, block: bool, linger_s: float, mode: str | None = None) -> Flushed:
    """:func:`flush`, with what it did."""
    done = Flushed()
    problems: dict[str, str | None] = {}  # server -> why it is down, asked once per flush

    def stop(path: Path, uri: str, msg: str, record_mode: str) -> Flushed:
        with open(spool / "flush.log", "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {path.name}: {msg}\n")
        log.warning("MLflow: %s stays in %s (%s)", path.name, spool, msg)
        done.failed = (redact(uri), msg, record_mode)
        return done

    while True:
        with lock(spool, block) as held:
            if not held:
                return done
            idle_since = time.monotonic()
            while True:
                records = pending(spool)
                if not records:
                    if time.monotonic() - idle_since >= linger_s:
                        break
                    time.sleep(0.5)
                    continue
                for path in records:
                    try:
                        record = json.loads(path.read_text())
                        uri = str(record["tracking_uri"])
                    except (OSError, ValueError, KeyError, TypeError) as exc:
                        return stop(
                            path, tracking_uri(), f"unreadable record: {exc}", mode or "spool"
                        )
                    record_mode = mode or str(record.get("on_server_down", "spool"))
                    if uri not in problems:
                        problems[uri] = server_problem(uri)
                    try:
                        if problems[uri]:
                            raise ConnectionError(f"no answer from {uri}: {problems[uri]}")
                        send(path, record, uri)
                    except Exception as exc:
                        msg = " ".join(str(exc).split())[:500]
                        local = str(record.get("local_uri") or "")
                        if record_mode != "local" or not local or local == uri:
                            return stop(path, uri, msg, record_mode)
                        try:
                            send(path, record, local, {"fallback_from": redact(uri)})
                        except Exception as exc2:
                            return stop(path, uri, f"{msg}; local store {local}: {exc2}", "local")
                        done.local += 1
                        done.missed = (redact(uri), msg, local)
                    done.sent += 1
                idle_since = time.monotonic()
        # A stage may have spooled a record after the last look but before the lock was
        # released (it then saw the lock taken and started no flusher): look once more.
        if not pending(spool):
            return done
