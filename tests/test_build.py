"""Dataset builders (musicrestore.degrade.build, .examples) and their stage scripts, on a tiny
synthetic RawStems-layout folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from musicrestore.compute import _single_thread as single_thread
from musicrestore.core.audio import save_audio
from musicrestore.core.stage import StageError
from musicrestore.data.dataset import iter_pairs, read_manifest
from musicrestore.data.stems import load_target_and_background
from musicrestore.data.taxonomy import (
    TARGETS,
    read_splits,
    scan,
    split_songs,
    test_songs,
    write_splits,
)
from musicrestore.degrade import build
from musicrestore.degrade.examples import (
    active_offsets,
    energy_cumsum,
    example_seed,
    make_msr_example,
)

SR = 44100
SONG_S = 2.0
REPO = Path(__file__).resolve().parents[1]


def _write_song(root: Path, i: int, orch: str | None) -> None:
    """Voc (gated tone), Gtr/EG, Bass, Rhy noise bursts; Orch active, silent or absent."""
    rng = np.random.default_rng(i)
    t = np.arange(int(SONG_S * SR)) / SR
    gate = (np.sin(2 * np.pi * 0.7 * t + i) > -0.5).astype(float)
    stems = {
        "Voc/LV/lead.flac": 0.3 * gate * np.sin(2 * np.pi * (300 + 40 * i) * t),
        "Gtr/EG/gtr.flac": 0.2 * np.sin(2 * np.pi * (500 + 30 * i) * t),
        "Bass/bass.flac": 0.3 * np.sin(2 * np.pi * (55 + 5 * i) * t),
        "Rhy/DK/kit.flac": 0.2 * (np.sin(2 * np.pi * 4 * t) > 0.8) * rng.standard_normal(t.size),
    }
    if orch is not None:
        stems["Orch/STR/str.flac"] = 0.2 * np.sin(2 * np.pi * 700 * t) * (orch == "active")
    for rel, mono in stems.items():
        save_audio(
            root / f"Artist{i}|Song{i}" / rel, np.stack([mono, 0.7 * mono]).astype(np.float32), SR
        )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    """4 songs of 2 s; Orch is active in songs 0 and 2, silent in song 1, absent in song 3.
    Splits from ``split_songs(min_songs=1)``, Orch's written by hand to place the silent song."""
    base = tmp_path_factory.mktemp("rawstems")
    root, splits_dir = base / "rawstems", base / "splits"
    for i, orch in enumerate(["active", "silent", "active", None]):
        _write_song(root, i, orch)
    splits = split_songs(scan(root), TARGETS, seed=0, min_songs=1)
    splits["Orch"] = (["Artist0|Song0", "Artist1|Song1"], ["Artist2|Song2"])
    write_splits(splits_dir, splits)
    return root, splits_dir


@pytest.fixture(scope="module")
def voc_1(tiny, tmp_path_factory) -> tuple[Path, dict]:
    root, splits_dir = tiny
    out = tmp_path_factory.mktemp("voc1")
    stats = build.build_msr(
        root, splits_dir, "Voc", out, n_test=3, n_train=4, segment_s=1.0, seed=5
    )
    return out, stats


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_build_msr_writes_a_dataset_per_split(tiny, voc_1):
    root, splits_dir = tiny
    out, stats = voc_1
    train_songs, test_song_names = read_splits(splits_dir)["Voc"]
    for split, n, allowed in (("test", 3, test_song_names), ("train", 4, train_songs)):
        examples = read_manifest(out / split)
        assert [ex.id for ex in examples] == [f"Voc_{split}_{i:05d}" for i in range(n)]
        assert len({ex.seed for ex in examples}) == n
        for ex, mix_path, tgt_path in iter_pairs(out / split):
            assert ex.task == "T2" and ex.group == "Voc" and ex.sr == SR and ex.duration_s == 1.0
            assert ex.song in allowed
            assert ex.meta["target_stems"] == [f"{ex.song}/Voc/LV/lead.flac"]
            assert f"{ex.song}/Bass/bass.flac" in ex.meta["background_stems"]
            assert -5 <= ex.meta["snr_db"] <= 20
            assert ex.meta["target_rms_db"] >= -40
            for e in ex.effects:
                assert set(e) == {"name", "stage", "params"} and e["stage"] in ("target", "mixture")
            mix, sr = sf.read(mix_path, always_2d=True)
            ref, _ = sf.read(tgt_path, always_2d=True)
            assert sr == SR and mix.shape == ref.shape == (SR, 2)
            assert 10 * np.log10(np.mean(ref**2)) > -45  # the target is audible in its reference
    assert stats["test"]["examples"] == 3 and stats["train"]["examples"] == 4
    assert stats["test"]["seconds"] == 3.0
    assert (
        json.loads((out / "train" / "stats.json").read_text())["train"]["effect_rates"]
        == stats["train"]["effect_rates"]
    )
    assert all(0 < r <= 1 for r in stats["train"]["effect_rates"].values())


def test_builder_output_is_what_the_on_the_fly_writer_gives(tiny, voc_1):
    """make_msr_example on the whole song reproduces the cached example (a trainer can
    generate the same examples on the fly)."""
    root, _ = tiny
    out, _ = voc_1
    ex = read_manifest(out / "train")[1]
    song = next(s for s in scan(root) if s.name == ex.song)
    target, background = load_target_and_background(root, song, "Voc", SR)
    length = int(ex.duration_s * SR)
    offsets = active_offsets(energy_cumsum(target), length, SR)
    with single_thread():  # as the builder's workers run (and much faster on 2 cores)
        made, offset = make_msr_example(target, background, SR, length, ex.seed, offsets=offsets)
    assert offset / SR == pytest.approx(ex.meta["offset_s"])
    assert made.effects == ex.effects
    cached, _ = sf.read(out / "train" / ex.mixture, always_2d=True, dtype="float32")
    np.testing.assert_allclose(made.mixture, cached.T, atol=2e-7)  # 24-bit FLAC quantization


def test_build_msr_gives_identical_bytes_in_process_and_on_2_dask_workers(
    tiny, voc_1, tmp_path, dask2
):
    root, splits_dir = tiny
    out_1, _ = voc_1
    out_2 = tmp_path / "voc2"
    build.build_msr(
        root, splits_dir, "Voc", out_2, n_test=3, n_train=4, segment_s=1.0, seed=5, engine=dask2
    )
    assert folder_bytes(out_1) == folder_bytes(out_2)  # stats.json included


def test_build_musicgen_like_gives_identical_bytes_in_process_and_on_2_dask_workers(
    tiny, tmp_path, dask2
):
    root, splits_dir = tiny
    kw = dict(n_test=2, n_train=3, test_s=1.0, train_crop_s=(0.3, 0.4), seed=1)
    build.build_musicgen_like(root, splits_dir, tmp_path / "m1", **kw)
    build.build_musicgen_like(root, splits_dir, tmp_path / "m2", engine=dask2, **kw)
    assert folder_bytes(tmp_path / "m1") == folder_bytes(tmp_path / "m2")


def test_adding_examples_never_changes_earlier_ones(tiny, voc_1, tmp_path):
    root, splits_dir = tiny
    out_1, _ = voc_1
    build.build_msr(root, splits_dir, "Voc", tmp_path, n_test=2, n_train=0, segment_s=1.0, seed=5)
    smaller = folder_bytes(tmp_path / "test")
    bigger = folder_bytes(out_1 / "test")
    for name, data in smaller.items():
        if name.endswith(".flac"):
            assert bigger[name] == data
    assert read_manifest(tmp_path / "test") == read_manifest(out_1 / "test")[:2]


def test_songs_where_the_target_is_silent_are_skipped(tiny, tmp_path):
    root, splits_dir = tiny
    stats = build.build_msr(root, splits_dir, "Orch", tmp_path, n_test=1, n_train=4, segment_s=1.0)
    assert {ex.song for ex in read_manifest(tmp_path / "train")} == {"Artist0|Song0"}
    assert stats["train"]["songs"] == 1

    silent_only = tmp_path / "splits_silent"
    write_splits(silent_only, {"Orch": (["Artist1|Song1"], ["Artist1|Song1"])})
    with pytest.raises(StageError, match="active"):
        build.build_msr(
            root, silent_only, "Orch", tmp_path / "x", n_test=1, n_train=0, segment_s=1.0
        )


def test_active_offsets_follow_the_rms_threshold():
    sr = 1000
    wave = np.zeros((2, 10 * sr), np.float32)
    wave[:, 5 * sr :] = 0.1  # -20 dB RMS from 5 s on
    offsets = active_offsets(energy_cumsum(wave), 2 * sr, sr, active_db=-40.0)
    # a 2-s segment needs > 1 % of its length active to reach -40 dB: starts from 3.1 s
    assert offsets.min() / sr == pytest.approx(3.1) and offsets.max() / sr == pytest.approx(8.0)
    assert len(active_offsets(energy_cumsum(wave * 0), 2 * sr, sr)) == 0
    short = active_offsets(energy_cumsum(wave[:, -sr:]), 2 * sr, sr, active_db=-40.0)
    assert list(short) == [0]  # shorter than a segment: one zero-padded segment


def test_example_seed_is_stable_and_distinct():
    assert example_seed(0, "Voc", "test", 3) == example_seed(0, "Voc", "test", 3)
    seeds = {
        example_seed(0, t, s, i)
        for t in ("Voc", "Bass")
        for s in ("test", "train")
        for i in range(50)
    }
    assert len(seeds) == 200 and all(0 <= s < 2**63 for s in seeds)


def test_build_musicgen_like_splits_and_formats(tiny, tmp_path):
    root, splits_dir = tiny
    stats = build.build_musicgen_like(
        root,
        splits_dir,
        tmp_path,
        n_test=3,
        n_train=5,
        test_s=1.0,
        train_crop_s=(0.3, 0.4),
    )
    held_out = test_songs(read_splits(splits_dir))
    test = read_manifest(tmp_path / "test")
    train = read_manifest(tmp_path / "train")
    assert len(test) == 3 and len(train) == 5
    assert {ex.song for ex in test} <= held_out
    assert not {ex.song for ex in train} & held_out
    for ex, mix_path, tgt_path in iter_pairs(tmp_path / "train"):
        assert ex.task == "T1" and ex.group == "mix" and ex.sr == 32000
        assert 0.3 <= ex.duration_s <= 0.4
        info = sf.info(str(mix_path))
        assert info.samplerate == 32000 and info.channels == 1
        assert sf.info(str(tgt_path)).frames == info.frames
    for ex in test:
        assert ex.duration_s == 1.0 and ex.meta["artifacts"] == "musicgen_like"
        assert any(e["name"] == "dither" for e in ex.effects)
    assert stats["test"]["effect_rates"]["mixture/dither"] == 1.0


def test_build_musicgen_like_from_a_folder_of_clean_music(tmp_path):
    """``clean_dir``: the T1 pairs come from a user's own files (any format, any rate,
    nested folders); the test files are held out by name; the stats carry no absolute path."""
    lib = tmp_path / "library"
    rng = np.random.default_rng(0)
    names = ["a.wav", "b/c.flac", "b/d.ogg", "e.wav", "f.flac"]
    for i, name in enumerate(names):
        t = np.arange(int(2.0 * 44100)) / 44100
        tone = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.01 * rng.standard_normal(t.size)
        save_audio(lib / name, np.stack([tone, tone]).astype(np.float32), 44100)
    (lib / "notes.txt").write_text("not audio")
    test, train = build.clean_folder_split(lib, 0.4)
    assert test == ["a.wav", "b/d.ogg"] and train == ["b/c.flac", "e.wav", "f.flac"]
    assert build.clean_folder_split(lib, 1.0) == (sorted(names), [])
    assert build.clean_folder_split(lib, 0.0) == ([], sorted(names))
    out = tmp_path / "out"
    stats = build.build_musicgen_like(
        "no-rawstems", "no-splits", out, n_test=2, n_train=6, test_s=1.0,
        train_crop_s=(0.3, 0.4), clean_dir=lib, clean_test_fraction=0.4,
    )  # fmt: skip
    assert {ex.song for ex in read_manifest(out / "test")} == set(test)
    assert {ex.song for ex in read_manifest(out / "train")} == set(train)
    for ex, mix_path, tgt_path in iter_pairs(out / "train"):
        assert ex.sr == 32000 and not ex.meta["embedded"]
        assert sf.info(str(mix_path)).channels == 1
        assert sf.info(str(tgt_path)).frames == sf.info(str(mix_path)).frames
    assert stats["clean_dir"] == "library" and str(tmp_path) not in (out / "stats.json").read_text()
    with pytest.raises(StageError, match="no audio files"):
        build.clean_folder_split(_empty(tmp_path), 0.2)
    with pytest.raises(StageError, match="not a folder"):
        build.clean_folder_split(tmp_path / "missing", 0.2)


def _empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("no music here")
    return folder


def _stage(name: str):
    from tests.helpers import load_script

    return load_script(f"stages/{name}.py", f"stage_{name}")


def test_stage_scripts_build_atomically_and_reject_typos(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "0")
    root, splits_dir = tiny
    params = {
        "seed": 3,
        "compute": {"workers": 1},
        "msr": {"targets": ["Voc"], "n_test": 1, "n_train": 1, "segment_s": 0.5,
                "degrade": {"mixture_chain": {"mp3": 1.0}}},
        "musicgen_like": {"n_test": 1, "n_train": 1, "test_s": 0.5, "train_crop_s": [0.3, 0.3],
                          "subtype": "PCM_16"},
    }  # fmt: skip
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    msr = tmp_path / "data" / "msr"
    out = {split: msr / split / "Voc" for split in ("test", "train")}
    common = ["--params", str(params_path), "--rawstems", str(root), "--splits", str(splits_dir)]
    split_args = ["--out-test", str(out["test"]), "--out-train", str(out["train"])]
    _stage("build_msr").main([*common, "--target", "Voc", *split_args])
    (ex,) = read_manifest(out["test"])
    assert ex.seed == example_seed(3, "Voc", "test", 0)  # the top-level seed
    assert "mp3" in ex.effect_names()
    test_stats = json.loads((out["test"] / "stats.json").read_text())
    assert test_stats["test"]["examples"] == 1 and "train" not in test_stats
    assert json.loads((out["train"] / "stats.json").read_text())["train"]["examples"] == 1
    for split in ("test", "train"):  # no temporary folder left
        assert sorted(p.name for p in (msr / split).iterdir()) == ["Voc"]

    mg_out = tmp_path / "data" / "musicgen_like"
    _stage("build_musicgen_like").main([*common, "--out", str(mg_out)])
    (mg,) = read_manifest(mg_out / "train")
    assert sf.info(str(mg_out / "train" / mg.mixture)).subtype == "PCM_16"
    assert sf.info(str(out["test"] / ex.mixture)).subtype == "PCM_24"  # the default

    params["msr"]["n_tests"] = 2
    params_path.write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exc:
        _stage("build_msr").main([*common, "--target", "Voc", *split_args])
    assert exc.value.code == 1
    assert "msr: unknown key(s) n_tests" in capsys.readouterr().err
    assert read_manifest(out["test"])[0].id == ex.id  # the previous output is untouched


def test_examples_from_the_embedded_stand_in_are_flagged(tiny, tmp_path):
    root, splits_dir = tiny
    kw = dict(n_test=1, n_train=0, segment_s=1.0, seed=5)
    build.build_msr(root, splits_dir, "Voc", tmp_path / "plain", **kw)
    assert not read_manifest(tmp_path / "plain" / "test")[0].meta["embedded"]
    (root / "dataset.json").write_text('{"stand_in": true}')
    try:
        build.build_msr(root, splits_dir, "Voc", tmp_path / "emb", **kw)
    finally:
        (root / "dataset.json").unlink()
    assert read_manifest(tmp_path / "emb" / "test")[0].meta["embedded"] is True
