"""Demucs' sources and which one carries a taxonomy target (seed 001, "Source separation")."""

from __future__ import annotations

from collections.abc import Sequence

from ..data.taxonomy import parse_target
from .errors import SeparationError

#: Demucs' four sources, in its order (``demucs.pretrained.SOURCES``).
SOURCES: tuple[str, ...] = ("drums", "bass", "other", "vocals")

#: First-level group -> Demucs source (seed 001: vocals, drums, bass, "others").
_GROUP_SOURCE = {"Voc": "vocals", "Rhy": "drums", "Bass": "bass"}


def target_source(target: str, sources: Sequence[str] | None = None) -> str:
    """Demucs source that carries a taxonomy target (``"Voc"``, ``"Gtr_EG"``, ``"Rhy"``, ...).

    Voc -> vocals, Rhy -> drums, Bass -> bass, every other group -> other (seed 001). With a
    6-source model (``htdemucs_6s``: ``sources`` containing ``guitar`` / ``piano``) guitars map
    to ``guitar`` and keyboards to ``piano``.

    Raises:
        LayoutError: an unknown group or sub-group.
        SeparationError: ``MiscRoom`` (room microphones bleed every instrument; no source).
    """
    group, _ = parse_target(target)
    if group == "MiscRoom":
        raise SeparationError("MiscRoom (room microphones) is not a separable source")
    if sources is not None:
        if group == "Gtr" and "guitar" in sources:
            return "guitar"
        if group == "Kbs" and "piano" in sources:
            return "piano"
    return _GROUP_SOURCE.get(group, "other")
