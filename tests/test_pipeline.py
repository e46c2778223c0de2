"""Smoke test of the whole pipeline: ``dvc repro`` on the tiny profile in a copy of the repo.

The copy holds what git would commit (tracked and untracked-but-not-ignored files), so the
test sees exactly what a clean clone sees. It checks that every stage ran, that the outputs
follow the dataset contract, that MLflow grouped the stage runs, and that a second
``dvc repro`` has nothing to do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            deep_merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def copy_repo(dest: Path) -> Path:
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = ROOT / rel
        # dvc.lock records the default profile's run; the tiny profile starts without it
        if (
            src.is_file()
            and rel != "dvc.lock"
            and not rel.startswith(("data/", "models/", "reports/"))
        ):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    tiny = yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text())
    (dest / "params.yaml").write_text(yaml.safe_dump(deep_merge(base, tiny), sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def run_dvc(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, (
        f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env['PATH']}",
        MUSICRESTORE_TRACKING="1",
        MLFLOW_TRACKING_URI=f"sqlite:///{repo}/mlflow.db",
        HF_HUB_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
    )
    env.pop("MUSICRESTORE_RUN_GROUP", None)
    out = run_dvc(repo, "repro", env=env).stdout
    return repo, env, out


def test_every_stage_ran(repro: tuple[Path, dict[str, str], str]) -> None:
    repo, env, _ = repro
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    stages = set(lock["stages"])
    declared = run_dvc(repo, "stage", "list", "--names-only", env=env).stdout.split()
    assert stages == set(declared)


def test_dataset_outputs(repro: tuple[Path, dict[str, str], str]) -> None:
    repo, _, _ = repro
    summary = json.loads((repo / "reports" / "dataset.json").read_text())
    assert summary["songs"] >= 3
    assert len(list((repo / "data" / "splits").glob("*_test.txt"))) >= 2


def test_mlflow_groups_one_repro(repro: tuple[Path, dict[str, str], str]) -> None:
    from mlflow.tracking import MlflowClient

    repo, _, _ = repro
    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    exp = client.get_experiment_by_name("musicrestore")
    runs = client.search_runs([exp.experiment_id])
    groups = {r.data.tags["group_id"] for r in runs}
    assert len(groups) == 1  # one dvc repro, one group
    stage_runs = [r for r in runs if r.data.tags.get("role") == "stage"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {r.data.tags["stage"] for r in stage_runs} >= {"fetch_rawstems", "index_rawstems"}
    assert len(stage_runs) >= len(lock["stages"])


def test_second_repro_is_a_noop(repro: tuple[Path, dict[str, str], str]) -> None:
    repo, env, _ = repro
    out = run_dvc(repo, "repro", env=env).stdout
    assert "didn't change, skipping" in out or "up to date" in out
    assert "Running stage" not in out
    status = run_dvc(repo, "status", "--json", env=env).stdout
    assert json.loads(status) == {}
