"""``summary.md``: the stand-in data note, the headline numbers and one table per test set.

The cell formatting (:func:`table_data`, :func:`fmt`, :func:`heading`) is shared with the
HTML page, so both show the same strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..evaluation import metrics as M
from .collect import P25_NOTE, Collected, Evaluation, ReportConfig, order_variants, shown_metrics
from .tables import HEADLINE, delta


def fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def digits(metric: str) -> int:
    """Decimals a metric is shown with: 3 for the 0..1 scores and LSD, else 2 (dB, LU)."""
    return 3 if metric in ("mel_ssim", "stoi", "lsd") else 2


def heading(metric: str) -> str:
    """Column heading: label, unit and which way is better."""
    info = M.INFO[metric]
    arrow = {True: " ↑", False: " ↓", None: ""}[info.higher_is_better]
    return f"{info.label}{f' ({info.unit})' if info.unit else ''}{arrow}"


def table_data(
    evals: Mapping[str, Evaluation], config: ReportConfig
) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """``(header, mean±CI rows, delta rows)`` for one test set; cells are strings."""
    names = shown_metrics(evals, config.metrics)
    header = ["variant", *[heading(n) for n in names], "segments"]
    values, deltas = [], []
    for variant in order_variants(list(evals), config.baseline):
        summary = evals[variant].summary
        cells = [variant]
        dcells = [variant]
        for name in names:
            stats = summary["metrics"].get(name, {})
            mean, ci = stats.get("mean"), stats.get("ci")
            d = digits(name)
            cells.append(fmt(mean, d) + ("" if ci is None else f" ± {ci:.{d}f}"))
            diff = delta(evals, variant, config.baseline, name)
            dcells.append("–" if diff is None else f"{diff:+.{d}f}")
        cells.append(str(summary.get("n_segments", "")))
        dcells.append(str(summary.get("n_segments", "")))
        values.append(cells)
        deltas.append(dcells)
    return header, values, deltas


def headline_table(
    doc: Mapping[str, Mapping[str, Mapping[str, float]]],
) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of the ``metrics.json`` document: one row per variant."""
    columns = [
        (task.lower(), metric)
        for task, names in HEADLINE.items()
        for metric in names
        if any(metric in entry.get(task.lower(), {}) for entry in doc.values())
    ]
    header = ["variant", *[f"{task.upper()} {heading(metric)}" for task, metric in columns]]
    rows = [
        [
            variant,
            *[fmt(entry.get(task, {}).get(metric), digits(metric)) for task, metric in columns],
        ]
        for variant, entry in doc.items()
    ]
    return header, rows


#: Seed 004's Table 1: these variants (those evaluated) per group, these metrics.
TABLE1_VARIANTS = ("identity", "demucs", "demucs_dsp", "uformer")
TABLE1_METRICS = ("si_sdr", "mel_ssim", "multi_mel_snr")


def table1(collected: Collected) -> list[str]:
    """Markdown lines of the T2 results laid out as seed 004's Table 1: one table per metric,
    a row per target group (``msr_<group>`` test sets) and the mean of the group means, a
    column per :data:`TABLE1_VARIANTS` variant (mean ± CI half-width over the group's
    segments), and per variant the groups on which it beats ``identity``. ``[]`` without T2."""
    sets = [name for name in collected if name.startswith("msr_")]
    variants = [v for v in TABLE1_VARIANTS if any(v in collected[s] for s in sets)]
    if not sets or not variants:
        return []
    out = [
        "## T2 per group (seed 004, Table 1 layout)",
        "",
        "Mean ± 95% CI half-width over each group's 10-s segments; `mean` is the mean of the "
        "group means; `beats identity` counts the groups where the variant's mean is higher.",
        "",
    ]
    for metric in TABLE1_METRICS:
        d = digits(metric)
        means: dict[str, dict[str, float]] = {v: {} for v in variants}
        rows = []
        for testset in sets:
            row = [testset.removeprefix("msr_")]
            for variant in variants:
                ev = collected[testset].get(variant)
                stats = ev.summary["metrics"].get(metric, {}) if ev is not None else {}
                mean, ci = stats.get("mean"), stats.get("ci")
                if mean is not None:
                    means[variant][testset] = mean
                row.append(fmt(mean, d) + ("" if ci is None else f" ± {ci:.{d}f}"))
            rows.append(row)
        rows.append(
            ["**mean**"]
            + [
                fmt(sum(m.values()) / len(m), d) if len(m) == len(sets) else "–"
                for m in (means[v] for v in variants)
            ]
        )
        if "identity" in means:
            base = means["identity"]
            rows.append(
                ["beats identity"]
                + [
                    "–"
                    if v == "identity"
                    else f"{sum(1 for s, x in means[v].items() if s in base and x > base[s])}"
                    f"/{len(sets)}"
                    for v in variants
                ]
            )
        out += [f"### {heading(metric)}", "", md_table(["group", *variants], rows), ""]
    return out


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def testset_caption(evals: Mapping[str, Evaluation]) -> str:
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


def method_line(collected: Collected, config: ReportConfig) -> str:
    """How to read the tables: segment length, CI level, baseline, the P25 caveat."""
    first = next(iter(next(iter(collected.values())).values())).summary
    return (
        f"Means over {first.get('segment_s', 10):g}-s segments ± {first.get('confidence', 0.95):.0%} "
        f"confidence half-width (Student t). Deltas are against {config.baseline} (the degraded "
        f"input). {P25_NOTE}"
    )


def render_markdown(
    collected: Collected,
    config: ReportConfig,
    note: str,
    flags: Mapping[str, Any],
    doc: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    not_run: Mapping[str, str] | None = None,
) -> str:
    """The whole ``summary.md``; ``doc`` (the ``metrics.json`` document) adds a headline
    table, ``not_run`` (``{variant: reason}``) a line naming the variants that did not run."""
    out = [
        "# Restoration report",
        "",
        f"> **Data:** {note}",
        "",
        method_line(collected, config),
        "",
    ]
    if not_run:
        names = ", ".join(f"`{name}` ({reason})" for name, reason in sorted(not_run.items()))
        out += [f'Not run: {names}; README, "Pretrained RoFormers", says how to fetch them.', ""]
    if doc:
        header, rows = headline_table(doc)
        out += [
            "## Headline (metrics.json)",
            "",
            "T1: musicgen_like; T2: mean over the msr_<target> sets; T3: musicgen.",
            "",
            md_table(header, rows),
            "",
        ]
    out += table1(collected)
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
            testset_caption(evals),
            "",
        ]
        out += [md_table(header, values), ""]
        if config.baseline in evals:
            out += [f"Δ vs `{config.baseline}`:", "", md_table(header, deltas), ""]
    return "\n".join(out) + "\n"
