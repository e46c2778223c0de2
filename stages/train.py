"""Stage train-<model>: one learned restorer (seed 000's U-Net STFT mask or WaveNet
denoiser; docs/method.md#learned-models) trained with the one engine of ``musicrestore.train``.
Stage train-uformer@<group>: seed 004's U-Former for one target group
(docs/method.md#uformer), ``--model uformer --target <group>`` on ``data/msr/train/<group>``.

Reads ``models.<model>`` of ``params.yaml`` (``preset`` picks ``presets.<preset>``: the
network's constructor kwargs ``arch``, a ``train`` config, a ``data`` config and the
``loss``), trains on the ``--train`` dataset folders, resuming from ``--work`` (keep it
between runs), and writes ``--out``: ``model.safetensors`` + ``config.json`` (the inference
checkpoint), ``metrics.json`` (final validation metrics) and ``loss.csv`` (the curve).
Runs the same under ``torchrun --nproc_per_node N stages/train.py ...``.
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from musicrestore.core.stage import load_params, main_guard
from musicrestore.train.recipe import (
    ModelSpec,
    is_rank_zero,
    spec_from_params,
    stage_outputs,
    train_model,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, help="models.<name> block and architecture")
    parser.add_argument("--train", required=True, nargs="+", help="training dataset folder(s)")
    parser.add_argument("--out", required=True, help="checkpoint folder to (re)create")
    parser.add_argument("--work", default=None, help="resumable work folder (persistent)")
    parser.add_argument("--target", default=None, help="T2 group of a per-target model (Voc, ...)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> ModelSpec:
    """``seed`` and ``models.<--model>`` (its chosen preset: ``arch``, ``train``, ``data``,
    ``loss``, ``gan``; :func:`musicrestore.train.recipe.spec_from_params`), and ``--target``,
    checked before any work."""
    spec = spec_from_params(params, args.model)
    if args.target is not None:
        from musicrestore.data.taxonomy import parse_target

        parse_target(args.target)
    return spec


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    spec = settings(load_params(args.params), args)
    if args.check_params:
        return
    out = Path(args.out)
    work = Path(args.work) if args.work else out.parent / f".{out.name}_work"
    stage = f"train-{args.model}" if args.target is None else f"train-{args.model}@{args.target}"
    start = time.perf_counter()
    with stage_outputs(stage, spec.params(), out) as (run, tmp):
        metrics = train_model(
            spec, args.train, tmp, work, run, progress=not args.no_progress, target=args.target
        )
        run.log_metrics({**metrics, "train_s": time.perf_counter() - start})
        tags = {"model": args.model, "preset": spec.preset}
        run.set_tags(tags if args.target is None else {**tags, "target": args.target})
        for name in ("metrics.json", "config.json", "loss.csv"):
            run.log_artifact(tmp / name)
    si_sdr = metrics.get("val_si_sdr")
    if is_rank_zero():
        print(
            f"{stage} ({spec.preset}): step {metrics['step']} -> {args.out} in "
            f"{time.perf_counter() - start:.0f} s; val SI-SDR "
            + (
                "n/a"
                if si_sdr is None
                else f"{si_sdr:.2f} dB (input {metrics['val_si_sdr_degraded']:.2f})"
            )
        )


if __name__ == "__main__":
    main()
