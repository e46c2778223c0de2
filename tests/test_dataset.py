"""The dataset contract (``musicrestore.data.dataset``): examples, ``manifest.jsonl``, pairs."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from musicrestore.core.stage import USER_ERRORS
from musicrestore.data.dataset import MANIFEST, Example, iter_pairs, read_manifest, write_manifest


def examples() -> list[Example]:
    return [
        Example(
            id="msr_Voc_0003",
            task="T2",
            mixture="mixture/msr_Voc_0003.flac",
            target="target/msr_Voc_0003.flac",
            sr=44100,
            duration_s=4.5,
            song="Artist|Sóng – ünïcode",
            group="Voc",
            effects=[
                {"name": "eq", "stage": "stem", "params": {"gains_db": [1.5, -3.0]}},
                {"name": "clip", "stage": "mix", "params": {"drive_db": 6.0}},
            ],
            seed=17,
            meta={"snr_db": 12.25, "stems": ["Voc/LV/a.flac"], "embedded": False, "none": None},
        ),
        Example(
            id="t3_0000",
            task="T3",
            mixture="mixture/t3_0000.wav",
            target=None,
            sr=32000,
            duration_s=10.0,
        ),
        Example(
            id="mix_0001",
            task="T1",
            mixture="mixture/mix_0001.flac",
            target="target/mix_0001.flac",
            sr=48000,
            duration_s=0.25,
        ),
    ]


def test_manifest_round_trip(tmp_path: Path) -> None:
    written = examples()
    path = write_manifest(tmp_path, written)
    assert path == tmp_path / MANIFEST == tmp_path / "manifest.jsonl"
    read = read_manifest(tmp_path)
    assert read == written  # every field, in order, with the defaults of the short examples
    assert read[1].song == "" and read[1].group == "mix" and read[1].effects == []
    assert read[1].seed == 0 and read[1].meta == {}
    assert read_manifest(str(tmp_path)) == written


def test_manifest_is_one_json_object_per_line_with_sorted_keys(tmp_path: Path) -> None:
    write_manifest(tmp_path, examples())
    lines = (tmp_path / MANIFEST).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    names = sorted(f.name for f in fields(Example))
    for line, ex in zip(lines, examples(), strict=True):
        record = json.loads(line)
        assert list(record) == names  # every field, keys sorted: stable diffs under DVC
        assert record["id"] == ex.id and record["target"] == ex.target


def test_write_manifest_takes_any_iterable_and_creates_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "dataset"
    write_manifest(folder, (ex for ex in examples()))
    assert read_manifest(folder) == examples()
    write_manifest(folder, [])
    assert read_manifest(folder) == []


def test_write_manifest_replaces_the_previous_one(tmp_path: Path) -> None:
    write_manifest(tmp_path, examples())
    write_manifest(tmp_path, examples()[:1])
    assert read_manifest(tmp_path) == examples()[:1]


def test_a_failed_write_leaves_the_previous_manifest_and_no_temporary_file(tmp_path: Path) -> None:
    write_manifest(tmp_path, examples())
    before = (tmp_path / MANIFEST).read_bytes()
    bad = examples()
    bad[2].meta["model"] = object()  # not JSON: fails after two lines are written
    with pytest.raises(TypeError):
        write_manifest(tmp_path, bad)
    assert (tmp_path / MANIFEST).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]


def test_a_missing_manifest_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    for folder in (tmp_path, tmp_path / "not_there"):
        with pytest.raises(FileNotFoundError) as err:
            read_manifest(folder)
        msg = str(err.value)
        assert "\n" not in msg and str(folder / MANIFEST) in msg and "dataset stage" in msg


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    write_manifest(tmp_path, examples())
    lines = (tmp_path / MANIFEST).read_text(encoding="utf-8").splitlines()
    (tmp_path / MANIFEST).write_text("\n" + "\n  \n".join(lines) + "\n\n", encoding="utf-8")
    assert read_manifest(tmp_path) == examples()


@pytest.mark.parametrize(
    "line",
    [
        '{"id": "x", "task": "T1"',  # cut off (an interrupted hand edit, a bad merge)
        '{"id": "x", "task": "T1", "mixture": "m.wav", "target": null, "sr": 8000, '
        '"duration_s": 1.0, "rate": 3}',  # a field this version does not know
        '{"id": "x", "task": "T1"}',  # fields missing
    ],
    ids=["not json", "unknown field", "missing fields"],
)
def test_a_broken_manifest_line_is_a_one_line_user_error(tmp_path: Path, line: str) -> None:
    write_manifest(tmp_path, examples()[:1])
    with open(tmp_path / MANIFEST, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    with pytest.raises(USER_ERRORS) as err:
        read_manifest(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / MANIFEST) in msg
    assert "line 2" in msg or f"{MANIFEST}:2" in msg


def test_iter_pairs_joins_paths_to_the_manifest_folder(tmp_path: Path) -> None:
    write_manifest(tmp_path, examples())
    pairs = list(iter_pairs(tmp_path))
    assert [ex for ex, _, _ in pairs] == examples()
    assert [(mix, tgt) for _, mix, tgt in pairs] == [
        (tmp_path / "mixture/msr_Voc_0003.flac", tmp_path / "target/msr_Voc_0003.flac"),
        (tmp_path / "mixture/t3_0000.wav", None),
        (tmp_path / "mixture/mix_0001.flac", tmp_path / "target/mix_0001.flac"),
    ]
    assert all(mix.is_absolute() for _, mix, _ in pairs)


def test_a_moved_dataset_still_finds_its_files(tmp_path: Path) -> None:
    """Paths are relative to the manifest, so the folder can move (or come from a remote)."""
    old = tmp_path / "old"
    (old / "mixture").mkdir(parents=True)
    (old / "mixture" / "t3_0000.wav").write_bytes(b"audio")
    write_manifest(old, [examples()[1]])
    new = old.rename(tmp_path / "new")
    ((ex, mix, target),) = iter_pairs(new)
    assert mix.read_bytes() == b"audio" and target is None and ex.id == "t3_0000"


def test_iter_pairs_of_a_folder_without_manifest_is_the_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no dataset manifest"):
        next(iter_pairs(tmp_path))


def test_effect_names_in_order_and_fresh_defaults() -> None:
    ex = examples()[0]
    assert ex.effect_names() == ["eq", "clip"]
    a, b = examples()[1], examples()[2]
    assert a.effect_names() == []
    a.effects.append({"name": "x"})
    a.meta["k"] = 1
    assert b.effects == [] and b.meta == {}  # defaults are not shared between examples


@pytest.mark.parametrize(
    "line,words",
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 32 levels"),  # was a RecursionError
        ('{"id": "x", "meta": ' + "[" * 40 + "]" * 40 + "}", "nested deeper than 32 levels"),
        ('{"id": "x", "' + "k" * 100_000 + '": 1}', "not a valid example"),  # a huge key
        ('{"id": "' + "x" * (2**20 + 10) + '"}', "longer than 1048576 bytes"),
        ("[1, 2]", "not a valid example"),  # JSON, but not an object
    ],
    ids=["deep", "deep meta", "huge key", "huge line", "a list"],
)
def test_a_hostile_manifest_line_is_a_short_one_line_error(
    tmp_path: Path, line: str, words: str
) -> None:
    write_manifest(tmp_path, examples()[:1])
    with open(tmp_path / MANIFEST, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    with pytest.raises(USER_ERRORS) as err:
        read_manifest(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and f"{tmp_path / MANIFEST}:2: " in msg and words in msg, msg
    assert len(msg) < 300 + len(str(tmp_path))


def test_a_manifest_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    write_manifest(tmp_path, examples()[:1])
    with open(tmp_path / MANIFEST, "ab") as fh:
        fh.write(b'{"id": "\xff\xfe"}\n')
    with pytest.raises(USER_ERRORS) as err:
        read_manifest(tmp_path)
    assert str(err.value) == f"{tmp_path / MANIFEST}:2: not UTF-8 text"
