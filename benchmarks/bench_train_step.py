"""Cost of one training step of every learned model, per preset, and the projected wall time.

    python benchmarks/bench_train_step.py                       # small + paper, every model
    python benchmarks/bench_train_step.py --models uformer --presets paper --steps 3
    python benchmarks/bench_train_step.py --gpu-tflops 250      # projection assumption

For each model (``unet_mask``, ``wavenet``, ``uformer``) and preset of ``params.yaml``, the
network is built from the preset's ``arch`` and timed on a synthetic batch of the preset's
crop length: forward, loss (the preset's), backward and an AdamW step, after one warm-up
step, in float32 on this CPU. The U-Former's second stage (seed 004 §4.1) is timed too: the
generator step with the LSGAN and feature-matching losses, plus the discriminator's step,
at the ``gan.batch`` size. The table gives:

- parameters, and the measured seconds per optimizer step on the CPU. The ``paper``
  batches are measured at ``--max-batch`` examples (memory: a paper U-Former batch of 16
  ten-second stereo crops needs far more than this machine's RAM) and scaled linearly to
  the preset's effective batch (``batch × accumulate``), which is how a CPU's time grows
  with batch once it is large enough to keep every core busy;
- the FLOPs of one step (``torch.utils.flop_counter``, forward + backward, at the full
  effective batch) and the projected wall time of the preset's step count: on this CPU,
  and on ``N`` GPUs at ``--gpu-tflops`` sustained (an **assumption**, default 200 TFLOP/s:
  about 20 % of an H100/H200's dense bf16 peak, typical for convolutional audio models;
  no GPU was measured unless you run it on one with ``--device cuda``), with perfect DDP
  scaling (an upper bound on the speed-up).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _batch(spec: Any, batch: int, device: str) -> tuple[Any, Any]:
    import torch

    length = int(round(spec.data.crop_s * spec.data.sr))
    g = torch.Generator().manual_seed(0)
    x = (0.1 * torch.randn(batch, spec.data.channels, length, generator=g)).to(device)
    return x, (0.9 * x).contiguous()


def time_steps(spec: Any, batch: int, steps: int, device: str, gan: bool) -> tuple[float, float]:
    """``(seconds per step, FLOPs per step)`` at ``batch`` examples."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from musicrestore.train.losses import (
        LOSSES,
        feature_matching,
        lsgan_discriminator,
        lsgan_generator,
    )
    from musicrestore.train.recipe import build_net

    net = build_net(spec).to(device).train()
    params = list(net.parameters())
    disc = None
    if gan:
        from musicrestore.models.discriminator import MultiScaleDiscriminator

        disc = MultiScaleDiscriminator(scales=spec.gan.scales, width=spec.gan.width).to(device)
        params_d = list(disc.parameters())
        opt_d = torch.optim.Adam(params_d, lr=spec.gan.lr)
    opt = torch.optim.AdamW(params, lr=spec.train.lr)
    loss_fn = LOSSES[spec.loss]
    x, y = _batch(spec, batch, device)

    def step() -> None:
        estimate = net(x)
        loss = loss_fn(estimate, y)
        if disc is not None:
            real_logits, real_feats = disc(y)
            fake_logits, fake_feats = disc(estimate)
            gen = lsgan_generator(fake_logits) * spec.gan.gen_weight
            loss = loss + gen + spec.gan.feat_weight * feature_matching(real_feats, fake_feats)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if disc is not None:
            real_logits, _ = disc(y)
            fake_logits, _ = disc(estimate.detach())
            d_loss = lsgan_discriminator(real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

    with FlopCounterMode(display=False) as counter:
        step()  # the warm-up step, counted
    flops = float(counter.get_total_flops())
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps, flops


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["unet_mask", "wavenet", "uformer"])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after 1 warm-up)")
    parser.add_argument("--max-batch", type=int, default=1, help="largest batch run (paper)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--gpu-tflops", type=float, default=200.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    import copy

    import torch
    import yaml

    from musicrestore.train.recipe import build_net, spec_from_params

    params = yaml.safe_load(args.params.read_text())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; "
        f"GPU projection at {args.gpu_tflops:g} TFLOP/s sustained per GPU (assumed)\n"
    )
    head = ["model", "preset", "stage", "params", "batch (run → eff.)", "s/step here",
            "GFLOP/step", "steps", "projected here"] + [f"projected {n} GPU" for n in args.gpus]  # fmt: skip
    print("| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|")
    for model in args.models:
        for preset in args.presets:
            p = copy.deepcopy(params)
            p["models"][model]["preset"] = preset
            spec = spec_from_params(p, model)
            n_params = sum(t.numel() for t in build_net(spec).parameters())
            phases = [("L1", spec.train.batch, spec.train.steps, False)]
            if spec.gan is not None:
                gan_steps = spec.train.steps - spec.gan.start
                phases = [
                    ("L1", spec.train.batch, spec.gan.start, False),
                    ("GAN", spec.gan.batch or spec.train.batch, gan_steps, True),
                ]
            for stage, batch, n_steps, gan in phases:
                eff = batch * spec.train.accumulate
                run = min(eff, args.max_batch) if preset != "small" else eff
                sec, flops = time_steps(spec, run, args.steps, args.device, gan)
                sec_eff, flops_eff = sec * eff / run, flops * eff / run
                here = sec_eff * n_steps
                gpu = [flops_eff * n_steps / (args.gpu_tflops * 1e12 * n) for n in args.gpus]
                row = [model, preset, stage, f"{n_params / 1e6:.2f} M", f"{run} → {eff}",
                       f"{sec_eff:.2f}", f"{flops_eff / 1e9:.0f}", str(n_steps), _hours(here),
                       *(_hours(g) for g in gpu)]  # fmt: skip
                print("| " + " | ".join(row) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
