"""What every stage script shares: params loading, atomic output folders, one-line errors.

Stage scripts in ``stages/`` are thin: they parse paths (which live in ``dvc.yaml``), read
their own section of ``params.yaml`` with :func:`load_params`, call the library, and write
outputs through :func:`output_dir` so an interrupted stage never leaves a folder that looks
complete. :func:`main_guard` turns the errors a user can cause into one line on stderr and a
non-zero exit instead of a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .audio import AudioError, _umask
from .taxonomy import LayoutError

F = TypeVar("F", bound=Callable[..., Any])


class StageError(RuntimeError):
    """A failure the user can fix; the message says what was wrong and what to do."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    StageError,
    AudioError,
    LayoutError,
    FileNotFoundError,
    NotADirectoryError,
    PermissionError,
)


def load_params(path: str | os.PathLike[str] = "params.yaml", section: str | None = None) -> Any:
    """Read ``params.yaml`` (or one top-level ``section`` of it)."""
    path = Path(path)
    if not path.is_file():
        raise StageError(f"{path}: params file not found")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StageError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if section is None:
        return params
    if section not in params:
        raise StageError(f"{path}: missing section {section!r}")
    return params[section]


@contextlib.contextmanager
def output_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    On failure the temporary folder is removed and whatever was at ``path`` stays as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder normal permissions
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old, ignore_errors=True)
            return
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOGLEVEL", "INFO"), format="%(message)s", stream=sys.stderr
    )


def main_guard(func: F) -> F:
    """Decorate a stage's ``main``: user errors print ``error: <one line>`` and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setup_logging()
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            msg = " ".join(str(exc).split()) or type(exc).__name__
            print(f"error: {msg}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
