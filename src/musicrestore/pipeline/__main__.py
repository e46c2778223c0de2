"""``python -m musicrestore.pipeline``: the same as ``python -m musicrestore pipeline``."""

import sys

from .render import main

sys.exit(main())
