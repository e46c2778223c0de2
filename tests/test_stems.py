"""Loading a song's stems as mixes (``musicrestore.data.stems``), on tiny files whose samples say
which stems were summed: every stem is a constant (DC) at its own power of two, so any sum
of stems has a unique value, exact in 24-bit PCM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from musicrestore.core.audio import save_audio
from musicrestore.data.stems import (
    is_stand_in,
    load_groups,
    load_mix,
    load_stem,
    load_target_and_background,
    pad_to,
    sum_waves,
)
from musicrestore.data.taxonomy import Song, scan

SR = 8000
SONG = "Artist|Song"

#: path under the song -> (value, frames, channels). MiscRoom is the longest stem, so a
#: length that counted it would show.
STEMS = {
    "Voc/LV/lead.wav": (2.0**-1, 800, 2),
    "Voc/BV/backing.wav": (2.0**-2, 1200, 1),
    "Gtr/EG/electric.wav": (2.0**-3, 1600, 2),
    "Gtr/AG/acoustic.wav": (2.0**-4, 1000, 2),
    "Bass/bass.wav": (2.0**-5, 1000, 1),
    "MiscRoom/room.wav": (2.0**-6, 2400, 2),
}
#: Longest stem that is not a room microphone.
LENGTH = 1600


def expected_sum(paths: list[str], length: int = LENGTH) -> np.ndarray:
    """What summing the stems at ``paths`` must give: ``(2, length)``, zero past each end."""
    out = np.zeros((2, length), np.float64)
    for rel in paths:
        value, frames, _ = STEMS[rel]
        out[:, :frames] += value
    return out.astype(np.float32)


@pytest.fixture
def song(tmp_path: Path) -> tuple[Path, Song]:
    for rel, (value, frames, channels) in STEMS.items():
        save_audio(tmp_path / SONG / rel, np.full((channels, frames), value, np.float32), SR)
    (found,) = scan(tmp_path)
    assert len(found.stems) == len(STEMS)
    return tmp_path, found


def stems_of(*prefixes: str) -> list[str]:
    return [rel for rel in STEMS if rel.startswith(prefixes)]


# ------------------------------------------------------------------------------ is_stand_in


def test_is_stand_in_reads_the_flag_of_dataset_json(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text(json.dumps({"stand_in": True, "songs": 2}))
    assert is_stand_in(tmp_path) is True
    assert is_stand_in(str(tmp_path)) is True
    (tmp_path / "dataset.json").write_text(json.dumps({"stand_in": False}))
    assert is_stand_in(tmp_path) is False


@pytest.mark.parametrize(
    "content",
    [None, "{}", '{"songs": 3}', "not json {", "[1, 2]", '"stand_in"'],
    ids=["no file", "empty", "no flag", "broken", "a list", "a string"],
)
def test_is_stand_in_is_false_for_anything_but_the_flag(
    tmp_path: Path, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "dataset.json").write_text(content)
    assert is_stand_in(tmp_path) is False
    assert is_stand_in(tmp_path / "missing_folder") is False


# ------------------------------------------------------------------------- small wave tools


def test_sum_waves_zero_pads_to_the_longest() -> None:
    a = np.full((2, 3), 1.0, np.float32)
    b = np.full((2, 5), 2.0, np.float32)
    out = sum_waves([a, b])
    np.testing.assert_array_equal(out, [[3, 3, 3, 2, 2], [3, 3, 3, 2, 2]])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(sum_waves([b]), b)
    np.testing.assert_array_equal(a, np.full((2, 3), 1.0))  # inputs untouched


@pytest.mark.parametrize("channels", [1, 2])
def test_sum_of_nothing_is_empty(channels: int) -> None:
    out = sum_waves([], channels)
    assert out.shape == (channels, 0) and out.dtype == np.float32


def test_pad_to_pads_with_zeros_or_cuts() -> None:
    x = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(pad_to(x, 5), [[1, 2, 3, 0, 0], [4, 5, 6, 0, 0]])
    np.testing.assert_array_equal(pad_to(x, 2), [[1, 2], [4, 5]])
    np.testing.assert_array_equal(pad_to(x, 3), x)


# ---------------------------------------------------------------------------- loading stems


def test_load_stem_reads_the_file_of_the_stem(song: tuple[Path, Song]) -> None:
    root, found = song
    by_path = {stem.path: stem for stem in found.stems}
    lead = load_stem(root, by_path[f"{SONG}/Voc/LV/lead.wav"], SR)
    np.testing.assert_array_equal(lead, np.full((2, 800), 0.5, np.float32))
    backing = by_path[f"{SONG}/Voc/BV/backing.wav"]  # a mono file
    np.testing.assert_array_equal(load_stem(root, backing, SR), np.full((2, 1200), 0.25))
    np.testing.assert_array_equal(
        load_stem(root, backing, SR, channels=1), np.full((1, 1200), 0.25)
    )


def test_load_stem_downmixes_and_resamples(tmp_path: Path) -> None:
    stereo = np.stack([np.full(SR, 0.5), np.full(SR, 0.25)]).astype(np.float32)
    save_audio(tmp_path / SONG / "Bass" / "b.wav", stereo, SR)
    (found,) = scan(tmp_path)
    mono = load_stem(tmp_path, found.stems[0], SR, channels=1)
    np.testing.assert_array_equal(mono, np.full((1, SR), 0.375, np.float32))
    double = load_stem(tmp_path, found.stems[0], 2 * SR)
    assert double.shape == (2, 2 * SR)
    np.testing.assert_allclose(double[0, 500:-500], 0.5, atol=1e-3)  # away from the edges
    np.testing.assert_allclose(double[1, 500:-500], 0.25, atol=1e-3)


def test_target_and_background_sum_the_right_stems(song: tuple[Path, Song]) -> None:
    root, found = song
    target, background = load_target_and_background(root, found, "Voc", SR)
    assert target.shape == background.shape == (2, LENGTH)
    assert target.dtype == background.dtype == np.float32
    np.testing.assert_array_equal(target, expected_sum(stems_of("Voc/")))
    np.testing.assert_array_equal(background, expected_sum(stems_of("Gtr/", "Bass/")))


def test_a_subgroup_target_leaves_its_sibling_in_the_background(song: tuple[Path, Song]) -> None:
    root, found = song
    target, background = load_target_and_background(root, found, "Gtr_EG", SR)
    np.testing.assert_array_equal(target, expected_sum(["Gtr/EG/electric.wav"]))
    # the acoustic guitar is background; room microphones never are
    np.testing.assert_array_equal(background, expected_sum(stems_of("Voc/", "Gtr/AG/", "Bass/")))


def test_a_target_the_song_lacks_is_silence_as_long_as_the_background(
    song: tuple[Path, Song],
) -> None:
    root, found = song
    target, background = load_target_and_background(root, found, "Kbs", SR)
    np.testing.assert_array_equal(target, np.zeros((2, LENGTH), np.float32))
    np.testing.assert_array_equal(background, expected_sum(stems_of("Voc/", "Gtr/", "Bass/")))


def test_target_and_background_at_another_rate_and_in_mono(song: tuple[Path, Song]) -> None:
    root, found = song
    target, background = load_target_and_background(root, found, "Voc", 2 * SR, channels=1)
    assert target.shape == background.shape == (1, 2 * LENGTH)
    np.testing.assert_allclose(target[0, 400:1200], 0.75, atol=1e-3)  # lead + backing
    np.testing.assert_allclose(target[0, 1800:2200], 0.25, atol=1e-3)  # backing only
    np.testing.assert_allclose(target[0, 2600:3000], 0.0, atol=1e-3)


def test_load_groups_sums_each_group_without_room_microphones(song: tuple[Path, Song]) -> None:
    root, found = song
    groups = load_groups(root, found, SR)
    assert list(groups) == ["Bass", "Gtr", "Voc"]  # sorted, no MiscRoom
    for group, wave in groups.items():
        np.testing.assert_array_equal(wave, expected_sum(stems_of(f"{group}/")), err_msg=group)
    mono = load_groups(root, found, SR, channels=1)
    assert all(w.shape == (1, LENGTH) for w in mono.values())


def test_load_mix_sums_every_stem_but_room_microphones(song: tuple[Path, Song]) -> None:
    root, found = song
    mix = load_mix(root, found, SR)
    np.testing.assert_array_equal(mix, expected_sum(stems_of("Voc/", "Gtr/", "Bass/")))


def test_a_song_of_room_microphones_only_has_an_empty_mix(tmp_path: Path) -> None:
    save_audio(tmp_path / SONG / "MiscRoom" / "room.wav", np.full((2, 100), 0.5, np.float32), SR)
    (found,) = scan(tmp_path)
    assert load_groups(tmp_path, found, SR) == {}
    assert load_mix(tmp_path, found, SR).shape == (2, 0)
