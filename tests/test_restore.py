"""Running variants on arrays, files and datasets (the engine) and the restore stage; the
command line is tested in test_cli.py."""

from __future__ import annotations

import json
import runpy
import time
from pathlib import Path

import numpy as np
import pytest

from musicrestore import cli
from musicrestore.core.audio import AudioError, load_audio, save_audio
from musicrestore.data.dataset import Example, write_manifest
from musicrestore.variants import VARIANTS, Variant, build_context
from musicrestore.variants import restore as rs
from tests.helpers import BandSplitSeparator

ROOT = Path(__file__).resolve().parents[1]


def music(sr: int, channels: int, duration_s: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sr)) / sr
    x = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (110.0, 440.0, 1500.0))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) + 0.003 * rng.standard_normal(t.size)
    return np.stack([x, 0.7 * x][:channels]).astype(np.float32)


def fake_variant(monkeypatch, name: str, fn, **kw) -> Variant:
    v = Variant(name=name, fn=fn, description=name, params_key=name, **kw)
    monkeypatch.setitem(VARIANTS, name, v)
    return v


@pytest.mark.parametrize(
    "total,chunk,overlap", [(100, 100, 10), (1000, 300, 50), (1001, 300, 0), (5000, 997, 120)]
)
def test_plan_chunks_cover_with_exact_overlaps(total, chunk, overlap):
    chunks = rs.plan_chunks(total, chunk, overlap)
    assert chunks[0][0] == 0 and chunks[-1][1] == total
    assert all(b - a <= chunk for a, b in chunks)
    if len(chunks) > 1:
        assert all(chunks[k][1] - chunks[k + 1][0] == overlap for k in range(len(chunks) - 1))
        lengths = [b - a for a, b in chunks[:-1]]
        assert max(lengths) - min(lengths) <= 1 and chunks[-1][1] - chunks[-1][0] > overlap


def test_chunked_processing_is_seamless(monkeypatch):
    """A linear variant run in chunks equals the variant run at once: the cross-fades sum to
    one and every sample is emitted once, in order."""

    def half(wave, sr, ctx):
        ctx.record("chunk", ctx.chunk_index)
        return 0.5 * wave

    v = fake_variant(monkeypatch, "half", half)
    x = music(8000, 2, 3.0)
    ctx = build_context(v)
    out = rs.restore_array(v, x, 8000, ctx, chunk_s=0.7, overlap_s=0.1, context_s=0.05)
    np.testing.assert_allclose(out, 0.5 * x, atol=1e-7)
    assert [d["chunk"] for d in ctx.decisions["chunks"]] == list(range(5))


def test_a_variant_returning_its_input_never_modifies_the_callers_array(monkeypatch):
    v = fake_variant(monkeypatch, "same", lambda w, sr, ctx: w)
    x = music(8000, 2, 3.0)
    keep = x.copy()
    out = rs.restore_array(v, x, 8000, build_context(v), chunk_s=0.7, overlap_s=0.1)
    np.testing.assert_array_equal(x, keep)
    np.testing.assert_allclose(out, x, atol=1e-7)


def test_whole_signal_variants_are_not_chunked(monkeypatch):
    lengths = []
    v = fake_variant(
        monkeypatch, "whole", lambda w, sr, ctx: lengths.append(w.shape[1]) or w, whole_signal=True
    )
    rs.restore_array(v, music(8000, 1, 2.0), 8000, build_context(v), chunk_s=0.5)
    assert lengths == [16000]


@pytest.mark.parametrize(
    "bad,match",
    [
        (lambda w, sr, ctx: w[:, :-1], "shape"),
        (lambda w, sr, ctx: np.full_like(w, np.nan), "NaN"),
        (lambda w, sr, ctx: w[:1], "shape"),
    ],
)
def test_broken_variants_are_errors(monkeypatch, bad, match):
    v = fake_variant(monkeypatch, "broken", bad)
    with pytest.raises(rs.RestoreError, match=match):
        rs.restore_array(v, music(8000, 2, 1.0), 8000, build_context(v))


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("channels,sr", [(2, 44100), (1, 32000)])
def test_every_variant_round_trips_in_chunks(name, channels, sr):
    x = music(sr, channels, 2.0)
    from tests.test_registry import passthrough_model

    fewer_iterations = {"demucs_snmf": {"n_iter": 10}}  # shapes are the point here, not quality
    variant = VARIANTS[name]
    ctx = build_context(
        name,
        fewer_iterations,
        target="Voc" if variant.tasks == ("T2",) else None,
        separator_factory=BandSplitSeparator,
        model_loader=passthrough_model if variant.checkpoint else None,
    )
    out = rs.restore_array(name, x, sr, ctx, chunk_s=1.2, overlap_s=0.2, context_s=0.2)
    assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out).max() > 0


def test_restore_file_streams_the_same_result_as_restore_array(tmp_path):
    sr = 22050
    x = music(sr, 2, 3.0)
    save_audio(tmp_path / "in.wav", x, sr, subtype="FLOAT")
    kw = {"chunk_s": 1.0, "overlap_s": 0.2, "context_s": 0.1}
    info = rs.restore_file(
        "preclean", tmp_path / "in.wav", tmp_path / "out.wav", build_context("preclean"), **kw
    )
    streamed, file_sr = load_audio(tmp_path / "out.wav")
    direct = rs.restore_array("preclean", x, sr, build_context("preclean"), **kw)
    assert file_sr == sr and info["audio_s"] == pytest.approx(3.0)
    np.testing.assert_array_equal(streamed, direct)
    assert len(info["decisions"]["chunks"]) == 4


def tiny_dataset(folder: Path, sr: int = 44100) -> Path:
    x = music(sr, 2, 1.5)
    save_audio(folder / "mix" / "a.wav", x, sr)
    save_audio(folder / "mix" / "b.wav", x[:1], sr)
    examples = [
        Example(id="a", task="T1", mixture="mix/a.wav", target=None, sr=sr, duration_s=1.5),
        Example(
            id="b", task="T2", mixture="mix/b.wav", target=None, sr=sr, duration_s=1.5, group="Bass"
        ),
    ]
    write_manifest(folder, examples)
    return folder


def test_restore_dataset_writes_outputs_and_timing(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    ctx = build_context("adaptive", separator_factory=BandSplitSeparator)
    timing = rs.restore_dataset(
        "adaptive", data, tmp_path / "out", ctx, testset="tiny", progress=False
    )
    assert timing["variant"] == "adaptive" and timing["testset"] == "tiny"
    assert timing["audio_s"] == pytest.approx(3.0)
    assert set(timing["per_example"]) == {"a", "b"}
    assert timing["rtf"] == pytest.approx(timing["compute_s"] / timing["audio_s"])
    # the folder holds what the inputs determine: audio and decisions, never timings
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.wav",
        "b.wav",
        rs.DECISIONS_FILE,
    ]
    decisions = json.loads((tmp_path / "out" / rs.DECISIONS_FILE).read_text())
    assert set(decisions) == {"a", "b"} and decisions["a"]["separated"] is True
    for ex_id, channels in (("a", 2), ("b", 1)):
        wave, sr = load_audio(tmp_path / "out" / f"{ex_id}.wav")
        assert wave.shape == (channels, int(1.5 * 44100)) and sr == 44100
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    rs.restore_dataset("adaptive", data, tmp_path / "again", ctx, testset="tiny", progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "again").iterdir()} == first


def test_float_wav_outputs_are_byte_identical_across_writes(tmp_path):
    """Out-of-range samples are kept as float WAV; libsndfile's PEAK chunk (which holds the
    time of writing) is off, so the same audio gives the same bytes."""
    wave = music(44100, 2, 0.5)
    wave *= 2.0 / np.abs(wave).max()  # peaks at +6 dBFS
    save_audio(tmp_path / "a.wav", wave, 44100)
    time.sleep(1.1)  # the PEAK chunk's timestamp has a resolution of one second
    save_audio(tmp_path / "b.wav", wave, 44100)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert load_audio(tmp_path / "a.wav")[0].max() > 1.5


def test_restore_dataset_gives_t2_examples_their_target(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    ctx = build_context("demucs", separator_factory=BandSplitSeparator)
    rs.restore_dataset("demucs", data, tmp_path / "out", ctx, progress=False)
    mix, sr = load_audio(data / "mix" / "b.wav")
    bass, _ = load_audio(tmp_path / "out" / "b.wav")
    np.testing.assert_allclose(bass, BandSplitSeparator().separate(mix, sr)["bass"], atol=1e-4)
    remix, _ = load_audio(tmp_path / "out" / "a.wav")
    np.testing.assert_allclose(remix, load_audio(data / "mix" / "a.wav")[0], atol=1e-4)


def test_restore_file_refuses_a_truncated_input_and_keeps_the_old_output(tmp_path):
    """A WAV cut in half used to be restored silently into a half-length output."""
    sr = 16000
    save_audio(tmp_path / "in.wav", music(sr, 2, 2.0), sr, subtype="PCM_16")
    data = (tmp_path / "in.wav").read_bytes()
    (tmp_path / "in.wav").write_bytes(data[: len(data) // 2])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "o.wav").write_bytes(b"previous")
    with pytest.raises(AudioError, match="in.wav: truncated file"):
        rs.restore_file(
            "identity", tmp_path / "in.wav", tmp_path / "out" / "o.wav", build_context("identity")
        )
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["o.wav"]
    assert (tmp_path / "out" / "o.wav").read_bytes() == b"previous"


def test_restore_file_never_overwrites_its_input_unless_asked(tmp_path):
    sr = 16000
    save_audio(tmp_path / "in.wav", music(sr, 1, 1.0), sr)
    before = (tmp_path / "in.wav").read_bytes()
    (tmp_path / "link.wav").symlink_to(tmp_path / "in.wav")
    for out in (
        tmp_path / "in.wav",
        tmp_path / "." / "sub" / ".." / "in.wav",
        tmp_path / "link.wav",
    ):
        (tmp_path / "sub").mkdir(exist_ok=True)
        with pytest.raises(rs.RestoreError, match="is the input file"):
            rs.restore_file("dsp_direct", tmp_path / "in.wav", out, build_context("dsp_direct"))
        assert (tmp_path / "in.wav").read_bytes() == before
    rs.restore_file(
        "dsp_direct",
        tmp_path / "in.wav",
        tmp_path / "link.wav",
        build_context("dsp_direct"),
        overwrite=True,
    )
    assert (tmp_path / "link.wav").is_symlink()  # the file it points to was replaced
    assert (tmp_path / "in.wav").read_bytes() != before
    assert load_audio(tmp_path / "in.wav")[0].shape == (1, sr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "link.wav", "sub"]


def test_restore_file_names_the_input_when_a_variant_breaks(monkeypatch, tmp_path):
    fake_variant(monkeypatch, "nan", lambda w, sr, ctx: np.full_like(w, np.nan))
    save_audio(tmp_path / "in.wav", music(8000, 1, 1.0), 8000)
    with pytest.raises(rs.RestoreError, match=r"in.wav: variant nan produced NaN"):
        rs.restore_file("nan", tmp_path / "in.wav", tmp_path / "o.wav", build_context("nan"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


# --------------------------------------------------------------------------------- stage


def test_restore_stage(tmp_path, monkeypatch):
    data = tiny_dataset(tmp_path / "data")
    params = tmp_path / "params.yaml"
    params.write_text(
        "variants:\n  preclean:\n    denoise:\n      enabled: false\nrestore:\n  chunk_s: 1.0\n  overlap_s: 0.2\n"
    )
    main = runpy.run_path(str(ROOT / "stages" / "restore.py"))["main"]
    out = tmp_path / "restored" / "preclean"
    timing = tmp_path / "timing" / "preclean.json"
    argv = ["--params", str(params), "--testset", f"tiny={data}", "--no-progress"]
    main([*argv, "--variant", "preclean", "--out", str(out), "--timing", str(timing)])
    assert sorted(p.name for p in (out / "tiny").iterdir()) == ["a.wav", "b.wav", "decisions.json"]
    figures = json.loads(timing.read_text())
    assert figures["rtf"] > 0 and figures["rtf_t1"] == figures["rtf"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--variant", "nope", "--out", str(tmp_path / "other")])
    assert exc.value.code == 1 and not (tmp_path / "other").exists()


def test_stage_and_cli_load_the_separator_from_a_repo_folder(tmp_path, capsys):
    """The pipeline path end to end: a separator exported as the train stage does, loaded by
    name ("trained") from --separator-dir / --separator-repo, run on a T2 example."""
    separation = pytest.importorskip("musicrestore.separation")
    repo = tmp_path / "models" / "separator"
    separation.export_repo(
        separation.tiny_htdemucs(seed=0), repo, "trained", formats=("safetensors",)
    )
    data = tmp_path / "data"
    save_audio(data / "b.wav", music(44100, 2, 1.0), 44100)
    write_manifest(
        data,
        [
            Example(
                id="b",
                task="T2",
                mixture="b.wav",
                target=None,
                sr=44100,
                duration_s=1.0,
                group="Voc",
            )
        ],
    )
    params = tmp_path / "params.yaml"
    params.write_text("variants: {}\nrestore:\n  separator_model: trained\n")
    main = runpy.run_path(str(ROOT / "stages" / "restore.py"))["main"]
    out = tmp_path / "restored"
    main(
        [
            "--params",
            str(params),
            "--variant",
            "demucs",
            "--testset",
            f"t={data}",
        ]
        + ["--separator-dir", str(repo), "--out", str(out), "--no-progress"]
        + ["--timing", str(tmp_path / "timing.json")]
    )
    assert load_audio(out / "t" / "b.wav")[0].shape == (2, 44100)
    assert json.loads((tmp_path / "timing.json").read_text())["setup_s"] > 0
    argv = ["--variant", "demucs", "--separator-repo", repo, "--target", "Voc"]
    code = cli.main([str(a) for a in [*argv, data / "b.wav", tmp_path / "v.wav"]])
    assert code == 0, capsys.readouterr().err
    assert load_audio(tmp_path / "v.wav")[0].shape == (2, 44100)
