"""Song plans and note events: everything random about a song, drawn before any audio.

:func:`plan_songs` draws each song's piece, tempo, key and stems (:class:`SongPlan`);
:func:`load_score` reduces a music21 work to melody / inner / bass notes and its bar grid;
:func:`pitched_events`, :func:`drum_events` and :func:`perc_events` turn a stem plan into
note events in seconds, which :mod:`.render` plays through the SoundFont.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .catalogue import (
    CRASH,
    HAT,
    KICK,
    LEVEL_DB,
    MAX_STEMS,
    MAX_VOICES,
    OPEN_HAT,
    PERC_KITS,
    PIECES,
    PROGRAM_NAMES,
    PROGRAMS,
    RANGES,
    RIDE,
    SLOTS,
    SLOTS_PER_SONG,
    SNARE,
    TOMS,
    Piece,
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


def looped(
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


def pitched_events(
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


def drum_events(
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


def perc_events(
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
