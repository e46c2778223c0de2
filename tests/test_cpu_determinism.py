"""Same params, same bytes on another CPU (docs/method.md#reproducibility).

oneDNN, behind PyTorch's CPU convolutions and so behind ``julius`` resampling, picks its
kernels per CPU at run time; kernels of different instruction sets round differently.
Importing ``musicrestore`` caps it at AVX2, the set every x86-64 machine we run on has
(AVX-512 machines would otherwise take other kernels and write other bytes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import hashlib, os, sys
sys.path.insert(0, {src!r})
import musicrestore
import numpy as np, torch
torch.set_num_threads(1)
from musicrestore.audio import resample
x = (0.1 * np.random.default_rng(0).standard_normal((2, 44100))).astype(np.float32)
y = resample(x, 44100, 32000)
print(os.environ.get("ONEDNN_MAX_CPU_ISA"), hashlib.sha256(y.tobytes()).hexdigest())
"""


def _probe(isa: str | None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA",)}
    if isa is not None:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(src=str(SRC))],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return out[0], out[1]


def _has_avx2() -> bool:
    try:
        return " avx2 " in f" {Path('/proc/cpuinfo').read_text().replace(chr(10), ' ')} "
    except OSError:
        return False


def test_importing_the_package_caps_onednn_at_avx2_unless_told_otherwise() -> None:
    isa, default_hash = _probe(None)
    assert isa == "AVX2"
    assert _probe("ALL")[0] == "ALL"  # an explicit setting wins
    assert _probe("AVX2") == ("AVX2", default_hash)


@pytest.mark.skipif(not _has_avx2(), reason="needs an x86-64 CPU with AVX2")
def test_the_kernel_choice_changes_the_bytes_which_is_why_it_is_capped() -> None:
    """The reason for the cap, measured: the SSE4.1 kernels resample to other bytes than the
    AVX2 ones on the same machine (as AVX-512 kernels did on another)."""
    assert _probe("SSE41")[1] != _probe("AVX2")[1]
