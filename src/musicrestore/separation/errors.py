"""The one error a separator raises, and how a foreign exception becomes part of its line."""

from __future__ import annotations

from ..core.errors import StageError


class SeparationError(StageError):
    """A separator that cannot be loaded or used; the message is one line saying what to do."""


def one_line(exc: BaseException) -> str:
    """``"<ExcType>: <message on one line>"`` (just the type when there is no message)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
