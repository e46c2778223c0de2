"""What the app tells a user when a request fails: :class:`AppError` for the requests it
cannot serve, the other errors whose message is meant for the user as it is
(:data:`APP_USER_ERRORS`), and :func:`message`, the one line the page shows for any
exception (the traceback of an unexpected one goes to the server log only)."""

from __future__ import annotations

from ..core.config import ConfigError
from ..core.errors import USER_ERRORS, StageError
from ..core.stage import format_error
from ..variants import VariantError


class AppError(StageError):
    """A request the app cannot serve; ``str()`` is one line saying why and what to do."""


#: Errors whose message is meant for the user as it is.
APP_USER_ERRORS: tuple[type[BaseException], ...] = (*USER_ERRORS, ConfigError, VariantError)


def message(exc: BaseException) -> str:
    """The one line shown in the page: the message of a user error, else the exception's
    type and first line (the traceback goes to the server log only)."""
    if isinstance(exc, APP_USER_ERRORS):
        return format_error(exc)
    text = str(exc).strip().splitlines()
    return f"internal error ({type(exc).__name__}: {text[0] if text else 'no message'})"
