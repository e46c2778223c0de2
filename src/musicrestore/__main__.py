"""Command line: ``python -m musicrestore <command> ...``.

Commands:
    restore   restore a file or folder with any registered variant (``restore --list``)
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "restore":
        from .restore import main as restore_main

        return int(restore_main(rest) or 0)
    print(
        f"error: unknown command {command!r}; try 'python -m musicrestore --help'", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
