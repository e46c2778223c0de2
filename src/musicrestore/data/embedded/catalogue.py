"""What the embedded stand-in is made of: the pieces, and General MIDI mapped onto the taxonomy.

:data:`GM_MAP` places every GM program in a RawStems (group, sub-group);
:data:`PROGRAMS` and :data:`RANGES` say which programs and pitch ranges the arranger uses
per stem kind; :data:`PIECES` is the pool of music21 corpus works songs are drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass

#: GM percussion channel (0-based 9 = MIDI channel 10) and the SF2 bank of drum kits.
DRUM_CHANNEL = 9
DRUM_BANK = 128
#: The drum kit is no GM program: it is whatever plays on the percussion channel.
DRUM_KIT = ("Rhy", "DK")

# fmt: off
#: General MIDI program (0-based) -> RawStems (group, sub-group); one table for all 128.
#: Sub-group equals the group for groups without sub-groups (Synth, Bass, Misc), as in
#: :func:`musicrestore.data.taxonomy.stem_from_relpath`. GM has no mellotron, so ``Kbs/MTR`` has
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
