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

import argparse
import time
from pathlib import Path

from musicrestore import tracking
from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.train.separator import build_separator, config_from_params


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rawstems", required=True, help="RawStems-layout dataset folder")
    parser.add_argument("--splits", required=True, help="folder of {Target}_{train,test}.txt")
    parser.add_argument("--out", required=True, help="separator folder to (re)create")
    parser.add_argument("--work", default=None, help="resumable checkpoint folder (persistent)")
    args = parser.parse_args(argv)
    all_params = load_params(args.params)
    if "separate" not in all_params:
        raise StageError(f"{args.params}: missing section 'separate'")
    params = all_params["separate"]
    train = dict(params.get("train") or {})
    # The pipeline's one seed seeds this training too unless separate.train.seed overrides it.
    train.setdefault("seed", int(all_params.get("seed", 0)))
    model = str(params.get("model", "trained"))
    evaluation = params.get("eval", {})
    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / f".{out.name}_work"
    start = time.perf_counter()
    with (
        tracking.stage_run("train_separator", {**params, "train": train}) as run,
        output_dir(args.out) as tmp,
    ):
        metrics = build_separator(
            model,
            tmp,
            args.rawstems,
            args.splits,
            work,
            train_config=config_from_params(train),
            repo=params.get("repo"),
            eval_segment_s=float(evaluation.get("segment_s", 10.0)),
            eval_max_segments=evaluation.get("max_segments", 24),
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
