"""The README's result block is generated from the committed result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicrestore.report import readme

ROOT = Path(__file__).resolve().parents[1]


def test_readme_results_match_the_committed_files() -> None:
    """Every number in the README's results block comes from reports/ (no hand-typed figure)."""
    if not (ROOT / "reports" / "metrics.json").is_file():
        pytest.skip("reports/metrics.json is not committed yet")
    assert readme.main(["--root", str(ROOT), "--check"]) == 0


def test_block_is_rebuilt_from_the_files(tmp_path: Path) -> None:
    (tmp_path / "reports" / "timing").mkdir(parents=True)
    doc = {
        "identity": {"t1": {"si_sdr": 7.3125, "lsd": 1.86}, "t2": {"si_sdr": 1.39}},
        "preclean": {"t1": {"si_sdr": 8.45, "lsd": 1.51}, "t2": {"si_sdr": 1.48}},
    }
    (tmp_path / "reports" / "metrics.json").write_text(json.dumps(doc))
    (tmp_path / "reports" / "timing" / "preclean.json").write_text('{"rtf_t1": 0.025}')
    (tmp_path / "README.md").write_text(f"intro\n{readme.BEGIN}\nold 99.9\n{readme.END}\nrest\n")
    assert readme.main(["--root", str(tmp_path), "--check"]) == 1  # stale
    assert readme.main(["--root", str(tmp_path)]) == 0
    text = (tmp_path / "README.md").read_text()
    assert "old 99.9" not in text and text.startswith("intro\n") and text.endswith("rest\n")
    assert "| preclean | 8.45 | 1.51 | 1.48 | 0.025 | – |" in text
    assert "| identity | 7.31 | 1.86 | 1.39 | – | – |" in text
    assert readme.main(["--root", str(tmp_path), "--check"]) == 0
