"""How the builders' work is spread: the worker process pool and the sharding helpers.

Both live here, apart from what the work is (:mod:`.tasks`) and how it is ordered
(:mod:`.build`), so another executor can replace them in this one module.

Workers: :func:`worker_pool` opens one spawn-context process pool for a whole build (or
none: the tasks then run in this process), :func:`run_tasks` runs tasks on it and returns
their results in task order. Every worker runs torch single-threaded, as does the
in-process path (:func:`single_thread`), so the output bytes do not depend on the number
of workers.

Sharding: with ``shard=(i, n)`` (:func:`parse_shard`, ``--shard i/n``) a builder writes only
the examples whose index is ``i`` mod ``n`` (:func:`in_shard`; same ids, seeds and songs),
so ``n`` machines can build one dataset; :func:`record_shard` marks its ``stats.json``, and
:mod:`musicrestore.degrade.merge` joins the shard folders into the folder a single build
writes, byte for byte (README, "Team use").
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from ..core.errors import StageError


def _worker_init() -> None:
    """Pool workers run torch on one thread: the pool already uses every core, and the
    result must not depend on the thread count."""
    import torch

    torch.set_num_threads(1)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with torch on one thread (the in-process path, like the workers)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """One spawn-context process pool for a whole build (``None``: run in this process, on
    one torch thread like the workers).

    Spawn, not fork: a forked child of a process that already ran OpenMP (torch) can hang.
    """
    if workers <= 1:
        with single_thread():
            yield None
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
        yield pool


def run_tasks(
    pool: ProcessPoolExecutor | None,
    fn: Callable[..., Any],
    tasks: list[dict[str, Any]],
    desc: str,
    units: list[int] | None = None,
) -> list[Any]:
    """``[fn(**t) for t in tasks]`` on ``pool`` (or in-process), with a tqdm bar counting
    ``units`` (examples) per task; results in task order whatever order they finish in."""
    from tqdm import tqdm

    units = units if units is not None else [1] * len(tasks)
    results: list[Any] = [None] * len(tasks)
    with tqdm(total=sum(units), desc=desc, unit="ex", leave=False) as bar:
        if pool is None:
            for i, task in enumerate(tasks):
                results[i] = fn(**task)
                bar.update(units[i])
            return results
        futures = {pool.submit(fn, **task): i for i, task in enumerate(tasks)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            bar.update(units[i])
    return results


def chunks(jobs: list[Any], size: int) -> Iterator[list[Any]]:
    """``jobs`` in consecutive lists of at most ``size`` (one task each)."""
    for i in range(0, len(jobs), size):
        yield jobs[i : i + size]


def worker_count(workers: int | None) -> int:
    """Processes a build uses: ``workers``, default ``os.cpu_count()``, at least 1."""
    return max(1, int(workers if workers is not None else (os.cpu_count() or 1)))


def parse_shard(text: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"i/n"`` (or ``(i, n)``) -> ``(i, n)`` with ``0 <= i < n``; ``None`` stays ``None``.
    Anything else is a one-line :class:`~musicrestore.core.stage.StageError`."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in (text.split("/") if isinstance(text, str) else text))
    except ValueError:
        raise StageError(f"shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise StageError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def in_shard(i: int, shard: tuple[int, int] | None) -> bool:
    """Whether example ``i`` belongs to ``shard`` (every example does without one)."""
    return shard is None or i % shard[1] == shard[0]


def record_shard(stats: dict[str, Any], shard: tuple[int, int] | None) -> None:
    """Add the ``shard`` entry to a build's ``stats`` (nothing without a shard)."""
    if shard is not None:  # merge.py checks that the shards of one build are complete
        stats["shard"] = {"index": shard[0], "count": shard[1]}
