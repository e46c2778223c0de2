"""Where DVC's time between stages goes: the lock rewrite, the no-op repro, the local cluster.

    python benchmarks/bench_dvc_overhead.py                 # lock figures (no data needed)
    python benchmarks/bench_dvc_overhead.py --noop 8        # + eight no-op `dvc repro` runs
    python benchmarks/bench_dvc_overhead.py --cluster       # + restore-identity with and without
                                                            #   the local Dask cluster
    python benchmarks/bench_dvc_overhead.py --root /path/to/a/run/workspace --noop 8 --cluster

After every stage DVC re-reads and rewrites the whole ``dvc.lock`` with ruamel's
round-trip YAML (``dvc.utils.serialize.modify_yaml``). This prints:
- the lock's size, and how many of its bytes are code and data dependencies, params and
  outputs;
- the time of that parse and that dump, measured with DVC's own functions;
- the time of one safe parse of ``params.yaml``, which DVC does once per stage that declares
  params.

``--noop N`` times N runs of ``dvc repro`` in a workspace whose ``dvc status`` is clean.
``--cluster`` runs ``stages/restore.py --variant identity`` into temporary folders three
times: with the ``compute`` block as it is (the local cluster starts only when it pays,
``cluster_start_s``), with the cluster started before any task (``cluster_start_s: 0``)
and with ``compute.workers: 1``. It prints the wall times and whether the outputs are
identical. Each figure is the median of ``--repeat`` runs. Take them with nothing else
running.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lock_figures(root: Path, repeat: int) -> None:
    from dvc.utils.serialize._yaml import _dump, parse_yaml, parse_yaml_for_update

    text = (root / "dvc.lock").read_text()
    stages = parse_yaml(text, "dvc.lock").get("stages", {})
    parts = {"deps": 0, "params": 0, "outs": 0}
    entries = 0
    for stage in stages.values():
        entries += len(stage.get("deps", []))
        for key in parts:
            if key in stage:
                buf = io.StringIO()
                _dump({key: stage[key]}, buf)
                parts[key] += len(buf.getvalue())
    print(
        f"dvc.lock: {len(text) / 1024:.0f} KB, {len(stages)} stages, {entries} dependency entries"
    )
    print("  bytes by part: " + ", ".join(f"{k} {v / 1024:.0f} KB" for k, v in parts.items()))
    parse, dump = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        data = parse_yaml_for_update(text, "dvc.lock")
        t1 = time.perf_counter()
        _dump(data, io.StringIO())
        dump.append(time.perf_counter() - t1)
        parse.append(t1 - t0)
    print(
        f"  rewrite after each stage: parse {statistics.median(parse):.2f} s + dump "
        f"{statistics.median(dump):.2f} s (median of {repeat})"
    )
    params = (root / "params.yaml").read_text()
    times = []
    for _ in range(repeat * 5):
        t0 = time.perf_counter()
        parse_yaml(params, "params.yaml")
        times.append(time.perf_counter() - t0)
    print(f"params.yaml: one safe parse {statistics.median(times) * 1000:.1f} ms")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - t0


def noop_figures(root: Path, runs: int) -> int:
    status = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "-q"], cwd=root, capture_output=True
    )
    if status.returncode != 0:
        print(f"error: `dvc status` in {root} is not clean; run `dvc repro` first", file=sys.stderr)
        return 1
    walls = [_run([sys.executable, "-m", "dvc", "repro"], root) for _ in range(runs)]
    print(
        f"no-op dvc repro: median {statistics.median(walls):.2f} s, "
        f"range {min(walls):.2f}-{max(walls):.2f} s over {runs} runs"
    )
    return 0


def cluster_figures(root: Path, repeat: int) -> int:
    if not (root / "data" / "msr" / "test").is_dir():
        print(f"error: {root} has no data/; run `dvc repro` first", file=sys.stderr)
        return 1
    env = {**os.environ, "MUSICRESTORE_TRACKING": "0"}
    params = (root / "params.yaml").read_text()
    one = params.replace("\n  workers: null", "\n  workers: 1", 1)
    eager = params.replace("\n  cluster_start_s: 6.0", "\n  cluster_start_s: 0", 1)
    if one == params or eager == params:
        print(
            "error: params.yaml has no `compute.workers: null` or `cluster_start_s: 6.0` to "
            "replace",
            file=sys.stderr,
        )
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "one.yaml").write_text(one)
        (Path(tmp) / "eager.yaml").write_text(eager)
        walls, outs = {}, {}
        for label, path in (
            ("default", root / "params.yaml"),
            ("cluster", Path(tmp) / "eager.yaml"),
            ("in-process", Path(tmp) / "one.yaml"),
        ):
            out = Path(tmp) / label
            cmd = [
                sys.executable, "stages/restore.py", "--params", str(path), "--variant", "identity",
                "--testset", "musicgen_like=data/musicgen_like/test", "--testset",
                "musicgen=data/musicgen", "--msr-test", "data/msr/test", "--out", str(out),
                "--timing", str(Path(tmp) / f"{label}.json"), "--no-progress",
            ]  # fmt: skip
            times = []
            for _ in range(repeat):
                shutil.rmtree(out, ignore_errors=True)
                times.append(_run(cmd, root, env))
            walls[label], outs[label] = statistics.median(times), out
        same = all(
            subprocess.run(["diff", "-rq", str(outs["default"]), str(outs[k])]).returncode == 0
            for k in ("cluster", "in-process")
        )
        print(
            f"restore-identity (median of {repeat}): {walls['default']:.2f} s as configured, "
            f"{walls['cluster']:.2f} s with the cluster started at once, "
            f"{walls['in-process']:.2f} s with compute.workers: 1; "
            f"outputs {'identical' if same else 'DIFFER'}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the workspace to measure")
    parser.add_argument("--noop", type=int, default=0, help="no-op `dvc repro` runs to time")
    parser.add_argument("--cluster", action="store_true", help="time restore-identity both ways")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    lock_figures(args.root, args.repeat)
    rc = 0
    if args.noop:
        rc |= noop_figures(args.root, args.noop)
    if args.cluster:
        rc |= cluster_figures(args.root, args.repeat)
    return rc


if __name__ == "__main__":
    sys.exit(main())
