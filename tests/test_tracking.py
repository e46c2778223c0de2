from __future__ import annotations

import os
import subprocess
import sys
import time
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
    monkeypatch.setenv("MUSICRESTORE_TRACKING_FLUSH", "sync")
    monkeypatch.delenv("MUSICRESTORE_TRACKING_SPOOL", raising=False)
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
    assert tracking.pending() == []  # the spool is drained once MLflow has the records
    mlflow.set_tracking_uri(None)


def test_failed_stage_is_marked_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "1")
    monkeypatch.setenv("MUSICRESTORE_TRACKING_FLUSH", "sync")
    monkeypatch.delenv("MUSICRESTORE_TRACKING_SPOOL", raising=False)
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


def _stage_runs(db: Path, group: str) -> dict[str, object]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.get_experiment_by_name(tracking.EXPERIMENT)
    if exp is None:
        return {}
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.group_id = '{group}'")
    return {r.data.tags["stage"]: r for r in runs if r.data.tags.get("role") == "stage"}


def test_stage_process_does_not_import_mlflow_and_a_background_flusher_sends_the_record(
    tmp_path: Path,
) -> None:
    """The point of the spool: a stage pays no MLflow start-up, and the record still arrives."""
    env = {
        **os.environ,
        "MUSICRESTORE_TRACKING": "1",
        "MUSICRESTORE_TRACKING_FLUSH": "background",
        "MUSICRESTORE_RUN_GROUP": "g-bg",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/bg.db",
        "MUSICRESTORE_TRACKING_SPOOL": str(tmp_path / "spool"),
    }
    code = (
        "import sys\n"
        "from musicrestore import tracking\n"
        "with tracking.stage_run('bg_stage', {'k': 3}) as run:\n"
        "    run.log_metrics({'score': 1.5})\n"
        "print('mlflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    deadline = time.monotonic() + 90
    while tracking.pending(tmp_path / "spool"):  # look at the spool, not the store: opening
        assert time.monotonic() < deadline, "the background flusher never sent the record"
        time.sleep(0.5)  # the database while the flusher creates it would race with it
    run = _stage_runs(tmp_path / "bg.db", "g-bg")["bg_stage"]
    assert run.data.params == {"k": "3"} and run.data.metrics == {"score": 1.5}  # type: ignore[attr-defined]


def test_a_store_that_is_down_keeps_the_record_until_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "1")
    monkeypatch.setenv("MUSICRESTORE_TRACKING_FLUSH", "sync")
    monkeypatch.setenv("MUSICRESTORE_TRACKING_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setenv("MUSICRESTORE_RUN_GROUP", "g-down")
    # a sqlite file below a plain file: the store cannot be opened
    (tmp_path / "missing").write_text("not a folder")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/missing/down.db")
    with tracking.stage_run("kept", {"a": 1}) as run:
        run.log_metrics({"m": 2.0})
    assert len(tracking.pending()) == 1
    assert (tmp_path / "spool" / "flush.log").read_text().strip()
    # The store comes back (the folder now exists): the next flush sends the same record.
    (tmp_path / "missing").unlink()
    (tmp_path / "missing").mkdir()
    assert tracking.flush() == 1
    assert tracking.pending() == []
    run = _stage_runs(tmp_path / "missing" / "down.db", "g-down")["kept"]
    assert run.data.metrics == {"m": 2.0}  # type: ignore[attr-defined]


def test_group_id_does_not_move_with_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """psutil's create_time() re-derives the boot time from the wall clock; a clock step
    during a long dvc repro split one run into three groups. The stamp is the process's
    start in ticks after boot, which no clock change moves."""
    import psutil

    from musicrestore.tracking.groups import _start_stamp

    proc = psutil.Process()
    first = _start_stamp(proc)
    monkeypatch.setattr(psutil.Process, "create_time", lambda self: 1e12)  # a clock jump
    assert _start_stamp(proc) == first


# ------------------------------------------------------------------ tracking.on_server_down


def _dead_server() -> str:
    """An http URI on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _write_mode(folder: Path, mode: object) -> None:
    (folder / "params.yaml").write_text(f"seed: 0\ntracking:\n  on_server_down: {mode}\n")


def test_on_server_down_reads_params_yaml_and_the_variable_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicrestore.core.stage import StageError

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MUSICRESTORE_TRACKING_ON_DOWN", raising=False)
    assert tracking.on_server_down() == "spool"  # no params.yaml here
    _write_mode(tmp_path, "local")
    assert tracking.on_server_down() == "local"
    monkeypatch.setenv("MUSICRESTORE_TRACKING_ON_DOWN", "fail")
    assert tracking.on_server_down() == "fail"
    monkeypatch.delenv("MUSICRESTORE_TRACKING_ON_DOWN")
    _write_mode(tmp_path, "sometimes")
    with pytest.raises(StageError, match=r"^params.yaml: tracking.on_server_down: 'sometimes' is"):
        tracking.on_server_down()
    (tmp_path / "params.yaml").write_text("tracking: {on_down: fail}\n")
    with pytest.raises(StageError, match=r"unknown key\(s\) on_down"):
        tracking.on_server_down()


def test_server_problem_says_why_a_server_is_down_and_never_asks_a_local_store() -> None:
    assert tracking.server_problem(_dead_server())  # connection refused, at once
    assert tracking.server_problem("sqlite:///nowhere/mlflow.db") is None
    assert tracking.server_problem("file:///nowhere") is None


def _spool_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "1")
    monkeypatch.setenv("MUSICRESTORE_TRACKING_FLUSH", "manual")
    monkeypatch.setenv("MUSICRESTORE_TRACKING_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setenv("MUSICRESTORE_RUN_GROUP", "g-mode")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MUSICRESTORE_TRACKING_ON_DOWN", raising=False)


def test_fail_mode_stops_the_stage_before_its_body_when_the_server_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from musicrestore.core.stage import StageError

    server = _dead_server()
    _spool_env(tmp_path, monkeypatch, server)
    _write_mode(tmp_path, "fail")
    ran = []
    with pytest.raises(StageError) as err, tracking.stage_run("stage_x", {"a": 1}):
        ran.append(True)
    assert ran == []
    assert str(err.value).startswith(f"MLflow server {server} does not answer (")
    assert str(err.value).endswith("stage_x not started (tracking.on_server_down: fail)")
    assert "\n" not in str(err.value)
    assert tracking.pending() == []  # nothing ran, so there is nothing to record


def test_local_mode_sends_records_to_the_local_store_when_the_server_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _dead_server()
    _spool_env(tmp_path, monkeypatch, server)
    _write_mode(tmp_path, "local")
    with tracking.stage_run("stage_l", {"a": 1}) as run:
        run.log_metrics({"m": 4.0})
    _write_mode(tmp_path, "spool")  # each record keeps the mode it was made with
    with tracking.stage_run("stage_s", {"a": 2}):
        pass
    assert len(tracking.pending()) == 2

    assert tracking.main(["flush"]) == 0  # stage_l goes local, then stage_s waits
    out = capsys.readouterr().out
    local = f"sqlite:///{tmp_path}/mlflow.db"
    assert out.startswith(f"sent 1 record(s) to MLflow (1 to the local store {local}: {server}")
    assert "; 1 stay in" in out
    runs = _stage_runs(tmp_path / "mlflow.db", "g-mode")
    assert set(runs) == {"stage_l"}
    assert runs["stage_l"].data.tags["fallback_from"] == server  # type: ignore[attr-defined]
    assert runs["stage_l"].data.metrics == {"m": 4.0}  # type: ignore[attr-defined]
    assert len(tracking.pending()) == 1

    # the flag overrides every record's own mode: fail exits 1 with one line ...
    assert tracking.main(["flush", "--on-server-down", "fail"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: MLflow server {server} did not take 1")
    assert err[0].endswith("(tracking.on_server_down: fail)")
    # ... and local moves the waiting record into the local store
    assert tracking.main(["flush", "--on-server-down", "local"]) == 0
    assert tracking.pending() == []
    assert set(_stage_runs(tmp_path / "mlflow.db", "g-mode")) == {"stage_l", "stage_s"}
