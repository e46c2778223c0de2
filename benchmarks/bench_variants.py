"""Speed and memory of every registered restoration variant on this machine.

    python benchmarks/bench_variants.py                      # 30 s of 44.1 kHz stereo
    python benchmarks/bench_variants.py --variants dsp_direct preclean --duration-s 10
    python benchmarks/bench_variants.py --separator htdemucs --separator-repo models/separator

Each variant runs in a fresh subprocess (one thread for torch and for the BLAS libraries), so
its peak resident memory (``ru_maxrss``, which sees C-extension allocations that tracemalloc
misses) is its own; the table shows the peak and the increase over the process after imports
and test-signal synthesis. The real-time factor is compute time / audio time of one
:func:`musicrestore.variants.restore.restore_array` call, after the separator is built (its loading
time is shown apart). The default separator is ``tiny`` (a random-init small HTDemucs from
:func:`musicrestore.separation.tiny_separator`): it runs offline, but its speed is not the
full-size model's: ``--separator full-random`` times a paper-size HTDemucs with random
weights (same cost as the pretrained one, offline), or pass a real model name.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SR = 44100
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def test_signal(duration_s: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Stereo harmonic notes over a bass line, with hiss: ``(2, T)`` float32, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sr)) / sr
    beat = 0.5  # s
    x = np.zeros_like(t)
    for k, start in enumerate(np.arange(0.0, duration_s, beat)):
        on = (t >= start) & (t < start + 2 * beat)
        tt = t[on] - start
        f0 = (220.0, 262.0, 330.0, 294.0)[k % 4]
        x[on] += (
            0.15 * sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, 6)) * np.exp(-3 * tt)
        )
    x += 0.1 * np.sin(2 * np.pi * 55.0 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * t / (4 * beat)))
    x += 0.003 * rng.standard_normal(t.size)
    return np.stack([x, np.roll(x, 20)]).astype(np.float32)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _full_size_random_separator() -> Any:
    """A paper-size HTDemucs with random weights: the speed of the real one, offline."""
    import torch
    from demucs.htdemucs import HTDemucs

    from musicrestore.separation import SOURCES, DemucsSeparator

    torch.manual_seed(0)  # this worker process only
    return DemucsSeparator(HTDemucs(sources=list(SOURCES)))


def run_one(
    name: str,
    duration_s: float,
    separator: str,
    separator_repo: str | None,
    models_dir: str = "models",
    target: str = "Voc",
) -> dict[str, Any]:
    """Measure one variant in this process (called in the worker subprocess)."""
    import torch

    torch.set_num_threads(1)
    from musicrestore.variants import build_context, get_variant
    from musicrestore.variants.restore import make_separator_factory, restore_array, warm_up

    variant = get_variant(name)
    wave = test_signal(duration_s)
    if separator == "tiny":
        from musicrestore.separation import tiny_separator

        factory = tiny_separator
    elif separator == "full-random":
        factory = _full_size_random_separator
    else:
        factory = make_separator_factory(separator, repo=separator_repo)
    ctx = build_context(
        variant,
        separator_factory=factory,
        models_dir=models_dir,
        target=target if variant.per_target else None,
    )
    base_mb = _maxrss_mb()
    setup_s = warm_up(variant, ctx, SR)
    start = time.perf_counter()
    out = restore_array(variant, wave, SR, ctx)
    compute_s = time.perf_counter() - start
    assert out.shape == wave.shape and np.isfinite(out).all()
    return {
        "variant": name,
        "audio_s": duration_s,
        "compute_s": compute_s,
        "rtf": compute_s / duration_s,
        "setup_s": setup_s,
        "peak_mb": _maxrss_mb(),
        "delta_mb": _maxrss_mb() - base_mb,
    }


def measure(
    name: str,
    duration_s: float,
    separator: str,
    separator_repo: str | None,
    models_dir: str = "models",
    target: str = "Voc",
) -> dict[str, Any]:
    """Run :func:`run_one` in a fresh single-threaded subprocess; returns its JSON result."""
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, "1")}
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--duration-s",
        str(duration_s),
        "--separator",
        separator,
        "--models-dir",
        models_dir,
        "--target",
        target,
    ]
    if separator_repo:
        cmd += ["--separator-repo", separator_repo]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"variant": name, "error": last}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'variant':<12} {'RTF':>7} {'compute_s':>9} {'setup_s':>7} {'peak_MB':>8} {'+MB':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['variant']:<12} error: {r['error']}")
            continue
        lines.append(
            f"{r['variant']:<12} {r['rtf']:>7.3f} {r['compute_s']:>9.2f} {r['setup_s']:>7.2f} "
            f"{r['peak_mb']:>8.0f} {r['delta_mb']:>7.0f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--variants", nargs="*", help="default: every registered variant")
    parser.add_argument("--duration-s", type=float, default=30.0, help="test signal length")
    parser.add_argument(
        "--separator", default="tiny", help="'tiny', 'full-random' or a separation model name"
    )
    parser.add_argument("--separator-repo", help="local separator repository folder")
    parser.add_argument(
        "--models-dir", default="models", help="checkpoints of the learned variants"
    )
    parser.add_argument("--target", default="Voc", help="group of a per-target model (uformer)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = run_one(
            args.worker,
            args.duration_s,
            args.separator,
            args.separator_repo,
            args.models_dir,
            args.target,
        )
        print(json.dumps(result))
        return 0
    from musicrestore.variants import VARIANTS

    names = args.variants or list(VARIANTS)
    rows = []
    for name in names:
        rows.append(
            measure(
                name,
                args.duration_s,
                args.separator,
                args.separator_repo,
                args.models_dir,
                args.target,
            )
        )
        print(format_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(
        f"{args.duration_s:g} s of {SR} Hz stereo, 1 thread, separator={args.separator}, "
        f"{os.cpu_count()} CPUs"
    )
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
