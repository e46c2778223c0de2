"""Build the whole report: collect, write every output, swap them into place.

Each output folder is built in a hidden sibling by :func:`musicrestore.core.stage.output_dir`
and replaces the old one only once everything was written, so an interrupted report never
leaves a mix of old and new outputs that looks complete; the two files are written
atomically after the folders, ``metrics.json`` last (it is what DVC compares).

:func:`model_metrics` gathers the trained models' own held-out scores
(``models/<name>/metrics.json``, inside cached model folders a fresh clone does not have)
into one small uncached ``models.json`` that git keeps, so the README and ``dvc metrics
diff`` show them without pulling the models.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.audio import atomic_path
from ..core.stage import output_dir
from ..data.testsets import SKIPPED_FILE
from .collect import Collected, ReportConfig, collect, dataset_flags, dataset_note, testset_dir
from .html import build_example_media, pick_examples, render_html
from .markdown import render_markdown
from .tables import metrics_document, write_plots, write_tables

log = logging.getLogger(__name__)

#: Everything the report writes under ``out``, in the order it is swapped into place.
REPORT_OUTPUTS = ("tables", "plots", "figures", "html", "summary.md", "metrics.json")
_FOLDERS = REPORT_OUTPUTS[:4]


def build_report(
    eval_root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    restored_root: str | os.PathLike[str] | None = None,
    testsets: Mapping[str, str | os.PathLike[str]] | None = None,
    config: ReportConfig | None = None,
) -> dict[str, Any]:
    """Write every report output under ``out`` (see :mod:`musicrestore.report`).

    Args:
        eval_root: ``<eval_root>/<variant>/<testset>/summary.json`` (+ ``clips.csv``).
        out: report folder; ``metrics.json``, ``summary.md``, ``tables/``, ``plots/``,
            ``figures/`` and ``html/`` under it are replaced, nothing else is touched.
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
    root = None if restored_root is None else Path(restored_root)

    not_run = skipped_variants(eval_root)
    doc = metrics_document(collected, config.baseline, config.metrics)
    with contextlib.ExitStack() as stack:
        # entered last to first, so they are swapped in REPORT_OUTPUTS order once all are written
        dirs = {name: stack.enter_context(output_dir(out / name)) for name in _FOLDERS[::-1]}
        _write_folders(collected, root, testsets, dirs, config, note)
    with atomic_path(out / "summary.md") as tmp:
        text = render_markdown(collected, config, note, flags, doc, not_run)
        tmp.write_text(text, encoding="utf-8")
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def skipped_variants(eval_root: str | os.PathLike[str]) -> dict[str, str]:
    """``{variant: reason}`` for the variants whose stages wrote ``skipped.json`` instead
    of results (a pretrained variant without its checkpoints)."""
    out = {}
    for path in sorted(Path(eval_root).glob(f"*/{SKIPPED_FILE}")):
        doc = json.loads(path.read_text())
        out[path.parent.name] = str(doc.get("reason", "not run"))
    return out


def model_metrics(models_root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{name: metrics}`` of every ``<models_root>/**/metrics.json``, by relative folder.

    Hidden folders (a training run's ``.<name>_work`` checkpoints) are skipped; the names
    are POSIX relative paths (``unet_mask``, ``uformer/Voc``), sorted, so the document is
    the same on every machine.
    """
    root = Path(models_root)
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("metrics.json")):
        rel = path.parent.relative_to(root)
        if not rel.parts or any(part.startswith(".") for part in rel.parts):
            continue
        found[rel.as_posix()] = json.loads(path.read_text(encoding="utf-8"))
    return found


def write_model_metrics(
    models_root: str | os.PathLike[str], out: str | os.PathLike[str]
) -> dict[str, dict[str, Any]]:
    """Write :func:`model_metrics` of ``models_root`` to ``out`` atomically; return it."""
    doc = model_metrics(models_root)
    with atomic_path(Path(out)) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return doc


def _write_folders(
    collected: Collected,
    restored_root: Path | None,
    testsets: Mapping[str, str | os.PathLike[str]],
    dirs: Mapping[str, Path],
    config: ReportConfig,
    note: str,
) -> None:
    write_tables(collected, dirs["tables"], config)
    write_plots(collected, dirs["plots"], config)
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
                    dirs["figures"],
                    dirs["html"],
                    config,
                )
            )
    (dirs["html"] / "index.html").write_text(
        render_html(collected, media, config, note), encoding="utf-8"
    )
