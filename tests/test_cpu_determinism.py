"""Same params, same bytes on another CPU (docs/method.md#reproducibility).

Five numerical libraries under the pipeline pick their kernels per CPU at run time: oneDNN
(PyTorch's CPU convolutions, so ``julius`` resampling), PyTorch's ATen kernels (random
normal draws, so weight initialisation; FFT/STFT), MKL (PyTorch's matrix products),
OpenBLAS (NumPy's and SciPy's matrix products) and NumPy's ufunc loops (tanh, exp, sin). Kernels of different instruction sets
round differently, so an AVX-512 machine would write other bytes than an AVX2 one.
Importing ``musicrestore`` caps each at AVX2 (:data:`musicrestore.CPU_CAPS`).

On one machine we cannot run AVX-512 kernels, but we can run *lower* ones: each test below
shows that one library's kernel choice changes the bytes of the operation the pipeline
uses it for (which is why it is capped), and that the cap is what an explicit AVX2 setting
gives."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import musicrestore

SRC = Path(__file__).resolve().parents[1] / "src"

#: One operation per library, each as the pipeline uses it; prints {name: sha256}.
PROBE = """
import hashlib, json, os, sys
sys.path.insert(0, {src!r})
if {import_first}:
    import musicrestore
import numpy as np, torch
torch.set_num_threads(1)
from musicrestore.core.audio import resample
def h(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
rng = np.random.default_rng(0)
x = (0.1 * rng.standard_normal((2, 44100))).astype(np.float32)
t = torch.from_numpy(x)
a, b = rng.standard_normal((257, 300)), rng.standard_normal((300, 311))
spec = torch.stft(t, 2048, 512, window=torch.hann_window(2048), return_complex=True)
print(json.dumps({{
    "onednn": h(resample(x, 44100, 32000)),
    "aten": h(torch.view_as_real(spec).numpy())
    + h(torch.randn(2, 44100, generator=torch.Generator().manual_seed(0)).numpy()),
    "mkl": h((t[:, :1000].reshape(-1, 100) @ torch.from_numpy(a[:100, :50]).float()).numpy()),
    "openblas": h(a @ b),
    "numpy": h(np.tanh(3 * x)) + h(np.exp(x)),
    "env": {{k: os.environ.get(k) for k in {caps!r}}},
}}))
"""

#: library -> (variable, a lower instruction set than AVX2 that this kind of CPU can run;
#: for MKL, whose cap is its COMPATIBLE branch, the AUTO branch it takes by default)
LOWER = {
    "onednn": ("ONEDNN_MAX_CPU_ISA", "SSE41"),
    "aten": ("ATEN_CPU_CAPABILITY", "default"),
    "mkl": ("MKL_CBWR", "AUTO"),
    "openblas": ("OPENBLAS_CORETYPE", "Sandybridge"),
    "numpy": ("NPY_DISABLE_CPU_FEATURES", "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"),
}


def _caps() -> dict[str, str]:
    return dict(musicrestore.CPU_CAPS)


def _probe(import_first: bool, **env_set: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _caps()}
    env.update(env_set)
    code = PROBE.format(src=str(SRC), import_first=import_first, caps=sorted(_caps()))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@functools.cache
def _avx2_probe() -> dict:
    """Every library at its AVX2 level, set explicitly (the baseline of the tests below)."""
    return _probe(False, **_caps())


needs_avx2 = pytest.mark.skipif(
    not musicrestore._has_avx2(), reason="needs an x86-64 CPU with AVX2"
)


def test_every_capped_library_has_a_probe_and_a_lower_level() -> None:
    assert {var for var, _ in LOWER.values()} == set(_caps())


def test_the_numpy_cap_names_every_dispatch_target_above_avx2() -> None:
    """NumPy takes the names of its dispatch targets; a NumPy that renames them (an
    upgrade) would make the cap silently do nothing, and this test fail."""
    from numpy._core._multiarray_umath import __cpu_dispatch__

    above_avx2 = set(__cpu_dispatch__) - {"X86_V3"}
    assert set(_caps()["NPY_DISABLE_CPU_FEATURES"].split()) == above_avx2


@needs_avx2
def test_importing_the_package_sets_every_cap_unless_told_otherwise() -> None:
    capped = _probe(True)
    assert capped["env"] == _caps()
    assert _probe(True, ONEDNN_MAX_CPU_ISA="ALL")["env"]["ONEDNN_MAX_CPU_ISA"] == "ALL"
    assert {k: v for k, v in capped.items() if k != "env"} == {
        k: v for k, v in _avx2_probe().items() if k != "env"
    }


@needs_avx2
@pytest.mark.parametrize("library", sorted(LOWER))
def test_the_kernel_choice_changes_the_bytes_which_is_why_it_is_capped(library: str) -> None:
    """The reason for each cap, measured: the library's lower-level kernels give other
    bytes than its AVX2 ones on this machine (as AVX-512 kernels would on another), and
    MKL's per-CPU AUTO branch others than its COMPATIBLE one."""
    var, lower = LOWER[library]
    other = _probe(False, **{**_caps(), var: lower})
    assert other[library] != _avx2_probe()[library]
