"""DVC stage: the comparison report over every evaluated variant and test set.

    python stages/report.py --params params.yaml --eval reports/eval --out reports \
        [--restored data/restored] [--testset msr_Voc=data/msr/Voc/test ...] [--models models]

Test set folders and restored folders default to the paths each evaluate stage recorded in
its ``summary.json`` (the ones dvc.yaml passed it), so dvc.yaml names them only once.

Reads the ``report`` section of params.yaml; writes ``metrics.json``, ``summary.md``,
``tables/``, ``plots/``, ``figures/`` and ``html/`` under ``--out`` and logs them to MLflow;
with ``--models``, also ``models.json`` (every trained model's own held-out metrics).
The work is :func:`musicrestore.report.build_report`; what it reports is described in
docs/method.md#report.
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from musicrestore import report
from musicrestore.core.stage import StageError, load_params, main_guard
from musicrestore.report.collect import ReportConfig, report_config
from musicrestore.tracking import stage_run

log = logging.getLogger("report")


def parse_testset(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section 'report')")
    parser.add_argument("--eval", required=True, help="folder of <variant>/<testset>/summary.json")
    parser.add_argument(
        "--restored",
        help="folder of <variant>/<testset>/<id>.wav (default: the folders the evaluate stage recorded)",
    )
    parser.add_argument(
        "--testset",
        action="append",
        default=[],
        type=parse_testset,
        metavar="NAME=PATH",
        help="override a test set folder (repeatable; default: the one the evaluate stage recorded)",
    )
    parser.add_argument("--out", required=True, help="report folder (e.g. reports)")
    parser.add_argument(
        "--models", help="models folder whose **/metrics.json are gathered into <out>/models.json"
    )
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> ReportConfig:
    """The ``report`` block (:func:`musicrestore.report.collect.report_config`), checked
    before any work."""
    if "report" not in params:
        raise StageError(f"{args.params}: missing section 'report'")
    return report_config(params["report"])


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    testsets = dict(args.testset)
    if len(testsets) != len(args.testset):
        raise StageError("--testset: a test set name is given twice")
    config = settings(load_params(args.params), args)
    if args.check_params:
        return
    with stage_run("report", {"report": vars(config), "testsets": testsets}) as run:
        doc = report.build_report(args.eval, args.out, args.restored, testsets, config)
        # the note is prose, so it is not in metrics.json; it heads summary.md and the page
        note = report.dataset_note(report.dataset_flags(report.collect(args.eval), testsets))
        run.log_metrics(doc)
        if args.models:
            report.write_model_metrics(args.models, Path(args.out) / "models.json")
        run.set_tags({"dataset_note": note[:5000]})
        out = Path(args.out)
        for name in report.REPORT_OUTPUTS:
            run.log_artifact(
                out / name, artifact_path="report" if (out / name).is_file() else f"report/{name}"
            )
    print(note)
    log.info("report written to %s (open %s)", args.out, Path(args.out) / "html" / "index.html")


if __name__ == "__main__":
    main()
