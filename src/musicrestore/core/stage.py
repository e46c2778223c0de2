"""What every stage script shares: params loading, atomic output folders, one-line errors.

Stage scripts in ``stages/`` are thin: they parse paths (which live in ``dvc.yaml``), read
their own section of ``params.yaml`` with :func:`load_params`, call the library, and write
outputs through :func:`output_dir` so an interrupted stage never leaves a folder that looks
complete. :func:`main_guard` turns the errors a user can cause into one line on stderr and a
non-zero exit instead of a traceback, and turns Ctrl-C and SIGTERM (what a scheduler or
``timeout`` sends) into exceptions, so every ``finally`` that removes a temporary file or folder
runs before the process exits with the shell's usual code (130, 143). Before that, while the
script's modules import, :func:`musicrestore.exit_on_signals` (called at the top of every
stage script) gives the same line and code; a full disk, a read-only file system or a
quota is one line too (:func:`~musicrestore.core.errors.is_user_error`).
"""

from __future__ import annotations

import contextlib
import functools
import glob
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .audio import _umask, temp_prefix
from .config import load_yaml
from .errors import CAUGHT_ERRORS, StageError, is_user_error, user_os_error
from .errors import USER_ERRORS as USER_ERRORS  # re-exported: stage.USER_ERRORS

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(KeyboardInterrupt):
    """SIGTERM raised as an exception (a subclass of :class:`KeyboardInterrupt`, so code that
    already cleans up after Ctrl-C cleans up after ``kill`` too, and ``except Exception``
    never swallows it)."""

    exit_code = 143


def exit_code(exc: KeyboardInterrupt) -> int:
    """The shell's code for the signal behind ``exc``: 143 for SIGTERM, 130 for SIGINT."""
    return int(getattr(exc, "exit_code", 130))


def interrupted_message(exc: KeyboardInterrupt) -> str:
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (SIGINT)"


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """While active, SIGINT raises :class:`KeyboardInterrupt` and SIGTERM :class:`Terminated`.

    Python's default for SIGTERM is to die at once, skipping every ``finally``: a temporary
    output (``.out.wav.XXXX.tmp``, a staged folder) would stay behind. After the first signal
    both are ignored until the handlers are restored, so a second Ctrl-C cannot interrupt the
    cleanup the first one started. Only the main thread can install handlers; elsewhere this
    does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back during a few renames that must happen together; a signal
    that arrives meanwhile is delivered (and raised) right after."""
    mask = getattr(signal, "pthread_sigmask", None)
    if mask is None:  # pragma: no cover - not POSIX
        yield
        return
    old = mask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        mask(signal.SIG_SETMASK, old)


def format_error(exc: BaseException) -> str:
    """One line for a user error; an ``OSError`` names its file first (``out.wav: Permission
    denied``) rather than Python's ``[Errno 13] ...: 'out.wav'``, and one of
    :data:`~musicrestore.core.errors.OS_CAUSES` says its cause in those words (``out.wav:
    read-only file system``)."""
    if isinstance(exc, OSError) and (err := user_os_error(exc)) is not None:
        exc = err
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        msg = f"{exc.filename}: {exc.strerror}"
    else:
        msg = str(exc)
    return " ".join(msg.split()) or type(exc).__name__


def load_params(path: str | os.PathLike[str] = "params.yaml", section: str | None = None) -> Any:
    """Read ``params.yaml`` (or one top-level ``section`` of it) through the one safe YAML
    loader (:func:`musicrestore.core.config.load_yaml`: no anchors or aliases, bounded size
    and depth); every problem is a :class:`StageError` of one line naming the file."""
    path = Path(path)
    params = load_yaml(path, "params file") or {}
    if not isinstance(params, dict):
        raise StageError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    if section is None:
        return params
    if section not in params:
        raise StageError(f"{path}: missing section {section!r}")
    return params[section]


@contextlib.contextmanager
def output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    On failure the temporary folder is removed and whatever was at ``path`` stays as it was.
    A process killed outright (SIGKILL, power loss) cannot clean up: its hidden
    ``.<name>.XXXXXXXX.tmp`` folder is never taken for the output, and the next run for
    ``path`` removes it. One writer per output at a time, as DVC's lock guarantees. The
    temporary names fit whatever name ``path`` has
    (:func:`~musicrestore.core.audio.temp_prefix`); an ``OSError`` whose cause the user must
    fix outside the program (a read-only file system, no space left, a quota) is a
    :class:`~musicrestore.core.errors.StorageError` naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if (err := user_os_error(exc)) is None:
            raise
        raise err from None
    prefix = temp_prefix(path)
    for stale in path.parent.glob(f"{glob.escape(prefix)}{'?' * 8}.tmp"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run that was killed (SIGKILL)
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder normal permissions
        with signals_deferred():  # never stop between moving the old output away and the swap
            if path.is_symlink() or path.is_file():
                path.unlink()
            elif path.exists():
                old = path.with_name(f"{temp_prefix(path, room=3)}old")
                shutil.rmtree(old, ignore_errors=True)
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old, ignore_errors=True)
                return
            tmp.rename(path)
    except OSError as exc:
        if (err := user_os_error(exc, path)) is None:
            raise
        raise err from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOGLEVEL", "INFO"), format="%(message)s", stream=sys.stderr
    )


def main_guard(func: F) -> F:
    """Decorate a stage's ``main``: user errors (a :class:`StageError`, so also
    :class:`musicrestore.core.config.ConfigError`, and an ``OSError`` such as a full disk or
    a read-only file system: :func:`~musicrestore.core.errors.is_user_error`) print
    ``error: <one line>`` and exit 1; Ctrl-C exits 130 and SIGTERM 143, each with one line,
    after the temporary outputs are removed."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            with signals_as_exceptions():
                return func(*args, **kwargs)
        except CAUGHT_ERRORS as exc:
            if not is_user_error(exc):
                raise
            print(f"error: {format_error(exc)}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt as exc:
            print(f"error: {interrupted_message(exc)}", file=sys.stderr)
            raise SystemExit(exit_code(exc)) from None

    return wrapper  # type: ignore[return-value]
