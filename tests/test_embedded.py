"""The embedded RawStems-layout stand-in: layout, audio, determinism, balance.

See docs/method.md#embedded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from musicrestore.core.audio import audio_info, load_audio
from musicrestore.core.stage import StageError
from musicrestore.data import embedded
from musicrestore.data.taxonomy import TARGETS, TAXONOMY, scan, split_songs

TINY = {"n_songs": 3, "duration_s": 4.0, "progress": False}
SR = 44100


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three tiny builds: seed 0 in-process, seed 0 on two workers, seed 1."""
    base = tmp_path_factory.mktemp("embedded")
    embedded.build_embedded(base / "a", seed=0, workers=1, **TINY)
    embedded.build_embedded(base / "b", seed=0, workers=2, **TINY)
    embedded.build_embedded(base / "c", seed=1, workers=1, **TINY)
    return {k: base / k for k in "abc"}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.flac"))}


def test_tiny_build_parses_as_rawstems(tiny: dict[str, Path]) -> None:
    root = tiny["a"]
    songs = scan(root, strict=True)
    assert len(songs) == 3
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp left
    for song in songs:
        assert 4 <= len(song.stems) <= embedded.MAX_STEMS
        assert len(song.groups) >= 3
        lengths = set()
        mix = np.zeros((2, int(TINY["duration_s"] * SR)), np.float32)
        for stem in song.stems:
            sr, channels, frames = audio_info(root / stem.path)
            assert (sr, channels) == (SR, 2)
            lengths.add(frames)
            wave, _ = load_audio(root / stem.path)
            rms_db = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2))
            assert rms_db > -45, f"{stem.path} is nearly silent ({rms_db:.1f} dBFS)"
            # Panned stems are real stereo: the channels are not one signal copied.
            assert not np.allclose(wave[0], wave[1])
            mix += wave
        assert lengths == {int(TINY["duration_s"] * SR)}
        # One gain per song puts the loudest of mix and stems at -3..-1 dBFS.
        assert -12.0 < 20 * np.log10(np.abs(mix).max()) < -0.9


def test_same_seed_same_bytes_other_seed_differs(tiny: dict[str, Path]) -> None:
    a, b, c = (_files(tiny[k]) for k in "abc")
    assert a == b  # the worker count does not change a byte
    assert (tiny["a"] / "dataset.json").read_bytes() == (tiny["b"] / "dataset.json").read_bytes()
    assert a.keys() != c.keys() or a != c


def test_readme_and_description_say_stand_in(tiny: dict[str, Path]) -> None:
    root = tiny["a"]
    assert "STAND-IN" in (root / "README.txt").read_text()
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["stand_in"] is True and meta["seed"] == 0 and meta["sr"] == SR
    listed = {s["path"] for song in meta["songs"] for s in song["stems"]}
    assert listed == set(_files(root))
    for song in meta["songs"]:
        assert 70 <= song["bpm"] <= 140 and -5 <= song["transpose"] <= 5


def test_bad_config_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"n_songs must be >= 1.*bpm_range") as err:
        embedded.build_embedded(tmp_path / "x", n_songs=0, bpm_range=(140, 70), progress=False)
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())


def test_gm_map_covers_the_taxonomy() -> None:
    assert sorted(embedded.GM_MAP) == list(range(128))
    placed = set(embedded.GM_MAP.values()) | {embedded.DRUM_KIT}
    for group, subs in TAXONOMY.items():
        if group == "MiscRoom":
            continue  # room microphones: no instrument
        for sub in subs or (group,):
            if (group, sub) == ("Kbs", "MTR"):
                continue  # General MIDI has no mellotron
            assert (group, sub) in placed, f"no GM program for {group}/{sub}"
    # every program the arranger uses belongs to the group it plays in
    # (voice patches excepted: the job, melody or not, decides LV/BV/GV)
    for kind, programs in embedded.PROGRAMS.items():
        group, _, sub = kind.partition("_")
        for p in programs:
            assert embedded.GM_MAP[p][0] == group, (kind, p)
            if sub in TAXONOMY[group] and group != "Voc":
                assert embedded.GM_MAP[p] == (group, sub), (kind, p)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plans_populate_every_target(seed: int) -> None:
    plans = embedded.plan_songs(24, seed)
    counts = {t: 0 for t in TARGETS}
    for plan in plans:
        assert 4 <= len(plan.stems) <= embedded.MAX_STEMS
        assert len({s.relpath for s in plan.stems}) == len(plan.stems)
        kinds = {s.group for s in plan.stems} | {s.kind for s in plan.stems}
        for t in TARGETS:
            counts[t] += t in kinds
        assert sum(s.role == "lead" for s in plan.stems) == 1
        assert any("melody" in s.parts for s in plan.stems)
        assert any("bass" in s.parts for s in plan.stems)
    # A 10-song test split per target still leaves songs to train on.
    assert min(counts.values()) >= 12, counts
    assert len({p.piece for p in plans}) == 24
    # Asking for more songs does not change the first ones.
    assert embedded.plan_songs(30, seed)[:24] == plans


def test_split_of_a_planned_build_leaves_training_songs() -> None:
    from musicrestore.data.taxonomy import Song, Stem

    songs = [
        Song(p.name, [Stem(p.name, s.group, s.subgroup, f"{p.name}/{s.relpath}") for s in p.stems])
        for p in embedded.plan_songs(24, 0)
    ]
    for target, (train, test) in split_songs(songs, TARGETS, seed=0).items():
        assert len(test) == 10 and len(train) >= 2, target


def test_drum_part_fits_meter_and_tempo() -> None:
    rng = np.random.default_rng(0)
    for piece, n_beats in (("bach/bwv269", 3), ("bach/bwv66.6", 4)):
        score = embedded.load_score(piece)
        spq = 60.0 / 100.0
        stem = embedded.StemPlan("Rhy", "DK", "drum_kit", None, "drums", texture="straight")
        events = embedded.drum_events(stem, score.bars, spq, 4, rng)
        full = [b for b in score.bars if b.phase_ql == 0 and b.length_ql == b.bar_ql]
        assert full and all(b.n_beats == n_beats for b in full)
        starts = np.array([b.start_ql for b in full])
        onsets_ql = {
            key: np.array([t / spq for t, _, k, _ in events if k == key]) for key in (36, 38)
        }
        # Every full bar starts with a kick (within the few-ms humanisation).
        for s in starts:
            assert np.min(np.abs(onsets_ql[36] - s)) < 0.02
        # Backbeat snares sit on beats, never on the downbeat of a full bar outside fills.
        snare_beats = onsets_ql[38][onsets_ql[38] >= starts[0]]
        on_grid = np.abs(snare_beats * 4 - np.round(snare_beats * 4)) < 0.08  # 16th grid
        assert on_grid.all()
        assert len(snare_beats) >= len(full)


@pytest.mark.parametrize("texture", ["strum", "arpeggio", "comp", "written", "pulse"])
def test_pitched_textures_stay_in_range_and_on_the_grid(texture: str) -> None:
    score = embedded.load_score("bach/bwv66.6")
    parts, bars = embedded.looped(score, 1)
    spq = 0.5  # 120 BPM
    stem = embedded.StemPlan(
        "Gtr", "AG", "g", 25, "harmony", ("inner", "bass"), texture, velocity=90
    )
    if texture == "pulse":
        stem = embedded.StemPlan("Bass", "Bass", "b", 33, "bass", ("bass",), texture, velocity=90)
    lo, hi = embedded.RANGES[stem.kind]
    events = embedded.pitched_events(stem, parts, bars, spq, 3, np.random.default_rng(0))
    keys = np.array([k for _, _, k, _ in events])
    onsets_ql = np.array([t for t, _, _, _ in events]) / spq
    assert len(events) > 20
    if texture in ("strum", "arpeggio", "comp"):  # voiced chord notes are folded into range
        assert keys.min() >= lo and keys.max() <= hi
    else:  # whole parts move by octaves: most notes fit
        assert np.mean((keys >= lo) & (keys <= hi)) > 0.9
    # Strikes sit on the eighth grid (strummed strings up to ~6 x 12 ms late).
    late_ql = onsets_ql - np.floor(onsets_ql * 2 + 0.05) / 2
    assert np.all(late_ql < (0.08 / spq if texture == "strum" else 0.03 / spq))
    if texture == "strum":
        strikes = np.unique(np.floor(onsets_ql * 2 + 0.05))
        grid = np.arange(np.floor(onsets_ql.min() * 2), np.floor(onsets_ql.max() * 2) + 1)
        assert len(strikes) < len(grid)  # the pattern's missed strokes ("." ) are silent


def test_render_plays_the_right_pitch_at_the_right_time() -> None:
    sr = 22050
    events = [(0.5, 0.5, 69, 100)]  # A4 from 0.5 s to 1.0 s
    wave = embedded.render_events(events, 0, sr, sr, embedded.soundfont_path())
    assert wave.shape == (2, sr) and wave.dtype == np.float32
    assert np.abs(wave[:, : int(0.49 * sr)]).max() < 1e-6  # silence before the note
    note = wave[0, int(0.55 * sr) : int(0.95 * sr)]
    spec = np.abs(np.fft.rfft(note * np.hanning(note.size)))
    freqs = np.fft.rfftfreq(note.size, 1 / sr)
    assert abs(freqs[np.argmax(spec)] - 440.0) < 6.0


def test_restruck_key_is_not_cut_by_the_older_note_off() -> None:
    sr = 22050
    organ = 16  # sustains while held, so the held time is what sounds
    overlapping = [(0.0, 0.6, 60, 100), (0.4, 0.6, 60, 100)]  # second strike ends at 1.0 s
    wave = embedded.render_events(overlapping, organ, int(1.5 * sr), sr, embedded.soundfont_path())
    held = np.sqrt(np.mean(wave[:, int(0.7 * sr) : int(0.95 * sr)] ** 2))
    after = np.sqrt(np.mean(wave[:, int(1.3 * sr) :] ** 2))
    assert held > 0.3 * np.sqrt(np.mean(wave[:, int(0.1 * sr) : int(0.35 * sr)] ** 2))
    assert after < 0.05 * held  # and it is released when the second note ends


def test_pan_is_constant_power() -> None:
    for pan in np.linspace(-1, 1, 9):
        g_l, g_r = embedded.pan_gains(float(pan))
        assert g_l**2 + g_r**2 == pytest.approx(2.0)
    assert embedded.pan_gains(0.0) == pytest.approx((1.0, 1.0))
    assert embedded.pan_gains(-1.0)[1] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.slow
def test_default_build(tmp_path: Path) -> None:
    start = time.perf_counter()
    stats = embedded.build_embedded(tmp_path / "rawstems", progress=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 180, f"default build took {elapsed:.0f} s"
    songs = scan(tmp_path / "rawstems", strict=True)
    assert stats["songs"] == len(songs) == 24
    assert len(stats["groups"]) >= 6
    assert min(stats["targets"][t] for t in TARGETS) >= 12
    for target, (train, test) in split_songs(songs, TARGETS, seed=0).items():
        assert len(test) == 10 and train, target
