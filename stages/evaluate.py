"""DVC stage: score one restoration variant on one test set (SPEC §5).

    python stages/evaluate.py --params params.yaml \
        --testset data/msr/Voc/test --testset-name msr_Voc \
        --restored data/restored/identity/msr_Voc --variant identity \
        --out reports/eval/identity/msr_Voc

Reads the ``evaluate`` section of params.yaml; writes ``clips.csv`` and ``summary.json``
into ``--out`` atomically. The work is :func:`musicrestore.evaluate.evaluate`.
"""

from __future__ import annotations

import argparse
import logging

from musicrestore import evaluate as ev
from musicrestore.stage import load_params, main_guard, output_dir
from musicrestore.tracking import stage_run

log = logging.getLogger("evaluate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section 'evaluate')")
    parser.add_argument("--testset", required=True, help="test set folder with manifest.jsonl")
    parser.add_argument("--testset-name", required=True, help="name of the test set in reports")
    parser.add_argument(
        "--restored", required=True, help="the variant's restored folder for this test set"
    )
    parser.add_argument("--variant", required=True, help="name of the restoration variant")
    parser.add_argument("--out", required=True, help="output folder (clips.csv, summary.json)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = ev.EvalConfig(**(load_params(args.params, "evaluate") or {}))
    params = {"evaluate": vars(config), "variant": args.variant, "testset": args.testset_name}
    with stage_run(f"evaluate:{args.variant}:{args.testset_name}", params) as run:
        with output_dir(args.out) as tmp:
            summary = ev.evaluate(
                args.testset,
                args.restored,
                tmp,
                variant=args.variant,
                testset=args.testset_name,
                config=config,
                progress=not args.no_progress,
            )
        run.set_tags({"variant": args.variant, "testset": args.testset_name})
        run.log_metrics(ev.headline(summary))
        run.log_artifact(args.out, artifact_path="eval")
    shown = ", ".join(f"{k}={v:.3g}" for k, v in ev.headline(summary).items())
    log.info(
        "%s on %s: %d segments; %s", args.variant, args.testset_name, summary["n_segments"], shown
    )


if __name__ == "__main__":
    main()
