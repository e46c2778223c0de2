"""The errors a user can cause, at the bottom of the stack.

Every module may import this one and it imports nothing of the project, so the one place
that turns user errors into a one-line message and an exit code
(:func:`musicrestore.core.stage.main_guard`) knows every kind without importing the modules
that raise them. Each message is one line and says what was wrong and, where it can, what to
do; :data:`USER_ERRORS` is the tuple the entry points catch.

A message quotes what the user gave only through :func:`quote` (and :func:`one_line` for
text built elsewhere): a value read from a user's file can be as large as the file allows
(a string of a million characters, a list of a million items, an integer whose ``repr``
raises), and a message must stay one short line whatever it quotes.
"""

from __future__ import annotations

import errno
import os
from typing import Any

#: Most characters of a user's value that a message quotes (:func:`quote`).
QUOTE_LIMIT = 80
#: Most characters of a text built elsewhere that a message repeats (:func:`one_line`).
TEXT_LIMIT = 300


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


#: ``errno`` -> the cause, for the ``OSError``\ s a user must fix outside the program (make
#: room, remount, give a shorter name): :func:`user_os_error` turns them into a
#: :class:`StorageError`, reported as one line like every other user error.
OS_CAUSES: dict[int, str] = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.ENAMETOOLONG: "file name too long",
}


class StorageError(OSError, StageError):
    """The file system refused a write (or a name) for a reason in :data:`OS_CAUSES`.

    Still an ``OSError`` with its ``errno`` (code that catches ``OSError`` keeps working) and
    a :class:`StageError` (every entry point reports it as one line). ``str(err)`` is
    ``<file>: <cause>``, or the cause alone when no file is known yet (a writer that only
    knows its temporary name leaves the naming to :func:`musicrestore.core.audio.atomic_path`).
    """

    def __init__(self, code: int, filename: str | os.PathLike[str] | None = None) -> None:
        cause = OS_CAUSES.get(code) or os.strerror(code)
        if filename is None:
            OSError.__init__(self, code, cause)
        else:
            OSError.__init__(self, code, cause, os.fspath(filename))

    def __str__(self) -> str:
        cause = str(self.strerror)
        return f"{self.filename}: {cause}" if self.filename is not None else cause

    def __reduce__(self) -> tuple[type, tuple[Any, Any]]:
        return (type(self), (self.errno, self.filename))


def user_os_error(
    exc: BaseException, filename: str | os.PathLike[str] | None = None
) -> StorageError | None:
    """``exc`` as a :class:`StorageError` naming ``filename`` (else ``exc``'s own file) when it
    is an ``OSError`` whose ``errno`` is in :data:`OS_CAUSES`; ``None`` for anything else."""
    if not isinstance(exc, OSError) or exc.errno not in OS_CAUSES:
        return None
    return StorageError(exc.errno, filename if filename is not None else exc.filename)


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (ending ``...`` when cut).

    Short values read exactly as ``repr`` writes them; a large one is never rendered whole:
    the rendering stops once it passes ``limit``, so quoting a nested list of a billion
    strings, a string of a gigabyte or a 5000-digit integer (whose ``repr`` raises) costs
    what quoting 80 characters does.
    """
    parts: list[str] = []
    left = [limit + 1]

    def emit(text: str) -> None:
        parts.append(text[: left[0]])
        left[0] -= len(text)
        if left[0] <= 0:
            raise _Full

    def items(opening: str, values: Any, closing: str) -> None:
        emit(opening)
        for i, x in enumerate(values):
            emit(", " if i else "")
            walk(x)
        emit(closing)

    def walk(v: Any) -> None:
        if isinstance(v, str | bytes):
            emit(repr(v[: limit + 1]))
        elif isinstance(v, dict):
            emit("{")
            for i, (k, x) in enumerate(v.items()):
                emit(", " if i else "")
                walk(k)
                emit(": ")
                walk(x)
            emit("}")
        elif isinstance(v, list):
            items("[", v, "]")
        elif isinstance(v, tuple):
            items("(", v, ",)" if len(v) == 1 else ")")
        elif isinstance(v, set | frozenset):
            name = "set" if isinstance(v, set) else "frozenset"
            if not v:
                emit(f"{name}()")
            else:
                items("{" if name == "set" else "frozenset({", v, "}" if name == "set" else "})")
        elif isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 1000:
            emit(f"<an integer of about {int(v.bit_length() * 0.30103) + 1} digits>")
        else:
            emit(repr(v))

    try:
        walk(value)
    except _Full:
        pass
    except Exception:  # a repr that fails: say what it was rather than fail the message
        parts = [f"<{type(value).__name__}>"]
    return one_line("".join(parts), limit)


class _Full(Exception):
    """:func:`quote` has rendered enough."""


def one_line(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` with its whitespace runs (newlines included) made single spaces, cut to
    ``limit`` characters (ending ``...`` when cut)."""
    text = " ".join(text[: 4 * limit + 4].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


#: What an entry point catches: :data:`USER_ERRORS` and every ``OSError``, of which it reports
#: those that :func:`is_user_error` accepts and re-raises the rest (bugs keep a traceback).
CAUGHT_ERRORS: tuple[type[BaseException], ...] = (*USER_ERRORS, OSError)


def is_user_error(exc: BaseException) -> bool:
    """Whether an entry point reports ``exc`` as one line (and exit 1) rather than a
    traceback: one of :data:`USER_ERRORS`, or an ``OSError`` with a cause in
    :data:`OS_CAUSES` raised where nothing turned it into a :class:`StorageError`."""
    return isinstance(exc, USER_ERRORS) or user_os_error(exc) is not None
