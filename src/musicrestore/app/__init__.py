"""The interactive restoration app (seed 000 §3, "Implementation notes aligned with the
app"; docs/method.md): Generate, Degrade, Restore, Compare, Reset.

- :mod:`.core`: what each tab does, without Gradio (sources, degradation, restoration,
  comparison, availability of the variants' models, the ``app:`` params block);
- :mod:`.ui`: the Gradio page (layout, events, queue);
- :mod:`.server`: ``python -m musicrestore app [--params params.yaml] [--port N]``.

Gradio is imported only by :mod:`.ui` and :mod:`.server`'s ``main``.
"""

from .core import APP_DEFAULTS, AppError, Project, Session, Workspace, app_settings
from .server import main

__all__ = ["APP_DEFAULTS", "AppError", "Project", "Session", "Workspace", "app_settings", "main"]
