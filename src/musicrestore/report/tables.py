"""The numbers: the headline ``metrics.json``, the CSV tables and the DVC plot data.

``metrics.json`` is what ``dvc metrics show`` / ``dvc exp show`` print, so it holds a few
dozen numbers and no prose (the stand-in data note lives in ``summary.md`` and the HTML
page)::

    {variant: {"t1": {"si_sdr", "mel_ssim", "lsd"},             # musicgen_like
               "t2": {"si_sdr", "mel_ssim", "multi_mel_snr"},   # mean over msr_<target>
               "t3": {"p25_level_db"}}}                         # musicgen

A section is left out when its test set was not evaluated. The full breakdown (every
metric, CI, n, group, degradation type, segment) is in ``tables/`` and ``summary.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import atomic_path
from .collect import (
    Collected,
    Evaluation,
    ReportConfig,
    order_variants,
    safe_name,
    shown_metrics,
    testset_task,
)

#: Headline metrics per task, in ``metrics.json`` order (docs/method.md#metrics): the two
#: metrics of seed 004 plus one that reads the task's artifact, and the non-intrusive noise
#: floor of seed 001 where there is no reference.
HEADLINE: dict[str, tuple[str, ...]] = {
    "T1": ("si_sdr", "mel_ssim", "lsd"),
    "T2": ("si_sdr", "mel_ssim", "multi_mel_snr"),
    "T3": ("p25_level_db",),
}
#: Decimals kept in ``metrics.json``: far below any difference the CIs can resolve.
HEADLINE_DIGITS = 4


def metrics_document(
    collected: Collected, baseline: str = "", wanted: Sequence[str] = ()
) -> dict[str, dict[str, dict[str, float]]]:
    """``{variant: {"t1"|"t2"|"t3": {metric: mean}}}`` (see the module docstring).

    A task's numbers are the mean over its test sets of each set's mean (T2: one set per
    stem group, so every group weighs the same). ``wanted`` (``report.metrics``) narrows
    the metrics; a metric no summary has is left out, never written as null.
    """
    by_task: dict[str, list[Mapping[str, Evaluation]]] = {}
    for name, evals in collected.items():
        task = testset_task(name, evals)
        if task in HEADLINE:
            by_task.setdefault(task, []).append(evals)
    variants = order_variants(sorted({v for evals in collected.values() for v in evals}), baseline)
    doc: dict[str, dict[str, dict[str, float]]] = {}
    for variant in variants:
        entry: dict[str, dict[str, float]] = {}
        for task in sorted(by_task):
            values = {}
            for metric in HEADLINE[task]:
                if wanted and metric not in wanted:
                    continue
                means = [
                    evals[variant].summary["metrics"].get(metric, {}).get("mean")
                    for evals in by_task[task]
                    if variant in evals
                ]
                means = [m for m in means if m is not None and np.isfinite(m)]
                if means:
                    values[metric] = round(float(np.mean(means)), HEADLINE_DIGITS)
            if values:
                entry[task.lower()] = values
        if entry:
            doc[variant] = entry
    return doc


def delta(
    evals: Mapping[str, Evaluation], variant: str, baseline: str, metric: str
) -> float | None:
    """Mean of ``variant`` minus mean of ``baseline`` on one test set; ``None`` if either lacks it."""
    if baseline not in evals:
        return None
    a = evals[variant].summary["metrics"].get(metric, {}).get("mean")
    b = evals[baseline].summary["metrics"].get(metric, {}).get("mean")
    return None if a is None or b is None else a - b


def summary_rows(collected: Collected, config: ReportConfig) -> list[dict[str, Any]]:
    """Long table: one row per test set x variant x metric."""
    rows = []
    for testset, evals in collected.items():
        for variant in order_variants(list(evals), config.baseline):
            summary = evals[variant].summary
            for name in shown_metrics(evals, config.metrics):
                stats = summary["metrics"].get(name, {})
                rows.append(
                    {
                        "testset": testset,
                        "variant": variant,
                        "tasks": "+".join(summary.get("tasks", [])),
                        "groups": "+".join(summary.get("groups", [])),
                        "metric": name,
                        "mean": stats.get("mean"),
                        "ci": stats.get("ci"),
                        "n": stats.get("n"),
                        f"delta_vs_{config.baseline}": delta(evals, variant, config.baseline, name),
                    }
                )
    return rows


def breakdown_rows(collected: Collected, key: str, config: ReportConfig) -> list[dict[str, Any]]:
    """Long table of one breakdown of the summaries (``by_group`` or ``by_degradation``)."""
    rows = []
    for testset, evals in collected.items():
        names = shown_metrics(evals, config.metrics)
        for variant in order_variants(list(evals), config.baseline):
            for level, block in evals[variant].summary.get(key, {}).items():
                # by_degradation nests under "metrics"
                stats_by_metric = block.get("metrics", block)
                for name in names:
                    stats = stats_by_metric.get(name)
                    if not stats:
                        continue
                    rows.append(
                        {
                            "testset": testset,
                            "variant": variant,
                            key.removeprefix("by_"): level,
                            "metric": name,
                            "mean": stats.get("mean"),
                            "ci": stats.get("ci"),
                            "n": stats.get("n"),
                        }
                    )
    return rows


def write_csv(
    path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> None:
    """Atomic CSV; ``None`` cells are empty."""
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})


def write_tables(collected: Collected, folder: Path, config: ReportConfig) -> None:
    """``summary.csv``, ``by_group.csv``, ``by_degradation.csv`` and ``clips.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "summary.csv", summary_rows(collected, config))
    write_csv(folder / "by_group.csv", breakdown_rows(collected, "by_group", config))
    write_csv(folder / "by_degradation.csv", breakdown_rows(collected, "by_degradation", config))
    clips = [
        {"testset": t, "variant": v, **row}
        for t, evals in collected.items()
        for v in order_variants(list(evals), config.baseline)
        for row in evals[v].rows
    ]
    write_csv(folder / "clips.csv", clips)


def write_plots(collected: Collected, folder: Path, config: ReportConfig) -> list[Path]:
    """``<folder>/<testset>/<metric>.csv``: variant, mean, ci, ci_low, ci_high, n."""
    written = []
    for testset, evals in collected.items():
        for name in shown_metrics(evals, config.metrics):
            rows = []
            for variant in order_variants(list(evals), config.baseline):
                stats = evals[variant].summary["metrics"].get(name, {})
                mean, ci = stats.get("mean"), stats.get("ci")
                if mean is None:
                    continue
                rows.append(
                    {
                        "variant": variant,
                        "mean": mean,
                        "ci": ci,
                        "ci_low": None if ci is None else mean - ci,
                        "ci_high": None if ci is None else mean + ci,
                        "n": stats.get("n"),
                    }
                )
            path = folder / safe_name(testset) / f"{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_csv(path, rows, ["variant", "mean", "ci", "ci_low", "ci_high", "n"])
            written.append(path)
    return written
