"""Throughput of the degradation engine (musicrestore.degrade).

Prints, per core (torch on one thread, one process):

- the cost of each effect on 10 s of 44.1 kHz stereo (ms of CPU),
- the MSR example chain (seed 004 §4.2) on ``--seconds`` of 44.1 kHz stereo, as 10-s examples,
- the MusicGen-like chain (seed 000) on ``--seconds`` of 32 kHz mono, as 10-s clips,

as seconds of audio per CPU second (× real time). With ``--rawstems`` and ``--splits`` it also
builds every target's MSR set and the MusicGen-like set into a temporary folder and prints
the wall-clock build times and how often each effect fired.

    python benchmarks/bench_degrade.py --seconds 60
    python benchmarks/bench_degrade.py --rawstems data/rawstems --splits data/splits --workers 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict

import numpy as np


def _signals(
    seconds: float, sr: int, channels: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A gated harmonic 'instrument' and a noisy background, ``(channels, T)`` each."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    gate = (np.sin(2 * np.pi * 0.5 * t) > -0.3).astype(float)
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 6)) * gate * 0.2
    target = np.stack([tone] * channels)
    background = 0.1 * rng.standard_normal((channels, t.size))
    return target.astype(np.float32), background.astype(np.float32)


def _cpu(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.process_time()
    out = fn(*args, **kwargs)
    return time.process_time() - start, out


def bench_effects(sr: int = 44100) -> None:
    from musicrestore.degrade.effects import EFFECTS, apply_effect

    wave, _ = _signals(10.0, sr, 2)
    rng = np.random.default_rng(0)
    print(f"{'effect':<16} {'ms / 10 s stereo 44.1k (CPU)':>30}")
    for name, effect in EFFECTS.items():
        params = effect.sample(rng, sr)
        apply_effect(name, wave[:, :4096], sr, params)  # warm up (imports, kernels)
        cpu, _ = _cpu(apply_effect, name, wave, sr, params)
        print(f"{name:<16} {cpu * 1000:>30.0f}")


def bench_chains(seconds: float, seed: int = 0) -> None:
    from musicrestore.degrade.chains import msr_example, musicgen_like

    n = max(1, int(round(seconds / 10.0)))
    target, background = _signals(10.0, 44100, 2, seed)
    msr_example(target[:, :4096], background[:, :4096], 44100, np.random.default_rng(0))  # warm up
    cpu = wall = 0.0
    for i in range(n):
        w0 = time.perf_counter()
        c, _ = _cpu(msr_example, target, background, 44100, np.random.default_rng(seed + i))
        cpu, wall = cpu + c, wall + time.perf_counter() - w0
    audio_s = 10.0 * n
    print(f"MSR chain, {audio_s:.0f} s stereo 44.1 kHz ({n} x 10 s): {cpu:.2f} s CPU, {wall:.2f} s wall,"
          f" {audio_s / cpu:.1f}x real time per core")  # fmt: skip

    mono, _ = _signals(10.0, 32000, 1, seed)
    musicgen_like(mono[:, :4096], np.random.default_rng(0))
    cpu = wall = 0.0
    for i in range(n):
        w0 = time.perf_counter()
        c, _ = _cpu(musicgen_like, mono, np.random.default_rng(seed + i))
        cpu, wall = cpu + c, wall + time.perf_counter() - w0
    print(f"MusicGen-like chain, {audio_s:.0f} s mono 32 kHz ({n} x 10 s): {cpu:.2f} s CPU, {wall:.2f} s wall,"
          f" {audio_s / cpu:.1f}x real time per core")  # fmt: skip


def bench_build(args: argparse.Namespace) -> None:
    from musicrestore.compute import engine
    from musicrestore.data.taxonomy import TARGETS, read_splits
    from musicrestore.degrade.build import build_msr, build_musicgen_like

    splits = read_splits(args.splits)
    targets = args.targets or [t for t in TARGETS if t in splits]
    rates: dict[str, list[float]] = defaultdict(list)
    total = time.perf_counter()
    settings = {"scheduler": None, "workers": args.workers, "connect_timeout_s": 10.0}
    with tempfile.TemporaryDirectory() as tmp, engine(settings) as eng:
        for target in targets:
            stats = build_msr(args.rawstems, args.splits, target, os.path.join(tmp, target),
                              n_test=args.n_test, n_train=args.n_train, engine=eng)  # fmt: skip
            for split in ("test", "train"):
                for key, rate in stats[split]["effect_rates"].items():
                    rates[key].append(rate * stats[split]["examples"])
                rates["_examples"].append(stats[split]["examples"])
            print(f"build_msr {target:<7} {stats['test']['examples']:>4} test + {stats['train']['examples']:>4}"
                  f" train x 10 s: {stats['build_time_s']:6.1f} s")  # fmt: skip
        msr_s = time.perf_counter() - total
        start = time.perf_counter()
        stats = build_musicgen_like(args.rawstems, args.splits, os.path.join(tmp, "musicgen_like"),
                                    n_test=args.mg_test, n_train=args.mg_train, engine=eng)  # fmt: skip
        mg_s = time.perf_counter() - start
    print(f"build_musicgen_like {stats['test']['examples']} test x 10 s + {stats['train']['examples']} train"
          f" x 3-4 s: {mg_s:.1f} s")  # fmt: skip
    print(f"all MSR targets: {msr_s:.1f} s; everything: {time.perf_counter() - total:.1f} s"
          f" ({args.workers or os.cpu_count()} workers)")  # fmt: skip
    n = sum(rates.pop("_examples"))
    print(f"\nMSR effect firing over {n} examples (fraction):")
    for key in sorted(rates):
        print(f"  {key:<24} {sum(rates[key]) / n:.3f}")
    print("MusicGen-like effect firing (test + train):")
    n_mg = stats["test"]["examples"] + stats["train"]["examples"]
    keys = sorted(set(stats["test"]["effect_rates"]) | set(stats["train"]["effect_rates"]))
    for key in keys:
        fired = sum(
            stats[s]["effect_rates"].get(key, 0.0) * stats[s]["examples"] for s in ("test", "train")
        )
        print(f"  {key:<24} {fired / n_mg:.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per chain benchmark")
    parser.add_argument("--rawstems", help="RawStems-layout folder: also time the dataset builds")
    parser.add_argument("--splits", help="splits folder (with --rawstems)")
    parser.add_argument(
        "--targets", nargs="*", help="MSR targets to build (default: all in the splits)"
    )
    parser.add_argument("--n-test", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=20)
    parser.add_argument("--mg-test", type=int, default=20)
    parser.add_argument("--mg-train", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-effects", action="store_true", help="skip the per-effect table")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # per-core numbers, as in the builders' workers
    os.environ.setdefault("MUSICRESTORE_TRACKING", "0")
    if not args.no_effects:
        bench_effects()
    bench_chains(args.seconds)
    if args.rawstems:
        if not args.splits:
            parser.error("--rawstems needs --splits")
        bench_build(args)


if __name__ == "__main__":
    main()
