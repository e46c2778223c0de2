"""Per-example work on Dask (musicrestore.compute): task order, a worker killed mid-stage, an
unreachable scheduler, the GPU annotation and the CPU kernel caps in every process.

The byte identity of whole stages on 1 and 2 workers is checked where the data is: the
builders in tests/test_build.py, scoring in tests/test_evaluate.py, and every per-example
stage of the tiny pipeline in tests/test_pipeline.py."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed.diagnostics.plugin import WorkerPlugin

import musicrestore
from musicrestore import compute
from musicrestore.variants import build_context
from musicrestore.variants import restore as rs

from .test_evaluate import make_testset

REPO = Path(__file__).resolve().parents[1]


def _sleepy(i: int, delay: float) -> int:
    time.sleep(delay)
    return i * i


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_results_come_in_task_order_whatever_order_they_finish_in(dask2):
    tasks = [{"i": i, "delay": 0.3 * (3 - i)} for i in range(4)]  # the last finishes first
    finished = [i for i, _ in dask2.imap(_sleepy, tasks, "t")]
    assert finished != sorted(finished)  # they really finished out of order
    assert dask2.map(_sleepy, tasks, "t") == [0, 1, 4, 9]
    assert dask2.workers == 2


def _pid_after(delay: float) -> int:
    time.sleep(delay)
    return os.getpid()


def test_a_local_cluster_starts_only_when_it_pays():
    """compute.cluster_start_s: tasks run in the stage process while spreading the rest over
    the workers would save less than the cluster's start-up; costly tasks move to it."""
    cheap = [{"delay": 0.01}] * 4
    with compute.engine({**compute.COMPUTE_DEFAULTS, "workers": 2}, progress=False) as eng:
        assert eng.map(_pid_after, cheap, "t") == [os.getpid()] * 4
        assert eng.client is None and eng.workers == 1  # 4 x 0.01 s never pays 6 s
    costly = [{"delay": 0.4}] * 4
    settings = {**compute.COMPUTE_DEFAULTS, "workers": 2, "cluster_start_s": 0.2}
    with compute.engine(settings, progress=False) as eng:
        pids = eng.map(_pid_after, costly, "t")
        assert eng.workers == 2
        again = eng.map(_pid_after, costly, "t")  # the started cluster serves later calls
    assert pids[0] == os.getpid()  # the first task measured the cost here ...
    assert os.getpid() not in pids[1:] + again  # ... 3 x 0.4 s / 2 workers > 0.2 s: the rest there


def test_a_cluster_started_mid_stage_writes_the_bytes_of_one_process(tmp_path):
    """The first example restores in the stage process with the context itself, the others
    on the workers with its cold copy (Engine.share): the files are those of one process."""
    make_testset(tmp_path / "ts", n=4)
    ctx = build_context("dsp_direct")
    rs.restore_dataset("dsp_direct", tmp_path / "ts", tmp_path / "one", ctx, progress=False)
    settings = {**compute.COMPUTE_DEFAULTS, "workers": 2, "cluster_start_s": 1e-6}
    with compute.engine(settings, progress=False) as eng:
        timing = rs.restore_dataset(
            "dsp_direct", tmp_path / "ts", tmp_path / "mixed", build_context("dsp_direct"),
            engine=eng,
        )  # fmt: skip
    assert timing["machine"]["workers"] == 2  # the cluster did start
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "mixed")


def _thread_counts() -> dict[str, int]:
    import torch
    from threadpoolctl import threadpool_info

    counts = {f"{p['user_api']}:{p['internal_api']}": p["num_threads"] for p in threadpool_info()}
    return {**counts, "torch": torch.get_num_threads()}


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_tasks_run_on_one_thread_in_process_as_on_a_worker(dask2):
    """compute.workers: 1 runs the tasks in the stage process, which must compute as a Dask
    worker does: torch and the BLAS pools on one thread. With NumPy's OpenBLAS on two
    threads in process, the STOI of one T1 clip differed from the workers' in its last digit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    if not any(p["user_api"] == "blas" for p in threadpool_info()):
        pytest.skip("no BLAS pool that threadpoolctl can see")
    # a stage process has pools of two (tests/conftest.py gives the test process one)
    with threadpool_limits(2), _torch_threads(2):
        outside = _thread_counts()
        assert max(outside.values()) == 2, outside
        [inside] = compute.Engine(None, progress=False).map(_thread_counts, [{}], "t")
        assert _thread_counts() == outside  # the stage's own pools are given back afterwards
    [on_worker] = dask2.map(_thread_counts, [{}], "t")
    assert set(inside.values()) == {1} and set(on_worker.values()) == {1}, (inside, on_worker)


class KillFirstTask(WorkerPlugin):
    """A Dask worker plugin: the first worker to start a task SIGKILLs its own process, once
    (the marker file says it happened; the worker the nanny restarts does not kill again)."""

    name = "kill-first-task"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def transition(self, key: str, start: str, finish: str, **kwargs: object) -> None:
        if finish == "executing" and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_stage_has_its_tasks_rerun_with_identical_outputs(tmp_path):
    from distributed import LocalCluster

    make_testset(tmp_path / "ts", n=4)
    ctx = build_context("dsp_direct")
    rs.restore_dataset("dsp_direct", tmp_path / "ts", tmp_path / "one", ctx, progress=False)
    marker = tmp_path / "killed"
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
        settings = {**compute.COMPUTE_DEFAULTS, "scheduler": cluster.scheduler_address}
        with compute.engine(settings, progress=False) as eng:
            eng.client.register_plugin(KillFirstTask(str(marker)))
            rs.restore_dataset("dsp_direct", tmp_path / "ts", tmp_path / "two", ctx, engine=eng)
    killed = int(marker.read_text())
    assert killed != os.getpid()  # a worker process died by SIGKILL mid-stage ...
    assert folder_bytes(tmp_path / "one") == folder_bytes(tmp_path / "two")  # ... no difference


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_scheduler_is_one_line_and_exit_1_before_any_work(tmp_path):
    make_testset(tmp_path / "ts", n=1)
    address = f"tcp://127.0.0.1:{_free_port()}"
    params = tmp_path / "params.yaml"
    params.write_text(f"compute:\n  scheduler: {address}\n  connect_timeout_s: 1\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "stages" / "restore.py"), "--params", str(params),
         "--variant", "identity", "--testset", f"ts={tmp_path / 'ts'}", "--out", str(out)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env={**os.environ, "MUSICRESTORE_TRACKING": "0"},
    )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: compute.scheduler {address}: cannot")
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_learned_tasks_carry_the_gpu_annotation_only_where_a_worker_offers_one(monkeypatch):
    from distributed import Client, LocalCluster

    seen: list[object] = []
    for gpus in (0, 1):
        kw = {"resources": {"GPU": gpus}} if gpus else {}
        with (
            LocalCluster(n_workers=1, processes=False, dashboard_address=":0", **kw) as cluster,
            Client(cluster) as client,
        ):
            eng = compute.Engine(client, progress=False)
            submit = client.submit

            def spy(*args: object, _submit=submit, **kwargs: object) -> object:
                seen.append(kwargs.get("resources"))
                return _submit(*args, **kwargs)

            monkeypatch.setattr(client, "submit", spy)
            assert eng.map(_sleepy, [{"i": 2, "delay": 0}], "t", gpu=True) == [4]
            assert eng.map(_sleepy, [{"i": 3, "delay": 0}], "t", gpu=False) == [9]
    # without a GPU worker the annotation would wait forever: left out
    assert seen == [None, None, {"GPU": 1}, None]


def test_the_cpu_caps_hold_in_this_test_session_whatever_conftest_imports():
    assert "numpy" in sys.modules  # conftest.py imports NumPy at its top
    assert musicrestore.caps_effective()  # pytest -p musicrestore loaded the package first


def test_a_process_that_imported_numpy_first_is_refused_as_a_dask_worker():
    code = (
        "import numpy, musicrestore\n"
        "from musicrestore.compute import worker_setup\n"
        "print(musicrestore.caps_effective())\n"
        "worker_setup()\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in musicrestore.CPU_CAPS}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if not musicrestore._AVX2:
        pytest.skip("no AVX2 on this CPU: there are no caps to set")
    assert proc.stdout.strip() == "False"
    assert proc.returncode != 0 and "--preload-nanny musicrestore" in proc.stderr
    # the variables exported before Python starts: caps hold whatever is imported first
    env.update(musicrestore.CPU_CAPS)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr


def test_a_bad_compute_block_is_one_line():
    with pytest.raises(compute.StageError, match=r"^compute.workers: got 0"):
        compute.compute_settings({"workers": 0})
    with pytest.raises(compute.StageError, match=r"^compute.scheduler: got 'localhost'"):
        compute.compute_settings({"scheduler": "localhost"})
    with pytest.raises(compute.StageError, match=r"^compute: unknown key\(s\) threads"):
        compute.compute_settings({"threads": 2})
