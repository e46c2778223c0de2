"""The pure per-example functions of the dataset builders: seeds, activity, one example.

:func:`make_msr_example` (seed 004 §4.2, task ``T2``: a segment where the target is active,
degraded by :func:`.chains.msr_example`) and :func:`make_musicgen_example` (seed 000 §3, task
``T1``: a crop of a mono mix, peak-normalised and degraded by :func:`.chains.musicgen_like`
through :func:`.chains.normalise_and_degrade`) are pure functions of (audio, seed, config):
the builders (:mod:`.build`) write their output to disk, and a trainer or the MusicGen test
set (:mod:`musicrestore.data.musicgen`) can generate the same examples on the fly with the
same code. No file I/O here.

Determinism: example ``i`` of a split draws everything from its own seed,
:func:`example_seed` ``(seed, target, split, i)``; the segment offset comes from a stream of
its own (:func:`segment_offset`), so a worker can pick it before reading any audio.
Activity (:func:`active_offsets`): seed 004's -40 dB RMS threshold on the target.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..data.stems import pad_to
from .chains import (
    MUSICGEN_CLEAN_PEAK_DBFS,
    MSRExample,
    msr_example,
    musicgen_config,
    musicgen_like,
    normalise_and_degrade,
)

#: Segment start offsets are drawn on this grid (s).
OFFSET_HOP_S = 0.1


def example_seed(seed: int, *keys: Any) -> int:
    """A 63-bit seed from ``(seed, *keys)`` by SHA-256: independent across keys and stable
    across Python versions and processes (unlike ``hash``)."""
    text = "|".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def energy_cumsum(wave: np.ndarray) -> np.ndarray:
    """``cs[n] = Σ_{m<n} mean_c wave[c, m]²`` (float64, length T+1): any segment's mean
    square in O(1)."""
    power = np.mean(np.square(wave, dtype=np.float64), axis=0)
    return np.concatenate([[0.0], np.cumsum(power)])


def active_offsets(
    cs: np.ndarray, length: int, sr: int, active_db: float = -40.0, hop_s: float = OFFSET_HOP_S
) -> np.ndarray:
    """Start samples (on a ``hop_s`` grid) of the ``length``-sample segments whose RMS is at
    least ``active_db`` dBFS; ``cs`` from :func:`energy_cumsum`.

    Seed 004 counts a stem's active playing time with a -40 dB RMS threshold; a segment
    below it would be a (near-)silent target. A song shorter than ``length`` has the one
    offset 0 (the segment is zero-padded and its RMS counts the padding).
    """
    total = len(cs) - 1
    hop = max(1, int(round(hop_s * sr)))
    starts = np.arange(0, max(total - length, 0) + 1, hop)
    ends = np.minimum(starts + length, total)
    mean_sq = (cs[ends] - cs[starts]) / length
    with np.errstate(divide="ignore"):
        level_db = 10.0 * np.log10(mean_sq)
    return starts[level_db >= active_db]


def segment_offset(offsets: Sequence[int] | np.ndarray, seed: int) -> int:
    """The start sample an example with ``seed`` uses among ``offsets``.

    Drawn from its own stream (``default_rng([seed, 1])``), apart from the degradation
    draws (``default_rng(seed)``), so a worker can pick the offset first and then read just
    that segment from disk: the example is the same as when cropped from the whole song.
    """
    if len(offsets) == 0:
        raise ValueError("no active segment to choose from")
    rng = np.random.default_rng([seed, 1])
    return int(offsets[int(rng.integers(len(offsets)))])


def make_msr_example(
    target: np.ndarray,
    background: np.ndarray,
    sr: int,
    length: int,
    seed: int,
    cfg: Mapping[str, Any] | None = None,
    offsets: Sequence[int] | np.ndarray | None = None,
    active_db: float = -40.0,
) -> tuple[MSRExample, int]:
    """One MSR example from a whole song: pick a segment where the target is active, degrade.

    Args:
        target: ``(C, T)`` the song's target mix (:func:`musicrestore.data.stems.load_target_and_background`).
        background: ``(C, T)`` everything else.
        sr: sample rate (Hz).
        length: segment length in samples.
        seed: the example's seed; the same seed gives the same example.
        cfg: degradation config (:data:`.chains.MSR_DEFAULTS` overrides).
        offsets: allowed start samples (:func:`active_offsets`); computed when ``None``.
        active_db: activity threshold used when ``offsets`` is ``None``.

    Returns:
        ``(example, offset)``; raises ``ValueError`` if the target is never active.
    """
    if offsets is None:
        offsets = active_offsets(energy_cumsum(target), length, sr, active_db)
    offset = segment_offset(offsets, seed)
    tgt = pad_to(target[:, offset : offset + length], length)
    bg = pad_to(background[:, offset : offset + length], length)
    return msr_example(tgt, bg, sr, np.random.default_rng(seed), cfg), offset


def make_musicgen_example(
    mix: np.ndarray,
    sr: int,
    seed: int,
    cfg: Mapping[str, Any] | None = None,
    length_s: float | Sequence[float] = 10.0,
    active_db: float = -40.0,
    cs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """One MusicGen-like pair from a whole mono mix: crop, normalise, degrade.

    The crop length is ``length_s`` or, for a ``(lo, hi)`` pair, uniform in it (training
    crops: 3-4 s, seed 000). The crop starts where the mix is active (above ``active_db``),
    or at the loudest offset if it never is (``meta["active"]`` is then false); the clean crop
    is peak-normalised to -1 dBFS, degraded, and both are scaled by the same headroom gain.

    Returns:
        ``(clean (1, L), degraded (1, L), effects, meta)``.
    """
    cfg = musicgen_config(cfg)
    rng = np.random.default_rng(seed)
    if isinstance(length_s, int | float):
        dur_s = float(length_s)
    else:
        dur_s = float(rng.uniform(float(length_s[0]), float(length_s[1])))
    length = int(round(dur_s * sr))
    cs = energy_cumsum(mix) if cs is None else cs
    offsets = active_offsets(cs, length, sr, active_db)
    active = len(offsets) > 0
    if not active:
        offsets = active_offsets(cs, length, sr, -math.inf)
        ends = np.minimum(offsets + length, len(cs) - 1)
        offsets = offsets[[int(np.argmax(cs[ends] - cs[offsets]))]]
    offset = int(offsets[int(rng.integers(len(offsets)))])
    clean = pad_to(mix[:, offset : offset + length], length)
    out = normalise_and_degrade(
        clean,
        lambda wave: musicgen_like(wave, rng, cfg, sr=sr),
        MUSICGEN_CLEAN_PEAK_DBFS,
        float(cfg["max_peak"]),
    )
    meta = {
        "offset_s": offset / sr,
        "active": active,
        "headroom_gain_db": 20.0 * math.log10(out.headroom_gain),
        "artifacts": "musicgen_like",
    }
    return out.clean, out.degraded, out.effects, meta
