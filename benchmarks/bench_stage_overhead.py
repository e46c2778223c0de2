"""Per-stage work vs overhead of one ``dvc repro``, read from the MLflow store.

    python benchmarks/bench_stage_overhead.py            # the latest group (dvc repro) in mlflow.db
    python benchmarks/bench_stage_overhead.py --group dvc-1234-1700000000

Every stage records the span of its work (its ``stage_run``: from after its imports to the
end of its outputs) as the MLflow run's start and end time. The *overhead* of a stage is the
gap between the end of the previous stage's work and the start of its own: DVC's
bookkeeping of the previous stage (hashing its outputs, writing dvc.lock), the new
process's start and its imports, and its params loading. Prints one row per stage in the
order they ran, and the median, mean and total of each column.

Run it after a ``dvc repro`` with tracking on (the default); it first flushes any record
still waiting in the spool (``python -m musicrestore.tracking flush``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", help="group id (default: the latest dvc-* group)")
    parser.add_argument("--uri", default=None, help="tracking URI (default: ./mlflow.db)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT / "src"))
    from musicrestore import tracking

    tracking.flush(block=True)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=args.uri or tracking.tracking_uri())
    exp = client.get_experiment_by_name(tracking.EXPERIMENT)
    if exp is None:
        print("error: no MLflow experiment yet; run `dvc repro` first", file=sys.stderr)
        return 1
    group = args.group
    if group is None:
        parents = client.search_runs(
            [exp.experiment_id],
            filter_string="tags.role = 'group'",
            order_by=["attributes.start_time DESC"],
            max_results=50,
        )
        dvc_groups = [r for r in parents if r.data.tags["group_id"].startswith("dvc-")]
        if not dvc_groups:
            print("error: no `dvc repro` group in the store", file=sys.stderr)
            return 1
        group = dvc_groups[0].data.tags["group_id"]
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.group_id = '{group}' and tags.role = 'stage'",
        max_results=5000,
    )
    runs.sort(key=lambda r: r.info.start_time)
    if not runs:
        print(f"error: no stage runs in group {group}", file=sys.stderr)
        return 1
    rows = []
    prev_end = None
    for run in runs:
        start, end = run.info.start_time / 1000, (run.info.end_time or run.info.start_time) / 1000
        gap = None if prev_end is None else start - prev_end
        rows.append((run.data.tags["stage"], end - start, gap))
        prev_end = end
    print(f"group {group}: {len(rows)} stages")
    print(f"{'stage':<28} {'work s':>8} {'overhead s':>11}")
    for name, work, gap in rows:
        print(f"{name:<28} {work:8.2f} {'-' if gap is None else f'{gap:.2f}':>11}")
    works = [w for _, w, _ in rows]
    gaps = [g for _, _, g in rows if g is not None]
    for label, fn in (("median", statistics.median), ("mean", statistics.fmean), ("total", sum)):
        print(f"{label:<28} {fn(works):8.2f} {fn(gaps) if gaps else float('nan'):11.2f}")
    span = runs[-1].info.end_time / 1000 - runs[0].info.start_time / 1000
    print(f"first stage start to last stage end: {span:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
