"""Running variants on arrays, files and datasets (the engine) and the restore stage; the
command line is tested in test_cli.py."""

from __future__ import annotations

import json
import runpy
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from musicrestore import cli
from musicrestore.core.audio import AudioError, load_audio, save_audio
from musicrestore.core.chunks import plan_chunks, run_chunks
from musicrestore.data.dataset import Example, write_manifest
from musicrestore.variants import VARIANTS, Variant, build_context, get_variant
from musicrestore.variants import restore as rs
from musicrestore.variants.pretrained import missing_checkpoints
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
    assert chunks[0][0] == 0 and chunks[-1][0] < total <= chunks[-1][1]
    assert all(b - a <= chunk for a, b in chunks)
    if len(chunks) > 1:
        assert all(chunks[k][1] - chunks[k + 1][0] == overlap for k in range(len(chunks) - 1))
        assert len({b - a for a, b in chunks}) == 1  # no runt last chunk
        assert min(chunks[-1][1], total) - chunks[-1][0] > overlap
    else:
        assert chunks == [(0, total)]


def test_plan_chunks_on_a_grid():
    """``even=False`` (the networks): starts ``first + k · (chunk - overlap)``, on the grid."""
    chunks = plan_chunks(10_000, 1200, 200, first=-100, even=False)
    assert [a for a, _ in chunks] == [-100 + 1000 * k for k in range(len(chunks))]
    assert all(b - a == 1200 for a, b in chunks) and chunks[-1][1] >= 10_000 > chunks[-1][0]
    assert plan_chunks(900, 1200, 200, first=-100, even=False) == [(0, 900)]


def hann_ramp(n: int) -> np.ndarray:
    """The raised-cosine fade, float64, written out independently of the engine."""
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)


@pytest.mark.parametrize("normalise", [False, True], ids=["runner", "networks"])
def test_cross_fades_follow_the_hann_ramp(normalise):
    """Each region's output is a constant, its index + 1: across every overlap the output
    must climb from k + 1 to k + 2 along the raised-cosine ramp (seed 000's Hann fades) and
    stay flat elsewhere. A hard cut (a rectangular window), a linear fade or a fade on the
    wrong samples fails here, in both numerics of the engine."""
    total, chunks = 5000, plan_chunks(5000, 1300, 200)
    assert len(chunks) == 5
    seen: list[int] = []

    def process(windows):
        seen.extend(w.shape[1] for w in windows)
        return [np.full_like(w, len(seen) - len(windows) + i + 1) for i, w in enumerate(windows)]

    out: list[np.ndarray] = []
    run_chunks(
        process,
        lambda a, b: np.zeros((2, b - a), np.float32),
        out.append,
        total,
        chunks,
        context=50,
        pad=normalise,
        normalise=normalise,
        batch_size=2 if normalise else 1,
    )
    y = np.concatenate(out, axis=1)
    expected = np.ones(total)
    for k in range(1, len(chunks)):
        start, stop = chunks[k][0], chunks[k - 1][1]
        expected[start:stop] = k + hann_ramp(stop - start)
        expected[stop:] = k + 1
    np.testing.assert_allclose(y, np.broadcast_to(expected, y.shape), rtol=0, atol=1e-6)
    assert len(seen) == len(chunks) and y.dtype == np.float32


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


def test_pointwise_variants_stream_in_plain_blocks(monkeypatch):
    """A ``pointwise`` variant gets back-to-back blocks of ``chunk_s``: no overlap, no
    context, no fades, so a copy stays bit-exact (``identity``, at any length)."""
    lengths = []
    v = fake_variant(
        monkeypatch, "copy", lambda w, sr, ctx: lengths.append(w.shape[1]) or w, pointwise=True
    )
    x = music(8000, 1, 2.0)
    out = rs.restore_array(v, x, 8000, build_context(v), chunk_s=0.5, context_s=0.1)
    assert lengths == [4000] * 4
    np.testing.assert_array_equal(out, x)
    x = music(8000, 2, 7.3)
    ctx = build_context("identity")
    np.testing.assert_array_equal(rs.restore_array("identity", x, 8000, ctx, chunk_s=1.0), x)
    assert len(ctx.decisions["chunks"]) == 8


@pytest.mark.parametrize("sr", [32000, 44100])
def test_the_pipelines_clips_are_one_chunk_for_every_variant(sr):
    """Chunking every variant changes no pipeline output: with the ``restore:`` block of
    params.yaml, a test clip (10 s: T1, T2 and T3 alike) and anything up to ``chunk_s`` is
    one region, handed to the variant whole and without context, as before."""
    import yaml

    settings = rs.restore_settings(yaml.safe_load((ROOT / "params.yaml").read_text())["restore"])
    chunk_s, overlap_s = settings["chunk_s"], settings["overlap_s"]
    for v in VARIANTS.values():
        longest = round((v.chunk_s or chunk_s) * sr)
        assert longest >= 10 * sr, v.name
        for total in (10 * sr, longest):
            assert rs.variant_chunks(v, total, sr, chunk_s, overlap_s) == [(0, total)], v.name
        assert len(rs.variant_chunks(v, longest + 1, sr, chunk_s, overlap_s)) == 2, v.name


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


class GainSplitSeparator:
    """A sample-local separator double: each stem is a fixed share of the mixture (the
    shares sum to one), so a chunk's stems are that chunk of the whole signal's stems."""

    sources = ["drums", "bass", "other", "vocals"]
    samplerate = 44100
    shares = {"drums": 0.1, "bass": 0.2, "other": 0.3, "vocals": 0.4}

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        return {name: (share * wave).astype(np.float32) for name, share in self.shares.items()}


class Pointwise(nn.Module):
    """``y = 0.5·x + 2·x³`` sample by sample: a network that changes every sample and that
    any chunking reproduces exactly; with the attributes the learned variants and their
    chunkers read (mono U-Net, stereo U-Former, a WaveNet's receptive field)."""

    alignment, receptive_field, channels, audio_channels = 256, 101, 1, 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x + 2.0 * x**3


def pointwise_model(name: str, models_dir: Path | None) -> tuple[nn.Module, dict[str, int]]:
    return Pointwise(), {"sr": 44100}


#: Params of the chunked run. The learned variants' own inference cuts each of the
#: runner's windows again (0.5-s U-Net/U-Former cores, 0.3-s WaveNet chunks).
CHUNKED_PARAMS = {
    "demucs_snmf": {"n_iter": 10},  # the S-NMF's quality is not the point here
    "unet_mask": {"chunk_s": 0.5, "context_s": 0.1},
    "uformer": {"chunk_s": 0.5, "context_s": 0.1},
    "wavenet": {"min_chunk_s": 0.3, "overlap": 0.2},
}
CHUNKING = {"chunk_s": 1.2, "overlap_s": 0.2, "context_s": 0.2}


def chunked_context(name: str):  # type: ignore[no-untyped-def]
    """The context of a chunked run of ``name`` with the deterministic doubles: a separator
    that splits by fixed shares (stem variants restore ``Voc``) and a sample-local network."""
    return build_context(
        name,
        CHUNKED_PARAMS,
        target="Voc" if VARIANTS[name].output == "stem" else None,
        separator_factory=GainSplitSeparator,
        model_loader=pointwise_model if VARIANTS[name].checkpoint else None,
    )


def crossfaded_windows(name: str, make_ctx, x: np.ndarray, sr: int) -> np.ndarray:
    """The known response of the runner to a variant whose output depends on the whole of
    what it sees: the variant run as a whole signal on each chunk's window (the chunk plus
    ``context_s`` each side, clamped to the input; no context for a ``pointwise`` variant),
    cropped to the chunk, neighbours cross-faded with :func:`hann_ramp`; float64, computed
    here, not by the engine."""
    variant, total = get_variant(name), x.shape[1]
    chunks = rs.variant_chunks(variant, total, sr, CHUNKING["chunk_s"], CHUNKING["overlap_s"])
    context = 0 if variant.pointwise else round(CHUNKING["context_s"] * sr)
    out = np.zeros(x.shape)
    for k, (start, stop) in enumerate(chunks):
        stop = min(stop, total)
        lo, hi = max(0, start - context), min(total, stop + context)
        y = np.asarray(variant(x[:, lo:hi].copy(), sr, make_ctx()), np.float64)
        w = np.ones(stop - start)
        if k > 0:
            w[: chunks[k - 1][1] - start] = hann_ramp(chunks[k - 1][1] - start)
        if k + 1 < len(chunks) and (n := stop - chunks[k + 1][0]):
            assert n <= stop - start - (chunks[k - 1][1] - start if k else 0)  # no triple overlap
            w[-n:] = 1.0 - hann_ramp(n)
        out[:, start:stop] += w * y[:, start - lo : stop - lo]
    return out


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("channels,sr", [(2, 44100), (1, 32000)])
def test_every_variant_round_trips_in_chunks(name, channels, sr):
    """Every variant, run in chunks, gives what it must to within float rounding, and that
    is not its input: an engine that returns its input, drops or repeats samples, misplaces
    a crop or loses the fades fails here.

    What it must give: the cross-fade of the variant's runs on the chunks' windows
    (:func:`crossfaded_windows`; every variant is chunked, the learned ones chunk each
    window again with their own inference). The doubles make the processing non-trivial
    and deterministic: a separator that splits by fixed shares (the stem variants restore
    the ``Voc`` target) and a sample-local network."""
    if missing_checkpoints(name, None, ["Voc"]):  # community checkpoints: test_pretrained.py
        pytest.skip(f"{name} needs downloaded checkpoints")
    x = music(sr, channels, 2.0)

    def make_ctx():  # type: ignore[no-untyped-def]
        return chunked_context(name)

    out = rs.restore_array(name, x, sr, make_ctx(), **CHUNKING)
    assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()
    expected = crossfaded_windows(name, make_ctx, x, sr)
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-7)
    changed = np.abs(expected - x) > 1e-4  # where the processing changes the input
    if name == "identity":
        assert not changed.any()
        np.testing.assert_array_equal(out, x)
    else:
        assert changed.mean() > 0.5, changed.mean()
        assert (np.abs(out - x)[changed] > 5e-5).all()


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


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_restore_file_never_reads_the_whole_file(name, tmp_path, monkeypatch):
    """Bounded memory at any length, for every registered variant: :func:`restore_file`
    reads the input one chunk plus its context at a time (the largest block it asks the
    reader for is bounded by ``chunk_s + 2 · context_s``, never the file's length), and
    the streamed output is what :func:`restore_array` gives. A variant handed the whole
    file (an opt-out of chunking, or a chunk as long as the file) fails here."""
    if missing_checkpoints(name, None, ["Voc"]):  # community checkpoints: test_pretrained.py
        pytest.skip(f"{name} needs downloaded checkpoints")
    variant = VARIANTS[name]
    chunk_s = variant.chunk_s or CHUNKING["chunk_s"]  # a variant's own chunk length
    sr, duration_s = 16000, 5 * chunk_s
    x = music(sr, 2, duration_s)
    save_audio(tmp_path / "in.wav", x, sr, subtype="FLOAT")
    blocks: list[int] = []

    def read_block(fh, start, stop, source):
        blocks.append(stop - start)
        return real_read_block(fh, start, stop, source)

    def no_load(*args, **kwargs):
        raise AssertionError("restore_file must stream its input, not load it")

    real_read_block = rs.read_block
    monkeypatch.setattr(rs, "read_block", read_block)
    monkeypatch.setattr(rs, "load_audio", no_load)

    def make_ctx():  # type: ignore[no-untyped-def]
        return chunked_context(name)

    rs.restore_file(name, tmp_path / "in.wav", tmp_path / "out.wav", make_ctx(), **CHUNKING)
    bound = round((chunk_s + 2 * CHUNKING["context_s"]) * sr)
    assert blocks and max(blocks) <= bound < x.shape[1] / 3, (max(blocks), bound)
    assert sum(blocks) >= x.shape[1] and len(blocks) >= 5
    streamed, _ = load_audio(tmp_path / "out.wav")
    np.testing.assert_array_equal(streamed, rs.restore_array(name, x, sr, make_ctx(), **CHUNKING))


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


def test_restore_stage_for_one_group_writes_that_set_as_its_output(tmp_path, capsys):
    """restore-<variant>@<group>: with --target only the msr_<group> set is restored and its
    folder is --out itself (the path a stage over every group writes it to); a group outside
    msr.targets, or --target beside --testset, is one line and writes nothing."""
    root = tmp_path / "msr"
    for group in ("Voc", "Bass"):
        tiny_dataset(root / group)
    params = tmp_path / "params.yaml"
    params.write_text("msr:\n  targets: [Voc, Bass]\nvariants: {}\n")
    main = runpy.run_path(str(ROOT / "stages" / "restore.py"))["main"]
    out = tmp_path / "restored" / "identity" / "msr_Bass"
    argv = ["--params", str(params), "--variant", "identity", "--msr-test", str(root)]
    main([*argv, "--target", "Bass", "--out", str(out), "--no-progress"])
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "b.wav", "decisions.json"]
    for bad, says in [
        (["--target", "Gtr"], "--target 'Gtr' is not in msr.targets (Voc, Bass)"),
        (["--target", "Voc", "--testset", f"t={root / 'Voc'}"], "give --msr-test and no"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main([*argv, *bad, "--out", str(tmp_path / "other"), "--no-progress"])
        message = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 1 and len(message) == 1 and says in message[0], message
        assert not (tmp_path / "other").exists()


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
