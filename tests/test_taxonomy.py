from __future__ import annotations

from pathlib import Path

import pytest

from musicrestore.data.taxonomy import (
    GROUPS,
    TARGETS,
    TAXONOMY,
    LayoutError,
    Song,
    Stem,
    parse_target,
    read_splits,
    scan,
    split_group,
    split_songs,
    stem_from_relpath,
    test_count,
    test_songs,
    write_splits,
)
from tests.helpers import make_tiny_rawstems


def test_taxonomy_matches_paper() -> None:
    assert len(GROUPS) == 8 and "MiscRoom" in TAXONOMY
    assert sum(len(v) for v in TAXONOMY.values()) == 14  # 17 second-level minus Synth/Bass/Misc
    assert TAXONOMY["Kbs"] == ("PN", "EP", "MTR", "OR")
    assert len(TARGETS) == 9 and "Misc" not in TARGETS


def test_parse_relpaths() -> None:
    s = stem_from_relpath("Allen_Stone|Naturally/Gtr/EG/take1.flac")
    assert (s.song, s.group, s.subgroup, s.target) == (
        "Allen_Stone|Naturally",
        "Gtr",
        "EG",
        "Gtr_EG",
    )
    s = stem_from_relpath("A|B/Bass/DI.wav")
    assert (s.group, s.subgroup, s.target) == ("Bass", "Bass", "Bass")
    s = stem_from_relpath("A|B/Synth/Synth/pad.wav")
    assert s.subgroup == "Synth"
    for bad in ("A|B/Drums/x.wav", "NoPipe/Voc/LV/x.wav", "A|B/Voc/XX/x.wav", "A|B/x.wav"):
        with pytest.raises(LayoutError):
            stem_from_relpath(bad)


def test_parse_target() -> None:
    assert parse_target("Gtr_EG") == ("Gtr", "EG")
    assert parse_target("Voc") == ("Voc", None)
    with pytest.raises(LayoutError):
        parse_target("Gtr_XX")


def test_scan(tmp_path: Path) -> None:
    make_tiny_rawstems(tmp_path, n_songs=2, duration_s=0.2)
    (tmp_path / "Artist0|Song0" / "notes.txt").write_text("ignored")
    (tmp_path / "Artist0|Song0" / "Drums").mkdir()
    (tmp_path / "Artist0|Song0" / "Drums" / "x.wav").write_bytes(b"")
    songs = scan(tmp_path)
    assert [s.name for s in songs] == ["Artist0|Song0", "Artist1|Song1"]
    assert songs[0].groups == {"Voc", "Bass", "Rhy", "Gtr"}
    assert [s.path for s in songs[0].stems_of("Gtr_EG")] == ["Artist0|Song0/Gtr/EG/gtr.flac"]
    with pytest.raises(LayoutError):
        scan(tmp_path, strict=True)
    with pytest.raises(LayoutError):
        scan(tmp_path / "missing")


@pytest.mark.parametrize(
    ("n", "expected"), [(0, 0), (1, 1), (5, 4), (20, 10), (100, 10), (578, 58)]
)
def test_test_count(n: int, expected: int) -> None:
    assert test_count(n) == expected


def _songs(n: int, groups: tuple[str, ...] = ("Voc", "Bass")) -> list[Song]:
    return [
        Song(f"A{i}|S{i}", [Stem(f"A{i}|S{i}", g, g, f"A{i}|S{i}/{g}/x.wav") for g in groups])
        for i in range(n)
    ]


def test_split_sizes_and_determinism() -> None:
    songs = _songs(150)
    train, test = split_group(songs, "Voc", seed=3)
    assert len(test) == 15 and len(train) == 135 and not set(train) & set(test)
    assert split_group(songs, "Voc", seed=3) == (train, test)
    assert split_group(songs, "Voc", seed=4)[1] != test
    # groups share the ranking, so equal populations give equal test sets
    assert split_group(songs, "Bass", seed=3)[1] == test
    # adding songs never moves an old song from train to test except to keep the count
    more = songs + _songs(160)[150:]
    assert len(set(split_group(more, "Voc", seed=3)[1]) - set(test)) <= 1


def test_split_only_songs_with_target() -> None:
    songs = _songs(30) + [Song("X|Y", [Stem("X|Y", "Kbs", "PN", "X|Y/Kbs/PN/p.wav")])]
    splits = split_songs(songs, ["Voc", "Kbs", "Orch"], seed=0)
    assert set(splits) == {"Voc", "Kbs"}
    assert splits["Kbs"] == ([], ["X|Y"])
    assert "X|Y" in test_songs(splits)


def test_splits_roundtrip(tmp_path: Path) -> None:
    splits = split_songs(_songs(12), ["Voc", "Bass"], seed=0)
    write_splits(tmp_path, splits)
    assert (tmp_path / "Voc_test.txt").read_text().count("\n") == 10
    assert read_splits(tmp_path) == splits
