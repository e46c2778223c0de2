"""Command line: ``python -m musicrestore <command> ...``.

Commands:
    restore   restore a file or folder with any registered variant (``restore --list``)
    pipeline  write dvc.yaml from the registry (``pipeline --check``: is it up to date?)
    app       serve the interactive restoration app on 127.0.0.1 (``app --port N``)
"""

from __future__ import annotations

import signal
import sys

from . import exit_on_signals


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. Ctrl-C and SIGTERM give 130 and 143 with one line
    from the first instant (:func:`musicrestore.exit_on_signals`, while the command's
    modules import), then through the command's own handlers."""
    previous = exit_on_signals()
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "restore":
        from .cli import main as restore_main

        return int(restore_main(rest) or 0)
    if command == "pipeline":
        from .pipeline import main as pipeline_main

        return pipeline_main(rest)
    if command == "app":
        from .app import main as app_main

        return app_main(rest)
    from .core.errors import quote

    print(
        f"error: unknown command {quote(command)}; try 'python -m musicrestore --help'",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
