"""The embedded default dataset: a RawStems-layout stand-in rendered offline (SPEC §2).

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
pipeline check, not a research result; every report must say so.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .audio import save_audio
from .stage import StageError, output_dir
from .taxonomy import GROUPS, TAXONOMY

log = logging.getLogger(__name__)

#: GM percussion channel (0-based 9 = MIDI channel 10) and the SF2 bank of drum kits.
DRUM_CHANNEL = 9
DRUM_BANK = 128
#: The drum kit is no GM program: it is whatever plays on the percussion channel.
DRUM_KIT = ("Rhy", "DK")

# fmt: off
#: General MIDI program (0-based) -> RawStems (group, sub-group); one table for all 128.
#: Sub-group equals the group for groups without sub-groups (Synth, Bass, Misc), as in
#: :func:`musicrestore.taxonomy.stem_from_relpath`. GM has no mellotron, so ``Kbs/MTR`` has
#: no program; chromatic percussion, ethnic instruments and sound effects go to ``Misc``
#: (never a restoration target) and percussive programs to ``Rhy/PERC``. A voice patch's
#: sub-group here is its usual job; the arrangement decides (the melody is always LV).
GM_MAP: dict[int, tuple[str, str]] = {
    **{p: ("Kbs", "PN") for p in (0, 1, 2, 3, 6)},        # pianos, honky-tonk, harpsichord
    **{p: ("Kbs", "EP") for p in (4, 5, 7)},              # electric pianos, clavinet
    **{p: ("Misc", "Misc") for p in range(8, 16)},        # chromatic percussion
    **{p: ("Kbs", "OR") for p in range(16, 21)},          # organs
    **{p: ("Misc", "Misc") for p in range(21, 24)},       # accordion, harmonica, bandoneon
    **{p: ("Gtr", "AG") for p in (24, 25)},               # nylon, steel string
    **{p: ("Gtr", "EG") for p in range(26, 32)},          # jazz, clean, muted, overdrive...
    **{p: ("Bass", "Bass") for p in range(32, 40)},       # acoustic, electric, synth basses
    **{p: ("Orch", "STR") for p in range(40, 52)},        # solo strings, ensembles, harp
    52: ("Voc", "GV"),                                    # choir aahs: a group of voices
    53: ("Voc", "BV"),                                    # voice oohs: backing "oohs"
    54: ("Voc", "LV"),                                    # synth voice: a solo line
    **{p: ("Misc", "Misc") for p in (55,)},               # orchestra hit
    **{p: ("Orch", "BR") for p in range(56, 64)},         # trumpets, trombone, horns, brass
    **{p: ("Orch", "WW") for p in range(64, 80)},         # saxes, reeds, pipes
    **{p: ("Synth", "Synth") for p in range(80, 104)},    # leads, pads, synth effects
    **{p: ("Misc", "Misc") for p in range(104, 112)},     # sitar, banjo, koto, bagpipe...
    **{p: ("Rhy", "PERC") for p in range(112, 120)},      # bells, agogo, taiko, toms...
    **{p: ("Misc", "Misc") for p in range(120, 128)},     # sound effects
}

#: The programs the arranger actually picks, per stem kind: GM_MAP says where a program
#: belongs; this says which ones sound right in each job (no guitar harmonics as a lead).
PROGRAMS: dict[str, tuple[int, ...]] = {
    "Voc_LV": (52, 53, 54), "Voc_BV": (53, 52), "Voc_GV": (52, 53),
    "Gtr_AG": (24, 25), "Gtr_EG": (26, 27, 28, 29, 30),
    "Kbs_PN": (0, 1, 2), "Kbs_EP": (4, 5), "Kbs_OR": (16, 17, 18, 19),
    "Orch_STR": (48, 49, 44), "Orch_STR_lead": (40, 41), "Orch_BR": (56, 57, 60, 61),
    "Orch_WW": (64, 65, 66, 68, 71, 73),
    "Synth_lead": (80, 81, 82, 84, 85, 87), "Synth_pad": (88, 89, 90, 91, 92, 94, 95),
    "Bass": (32, 33, 34, 35, 38, 39),
}

#: Comfortable MIDI pitch range per stem kind; a stem is moved by octaves into it.
RANGES: dict[str, tuple[int, int]] = {
    "Voc_LV": (57, 81), "Voc_BV": (50, 76), "Voc_GV": (50, 76),
    "Gtr_AG": (40, 79), "Gtr_EG": (40, 84),
    "Kbs_PN": (36, 88), "Kbs_EP": (40, 84), "Kbs_OR": (36, 84),
    "Orch_STR": (36, 91), "Orch_BR": (40, 82), "Orch_WW": (55, 91),
    "Synth": (45, 88), "Bass": (28, 55),
}

#: Voiced notes of harmony textures, per kind: a guitar has six strings.
MAX_VOICES: dict[str, int] = {"Gtr": 6, "Kbs": 6}

#: Stem level (RMS, dB) by job, before the song is normalised: a lead sits above the band.
LEVEL_DB: dict[str, float] = {
    "lead": -17.0, "voices": -23.0, "harmony": -22.0, "bass": -19.0, "drums": -18.0,
    "perc": -26.0,
}

#: GM drum notes.
KICK, SNARE, HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 46, 49, 51
TOMS = (50, 48, 47, 45, 43, 41)  # high to low
# fmt: on

#: Slots a song draws its stems from; the guitars are separate slots because ``Gtr_AG`` and
#: ``Gtr_EG`` are restoration targets of their own and each needs songs to train on.
SLOTS: tuple[str, ...] = ("Voc", "Rhy", "Gtr_AG", "Gtr_EG", "Kbs", "Orch", "Synth", "Bass")
#: Slots per song (inclusive); a second voice or percussion stem can add one more file,
#: never past MAX_STEMS.
SLOTS_PER_SONG = (4, 6)
MAX_STEMS = 7
#: Hand-percussion kits of ``Rhy/PERC`` stems.
PERC_KITS = ("tambourine", "shaker", "congas", "clave")


@dataclass(frozen=True)
class Piece:
    """A work of the music21 corpus: ``corpus`` is its corpus path, ``work`` a short id."""

    corpus: str
    artist: str
    work: str


def _chorales(bwv_numbers: str) -> tuple[Piece, ...]:
    return tuple(Piece(f"bach/bwv{b}", "Bach", f"bwv{b}") for b in bwv_numbers.split())


#: The pool songs are drawn from: pieces that parse in about a second or less, have three
#: to five parts, a clear top line and every part playing from the start. Chorales dominate
#: (homophonic, like a song); quartets bring 3/4, 3/8, 6/8, 2/4 and busier lines.
#: (Madrigals were tried: their imitative entries leave the bass silent for a minute.)
PIECES: tuple[Piece, ...] = (
    *_chorales(
        "66.6 1.6 111.6 127.5 14.5 151.5 158.4 169.7 178.7 188.6 197.7-a 229.2 244.37 245.17 "
        "248.46-5 259 267 269 275 283 291 3.6 307 315 323 331 340 349 358 365 373 381 39.7 "
        "398 403 411 42.7 428 436 5.7 64.2 88.7 96.6"
    ),
    Piece("mozart/k80/movement1", "Mozart", "k80-1"),
    Piece("mozart/k80/movement3", "Mozart", "k80-3"),
    Piece("mozart/k156/movement1", "Mozart", "k156-1"),
    Piece("mozart/k155/movement2", "Mozart", "k155-2"),
    Piece("haydn/opus1no1/movement1", "Haydn", "op1no1-1"),
    Piece("haydn/opus1no1/movement3", "Haydn", "op1no1-3"),
    Piece("mozart/k156/movement2", "Mozart", "k156-2"),
    Piece("mozart/k458/movement3", "Mozart", "k458-3"),
    Piece("haydn/opus1no1/movement5", "Haydn", "op1no1-5"),
    Piece("corelli/opus3no1/1grave", "Corelli", "op3no1-1"),
)


@dataclass
class StemPlan:
    """One stem of a song: what plays, which parts, how, where and how loud.

    Attributes:
        group, subgroup: RawStems place (``subgroup == group`` for Synth/Bass).
        name: file stem (``choir_aahs``).
        program: GM program (0-based); ``None`` for percussion-channel stems.
        role: ``lead`` | ``voices`` | ``harmony`` | ``bass`` | ``drums`` | ``perc``.
        parts: score parts played (``melody``, ``inner``, ``bass``); empty for drums.
        texture: ``written`` | ``sustain`` | ``strum`` | ``arpeggio`` | ``comp`` | ``pulse``
            for pitched stems; the drum style (``straight``, ``halftime``) or percussion kit.
        pan: -1 (left) .. +1 (right), constant-power.
        level_db: RMS level before the song's common gain.
        velocity: base MIDI velocity; each note is humanised around it.
    """

    group: str
    subgroup: str
    name: str
    program: int | None
    role: str
    parts: tuple[str, ...] = ()
    texture: str = "written"
    pan: float = 0.0
    level_db: float = -20.0
    velocity: int = 90

    @property
    def relpath(self) -> str:
        sub = "" if self.subgroup == self.group else f"{self.subgroup}/"
        return f"{self.group}/{sub}{self.name}.flac"

    @property
    def kind(self) -> str:
        """Key into :data:`PROGRAMS`/:data:`RANGES`: ``Gtr_AG``, ``Synth``, ``Bass``."""
        return self.group if self.subgroup == self.group else f"{self.group}_{self.subgroup}"


@dataclass
class SongPlan:
    """Everything random about one song, drawn before any audio is rendered."""

    index: int
    seed: int  # the song's own seed: rendering draws from it only
    piece: Piece
    bpm: float
    transpose: int  # semitones
    stems: list[StemPlan] = field(default_factory=list)
    fill_every: int = 4  # drum fill every this many bars
    peak_dbfs: float = -1.0  # peak of the song mix after normalisation

    @property
    def name(self) -> str:
        return f"{self.piece.artist}|{self.piece.work}_{self.index:02d}"


# ---------------------------------------------------------------------------- planning


def plan_songs(
    n_songs: int,
    seed: int = 0,
    bpm_range: tuple[float, float] = (70.0, 140.0),
    max_transpose: int = 5,
) -> list[SongPlan]:
    """Draw the arrangement of every song (no audio): deterministic for ``seed``.

    Song ``i`` depends only on ``seed`` and the songs before it, so asking for more songs
    never changes the first ones. Slots are drawn least-used first (with seeded jitter),
    which keeps every target group in about the same number of songs.
    """
    if n_songs < 1:
        raise ValueError(f"n_songs must be >= 1, got {n_songs}")
    order = np.random.default_rng(seed).permutation(len(PIECES))
    counts = dict.fromkeys(SLOTS, 0)
    plans = []
    for i in range(n_songs):
        rng = np.random.default_rng([seed, i])
        piece = PIECES[int(order[i % len(PIECES)])]
        n_slots = int(rng.integers(SLOTS_PER_SONG[0], SLOTS_PER_SONG[1] + 1))
        ranked = sorted(SLOTS, key=lambda s: counts[s] + rng.uniform(0.0, 2.0))
        slots = ranked[:n_slots]
        for s in slots:
            counts[s] += 1
        plans.append(
            SongPlan(
                index=i,
                seed=int(np.random.default_rng([seed, i, 1]).integers(2**31)),
                piece=piece,
                bpm=float(round(rng.uniform(*bpm_range))),
                transpose=int(rng.integers(-max_transpose, max_transpose + 1)),
                stems=_arrange(slots, rng),
                fill_every=int(rng.choice([4, 4, 8])),
                peak_dbfs=float(round(rng.uniform(-3.0, -1.0), 2)),
            )
        )
    return plans


def _arrange(slots: list[str], rng: np.random.Generator) -> list[StemPlan]:
    """Turn chosen slots into stems: who leads, who harmonises, how each one plays."""
    stems: list[StemPlan] = []

    def pick(options: tuple[Any, ...]) -> Any:
        return options[int(rng.integers(len(options)))]

    def pitched(kind: str, role: str, texture: str, programs: tuple[int, ...]) -> StemPlan:
        # The sub-group comes from the job, not the patch: the melody is LV whichever voice
        # patch sings it (GM_MAP gives the patch's usual place).
        program = int(pick(programs))
        group, _, sub = kind.partition("_")
        name = _slug(PROGRAM_NAMES[program])
        return StemPlan(group, sub or group, name, program, role, texture=texture)

    # The lead: a singer when there are vocals, else the most melodic instrument present.
    lead_slot = "Voc" if "Voc" in slots else None
    if lead_slot is None:
        for cand in ("Synth", "Orch", "Gtr_EG", "Kbs", "Gtr_AG"):
            if cand in slots and rng.uniform() < 0.8:
                lead_slot = cand
                break
        lead_slot = lead_slot or next(s for s in SLOTS if s in slots and s not in ("Rhy", "Bass"))
    if "Voc" in slots:
        stems.append(pitched("Voc_LV", "lead", "written", PROGRAMS["Voc_LV"]))

    for slot in SLOTS:  # fixed order: the plan does not depend on how slots were ranked
        if slot not in slots or slot in ("Voc", "Rhy", "Bass"):
            continue
        lead = slot == lead_slot
        role = "lead" if lead else "harmony"
        if slot == "Gtr_AG":
            tex = "written" if lead else pick(("strum", "strum", "arpeggio"))
            stems.append(pitched("Gtr_AG", role, tex, PROGRAMS["Gtr_AG"]))
        elif slot == "Gtr_EG":
            tex = "written" if lead else pick(("arpeggio", "strum", "sustain"))
            stems.append(pitched("Gtr_EG", role, tex, PROGRAMS["Gtr_EG"]))
        elif slot == "Kbs":
            sub = pick(("PN", "PN", "EP", "OR"))
            textures = {"PN": ("comp", "arpeggio", "sustain"), "EP": ("comp", "sustain")}
            tex = "written" if lead else pick(textures.get(sub, ("sustain",)))
            stems.append(pitched(f"Kbs_{sub}", role, tex, PROGRAMS[f"Kbs_{sub}"]))
        elif slot == "Orch":
            sub = pick(("STR", "STR", "BR", "WW"))
            solo = lead and sub == "STR"
            progs = PROGRAMS["Orch_STR_lead"] if solo else PROGRAMS[f"Orch_{sub}"]
            stems.append(pitched(f"Orch_{sub}", role, "written" if lead else "sustain", progs))
        elif slot == "Synth":
            progs = PROGRAMS["Synth_lead"] if lead else PROGRAMS["Synth_pad"]
            stems.append(pitched("Synth", role, "written" if lead else "sustain", progs))

    to_come = ("Bass" in slots) + ("Rhy" in slots)
    if "Voc" in slots and len(stems) + to_come < MAX_STEMS and rng.uniform() < 0.5:
        sub = pick(("BV", "GV"))
        stems.append(pitched(f"Voc_{sub}", "voices", "sustain", PROGRAMS[f"Voc_{sub}"]))
    if "Bass" in slots:
        stems.append(pitched("Bass", "bass", pick(("written", "pulse")), PROGRAMS["Bass"]))
    if "Rhy" in slots:
        style = pick(("straight", "straight", "halftime"))
        stems.append(StemPlan("Rhy", "DK", "drum_kit", None, "drums", texture=style))
        if len(stems) < MAX_STEMS and rng.uniform() < 0.4:
            kit = pick(PERC_KITS)
            stems.append(StemPlan("Rhy", "PERC", kit, None, "perc", texture=kit))

    # Parts: the lead plays the melody, harmony the inner parts; when no bass stem plays the
    # bass line an instrument (not a voice, if there is one) takes it, so the harmony stays
    # complete. Chord textures are voiced from the bass up, as a player would.
    harmony = sorted(
        (s for s in stems if s.role in ("harmony", "voices")), key=lambda s: s.role != "harmony"
    )
    for s in stems:
        if s.role == "lead":
            s.parts = ("melody",) if harmony else ("melody", "inner")
        elif s.role in ("harmony", "voices"):
            s.parts = ("inner",)
        elif s.role == "bass":
            s.parts = ("bass",)
    if "Bass" not in slots:
        taker = harmony[0] if harmony else next(s for s in stems if s.role == "lead")
        taker.parts += ("bass",)
    for s in stems:
        if s.texture in ("strum", "arpeggio", "comp") and "bass" not in s.parts:
            s.parts += ("bass",)

    # Pan and level: lead, bass and drums centred; the rest spread across the field.
    spread = [float(x) for x in rng.permutation([-0.7, -0.45, -0.25, 0.25, 0.45, 0.7])]
    for s in stems:
        centre = 0.0 if s.role in ("lead", "bass", "drums") else spread.pop()
        s.pan = round(centre + float(rng.uniform(-0.1, 0.1)), 3)
        s.level_db = round(LEVEL_DB[s.role] + float(rng.uniform(-2.0, 2.0)), 2)
        s.velocity = int(rng.integers(78, 104))
    seen: dict[str, int] = {}
    for s in stems:  # two stems with one instrument in one folder keep distinct files
        seen[s.relpath] = seen.get(s.relpath, 0) + 1
        if seen[s.relpath] > 1:
            s.name = f"{s.name}_{seen[s.relpath]}"
    return stems


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


#: GM instrument names (the standard list), for file names and the README.
# fmt: off
PROGRAM_NAMES: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
    "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion",
    "Harmonica", "Tango Accordion", "Nylon Guitar", "Steel Guitar", "Jazz Guitar", "Clean Guitar",
    "Muted Guitar", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass",
    "Finger Bass", "Pick Bass", "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1",
    "Synth Bass 2", "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings",
    "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1", "String Ensemble 2",
    "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs", "Synth Voice",
    "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn",
    "Brass Section", "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax",
    "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute", "Recorder",
    "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina", "Square Lead",
    "Sawtooth Lead", "Calliope Lead", "Chiff Lead", "Charang Lead", "Voice Lead", "Fifths Lead",
    "Bass and Lead", "New Age Pad", "Warm Pad", "Polysynth Pad", "Choir Pad", "Bowed Pad",
    "Metallic Pad", "Halo Pad", "Sweep Pad", "Rain", "Soundtrack", "Crystal", "Atmosphere",
    "Brightness", "Goblins", "Echoes", "Sci-fi", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba",
    "Bagpipe", "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise",
    "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)
# fmt: on


# ---------------------------------------------------------------------------- the score


@dataclass
class Bar:
    """One measure in quarter lengths: where it starts, its nominal length, the beat."""

    start_ql: float
    bar_ql: float  # nominal length from the time signature
    phase_ql: float  # where in the nominal bar the measure starts (pickups start late)
    length_ql: float  # actual length (pickups and final bars are short)
    beat_ql: float
    n_beats: int
    compound: bool


@dataclass
class Score:
    """A piece reduced to what the arranger needs: notes per role, bars, total length."""

    parts: dict[str, list[tuple[float, float, int]]]  # role -> [(onset_ql, dur_ql, midi)]
    bars: list[Bar]
    total_ql: float
    time_signature: str


def load_score(corpus_path: str) -> Score:
    """Parse a music21 corpus work into melody / inner / bass notes and its bar grid.

    Parsed from source every time (``forceSource``): music21 would otherwise write pickles
    to its scratch folder, a cache outside the output. Chorales with instrumental doubling
    parts (horns, oboes) keep their four voices only.
    """
    from music21 import converter, corpus

    score: Any = converter.parse(corpus.getWork(corpus_path), forceSource=True, storePickle=False)
    parts = list(score.parts)
    voices = {p.partName: p for p in parts}
    if all(v in voices for v in ("Soprano", "Alto", "Tenor", "Bass")):
        parts = [voices[v] for v in ("Soprano", "Alto", "Tenor", "Bass")]
    notes = [_part_notes(p) for p in parts]
    notes = [n for n in notes if n]
    if len(notes) < 3:
        raise ValueError(f"{corpus_path}: needs 3+ parts with notes, has {len(notes)}")
    roles = {
        "melody": notes[0],
        "inner": sorted(x for n in notes[1:-1] for x in n),
        "bass": notes[-1],
    }

    bars = []
    ts = None
    for k, m in enumerate(parts[0].getElementsByClass("Measure")):
        ts = m.timeSignature or ts or m.getContextByClass("TimeSignature")
        bar_ql = float(ts.barDuration.quarterLength)
        length = float(m.duration.quarterLength)
        phase = bar_ql - length if k == 0 and length < bar_ql else 0.0  # a pickup
        bars.append(
            Bar(
                start_ql=float(m.offset),
                bar_ql=bar_ql,
                phase_ql=phase,
                length_ql=length,
                beat_ql=float(ts.beatDuration.quarterLength),
                n_beats=int(ts.beatCount),
                compound=int(ts.beatDivisionCount) == 3,
            )
        )
    total = max(b.start_ql + b.length_ql for b in bars)
    return Score(roles, bars, total, ts.ratioString if ts else "4/4")


def _part_notes(part: Any) -> list[tuple[float, float, int]]:
    out: list[tuple[float, float, int]] = []
    for n in part.stripTies().flatten().notes:
        dur = float(n.quarterLength)
        if dur <= 0:  # grace notes: ornaments the arrangement can do without
            continue
        out.extend((float(n.offset), dur, int(p.midi)) for p in n.pitches)
    return sorted(out)


# ---------------------------------------------------------------------------- arranging

# A note event: (onset_s, duration_s, midi key, velocity).
Event = tuple[float, float, int, int]


def _looped(
    score: Score, n_loops: int
) -> tuple[dict[str, list[tuple[float, float, int]]], list[Bar]]:
    """The piece repeated ``n_loops`` times: parts and bars shifted by its length."""
    parts = {
        role: [(on + k * score.total_ql, d, p) for k in range(n_loops) for on, d, p in notes]
        for role, notes in score.parts.items()
    }
    bars = [
        replace(b, start_ql=b.start_ql + k * score.total_ql)
        for k in range(n_loops)
        for b in score.bars
    ]
    return parts, bars


def _octave_shift(pitches: list[int], lo: int, hi: int) -> int:
    """The octave shift (semitones) that puts the most pitches inside ``[lo, hi]``."""
    if not pitches:
        return 0
    arr = np.asarray(pitches)
    best = min(
        range(-3, 4), key=lambda k: (np.sum((arr + 12 * k < lo) | (arr + 12 * k > hi)), abs(k))
    )
    return 12 * best


def _fold(pitch: int, lo: int, hi: int) -> int:
    """Move one pitch by octaves into ``[lo, hi]`` (chord voicing)."""
    while pitch < lo:
        pitch += 12
    while pitch > hi:
        pitch -= 12
    return pitch


def _pitched_events(
    stem: StemPlan,
    parts: dict[str, list[tuple[float, float, int]]],
    bars: list[Bar],
    spq: float,
    transpose: int,
    rng: np.random.Generator,
) -> list[Event]:
    """Notes of one pitched stem, in seconds, after transposition and octave placement."""
    lo, hi = RANGES.get(stem.kind, RANGES.get(stem.group, (36, 88)))
    notes = sorted(x for role in stem.parts for x in parts[role])
    notes = [(on, d, p + transpose) for on, d, p in notes]
    if stem.role == "bass" or stem.parts == ("bass",):
        shift = _octave_shift([p for _, _, p in notes], lo, hi)
    else:  # place by the part that carries the stem, not by the borrowed bass line
        main = [p + transpose for role in stem.parts if role != "bass" for _, _, p in parts[role]]
        shift = _octave_shift(main, lo, hi)
    notes = [(on, d, p + shift) for on, d, p in notes]
    vel = stem.velocity

    def human(v: float) -> int:
        return int(np.clip(round(v + rng.normal(0.0, 5.0)), 20, 127))

    def jitter() -> float:
        return float(rng.normal(0.0, 0.004))  # a player is a few ms off the grid

    events: list[Event] = []
    if stem.texture in ("written", "sustain"):
        legato = 0.92 if stem.texture == "written" else 1.0  # re-articulate repeated notes
        for on, d, p in notes:
            t = max(0.0, on * spq + jitter())
            events.append((t, d * spq * legato, p, human(vel)))
        return events
    if stem.texture == "pulse":  # bass re-striking the written note on a steady grid
        step_ql = 0.5 if 60.0 / spq < 110 else 1.0
        for on, d, p in notes:
            k = 0.0
            while k < d - 1e-6:
                accent = 8 if (on + k) % 1.0 < 1e-6 else 0
                events.append(
                    (
                        max(0.0, (on + k) * spq + jitter()),
                        min(step_ql, d - k) * spq * 0.85,
                        p,
                        human(vel - 8 + accent),
                    )
                )
                k += step_ql
        return events

    # Chord textures: strike the sounding harmony on a grid.
    onsets = np.array([on for on, _, _ in notes])
    ends = np.array([on + d for on, d, _ in notes])
    pitches = np.array([p for _, _, p in notes])
    step_ql = {"strum": 0.5, "arpeggio": 0.5, "comp": 1.0}[stem.texture]
    if stem.texture == "arpeggio" and 60.0 / spq < 90:
        step_ql = 0.25
    pattern = _strum_pattern(rng) if stem.texture == "strum" else None
    max_voices = MAX_VOICES.get(stem.group, 4)
    arp_i = 0
    for bar in bars:
        step = step_ql * (1.5 if bar.compound and stem.texture == "comp" else 1.0)
        x = math.ceil(bar.phase_ql / step - 1e-9) * step
        while x < bar.phase_ql + bar.length_ql - 1e-6:
            g = bar.start_ql + x - bar.phase_ql
            idx = int(round(x / step))
            sounding = pitches[(onsets <= g + 1e-6) & (ends > g + 1e-6)]
            chord = sorted({_fold(int(p), lo, hi) for p in sounding})[-max_voices:]
            dur = step * spq
            on_beat = abs(x / bar.beat_ql - round(x / bar.beat_ql)) < 1e-6
            if chord and stem.texture == "strum" and pattern is not None:
                hit = pattern[idx % len(pattern)]
                if hit != ".":  # "." is a missed stroke
                    down = hit == "D"
                    order = chord if down else chord[::-1]
                    t0 = g * spq + jitter()
                    for j, p in enumerate(order):  # a strum: strings a few ms apart
                        v = human(vel - (0 if down else 12) - 2 * j)
                        events.append((max(0.0, t0 + 0.012 * j), dur * 1.8, p, v))
            elif chord and stem.texture == "arpeggio":
                p = chord[arp_i % len(chord)]
                arp_i += 1
                events.append(
                    (
                        max(0.0, g * spq + jitter()),
                        dur * 2.0,
                        p,
                        human(vel - (0 if on_beat else 10)),
                    )
                )
            elif chord and stem.texture == "comp":
                t0 = g * spq + jitter()
                for p in chord:
                    events.append(
                        (max(0.0, t0), dur * 0.9, p, human(vel - (0 if idx % 2 == 0 else 8)))
                    )
            x += step
    return events


def _strum_pattern(rng: np.random.Generator) -> str:
    """Down/up strokes on eighths (``D``, ``U``, ``.`` for a miss), one pattern per song."""
    return ("DDUUDU..", "D.DUDUDU", "D.D.DUDU", "DUDUDUDU", "D..UD.DU")[int(rng.integers(5))]


def _drum_events(
    stem: StemPlan, bars: list[Bar], spq: float, fill_every: int, rng: np.random.Generator
) -> list[Event]:
    """A drum kit part generated for the piece's meter and tempo.

    Kick on the downbeat (and mid-bar in 4), snare on the backbeats (beat 3 only in
    half-time; beats 2 and 3 softly in 3), hats on eighths (sixteenths when slow, triplets
    in compound meters), seeded extra kicks, ghost notes and open hats, a snare/tom fill
    ending every ``fill_every``-th bar, a crash after each fill and a lead-in on pickups.
    """
    bpm = 60.0 / spq
    sub = 3 if bars[0].compound else (4 if bpm < 85 and rng.uniform() < 0.5 else 2)
    ride = bool(rng.uniform() < 0.2)
    events: list[Event] = []

    def hit(t_ql: float, key: int, v: float, dur_ql: float = 1.0) -> None:
        # Held about a beat: the kit's samples decay on their own; an early note-off would
        # choke them.
        t = max(0.0, t_ql * spq + float(rng.normal(0.0, 0.002)))
        vel = int(np.clip(round(v + rng.normal(0.0, 5.0)), 15, 127))
        events.append((t, dur_ql * spq, key, vel))

    crash_next = True
    full_bars = 0
    for bar in bars:
        n, beat = bar.n_beats, bar.beat_ql
        origin = bar.start_ql - bar.phase_ql  # where the nominal bar would start
        lo, hi = bar.phase_ql, bar.phase_ql + bar.length_ql
        if bar.phase_ql > 0:  # pickup: a snare lead-in over its last beat
            if rng.uniform() < 0.6:
                span = min(beat, bar.length_ql)
                k_steps = int(round(span / 0.25))
                for j in range(k_steps):
                    hit(origin + hi - span + 0.25 * j, SNARE, 60 + 30 * j / max(k_steps - 1, 1))
            crash_next = True
            continue
        full_bars += 1
        fill = full_bars % fill_every == 0 and bar.length_ql >= bar.bar_ql - 1e-6
        fill_from = hi
        if fill:
            fill_from = hi - beat * (2 if rng.uniform() < 0.35 else 1)
        if crash_next:
            hit(origin + lo, CRASH, 100, 4.0)
            crash_next = False
        halftime = stem.texture == "halftime" and n == 4
        for b in range(n):
            x = b * beat
            if not lo - 1e-6 <= x < fill_from - 1e-6:
                continue
            kick = b == 0 or (n >= 4 and b == n // 2 and not halftime)
            snare = b > 0 if n == 3 else (b == 2 if halftime else b % 2 == 1)
            if kick:
                hit(origin + x, KICK, 105)
            if snare:
                hit(origin + x, SNARE, 70 if n == 3 else 100)
            for s in range(sub):  # hats / ride subdivisions
                xs = x + s * beat / sub
                if xs >= fill_from - 1e-6:
                    break
                last = xs + beat / sub >= bar.bar_ql - 1e-6
                key = RIDE if ride else (OPEN_HAT if last and rng.uniform() < 0.25 else HAT)
                hit(origin + xs, key, 88 if s == 0 else 62)
                if s > 0 and not snare and rng.uniform() < 0.08:
                    hit(origin + xs, SNARE, 32)  # ghost note
            if not kick and not snare and rng.uniform() < 0.3:
                hit(origin + x + beat / 2, KICK, 85)  # a push into the next beat
        if fill:
            step = beat / 3 if bar.compound else 0.25
            k_steps = int(round((hi - fill_from) / step))
            toms = [SNARE, *TOMS] if rng.uniform() < 0.5 else list(TOMS)
            for j in range(k_steps):
                key = toms[min(len(toms) - 1, j * len(toms) // k_steps)]
                hit(origin + fill_from + j * step, key, 75 + 30 * j / max(k_steps - 1, 1))
            crash_next = True
    return events


def _perc_events(
    stem: StemPlan, bars: list[Bar], spq: float, rng: np.random.Generator
) -> list[Event]:
    """Hand percussion on the bar grid: tambourine, shaker, congas or clave and cowbell."""
    events: list[Event] = []

    def hit(t_ql: float, key: int, v: float) -> None:
        t = max(0.0, t_ql * spq + float(rng.normal(0.0, 0.003)))
        vel = int(np.clip(round(v + rng.normal(0.0, 6.0)), 15, 127))
        events.append((t, 0.5 * spq, key, vel))

    conga = (63, 62, 64, 63, 62, 64, 62, 63)  # open hi, mute hi, low: a tumbao-like cycle
    for bar in bars:
        if bar.phase_ql > 0:
            continue
        n, beat = bar.n_beats, bar.beat_ql
        grid = {  # (position in beats, GM key, velocity)
            "tambourine": [
                (b + h, 54, (95 if b % 2 or n == 3 else 60) if h == 0 else 48)
                for b in range(n)
                for h in (0.0, 0.5)
            ],
            "shaker": [(b + q / 4, 70, 80 if q == 2 else 50) for b in range(n) for q in range(4)],
            "congas": [
                (b + h / 2, conga[(2 * b + h) % 8], 85 if h == 0 else 65)
                for b in range(n)
                for h in range(2)
            ],
            "clave": [(0.0, 75, 92), (n * 0.375, 75, 85), (n * 0.75, 75, 85)]
            + [(float(b), 56, 55) for b in range(n)],
        }[stem.texture]
        for pos, key, vel in grid:
            if pos * beat < bar.length_ql - 1e-6:
                hit(bar.start_ql + pos * beat, key, vel)
    return events


# ---------------------------------------------------------------------------- rendering


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
    parts, bars = _looped(score, n_loops)
    sf2 = soundfont_path()

    waves = []
    played: dict[str, list[str]] = {}
    for stem in plan.stems:  # fixed order, one generator: same seed, same notes
        if stem.role == "drums":
            events = _drum_events(stem, bars, spq, plan.fill_every, rng)
        elif stem.role == "perc":
            events = _perc_events(stem, bars, spq, rng)
        else:
            events = _pitched_events(stem, parts, bars, spq, plan.transpose, rng)
        wave = render_events(events, stem.program, n_samples, sr, sf2)
        rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
        if rms < 1e-6 and stem.program is not None:
            # Its parts rest through this short excerpt: play the whole score instead, so
            # no stem file is silence.
            stem = replace(stem, parts=("melody", "inner", "bass"))
            events = _pitched_events(stem, parts, bars, spq, plan.transpose, rng)
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


def _render_job(args: tuple[SongPlan, str, float, int]) -> dict[str, Any]:
    return render_song(*args)


# ---------------------------------------------------------------------------- building


def build_embedded(
    out_root: str | os.PathLike[str],
    n_songs: int = 24,
    duration_s: float = 30.0,
    sr: int = 44100,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    bpm_range: tuple[float, float] = (70.0, 140.0),
    max_transpose: int = 5,
) -> dict[str, Any]:
    """Render the embedded RawStems-layout stand-in into ``out_root`` (atomically).

    Args:
        out_root: dataset folder; replaced only when the build succeeds.
        n_songs: songs to render (24 gives every target group 12+ songs).
        duration_s: length of every stem (all stems of a song are equally long).
        sr: sample rate in Hz (RawStems is used at 44.1 kHz).
        seed: the same seed renders byte-identical FLACs.
        workers: processes (default: CPU count); 1 renders in this process.
        progress: show a progress bar and print the build time.
        bpm_range: tempo range in quarter notes per minute.
        max_transpose: songs are transposed by up to this many semitones either way.

    Returns:
        Stats: ``songs``, ``stems``, ``groups`` and ``targets`` (songs each appears in),
        ``hours`` (song audio) and ``stem_hours``, ``build_s``, ``parse_s`` (total).
    """
    from tqdm import tqdm

    _check_config(n_songs, duration_s, sr, bpm_range, max_transpose)
    t0 = time.perf_counter()
    plans = plan_songs(n_songs, seed, bpm_range=bpm_range, max_transpose=max_transpose)
    workers = max(1, min(workers or len(os.sched_getaffinity(0)), n_songs))
    with output_dir(out_root) as tmp:
        jobs = [(p, str(tmp), float(duration_s), int(sr)) for p in plans]
        bar = tqdm(total=n_songs, desc="embedded songs", unit="song", disable=not progress)
        records = []
        if workers == 1:
            for job in jobs:
                records.append(_render_job(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for rec in pool.map(_render_job, jobs):
                    records.append(rec)
                    bar.update()
        bar.close()
        stats = _stats(plans, duration_s)
        meta = _description(plans, records, stats, seed=seed, duration_s=duration_s, sr=sr)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        (tmp / "README.txt").write_text(_readme(meta))
    stats["build_s"] = round(time.perf_counter() - t0, 2)
    stats["parse_s"] = round(sum(r["parse_s"] for r in records), 2)
    if progress:
        print(
            f"embedded: {stats['songs']} songs, {stats['stems']} stems, "
            f"{stats['hours']:.2f} h in {stats['build_s']:.1f} s "
            f"(score parsing {stats['parse_s']:.1f} s) -> {out_root}",
            file=sys.stderr,
        )
    return stats


def _check_config(
    n_songs: int,
    duration_s: float,
    sr: int,
    bpm_range: tuple[float, float],
    max_transpose: int,
) -> None:
    """Bad ``data.embedded`` values fail before any work, with one line naming the key."""
    problems = []
    if int(n_songs) < 1:
        problems.append(f"n_songs must be >= 1 (got {n_songs})")
    if not float(duration_s) >= 1.0:
        problems.append(f"duration_s must be >= 1 s (got {duration_s})")
    if not 8000 <= int(sr) <= 192000:
        problems.append(f"sr must be 8000..192000 Hz (got {sr})")
    lo, hi = (float(x) for x in bpm_range)
    if not 20.0 <= lo <= hi <= 300.0:
        problems.append(f"bpm_range must be [lo, hi] within 20..300 (got {list(bpm_range)})")
    if not 0 <= int(max_transpose) <= 12:
        problems.append(f"max_transpose must be 0..12 semitones (got {max_transpose})")
    if problems:
        raise StageError("embedded dataset: " + "; ".join(problems))


def _stats(plans: list[SongPlan], duration_s: float) -> dict[str, Any]:
    groups: dict[str, int] = {}
    targets: dict[str, int] = {}
    for plan in plans:
        for g in sorted({s.group for s in plan.stems}):
            groups[g] = groups.get(g, 0) + 1
        for t in sorted(
            {s.group for s in plan.stems} | {s.kind for s in plan.stems if s.group == "Gtr"}
        ):
            targets[t] = targets.get(t, 0) + 1
    n_stems = sum(len(p.stems) for p in plans)
    return {
        "songs": len(plans),
        "stems": n_stems,
        "groups": {g: groups[g] for g in GROUPS if g in groups},
        "targets": dict(sorted(targets.items())),
        "hours": round(len(plans) * duration_s / 3600, 4),
        "stem_hours": round(n_stems * duration_s / 3600, 4),
    }


def _description(
    plans: list[SongPlan], records: list[dict[str, Any]], stats: dict[str, Any], **config: Any
) -> dict[str, Any]:
    """``dataset.json``: deterministic (no timings), so a rebuild with one seed hashes equal."""
    import music21

    rec = {r["song"]: r for r in records}
    return {
        "name": "musicrestore embedded RawStems stand-in",
        "stand_in": True,
        "note": "Synthetic STAND-IN for RawStems: music21 corpus scores rendered per part with "
        "the TimGM6mb General MIDI SoundFont. Not real recordings.",
        "layout": "<Artist>|<Song>/<Group>/<SubGroup>/<stem>.flac (seed 004 RawStems layout)",
        "soundfont": "TimGM6mb.sf2 (bundled with pretty_midi)",
        "renderer": "tinysoundfont",
        "music21_version": music21.__version__,
        "taxonomy": {g: list(s) for g, s in TAXONOMY.items()},
        **config,
        **stats,
        "songs": [
            {
                "song": p.name,
                "composer": p.piece.artist,
                "corpus_path": p.piece.corpus,
                "seed": p.seed,
                "bpm": p.bpm,
                "transpose": p.transpose,
                "time_signature": rec[p.name]["time_signature"],
                "loops": rec[p.name]["loops"],
                "stems": [
                    {
                        "path": f"{p.name}/{s.relpath}",
                        "group": s.group,
                        "subgroup": s.subgroup,
                        "program": s.program,
                        "instrument": _instrument(s),
                        "role": s.role,
                        "parts": rec[p.name]["parts"][s.relpath],
                        "texture": s.texture,
                        "pan": s.pan,
                        "level_db": s.level_db,
                    }
                    for s in p.stems
                ],
            }
            for p in plans
        ],
        "n_songs": stats["songs"],
    }


def _instrument(stem: StemPlan) -> str:
    if stem.program is not None:
        return PROGRAM_NAMES[stem.program]
    return "GM standard drum kit" if stem.role == "drums" else f"GM percussion ({stem.texture})"


def _readme(meta: dict[str, Any]) -> str:
    lines = [
        "musicrestore embedded dataset: a synthetic STAND-IN for RawStems",
        "=" * 64,
        "",
        *textwrap.wrap(
            "This folder has the RawStems layout and taxonomy (Zang et al., Music Source "
            "Restoration, seed 004) but NOT its audio. Every song is a real composition from "
            f"the music21 corpus (music21 {meta['music21_version']}), arranged for a band and "
            "rendered part by part with the TimGM6mb General MIDI SoundFont (bundled with "
            "pretty_midi) by tinysoundfont. Drum parts are generated to fit each piece's meter "
            "and tempo. Voices are choir patches, not singers. Results on this data check the "
            "pipeline; they are not research results. Say so in every report that uses it.",
            width=88,
        ),
        "",
        f"seed {meta['seed']}, {meta['n_songs']} songs x {meta['duration_s']} s, "
        f"{meta['sr']} Hz stereo FLAC (16 bit), {meta['stems']} stems",
        "songs per group: " + ", ".join(f"{g} {n}" for g, n in meta["groups"].items()),
        "",
        "Per-song instrumentation (dataset.json has pans, levels and parts):",
    ]
    for song in meta["songs"]:
        lines.append(
            f"  {song['song']}  ({song['corpus_path']}, {song['bpm']:.0f} BPM, "
            f"{song['time_signature']}, transpose {song['transpose']:+d})"
        )
        for s in song["stems"]:
            lines.append(
                f"      {s['path'].split('/', 1)[1]:<34} {s['instrument']} ({s['role']}, {s['texture']})"
            )
    return "\n".join(lines) + "\n"
