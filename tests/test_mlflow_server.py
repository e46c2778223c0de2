"""Tracking against a real MLflow server (``mlflow server`` on 127.0.0.1, a free port,
SQLite backend, proxied artifacts), as a team would run it.

- Stage scripts (``build_musicgen_like``, ``build_msr``) run as processes with
  ``MLFLOW_TRACKING_URI=http://...``; after ``python -m musicrestore.tracking flush`` every
  stage's run, params, metrics and artifacts and the one group are found with ``MlflowClient``.
- A server that is down: the record stays spooled (``flush`` exits 0 and says so, or exits
  1 with one line naming the server with ``--on-server-down fail``) and is sent once the
  server is up. With ``tracking.on_server_down: fail`` a real stage script stops before it
  writes anything, with one line; with the server up the same setting lets it run.
  (``local`` mode, the fallback to ``mlflow.db``, is tested in tests/test_tracking.py.)

The server is stopped (its whole process group) when the module's tests end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from musicrestore import tracking
from musicrestore.data.taxonomy import TARGETS, scan, split_songs, write_splits

from .helpers import make_tiny_rawstems

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEALTH_TIMEOUT_S = 40.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``mlflow server`` on 127.0.0.1:``port``; :meth:`start` waits for ``/health``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s = 0.0

    def start(self) -> None:
        if self.proc is not None:
            return
        cmd = [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{self.base}/server.db",
            "--artifacts-destination", str(self.base / "artifacts"),
        ]  # fmt: skip
        log = open(self.base / "server.log", "ab")  # noqa: SIM115 - closed with the process
        began = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() - began > HEALTH_TIMEOUT_S:
                tail = (self.base / "server.log").read_text(errors="replace")[-2000:]
                self.stop()
                pytest.fail(f"mlflow server did not answer /health:\n{tail}")
            time.sleep(0.5)
        self.startup_s = time.monotonic() - began
        print(f"\nmlflow server up at {self.url} in {self.startup_s:.1f} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server and its uvicorn worker
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.proc = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that is not started yet (tests start it when they need it up)."""
    srv = Server(tmp_path_factory.mktemp("mlflow_server"))
    try:
        yield srv
    finally:
        srv.stop()


def tracking_env(spool: Path, uri: str, group: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MUSICRESTORE_TRACKING="1",
        MUSICRESTORE_TRACKING_FLUSH="manual",
        MUSICRESTORE_TRACKING_SPOOL=str(spool),
        MUSICRESTORE_RUN_GROUP=group,
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",  # a server that is down fails at once
        MLFLOW_HTTP_REQUEST_TIMEOUT="5",
    )
    env.pop("MUSICRESTORE_TRACKING_ON_DOWN", None)
    return env


def run_flush(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "musicrestore.tracking", "flush", *args],
        cwd=Path(env["MUSICRESTORE_TRACKING_SPOOL"]).parent,  # nothing lands in the repo
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def group_runs(url: str, group: str) -> tuple[list, dict]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    exp = client.get_experiment_by_name(tracking.EXPERIMENT)
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.group_id = '{group}'")
    parents = [r for r in runs if r.data.tags.get("role") == "group"]
    stages = {r.data.tags["stage"]: r for r in runs if r.data.tags.get("role") == "stage"}
    return parents, stages


def test_a_server_that_is_down_keeps_the_record_until_it_is_up(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    assert server.proc is None, "this test needs the server down first"
    spool = tmp_path / "spool"
    env = tracking_env(spool, server.url, "g-down")
    code = (
        "from musicrestore import tracking\n"
        "with tracking.stage_run('offline_stage', {'k': 3}) as run:\n"
        "    run.log_metrics({'score': 1.5})\n"
    )
    began = time.monotonic()
    made = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr  # a stage never fails because of tracking
    monkeypatch.setenv("MUSICRESTORE_TRACKING_SPOOL", str(spool))
    assert len(tracking.pending()) == 1

    spooled = run_flush(env)  # default: the record waits, the command succeeds
    assert spooled.returncode == 0, spooled.stdout + spooled.stderr
    assert "1 stay in" in spooled.stdout and server.url in spooled.stdout
    assert len(tracking.pending()) == 1

    strict = run_flush(env, "--on-server-down", "fail")
    assert strict.returncode == 1
    lines = (strict.stdout + strict.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: MLflow server {server.url} did not take 1 record(s)")
    assert lines[0].endswith("(tracking.on_server_down: fail)")
    assert len(tracking.pending()) == 1  # still nothing lost
    down_s = time.monotonic() - began

    server.start()
    sent = run_flush(env, "--on-server-down", "fail")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "sent 1 record(s)" in sent.stdout
    assert tracking.pending() == []
    parents, stages = group_runs(server.url, "g-down")
    assert len(parents) == 1 and set(stages) == {"offline_stage"}
    run = stages["offline_stage"]
    assert run.data.params == {"k": "3"} and run.data.metrics == {"score": 1.5}
    assert MlflowClient(tracking_uri=server.url).get_run(run.info.run_id).info.status == "FINISHED"
    print(f"down: record kept, two failing flushes in {down_s:.1f} s (retries off)")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("tiny_rawstems")
    root = make_tiny_rawstems(base / "rawstems", n_songs=4, duration_s=1.5)
    write_splits(base / "splits", split_songs(scan(root), TARGETS, seed=0, min_songs=1))
    params = {
        "seed": 3,
        "compute": {"workers": 1},
        "msr": {"targets": ["Voc"], "n_test": 1, "n_train": 1, "segment_s": 0.5},
        "musicgen_like": {"n_test": 1, "n_train": 2, "test_s": 0.5, "train_crop_s": [0.3, 0.3]},
    }
    (base / "params.yaml").write_text(yaml.safe_dump(params))
    return root, base / "splits", base / "params.yaml"


def test_stage_scripts_log_every_run_to_the_server(
    server: Server, tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    server.start()
    root, splits, params = tiny
    env = tracking_env(tmp_path / "spool", server.url, "g-server")
    env["MUSICRESTORE_TRACKING_ON_DOWN"] = "fail"  # the server answers: the stages run
    common = ["--params", str(params), "--rawstems", str(root), "--splits", str(splits)]
    data = tmp_path / "data"
    scripts = {
        "build_musicgen_like": ["--out", str(data / "musicgen_like")],
        "build_msr@Voc": ["--target", "Voc", "--out-test", str(data / "msr/test/Voc"),
                          "--out-train", str(data / "msr/train/Voc")],
    }  # fmt: skip
    for stage, args in scripts.items():
        script = REPO / "stages" / f"{stage.split('@')[0]}.py"
        proc = subprocess.run(
            [sys.executable, str(script), *common, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    began = time.monotonic()
    flushed = run_flush(env, "--on-server-down", "fail")
    flush_s = time.monotonic() - began
    assert flushed.returncode == 0, flushed.stdout + flushed.stderr
    assert f"sent {len(scripts)} record(s)" in flushed.stdout

    client = MlflowClient(tracking_uri=server.url)
    parents, stages = group_runs(server.url, "g-server")
    assert len(parents) == 1  # one group
    assert set(stages) == set(scripts)
    for stage, run in stages.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.params["seed"] == "3" and run.data.params["n_test"] == "1"
        assert any(k.startswith("degrade.") for k in run.data.params), stage
        assert run.data.metrics["test.examples"] == 1.0
        assert "build_time_s" in run.data.metrics
    mgl = stages["build_musicgen_like"]
    assert mgl.data.metrics["train.examples"] == 2.0
    assert [f.path for f in client.list_artifacts(mgl.info.run_id)] == ["stats.json"]
    msr = stages["build_msr@Voc"]
    assert {f.path for f in client.list_artifacts(msr.info.run_id)} == {"test", "train"}
    assert [f.path for f in client.list_artifacts(msr.info.run_id, "test")] == ["test/stats.json"]
    local = client.download_artifacts(mgl.info.run_id, "stats.json", str(tmp_path))
    assert Path(local).read_bytes() == (data / "musicgen_like" / "stats.json").read_bytes()
    # proxied artifacts: the server stored them under its --artifacts-destination
    assert list((server.base / "artifacts").rglob("stats.json"))
    print(f"flush of {len(scripts)} stage records to the server: {flush_s:.1f} s")


def test_fail_mode_stops_a_stage_script_with_one_line_when_the_server_is_down(
    tiny: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """``tracking.on_server_down: fail`` in the working directory's params.yaml (as under
    DVC): the stage exits 1 with one line before it writes any output or record."""
    root, splits, params = tiny
    doc = yaml.safe_load(params.read_text())
    doc["tracking"] = {"on_server_down": "fail"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(doc))
    dead = f"http://127.0.0.1:{free_port()}"
    env = tracking_env(tmp_path / "spool", dead, "g-fail")
    out = tmp_path / "data" / "musicgen_like"
    proc = subprocess.run(
        [sys.executable, str(REPO / "stages" / "build_musicgen_like.py"), "--params",
         "params.yaml", "--rawstems", str(root), "--splits", str(splits), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: MLflow server {dead} does not answer (")
    assert lines[0].endswith("build_musicgen_like not started (tracking.on_server_down: fail)")
    assert not (tmp_path / "data").exists()  # not even a temporary folder
    assert tracking.pending(tmp_path / "spool") == []
