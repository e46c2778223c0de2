"""``python -m musicrestore.tracking flush|status`` (:mod:`musicrestore.tracking.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
