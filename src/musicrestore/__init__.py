"""musicrestore: a DVC pipeline that restores degraded music.

Two problems from three papers (see ``docs/method.md``): restoring AI-generated music (MusicGen
outputs, seeds 000 and 001) and music source restoration (recovering unprocessed stems from
produced mixtures, seed 004). The library does the work; ``stages/`` are thin DVC wrappers.
"""

__version__ = "0.1.0"
