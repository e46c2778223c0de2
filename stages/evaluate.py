"""DVC stage ``evaluate@<variant>``: score one variant on every test set it was restored on.

    python stages/evaluate.py --variant unet_mask \
        --testset musicgen_like=data/musicgen_like/test --msr-test data/msr/test \
        --restored data/restored/unet_mask --out reports/eval/unet_mask

Every variant is scored by the same command over every test set (one DVC ``foreach``); the
test sets scored are those the variant's restore stage wrote (``<restored>/<testset>/``):
``unet_mask`` restores T1 and T3 only, ``uformer`` the T2 groups only. A restored folder that
holds none of the given test sets is a one-line error.

Reads the ``evaluate`` section (through :func:`musicrestore.evaluation.evaluate.eval_config`:
an unknown key, a wrong type or a value out of range is one line and exit 1) and
``msr.targets``; for each test set writes ``<out>/<testset>/clips.csv`` and ``summary.json``
(atomically, byte-identical on a re-run).
Every example is a Dask task (:mod:`musicrestore.compute`; one cluster for all test sets,
chosen by the ``compute`` block, which is no DVC param). The work is
:func:`musicrestore.evaluation.evaluate.evaluate`.
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

from musicrestore import compute
from musicrestore.core.stage import load_params, main_guard, output_dir
from musicrestore.data import testsets as ts
from musicrestore.evaluation import evaluate as ev
from musicrestore.tracking import stage_run

log = logging.getLogger("evaluate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--variant", required=True, help="name of the restoration variant")
    ts.add_arguments(parser)
    parser.add_argument("--restored", required=True, help="the variant's <testset>/ folders")
    parser.add_argument("--out", required=True, help="output folder (<testset>/summary.json)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The ``evaluate`` block (:func:`musicrestore.evaluation.evaluate.eval_config`) and, with
    ``--msr-test``, ``msr.targets`` (:func:`musicrestore.data.testsets.msr_targets`), checked
    before any work."""
    config = ev.eval_config(params.get("evaluate"))
    return {"config": config, "targets": ts.msr_targets(params) if args.msr_test else None}


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    checked = settings(params, args)
    cluster = compute.compute_settings(params.get("compute"))
    if args.check_params:
        return
    config = checked["config"]
    skipped = Path(args.restored) / ts.SKIPPED_FILE
    if skipped.is_file():  # the variant did not run here: pass the note on to the report
        with (
            stage_run(f"evaluate@{args.variant}", {"variant": args.variant, "skipped": True}),
            output_dir(args.out) as tmp,
        ):
            (tmp / ts.SKIPPED_FILE).write_bytes(skipped.read_bytes())
        log.warning("%s: not run (%s); nothing to score", args.variant, skipped)
        return
    sets = ts.restored_sets(
        ts.resolve(args.testset, args.msr_test, checked["targets"]), args.restored
    )
    logged = {"evaluate": vars(config), "variant": args.variant, "testsets": sorted(sets)}
    shown = ("si_sdr", "mel_ssim", "p25_level_db")
    with stage_run(f"evaluate@{args.variant}", logged) as run:
        with (
            compute.engine(cluster, progress=not args.no_progress) as eng,
            output_dir(args.out) as tmp,
        ):
            for name, folder in sets.items():
                summary = ev.evaluate(
                    folder,
                    Path(args.restored) / name,
                    tmp / name,
                    variant=args.variant,
                    testset=name,
                    config=config,
                    progress=not args.no_progress,
                    engine=eng,
                )
                means = ev.headline(summary)
                run.log_metrics({f"{name}.{k}": v for k, v in means.items()})
                log.info(
                    "%s on %s: %d segments; %s",
                    args.variant,
                    name,
                    summary["n_segments"],
                    ", ".join(f"{k}={v:.3g}" for k, v in means.items() if k in shown),
                )
        run.set_tags({"variant": args.variant})
        run.log_artifact(args.out, artifact_path="eval")


if __name__ == "__main__":
    main()
