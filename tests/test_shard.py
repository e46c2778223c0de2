"""Sharded builds (``shard=(i, n)`` / ``--shard i/n``) and their merge
(musicrestore.degrade.merge): two shards merged equal the single build, byte for byte."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from musicrestore.core.stage import StageError
from musicrestore.data.dataset import read_manifest
from musicrestore.data.taxonomy import TARGETS, scan, split_songs, write_splits
from musicrestore.degrade import build, merge, pool

from .helpers import make_tiny_rawstems

REPO = Path(__file__).resolve().parents[1]
MSR_KW = dict(n_test=3, n_train=5, segment_s=0.5, seed=7, workers=1)
MGL_KW = dict(n_test=3, n_train=5, test_s=0.5, train_crop_s=(0.3, 0.4), seed=7, workers=1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("shard")
    root = make_tiny_rawstems(base / "rawstems", n_songs=4, duration_s=1.5)
    write_splits(base / "splits", split_songs(scan(root), TARGETS, seed=0, min_songs=1))
    return root, base / "splits"


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_two_msr_shards_merge_into_the_single_build(tiny, tmp_path):
    root, splits = tiny
    build.build_msr(root, splits, "Voc", tmp_path / "single", **MSR_KW)
    for i in range(2):
        stats = build.build_msr(root, splits, "Voc", tmp_path / f"s{i}", shard=(i, 2), **MSR_KW)
        assert stats["shard"] == {"index": i, "count": 2}
        ids = [ex.id for ex in read_manifest(tmp_path / f"s{i}" / "train")]
        assert ids == [f"Voc_train_{k:05d}" for k in range(i, 5, 2)]  # ids unchanged
    for split in ("test", "train"):
        shards = [tmp_path / f"s{i}" / split for i in (1, 0)]  # any order
        merge.merge_shards(tmp_path / "merged" / split, shards)
    assert folder_bytes(tmp_path / "merged") == folder_bytes(tmp_path / "single")


def test_two_musicgen_like_shards_merge_into_the_single_build(tiny, tmp_path):
    root, splits = tiny
    build.build_musicgen_like(root, splits, tmp_path / "single", **MGL_KW)
    for i in range(2):
        build.build_musicgen_like(root, splits, tmp_path / f"s{i}", shard=(i, 2), **MGL_KW)
    stats = merge.merge_shards(tmp_path / "merged", [tmp_path / "s0", tmp_path / "s1"])
    assert stats["test"]["examples"] == 3 and stats["train"]["examples"] == 5
    assert "shard" not in stats
    assert folder_bytes(tmp_path / "merged") == folder_bytes(tmp_path / "single")


def _stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_shard_option_and_merge_cli(tiny, tmp_path, monkeypatch, capsys):
    """``--shard i/n`` on the stage script, ``python -m musicrestore.degrade.merge`` on the
    shards; a missing shard or a malformed ``--shard`` is a one-line error."""
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "0")
    root, splits = tiny
    params = tmp_path / "params.yaml"
    mgl = {k: (list(v) if isinstance(v, tuple) else v) for k, v in MGL_KW.items()}
    params.write_text(yaml.safe_dump({"seed": 0, "musicgen_like": mgl}))
    common = ["--params", str(params), "--rawstems", str(root), "--splits", str(splits)]
    stage = _stage("build_musicgen_like")
    stage.main([*common, "--out", str(tmp_path / "single")])
    for i in range(2):
        stage.main([*common, "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2"])
    assert json.loads((tmp_path / "s1" / "stats.json").read_text())["shard"]["index"] == 1

    merge.main([str(tmp_path / "merged"), str(tmp_path / "s0"), str(tmp_path / "s1")])
    assert "merged 2 shards" in capsys.readouterr().out
    assert folder_bytes(tmp_path / "merged") == folder_bytes(tmp_path / "single")

    with pytest.raises(SystemExit) as exc:
        merge.main([str(tmp_path / "partial"), str(tmp_path / "s1")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: need shards 0..1 once each: missing [0]") and "\n" not in err
    assert not (tmp_path / "partial").exists()  # nothing half-merged is left
    with pytest.raises(SystemExit):
        stage.main([*common, "--out", str(tmp_path / "bad"), "--shard", "2/2"])
    assert "need 0 <= i < n" in capsys.readouterr().err


def test_merge_refuses_shards_of_different_builds(tiny, tmp_path):
    root, splits = tiny
    kw = {**MGL_KW, "n_train": 0}
    build.build_musicgen_like(root, splits, tmp_path / "a", shard=(0, 2), **kw)
    build.build_musicgen_like(root, splits, tmp_path / "b", shard=(1, 2), **{**kw, "seed": 8})
    with pytest.raises(StageError, match="other settings"):
        merge.merge_shards(tmp_path / "out", [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(StageError, match="not a shard"):
        build.build_musicgen_like(root, splits, tmp_path / "c", **kw)
        merge.merge_shards(tmp_path / "out2", [tmp_path / "a", tmp_path / "c"])
    assert pool.parse_shard("1/3") == (1, 3)
    with pytest.raises(StageError, match="expected i/n"):
        pool.parse_shard("1-3")
