"""Where per-example work runs: in this process, or as Dask tasks on a cluster (docs/architecture.md#compute).

Every stage that loops over examples (``build_msr``, ``build_musicgen_like``, ``separate``,
``restore-*``, ``evaluate@*``) hands its units of work to :class:`Engine`:

- ``compute.workers: 1``: the tasks run one after another in the stage process, on one
  torch thread (no cluster; what the CLI, the app and most tests use);
- ``compute.workers: null`` (default) or ``n > 1``: a :class:`distributed.LocalCluster` of
  ``n`` worker processes (default ``os.cpu_count()``), one thread each, so a 2-core machine
  uses both cores at the file level. The cluster is started only when it pays: the tasks
  run in the stage process until the time spreading the rest over the workers would save
  exceeds ``compute.cluster_start_s`` (what starting the cluster and its workers' imports
  cost), so a stage of a few seconds' work never waits for one (``0``: start at once);
- ``compute.scheduler: tcp://host:8786``: the same tasks on an existing cluster (started with
  ``dask scheduler`` / ``dask worker``, or ``dask-jobqueue`` on SLURM: README, "Scale-out").

Dask is the engine and we only say what a task is; what this module adds is what the
pipeline needs around it: results in task order whatever order they finish in (so outputs
are byte-identical for any number of workers), a tqdm bar as before, one-line errors (a
scheduler that cannot be reached is reported before any work), the CPU kernel caps of
:mod:`musicrestore` checked in every worker, and the ``GPU: 1`` resource annotation for tasks
that run a learned model when the cluster has workers that offer one.

Workers never write outputs: a task returns its results (manifest rows, encoded audio
bytes, scores) and the stage process, the only writer, writes them into its atomic output
folder. Workers must see the *inputs* at the same paths as the stage process (a shared
file system on a multi-machine cluster); nothing else needs to be shared.

No stage declares the ``compute`` block as a DVC param: where the work ran never changes an
output (tests/test_compute.py checks 1 vs 2 workers byte for byte, and a worker killed
mid-stage), so changing it re-runs nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .core import config
from .core.errors import StageError, one_line

log = logging.getLogger(__name__)

#: The ``compute:`` params block.
COMPUTE_DEFAULTS: dict[str, Any] = {
    "scheduler": None,  # tcp://host:8786 of a running cluster; null: start a LocalCluster
    "workers": None,  # LocalCluster worker processes; null: os.cpu_count(); 1: no cluster
    "connect_timeout_s": 10.0,  # how long to try to reach compute.scheduler
    "cluster_start_s": 6.0,  # a LocalCluster's start-up cost; 0: start it before any task
}


class ComputeError(StageError):
    """The cluster cannot be reached or started, or a worker cannot run our tasks; one line."""


def compute_settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """``compute:`` merged over :data:`COMPUTE_DEFAULTS`; a wrong type or value is a one-line
    :class:`~musicrestore.core.config.ConfigError` naming ``compute.<key>``."""
    settings: dict[str, Any] = config.merge(
        COMPUTE_DEFAULTS,
        section,
        "compute",
        ranges={"connect_timeout_s": (0.1, 3600.0), "cluster_start_s": (0.0, 3600.0)},
        checks={"scheduler": _scheduler_problem, "workers": _workers_problem},
    )
    return settings


def _workers_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return None
    return "null (every core) or a number of worker processes >= 1"


def _scheduler_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and "://" in value):
        return None
    return "null or a scheduler address such as tcp://host:8786"


def worker_setup() -> None:
    """What every task does first in a worker: refuse to run where the CPU kernel caps do
    not hold (the bytes would depend on the machine: :func:`musicrestore.caps_effective`),
    and run torch and the BLAS/OpenMP pools on one thread (the cluster already uses every
    core; the bytes must not depend on the thread count: OpenBLAS splits a matrix product
    differently on two threads, and STOI's last digits moved with it). Dask's nanny starts
    its workers with ``OPENBLAS_NUM_THREADS=1`` and the like; ``threadpoolctl`` holds
    the BLAS pools to one thread in a worker started without them too."""
    from threadpoolctl import threadpool_limits

    import musicrestore

    if not musicrestore.caps_effective():
        raise ComputeError(
            "this Dask worker imported NumPy/PyTorch before musicrestore set the CPU kernel "
            "caps; start workers with `dask worker ADDRESS --nthreads 1 --preload-nanny "
            "musicrestore` (README, Scale-out)"
        )
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    threadpool_limits(1)


def _call(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    worker_setup()
    return fn(**kwargs)


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """Torch and the BLAS/OpenMP pools on one thread for the block: the in-process path
    runs as a worker does (:func:`worker_setup`), so ``compute.workers: 1`` writes the bytes
    a cluster writes."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(before)


class _Shared:
    """What :meth:`Engine.share` returns: a placeholder a task is given as one of its
    keyword arguments, replaced where the task runs by the object (in the stage process) or
    by its copy on the workers (scattered once, when the first task goes to the cluster)."""

    __slots__ = ("cold", "future", "obj")

    def __init__(self, obj: Any, cold: Callable[[], Any] | None) -> None:
        self.obj, self.cold, self.future = obj, cold, None


class Engine:
    """Runs a stage's tasks in this process (``client is None``) or on a Dask client.

    ``start``: a local cluster not started yet (a callable that starts it and returns its
    client); :meth:`imap` runs the tasks here until starting it would pay, judged from the
    tasks' measured cost against ``start_cost_s`` on ``planned_workers`` workers."""

    def __init__(
        self,
        client: Any = None,
        progress: bool = True,
        *,
        start: Callable[[], Any] | None = None,
        start_cost_s: float = 0.0,
        planned_workers: int = 1,
    ) -> None:
        self.client = client
        self.progress = progress
        self._start, self._start_cost_s = start, start_cost_s
        self._planned_workers = planned_workers

    @property
    def workers(self) -> int:
        """Worker processes the tasks are spread over (1 in-process)."""
        if self.client is None:
            return 1
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    @property
    def gpu_workers(self) -> bool:
        """Whether some worker offers a ``GPU`` resource (``dask worker --resources GPU=1``)."""
        if self.client is None:
            return False
        infos = self.client.scheduler_info().get("workers", {}).values()
        return any(info.get("resources", {}).get("GPU", 0) > 0 for info in infos)

    def share(self, obj: Any, cold: Callable[[], Any] | None = None) -> Any:
        """A placeholder for ``obj`` to pass as a task's keyword argument: the task receives
        ``obj`` itself in this process, and on a cluster a copy sent once to every worker
        (one per worker, which keeps what the tasks cache on it). ``cold``: what to send to
        the workers instead (e.g. ``obj`` without its loaded models, which each worker then
        loads for itself)."""
        return _Shared(obj, cold)

    def map(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[Mapping[str, Any]],
        desc: str,
        units: Sequence[int] | None = None,
        *,
        gpu: bool = False,
    ) -> list[Any]:
        """``[fn(**t) for t in tasks]``, in task order, however they finish."""
        results: list[Any] = [None] * len(tasks)
        for i, result in self.imap(fn, tasks, desc, units, gpu=gpu):
            results[i] = result
        return results

    def imap(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[Mapping[str, Any]],
        desc: str,
        units: Sequence[int] | None = None,
        *,
        gpu: bool = False,
    ) -> Iterator[tuple[int, Any]]:
        """``(i, fn(**tasks[i]))`` as each task finishes, with a tqdm bar counting ``units``
        (examples) per task. The caller writes what each result holds, so the results of a
        long stage are never all in memory at once.

        ``gpu``: the task runs a learned model; on a cluster whose workers offer a ``GPU``
        resource it is placed on one of them (``resources={"GPU": 1}``); elsewhere the
        annotation is left out (it would wait for a GPU worker forever).
        """
        from tqdm import tqdm

        counts = list(units) if units is not None else [1] * len(tasks)
        bar = tqdm(total=sum(counts), desc=desc, unit="ex", leave=False, disable=not self.progress)
        try:
            done = 0
            if self.client is None:
                seconds: list[float] = []
                with _single_thread():
                    while done < len(tasks):
                        begin = time.perf_counter()
                        result = fn(**_here(tasks[done]))
                        seconds.append(time.perf_counter() - begin)
                        bar.update(counts[done])
                        done += 1
                        yield done - 1, result
                        if self._pays(seconds, len(tasks) - done):
                            self._start_cluster()
                            break
            if done < len(tasks):
                yield from self._imap_dask(fn, tasks, range(done, len(tasks)), counts, bar, gpu)
        finally:
            bar.close()

    def _pays(self, seconds: list[float], remaining: int) -> bool:
        """Whether starting the local cluster now saves time on the ``remaining`` tasks: the
        cost of a task is the latest one's (the first also loads what the later ones reuse),
        and ``planned_workers`` of them run at once on the cluster."""
        if self._start is None or remaining == 0:
            return False
        saved = seconds[-1] * remaining * (1.0 - 1.0 / self._planned_workers)
        return saved > self._start_cost_s

    def _start_cluster(self) -> None:
        start, self._start = self._start, None
        self.client = start()

    def _remote(self, task: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(task)
        for key, value in task.items():
            if isinstance(value, _Shared):
                if value.future is None:  # in a list: Dask would scatter a dict's values
                    obj = value.cold() if value.cold is not None else value.obj
                    value.future = self.client.scatter([obj], broadcast=True, hash=False)[0]
                out[key] = value.future
        return out

    def _imap_dask(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[Mapping[str, Any]],
        which: range,
        counts: list[int],
        bar: Any,
        gpu: bool,
    ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        resources = {"GPU": 1} if gpu and self.gpu_workers else None
        futures = [
            self.client.submit(_call, fn, self._remote(tasks[i]), pure=False, resources=resources)
            for i in which
        ]
        index = {fut.key: i for i, fut in zip(which, futures, strict=True)}
        try:
            for fut in as_completed(futures):
                i = index[fut.key]
                result = fut.result()
                fut.release()
                bar.update(counts[i])
                yield i, result
        finally:
            self.client.cancel([f for f in futures if not f.done()])


def _here(task: Mapping[str, Any]) -> dict[str, Any]:
    """``task`` with every :class:`_Shared` placeholder replaced by its object."""
    return {k: v.obj if isinstance(v, _Shared) else v for k, v in task.items()}


@contextlib.contextmanager
def engine(settings: Mapping[str, Any] | None = None, progress: bool = True) -> Iterator[Engine]:
    """The :class:`Engine` ``settings`` (a checked ``compute`` block, or ``None``: every
    core) describe, for the length of the block; a LocalCluster is closed at the end.

    A scheduler is reached at once; a local cluster is started when the tasks' measured
    cost makes it pay (``cluster_start_s``; ``0``: at once).

    Raises:
        ComputeError: ``compute.scheduler`` cannot be reached within ``connect_timeout_s``,
            or the local cluster does not start; raised before any task is sent to it.
    """
    settings = compute_settings(settings) if settings is None else dict(settings)
    workers = settings["workers"] or os.cpu_count() or 1
    if settings["scheduler"] is None and workers <= 1:
        yield Engine(None, progress)
        return
    with contextlib.ExitStack() as stack:

        def start() -> Any:
            client = stack.enter_context(_client(settings, workers))
            link = client.dashboard_link  # the status page needs bokeh; the link is there anyway
            log.info(
                "Dask: %d worker(s) at %s%s",
                max(1, len(client.scheduler_info().get("workers", {}))),
                client.scheduler.address,
                f"; dashboard {link}" if link else "",
            )
            return client

        lazy = settings["scheduler"] is None and settings.get("cluster_start_s", 0.0) > 0
        if lazy:
            yield Engine(
                None,
                progress,
                start=start,
                start_cost_s=settings["cluster_start_s"],
                planned_workers=workers,
            )
        else:
            yield Engine(start(), progress)


@contextlib.contextmanager
def _client(settings: Mapping[str, Any], workers: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    address = settings["scheduler"]
    timeout = settings["connect_timeout_s"]
    quiet = {"distributed", "distributed.nanny", "distributed.scheduler", "distributed.worker"}
    levels = {name: logging.getLogger(name).level for name in quiet}
    for name in quiet:  # Dask reports a lost worker at ERROR with a traceback; we say it once
        logging.getLogger(name).setLevel(logging.CRITICAL)
    cluster = None
    try:
        try:
            if address is None:
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=":0",  # a free port: never "8787 is already in use"
                    silence_logs=logging.CRITICAL,
                )
                client = Client(cluster, timeout=timeout)
            else:
                client = Client(address, timeout=timeout)
        except (OSError, TimeoutError, RuntimeError, ValueError) as exc:
            where = f"compute.scheduler {address}" if address else "the local Dask cluster"
            raise ComputeError(
                f"{where}: cannot connect ({one_line(str(exc)) or type(exc).__name__})"
            ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def dask_setup(worker: Any) -> None:
    """``dask worker --preload musicrestore.compute``: check the worker at start-up as every
    task does (:func:`worker_setup`), so a misconfigured worker is seen at once."""
    worker_setup()
