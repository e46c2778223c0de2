"""The evaluate stage on a tiny fake test set written with the dataset contract."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from musicrestore.core.audio import save_audio
from musicrestore.data.dataset import Example, write_manifest
from musicrestore.evaluation import evaluate as ev
from musicrestore.evaluation import metrics as M

SR = 16_000
DURATION_S = 2.5  # with segment_s = 1 s: three segments, the last one 0.5 s


def _tone(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    f0 = rng.uniform(200, 600)
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5)) * (
        0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)
    )
    return (0.2 * np.stack([x, 0.7 * x])).astype(np.float32)


def make_testset(
    root: Path, task: str = "T2", n: int = 2, silent_target: bool = False
) -> list[Example]:
    """``n`` stereo clips: clean tone, degraded = clean + noise, effects alternating."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    examples = []
    for i in range(n):
        clean = _tone(i, int(DURATION_S * SR))
        if silent_target and i == 0:
            clean[:, :SR] = 0.0  # the first second of the first target is silent
        degraded = clean + 0.05 * rng.standard_normal(clean.shape).astype(np.float32)
        save_audio(root / f"mix_{i}.wav", degraded, SR)
        if task != "T3":
            save_audio(root / f"tgt_{i}.wav", clean, SR)
        effects = [{"name": "noise", "stage": "mixture", "params": {"std": 0.05}}]
        if i % 2:
            effects.append({"name": "reverb", "stage": "target", "params": {"room_size": 0.5}})
        examples.append(
            Example(
                id=f"clip{i}",
                task=task,
                mixture=f"mix_{i}.wav",
                target=None if task == "T3" else f"tgt_{i}.wav",
                sr=SR,
                duration_s=DURATION_S,
                song=f"Artist|Song {i}",
                group="Voc" if task == "T2" else "mix",
                effects=effects,
                seed=i,
                meta={"embedded": True},
            )
        )
    write_manifest(root, examples)
    return examples


def write_restored(testset: Path, out: Path, blend: float, mono: bool = False) -> None:
    """A fake variant: ``blend`` of the way from the degraded input to the clean target."""
    from musicrestore.core.audio import load_audio
    from musicrestore.data.dataset import iter_pairs

    out.mkdir(parents=True, exist_ok=True)
    per = {}
    for ex, mix_path, tgt_path in iter_pairs(testset):
        mix, _ = load_audio(mix_path)
        clean = load_audio(tgt_path)[0] if tgt_path else mix
        wave = (1 - blend) * mix + blend * clean
        save_audio(out / f"{ex.id}.wav", wave.mean(axis=0, keepdims=True) if mono else wave, SR)
        per[ex.id] = 0.1


def config(**kw) -> ev.EvalConfig:
    return ev.EvalConfig(**{"segment_s": 1.0, "min_segment_s": 0.25, **kw})


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("duration_s", "expected_s"),
    [
        (25.0, [(0, 10), (10, 20), (20, 25)]),
        (10.3, [(0, 10.3)]),
        (20.5, [(0, 10), (10, 20.5)]),
        (4.0, [(0, 4)]),
    ],
)
def test_segments_cover_every_sample_once(duration_s, expected_s):
    sr = 100
    bounds = ev.segment_bounds(int(duration_s * sr), sr, segment_s=10.0, min_segment_s=1.0)
    assert bounds == [(int(a * sr), int(round(b * sr))) for a, b in expected_s]
    assert ev.segment_id("x", 0, 1) == "x" and ev.segment_id("x", 2, 3) == "x#2"


def test_mean_ci_uses_student_t():
    stats = ev.mean_ci([1.0, 2.0, 3.0, 4.0, 5.0, float("nan")])
    # t(0.975, 4) = 2.776445; std = sqrt(2.5)
    assert stats["n"] == 5 and stats["mean"] == pytest.approx(3.0)
    assert stats["ci"] == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-6)
    assert ev.mean_ci([2.0]) == {"mean": 2.0, "ci": None, "std": None, "n": 1}
    assert ev.mean_ci([])["mean"] is None


# ---------------------------------------------------------------- the whole stage


def test_evaluate_writes_clips_and_summary(tmp_path):
    make_testset(tmp_path / "ts")
    write_restored(tmp_path / "ts", tmp_path / "restored" / "identity" / "ts", blend=0.0)
    write_restored(tmp_path / "ts", tmp_path / "restored" / "half" / "ts", blend=0.5)
    summaries = {}
    for variant in ("identity", "half"):
        out = tmp_path / "eval" / variant / "ts"
        summaries[variant] = ev.evaluate(
            tmp_path / "ts",
            tmp_path / "restored" / variant / "ts",
            out,
            variant,
            "ts",
            config(),
            progress=False,
        )
        assert json.loads((out / "summary.json").read_text()) == summaries[variant]

    with open(tmp_path / "eval" / "half" / "ts" / "clips.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [
        "clip0#0",
        "clip0#1",
        "clip0#2",
        "clip1#0",
        "clip1#1",
        "clip1#2",
    ]
    for key in ("id", "task", "group", "song", "fx_noise", "fx_reverb", *M.ALL_METRICS):
        assert key in rows[0]
    assert [r["fx_reverb"] for r in rows] == ["False"] * 3 + ["True"] * 3
    assert float(rows[2]["duration_s"]) == pytest.approx(0.5)

    s = summaries["half"]
    assert s["n_clips"] == 2 and s["n_segments"] == 6
    assert "rtf" not in s and "timing" not in s  # wall-clock figures stay out of the outputs
    assert s["tasks"] == ["T2"] and s["dataset"] == {"simulated": False, "embedded": True}
    assert set(s["metrics"]) == set(M.ALL_METRICS)
    assert {"mean", "ci", "n"} <= set(s["metrics"]["si_sdr"]) and s["metrics"]["si_sdr"]["n"] == 6
    assert set(s["by_group"]) == {"Voc"} and set(s["by_task"]) == {"T2"}
    assert s["by_degradation"]["reverb"]["n_segments"] == 3
    assert s["by_degradation"]["noise"]["metrics"]["si_sdr"]["n"] == 6
    # halfway to the clean target halves the noise: +6 dB SNR, and every metric improves
    gain = s["metrics"]["snr"]["mean"] - summaries["identity"]["metrics"]["snr"]["mean"]
    assert gain == pytest.approx(20 * math.log10(2), abs=0.05)
    for name in ("si_sdr", "mel_ssim", "multi_mel_snr"):
        assert s["metrics"][name]["mean"] > summaries["identity"]["metrics"][name]["mean"]


def test_t3_set_gets_non_intrusive_metrics_only(tmp_path):
    make_testset(tmp_path / "ts", task="T3")
    write_restored(tmp_path / "ts", tmp_path / "r", blend=0.0)
    s = ev.evaluate(
        tmp_path / "ts",
        tmp_path / "r",
        tmp_path / "out",
        "identity",
        "mg",
        config(),
        progress=False,
    )
    assert list(s["metrics"]) == list(M.NON_INTRUSIVE)
    header = (tmp_path / "out" / "clips.csv").read_text().splitlines()[0].split(",")
    assert "si_sdr" not in header and "p25_level_db" in header


def test_silent_reference_segments_are_left_out_of_intrusive_means(tmp_path):
    make_testset(tmp_path / "ts", n=1, silent_target=True)
    write_restored(tmp_path / "ts", tmp_path / "r", blend=0.0)
    s = ev.evaluate(
        tmp_path / "ts",
        tmp_path / "r",
        tmp_path / "out",
        "identity",
        "ts",
        config(),
        progress=False,
    )
    assert s["n_ref_silent"] == 1
    assert s["metrics"]["si_sdr"]["n"] == 2  # 3 segments, one silent
    assert s["metrics"]["loudness_lufs"]["n"] == 3  # non-intrusive metrics keep it
    rows = ev.read_clips_csv(tmp_path / "out" / "clips.csv")
    assert rows[0]["ref_silent"] is True and all(math.isfinite(r["si_sdr"]) for r in rows)


def test_mono_output_is_scored_as_dual_mono_and_small_length_errors_are_tolerated(tmp_path):
    make_testset(tmp_path / "ts", n=1)
    write_restored(tmp_path / "ts", tmp_path / "r", blend=0.5, mono=True)
    wave, _ = __import__("soundfile").read(tmp_path / "r" / "clip0.wav", always_2d=True)
    save_audio(tmp_path / "r" / "clip0.wav", wave.T[:, :-100].astype(np.float32), SR)  # 6 ms short
    s = ev.evaluate(
        tmp_path / "ts", tmp_path / "r", tmp_path / "out", "v", "ts", config(), progress=False
    )
    assert s["n_segments"] == 3

    save_audio(tmp_path / "r" / "clip0.wav", wave.T[:, :SR].astype(np.float32), SR)  # 1.5 s short
    with pytest.raises(ev.StageError, match="clip0.wav: restored output has 16000 samples"):
        ev.evaluate(
            tmp_path / "ts", tmp_path / "r", tmp_path / "out2", "v", "ts", config(), progress=False
        )


def _stage_module():
    from tests.helpers import load_script

    return load_script("stages/evaluate.py", "stage_evaluate")


def test_stage_cli_and_its_one_line_errors(tmp_path, monkeypatch, capsys):
    stage = _stage_module()
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "0")
    make_testset(tmp_path / "ts")
    write_restored(tmp_path / "ts", tmp_path / "r" / "ts", blend=0.0)
    params = tmp_path / "params.yaml"
    params.write_text(
        "compute:\n  workers: 1\nevaluate:\n  segment_s: 1.0\n  min_segment_s: 0.25\n"
    )
    argv = ["--params", str(params), "--testset", f"ts={tmp_path / 'ts'}"]
    argv += [
        "--restored",
        str(tmp_path / "r"),
        "--variant",
        "identity",
        "--out",
        str(tmp_path / "out"),
    ]
    stage.main([*argv, "--no-progress"])
    assert sorted(p.name for p in (tmp_path / "out" / "ts").iterdir()) == [
        "clips.csv",
        "summary.json",
    ]
    first = {p.name: p.read_bytes() for p in (tmp_path / "out" / "ts").iterdir()}
    stage.main([*argv, "--no-progress"])  # a re-run on the same inputs: the same bytes
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "ts").iterdir()} == first

    (tmp_path / "r" / "ts" / "clip1.wav").unlink()
    with pytest.raises(SystemExit) as err:
        stage.main([*argv[:-1], str(tmp_path / "out_missing"), "--no-progress"])
    assert err.value.code == 1
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and "clip1.wav" in message[0] and "missing" in message[0]
    assert not (tmp_path / "out_missing").exists()  # nothing half-written


def test_stage_scores_the_sets_its_restore_stage_wrote(tmp_path, monkeypatch, capsys):
    """evaluate@<variant> is one command for every variant: it is given every test set and
    scores those the restore stage wrote (a T1-only variant has no msr_<group> folder)."""
    stage = _stage_module()
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "0")
    make_testset(tmp_path / "a")
    make_testset(tmp_path / "b")
    write_restored(tmp_path / "a", tmp_path / "r" / "a", blend=0.0)  # b was not restored
    params = tmp_path / "params.yaml"
    params.write_text(
        "compute:\n  workers: 1\nevaluate:\n  segment_s: 1.0\n  min_segment_s: 0.25\n"
    )
    argv = ["--params", str(params), "--variant", "identity", "--no-progress"]
    argv += ["--testset", f"a={tmp_path / 'a'}", "--testset", f"b={tmp_path / 'b'}"]
    stage.main([*argv, "--restored", str(tmp_path / "r"), "--out", str(tmp_path / "out")])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a"]
    with pytest.raises(SystemExit) as err:  # nothing restored at all: one line, no output
        stage.main([*argv, "--restored", str(tmp_path / "none"), "--out", str(tmp_path / "o2")])
    assert err.value.code == 1 and not (tmp_path / "o2").exists()
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and "holds none of the test sets a, b" in message[0]


def test_two_dask_workers_give_the_same_rows(tmp_path, dask2):
    make_testset(tmp_path / "ts", n=3)
    write_restored(tmp_path / "ts", tmp_path / "r", blend=0.3)
    one, _ = ev.score_testset(tmp_path / "ts", tmp_path / "r", config(), progress=False)
    two, _ = ev.score_testset(tmp_path / "ts", tmp_path / "r", config(), engine=dask2)
    assert one == two  # the same numbers, in manifest order, bit for bit


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("confidence: 2", "evaluate.confidence: got 2"),
        ("segment_s: abc", "evaluate.segment_s: got 'abc'; expected a finite number"),
        ("wrkers: 2", "evaluate: unknown key(s) wrkers; known: segment_s,"),
    ],
)
def test_stage_refuses_a_bad_evaluate_block_in_one_line(
    tmp_path, monkeypatch, capsys, block, expected
):
    """The ``evaluate`` block goes through core.config.merge like every other stage's."""
    stage = _stage_module()
    monkeypatch.setenv("MUSICRESTORE_TRACKING", "0")
    params = tmp_path / "params.yaml"
    params.write_text(f"evaluate:\n  {block}\n")
    argv = ["--params", str(params), "--testset", f"ts={tmp_path / 'ts'}"]
    argv += ["--restored", str(tmp_path / "r"), "--variant", "identity"]
    argv += ["--out", str(tmp_path / "out"), "--no-progress"]
    with pytest.raises(SystemExit) as err:
        stage.main(argv)
    assert err.value.code == 1
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1 and message[0].startswith(f"error: {expected}")
    assert not (tmp_path / "out").exists()


def test_eval_config_keeps_the_params_yaml_values_and_types():
    """The defaults and a valid block give the same config as the dataclass itself."""
    block = {"segment_s": 10.0, "min_segment_s": 1.0, "metrics": ["si_sdr"]}
    assert ev.eval_config(block) == ev.EvalConfig(**block)
    assert ev.eval_config(None) == ev.EvalConfig()
    with pytest.raises(ev.StageError, match=r"^evaluate.metrics: got \['nope'\]; expected"):
        ev.eval_config({"metrics": ["nope"]})
