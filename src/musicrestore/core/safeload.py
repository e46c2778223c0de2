"""The one way this package reads a torch pickle it did not write: nothing in it may run.

``torch.load(weights_only=True)`` unpickles tensors, plain containers and numbers, and only
the extra globals a caller names (``allow``); anything else in the pickle (``os.system``, a
class with a ``__reduce__``, an unknown module) stops the unpickler before it is called. A
refusal is :class:`RefusedPickle`, one line naming the file and what it asked for; the
callers add what to do (docs/architecture.md, "One of each"). The two readers are the Demucs
package loader (:mod:`musicrestore.separation.loading`, which allows the Demucs model classes
by name) and the training engine's resume (:mod:`musicrestore.train.engine`, which allows
nothing beyond torch's own list: its work checkpoints hold tensors and plain values only).
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Sequence
from typing import Any

from .errors import StageError, one_line

#: What :func:`weights_only_load` accepts in ``allow``: an object, or ``(object, "module.name")``
#: to unpickle the global ``module.name`` as that object (a stand-in that runs nothing).
Allowed = Any


class RefusedPickle(StageError):
    """A pickle that needs something outside the allowlist (or is no torch file at all).

    ``needs``: the global it asked for (``"posix.system"``), ``None`` when the unpickler
    stopped at something else (an opcode it does not run, bytes that are no pickle)."""

    def __init__(self, message: str, needs: str | None = None) -> None:
        super().__init__(message)
        self.needs = needs


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_REASON = re.compile(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", re.S)


def refusal(exc: BaseException) -> tuple[str, str | None]:
    """``(why, global name or None)`` of a weights-only ``UnpicklingError``, on one line
    (torch's own text is a paragraph that suggests turning the check off)."""
    text = str(exc)
    if found := _GLOBAL.search(text):
        return f"it needs {found.group(1)}, which is not on the allowlist", found.group(1)
    reason = _REASON.search(text)
    detail = one_line(reason.group(1), 120) if reason else one_line(text, 120)
    return f"not a torch file the weights-only unpickler reads ({detail})", None


def weights_only_load(
    path: str | os.PathLike[str],
    allow: Sequence[Allowed] = (),
    *,
    mmap: bool = False,
) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with ``allow`` as the only
    extra globals.

    Raises:
        RefusedPickle: the pickle needs a global outside the allowlist, or holds an opcode
            the weights-only unpickler does not run; one line naming ``path``.
        RuntimeError, EOFError, OSError: torch's own, for a truncated or unreadable file
            (callers decide whether that is an error or a stale file).
    """
    import torch

    try:
        with torch.serialization.safe_globals(list(allow)), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "pickle protocol 4 ...": the verdict follows
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        why, needs = refusal(exc)
        raise RefusedPickle(f"{path}: refused to unpickle: {why}", needs) from None
