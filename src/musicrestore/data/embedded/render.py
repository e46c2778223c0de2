"""Rendering: note events through the TimGM6mb SoundFont (tinysoundfont), one stem a file.

:func:`render_song` renders every stem of one planned song, pans and levels it, gives the
song one gain so its mix peaks at the planned level, and writes 16-bit stereo FLACs in the
RawStems layout.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ...core.audio import save_audio
from .arrangement import (
    Event,
    SongPlan,
    drum_events,
    load_score,
    looped,
    perc_events,
    pitched_events,
)
from .catalogue import DRUM_BANK, DRUM_CHANNEL


def soundfont_path() -> Path:
    """``TimGM6mb.sf2``, the General MIDI SoundFont bundled with ``pretty_midi``."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: pretty_midi's TimGM6mb.sf2 is missing; reinstall pretty_midi"
        )
    return path


def render_events(
    events: list[Event],
    program: int | None,
    n_samples: int,
    sr: int,
    soundfont: str | os.PathLike[str],
) -> np.ndarray:
    """Render note events with one SoundFont program; ``program=None`` is the drum kit.

    Returns:
        ``(2, n_samples)`` float32, the synth's stereo output (no effects).
    """
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sr)
    sfid = synth.sfload(str(soundfont))
    drums = program is None
    chan = DRUM_CHANNEL if drums else 0
    synth.program_select(
        chan, sfid, DRUM_BANK if drums else 0, 0 if drums else program, is_drums=drums
    )
    # (sample, order, note id, key, velocity): note-offs sort before note-ons at the same
    # sample. A key struck again while it still sounds (overlapping strums, doubled parts)
    # is released and re-struck, and the older note's late note-off is dropped so it cannot
    # cut the new one short, as on a MIDI keyboard.
    timeline = []
    for i, (t, d, key, vel) in enumerate(events):
        start = int(round(t * sr))
        timeline.append((start, 1, i, key, vel))
        timeline.append((start + max(1, int(round(d * sr))), 0, i, key, 0))
    timeline.sort()
    buf = np.zeros(2 * n_samples, np.float32)
    view = memoryview(buf).cast("B")  # type: ignore[arg-type]
    sounding: dict[int, int] = {}  # key -> id of the note that holds it
    pos = 0
    for sample, is_on, note_id, key, vel in timeline:
        if sample >= n_samples:
            break
        if sample > pos:
            synth.generate_simple(sample - pos, buffer=view[8 * pos : 8 * sample])
            pos = sample
        if is_on:
            if key in sounding:
                synth.noteoff(chan, key)
            synth.noteon(chan, key, vel)
            sounding[key] = note_id
        elif sounding.get(key) == note_id:
            synth.noteoff(chan, key)
            del sounding[key]
    if pos < n_samples:
        synth.generate_simple(n_samples - pos, buffer=view[8 * pos :])
    return buf.reshape(n_samples, 2).T.copy()


def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power pan of a stereo render: unity at centre, ``gL² + gR² = 2`` everywhere."""
    theta = (float(np.clip(pan, -1.0, 1.0)) + 1.0) * math.pi / 4.0
    return math.sqrt(2.0) * math.cos(theta), math.sqrt(2.0) * math.sin(theta)


def render_song(
    plan: SongPlan, root: str | os.PathLike[str], duration_s: float, sr: int
) -> dict[str, Any]:
    """Render one planned song's stems into ``root/<song>/...`` and return its record."""
    t_start = time.perf_counter()
    rng = np.random.default_rng(plan.seed)
    score = load_score(plan.piece.corpus)
    parse_s = time.perf_counter() - t_start
    spq = 60.0 / plan.bpm  # seconds per quarter note
    n_samples = int(round(duration_s * sr))
    n_loops = max(1, math.ceil((duration_s + 1.0) / (score.total_ql * spq)))
    parts, bars = looped(score, n_loops)
    sf2 = soundfont_path()

    waves = []
    played: dict[str, list[str]] = {}
    for stem in plan.stems:  # fixed order, one generator: same seed, same notes
        if stem.role == "drums":
            events = drum_events(stem, bars, spq, plan.fill_every, rng)
        elif stem.role == "perc":
            events = perc_events(stem, bars, spq, rng)
        else:
            events = pitched_events(stem, parts, bars, spq, plan.transpose, rng)
        wave = render_events(events, stem.program, n_samples, sr, sf2)
        rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        if rms < 1e-6 and stem.program is not None:
            # Its parts rest through this short excerpt: play the whole score instead, so
            # no stem file is silence.
            stem = replace(stem, parts=("melody", "inner", "bass"))
            events = pitched_events(stem, parts, bars, spq, plan.transpose, rng)
            wave = render_events(events, stem.program, n_samples, sr, sf2)
            rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        if rms < 1e-6:
            raise RuntimeError(f"{plan.name}: stem {stem.relpath} rendered silent")
        played[stem.relpath] = list(stem.parts)
        g_l, g_r = pan_gains(stem.pan)
        wave *= np.array([[g_l], [g_r]], np.float32) * np.float32(10 ** (stem.level_db / 20) / rms)
        waves.append(wave)

    # One gain for the whole song: the mix peaks at plan.peak_dbfs, relative levels stay.
    fade = np.ones(n_samples, np.float32)
    n_fade = min(int(1.0 * sr), n_samples // 4)
    fade[n_samples - n_fade :] = np.linspace(1.0, 0.0, n_fade, dtype=np.float32) ** 2
    mix = np.sum(waves, axis=0) * fade
    peak = max(float(np.abs(mix).max()), max(float(np.abs(w).max()) for w in waves))
    gain = np.float32(10 ** (plan.peak_dbfs / 20) / peak)
    song_dir = Path(root) / plan.name
    for stem, wave in zip(plan.stems, waves, strict=True):
        # 16-bit like most multitrack sessions: half the disk of 24-bit, far below the SoundFont's noise
        save_audio(song_dir / stem.relpath, wave * fade * gain, sr, subtype="PCM_16")
    return {
        "song": plan.name,
        "parse_s": round(parse_s, 3),
        "render_s": round(time.perf_counter() - t_start, 3),
        "time_signature": score.time_signature,
        "loops": n_loops,
        "parts": played,
    }
