"""Score one restoration variant on one test set (docs/method.md#evaluation).

Inputs are two folders:

- the test set, in the dataset contract (:mod:`musicrestore.data.dataset`): a ``manifest.jsonl``
  of examples with a degraded ``mixture`` and, for T1/T2, a clean ``target``;
- the variant's restored folder: ``{example_id}.wav`` for every example (same sample rate
  and length as the example's mixture). Timings are not read: they are wall-clock figures
  that live outside the cached outputs (MLflow and ``reports/timing/``), so every file this
  module writes is a function of the audio and the params alone.

Every example is cut into 10-s segments (seed 004 §2.3 computes its metrics "on 10-second
segments and report[s] their means with 95% confidence intervals"); a clip longer than one
segment yields ids ``{id}#0``, ``{id}#1``, ... Each segment gets every applicable metric of
:mod:`musicrestore.evaluation.metrics` (non-intrusive only for T3). Outputs:

- ``clips.csv``: one row per segment: id, clip, segment, start_s, task, group, song,
  ``ref_silent``, every metric, and one boolean ``fx_<name>`` column per degradation type
  (from the manifest's ``effects[*].name``);
- ``summary.json``: per metric mean, 95% CI half-width (Student t), std and n; the same
  broken down by stem group, by task and by degradation type; the dataset's ``simulated``/``embedded`` flags; the two
  input paths as given (the report reads the audio from there).

Segments whose reference is digitally near-silent (RMS below ``silent_ref_dbfs``) have no
meaningful intrusive score (SI-SDR of nothing): they are flagged ``ref_silent`` and left
out of the intrusive aggregates, as museval does; non-intrusive metrics keep them.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..compute import Engine
from ..core.audio import audio_info, fit_length, load_audio, set_channels
from ..core.config import merge
from ..core.errors import AudioError, StageError
from ..core.paths import plain_name
from ..data.dataset import Example, read_manifest
from . import metrics as M

log = logging.getLogger(__name__)

CLIPS_CSV = "clips.csv"
SUMMARY_JSON = "summary.json"
FX_PREFIX = "fx_"
SEGMENT_SEP = "#"


@dataclass
class EvalConfig:
    """The ``evaluate`` section of params.yaml.

    Args:
        segment_s: scoring segment length (seed 004 §2.3: 10 s).
        min_segment_s: a trailing remainder shorter than this joins the previous segment
            instead of becoming a segment of its own (STOI needs ~0.4 s, loudness 0.4 s).
        length_tolerance_s: a restored file may differ from its mixture by this much (edge
            effects of resampling restorers); it is then trimmed or zero-padded. A larger
            difference is an error.
        confidence: level of the confidence interval (0.95).
        silent_ref_dbfs: reference RMS below this marks a segment ``ref_silent``.
        metrics: metric names to compute; empty = every applicable one.
    """

    segment_s: float = 10.0  # seed 004 §2.3
    min_segment_s: float = 1.0  # shorter remainders are merged into the previous segment
    length_tolerance_s: float = 0.05  # 50 ms: a resampling restorer's rounding, not a bug
    confidence: float = 0.95  # seed 004: 95% CI
    silent_ref_dbfs: float = -60.0  # below this the reference is "nothing to restore"
    metrics: list[str] = field(default_factory=list)  # empty: all applicable

    def __post_init__(self) -> None:
        if self.segment_s <= 0 or self.min_segment_s <= 0 or self.min_segment_s > self.segment_s:
            raise StageError(
                f"evaluate: need 0 < min_segment_s <= segment_s, got {self.min_segment_s}, {self.segment_s}"
            )
        if not 0 < self.confidence < 1:
            raise StageError(f"evaluate: confidence must be in (0, 1), got {self.confidence}")
        try:
            M.applicable(True, self.metrics or None)
        except ValueError as exc:
            raise StageError(f"evaluate.metrics: {exc}") from None


def _metrics_problem(value: Any) -> str | None:
    """``None`` when every item names a metric of :data:`musicrestore.evaluation.metrics.ALL_METRICS`."""
    if all(isinstance(name, str) and name in M.ALL_METRICS for name in value):
        return None
    return "a list of " + ", ".join(M.ALL_METRICS)


#: What the ``evaluate`` block may hold beyond the types of :class:`EvalConfig`'s defaults,
#: as :func:`musicrestore.core.config.merge` rules (:func:`eval_config`).
EVAL_RULES: dict[str, Any] = {
    "ranges": {
        "length_tolerance_s": (0.0, None),
        "silent_ref_dbfs": (-200.0, 0.0, "a level in dBFS"),
    },
    "positive": ("segment_s", "min_segment_s"),
    "checks": {
        "confidence": lambda v: None if 0 < v < 1 else "a level in (0, 1)",
        "metrics": _metrics_problem,
    },
}


def eval_config(section: Mapping[str, Any] | None) -> EvalConfig:
    """:class:`EvalConfig` from the ``evaluate`` params block through
    :func:`musicrestore.core.config.merge`: an unknown key, a wrong type
    (``segment_s: abc``) or a value out of range (``confidence: 2``) is a one-line
    :class:`~musicrestore.core.config.ConfigError` naming ``evaluate.<key>``."""
    return merge(EvalConfig, section, "evaluate", **EVAL_RULES)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------
# segmentation and per-example scoring (runs in worker processes)
# --------------------------------------------------------------------------------------


def segment_bounds(
    n_samples: int, sr: int, segment_s: float, min_segment_s: float
) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` sample ranges covering ``n_samples`` in ``segment_s`` pieces.

    Every sample is scored exactly once: a remainder shorter than ``min_segment_s`` is
    appended to the last full segment, so a 10.3-s clip is one segment, a 25-s clip three.
    """
    seg = max(1, int(round(segment_s * sr)))
    min_seg = max(1, int(round(min_segment_s * sr)))
    starts = list(range(0, n_samples, seg))
    if len(starts) > 1 and n_samples - starts[-1] < min_seg:
        starts.pop()
    stops = [*starts[1:], n_samples]
    return list(zip(starts, stops, strict=True))


def segment_id(clip_id: str, k: int, n_segments: int) -> str:
    """``clip_id`` for a one-segment clip, ``clip_id#k`` otherwise."""
    return clip_id if n_segments == 1 else f"{clip_id}{SEGMENT_SEP}{k}"


@dataclass
class _Job:
    """Everything a worker needs to score one example (picklable)."""

    example: dict[str, Any]
    mixture: str
    target: str | None
    restored: str
    config: dict[str, Any]
    effect_names: list[str]


def _load_checked(
    path: str, sr: int, frames: int, channels: int, tolerance: int, what: str
) -> np.ndarray:
    wave, file_sr = load_audio(path)
    if file_sr != sr:
        raise StageError(
            f"{path}: {what} has sample rate {file_sr} Hz, expected {sr} Hz like its mixture"
        )
    if abs(wave.shape[-1] - frames) > tolerance:
        raise StageError(
            f"{path}: {what} has {wave.shape[-1]} samples, its mixture {frames} "
            f"(more than the {tolerance}-sample tolerance); restorers must keep the input length"
        )
    # A mono restorer's output is compared with a stereo reference as dual mono
    # (docs/method.md#unet-mask).
    return set_channels(fit_length(wave, frames), channels)


def _score_job(job: _Job) -> list[dict[str, Any]]:
    """Score every segment of one example; errors come back as one-line StageErrors."""
    try:
        return _score_example(job)
    except StageError:
        raise
    except (AudioError, ValueError, OSError) as exc:
        # AudioError does not survive pickling across processes; its message does.
        raise StageError(" ".join(str(exc).split())) from None


def _score_example(job: _Job) -> list[dict[str, Any]]:
    cfg = EvalConfig(**job.config)
    ex = Example(**job.example)
    sr, channels, frames = audio_info(job.mixture)
    tolerance = int(round(cfg.length_tolerance_s * sr))
    estimate = _load_checked(job.restored, sr, frames, channels, tolerance, "restored output")
    reference = None
    if job.target is not None:
        reference = _load_checked(job.target, sr, frames, channels, tolerance, "reference")
    names = M.applicable(reference is not None, cfg.metrics or None)
    fired = set(ex.effect_names())
    bounds = segment_bounds(frames, sr, cfg.segment_s, cfg.min_segment_s)
    rows = []
    for k, (start, stop) in enumerate(bounds):
        ref_seg = None if reference is None else reference[:, start:stop]
        est_seg = estimate[:, start:stop]
        ref_silent: bool | None = None
        if ref_seg is not None:
            rms = float(np.sqrt(np.mean(np.square(ref_seg, dtype=np.float64))))
            ref_silent = 20 * math.log10(max(rms, 1e-12)) < cfg.silent_ref_dbfs
        row: dict[str, Any] = {
            "id": segment_id(ex.id, k, len(bounds)),
            "clip": ex.id,
            "segment": k,
            "start_s": round(start / sr, 6),
            "duration_s": round((stop - start) / sr, 6),
            "task": ex.task,
            "group": ex.group,
            "song": ex.song,
            "ref_silent": ref_silent,
        }
        row.update(M.score(ref_seg, est_seg, sr, names))
        row.update({f"{FX_PREFIX}{name}": name in fired for name in job.effect_names})
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------
# the whole test set
# --------------------------------------------------------------------------------------


def effect_types(examples: Iterable[Example]) -> list[str]:
    """Sorted names of every degradation that fired anywhere in the test set."""
    return sorted({name for ex in examples for name in ex.effect_names()})


def dataset_flags(examples: Sequence[Example]) -> dict[str, bool]:
    """``simulated`` / ``embedded`` flags from the manifest ``meta`` (true if any example has it)."""
    return {
        "simulated": any(bool(ex.meta.get("simulated")) for ex in examples),
        "embedded": any(bool(ex.meta.get("embedded")) for ex in examples),
    }


def score_testset(
    testset_dir: str | os.PathLike[str],
    restored_dir: str | os.PathLike[str],
    config: EvalConfig,
    progress: bool = True,
    engine: Engine | None = None,
) -> tuple[list[dict[str, Any]], list[Example]]:
    """Score every example of a test set against a variant's outputs, one Dask task per
    example on ``engine`` (:func:`musicrestore.compute.engine`; ``None``: in this process).

    Returns:
        ``(rows, examples)``: one row per segment, in manifest order.

    Raises:
        StageError: a restored file is missing (the message names it), or a file does not
            match its mixture's sample rate / length.
    """
    testset_dir, restored_dir = Path(testset_dir), Path(restored_dir)
    if not restored_dir.is_dir():
        raise StageError(f"{restored_dir}: restored folder not found (was the restore stage run?)")
    examples = read_manifest(testset_dir)
    if not examples:
        raise StageError(f"{testset_dir}: the manifest lists no examples")
    fx = effect_types(examples)
    jobs = []
    # read_manifest checked every id (core.paths); checked again where it becomes a path
    outputs = [restored_dir / plain_name(f"{ex.id}.wav", f"{testset_dir}: id") for ex in examples]
    missing = [path for path in outputs if not path.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise StageError(f"{missing[0]}: restored output missing{more}; re-run the restore stage")
    for ex, restored in zip(examples, outputs, strict=True):
        jobs.append(
            _Job(
                example=asdict(ex),
                mixture=str(testset_dir / ex.mixture),
                target=str(testset_dir / ex.target) if ex.target else None,
                restored=str(restored),
                config=asdict(config),
                effect_names=fx,
            )
        )
    engine = engine or Engine(None, progress)
    results = engine.map(_score_job, [{"job": job} for job in jobs], f"scoring {restored_dir}")
    rows = [row for result in results for row in result]
    return rows, examples


# --------------------------------------------------------------------------------------
# aggregation
# --------------------------------------------------------------------------------------


def mean_ci(values: Iterable[float], confidence: float = 0.95) -> dict[str, float | int | None]:
    """Mean, CI half-width (Student t, ``n - 1`` dof), sample std and n of finite values.

    ``ci`` and ``std`` are ``None`` for fewer than two values; ``mean`` is ``None`` for none.
    """
    from scipy import stats

    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(arr.size)
    if n == 0:
        return {"mean": None, "ci": None, "std": None, "n": 0}
    if n == 1:
        return {"mean": float(arr[0]), "ci": None, "std": None, "n": 1}
    std = float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / math.sqrt(n))
    return {"mean": float(arr.mean()), "ci": half, "std": std, "n": n}


def metric_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Metric names present in the rows, in :data:`metrics.ALL_METRICS` order."""
    present = {k for row in rows for k in row}
    return [name for name in M.ALL_METRICS if name in present]


def aggregate(
    rows: Sequence[Mapping[str, Any]], confidence: float = 0.95
) -> dict[str, dict[str, Any]]:
    """``{metric: mean_ci(...)}`` over rows; intrusive metrics skip ``ref_silent`` rows."""
    out = {}
    for name in metric_columns(rows):
        keep = [
            r for r in rows if name in r and not (M.INFO[name].intrusive and r.get("ref_silent"))
        ]
        out[name] = mean_ci((r[name] for r in keep), confidence)
    return out


def summarize(
    rows: Sequence[Mapping[str, Any]],
    examples: Sequence[Example],
    config: EvalConfig,
    variant: str,
    testset: str,
) -> dict[str, Any]:
    """The ``summary.json`` document (see the module docstring)."""

    def by(key: str) -> dict[str, Any]:
        values = sorted({str(r[key]) for r in rows})
        return {
            v: aggregate([r for r in rows if str(r[key]) == v], config.confidence) for v in values
        }

    by_fx = {}
    for name in effect_types(examples):
        hit = [r for r in rows if r.get(f"{FX_PREFIX}{name}")]
        by_fx[name] = {"n_segments": len(hit), "metrics": aggregate(hit, config.confidence)}
    return {
        "variant": variant,
        "testset": testset,
        "tasks": sorted({ex.task for ex in examples}),
        "groups": sorted({ex.group for ex in examples}),
        "n_clips": len(examples),
        "n_segments": len(rows),
        "n_ref_silent": sum(1 for r in rows if r.get("ref_silent")),
        "segment_s": config.segment_s,
        "confidence": config.confidence,
        "metrics": aggregate(rows, config.confidence),
        "by_group": by("group"),
        "by_task": by("task"),
        "by_degradation": by_fx,
        "dataset": dataset_flags(examples),
    }


def write_clips_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write the per-segment rows; columns: identity fields, metrics, then ``fx_*`` flags."""
    from ..core.audio import atomic_path

    base = ["id", "clip", "segment", "start_s", "duration_s", "task", "group", "song", "ref_silent"]
    fx = sorted({k for row in rows for k in row if k.startswith(FX_PREFIX)})
    columns = [*base, *metric_columns(rows), *fx]
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return path


def read_clips_csv(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read ``clips.csv`` back with metrics as floats and flags as bools."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            parsed: dict[str, Any] = dict(row)
            for key, value in row.items():
                if key in M.INFO:
                    parsed[key] = float(value) if value != "" else None
                elif key.startswith(FX_PREFIX) or key == "ref_silent":
                    parsed[key] = None if value == "" else value == "True"
                elif key == "segment":
                    parsed[key] = int(value)
                elif key in ("start_s", "duration_s"):
                    parsed[key] = float(value)
            out.append(parsed)
    return out


def evaluate(
    testset_dir: str | os.PathLike[str],
    restored_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    variant: str,
    testset: str,
    config: EvalConfig | None = None,
    progress: bool = True,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Score ``restored_dir`` against ``testset_dir``; write ``clips.csv`` and ``summary.json``
    into ``out_dir`` (the caller makes the folder atomic, see :func:`stage.output_dir`).
    ``engine``: where the examples are scored (:func:`musicrestore.compute.engine`).

    Returns:
        The summary document.
    """
    config = config or EvalConfig()
    rows, examples = score_testset(
        testset_dir, restored_dir, config, progress=progress, engine=engine
    )
    summary = summarize(rows, examples, config, variant, testset)
    # As given on the command line (relative to the DVC root): the report finds the test
    # set's audio and the variant's outputs from here unless told otherwise.
    summary["paths"] = {"testset": str(testset_dir), "restored": str(restored_dir)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_clips_csv(out_dir / CLIPS_CSV, rows)
    (out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n")
    return summary


def headline(summary: Mapping[str, Any]) -> dict[str, float]:
    """``{metric: mean}``: what a stage logs as its metrics."""
    return {
        name: stats["mean"]
        for name, stats in summary["metrics"].items()
        if stats["mean"] is not None
    }
