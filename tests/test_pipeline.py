"""Smoke test of the whole pipeline: ``dvc repro`` on the tiny profile in a copy of the repo.

The copy holds what git would commit (tracked and untracked-but-not-ignored files), so the
test sees exactly what a clean clone sees. It checks that every stage ran (every registered
variant included), that the outputs follow the dataset contract, that ``metrics.json`` is
the short headline, that MLflow grouped the stage runs, that a second ``dvc repro`` has
nothing to do, that forced re-runs reproduce restore, evaluate and report byte for byte,
and that changing one params block marks exactly the stages that read it.
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
        MUSICRESTORE_TRACKING_FLUSH="manual",  # sent below by an explicit flush
        MLFLOW_TRACKING_URI=f"sqlite:///{repo}/mlflow.db",
        HF_HUB_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
    )
    env.pop("MUSICRESTORE_RUN_GROUP", None)
    out = run_dvc(repo, "repro", env=env).stdout
    flush = subprocess.run(
        [sys.executable, "-m", "musicrestore.tracking", "flush"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert flush.returncode == 0, flush.stdout + flush.stderr
    return repo, env, out


def test_every_stage_ran(repro: tuple[Path, dict[str, str], str]) -> None:
    from musicrestore.variants import VARIANTS

    repo, env, _ = repro
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    stages = set(lock["stages"])
    declared = run_dvc(repo, "stage", "list", "--names-only", env=env).stdout.split()
    assert stages == set(declared)
    for name in VARIANTS:
        assert {f"restore@{name}", f"evaluate@{name}"} <= stages


def test_restored_outputs_follow_the_manifests(repro: tuple[Path, dict[str, str], str]) -> None:
    from musicrestore.audio import audio_info
    from musicrestore.dataset import read_manifest
    from musicrestore.variants import VARIANTS

    repo, _, _ = repro
    sets = {
        "musicgen_like": ("T1", repo / "data/musicgen_like/test"),
        "musicgen": ("T3", repo / "data/musicgen"),
        "msr_Voc": ("T2", repo / "data/msr/test/Voc"),
    }
    for name, variant in VARIANTS.items():
        for testset, (task, folder) in sets.items():
            out = repo / "data/restored" / name / testset
            if task not in variant.tasks:
                assert not out.exists()
                continue
            examples = read_manifest(folder)
            assert examples
            decisions = json.loads((out / "decisions.json").read_text())
            assert set(decisions) == {ex.id for ex in examples}
            for ex in examples:
                sr, _, frames = audio_info(out / f"{ex.id}.wav")
                assert sr == ex.sr
                assert abs(frames / sr - ex.duration_s) < 1e-3
            assert not (out / "timing.json").exists()  # wall-clock lives outside the outputs
        timing = json.loads((repo / "reports/timing" / f"{name}.json").read_text())
        assert timing["rtf"] >= 0


def test_metrics_json_is_a_short_headline(repro: tuple[Path, dict[str, str], str]) -> None:
    from musicrestore.variants import VARIANTS

    repo, _, _ = repro
    doc = json.loads((repo / "reports" / "metrics.json").read_text())
    assert set(doc) == set(VARIANTS)

    def leaves(node: object) -> list[object]:
        if isinstance(node, dict):
            return [x for v in node.values() for x in leaves(v)]
        return [node]

    values = leaves(doc)
    assert all(isinstance(v, int | float) or v is None for v in values)  # no prose
    assert len(values) <= 10 * len(VARIANTS)
    for name, variant in VARIANTS.items():
        for task in ("T1", "T2"):
            if task in variant.tasks:
                assert isinstance(doc[name][task.lower()]["si_sdr"], float)
            else:
                assert task.lower() not in doc[name]


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


def test_forced_reruns_reproduce_every_output_byte_for_byte(
    repro: tuple[Path, dict[str, str], str],
) -> None:
    """restore, evaluate and report run again on unchanged inputs: DVC finds every output
    hash equal to the one in dvc.lock (wall-clock timings live outside the outputs)."""
    repo, env, _ = repro
    before = (repo / "dvc.lock").read_text()
    for stage in ("restore@demucs_snmf", "evaluate@demucs_snmf", "report"):
        run_dvc(repo, "repro", "--force", "--single-item", stage, env=env)
    lock_before = yaml.safe_load(before)["stages"]
    lock_after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]

    def outs(lock: dict, stage: str) -> dict[str, str]:
        return {o["path"]: o.get("md5") for o in lock[stage]["outs"] if "timing" not in o["path"]}

    for stage in ("restore@demucs_snmf", "evaluate@demucs_snmf", "report"):
        assert outs(lock_after, stage) == outs(lock_before, stage), stage
    assert json.loads(run_dvc(repo, "status", "--json", env=env).stdout) == {}


def test_changing_one_params_block_marks_exactly_its_readers(
    repro: tuple[Path, dict[str, str], str],
) -> None:
    from musicrestore.variants import VARIANTS

    repo, env, _ = repro
    params = repo / "params.yaml"
    original = params.read_text()
    doc = yaml.safe_load(original)
    doc["variants"]["dsp_direct"]["gain_db"] = 0.0
    params.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        changed = set(json.loads(run_dvc(repo, "status", "--json", env=env).stdout))
    finally:
        params.write_text(original)
    readers = {f"restore@{n}" for n, v in VARIANTS.items() if "dsp_direct" in v.reads}
    assert readers == {"restore@dsp_direct", "restore@demucs_dsp", "restore@adaptive"}
    assert changed == readers
