"""Separation computed once (musicrestore.separation.stored, stages/separate.py): the
variants that separate the mixture read the stored stems, restore the same bytes as when
they separate for themselves, and never build the separator for a stored mixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicrestore.separation.stored import INDEX, StoredSeparator, separate_task, stem_key
from musicrestore.variants import build_context
from musicrestore.variants import restore as rs
from tests.helpers import BandSplitSeparator

from .test_evaluate import make_testset


class CountingFactory:
    """A separator factory that counts the separators it builds and the calls they get."""

    def __init__(self) -> None:
        self.built = self.calls = 0

    def __call__(self) -> BandSplitSeparator:
        self.built += 1
        sep = BandSplitSeparator()
        inner = sep.separate

        def separate(wave, sr):  # noqa: ANN001, ANN202
            self.calls += 1
            return inner(wave, sr)

        sep.separate = separate  # type: ignore[method-assign]
        return sep


def store(testset: Path, out: Path) -> None:
    """What stages/separate.py writes, for every mixture of ``testset``."""
    from musicrestore.data.dataset import read_manifest

    cache: dict = {}
    index = {}
    for ex in read_manifest(testset):
        result = separate_task(BandSplitSeparator, str(testset / ex.mixture), cache)
        for name, data in result["files"]:
            (out / result["key"]).mkdir(parents=True, exist_ok=True)
            (out / result["key"] / name).write_bytes(data)
        index[ex.id] = result["key"]
    (out / INDEX).write_text(json.dumps({"sources": result["sources"], "clips": index}))


@pytest.mark.parametrize("variant", ["demucs", "demucs_dsp", "adaptive"])
def test_stored_stems_restore_the_same_bytes_without_separating_again(tmp_path, variant):
    make_testset(tmp_path / "ts", n=2)
    store(tmp_path / "ts", tmp_path / "sep")
    live = build_context(variant, separator_factory=BandSplitSeparator)
    rs.restore_dataset(variant, tmp_path / "ts", tmp_path / "live", live, progress=False)
    counting = CountingFactory()
    stored = build_context(
        variant, separator_factory=lambda: StoredSeparator(tmp_path / "sep", counting)
    )
    rs.restore_dataset(variant, tmp_path / "ts", tmp_path / "stored", stored, progress=False)
    for path in sorted((tmp_path / "live").iterdir()):
        assert path.read_bytes() == (tmp_path / "stored" / path.name).read_bytes(), path.name
    assert counting.built == 0  # every mixture was in the store: no separator, no call
    assert stored.separator().hits == 2 and stored.separator().misses == 0


def test_what_is_not_stored_is_separated_on_the_fly_by_the_same_separator(tmp_path):
    import numpy as np

    make_testset(tmp_path / "ts", n=1)
    store(tmp_path / "ts", tmp_path / "sep")
    counting = CountingFactory()
    sep = StoredSeparator(tmp_path / "sep", counting)
    other = np.random.default_rng(1).standard_normal((2, 4410)).astype(np.float32) * 0.1
    stems = sep.separate(other, 44100)
    expected = BandSplitSeparator().separate(other, 44100)
    assert sorted(stems) == sorted(expected)
    assert all(np.array_equal(stems[k], expected[k]) for k in stems)
    assert (counting.built, counting.calls, sep.misses) == (1, 1, 1)
    assert stem_key(other, 44100) != stem_key(other, 48000)  # the rate is part of the key


def test_a_missing_store_is_one_line(tmp_path):
    with pytest.raises(Exception, match=r"index.json: not found \(run the separate stage first\)"):
        StoredSeparator(tmp_path / "nothing", BandSplitSeparator)
