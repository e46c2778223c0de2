"""What one browser session holds: the loaded source, its reference and input, the
degradation that made the input, and the restored outputs (:class:`Session`, each output an
:class:`Output`), all as float WAV files in the session's folder; the app's scratch folder
of sessions (:class:`Workspace`): who may write in a session folder and when it is removed
(Reset, a closed tab, the disk cap), and the session Reset starts over with (:func:`reset`).

A request that works in a session holds the session's slot (:meth:`Workspace.job`); Reset,
a closed tab and the disk cap first ask a running request to stop (it checks between
chunks), wait for the slot, and only then forget the folder. The files themselves go a grace
period later (:data:`GRACE_S`), because Gradio copies a request's output files into its own
cache *after* the handler has returned: deleting them at once is what turned a Reset
during Compare into a raw ``FileNotFoundError`` toast.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import check_audio, save_audio
from .errors import AppError

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
    table: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # last Compare

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

    def preview(self, path: Path) -> tuple[Path, str]:
        """What a browser player gets for the session file ``path``: an Ogg Vorbis copy
        (:func:`write_preview`, a small fraction of the float WAV, which stays for download),
        and a note for the player's label, non-empty when the signal peaks above 0 dBFS
        and the copy is scaled down to play without clipping. Made once per file (a file
        of a session is never rewritten: :meth:`new_path`)."""
        out = path.with_name(f"{path.stem}.preview.ogg")
        note_file = out.with_suffix(".note")
        if not out.is_file():
            note = write_preview(path, out)
            note_file.write_text(note)
        return out, note_file.read_text() if note_file.is_file() else ""

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


#: Frames per block when a preview is encoded (libsndfile's Vorbis encoder crashes on very
#: large single writes; blocks also bound the memory of the encoder's input).
PREVIEW_BLOCK = 65536
#: The peak a preview of a signal above full scale is scaled to (-1 dBFS).
PREVIEW_PEAK = 10 ** (-1 / 20)


def write_preview(src: Path, dest: Path) -> str:
    """Encode ``src`` as Ogg Vorbis at ``dest`` (written atomically), scaled to peak at
    :data:`PREVIEW_PEAK` if it peaks above 0 dBFS, and return the note that says so (``""``
    when unscaled).
    Vorbis plays in every current browser and takes about 1 s per minute of stereo audio
    on one core here; a player never receives a signal above full scale unannounced."""
    import soundfile as sf

    from ..core.audio import atomic_path, load_audio

    wave, sr = load_audio(src)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    note = ""
    if peak > 1.0:  # to -1 dBFS: the lossy codec overshoots a scaled-to-1.0 peak
        over_db = 20 * np.log10(peak)
        wave = wave * (PREVIEW_PEAK / peak)
        note = (
            f" (peaks at +{over_db:.1f} dBFS: played {over_db + 1:.1f} dB quieter; "
            "the download is as made)"
        )
    frames = np.ascontiguousarray(wave.T, dtype=np.float32)
    with (
        atomic_path(dest) as tmp,
        sf.SoundFile(tmp, "w", sr, frames.shape[1], format="OGG", subtype="VORBIS") as f,
    ):
        for i in range(0, len(frames), PREVIEW_BLOCK):
            f.write(frames[i : i + PREVIEW_BLOCK])
    return note


def _info_of(path: Path) -> str:
    sr, channels, frames = check_audio(path)
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels} ch")
    return f"{frames / sr:.2f} s, {sr} Hz, {layout}"


#: Seconds a forgotten session's files stay on disk, so that Gradio can finish copying the
#: outputs of a request that returned just before Reset (see the module docstring).
GRACE_S = 30.0

#: Why a session's folder was forgotten: a request that still holds the session says so.
RESET, CLOSED, CAPPED = "reset", "closed", "capped"


@dataclasses.dataclass
class _Slot:
    """Who works in one session folder: one request at a time; ``cancel`` asks it to stop."""

    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)


class Workspace:
    """The app's scratch folder: ``<root>/<owner>/<session>/`` per session (the owner is the
    browser tab, Gradio's session hash), every folder removed on close.

    Args:
        root: the folder (default: a new temporary one).
        max_bytes: the disk cap of all sessions together (``app.max_workspace_mb``): after
            each request the oldest idle sessions are forgotten until the rest fit; ``None``
            has no cap.
        grace_s: :data:`GRACE_S`.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        max_bytes: float | None = None,
        grace_s: float = GRACE_S,
    ) -> None:
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="musicrestore-app-"))
        else:
            self.root = Path(root)
            self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.grace_s = grace_s
        self._guard = threading.Lock()
        self._slots: dict[Path, _Slot] = {}
        self._gone: dict[Path, str] = {}  # forgotten folder -> why
        self._timers: list[threading.Timer] = []

    def new_session(self, owner: str | None = None) -> Session:
        """An empty session in a new folder below ``owner`` (a tab; ``None``: no tab)."""
        tab = re.sub(r"[^A-Za-z0-9_-]+", "_", owner or "")[:64] or "_"
        return Session(self.root / tab / uuid.uuid4().hex)

    def _slot(self, folder: Path) -> _Slot:
        with self._guard:
            return self._slots.setdefault(folder, _Slot())

    def gone(self, session: Session) -> str | None:
        """Why the session's folder was forgotten (:data:`RESET`, :data:`CLOSED`,
        :data:`CAPPED`), or ``None`` while it is live."""
        with self._guard:
            return self._gone.get(session.folder)

    @contextlib.contextmanager
    def job(self, session: Session) -> Iterator[Callable[[], None]]:
        """Hold the session while a request works in it; yields ``check()``, which raises
        :class:`~.errors.AppError` once Reset (or a closed tab, or the disk cap) asked the
        request to stop. Call it between steps and once more before returning a result, so
        a result computed for a forgotten session never reaches the page."""
        slot = self._slot(session.folder)
        with slot.lock:

            def check() -> None:
                if slot.cancel.is_set() or self.gone(session):
                    raise AppError(STOPPED[self.gone(session) or RESET])

            check()
            yield check

    def drop(self, session: Session | None, why: str = RESET) -> None:
        """Forget a session (Reset, Gradio discarding its state): ask its running request to
        stop, wait until it has, then remove its files after the grace period."""
        if isinstance(session, Session) and self.root in session.folder.parents:
            self._forget(session.folder, why, wait=True)

    def drop_owner(self, owner: str) -> int:
        """Forget every session of a closed tab (Gradio's ``unload``); how many."""
        tab = self.root / (re.sub(r"[^A-Za-z0-9_-]+", "_", owner or "")[:64] or "_")
        folders = sorted(p for p in tab.iterdir() if p.is_dir()) if tab.is_dir() else []
        for folder in folders:
            self._forget(folder, CLOSED, wait=True)
        return len(folders)

    def enforce_cap(self, keep: Session | None = None) -> list[Path]:
        """Forget the oldest idle sessions (by last write) until all fit in ``max_bytes``;
        ``keep`` (the session of the request that just ran) and busy sessions are never
        chosen. Returns the folders forgotten."""
        if self.max_bytes is None:
            return []
        sizes = {f: _size(f) for f in self.root.glob("*/*") if f.is_dir() and f not in self._gone}
        total = sum(sizes.values())
        dropped: list[Path] = []
        for folder in sorted(sizes, key=_mtime):
            if total <= self.max_bytes:
                break
            if keep is not None and folder == keep.folder:
                continue
            if self._forget(folder, CAPPED, wait=False):
                total -= sizes[folder]
                dropped.append(folder)
        return dropped

    def _forget(self, folder: Path, why: str, wait: bool) -> bool:
        slot = self._slot(folder)
        if wait:
            slot.cancel.set()
            slot.lock.acquire()
        elif not slot.lock.acquire(blocking=False):
            return False  # busy: the cap skips it
        try:
            with self._guard:
                self._gone[folder] = why
                self._slots.pop(folder, None)
        finally:
            slot.lock.release()
        self._remove_later(folder)
        return True

    def _remove_later(self, folder: Path) -> None:
        def remove() -> None:
            shutil.rmtree(folder, ignore_errors=True)
            gc.collect()
            _trim_heap()

        timer = threading.Timer(self.grace_s, remove)
        timer.daemon = True
        with self._guard:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def close(self) -> None:
        with self._guard:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        shutil.rmtree(self.root, ignore_errors=True)


#: The line a request of a forgotten session gets, by why it was forgotten.
STOPPED = {
    RESET: "stopped: the session was reset (its result is discarded)",
    CLOSED: "stopped: the session's tab was closed",
    CAPPED: "this session's files were removed to keep the app's workspace under "
    "app.max_workspace_mb: load a source again",
}


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _mtime(folder: Path) -> float:
    stamps = [p.stat().st_mtime for p in folder.rglob("*") if p.is_file()]
    return max(stamps, default=folder.stat().st_mtime if folder.exists() else time.time())


def _trim_heap() -> None:
    """Hand freed heap pages back to the system (glibc's ``malloc_trim``), so the server's
    RSS falls after a session's large arrays are freed; a no-op elsewhere. The standard
    library has no binding for it (``gc.collect`` frees objects, not the allocator's arenas),
    hence the ``ctypes`` call."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def reset(workspace: Workspace, session: Session | None, owner: str | None = None) -> Session:
    """Forget everything the session made (after its running request, if any, stopped); a
    fresh, empty session of the same tab."""
    workspace.drop(session)
    return workspace.new_session(owner)
