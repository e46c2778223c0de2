"""Projected wall time of the per-example stages at paper scale on 1, 8 and 64 Dask workers.

    python benchmarks/scale_projection.py [--repo .] [--n-test 1000] [--tasks 2000]

PROJECTIONS, not measurements. What is measured: each variant's restore cost per second of
audio (``reports/timing/*.json``, written by the last ``dvc repro``: compute seconds over
audio seconds, one worker thread), the build and scoring cost per example (given on the
command line, from the same run's MLflow stage durations; defaults are this machine's), and
Dask's own cost per task here (``--tasks`` no-op tasks on a 2-worker LocalCluster). What is
assumed: the work divides evenly over the workers (one thread each), each worker reads its
inputs from a shared file system fast enough not to matter, and the cluster is started once.

Paper scale (seed 004 §4): ``msr.n_test`` clips of 10 s per target group (7 groups), every
variant restoring and scoring every set it applies to; the builds of the training segments
are left out (they scale with ``msr.n_train``, printed separately per 1,000 examples).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

GROUPS = 7
CLIP_S = 10.0


def _noop(i: int) -> int:
    return i


def dask_overhead_s(tasks: int) -> float:
    """Seconds per task of submitting and gathering no-op tasks on a 2-worker LocalCluster."""
    from musicrestore import compute

    settings = {**compute.COMPUTE_DEFAULTS, "workers": 2}
    with compute.engine(settings, progress=False) as eng:
        eng.map(_noop, [{"i": 0}] * 10, "warm")
        start = time.perf_counter()
        eng.map(_noop, [{"i": i} for i in range(tasks)], "noop")
        return (time.perf_counter() - start) * eng.workers / tasks


def restore_rtf(repo: Path) -> dict[str, float]:
    """``{variant: compute s per audio s}`` of the T2 sets, from the timing files."""
    from musicrestore.report.readme import read_timing

    out = {}
    for name, t in read_timing(repo / "reports" / "timing").items():
        rtf = t.get("rtf_t2")
        if rtf is not None:
            out[name] = float(rtf)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".", type=Path)
    parser.add_argument("--n-test", type=int, default=1000, help="msr.n_test per group")
    parser.add_argument("--tasks", type=int, default=2000, help="no-op tasks to time Dask")
    # defaults: the full default run of 0486361 on this machine (MLflow stage durations x 2
    # workers / examples): build_msr@<group> ~10.5 s for 26 examples, separate 65.8 s and
    # evaluate@identity 23.6 s for the 62 test clips
    parser.add_argument("--build-s", type=float, default=0.8, help="CPU s per built example")
    parser.add_argument("--separate-s", type=float, default=2.1, help="CPU s per separated clip")
    parser.add_argument("--score-s", type=float, default=0.76, help="CPU s per scored clip")
    args = parser.parse_args()
    overhead = dask_overhead_s(args.tasks)
    rtf = restore_rtf(args.repo)
    clips = GROUPS * args.n_test
    work = {"build (test sets)": clips * args.build_s, "separate (once)": clips * args.separate_s}
    for name, r in sorted(rtf.items()):
        work[f"restore {name}"] = clips * CLIP_S * r
    work["evaluate (every variant)"] = clips * args.score_s * len(rtf)
    tasks = clips * (2 + len(rtf) * 2)  # build + separate + per variant restore and score
    print(f"Dask overhead here: {overhead * 1e3:.2f} ms per task (measured, 2 workers)")
    print(f"PROJECTION for {GROUPS} groups x {args.n_test} clips x {CLIP_S:g} s, "
          f"{len(rtf)} T2 variants, {tasks} tasks:\n")  # fmt: skip
    print("| work | CPU hours | 1 worker (h) | 8 workers (h) | 64 workers (h) |")
    print("|---|---|---|---|---|")
    total = 0.0
    for what, seconds in work.items():
        total += seconds
        cells = [f"{seconds / 3600 / w:.2f}" for w in (1, 8, 64)]
        print(f"| {what} | {seconds / 3600:.2f} | " + " | ".join(cells) + " |")
    cells = [f"{(total + tasks * overhead) / 3600 / w:.2f}" for w in (1, 8, 64)]
    print(f"| all, with Dask's per-task cost | {total / 3600:.2f} | " + " | ".join(cells) + " |")
    print(f"\nTraining-segment builds: {1000 * args.build_s / 3600:.2f} CPU h per 1,000 examples.")
    print(json.dumps({"overhead_ms": round(overhead * 1e3, 3), "rtf_t2": rtf}, indent=1))


if __name__ == "__main__":
    main()
