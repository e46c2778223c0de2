"""What the report reads: the evaluate stage's folders, the test sets' flags, the config.

Everything here is shared by the writers (:mod:`.tables`, :mod:`.markdown`, :mod:`.html`):
which variants and metrics a table shows and in which order, where a test set and a
restored file live, and the one sentence that labels stand-in data.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import StageError
from ..core.paths import plain_name
from ..data.dataset import read_manifest
from ..evaluation import metrics as M
from ..evaluation.evaluate import CLIPS_CSV, SUMMARY_JSON, read_clips_csv

EMBEDDED_NOTE = (
    "EMBEDDED STAND-IN DATA ({sets}): built from the offline embedded mini dataset "
    "(compositions rendered per part with a SoundFont, in the RawStems layout), not from "
    "RawStems; the numbers are not comparable with the papers'."
)
SIMULATED_NOTE = (
    "SIMULATED MUSICGEN DATA ({sets}): clean renderings passed through a MusicGen-like "
    "artifact chain, not real MusicGen outputs."
)
REAL_NOTE = "All test sets are real (not embedded, not simulated)."
P25_NOTE = (
    "P25 level (seed 001) rewards gating and compression: read it together with loudness and, "
    "where a reference exists, the intrusive metrics."
)


@dataclass
class ReportConfig:
    """The ``report`` section of params.yaml.

    Args:
        baseline: variant every delta is taken against (docs/method.md#baseline:
            ``identity``).
        n_examples: examples per test set with figures and audio in the HTML page.
        excerpt_s: length of each audio excerpt and figure window.
        audio_format: ``"wav"`` (16-bit PCM, plays everywhere) or ``"flac"`` (half the size).
        figure_dpi: resolution of the PNG figures.
        metrics: metrics shown in tables and plots; empty = every metric evaluated.
    """

    baseline: str = "identity"  # docs/method.md#baseline: what every variant must beat
    n_examples: int = 2  # per test set; each costs (variants + 2) audio files and 3 figures
    excerpt_s: float = 5.0  # long enough to hear noise floor and transients
    audio_format: str = "wav"  # WAV is the format every browser plays
    figure_dpi: int = 80  # small PNGs; the page shows them at ~800 px
    metrics: list[str] = field(default_factory=list)  # empty: all evaluated

    def __post_init__(self) -> None:
        if self.audio_format not in ("wav", "flac"):
            raise StageError(
                f"report.audio_format must be 'wav' or 'flac', got {self.audio_format!r}"
            )
        if self.n_examples < 0 or self.excerpt_s <= 0:
            raise StageError("report: need n_examples >= 0 and excerpt_s > 0")
        try:
            M.applicable(True, self.metrics or None)
        except ValueError as exc:
            raise StageError(f"report.metrics: {exc}") from None


def _metrics_problem(value: Any) -> str | None:
    """``None`` when every item names a metric of :data:`musicrestore.evaluation.metrics.ALL_METRICS`."""
    if all(isinstance(name, str) and name in M.ALL_METRICS for name in value):
        return None
    return "a list of " + ", ".join(M.ALL_METRICS)


#: What the ``report`` block may hold beyond the types of :class:`ReportConfig`'s defaults,
#: as :func:`musicrestore.core.config.merge` rules (:func:`report_config`).
REPORT_RULES: dict[str, Any] = {
    "ranges": {"n_examples": (0, None), "figure_dpi": (10, 1200, "dots per inch")},
    "positive": ("excerpt_s",),
    "choices": {"audio_format": ("wav", "flac")},
    "checks": {
        "baseline": lambda v: None if v.strip() else "a variant name",
        "metrics": _metrics_problem,
    },
}


def report_config(section: Mapping[str, Any] | None) -> ReportConfig:
    """:class:`ReportConfig` from the ``report`` params block through
    :func:`musicrestore.core.config.merge`: an unknown key, a wrong type (``report: 5``,
    ``n_examples: two``) or a value out of range is a one-line
    :class:`~musicrestore.core.config.ConfigError` naming ``report.<key>``."""
    from ..core.config import merge

    return merge(ReportConfig, section, "report", **REPORT_RULES)  # type: ignore[no-any-return]


@dataclass
class Evaluation:
    """One variant on one test set, as the evaluate stage left it."""

    variant: str
    testset: str
    summary: dict[str, Any]
    rows: list[dict[str, Any]]


#: ``{testset: {variant: Evaluation}}``, test sets sorted by name.
Collected = Mapping[str, Mapping[str, Evaluation]]


def collect(eval_root: str | os.PathLike[str]) -> dict[str, dict[str, Evaluation]]:
    """``{testset: {variant: Evaluation}}`` from ``<eval_root>/<variant>/<testset>/``."""
    eval_root = Path(eval_root)
    if not eval_root.is_dir():
        raise StageError(
            f"{eval_root}: evaluation folder not found (run the evaluate stages first)"
        )
    found: dict[str, dict[str, Evaluation]] = {}
    for summary_path in sorted(eval_root.glob(f"*/*/{SUMMARY_JSON}")):
        variant, testset = summary_path.parent.parent.name, summary_path.parent.name
        if variant.startswith(".") or testset.startswith("."):
            continue  # a half-written output folder of an interrupted stage
        summary = json.loads(summary_path.read_text())
        clips = summary_path.parent / CLIPS_CSV
        rows = read_clips_csv(clips) if clips.is_file() else []
        found.setdefault(testset, {})[variant] = Evaluation(variant, testset, summary, rows)
    if not found:
        raise StageError(f"{eval_root}: no <variant>/<testset>/{SUMMARY_JSON} found")
    return {t: found[t] for t in sorted(found)}


def order_variants(variants: Sequence[str], baseline: str) -> list[str]:
    """Baseline first, the rest alphabetically: the same row order in every table."""
    return sorted(variants, key=lambda v: (v != baseline, v))


def shown_metrics(evals: Mapping[str, Evaluation], wanted: Sequence[str]) -> list[str]:
    """Metrics to show for one test set, in :data:`metrics.ALL_METRICS` order.

    Intrusive metrics come first, so the 25th-percentile level always sits after them; for
    a set without reference only non-intrusive metrics exist.
    """
    present = {name for ev in evals.values() for name in ev.summary["metrics"]}
    return [n for n in M.ALL_METRICS if n in present and (not wanted or n in wanted)]


def testset_task(name: str, evals: Mapping[str, Evaluation]) -> str | None:
    """``"T1"``, ``"T2"`` or ``"T3"``: the one task the summaries recorded, else the name
    convention of dvc.yaml (``musicgen_like`` T1, ``msr_<target>`` T2, ``musicgen`` T3)."""
    tasks = {t for ev in evals.values() for t in ev.summary.get("tasks", [])}
    if len(tasks) == 1:
        return next(iter(tasks))
    if tasks:
        return None  # a mixed set has no single headline section
    if name == "musicgen_like":
        return "T1"
    if name.startswith("msr_"):
        return "T2"
    return "T3" if name == "musicgen" else None


def testset_dir(
    name: str, evals: Mapping[str, Evaluation], testsets: Mapping[str, Any]
) -> Path | None:
    """The test set folder: ``testsets[name]`` if given, else the path the evaluate stage
    recorded in its summaries; ``None`` when neither holds a manifest."""
    candidates = [testsets[name]] if name in testsets else []
    candidates += [ev.summary.get("paths", {}).get("testset") for ev in evals.values()]
    for path in candidates:
        if path and (Path(path) / "manifest.jsonl").is_file():
            return Path(path)
    return None


def restored_file(ev: Evaluation, example_id: str, restored_root: Path | None) -> Path:
    """``<restored_root>/<variant>/<testset>/<id>.wav``, or under the folder the evaluate
    stage recorded when no root is given."""
    if restored_root is not None:
        folder = restored_root / ev.variant / ev.testset
    else:
        folder = Path(ev.summary.get("paths", {}).get("restored", ""))
    return folder / plain_name(f"{example_id}.wav", f"{ev.variant}/{ev.testset}: example id")


def dataset_flags(collected: Collected, testsets: Mapping[str, Any]) -> dict[str, dict[str, bool]]:
    """``{testset: {"simulated", "embedded"}}`` from the manifests (or the summaries)."""
    flags = {}
    for name, evals in collected.items():
        folder = testset_dir(name, evals, testsets)
        if folder is not None:
            examples = read_manifest(folder)
            flags[name] = {
                "simulated": any(bool(ex.meta.get("simulated")) for ex in examples),
                "embedded": any(bool(ex.meta.get("embedded")) for ex in examples),
            }
        else:
            first = next(iter(evals.values())).summary.get("dataset", {})
            flags[name] = {
                "simulated": bool(first.get("simulated")),
                "embedded": bool(first.get("embedded")),
            }
    return flags


def dataset_note(flags: Mapping[str, Mapping[str, bool]]) -> str:
    """One sentence per kind of stand-in data, naming the affected test sets."""
    embedded = sorted(t for t, f in flags.items() if f.get("embedded"))
    simulated = sorted(t for t, f in flags.items() if f.get("simulated"))
    parts = []
    if embedded:
        parts.append(EMBEDDED_NOTE.format(sets=", ".join(embedded)))
    if simulated:
        parts.append(SIMULATED_NOTE.format(sets=", ".join(simulated)))
    return " ".join(parts) or REAL_NOTE


def safe_name(name: str) -> str:
    """A file-name-safe version of an id or test set name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"
