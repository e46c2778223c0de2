from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from musicrestore import tracking


def test_flatten() -> None:
    assert tracking.flatten({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {
        "a.b": 1,
        "a.c": "[1, 2]",
        "d": "x",
    }


def test_disabled_is_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "0")
    with tracking.stage_run("x", {"a": 1}) as run:
        assert not run.active
        run.log_metrics({"m": 1.0})


def test_stage_runs_are_grouped_and_logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "1")
    monkeypatch.setenv("MUSICRESTORE_RUN_GROUP", "group-under-test")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    artifact = tmp_path / "result.json"
    artifact.write_text("{}")
    with tracking.stage_run("stage_a", {"seed": 1, "data": {"source": "embedded"}}) as run:
        assert run.active
        run.log_metrics({"score": 2.5, "nested": {"x": 1}, "skip": "text"})
        run.log_artifact(artifact)
    with tracking.stage_run("stage_b", {"seed": 1}) as run:
        run.log_metrics({"score": 3.0})
    assert (tmp_path / "mlflow.db").exists()  # the default local store

    client = MlflowClient(tracking_uri="sqlite:///mlflow.db")
    exp = client.get_experiment_by_name(tracking.EXPERIMENT)
    runs = client.search_runs(
        [exp.experiment_id], filter_string="tags.group_id = 'group-under-test'"
    )
    parents = [r for r in runs if r.data.tags.get("role") == "group"]
    stages = {r.data.tags["stage"]: r for r in runs if r.data.tags.get("role") == "stage"}
    assert len(parents) == 1 and set(stages) == {"stage_a", "stage_b"}
    a = stages["stage_a"]
    assert a.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    assert a.data.params == {"seed": "1", "data.source": "embedded"}
    assert a.data.metrics == {"score": 2.5, "nested.x": 1.0}
    assert a.info.status == "FINISHED"
    assert [f.path for f in client.list_artifacts(a.info.run_id)] == ["result.json"]
    mlflow.set_tracking_uri(None)


def test_failed_stage_is_marked_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "1")
    monkeypatch.setenv("MUSICRESTORE_RUN_GROUP", "g-fail")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/other.db")
    with pytest.raises(RuntimeError), tracking.stage_run("boom"):
        raise RuntimeError("stage failed")
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/other.db")
    exp = client.get_experiment_by_name(tracking.EXPERIMENT)
    (run,) = client.search_runs([exp.experiment_id], filter_string="tags.stage = 'boom'")
    assert run.info.status == "FAILED"


def test_group_id_is_shared_within_one_dvc_invocation(tmp_path: Path) -> None:
    """Two stage processes launched by one 'dvc' process share a group; another launch differs."""
    fake_dvc = tmp_path / "dvc"
    probe = f"{sys.executable} -c 'from musicrestore.tracking import group_id; print(group_id())'"
    fake_dvc.write_text(f"#!/bin/sh\n{probe}\n{probe}\n")
    fake_dvc.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "MUSICRESTORE_RUN_GROUP"}
    first = subprocess.run(
        [str(fake_dvc)], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    second = subprocess.run(
        [str(fake_dvc)], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert len(first) == 2 and first[0] == first[1] and first[0].startswith("dvc-")
    assert second[0] != first[0]
