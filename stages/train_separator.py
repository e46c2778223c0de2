"""Stage train_separator: the Demucs separator every separating variant loads.

See docs/method.md#separator.

``separate.model: trained`` trains a small HTDemucs on the RawStems training songs (resuming
from ``--work``, which must survive between runs); any other name (``htdemucs``, ...) copies
that pretrained model from the Hugging Face cache or ``separate.repo``. Either way ``--out``
becomes a Demucs repo folder: downstream stages call
``load_separator(separate.model, repo=<out>)``. Both are evaluated on the test songs
(``<out>/metrics.json``: SI-SDR per source, mixture baseline).
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from musicrestore import tracking
from musicrestore.core.config import pipeline_seed
from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.train.separator import build_separator, separate_settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rawstems", required=True, help="RawStems-layout dataset folder")
    parser.add_argument("--splits", required=True, help="folder of {Target}_{train,test}.txt")
    parser.add_argument("--out", required=True, help="separator folder to (re)create")
    parser.add_argument("--work", default=None, help="resumable checkpoint folder (persistent)")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``seed`` and the whole ``separate`` block
    (:func:`musicrestore.train.separator.separate_settings`), checked before any work."""
    if "separate" not in params:
        raise StageError(f"{args.params}: missing section 'separate'")
    return separate_settings(params["separate"], pipeline_seed(params))


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = settings(load_params(args.params), args)
    if args.check_params:
        return
    model, evaluation = config["model"], config["eval"]
    logged = {"model": model, "repo": config["repo"], "train": config["train"]}
    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / f".{out.name}_work"
    start = time.perf_counter()
    with (
        tracking.stage_run("train_separator", {**logged, "eval": asdict(evaluation)}) as run,
        output_dir(args.out) as tmp,
    ):
        metrics = build_separator(
            model,
            tmp,
            args.rawstems,
            args.splits,
            work,
            train_config=config["train_config"],
            repo=config["repo"],
            trust_pickle=config["trust_pickle"],
            eval_segment_s=evaluation.segment_s,
            eval_max_segments=evaluation.max_segments,
            on_log=lambda step, loss: run.log_metrics({"train_loss": loss}, step=step),
        )
        run.log_metrics({"si_sdr": metrics, "build_s": time.perf_counter() - start})
        run.set_tags({"separator": model})
        for name in ("metrics.json", "separator.json", "loss.csv"):
            run.log_artifact(tmp / name)
    db = lambda v: "n/a" if v is None else f"{v:.2f} dB"  # noqa: E731
    print(
        f"train_separator: {model} -> {args.out} in {time.perf_counter() - start:.0f} s; "
        f"test SI-SDR {db(metrics['mean'])} (mixture {db(metrics['mixture']['mean'])})"
    )


if __name__ == "__main__":
    main()
