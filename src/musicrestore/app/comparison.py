"""The Compare tab: the session's reference, input and chosen outputs side by side, as the
report shows them (:func:`musicrestore.report.figures.render_figures`: spectrograms,
waveform overlays, difference signals over the loudest window, seed 000 §4) and scored as
the evaluate stage scores them (:mod:`musicrestore.evaluation.metrics`, per 10-s segment,
docs/method.md#evaluation); without a reference only the non-intrusive metrics apply."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import load_audio, set_channels
from ..evaluation.evaluate import EvalConfig, segment_bounds
from .errors import AppError
from .project import Project
from .session import ProgressFn, Session

#: Roles of the session's fixed signals in Compare.
REFERENCE, INPUT = "reference", "input"


@dataclasses.dataclass
class Comparison:
    """What the Compare tab shows."""

    players: list[tuple[str, Path]]  # (role, audio file): reference, input, outputs
    figures: list[Path]  # spectrograms, waveform overlays, difference signals
    window: tuple[float, float]  # the figures' time window (s)
    table: list[dict[str, Any]]  # one row per signal: "signal" + metric labels
    downloads: list[Path]  # every audio file of the session


#: The columns the metrics table shows by default (the rest behind "all metrics"): what
#: the report's headline uses, so the table fits the page.
HEADLINE = ("si_sdr", "mel_ssim", "multi_mel_snr", "lsd", "p25_level_db")


def table_view(rows: Sequence[dict[str, Any]], every: bool) -> list[dict[str, Any]]:
    """The metrics table as shown: every column, or ``signal`` and the :data:`HEADLINE`
    metrics that the rows have."""
    if every:
        return [dict(r) for r in rows]
    keep = {"signal", *(_heading(n) for n in HEADLINE)}
    return [{k: v for k, v in r.items() if k in keep} for r in rows]


def _heading(name: str) -> str:
    from ..evaluation import metrics as M

    info = M.INFO[name]
    arrow = {True: " ↑", False: " ↓", None: ""}[info.higher_is_better]
    unit = f" ({info.unit})" if info.unit else ""
    return f"{info.label}{unit}{arrow}"


def score_signal(
    reference: np.ndarray | None, estimate: np.ndarray, sr: int, cfg: EvalConfig
) -> dict[str, float]:
    """Every applicable metric as the evaluate stage computes it (docs/method.md#evaluation):
    per ``segment_s`` segment, then the mean; segments whose reference is silent are left
    out of the intrusive means."""
    from ..evaluation import metrics as M

    names = M.applicable(reference is not None, cfg.metrics or None)
    sums: dict[str, list[float]] = {n: [] for n in names}
    for start, stop in segment_bounds(estimate.shape[1], sr, cfg.segment_s, cfg.min_segment_s):
        ref = None if reference is None else reference[:, start:stop]
        est = estimate[:, start:stop]
        silent = False
        if ref is not None:
            rms = float(np.sqrt(np.mean(np.square(ref, dtype=np.float64))))
            silent = 20 * math.log10(max(rms, 1e-12)) < cfg.silent_ref_dbfs
        defined = [n for n in names if not too_short(n, est.shape[1], sr)]
        row = M.score(None if silent else ref, est, sr, defined)
        for n in names:
            if n in row:
                sums[n].append(row[n])
    return {n: float(np.mean(v)) if v else float("nan") for n, v in sums.items()}


#: Metrics undefined on a signal shorter than this (seconds): BS.1770 loudness gates over
#: 400-ms blocks, and STOI needs 30 frames of 25.6 ms at 10 kHz (its library returns a
#: placeholder, and the loudness meter -70 LUFS, on anything shorter).
MIN_DURATION_S = {"stoi": 0.4, "loudness_delta_lu": 0.4, "loudness_lufs": 0.4}
#: Metrics undefined on fewer samples than this: mel-SSIM needs 3 frames of its 1024 hop.
MIN_SAMPLES = {"mel_ssim": 2048}
TOO_SHORT = "n/a (too short)"


def too_short(metric: str, n_samples: int, sr: int) -> bool:
    """Whether ``metric`` is undefined on a signal of ``n_samples`` at ``sr``."""
    return n_samples < MIN_SAMPLES.get(metric, 0) or n_samples / sr < MIN_DURATION_S.get(
        metric, 0.0
    )


def _cell(metric: str, value: float, n_samples: int, sr: int) -> float | str:
    """A table cell: the value, or :data:`TOO_SHORT` where the metric is undefined."""
    return TOO_SHORT if too_short(metric, n_samples, sr) else round(value, 3)


def _matched(wave: np.ndarray, channels: int) -> np.ndarray:
    """A mono restorer's output against a stereo reference is compared as dual mono
    (docs/method.md#evaluation); the reverse downmixes."""
    return wave if wave.shape[0] == channels else set_channels(wave, channels)


def loudest_window(wave: np.ndarray, sr: int, length_s: float) -> tuple[int, int]:
    """``[start, stop)`` of the loudest ``length_s`` window on a 1-s grid (the whole signal
    when it is shorter), as the report picks its excerpts."""
    n = wave.shape[1]
    length = int(round(length_s * sr))
    if n <= length:
        return 0, n
    power = np.concatenate([[0.0], np.cumsum(np.mean(np.square(wave, dtype=np.float64), axis=0))])
    starts = np.arange(0, n - length + 1, sr)
    best = int(starts[int(np.argmax(power[starts + length] - power[starts]))])
    return best, best + length


def compare(
    project: Project,
    session: Session,
    labels: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> Comparison:
    """Players, figures and the metrics table of the reference, the input and the chosen
    outputs (all of them when ``labels`` is ``None``)."""
    from ..report.figures import render_figures

    if session.input is None:
        raise AppError("nothing to compare yet: load a signal and restore it first")
    chosen = list(session.outputs) if labels is None else [lb for lb in labels if lb]
    if unknown := [lb for lb in chosen if lb not in session.outputs]:
        raise AppError(f"no output called {', '.join(unknown)}; restore it first")
    cap = int(project.settings["max_outputs"])
    if len(chosen) > cap:
        raise AppError(f"choose at most {cap} outputs to compare (app.max_outputs)")
    files: list[tuple[str, Path]] = []
    if session.reference is not None and session.reference != session.input:
        files.append((REFERENCE, session.reference))
    files.append((INPUT, session.input))
    files += [(lb, session.outputs[lb].path) for lb in chosen]
    if len(files) < 2:
        raise AppError("nothing to compare yet: restore the input first (Restore tab)")
    waves = {role: load_audio(path)[0] for role, path in files}
    sr = session.sr
    channels = max(w.shape[0] for w in waves.values())
    waves = {role: _matched(w, channels) for role, w in waves.items()}
    reference = waves.get(REFERENCE)
    if session.reference is not None and session.reference == session.input:
        reference = waves[INPUT]  # a clean source restored as it is

    # figures: the reference as "clean", the input as "degraded" (seed 000 §4 roles)
    start, stop = loudest_window(waves[INPUT], sr, float(project.settings["figure_s"]))
    roles = {REFERENCE: "clean", INPUT: "degraded"}
    sources = [(roles.get(role, role), w[:, start:stop]) for role, w in waves.items()]
    anchor = "clean" if REFERENCE in waves else "degraded"
    if progress is not None:
        progress(0.05, "figures")
    prefix = session.folder / f"figures_{uuid.uuid4().hex[:8]}" / "compare"
    figures = render_figures(sources, sr, anchor, prefix, "compare", dpi=80, start_s=start / sr)

    table = []
    scored = [(role, w) for role, w in waves.items() if role != REFERENCE]
    for k, (role, w) in enumerate(scored):
        if progress is not None:
            progress(0.1 + 0.9 * k / len(scored), f"metrics of {role}")
        values = score_signal(reference, w, sr, project.eval)
        row: dict[str, Any] = {"signal": role}
        row.update({_heading(n): _cell(n, v, w.shape[1], sr) for n, v in values.items()})
        table.append(row)
    downloads = [path for _, path in files]
    return Comparison(files, figures, (start / sr, stop / sr), table, downloads)
