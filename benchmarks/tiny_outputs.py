"""Run the tiny profile's ``dvc repro`` in a fresh copy of the repository and print the hash
of every cached output, as JSON ({output path: md5}).

Used to prove that a refactor changed no output: run it before and after, compare the two
files (``diff``). Timing files are left out (they are wall-clock, uncached metrics).

    python benchmarks/tiny_outputs.py > before.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_pipeline import BIN, copy_repo, run_dvc  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="tiny-outputs-") as tmp:
        repo = copy_repo(Path(tmp))
        env = dict(os.environ)
        env.update(
            PATH=f"{BIN}{os.pathsep}{env['PATH']}",
            MUSICRESTORE_TRACKING="0",
            HF_HUB_OFFLINE="1",
            DVC_NO_ANALYTICS="1",
        )
        run_dvc(repo, "repro", env=env)
        lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
        outs = {
            o["path"]: o.get("md5")
            for stage in lock.values()
            for o in stage.get("outs", [])
            if "timing" not in o["path"]
        }
    print(json.dumps(dict(sorted(outs.items())), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
