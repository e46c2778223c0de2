"""Where per-example work runs: in this process, or as Dask tasks on a cluster (docs/architecture.md#compute).

Every stage that loops over examples (``build_msr``, ``build_musicgen_like``, ``separate``,
``restore-*``, ``evaluate@*``) hands its units of work to :class:`Engine`:

- ``compute.workers: 1``: the tasks run one after another in the stage process, on one
  torch thread (no cluster; what the CLI, the app and most tests use);
- ``compute.workers: null`` (default) or ``n > 1``: a :class:`distributed.LocalCluster` of
  ``n`` worker processes (default ``os.cpu_count()``), one thread each, so a 2-core machine
  uses both cores at the file level;
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
        ranges={"connect_timeout_s": (0.1, 3600.0)},
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


class Engine:
    """Runs a stage's tasks in this process (``client is None``) or on a Dask client."""

    def __init__(self, client: Any = None, progress: bool = True) -> None:
        self.client = client
        self.progress = progress

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

    def share(self, obj: Any) -> Any:
        """``obj`` for the tasks' arguments: sent once to every worker (a Dask future the
        tasks receive as the object itself, one copy per worker, which keeps what the tasks
        cache on it), or ``obj`` itself in this process."""
        if self.client is None:
            return obj
        # in a list: Dask would scatter a dict's values one by one, under its keys
        return self.client.scatter([obj], broadcast=True, hash=False)[0]

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
            if self.client is None:
                with _single_thread():
                    for i, task in enumerate(tasks):
                        result = fn(**task)
                        bar.update(counts[i])
                        yield i, result
                return
            yield from self._imap_dask(fn, tasks, counts, bar, gpu)
        finally:
            bar.close()

    def _imap_dask(
        self,
        fn: Callable[..., Any],
        tasks: Sequence[Mapping[str, Any]],
        counts: list[int],
        bar: Any,
        gpu: bool,
    ) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        resources = {"GPU": 1} if gpu and self.gpu_workers else None
        futures = [
            self.client.submit(_call, fn, dict(task), pure=False, resources=resources)
            for task in tasks
        ]
        index = {fut.key: i for i, fut in enumerate(futures)}
        try:
            for fut in as_completed(futures):
                i = index[fut.key]
                result = fut.result()
                fut.release()
                bar.update(counts[i])
                yield i, result
        finally:
            self.client.cancel([f for f in futures if not f.done()])


@contextlib.contextmanager
def engine(settings: Mapping[str, Any] | None = None, progress: bool = True) -> Iterator[Engine]:
    """The :class:`Engine` ``settings`` (a checked ``compute`` block, or ``None``: every
    core) describe, for the length of the block; a LocalCluster is closed at the end.

    Raises:
        ComputeError: ``compute.scheduler`` cannot be reached within ``connect_timeout_s``,
            or the local cluster does not start; raised before any task runs.
    """
    settings = compute_settings(settings) if settings is None else dict(settings)
    workers = settings["workers"] or os.cpu_count() or 1
    if settings["scheduler"] is None and workers <= 1:
        yield Engine(None, progress)
        return
    with _client(settings, workers) as client:
        eng = Engine(client, progress)
        link = client.dashboard_link  # the status page needs bokeh; the link is there anyway
        log.info(
            "Dask: %d worker(s) at %s%s",
            eng.workers,
            client.scheduler.address,
            f"; dashboard {link}" if link else "",
        )
        yield eng


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
