from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from musicrestore.core.audio import load_audio, save_audio
from musicrestore.core.stage import StageError
from musicrestore.data.taxonomy import Song, scan, write_splits
from musicrestore.separation import SOURCES, load_separator
from musicrestore.train.separator import (
    CHECKPOINT,
    SeparatorTrainConfig,
    build_model,
    config_from_params,
    train_separator,
)
from musicrestore.train.separator_data import SongBank, partition_songs, sample_batch, song_sources
from tests.helpers import make_tiny_rawstems

SR = 44100
# demucs' tiny random init warns about zero-element and single-value std layers.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
# Tiny but real: the default small HTDemucs on 0.5-s segments (~0.2 s a step on an idle CPU);
# a high lr so that 4 steps measurably lower the loss.
TINY = {"batch": 2, "segment_s": 0.5, "lr": 2e-2, "checkpoint_every": 100, "log_every": 1}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The CI machine has 2 cores shared by parallel jobs: one intra-op thread is 2-3x faster
    # than two fighting over them. Restored afterwards, so nothing leaks into other tests.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """3 synthetic songs (Voc, Bass, Rhy, Gtr), the last one held out as the test song."""
    root = make_tiny_rawstems(tmp_path_factory.mktemp("raw") / "rawstems", n_songs=3)
    splits = tmp_path_factory.mktemp("splits")
    write_splits(splits, {"Voc": (["Artist0|Song0", "Artist1|Song1"], ["Artist2|Song2"])})
    return root, splits


def test_song_sources_maps_groups_to_demucs_sources() -> None:
    ones = np.ones((2, 4), np.float32)
    groups = {"Voc": ones, "Gtr": 2 * ones, "Kbs": 3 * ones, "Rhy": 4 * ones, "MiscRoom": 9 * ones}
    out = song_sources(groups)  # (S, C, T)
    assert out.shape == (4, 2, 4)
    got = {name: float(out[i, 0, 0]) for i, name in enumerate(SOURCES)}
    assert got == {"drums": 4.0, "bass": 0.0, "other": 5.0, "vocals": 1.0}


def test_partition_holds_out_every_test_song() -> None:
    songs = [Song(f"A|{i}") for i in range(4)]
    splits = {"Voc": (["A|0", "A|1"], ["A|2"]), "Bass": (["A|0"], ["A|3"])}
    train, test = partition_songs(songs, splits)
    assert [s.name for s in train] == ["A|0", "A|1"] and [s.name for s in test] == ["A|2", "A|3"]


def test_sample_batch_sums_and_is_seeded(dataset: tuple[Path, Path]) -> None:
    root, _ = dataset
    bank = SongBank(root, scan(root), SR)
    config = SeparatorTrainConfig(**TINY)
    mix, sources = sample_batch(bank, config, np.random.default_rng(4))
    assert mix.shape == (2, 2, SR // 2) and sources.shape == (2, 4, 2, SR // 2)
    np.testing.assert_allclose(mix, sources.sum(axis=1), atol=1e-6)
    again, _ = sample_batch(bank, config, np.random.default_rng(4))
    assert np.array_equal(mix, again)
    # Without augmentation a segment is an exact, coherent crop of one song.
    plain = SeparatorTrainConfig(**TINY, gain_db=(0.0, 0.0), flip_p=0.0, remix_p=0.0)
    _, crops = sample_batch(bank, plain, np.random.default_rng(5))
    item = crops[0]  # (S, C, T)
    found = False
    for index in range(len(bank)):
        song = bank[index]
        windows = np.lib.stride_tricks.sliding_window_view(song[3, 0], 16)
        for start in np.flatnonzero((windows == item[3, 0, :16]).all(axis=1)):
            found |= bool(np.array_equal(item, song[:, :, start : start + SR // 2]))
    assert found


def test_config_errors_are_one_line() -> None:
    with pytest.raises(StageError, match="unknown key.*stepz"):
        config_from_params({"stepz": 3})
    with pytest.raises(StageError, match="batch"):
        config_from_params({"batch": 0})


def _fixed_loss(model: torch.nn.Module, root: Path) -> float:
    bank = SongBank(root, scan(root), SR)
    mix, sources = sample_batch(bank, SeparatorTrainConfig(**TINY), np.random.default_rng(99))
    model.eval()
    with torch.no_grad():
        est = model(torch.from_numpy(mix))
    return float(torch.nn.functional.l1_loss(est, torch.from_numpy(sources)))


def test_training_lowers_loss_resumes_and_is_deterministic(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    root, splits = dataset
    work = tmp_path / "work"
    first = train_separator(
        root, splits, work, SeparatorTrainConfig(**TINY, steps=2), progress=False
    )
    assert first.step == 2 and first.resumed_from == 0 and (work / CHECKPOINT).is_file()
    assert first.train_songs == ["Artist0|Song0", "Artist1|Song1"]  # the test song is held out
    logged: list[tuple[int, float]] = []
    resumed = train_separator(
        root,
        splits,
        work,
        SeparatorTrainConfig(**TINY, steps=4),
        progress=False,
        on_log=lambda step, loss: logged.append((step, loss)),
    )
    assert resumed.resumed_from == 2 and resumed.step == 4 and len(resumed.losses) == 4
    assert [s for s, _ in logged] == [3, 4]
    assert resumed.losses[:2] == first.losses

    straight = train_separator(
        root, splits, tmp_path / "other", SeparatorTrainConfig(**TINY, steps=4), progress=False
    )
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key

    initial = _fixed_loss(build_model(SeparatorTrainConfig(**TINY)), root)
    assert _fixed_loss(resumed.model, root) < 0.95 * initial

    # Another configuration never continues this checkpoint.
    other = train_separator(
        root, splits, work, SeparatorTrainConfig(**{**TINY, "lr": 1e-2}, steps=1), progress=False
    )
    assert other.resumed_from == 0


def test_same_song_names_with_other_audio_train_from_scratch(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    """The resume key covers the training audio, not only the song names: a checkpoint of
    other audio is never continued (nor exported as if it were trained on this data)."""
    root, splits = dataset
    work = tmp_path / "work"
    train_separator(root, splits, work, SeparatorTrainConfig(**TINY, steps=2), progress=False)
    same = train_separator(
        root, splits, work, SeparatorTrainConfig(**TINY, steps=2), progress=False
    )
    assert same.resumed_from == 2  # unchanged data: the finished checkpoint is reused
    stem = sorted((root / "Artist0|Song0").rglob("*.flac"))[0]
    wave, sr = load_audio(stem)
    save_audio(stem, 0.5 * wave, sr)  # same names, other audio
    changed = train_separator(
        root, splits, work, SeparatorTrainConfig(**TINY, steps=2), progress=False
    )
    assert changed.resumed_from == 0 and changed.step == 2


def _stage_main():  # stages/ is not a package: load the script as a module
    from tests.helpers import load_script

    return load_script("stages/train_separator.py", "stage_train_separator").main


def test_stage_exports_a_loadable_trained_separator(
    dataset: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, splits = dataset
    monkeypatch.chdir(tmp_path)
    params = {
        "separate": {"model": "trained", "train": {**TINY, "steps": 2}, "eval": {"segment_s": 10}}
    }
    Path("params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--rawstems", str(root), "--splits", str(splits), "--out", "models/separator"]
    _stage_main()(argv)
    out = Path("models/separator")
    assert (Path("models/.separator_work") / CHECKPOINT).is_file()
    names = {p.name for p in out.iterdir()}
    assert {"trained.yaml", "separator.json", "metrics.json", "loss.csv"} <= names
    assert len(Path(out / "loss.csv").read_text().splitlines()) == 1 + 2

    metrics = json.loads((out / "metrics.json").read_text())
    # One 2-s test song, shorter than a 10-s window: one segment, every present source scored.
    assert metrics["segments"] == {"drums": 1, "bass": 1, "other": 1, "vocals": 1}
    for name in SOURCES:
        assert np.isfinite(metrics[name]) and metrics["mixture"][name] < 5.0  # 4 equal stems

    sep = load_separator("trained", repo=out, shifts=0)
    wave = np.zeros((2, SR // 2), np.float32)
    wave[:, ::100] = 0.5
    assert sep.separate(wave, SR)["bass"].shape == wave.shape

    # Re-running with every step done only exports and evaluates again: same weights.
    before = sorted(p.name for p in out.glob("*.safetensors"))
    _stage_main()(argv)
    assert sorted(p.name for p in out.glob("*.safetensors")) == before

    (Path("params.yaml")).write_text(yaml.safe_dump({"separate": {"model": "nosuchmodel"}}))
    with pytest.raises(SystemExit) as exit_info:
        _stage_main()(argv)
    assert exit_info.value.code == 1
    assert (out / "trained.yaml").is_file()  # a failed stage leaves the previous output alone


def test_stage_materialises_a_pretrained_model(
    dataset: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``separate.model: htdemucs`` copies the model out of the (offline) HF cache into the
    same folder layout, so downstream stages load it the same way as the trained one."""
    import huggingface_hub.constants as hf_constants

    from musicrestore.separation import export_repo, tiny_htdemucs

    root, splits = dataset
    commit = "b" * 40
    hub = tmp_path / "hub" / "models--adefossez--HTDemucs"
    export_repo(tiny_htdemucs(3), hub / "snapshots" / commit, "htdemucs", formats=("safetensors",))
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump({"seed": 0, "separate": {"model": "htdemucs"}}))
    _stage_main()(["--rawstems", str(root), "--splits", str(splits), "--out", "sep"])
    info = json.loads(Path("sep/separator.json").read_text())
    assert info["origin"] == "pretrained" and info["model"] == "htdemucs"
    assert not Path(".sep_work").exists()  # nothing trained
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty"))  # folder only
    wave = np.random.default_rng(0).standard_normal((2, SR // 2)).astype(np.float32) * 0.1
    got = load_separator("htdemucs", repo="sep", shifts=0).separate(wave, SR)
    want = load_separator("htdemucs", repo=hub / "snapshots" / commit, shifts=0).separate(wave, SR)
    assert np.array_equal(got["drums"], want["drums"])
