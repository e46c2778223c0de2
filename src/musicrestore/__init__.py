"""musicrestore: a DVC pipeline that restores degraded music.

Two problems from three papers (see ``docs/method.md``): restoring AI-generated music (MusicGen
outputs, seeds 000 and 001) and music source restoration (recovering unprocessed stems from
produced mixtures, seed 004). The library does the work; ``stages/`` are thin DVC wrappers.

Importing the package caps oneDNN, the kernel library behind PyTorch's CPU convolutions
(and so behind ``julius`` resampling), at the AVX2 instruction set: oneDNN picks its kernels
per CPU at run time, and its AVX-512 kernels round differently, so an AVX-512 machine built
other bytes than an AVX2 one from the same params (docs/method.md#reproducibility). Set
``ONEDNN_MAX_CPU_ISA`` yourself (e.g. ``ALL``) to trade that for speed.
"""

import os

# Before torch creates its first oneDNN primitive (the stage scripts import this package
# first); an explicit setting wins.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

__version__ = "0.1.0"
