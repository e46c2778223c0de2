"""MusicGen samples (SPEC §2): generation through a tiny random-init MusicGen, local clips,
simulated clips, the offline error and the stage CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrestore.core.audio import AudioError, load_audio, save_audio
from musicrestore.core.stage import StageError
from musicrestore.data import musicgen
from musicrestore.data.dataset import read_manifest
from musicrestore.data.taxonomy import (
    TARGETS,
    read_splits,
    scan,
    split_songs,
    test_songs,
    write_splits,
)

from .helpers import load_script, make_tiny_rawstems

SEED_PROMPT = musicgen.DEFAULT_PROMPTS[0]
REPO = Path(__file__).resolve().parents[1]


def _tiny_musicgen(folder: Path) -> Path:
    """A ~180k-parameter random-init MusicGen + processor saved like a hub model folder.

    SPEC §1: ``pad_token_id = decoder_start_token_id = vocab_size`` and EnCodec
    ``target_bandwidths`` giving as many quantizers as ``num_codebooks`` (here 0.6 kbps at
    50 frames/s with 6-bit codebooks = 2). The T5 tokenizer is a tiny Unigram vocabulary
    built offline (a real one would have to be downloaded).
    """
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
        T5Tokenizer,
    )

    words = SEED_PROMPT.lower().replace(",", " ,").replace(".", " .").split()
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{w}", -3.0) for w in dict.fromkeys(words)]
    vocab += [(c, -8.0) for c in "abcdefghijklmnopqrstuvwxyz,.-"]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    codebook_size = 64
    text = T5Config(
        vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2
    )
    audio = EncodecConfig(
        target_bandwidths=[0.6],
        sampling_rate=32000,
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[8, 5, 4, 4],
        num_lstm_layers=1,
        codebook_size=codebook_size,
        codebook_dim=16,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=codebook_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        num_codebooks=2,
        pad_token_id=codebook_size,
        bos_token_id=codebook_size,
        max_position_embeddings=256,
    )
    assert audio.num_quantizers == decoder.num_codebooks
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    config.decoder_start_token_id = config.pad_token_id = codebook_size
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config)
    # EnCodec codebooks start as zeros (they are k-means state, not parameters): every code
    # would decode to the same sound and the samples could not differ.
    for layer in model.audio_encoder.quantizer.layers:
        layer.codebook.embed.normal_()
        layer.codebook.embed_avg.copy_(layer.codebook.embed)
    model.generation_config.pad_token_id = codebook_size
    model.generation_config.decoder_start_token_id = codebook_size
    model.save_pretrained(folder)
    processor = MusicgenProcessor(
        feature_extractor=EncodecFeatureExtractor(feature_size=1, sampling_rate=32000),
        tokenizer=tokenizer,
    )
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_musicgen(tmp_path_factory.mktemp("tiny_musicgen"))


def _generate(tiny_model: Path, out: Path, seed: int) -> list:
    return musicgen.fetch_musicgen(
        "generate",
        out,
        seed=seed,
        duration_s=0.4,
        generate={
            "model": str(tiny_model),
            "prompts": [SEED_PROMPT, "gentle grooves"],
            "batch_size": 2,
            "device": "cpu",
        },
        progress=False,
    )


def test_generate_with_tiny_model(tiny_model: Path, tmp_path: Path) -> None:
    examples = _generate(tiny_model, tmp_path / "a", seed=0)
    assert [ex.id for ex in examples] == ["gen_000", "gen_001"]
    manifest = read_manifest(tmp_path / "a")
    assert [ex.id for ex in manifest] == ["gen_000", "gen_001"]
    for ex in manifest:
        assert ex.task == "T3" and ex.target is None and ex.sr == 32000
        assert ex.meta["source"] == "generate" and ex.meta["simulated"] is False
        assert ex.meta["model"] == str(tiny_model)
        wave, sr = load_audio(tmp_path / "a" / ex.mixture)
        # 0.4 s = 20 EnCodec frames of 640 samples, mono at the model's rate
        assert (sr, wave.shape) == (32000, (1, 12800))
        assert np.abs(wave).max() > 1e-4  # real decoder output, not silence
    assert manifest[0].meta["prompt"] == SEED_PROMPT
    prompts = [json.loads(x) for x in (tmp_path / "a" / "prompts.jsonl").read_text().splitlines()]
    assert prompts[1] == {"id": "gen_001", "prompt": "gentle grooves", "source": "generate"}

    # Seeded: the same seed regenerates the same samples; another seed samples others.
    _generate(tiny_model, tmp_path / "b", seed=0)
    _generate(tiny_model, tmp_path / "c", seed=1)
    a, b, c = (sf.read(tmp_path / d / "gen_000.wav")[0] for d in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_offline_uncached_model_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(StageError) as err:
        musicgen.generate_clips(
            tmp_path / "out",
            prompts=[SEED_PROMPT],
            model="facebook/musicgen-small",
            cache_dir=str(tmp_path / "empty_cache"),
            progress=False,
        )
    msg = str(err.value)
    assert "\n" not in msg
    assert "'facebook/musicgen-small'" in msg
    assert "HF_HUB_OFFLINE" in msg and "huggingface-cli download facebook/musicgen-small" in msg


def test_audiocraft_backend_says_why_it_is_missing(tmp_path: Path) -> None:
    if importlib.util.find_spec("audiocraft") is not None:
        pytest.skip("audiocraft imports here")
    with pytest.raises(StageError, match="audiocraft.*backend: transformers"):
        musicgen.generate_clips(tmp_path, prompts=["x"], backend="audiocraft", progress=False)


def test_local_clips_are_resampled_to_32k_mono(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    t = np.arange(44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]) * 0.5
    save_audio(folder / "a_song.wav", stereo.astype(np.float32), 44100)
    (folder / "a_song.txt").write_text("Lo-fi piano\n")
    save_audio(folder / "more" / "b.flac", (0.3 * np.ones((1, 8000))).astype(np.float32), 16000)
    examples = musicgen.fetch_musicgen("local", tmp_path / "out", local={"folder": str(folder)})
    assert [(ex.id, ex.meta["origin"], ex.meta["prompt"]) for ex in examples] == [
        ("local_000", "a_song.wav", "Lo-fi piano"),
        ("local_001", "more/b.flac", None),
    ]
    a, sr = load_audio(tmp_path / "out" / "local_000.wav")
    b, _ = load_audio(tmp_path / "out" / "local_001.wav")
    assert sr == 32000 and a.shape == (1, 32000) and b.shape == (1, 16000)
    spec = np.abs(np.fft.rfft(a[0]))
    assert spec[440] > 100 * np.median(spec) and spec[660] > 100 * np.median(spec)
    assert all(
        not ex.meta["simulated"] and ex.task == "T3" for ex in read_manifest(tmp_path / "out")
    )


def test_local_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(StageError, match="no audio clips"):
        musicgen.import_local(tmp_path / "out", tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(AudioError, match="broken.wav"):
        musicgen.import_local(tmp_path / "out", bad)
    with pytest.raises(StageError, match="local.folder is not set"):
        musicgen.fetch_musicgen("local", tmp_path / "out", local={})
    with pytest.raises(StageError, match=r"musicgen.local: unknown key\(s\) fodler; known: "):
        musicgen.fetch_musicgen("local", tmp_path / "out", local={"fodler": str(bad)})
    with pytest.raises(StageError, match="unknown musicgen.source 'youtube'"):
        musicgen.fetch_musicgen("youtube", tmp_path / "out")


@pytest.fixture(scope="module")
def tiny_rawstems(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = make_tiny_rawstems(tmp_path_factory.mktemp("rawstems"), n_songs=3, duration_s=3.0)
    splits = root.parent / "splits"
    write_splits(splits, split_songs(scan(root), TARGETS, seed=0))
    return root, splits


def test_simulated_clips_come_from_test_songs(
    tiny_rawstems: tuple[Path, Path], tmp_path: Path
) -> None:
    root, splits = tiny_rawstems
    kwargs = {"rawstems": root, "splits": splits, "duration_s": 1.0, "progress": False}
    examples = musicgen.fetch_musicgen("simulated", tmp_path / "a", seed=0, **kwargs)
    held_out = test_songs(read_splits(splits))
    assert examples and all(ex.id.startswith("sim_") for ex in examples)
    assert {ex.song for ex in examples} == held_out
    for ex in read_manifest(tmp_path / "a"):
        assert ex.task == "T3" and ex.target is None and ex.meta["simulated"] is True
        assert ex.meta["source"] == "simulated" and "NOT MusicGen" in ex.meta["note"]
        assert ex.effects and all({"name", "stage", "params"} <= set(e) for e in ex.effects)
        degraded, sr = load_audio(tmp_path / "a" / ex.mixture)
        clean, _ = load_audio(tmp_path / "a" / ex.meta["reference"])
        assert sr == 32000 and degraded.shape == clean.shape == (1, 32000)
        assert np.abs(degraded).max() <= 1.0 and not np.allclose(degraded, clean, atol=1e-3)
    lines = (tmp_path / "a" / "prompts.jsonl").read_text().splitlines()
    assert [json.loads(x)["source"] for x in lines] == ["simulated"] * len(examples)

    musicgen.fetch_musicgen("simulated", tmp_path / "b", seed=0, **kwargs)
    musicgen.fetch_musicgen("simulated", tmp_path / "c", seed=1, **kwargs)
    same = (tmp_path / "a/sim_000.wav").read_bytes() == (tmp_path / "b/sim_000.wav").read_bytes()
    other = (tmp_path / "a/sim_000.wav").read_bytes() == (tmp_path / "c/sim_000.wav").read_bytes()
    assert same and not other


def _stage_main():
    return load_script("stages/fetch_musicgen.py", "fetch_musicgen_stage").main


def test_stage_cli(
    tiny_rawstems: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, splits = tiny_rawstems
    params = tmp_path / "params.yaml"
    params.write_text(
        "musicgen:\n  source: simulated\n  seed: 0\n  duration_s: 1.0\n"
        "  simulated: {clips_per_song: 1}\n"
    )
    main = _stage_main()
    out = tmp_path / "musicgen"
    args = [
        "--params",
        str(params),
        "--rawstems",
        str(root),
        "--splits",
        str(splits),
        "--no-progress",
    ]
    main([*args, "--out", str(out)])
    assert len(read_manifest(out)) == len(test_songs(read_splits(splits)))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left

    with pytest.raises(SystemExit) as exc:
        main([*args[:4], "--splits", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "missing" in err[-1]
    assert not (tmp_path / "x").exists()
