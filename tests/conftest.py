"""Test-wide settings: never reach the network, keep MLflow out of unit tests, one BLAS and
one torch thread per test process."""

from __future__ import annotations

import os

# Before NumPy loads OpenBLAS: the tests' matrices are small, and on a shared 2-core machine a
# thread pool per process oversubscribes the cores (the S-NMF round trip of test_registry.py
# runs 3-5x slower with the default pool while anything else runs).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ.setdefault("MUSICRESTORE_TRACKING", "0")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def tone(
    freq_hz: float, duration_s: float, sr: int, channels: int = 2, amp: float = 0.5
) -> np.ndarray:
    """A sine ``(channels, T)``; a helper for tests that need a known signal."""
    t = np.arange(int(duration_s * sr)) / sr
    return np.repeat((amp * np.sin(2 * np.pi * freq_hz * t))[None], channels, axis=0).astype(
        np.float32
    )


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """Small tensors run faster on one thread, and two threads per test process oversubscribe
    a 2-core CI machine as soon as anything else runs."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def dask2():
    """A real Dask LocalCluster of 2 worker processes (one thread each) for the session, as a
    :class:`musicrestore.compute.Engine`: the tests that compare 1 and 2 workers share it."""
    from musicrestore import compute

    settings = {**compute.COMPUTE_DEFAULTS, "workers": 2, "cluster_start_s": 0.0}
    with compute.engine(settings, progress=False) as eng:
        yield eng
