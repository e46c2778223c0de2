"""``python -m musicrestore.tracking flush|status``: send the spooled records now, or count
them (see :mod:`musicrestore.tracking`)."""

from __future__ import annotations

import argparse
import logging
import sys

from .flusher import drain, flush
from .server import shorten
from .settings import FLUSHER_LINGER_S, ON_SERVER_DOWN, spool_dir
from .spool import pending

log = logging.getLogger(__package__)  # the package's logger: its per-record warnings


def main(argv: list[str] | None = None) -> int:
    """``python -m musicrestore.tracking flush|status``."""
    parser = argparse.ArgumentParser(prog="python -m musicrestore.tracking")
    parser.add_argument("command", choices=["flush", "status"])
    parser.add_argument(
        "--background",
        action="store_true",
        help="what a stage starts: skip if a flusher runs, linger for the next records",
    )
    parser.add_argument(
        "--on-server-down",
        choices=ON_SERVER_DOWN,
        help="for every record, instead of the tracking.on_server_down each was made with "
        "(e.g. local: put records waiting for a server that is gone into mlflow.db)",
    )
    args = parser.parse_args(argv)
    spool = spool_dir()
    if args.command == "status":
        print(f"{len(pending(spool))} record(s) waiting in {spool}")
        return 0
    if args.background:
        flush(spool, block=False, linger_s=FLUSHER_LINGER_S, mode=args.on_server_down)
        return 0
    log.setLevel(logging.ERROR)  # the one line below says what the per-record warning would
    done = drain(spool, block=True, linger_s=0.0, mode=args.on_server_down)
    left = len(pending(spool))
    head = f"sent {done.sent} record(s) to MLflow"
    if done.missed is not None:
        server, msg, local = done.missed
        head += f" ({done.local} to the local store {local}: {server} did not take them: {shorten(msg)})"
    if done.failed is None:
        print(f"{head}; {left} waiting in {spool}")
        return 0
    server, msg, mode = done.failed
    if mode != "spool":
        print(
            f"error: MLflow server {server} did not take {left} record(s) ({shorten(msg)}); "
            f"they stay in {spool} (tracking.on_server_down: {mode})",
            file=sys.stderr,
        )
        return 1
    print(
        f"{head}; {left} stay in {spool}: {server} did not take them "
        f"({shorten(msg)}); run this again when it is back"
    )
    return 0
