"""``python -m musicrestore app [--params params.yaml] [--port N]``: serve the restoration
app (seed 000 §3, "Implementation notes aligned with the app") on 127.0.0.1.

It reads what the pipeline made under the project folder (the folder of ``--params``):
``models/`` (the separator and learned checkpoints), ``data/`` (test sets), ``reports/``
(each variant's headline scores); on a fresh
clone the DSP variants run and the page names the missing models and the ``dvc repro``
command that makes each. Ctrl-C (or SIGTERM) stops the server and removes the session files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..core.errors import CAUGHT_ERRORS, is_user_error
from ..core.stage import format_error, setup_logging, signals_as_exceptions
from .errors import APP_USER_ERRORS
from .project import Project
from .session import Workspace

HOST = "127.0.0.1"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="musicrestore app",
        description="Serve the restoration app on 127.0.0.1: load or generate a source, "
        "degrade it, restore it with any variant whose models exist, compare the outputs.",
    )
    p.add_argument("--params", help="params.yaml (its folder is the project root)")
    p.add_argument(
        "--port", type=int, help=f"port on {HOST} (default: the first free one from 7860)"
    )
    return p


def port_taken(port: int | None) -> str:
    """The one line for a port that cannot be bound, in this command's own terms."""
    if port is None:
        return f"no free port on {HOST} from 7860 on: give one with --port N"
    return f"port {port} on {HOST} is taken (another app?): give another with --port N"


def main(argv: Sequence[str] | None = None) -> int:
    """Start the app, print its URL, serve until interrupted; 0 on Ctrl-C, 1 on a user
    error (bad params, port taken), with one line on stderr."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up probes
    if args.port is not None and not 0 < args.port < 65536:
        print(f"error: --port {args.port}: must be in 1..65535", file=sys.stderr)
        return 1
    workspace = None
    demo = None
    try:
        with signals_as_exceptions():
            project = Project.load(args.params)
            from .ui import build_app, launch_kwargs

            workspace = Workspace(max_bytes=project.settings["max_workspace_mb"] * 2**20)
            demo = build_app(project, workspace)
            try:
                _, url, _ = demo.launch(
                    server_name=HOST,
                    server_port=args.port,
                    prevent_thread_lock=True,
                    **launch_kwargs(project, workspace),
                )
            except OSError:  # the port is taken (Gradio's message names its own API)
                print(f"error: {port_taken(args.port)}", file=sys.stderr)
                return 1
            print(f"musicrestore app: {url} (Ctrl-C stops it)", flush=True)
            demo.block_thread()
    except (*CAUGHT_ERRORS, *APP_USER_ERRORS) as exc:
        if not (is_user_error(exc) or isinstance(exc, APP_USER_ERRORS)):
            raise
        print(f"error: {format_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        if demo is not None:
            demo.close(verbose=False)
        if workspace is not None:
            workspace.close()
    return 0
