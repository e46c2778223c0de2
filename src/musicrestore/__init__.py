"""musicrestore: a DVC pipeline that restores degraded music.

Two problems from three papers (see ``docs/method.md``): restoring AI-generated music (MusicGen
outputs, seeds 000 and 001) and music source restoration (recovering unprocessed stems from
produced mixtures, seed 004). The library does the work; ``stages/`` are thin DVC wrappers.

Importing the package pins the instruction set of every numerical library that picks its
kernels per CPU at run time (:data:`CPU_CAPS`): oneDNN (PyTorch's CPU convolutions, so
``julius`` resampling), PyTorch's own vectorised kernels (FFT/STFT, reductions, tanh, exp),
MKL inside PyTorch (matrix products), OpenBLAS inside NumPy and SciPy (matrix products) and
NumPy's ufunc loops (tanh, exp, sin). Each of them, given another instruction set, wrote
other bytes from the same inputs on this machine (tests/test_cpu_determinism.py), and an
AVX-512 machine would take its AVX-512 kernels by default; capped at AVX2, every x86-64
machine with AVX2 runs what an AVX2 machine runs (docs/method.md#reproducibility). The caps
are set only on x86-64 CPUs that have AVX2 (forcing AVX2 kernels elsewhere would crash), and
an explicit setting of any of the variables wins (e.g. ``ONEDNN_MAX_CPU_ISA=ALL`` for speed).
"""

import os
import platform

#: Environment variable -> the AVX2-level value it is given (before NumPy or PyTorch loads:
#: the stage scripts import this package first).
CPU_CAPS = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN: convolutions
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorised kernels
    "MKL_CBWR": "AVX2",  # MKL (PyTorch's BLAS): conditional numerical reproducibility
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS (NumPy's and SciPy's BLAS): Haswell = AVX2
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's AVX-512 loops
}


def _has_avx2() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as fh:
            return any(line.startswith("flags") and " avx2" in line for line in fh)
    except OSError:
        return False


if _has_avx2():
    for _name, _value in CPU_CAPS.items():
        os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
