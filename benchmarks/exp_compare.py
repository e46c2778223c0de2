"""Two DVC experiments on the tiny profile, compared with ``dvc exp show``.

    python benchmarks/exp_compare.py                      # the two default experiments
    python benchmarks/exp_compare.py --exp gain0 variants.dsp_direct.gain_db=0 \\
        --exp wide models.unet_mask.presets.small.arch.base_channels=8
    python benchmarks/exp_compare.py --queue 2            # through `dvc queue start -j 2`

In a temporary copy of the repository (what git would commit, with ``profiles/tiny.yaml``
merged into ``params.yaml``: the copy that ``tests/test_pipeline.py`` makes), it runs the
baseline ``dvc repro`` and commits it, then ``dvc exp run --temp -n NAME -S KEY=VALUE ...``
for each experiment (or queues them and runs the queue), and prints
``dvc exp show --md --only-changed`` restricted to the headline metrics
(``reports/metrics.json``) and the params that differ. The defaults compare the DSP
variant's make-up gain (``variants.dsp_direct.gain_db=0`` against the profile's value) and
the U-Net's width (``base_channels`` 8 against the tiny profile's 4): DVC re-runs only the
stages that read each changed params block.

The whole run takes about 6-8 minutes on 2 cores (the baseline is most of it). MLflow
tracking is off unless ``--track`` (then every stage logs to ``mlflow.db`` in the copy).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_EXPS = [
    ["gain0", "variants.dsp_direct.gain_db=0"],
    ["unet8", "models.unet_mask.presets.small.arch.base_channels=8"],
]


def dvc(repo: Path, *args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"dvc {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exp",
        nargs="+",
        action="append",
        metavar=("NAME", "KEY=VALUE"),
        help="an experiment: its name, then its params changes (repeat for each experiment)",
    )
    parser.add_argument(
        "--queue", type=int, metavar="J", help="queue the experiments; run J at a time"
    )
    parser.add_argument("--track", action="store_true", help="log to MLflow (mlflow.db)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    exps = args.exp or DEFAULT_EXPS
    for exp in exps:
        if len(exp) < 2 or not all("=" in s for s in exp[1:]):
            parser.error(f"--exp {' '.join(exp)}: expected NAME KEY=VALUE [KEY=VALUE ...]")

    sys.path.insert(0, str(ROOT))
    from tests.test_pipeline import copy_repo

    base = Path(tempfile.mkdtemp(prefix="musicrestore-exp-"))
    (base / "repo").mkdir()
    repo = copy_repo(base / "repo")
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env['PATH']}",
        MUSICRESTORE_TRACKING="1" if args.track else "0",
        MLFLOW_TRACKING_URI=f"sqlite:///{repo}/mlflow.db",
        HF_HUB_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
    )
    env.pop("MUSICRESTORE_RUN_GROUP", None)
    git = ["git", "-c", "user.name=exp", "-c", "user.email=exp@localhost"]
    try:
        t0 = time.monotonic()
        dvc(repo, "repro", env=env)
        subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-qm", "baseline (tiny profile)"], cwd=repo, check=True)
        print(f"baseline dvc repro: {time.monotonic() - t0:.0f} s", flush=True)
        for name, *sets in exps:
            flags = [f for s in sets for f in ("-S", s)]
            t1 = time.monotonic()
            if args.queue:
                dvc(repo, "exp", "run", "--queue", "-n", name, *flags, env=env)
            else:
                out = dvc(repo, "exp", "run", "--temp", "-n", name, *flags, env=env)
                ran = len(re.findall(r"Running stage", out))
                print(f"{name}: {ran} stage(s) re-ran in {time.monotonic() - t1:.0f} s", flush=True)
        if args.queue:
            t1 = time.monotonic()
            dvc(repo, "queue", "start", "-j", str(args.queue), env=env)
            while re.search(r"\b(Queued|Running)\b", dvc(repo, "queue", "status", env=env)):
                time.sleep(5)
            print(f"queue of {len(exps)}: {time.monotonic() - t1:.0f} s", flush=True)
            status = dvc(repo, "queue", "status", env=env)
            if "Failed" in status:
                print(status)
        # reports/metrics.json's keys are VARIANT.tN.METRIC; params columns are their keys
        changed = "|".join(re.escape(s.split("=", 1)[0]) for _, *sets in exps for s in sets)
        # --only-changed drops the columns equal in every row; --drop the rest but these
        wanted = rf"Experiment$|Created$|\w+\.t[123]\.|({changed})$"
        table = dvc(
            repo, "exp", "show", "--md", "--no-pager", "--only-changed", "--hide-workspace",
            "--drop", f"^(?!{wanted})", "--keep", "^Experiment$",
            env=env,
        )  # fmt: skip
        print(table)
    finally:
        if args.keep:
            print(f"kept {repo}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
