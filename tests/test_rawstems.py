from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from musicrestore.core.stage import StageError
from musicrestore.data import rawstems
from musicrestore.data.taxonomy import scan
from tests.helpers import make_tiny_rawstems

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_offline_hf_cache(cache_dir: Path, source: Path, repo_id: str = rawstems.HF_REPO) -> Path:
    """Lay out ``source`` as the HF hub cache would after a download: blobs by hash,
    a snapshot of symlinks and ``refs/main``; plus a README that is not a stem."""
    repo = cache_dir / f"datasets--{repo_id.replace('/', '--')}"
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    files = [p for p in source.rglob("*") if p.is_file()]
    readme = source / "README.md"
    readme.write_text("RawStems test copy\n")
    for path in [*files, readme]:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        shutil.copyfile(path, blob)
        link = snap / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache_dir


@pytest.fixture
def hf_cache(tmp_path: Path) -> Path:
    src = make_tiny_rawstems(tmp_path / "src", n_songs=3, duration_s=0.5)
    return make_offline_hf_cache(tmp_path / "hub", src)


def test_fetch_hf_offline_from_cache_selects_songs_and_groups(
    tmp_path: Path, hf_cache: Path
) -> None:
    out = rawstems.fetch_hf(
        tmp_path / "out",
        songs=["Artist1|Song1", "Artist2|*"],
        groups=["Voc", "Bass"],
        cache_dir=hf_cache,
    )
    songs = scan(out, strict=True)
    assert [s.name for s in songs] == ["Artist1|Song1", "Artist2|Song2"]
    assert all(s.groups == {"Voc", "Bass"} for s in songs)
    assert not (out / "README.md").exists()
    # hard links into the cache: no second copy of the audio
    f = out / "Artist1|Song1/Voc/LV/lead.flac"
    assert f.stat().st_nlink >= 2


def test_fetch_hf_all(tmp_path: Path, hf_cache: Path) -> None:
    out = rawstems.fetch_hf(tmp_path / "out", cache_dir=hf_cache)
    assert len(scan(out)) == 3


def test_fetch_hf_offline_without_cache_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(StageError) as exc:
        rawstems.fetch_hf(tmp_path / "out", cache_dir=tmp_path / "empty")
    msg = str(exc.value)
    assert "\n" not in msg and "yongyizang/RawStems" in msg and "offline" in msg


def test_fetch_hf_selection_matches_nothing(tmp_path: Path, hf_cache: Path) -> None:
    with pytest.raises(StageError, match="no file matches"):
        rawstems.fetch_hf(tmp_path / "out", songs=["Nobody|Nothing"], cache_dir=hf_cache)


def test_selection_patterns_validate_groups() -> None:
    assert rawstems.selection_patterns() == ["*/*/**"]
    assert rawstems.selection_patterns(["A|B [live]"], ["Voc"]) == ["A|B [[]live]/Voc/**"]
    with pytest.raises(StageError, match="unknown group"):
        rawstems.selection_patterns(groups=["Drums"])


def test_link_local_links_without_copying(tmp_path: Path) -> None:
    src = make_tiny_rawstems(tmp_path / "src", n_songs=2, duration_s=0.3)
    out = rawstems.link_local(src, tmp_path / "out", groups=["Gtr"])
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.flac"))
    assert files == ["Artist0|Song0/Gtr/EG/gtr.flac", "Artist1|Song1/Gtr/EG/gtr.flac"]
    assert (out / files[0]).stat().st_ino == (src / files[0]).stat().st_ino
    with pytest.raises(StageError, match="not a folder"):
        rawstems.link_local(tmp_path / "missing", tmp_path / "o2")
    with pytest.raises(StageError, match="nothing matches"):
        rawstems.link_local(src, tmp_path / "o3", songs=["X|Y"])


def test_active_seconds() -> None:
    sr = 1000
    wave = np.zeros((2, 5 * sr), np.float32)
    wave[:, : 2 * sr] = 0.5  # 2 loud seconds
    wave[:, 3 * sr : 4 * sr] = 0.5 * 10 ** (-50 / 20)  # one second at -50 dB re peak: inactive
    assert rawstems.active_seconds(wave, sr) == 2
    assert rawstems.active_seconds(np.zeros((1, sr)), sr) == 0


def test_build_index_and_summary(tmp_path: Path) -> None:
    src = make_tiny_rawstems(tmp_path / "src", n_songs=2, duration_s=2.0)
    index = rawstems.build_index(src, workers=1)
    assert len(index) == 8 and set(index["group"]) == {"Voc", "Bass", "Rhy", "Gtr"}
    assert (index["duration_s"] == 2.0).all() and (index["sr"] == 44100).all()
    tones = index[index["group"] != "Rhy"]
    assert (tones["active_s"] == 2).all()
    summary = rawstems.index_summary(index)
    assert summary["songs"] == 2 and summary["songs_per_group"]["Voc"] == 2
    assert summary["hours"] == pytest.approx(4.0 / 3600, abs=1e-4)
