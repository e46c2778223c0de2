"""The report on a tiny fake set of variants: every output, its keys, DVC parsing it, the
HTML page loaded in a real headless browser, and byte-identical re-runs."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest

from musicrestore import report as rp
from musicrestore.core.audio import save_audio
from musicrestore.data.dataset import Example, write_manifest
from musicrestore.evaluation import evaluate as ev

SR = 16_000
VARIANTS = {"identity": 0.0, "better": 0.6}  # fraction of the way from degraded to clean


def _make_set(root: Path, task: str, meta: dict) -> None:
    rng = np.random.default_rng(7)
    examples = []
    for i in range(2):
        t = np.arange(int(1.5 * SR)) / SR
        clean = (
            0.2 * np.sin(2 * np.pi * (300 + 100 * i) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
        )
        clean = np.stack([clean, 0.8 * clean]).astype(np.float32)
        noisy = clean + 0.05 * rng.standard_normal(clean.shape).astype(np.float32)
        save_audio(root / f"m{i}.wav", noisy, SR)
        if task != "T3":
            save_audio(root / f"c{i}.wav", clean, SR)
        examples.append(
            Example(
                id=f"song{i}|take#1" if i else "clip0",  # odd characters must survive file naming
                task=task,
                mixture=f"m{i}.wav",
                target=None if task == "T3" else f"c{i}.wav",
                sr=SR,
                duration_s=1.5,
                song=f"A|S{i}",
                group="Voc" if task == "T2" else "mix",
                effects=[{"name": "noise", "stage": "mixture", "params": {}}],
                meta=meta,
            )
        )
    write_manifest(root, examples)
    for variant, blend in VARIANTS.items():
        out = root.parent / "restored" / variant / root.name
        out.mkdir(parents=True)
        for ex in examples:
            noisy = __import__("soundfile").read(root / ex.mixture, always_2d=True)[0].T
            clean = (
                __import__("soundfile").read(root / ex.target, always_2d=True)[0].T
                if ex.target
                else noisy
            )
            save_audio(
                out / f"{ex.id}.wav", ((1 - blend) * noisy + blend * clean).astype(np.float32), SR
            )
        ev.evaluate(
            root,
            out,
            root.parent / "eval" / variant / root.name,
            variant,
            root.name,
            ev.EvalConfig(segment_s=1.0, min_segment_s=0.25),
            progress=False,
        )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    for name, task, meta in SETS:
        (root / name).mkdir()
        _make_set(root / name, task, meta)
    doc = rp.build_report(
        root / "eval", root / "reports", root / "restored", _testsets(root), CONFIG
    )
    return root, doc


SETS = (
    ("msr_Voc", "T2", {"embedded": True}),
    ("musicgen", "T3", {"simulated": True}),
    ("musicgen_like", "T1", {"simulated": True}),
)
CONFIG = rp.ReportConfig(n_examples=2, excerpt_s=1.0, figure_dpi=40)


def _testsets(root: Path) -> dict[str, Path]:
    return {name: root / name for name, _, _ in SETS}


def test_metrics_json_holds_a_few_headline_numbers_and_no_prose(built):
    root, doc = built
    on_disk = json.loads((root / "reports" / "metrics.json").read_text())
    assert on_disk == doc
    assert list(doc) == ["identity", "better"]  # the baseline first
    for entry in doc.values():
        assert entry == {
            "t1": {"si_sdr": ANY, "mel_ssim": ANY, "lsd": ANY},
            "t2": {"si_sdr": ANY, "mel_ssim": ANY, "multi_mel_snr": ANY},
            "t3": {"p25_level_db": ANY},  # T3: no reference, the non-intrusive floor only
        }
        for values in entry.values():
            assert all(isinstance(v, float) and np.isfinite(v) for v in values.values())
            assert all(round(v, 4) == v for v in values.values())
    assert doc["better"]["t2"]["si_sdr"] > doc["identity"]["t2"]["si_sdr"]
    assert doc["better"]["t1"]["lsd"] < doc["identity"]["t1"]["lsd"]
    text = (root / "reports" / "metrics.json").read_text()
    assert '"' not in re.sub(r'"[a-z0-9_]+":', "", text)  # no string values: keys only
    assert "rtf" not in text


def _summary(variant: str, testset: str, task: str, **means: float) -> rp.Evaluation:
    metrics = {k: {"mean": v, "ci": 0.1, "n": 3} for k, v in means.items()}
    return rp.Evaluation(variant, testset, {"tasks": [task], "metrics": metrics}, [])


def test_t2_headline_is_the_mean_over_the_msr_sets_and_absent_sets_are_left_out():
    collected = {
        f"msr_{g}": {
            v: _summary(v, f"msr_{g}", "T2", si_sdr=base + off, mel_ssim=0.5, multi_mel_snr=1.0)
            for v, off in (("identity", 0.0), ("x", 2.0))
        }
        for g, base in (("Voc", 1.0), ("Bass", 4.0))
    }
    doc = rp.metrics_document(collected, "identity")
    assert doc == {
        "identity": {"t2": {"si_sdr": 2.5, "mel_ssim": 0.5, "multi_mel_snr": 1.0}},
        "x": {"t2": {"si_sdr": 4.5, "mel_ssim": 0.5, "multi_mel_snr": 1.0}},
    }
    assert rp.metrics_document(collected, "identity", ["si_sdr"])["x"] == {"t2": {"si_sdr": 4.5}}


def test_t2_table1_layout_per_group_and_variant():
    """Seed 004's Table 1: a row per group plus the mean of group means, a column per
    variant among identity/demucs/demucs_dsp/uformer, and the groups each one wins."""
    from musicrestore.report.markdown import table1

    collected = {
        f"msr_{g}": {
            v: _summary(v, f"msr_{g}", "T2", si_sdr=base + off, mel_ssim=0.5, multi_mel_snr=1.0)
            for v, off in (("identity", 0.0), ("uformer", 0.5 if g == "Voc" else -1.0), ("x", 3.0))
        }
        for g, base in (("Voc", 1.0), ("Bass", 4.0))
    }
    text = "\n".join(table1(collected))
    assert "| group | identity | uformer |" in text  # x is no Table-1 variant
    assert "| Voc | 1.00 ± 0.10 | 1.50 ± 0.10 |" in text
    assert "| Bass | 4.00 ± 0.10 | 3.00 ± 0.10 |" in text
    assert "| **mean** | 2.50 | 2.25 |" in text
    assert "| beats identity | – | 1/2 |" in text
    assert text.count("### ") == 3
    assert table1({"musicgen_like": collected["msr_Voc"]}) == []


def test_tables_plots_and_markdown(built):
    root, _ = built
    out = root / "reports"
    for name in ("summary.csv", "by_group.csv", "by_degradation.csv", "clips.csv"):
        assert (out / "tables" / name).is_file(), name
    header = (out / "tables" / "summary.csv").read_text().splitlines()[0]
    assert header.split(",")[:6] == ["testset", "variant", "tasks", "groups", "metric", "mean"]
    assert "delta_vs_identity" in header
    plot = (out / "plots" / "msr_Voc" / "si_sdr.csv").read_text().splitlines()
    assert plot[0] == "variant,mean,ci,ci_low,ci_high,n" and len(plot) == 3
    assert not (out / "plots" / "musicgen" / "si_sdr.csv").exists()

    md = (out / "summary.md").read_text()
    # the stand-in note lives here and on the page, not in metrics.json
    assert "EMBEDDED STAND-IN" in md and "SIMULATED MUSICGEN" in md
    assert "EMBEDDED STAND-IN" in (out / "html" / "index.html").read_text()
    assert "## msr_Voc (embedded stand-in)" in md and "## musicgen (simulated)" in md
    tables = re.findall(r"^\| variant \|.*$", md, flags=re.M)
    assert len(tables) == 1 + 2 * 3  # headline, then mean ± CI and delta per test set
    head, mg, voc = tables[0], tables[3], tables[5]
    assert "T1 SI-SDR" in head and "T2 Multi-Mel-SNR" in head and "T3 P25 level" in head
    # the 25th-percentile level never comes before the intrusive metrics
    assert voc.index("SI-SDR") < voc.index("P25 level")
    assert "SI-SDR" not in mg and "P25 level" in mg and "Loudness" in mg
    assert re.search(r"^\| better \| [-\d.]+ ± [\d.]+ \|", md, flags=re.M)
    for name in ("summary.md", "tables/summary.csv", "html/index.html"):
        assert "rtf" not in (out / name).read_text().lower(), name  # no timings anywhere


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.srcs += [v for k, v in attrs if k in ("src", "href") and v and not v.startswith("#")]


def test_every_file_the_html_references_exists(built):
    root, _ = built
    html_dir = root / "reports" / "html"
    parser = _Links()
    parser.feed((html_dir / "index.html").read_text())
    # two examples per set; T1/T2: clean + degraded + 2 variants, T3: degraded + 2 variants
    assert parser.tags.get("audio") == 2 * 2 * (2 + 2) + 2 * (1 + 2)
    assert parser.tags.get("img") == 6 * 3 and parser.tags.get("table", 0) >= 6
    for src in parser.srcs:
        assert (html_dir / src).is_file(), src
    wav = next(html_dir.glob("audio/msr_Voc/*/clean.wav"))
    info = __import__("soundfile").info(str(wav))
    assert info.subtype == "PCM_16" and info.duration == pytest.approx(1.0)


def test_dvc_metrics_show_parses_metrics_json(built, tmp_path):
    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    if not Path(dvc).exists() or not shutil.which("git"):
        pytest.skip("dvc or git not installed")
    root, doc = built
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_CONFIG_NOSYSTEM": "1"}
    (tmp_path / "reports").mkdir()
    shutil.copy(root / "reports" / "metrics.json", tmp_path / "reports" / "metrics.json")
    (tmp_path / "dvc.yaml").write_text("metrics:\n  - reports/metrics.json\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, env=env)
    subprocess.run([dvc, "init", "-q"], cwd=tmp_path, check=True, env=env)
    shown = subprocess.run(
        [dvc, "metrics", "show", "--json"],
        cwd=tmp_path,
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    data = json.loads(shown.stdout)[""]["data"]["reports/metrics.json"]["data"]
    assert data["better"]["t2"]["si_sdr"] == pytest.approx(doc["better"]["t2"]["si_sdr"])


@contextlib.contextmanager
def _serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_html_page_loads_every_image_and_audio_in_headless_chromium(built, tmp_path):
    root, _ = built
    html_dir = root / "reports" / "html"
    with _serve(html_dir) as url:
        proc = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--mute-audio",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                f"{url}/index.html",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    dom = proc.stdout
    assert "<body" in dom, proc.stderr[-2000:]
    # the page's own check marks every <img>/<audio> once it loaded (naturalWidth > 0,
    # loadedmetadata) or failed, and sets body[data-media-check] when none is pending
    assert 'data-media-check="ok"' in dom, re.search(r'id="media-check">[^<]*', dom)
    n_media = len(re.findall(r"<(?:img|audio)\b", dom))
    assert n_media == 2 * 2 * (2 + 2) + 2 * (1 + 2) + 6 * 3
    assert len(re.findall(r'data-media="ok"', dom)) == n_media
    assert 'data-media="error"' not in dom


def test_report_stage_cli(built, tmp_path, monkeypatch, capsys):
    from tests.helpers import load_script

    root, _ = built
    stage = load_script("stages/report.py", "stage_report")
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "0")
    params = tmp_path / "params.yaml"
    params.write_text(
        "report:\n  n_examples: 1\n  excerpt_s: 0.5\n  figure_dpi: 30\n  audio_format: flac\n"
    )
    # no --restored / --testset: the folders each evaluate stage recorded are used
    argv = ["--params", str(params), "--eval", str(root / "eval")]
    stage.main([*argv, "--out", str(tmp_path / "out")])
    assert "EMBEDDED STAND-IN" in capsys.readouterr().out
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == set(rp.REPORT_OUTPUTS)  # no staging folder left
    # one example per set: clean, degraded and two variants; T3 has no clean
    assert len(list((out / "html" / "audio" / "msr_Voc").rglob("*.flac"))) == 4
    assert len(list((out / "html" / "audio" / "musicgen").rglob("*.flac"))) == 3
    assert len(list((out / "figures").rglob("*.png"))) == 3 * 3
    # a second run on the same inputs rewrites every file byte for byte (FLAC included)
    first = _tree(out)
    stage.main([*argv, "--out", str(out)])
    assert _tree(out) == first

    with pytest.raises(SystemExit) as err:
        stage.main([*argv, "--out", str(tmp_path / "out2"), "--eval", str(tmp_path / "nothing")])
    assert err.value.code == 1 and "evaluation folder not found" in capsys.readouterr().err

    # --models gathers every trained model's metrics.json into models.json (git keeps it)
    models = tmp_path / "models"
    for name, doc in {"unet_mask": '{"val_si_sdr": 8.5}', "uformer/Voc": '{"step": 3}'}.items():
        (models / name).mkdir(parents=True)
        (models / name / "metrics.json").write_text(doc)
    (models / ".unet_mask_work").mkdir()
    (models / ".unet_mask_work" / "metrics.json").write_text('{"step": 1}')
    stage.main([*argv, "--out", str(tmp_path / "out3"), "--models", str(models)])
    assert json.loads((tmp_path / "out3" / "models.json").read_text()) == {
        "uformer/Voc": {"step": 3},
        "unet_mask": {"val_si_sdr": 8.5},
    }


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_report_is_byte_identical_when_rebuilt(built):
    root, doc = built
    again = root / "reports_again"
    assert rp.build_report(root / "eval", again, root / "restored", _testsets(root), CONFIG) == doc
    first, second = _tree(root / "reports"), _tree(again)
    assert first.keys() == second.keys() and len(first) > 50
    assert [name for name in first if first[name] != second[name]] == []
    # nothing that changes from run to run: no software version or date in the PNGs
    png = next(v for k, v in first.items() if k.endswith(".png"))
    assert b"Matplotlib" not in png and b"tEXt" not in png and b"tIME" not in png
