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
AVX-512 machine would take its AVX-512 kernels by default; capped at AVX2 (MKL: its
``COMPATIBLE`` branch), every x86-64 machine with AVX2 runs what an AVX2 machine runs
(docs/method.md#reproducibility). The caps
are set only on x86-64 CPUs that have AVX2 (forcing AVX2 kernels elsewhere would crash), and
an explicit setting of any of the variables wins (e.g. ``ONEDNN_MAX_CPU_ISA=ALL`` for speed).
"""

import os
import platform
import sys

#: Environment variable -> the AVX2-level value it is given (before NumPy or PyTorch loads:
#: the stage scripts import this package first).
CPU_CAPS = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN: convolutions
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's vectorised kernels
    # MKL (PyTorch's matrix products): its conditional-numerical-reproducibility branch. Its
    # AVX2 branch is for Intel CPUs only (elsewhere MKL quietly takes its per-CPU AUTO path,
    # and two AMD EPYCs wrote other bytes); COMPATIBLE is the one every x86-64 CPU runs alike
    "MKL_CBWR": "COMPATIBLE",
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


#: Whether the caps were in the environment before this process started (a parent set them),
#: and which capped libraries were imported before this package set them here.
_INHERITED = all(_name in os.environ for _name in CPU_CAPS)
_LATE = sorted(_m for _m in ("numpy", "torch") if _m in sys.modules)

_AVX2 = _has_avx2()
if _AVX2:
    for _name, _value in CPU_CAPS.items():
        os.environ.setdefault(_name, _value)


def caps_effective() -> bool:
    """Whether this process's kernels honour :data:`CPU_CAPS`: the variables were set before
    the process started, or this package was imported before NumPy and PyTorch (which read
    them when they load). Entry points make sure of it: the stage scripts and
    ``python -m musicrestore`` import this package first, pytest loads it first (``-p
    musicrestore`` in pyproject.toml), LocalCluster workers inherit the variables, and remote
    workers get them with ``--preload-nanny musicrestore``; Dask tasks refuse to run
    without them (:func:`musicrestore.compute.worker_setup`)."""
    return not _AVX2 or _INHERITED or not _LATE


__version__ = "0.1.0"

#: The line and exit status an entry point gives each signal it handles (the shell's 128 + the
#: signal's number); :func:`musicrestore.core.stage.main_guard` gives the same.
SIGNAL_EXITS = {2: ("interrupted (SIGINT)", 130), 15: ("terminated (SIGTERM)", 143)}


def exit_on_signals() -> dict[int, object]:
    """From now on, until an entry point's own handlers take over, Ctrl-C and SIGTERM end the
    process at once with one line and the usual status (:data:`SIGNAL_EXITS`).

    For the first instants of an entry point: importing NumPy, PyTorch and the project takes
    seconds, and Python's defaults there are a ``KeyboardInterrupt`` traceback (Ctrl-C) and a
    silent death with status -15 (SIGTERM). Nothing has been written yet, so there is nothing
    to clean up, and once the work starts
    :func:`musicrestore.core.stage.signals_as_exceptions` raises instead (so every ``finally``
    removes its temporary files) and puts these handlers back when it ends. The stage
    scripts call this before their first project import, ``python -m musicrestore`` (and the
    ``musicrestore`` command) first thing. It imports nothing but :mod:`signal`.

    Returns the handlers it replaced (``{}`` outside the main thread, where it does nothing).
    """
    import signal

    try:
        return {s: signal.signal(s, _exit_at_once) for s in SIGNAL_EXITS}
    except ValueError:  # not the main thread: only the main thread handles signals
        return {}


def _exit_at_once(signum: int, frame: object) -> None:
    import contextlib
    import sys

    line, code = SIGNAL_EXITS.get(signum, (f"signal {signum}", 128 + signum))
    with contextlib.suppress(Exception):  # interrupted mid-write (reentrant), or closed
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        os.write(2, f"error: {line}\n".encode())
    os._exit(code)
