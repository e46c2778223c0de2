"""The interactive restoration app (seed 000 §3, "Implementation notes aligned with the
app"; docs/method.md): Generate, Degrade, Restore, Compare, Reset, on the pipeline's own
pieces.

This package owns the app: what each tab does, without Gradio, so every function is testable
on its own, and the page that wires it up. One module per concern:

- :mod:`.project`: the ``app:`` params block, the pipeline outputs the app reads (which
  variants can run, the ``dvc repro`` target that makes a missing model, the test-set
  clips, the report's scores) and the variants' contexts;
- :mod:`.session`: one browser session's signals and outputs, the scratch workspace, Reset;
- :mod:`.sources`: MusicGen, test-set clips and uploads as a session's source;
- :mod:`.degradation`: the Degrade tab (the pipeline's chains, at a strength, seeded);
- :mod:`.restoration`: the Restore tab (any available variant, chunked, with progress);
- :mod:`.comparison`: the Compare tab (figures and per-segment metrics);
- :mod:`.errors`: :class:`AppError` and the one line the page shows for any error;
- :mod:`.ui`: the Gradio page (layout, events, queue);
- :mod:`.server`: ``python -m musicrestore app [--params params.yaml] [--port N]``.

What it may import: it is an entry point (docs/architecture.md, "The layers"), so every
layer below it: :mod:`musicrestore.core` (audio, config, errors, stage helpers),
:mod:`musicrestore.data` (manifests, taxonomy, MusicGen), :mod:`musicrestore.degrade` (the
degradation chains), :mod:`musicrestore.variants` (the registry and the restore engine),
:mod:`musicrestore.evaluation` (segments and metrics), :mod:`musicrestore.report` (figures),
and :mod:`musicrestore.pipeline` for where the pipeline writes what and which stage writes
it (imported inside functions). Nothing in the package imports the app except the
``python -m musicrestore`` dispatcher. Gradio is imported only by :mod:`.ui` and
:mod:`.server`'s ``main``.
"""

from .errors import AppError
from .project import APP_DEFAULTS, Project, app_settings
from .server import main
from .session import Session, Workspace

__all__ = ["APP_DEFAULTS", "AppError", "Project", "Session", "Workspace", "app_settings", "main"]
