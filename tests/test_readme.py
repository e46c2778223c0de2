"""The README's result block is generated from the committed result files."""

from __future__ import annotations

import json
import shutil
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


def test_block_needs_only_committed_files(tmp_path: Path) -> None:
    """A fresh clone (README + git-tracked reports, no DVC outputs) renders the same block.

    The model table once came from ``models/*/metrics.json``, which live in the DVC cache, so
    the check passed where the models were checked out and failed on a clean clone.
    """
    if not (ROOT / "reports" / "metrics.json").is_file():
        pytest.skip("reports/metrics.json is not committed yet")
    for name in ("metrics.json", "models.json"):
        if (ROOT / "reports" / name).is_file():
            (tmp_path / "reports").mkdir(exist_ok=True)
            (tmp_path / "reports" / name).write_bytes((ROOT / "reports" / name).read_bytes())
    # every committed timing file, the per-group ones (timing/uformer/msr_<group>.json) too
    shutil.copytree(ROOT / "reports" / "timing", tmp_path / "reports" / "timing")
    (tmp_path / "README.md").write_bytes((ROOT / "README.md").read_bytes())
    (tmp_path / "models" / "stray").mkdir(parents=True)  # an untracked model must not count
    (tmp_path / "models" / "stray" / "metrics.json").write_text('{"val_si_sdr": 99.0}')
    assert readme.main(["--root", str(tmp_path), "--check"]) == 0


def test_model_table_comes_from_reports_models_json(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text('{"identity": {"t1": {"si_sdr": 1.0}}}')
    models = {"separator": {"mean": -2.0, "vocals": 1.0}, "uformer/Voc": {"val_si_sdr": 3.25}}
    (tmp_path / "reports" / "models.json").write_text(json.dumps(models))
    block = readme.results_block(tmp_path)
    assert "| separator | mean SI-SDR dB -2 |" in block
    assert "| uformer/Voc | val_si_sdr 3.25 |" in block


def test_per_group_timings_combine_into_one_rtf(tmp_path: Path) -> None:
    """restore-uformer@<group> writes one timing file per group: the README's RTF is the
    summed compute time over the summed audio time, not a mean of the groups' RTFs."""
    sub = tmp_path / "uformer"
    sub.mkdir(parents=True)
    (sub / "msr_Voc.json").write_text('{"audio_s": 10.0, "compute_s": 1.0, "rtf": 0.1}')
    (sub / "msr_Bass.json").write_text('{"audio_s": 30.0, "compute_s": 9.0, "rtf": 0.3}')
    (tmp_path / "identity.json").write_text('{"rtf": 0.001}')
    timing = readme.read_timing(tmp_path)
    assert timing["uformer"]["rtf_t2"] == pytest.approx(0.25)  # 10 / 40, not (0.1 + 0.3) / 2
    assert timing["identity"] == {"rtf": 0.001}


def test_every_set_param_in_the_docs_names_a_key_of_params_yaml() -> None:
    """``dvc exp run -S key=value`` overrides only keys params.yaml holds (Hydra refuses
    others: "Key ... is not in struct"); a key the file lacks must be written ``+key=value``.
    Every ``-S`` example of the README and docs/ must therefore run as written."""
    import re

    from musicrestore.core.config import load_yaml

    params = load_yaml(ROOT / "params.yaml")
    examples = re.compile(r"-S '?(\+?)([A-Za-z_][\w.]*)=")
    found, bad = 0, []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for plus, key in examples.findall(doc.read_text()):
            found += 1
            node: object = params
            for part in key.split("."):
                node = node.get(part, KeyError) if isinstance(node, dict) else KeyError
            if (node is KeyError) != bool(plus):
                bad.append(f"{doc.name}: -S {plus}{key}")
    assert found >= 10, found  # the pattern still finds the examples
    assert not bad, bad
