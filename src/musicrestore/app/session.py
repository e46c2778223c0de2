"""What one browser session holds: the loaded source, its reference and input, the
degradation that made the input, and the restored outputs (:class:`Session`, each output an
:class:`Output`), all as float WAV files in the session's folder; the app's scratch folder
of sessions (:class:`Workspace`) and the session Reset starts over with (:func:`reset`)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import check_audio, save_audio

#: Restored outputs one session may keep (its files live until Reset or the session ends).
MAX_SESSION_OUTPUTS = 24

#: ``progress(fraction, text)``: what a long request reports as it goes.
ProgressFn = Callable[[float, str], None]


@dataclasses.dataclass
class Output:
    """One restored signal of a session."""

    label: str
    path: Path
    variant: str
    target: str | None
    params: dict[str, Any]
    decisions: dict[str, Any]
    compute_s: float


@dataclasses.dataclass
class Session:
    """What one browser session has loaded and made; its audio lives in ``folder`` as
    float WAV (exact, and playable in browsers)."""

    folder: Path
    sr: int = 0
    origin: str = ""
    source: Path | None = None  # the clean signal Degrade starts from
    reference: Path | None = None  # what outputs are scored against (None: no reference)
    input: Path | None = None  # what Restore restores (degraded, or an uploaded input)
    effects: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    degrade_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: dict[str, Output] = dataclasses.field(default_factory=dict)
    counter: int = 0

    def restart(self, origin: str) -> Session:
        """This session emptied for a new input from ``origin``: its earlier files and
        outputs belong to another input (the file counter goes on)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        return Session(self.folder, origin=origin, counter=self.counter)

    def new_path(self, stem: str) -> Path:
        """A fresh file name in the session folder (a new name each time, so a browser never
        plays a stale cached copy)."""
        self.counter += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_") or "audio"
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{self.counter:03d}_{safe}.wav"

    def save(self, stem: str, wave: np.ndarray, sr: int) -> Path:
        return save_audio(self.new_path(stem), wave, sr, subtype="FLOAT")

    def describe(self) -> str:
        """One Markdown paragraph: what is loaded."""
        if self.input is None:
            return "Nothing loaded yet."
        wave_info = _info_of(self.input)
        parts = [f"**{self.origin}**: {wave_info}."]
        parts.append(
            "Reference kept for scoring."
            if self.reference is not None
            else "No reference: Compare shows the non-intrusive metrics only."
        )
        if self.effects:
            parts.append(f"Degraded with {', '.join(e['name'] for e in self.effects)}.")
        elif self.degrade_info:
            parts.append("Degraded, but no effect fired (the input equals the reference).")
        if self.outputs:
            parts.append(f"Restored: {', '.join(self.outputs)}.")
        return " ".join(parts)

    def comparable(self) -> list[str]:
        return list(self.outputs)


def _info_of(path: Path) -> str:
    sr, channels, frames = check_audio(path)
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels} ch")
    return f"{frames / sr:.2f} s, {sr} Hz, {layout}"


class Workspace:
    """The app's scratch folder: one sub-folder per session, all removed on close."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="musicrestore-app-"))
        else:
            self.root = Path(root)
            self.root.mkdir(parents=True, exist_ok=True)

    def new_session(self) -> Session:
        return Session(self.root / uuid.uuid4().hex)

    def drop(self, session: Session | None) -> None:
        """Remove a session's files (Reset, or Gradio discarding the session)."""
        if isinstance(session, Session) and self.root in session.folder.parents:
            shutil.rmtree(session.folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def reset(workspace: Workspace, session: Session | None) -> Session:
    """Forget everything the session made; a fresh, empty session."""
    workspace.drop(session)
    return workspace.new_session()
