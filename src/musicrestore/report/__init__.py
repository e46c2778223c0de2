"""The comparison report over every variant and test set (docs/method.md#report).

Reads what the evaluate stage wrote (``<eval>/<variant>/<testset>/{summary.json,clips.csv}``),
the restored audio (``<restored>/<variant>/<testset>/<id>.wav``) and the test sets themselves
(clean references, degraded inputs, manifest ``meta`` flags), and writes under ``out``:

- ``models.json`` (with ``--models``): every trained model's own held-out metrics, gathered
  from ``models/**/metrics.json`` so a fresh clone has them (:func:`.build.model_metrics`);
- ``metrics.json``: the headline numbers for ``dvc metrics show`` / ``dvc exp show``, a few
  per variant and task and no prose (:mod:`.tables`)::

      {variant: {"t1": {"si_sdr", "mel_ssim", "lsd"},
                 "t2": {"si_sdr", "mel_ssim", "multi_mel_snr"},   # mean over msr_<target>
                 "t3": {"p25_level_db"}}}

- ``tables/``: ``summary.csv`` (variant x test set x metric: mean, CI, n, delta vs the
  baseline), ``by_group.csv``, ``by_degradation.csv`` and ``clips.csv`` (every segment);
- ``plots/<testset>/<metric>.csv``: one row per variant (mean, CI bounds) for ``dvc plots``
  bar charts (:mod:`.tables`);
- ``summary.md``: the stand-in data note, the headline table, one Markdown table per test
  set (mean ± CI per metric) and one of deltas against the ``identity`` baseline
  (:mod:`.markdown`);
- ``figures/<testset>/``: for a few examples, log-magnitude spectrograms, waveform overlays
  and difference signals of clean / degraded / every variant (:mod:`.figures`);
- ``html/index.html``: the tables, the figures and HTML5 audio players (16-bit excerpts
  copied beside the page) to listen to clean, degraded and each variant side by side
  (:mod:`.html`).

Rules the report keeps: T3 sets (no reference) show non-intrusive metrics only; the
25th-percentile level (seed 001) rewards gating and compression, so it is always shown after
the intrusive metrics and beside loudness, never alone; data built from the embedded
stand-in or from simulated MusicGen clips is labelled as such in ``summary.md`` and the
page. No output holds a timing, date or software version: re-running the stage on unchanged
inputs rewrites every file byte for byte.
"""

from __future__ import annotations

from .build import REPORT_OUTPUTS, build_report, model_metrics, write_model_metrics
from .collect import (
    EMBEDDED_NOTE,
    P25_NOTE,
    REAL_NOTE,
    SIMULATED_NOTE,
    Evaluation,
    ReportConfig,
    collect,
    dataset_flags,
    dataset_note,
    order_variants,
    restored_file,
    safe_name,
    shown_metrics,
    testset_dir,
    testset_task,
)
from .figures import render_figures
from .html import ExampleMedia, build_example_media, excerpt_window, pick_examples, render_html
from .markdown import render_markdown, table_data
from .tables import (
    HEADLINE,
    breakdown_rows,
    metrics_document,
    summary_rows,
    write_csv,
    write_plots,
    write_tables,
)

__all__ = [
    "EMBEDDED_NOTE",
    "HEADLINE",
    "P25_NOTE",
    "REAL_NOTE",
    "REPORT_OUTPUTS",
    "SIMULATED_NOTE",
    "Evaluation",
    "ExampleMedia",
    "ReportConfig",
    "breakdown_rows",
    "build_example_media",
    "build_report",
    "collect",
    "dataset_flags",
    "dataset_note",
    "excerpt_window",
    "metrics_document",
    "model_metrics",
    "order_variants",
    "pick_examples",
    "render_figures",
    "render_html",
    "render_markdown",
    "restored_file",
    "safe_name",
    "shown_metrics",
    "summary_rows",
    "table_data",
    "testset_dir",
    "testset_task",
    "write_csv",
    "write_model_metrics",
    "write_plots",
    "write_tables",
]
