"""The errors a user can cause, at the bottom of the stack.

Every module may import this one and it imports nothing of the project, so the one place
that turns user errors into a one-line message and an exit code
(:func:`musicrestore.core.stage.main_guard`) knows every kind without importing the modules
that raise them. Each message is one line and says what was wrong and, where it can, what to
do; :data:`USER_ERRORS` is the tuple the entry points catch.
"""

from __future__ import annotations

import os


class StageError(RuntimeError):
    """A failure the user can fix; the message says what was wrong and what to do. The base
    of the project's own error classes (config, checkpoint, separation, variant, ...)."""


class AudioError(ValueError):
    """An input that is not usable audio. ``str(err)`` is one line: ``<file>: <problem>``."""

    def __init__(self, source: str | os.PathLike[str], problem: str) -> None:
        self.source = str(source)
        self.problem = " ".join(problem.split())  # keep the message on one line
        super().__init__(f"{self.source}: {self.problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # raised in a process pool's worker, it must survive pickling back to the parent
        return (type(self), (self.source, self.problem))


class ManifestError(ValueError):
    """A manifest line that is not a dataset example; the message names file and line."""


class LayoutError(ValueError):
    """A folder that does not follow the RawStems layout; the message is one line."""


#: What the entry points report as one line (and a non-zero exit) instead of a traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    StageError,
    AudioError,
    LayoutError,
    FileNotFoundError,
    FileExistsError,  # a file where a folder must be created (``OUT/`` naming a file)
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ManifestError,
)
