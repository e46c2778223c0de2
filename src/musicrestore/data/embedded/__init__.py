"""The embedded default dataset: a RawStems-layout stand-in rendered offline.

RawStems (seed 004, §3) cannot be downloaded where the pipeline must run offline, so
``dvc repro`` builds this instead: real compositions from the ``music21`` corpus (Bach
chorales, Mozart and Haydn string quartets, Corelli) arranged for a
band and rendered part by part with the General MIDI SoundFont ``TimGM6mb.sf2`` that ships
with ``pretty_midi`` (sampled instruments, rendered in-process by ``tinysoundfont``).

Each song is one piece with its own seeded arrangement: tempo (70-140 BPM), key
(transposed up to ±5 semitones), which stem groups play, which GM program plays each stem,
how it plays (as written, strummed, arpeggiated, block chords, pulsed bass), pan and level.
The top part is the melody (a voice patch when the song has vocals), the lowest part is the
bass line transposed into bass range, the inner parts are the harmony, and a drum kit part
is *generated* to fit the piece's meter and tempo (kick/snare/hat patterns with seeded
variation, fills at phrase ends, crashes after them). Every stem is one stereo FLAC::

    <root>/<Composer>|<work>_<nn>/<Group>/<SubGroup>/<instrument>.flac   (44.1 kHz, 16 bit)
    <root>/<Composer>|<work>_<nn>/Bass/<instrument>.flac                 (no sub-group)

plus ``README.txt`` and ``dataset.json`` (seed, per-song instrumentation) at the root.

This is a STAND-IN: it has RawStems' layout and taxonomy, not its sound. Sampled GM
instruments are cleaner and more uniform than real recordings, the voices are choir
patches that sing vowels, and no two stems bleed into each other. Results on it are a
pipeline check, not a research result; every report must say so (docs/method.md#embedded).

Modules: :mod:`.catalogue` (pieces; GM programs -> taxonomy), :mod:`.arrangement` (song
plans, score reduction, note events), :mod:`.render` (SoundFont rendering of one song),
:mod:`.build` (:func:`build_embedded`: the whole dataset, its stats and README).
"""

from __future__ import annotations

from .arrangement import (
    Bar,
    Event,
    Score,
    SongPlan,
    StemPlan,
    drum_events,
    load_score,
    looped,
    perc_events,
    pitched_events,
    plan_songs,
)
from .build import build_embedded
from .catalogue import (
    DRUM_BANK,
    DRUM_CHANNEL,
    DRUM_KIT,
    GM_MAP,
    MAX_STEMS,
    PIECES,
    PROGRAM_NAMES,
    PROGRAMS,
    RANGES,
    SLOTS,
    Piece,
)
from .render import pan_gains, render_events, render_song, soundfont_path

__all__ = [
    "DRUM_BANK",
    "DRUM_CHANNEL",
    "DRUM_KIT",
    "GM_MAP",
    "MAX_STEMS",
    "PIECES",
    "PROGRAMS",
    "PROGRAM_NAMES",
    "RANGES",
    "SLOTS",
    "Bar",
    "Event",
    "Piece",
    "Score",
    "SongPlan",
    "StemPlan",
    "build_embedded",
    "drum_events",
    "load_score",
    "looped",
    "pan_gains",
    "perc_events",
    "pitched_events",
    "plan_songs",
    "render_events",
    "render_song",
    "soundfont_path",
]
