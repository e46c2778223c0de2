"""Stage build_msr: the degraded MSR test and train sets of one target (seed 004 §4.2).

Writes ``--out-test`` and ``--out-train`` (dataset folders: ``{id}_mixture.flac``,
``{id}_target.flac``, ``manifest.jsonl``, ``stats.json``), two DVC outputs so that the
restore and evaluate stages depend on the test sets alone. Params: the ``msr``
section (keys = :func:`musicrestore.degrade.build.build_msr` arguments; ``degrade`` = the
chain config; ``targets`` is read by ``dvc.yaml`` only), ``seed`` when ``msr.seed`` is unset.
The examples are Dask tasks (:mod:`musicrestore.compute`, the ``compute`` block, which is
not a DVC param: where the work runs never changes an output).
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from musicrestore import compute, tracking
from musicrestore.core.config import pipeline_seed
from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.degrade.build import block_settings, build_msr


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rawstems", required=True, help="RawStems-layout folder")
    parser.add_argument("--splits", required=True, help="folder of {Target}_{train,test}.txt")
    parser.add_argument("--target", required=True, help="Voc, Rhy, ..., Gtr_AG, Gtr_EG")
    parser.add_argument("--out-test", required=True, help="test set folder, replaced atomically")
    parser.add_argument("--out-train", required=True, help="training set folder, likewise")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``seed`` and the whole ``msr`` block
    (:func:`musicrestore.degrade.build.block_settings`), checked before any work."""
    if "msr" not in params:
        raise StageError(f"{args.params}: missing section 'msr'")
    return block_settings(params["msr"], pipeline_seed(params), "msr")


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    config = settings(params, args)
    cluster = compute.compute_settings(params.get("compute"))
    if args.check_params:
        return
    kwargs, cfg = config["kwargs"], config["cfg"]
    logged = {**kwargs, "target": args.target, "degrade": config["degrade"]}  # with the defaults
    with tracking.stage_run(f"build_msr@{args.target}", logged) as run:
        with (
            compute.engine(cluster) as eng,
            output_dir(args.out_test) as test,
            output_dir(args.out_train) as train,
        ):
            folders = {"test": test, "train": train}
            stats = build_msr(
                args.rawstems, args.splits, args.target, folders, cfg=cfg, engine=eng, **kwargs
            )
        run.log_metrics({k: v for k, v in stats.items() if k in ("test", "train", "build_time_s")})
        run.log_artifact(Path(args.out_test) / "stats.json", artifact_path="test")
        run.log_artifact(Path(args.out_train) / "stats.json", artifact_path="train")
    print(
        f"build_msr {args.target}: {stats['test']['examples']} test + {stats['train']['examples']}"
        f" train examples in {stats['build_time_s']:.1f} s -> {args.out_test}, {args.out_train}"
    )


if __name__ == "__main__":
    main()
