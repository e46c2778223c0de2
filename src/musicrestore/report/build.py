"""The comparison report over every variant and test set (SPEC §5).

Reads what the evaluate stage wrote (``<eval>/<variant>/<testset>/{summary.json,clips.csv}``),
the restored audio (``<restored>/<variant>/<testset>/<id>.wav``) and the test sets themselves
(clean references, degraded inputs, manifest ``meta`` flags), and writes under ``out``:

- ``metrics.json``: ``{testset: {variant: {metric: mean, "rtf": ...}}, "dataset_note": str}``
  for ``dvc metrics show`` / ``dvc exp show``;
- ``tables/``: ``summary.csv`` (variant x test set x metric: mean, CI, n, delta vs the
  baseline), ``by_group.csv``, ``by_degradation.csv`` and ``clips.csv`` (every segment);
- ``summary.md``: one Markdown table per test set (mean ± CI per metric, RTF) and one of
  deltas against the ``identity`` baseline;
- ``plots/<testset>/<metric>.csv``: one row per variant (mean, CI bounds) for ``dvc plots``
  bar charts;
- ``figures/<testset>/``: for a few examples, log-magnitude spectrograms, waveform overlays
  and difference signals of clean / degraded / every variant: the diagnostic views of
  seed 000 §4 ("waveform overlays, difference signals, and log-magnitude spectrograms");
- ``html/index.html``: the tables, the figures and HTML5 audio players (16-bit excerpts
  copied beside the page) to listen to clean, degraded and each variant side by side.

Rules the report keeps: T3 sets (no reference) show non-intrusive metrics only; the
25th-percentile level (seed 001) rewards gating and compression, so it is always shown after
the intrusive metrics and beside loudness, never alone; data built from the embedded
stand-in or from simulated MusicGen clips is labelled as such in every output.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M
from .audio import atomic_path, load_audio, save_audio, set_channels
from .dataset import Example, read_manifest
from .evaluate import CLIPS_CSV, SUMMARY_JSON, read_clips_csv
from .stage import StageError

log = logging.getLogger(__name__)

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
        baseline: variant every delta is taken against (SPEC §4: ``identity``).
        n_examples: examples per test set with figures and audio in the HTML page.
        excerpt_s: length of each audio excerpt and figure window.
        audio_format: ``"wav"`` (16-bit PCM, plays everywhere) or ``"flac"`` (half the size).
        figure_dpi: resolution of the PNG figures.
        metrics: metrics shown in tables and plots; empty = every metric evaluated.
    """

    baseline: str = "identity"  # SPEC §4: the floor every variant is measured against
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


@dataclass
class Evaluation:
    """One variant on one test set, as the evaluate stage left it."""

    variant: str
    testset: str
    summary: dict[str, Any]
    rows: list[dict[str, Any]]


# --------------------------------------------------------------------------------------
# collecting
# --------------------------------------------------------------------------------------


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
    return folder / f"{example_id}.wav"


def dataset_flags(
    collected: Mapping[str, Mapping[str, Evaluation]], testsets: Mapping[str, Any]
) -> dict[str, dict[str, bool]]:
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


# --------------------------------------------------------------------------------------
# numbers: metrics.json, tables, plots
# --------------------------------------------------------------------------------------


def metrics_document(
    collected: Mapping[str, Mapping[str, Evaluation]], note: str, wanted: Sequence[str] = ()
) -> dict[str, Any]:
    """``{"dataset_note": note, testset: {variant: {metric: mean, "rtf": rtf}}}``."""
    doc: dict[str, Any] = {"dataset_note": note}
    for testset, evals in collected.items():
        names = shown_metrics(evals, wanted)
        doc[testset] = {}
        for variant in order_variants(list(evals), ""):
            stats = evals[variant].summary["metrics"]
            values = {
                n: _round(stats[n]["mean"])
                for n in names
                if stats.get(n, {}).get("mean") is not None
            }
            values["rtf"] = _round(evals[variant].summary.get("rtf"))
            doc[testset][variant] = {k: v for k, v in values.items() if v is not None}
    return doc


def _round(value: Any, digits: int = 6) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(round(float(value), digits))


def _delta(
    evals: Mapping[str, Evaluation], variant: str, baseline: str, metric: str
) -> float | None:
    if baseline not in evals:
        return None
    a = evals[variant].summary["metrics"].get(metric, {}).get("mean")
    b = evals[baseline].summary["metrics"].get(metric, {}).get("mean")
    return None if a is None or b is None else a - b


def summary_rows(
    collected: Mapping[str, Mapping[str, Evaluation]], config: ReportConfig
) -> list[dict[str, Any]]:
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
                        f"delta_vs_{config.baseline}": _delta(
                            evals, variant, config.baseline, name
                        ),
                        "rtf": summary.get("rtf"),
                    }
                )
    return rows


def breakdown_rows(
    collected: Mapping[str, Mapping[str, Evaluation]], key: str, config: ReportConfig
) -> list[dict[str, Any]]:
    """Long table of one breakdown of the summaries (``by_group`` or ``by_degradation``)."""
    rows = []
    for testset, evals in collected.items():
        names = shown_metrics(evals, config.metrics)
        for variant in order_variants(list(evals), config.baseline):
            for level, block in evals[variant].summary.get(key, {}).items():
                stats_by_metric = block.get(
                    "metrics", block
                )  # by_degradation nests under "metrics"
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


def write_tables(
    collected: Mapping[str, Mapping[str, Evaluation]], folder: Path, config: ReportConfig
) -> None:
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


def write_plots(
    collected: Mapping[str, Mapping[str, Evaluation]], folder: Path, config: ReportConfig
) -> list[Path]:
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
            path = folder / _safe(testset) / f"{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_csv(path, rows, ["variant", "mean", "ci", "ci_low", "ci_high", "n"])
            written.append(path)
    return written


# --------------------------------------------------------------------------------------
# Markdown / HTML tables
# --------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _digits(metric: str) -> int:
    return 3 if metric in ("mel_ssim", "stoi", "lsd") else 2


def _heading(metric: str) -> str:
    info = M.INFO[metric]
    arrow = {True: " ↑", False: " ↓", None: ""}[info.higher_is_better]
    return f"{info.label}{f' ({info.unit})' if info.unit else ''}{arrow}"


def table_data(
    evals: Mapping[str, Evaluation], config: ReportConfig
) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """``(header, mean±CI rows, delta rows)`` for one test set; cells are strings."""
    names = shown_metrics(evals, config.metrics)
    header = ["variant", *[_heading(n) for n in names], "RTF", "segments"]
    values, deltas = [], []
    for variant in order_variants(list(evals), config.baseline):
        summary = evals[variant].summary
        cells = [variant]
        dcells = [variant]
        for name in names:
            stats = summary["metrics"].get(name, {})
            mean, ci = stats.get("mean"), stats.get("ci")
            digits = _digits(name)
            cells.append(_fmt(mean, digits) + ("" if ci is None else f" ± {ci:.{digits}f}"))
            delta = _delta(evals, variant, config.baseline, name)
            dcells.append("–" if delta is None else f"{delta:+.{digits}f}")
        rtf = summary.get("rtf")
        cells += [_fmt(rtf, 3), str(summary.get("n_segments", ""))]
        dcells += [_fmt(rtf, 3), str(summary.get("n_segments", ""))]
        values.append(cells)
        deltas.append(dcells)
    return header, values, deltas


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _testset_caption(evals: Mapping[str, Evaluation]) -> str:
    first = next(iter(evals.values())).summary
    tasks = ", ".join(first.get("tasks", []))
    groups = ", ".join(first.get("groups", []))
    intrusive = any(M.INFO[n].intrusive for n in first["metrics"])
    kind = (
        "intrusive + non-intrusive metrics"
        if intrusive
        else "no reference: non-intrusive metrics only"
    )
    return f"task {tasks}; group {groups}; {first.get('n_clips', '?')} clips; {kind}"


def method_line(collected: Mapping[str, Mapping[str, Evaluation]], config: ReportConfig) -> str:
    """How to read the tables: segment length, CI level, RTF, baseline, the P25 caveat."""
    first = next(iter(next(iter(collected.values())).values())).summary
    return (
        f"Means over {first.get('segment_s', 10):g}-s segments ± {first.get('confidence', 0.95):.0%} "
        "confidence half-width (Student t). RTF = compute time / audio time on the machine that ran "
        f"the restore stage. Deltas are against {config.baseline} (the degraded input). {P25_NOTE}"
    )


def markdown(
    collected: Mapping[str, Mapping[str, Evaluation]],
    config: ReportConfig,
    note: str,
    flags: Mapping[str, Any],
) -> str:
    out = [
        "# Restoration report",
        "",
        f"> **Data:** {note}",
        "",
        method_line(collected, config),
        "",
    ]
    for testset, evals in collected.items():
        header, values, deltas = table_data(evals, config)
        tag = []
        if flags.get(testset, {}).get("embedded"):
            tag.append("embedded stand-in")
        if flags.get(testset, {}).get("simulated"):
            tag.append("simulated")
        out += [
            f"## {testset}{' (' + ', '.join(tag) + ')' if tag else ''}",
            "",
            _testset_caption(evals),
            "",
        ]
        out += [_md_table(header, values), ""]
        if config.baseline in evals:
            out += [f"Δ vs `{config.baseline}`:", "", _md_table(header, deltas), ""]
    return "\n".join(out) + "\n"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# --------------------------------------------------------------------------------------
# audio excerpts and figures
# --------------------------------------------------------------------------------------


def _safe(name: str) -> str:
    """A file-name-safe version of an id or test set name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "x"


def excerpt_window(wave: np.ndarray, sr: int, excerpt_s: float) -> tuple[int, int]:
    """``(start, stop)`` of the loudest ``excerpt_s`` window (1-s grid) of ``(C, T)``: the part
    where restoration is audible, not a silent intro."""
    n = min(wave.shape[-1], int(round(excerpt_s * sr)))
    energy = np.square(wave.astype(np.float64)).sum(axis=0)
    cumsum = np.concatenate([[0.0], np.cumsum(energy)])
    starts = np.arange(0, wave.shape[-1] - n + 1, sr) if wave.shape[-1] > n else np.array([0])
    best = int(starts[np.argmax(cumsum[starts + n] - cumsum[starts])])
    return best, best + n


def _spectrogram_db(wave: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    power = M.power_spectrogram(wave.mean(axis=0, keepdims=True), n_fft, hop)[0]  # (F, N)
    return 10.0 * np.log10(power + 1e-10)


def render_figures(
    sources: Sequence[tuple[str, np.ndarray]],
    sr: int,
    anchor: str,
    out_prefix: Path,
    title: str,
    dpi: int = 80,
) -> list[Path]:
    """Spectrogram grid, waveform overlays and difference signals of one example.

    Args:
        sources: ``[(role, wave (C, T))]``: ``clean`` (if any), ``degraded``, then variants.
        anchor: role the overlays and differences compare against (``clean``, or
            ``degraded`` for T3, where the difference is what the restorer changed).
        out_prefix: figures are ``<prefix>_spec.png``, ``_wave.png``, ``_diff.png``.

    Returns:
        The three PNG paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    mono = {role: wave.mean(axis=0) for role, wave in sources}
    time_s = np.arange(next(iter(mono.values())).shape[-1]) / sr

    # log-magnitude spectrograms on one colour scale (80 dB range), so floors compare
    specs = [(role, _spectrogram_db(wave)) for role, wave in sources]
    vmax = max(float(s.max()) for _, s in specs)
    fig, axes = plt.subplots(
        len(specs), 1, figsize=(8, 1.7 * len(specs)), sharex=True, squeeze=False
    )
    for ax, (role, spec) in zip(axes[:, 0], specs, strict=True):
        im = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmax - 80,
            vmax=vmax,
            extent=(0, time_s[-1], 0, sr / 2000),
        )
        ax.set_ylabel("kHz")
        ax.set_title(role, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="dB", shrink=0.8)
    fig.suptitle(f"{title}: log-magnitude spectrograms", fontsize=10)
    paths.append(_save(fig, out_prefix.with_name(out_prefix.name + "_spec.png"), dpi))

    # waveform overlays and differences against the anchor, one panel per other source
    others = [(role, w) for role, w in mono.items() if role != anchor]
    ref = mono[anchor]
    for kind in ("wave", "diff"):
        fig, axes = plt.subplots(
            len(others), 1, figsize=(8, 1.5 * len(others)), sharex=True, squeeze=False
        )
        limit = max(float(np.max(np.abs(w - ref if kind == "diff" else w))) for _, w in others)
        limit = max(limit, float(np.max(np.abs(ref))) if kind == "wave" else limit, 1e-6)
        for ax, (role, w) in zip(axes[:, 0], others, strict=True):
            if kind == "wave":
                # the anchor is drawn last, thin and dark, so what a restorer added shows
                ax.plot(time_s, w, color="C0", lw=0.6, label=role)
                ax.plot(time_s, ref, color="k", lw=0.3, alpha=0.6, label=anchor)
                ax.legend(loc="upper right", fontsize=7)
            else:
                ax.plot(time_s, w - ref, color="C3", lw=0.5)
            ax.set_ylim(-limit * 1.05, limit * 1.05)
            ax.set_title(role if kind == "wave" else f"{role} − {anchor}", fontsize=9, loc="left")
        axes[-1, 0].set_xlabel("time (s)")
        what = (
            f"waveform overlay on {anchor}" if kind == "wave" else f"difference signal vs {anchor}"
        )
        fig.suptitle(f"{title}: {what}", fontsize=10)
        paths.append(_save(fig, out_prefix.with_name(f"{out_prefix.name}_{kind}.png"), dpi))
    return paths


def _save(fig: Any, path: Path, dpi: int) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return path


@dataclass
class ExampleMedia:
    """What the HTML page shows for one example."""

    testset: str
    example: Example
    audio: list[tuple[str, str]]  # (role, path relative to the html folder)
    figures: list[str]  # paths relative to the html folder
    scores: dict[str, dict[str, float]]  # role -> metrics of this clip's first segment
    start_s: float


def build_example_media(
    testset: str,
    testset_dir: Path,
    example: Example,
    evals: Mapping[str, Evaluation],
    restored_root: Path | None,
    figures_dir: Path,
    html_dir: Path,
    config: ReportConfig,
) -> ExampleMedia:
    """Write one example's figures and audio excerpts; return what the page links."""
    sr = example.sr
    sources: list[tuple[str, np.ndarray]] = []
    degraded, _ = load_audio(testset_dir / example.mixture)
    if example.target:
        clean, _ = load_audio(testset_dir / example.target)
        sources.append(("clean", set_channels(clean, degraded.shape[0])))
    sources.append(("degraded", degraded))
    for variant in order_variants(list(evals), config.baseline):
        path = restored_file(evals[variant], example.id, restored_root)
        if not path.is_file():
            log.warning("%s: missing, left out of the report page", path)
            continue
        wave, _ = load_audio(path)
        wave = set_channels(wave, degraded.shape[0])
        n = degraded.shape[-1]
        wave = (
            wave[:, :n] if wave.shape[-1] >= n else np.pad(wave, ((0, 0), (0, n - wave.shape[-1])))
        )
        sources.append((variant, wave))
    start, stop = excerpt_window(sources[0][1], sr, config.excerpt_s)
    sources = [(role, w[:, start:stop]) for role, w in sources]

    stem = _safe(example.id)
    prefix = figures_dir / _safe(testset) / stem
    anchor = "clean" if example.target else "degraded"
    figs = render_figures(
        sources, sr, anchor, prefix, f"{testset} / {example.id}", config.figure_dpi
    )
    fig_rel = []
    for fig in figs:
        dest = html_dir / "figures" / _safe(testset) / fig.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fig, dest)
        fig_rel.append(dest.relative_to(html_dir).as_posix())
    audio_rel = []
    for role, wave in sources:
        dest = html_dir / "audio" / _safe(testset) / stem / f"{_safe(role)}.{config.audio_format}"
        # 16-bit for size; clipping here only affects the preview, never the scores.
        save_audio(dest, np.clip(wave, -1.0, 1.0), sr, subtype="PCM_16")
        audio_rel.append((role, dest.relative_to(html_dir).as_posix()))
    scores = {}
    for variant, ev in evals.items():
        for row in ev.rows:
            if row.get("clip") == example.id and row.get("segment") == 0:
                scores[variant] = {k: v for k, v in row.items() if k in M.INFO and v is not None}
    return ExampleMedia(testset, example, audio_rel, fig_rel, scores, start / sr)


def pick_examples(testset_dir: Path, n: int) -> list[Example]:
    """The first ``n`` examples of the manifest: a stable choice across runs."""
    return read_manifest(testset_dir)[:n]


# --------------------------------------------------------------------------------------
# HTML page
# --------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}
.note{background:#fff3cd;border:1px solid #e0c36a;padding:.6em 1em;border-radius:4px}
table.metrics{border-collapse:collapse;font-size:13px;margin:.5em 0 1em}
table.metrics td,table.metrics th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
table.metrics td:first-child,table.metrics th:first-child{text-align:left}
.example{border-top:1px solid #ddd;margin-top:1.5em;padding-top:.5em}
.players td{padding:2px 8px;vertical-align:middle;font-size:13px}
img{max-width:100%;display:block;margin:.5em 0}
.media-error{color:#b00;font-weight:bold}
"""

# Marks every <img>/<audio> as data-media="ok"/"error" once it has loaded (or failed) and
# writes the tally into #media-check: a broken link is visible on the page, and the tests
# read the same marks from a headless browser.
_MEDIA_CHECK_JS = """
(function () {
  var pending = 0, ok = 0, bad = 0;
  function done(el, good) {
    if (el.dataset.media) return;
    el.dataset.media = good ? "ok" : "error";
    if (good) { ok++; } else {
      bad++;
      var span = document.createElement("span");
      span.className = "media-error";
      span.textContent = "cannot load " + (el.getAttribute("src") || "");
      el.insertAdjacentElement("afterend", span);
    }
    pending--;
    var box = document.getElementById("media-check");
    box.textContent = JSON.stringify({ok: ok, error: bad, pending: pending});
    if (pending === 0) { document.body.dataset.mediaCheck = bad ? "error" : "ok"; }
  }
  window.addEventListener("load", function () {
    var imgs = document.querySelectorAll("img"), auds = document.querySelectorAll("audio");
    pending = imgs.length + auds.length;
    if (pending === 0) { document.body.dataset.mediaCheck = "ok"; }
    imgs.forEach(function (img) { done(img, img.complete && img.naturalWidth > 0); });
    auds.forEach(function (a) {
      if (a.error) { done(a, false); return; }
      if (a.readyState >= 1) { done(a, true); return; }
      a.addEventListener("loadedmetadata", function () { done(a, true); });
      a.addEventListener("error", function () { done(a, false); });
      a.load();
    });
  });
})();
"""


def render_html(
    collected: Mapping[str, Mapping[str, Evaluation]],
    media: Sequence[ExampleMedia],
    config: ReportConfig,
    note: str,
) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>musicrestore: restoration report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Restoration report</h1>",
        f'<p class="note"><b>Data:</b> {esc(note)}</p>',
        f"<p>{esc(method_line(collected, config))}</p>",
        '<p>Media check: <span id="media-check">not run</span></p>',
    ]
    for testset, evals in collected.items():
        header, values, deltas = table_data(evals, config)
        parts += [
            f'<h2 id="{esc(_safe(testset))}">{esc(testset)}</h2>',
            f"<p>{esc(_testset_caption(evals))}</p>",
            _html_table(header, values),
        ]
        if config.baseline in evals:
            parts += [
                f"<p>Δ vs <code>{esc(config.baseline)}</code>:</p>",
                _html_table(header, deltas),
            ]
        for item in (m for m in media if m.testset == testset):
            ex = item.example
            fired = ", ".join(ex.effect_names()) or "none recorded"
            parts.append(
                f'<div class="example"><h3>{esc(ex.id)}</h3>'
                f"<p>song {esc(ex.song)}; group {esc(ex.group)}; excerpt from {item.start_s:.1f} s; "
                f"degradations: {esc(fired)}</p>"
            )
            names = [n for n in M.ALL_METRICS if any(n in s for s in item.scores.values())][:4]
            head = "".join(f"<th>{esc(_heading(n))}</th>" for n in names)
            parts.append(f'<table class="players"><tr><th>source</th><th>listen</th>{head}</tr>')
            for role, rel in item.audio:
                cells = "".join(
                    f"<td>{_fmt(item.scores.get(role, {}).get(n), _digits(n))}</td>" for n in names
                )
                parts.append(
                    f"<tr><td>{esc(role)}</td>"
                    f'<td><audio controls preload="metadata" src="{esc(rel)}"></audio></td>{cells}</tr>'
                )
            parts.append("</table>")
            parts += [
                f'<img src="{esc(rel)}" alt="{esc(ex.id)} {esc(Path(rel).stem)}">'
                for rel in item.figures
            ]
            parts.append("</div>")
    parts += [f"<script>{_MEDIA_CHECK_JS}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------
# the whole report
# --------------------------------------------------------------------------------------


def build_report(
    eval_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    restored_root: str | os.PathLike[str] | None = None,
    testsets: Mapping[str, str | os.PathLike[str]] | None = None,
    config: ReportConfig | None = None,
) -> dict[str, Any]:
    """Write every report output under ``out`` (see the module docstring).

    Args:
        eval_root: ``<eval_root>/<variant>/<testset>/summary.json`` (+ ``clips.csv``).
        out: report folder; ``metrics.json``, ``summary.md``, ``tables/``, ``plots/``,
            ``figures/`` and ``html/`` under it are replaced.
        restored_root: ``<restored_root>/<variant>/<testset>/<id>.wav``; ``None`` uses the
            restored folder each summary recorded.
        testsets: ``{name: folder}`` overriding the test set folders the summaries recorded
            (references, manifest ``meta``); a test set whose folder is found nowhere gets
            tables but no figures or audio.

    Returns:
        The ``metrics.json`` document.
    """
    config = config or ReportConfig()
    testsets = dict(testsets or {})
    out = Path(out)
    collected = collect(eval_root)
    flags = dataset_flags(collected, testsets)
    note = dataset_note(flags)
    if any(f["embedded"] or f["simulated"] for f in flags.values()):
        log.warning("note: %s", note)

    out.mkdir(parents=True, exist_ok=True)
    # Everything is built in a hidden staging folder and swapped in at the end, so an
    # interrupted report never leaves a mix of old and new outputs that looks complete.
    staging = Path(tempfile.mkdtemp(prefix=".report.", suffix=".tmp", dir=out))
    try:
        root = None if restored_root is None else Path(restored_root)
        doc = _build(collected, flags, note, root, testsets, staging, config)
        for name in REPORT_OUTPUTS:  # metrics.json last: it is what DVC compares
            _swap(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return doc


#: Everything the report writes under ``out``, in the order it is swapped into place.
REPORT_OUTPUTS = ("tables", "plots", "figures", "html", "summary.md", "metrics.json")


def _swap(src: Path, dest: Path) -> None:
    if dest.is_dir() and not dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        src.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dest)


def _build(
    collected: Mapping[str, Mapping[str, Evaluation]],
    flags: Mapping[str, Mapping[str, bool]],
    note: str,
    restored_root: Path | None,
    testsets: Mapping[str, str | os.PathLike[str]],
    out: Path,
    config: ReportConfig,
) -> dict[str, Any]:
    write_tables(collected, out / "tables", config)
    write_plots(collected, out / "plots", config)
    (out / "figures").mkdir()
    (out / "html").mkdir()
    media = []
    for testset, evals in collected.items():
        folder = testset_dir(testset, evals, testsets)
        if folder is None:
            log.warning(
                "%s: test set folder not found; the report has its numbers but no figures/audio",
                testset,
            )
            continue
        for example in pick_examples(folder, config.n_examples):
            media.append(
                build_example_media(
                    testset,
                    folder,
                    example,
                    evals,
                    restored_root,
                    out / "figures",
                    out / "html",
                    config,
                )
            )
    (out / "html" / "index.html").write_text(
        render_html(collected, media, config, note), encoding="utf-8"
    )
    (out / "summary.md").write_text(markdown(collected, config, note, flags), encoding="utf-8")
    doc = metrics_document(collected, note, config.metrics)
    (out / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc
