"""Degradation engine: seeded, recorded audio effects, the two degradation chains and the
dataset builders that write the degraded test and training sets.

- :mod:`.effects`: one deterministic ``apply(wave, sr, **params)`` and one seeded
  ``sample(rng, sr, **ranges)`` per effect (seed 004 §2.2, seed 000 §3 "Training").
- :mod:`.chains`: the MSR example chain (seed 004 §4.2) and the MusicGen-like chain (seed 000).
- :mod:`.examples`: the pure per-example functions of the builders (``make_msr_example``,
  ``make_musicgen_example``, seeds, activity).
- :mod:`.tasks`: one song's chunk of examples read, made and encoded (a Dask task, run by
  :mod:`musicrestore.compute`).
- :mod:`.stats`: each built dataset's ``stats.json``.
- :mod:`.build`: the dataset builders (``build_msr``, ``build_musicgen_like``).
"""

from .chains import MSR_DEFAULTS, MUSICGEN_DEFAULTS, MSRExample, msr_example, musicgen_like
from .effects import EFFECTS, Effect, EffectError, apply_effect, draw_effect, mix_at_snr, snr_db

__all__ = [
    "EFFECTS",
    "MSR_DEFAULTS",
    "MUSICGEN_DEFAULTS",
    "Effect",
    "EffectError",
    "MSRExample",
    "apply_effect",
    "draw_effect",
    "mix_at_snr",
    "msr_example",
    "musicgen_like",
    "snr_db",
]
