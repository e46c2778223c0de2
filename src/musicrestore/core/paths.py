"""Names read from data, checked before they become paths: the one checker.

A name that comes from a file or a request the package did not write itself (a manifest's
``id``, ``mixture``, ``target``; a params value such as ``msr.targets`` or a test set name;
a separator bag's signatures; a splits file's ``Artist|Song`` lines; a spool record; an
HTTP request of the app) is checked here before anything is opened or written under it
(docs/architecture.md, "One of each"):

- :func:`plain_name`: one file name, as an example id or a signature is: not empty, not
  ``.`` or ``..``, not hidden (a leading ``.``: the writers' own temporaries), no ``/`` or
  ``\\``, no control character (NUL, newline, ...), encodable, and short enough for the file
  system (:data:`NAME_MAX` bytes, less the ``room`` a suffix needs);
- :func:`inside`: a relative path below a folder (a manifest's ``mixture``): the same rules
  per component, not absolute, and still inside the folder once ``..`` and every symbolic
  link on the way are resolved.

Either refuses with :class:`UnsafePathError`, one line naming where the name was read (file
and line, or the params key) and why. The checks are string checks plus one ``resolve``;
an ordinary name passes unchanged, so what the pipeline writes for it is the same.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

from .errors import StageError, quote

#: Longest file name, in bytes, on every common file system (ext4, XFS, APFS, NTFS' UTF-16
#: aside); the temporary sibling of an atomic write fits too (``core.audio.temp_prefix``).
NAME_MAX = 255


class UnsafePathError(StageError, ValueError):
    """A name or relative path from data that would not stay a plain name inside its folder.

    A :class:`StageError` (every entry point reports it as one line) and a ``ValueError``
    (code that skips an unreadable manifest on ``ValueError``, as the app does, skips this
    one too)."""


def _component_problem(part: str, room: int = 0) -> str | None:
    """Why ``part`` is not one plain file name, or ``None``."""
    if not part:
        return "is empty"
    if part in (".", ".."):
        return "names a folder ('.' or '..'), not a file"
    if "/" in part or "\\" in part:
        return "holds a path separator ('/' or '\\')"
    if any(ord(c) < 32 or ord(c) == 127 for c in part):
        return "holds a control character (NUL, newline, ...)"
    if part.startswith("."):
        return "is hidden (starts with '.')"
    try:
        size = len(os.fsencode(part))
    except UnicodeError:
        return "is not encodable as a file name"
    if size + room > NAME_MAX:
        return f"is too long ({size} bytes; at most {NAME_MAX - room})"
    return None


def plain_name(name: Any, where: str, room: int = 0) -> str:
    """``name`` when it is one plain file name, else :class:`UnsafePathError`.

    Args:
        name: the value read from data (anything: a non-string is refused).
        where: where it was read, for the message: ``"<file>:<line>: id"``, ``"msr.targets"``.
        room: bytes the caller appends (``len(".wav")``), so the whole name still fits
            :data:`NAME_MAX`.
    """
    if not isinstance(name, str):
        raise UnsafePathError(f"{where}: {quote(name)} is not a name (a {type(name).__name__})")
    if problem := _component_problem(name, room):
        raise UnsafePathError(f"{where}: {quote(name)} {problem}; expected a plain file name")
    return name


def inside(folder: str | os.PathLike[str], relpath: Any, where: str) -> Path:
    """``Path(folder) / relpath`` when ``relpath`` is a relative path that stays inside
    ``folder``, also after resolving ``..`` and symbolic links; else :class:`UnsafePathError`.

    Components may be any plain name except that none may be hidden, ``.`` and ``..`` are
    allowed as long as the result stays below ``folder`` (``a/../b`` is ``b``). The path
    returned is the joined one, not the resolved one, so messages and outputs name it as
    before.
    """
    text = os.fspath(relpath) if isinstance(relpath, os.PathLike) else relpath
    if not isinstance(text, str):
        raise UnsafePathError(f"{where}: {quote(relpath)} is not a path (a {type(text).__name__})")
    said = f"{where}: {quote(text)}"
    if not text:
        raise UnsafePathError(f"{said} is empty; expected a path relative to {folder}")
    if posixpath.isabs(text) or os.path.isabs(text):
        raise UnsafePathError(f"{said} is absolute; expected a path relative to {folder}")
    for part in text.split("/"):
        if part in ("", ".", ".."):
            continue  # doubled slashes and dots: judged by where they lead, below
        if problem := _component_problem(part):
            raise UnsafePathError(f"{said}: the part {quote(part)} {problem}")
    normal = posixpath.normpath(text)
    if normal == ".":
        raise UnsafePathError(f"{said} is {folder} itself, not a file in it")
    if normal == ".." or normal.startswith("../"):
        raise UnsafePathError(f"{said} leaves {folder} (through '..')")
    base = Path(folder)
    joined = base / text
    try:
        real_base, real = base.resolve(), joined.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise UnsafePathError(f"{said} cannot be resolved ({type(exc).__name__})") from None
    if real == real_base or real_base not in real.parents:
        raise UnsafePathError(f"{said} leaves {folder} (through a symbolic link, to {real})")
    return joined
