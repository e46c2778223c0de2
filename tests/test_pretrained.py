"""Community RoFormer checkpoints (musicrestore.separation.roformer) and the variants built on
them (musicrestore.variants.pretrained): tiny random-weight models written in the layouts the
community publishes (ZFTurbo/UVR ``.ckpt`` + YAML with ``!!python/tuple``, nested and
prefixed state dicts, ``.safetensors``, a Hugging Face cache), run through the file runner,
and every refusal one line. Offline throughout (tests/conftest.py sets HF_HUB_OFFLINE=1)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from huggingface_hub import constants as hf_constants

from musicrestore.core.errors import StageError
from musicrestore.separation import SeparationError
from musicrestore.separation import roformer as rf
from musicrestore.variants import VariantError, build_context
from musicrestore.variants.pretrained import missing_checkpoints
from musicrestore.variants.restore import restore_array

SR = 16000

#: A tiny BS-RoFormer config as ZFTurbo publishes them (viperx's layout, small numbers).
BS_YAML = """\
audio:
  chunk_size: 16000
  num_channels: 2
  sample_rate: 16000
model:
  dim: 16
  depth: 2
  stereo: true
  num_stems: 2
  time_transformer_depth: 1
  freq_transformer_depth: 1
  linear_transformer_depth: 0
  freqs_per_bands: !!python/tuple
    - 64
    - 65
  dim_head: 8
  heads: 2
  attn_dropout: 0.1
  ff_dropout: 0.1
  flash_attn: true
  dim_freqs_in: 129
  stft_n_fft: 256
  stft_hop_length: 64
  stft_win_length: 256
  stft_normalized: false
  mask_estimator_depth: 2
  multi_stft_resolution_loss_weight: 1.0
  multi_stft_resolutions_window_sizes: !!python/tuple
  - 256
  - 128
  multi_stft_hop_size: 32
  multi_stft_normalized: False
training:
  instruments:
  - vocals
  - other
  target_instrument: null
"""

#: A tiny Mel-RoFormer config (anvuew's / aufr33's layout): one target and its residual.
MEL_YAML = """\
audio:
  chunk_size: 12800
  sample_rate: 16000
model:
  dim: 16
  depth: 1
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  num_bands: 8
  dim_head: 8
  heads: 2
  attn_dropout: 0
  ff_dropout: 0
  flash_attn: True
  dim_freqs_in: 129
  sample_rate: 16000
  stft_n_fft: 256
  stft_hop_length: 64
  stft_win_length: 256
  stft_normalized: False
  mask_estimator_depth: 2
  mlp_expansion_factor: 4
  use_torch_checkpoint: False
  skip_connection: False
training:
  instruments: [{target}, {other}]
  target_instrument: {target}
"""


def zfturbo_names(state: dict[str, torch.Tensor], mel: bool) -> dict[str, torch.Tensor]:
    """The library's parameter names -> those ZFTurbo's classes give (no ``branch.`` residual
    wrapper; a Mel model without linear transformers has no empty slot before ``time``)."""
    out = {}
    for key, value in state.items():
        m = re.match(r"^layers\.(\d+)\.(\d+)\.(layers\.\d+\.[01])\.branch\.(.+)$", key)
        if m:
            key = f"layers.{m[1]}.{int(m[2]) - int(mel)}.{m[3]}.{m[4]}"
        out[key] = value
    return out


def write_model(
    folder: Path, name: str, yaml_text: str, seed: int, fmt: str = "ckpt"
) -> tuple[Path, Path, Any]:
    """A random-weight model of ``yaml_text`` written as ``<name>.<fmt>`` + ``<name>.yaml``
    in the published layout; returns (weights, config, the model that wrote them)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{name}.yaml"
    config.write_text(yaml_text)
    cfg = rf.read_config(config)
    torch.manual_seed(seed)
    net = rf.build_model(cfg)
    with torch.no_grad():  # masks near identity scale would hide a wiring error: perturb
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = zfturbo_names(net.state_dict(), cfg.kind == "mel")
    assert not any(".branch." in k for k in state)
    weights = folder / f"{name}.{fmt}"
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file({k: v.clone().contiguous() for k, v in state.items()}, str(weights))
    else:  # Lightning's nesting and prefix, as the community .ckpt files carry them
        torch.save({"epoch": 3, "state_dict": {f"model.{k}": v for k, v in state.items()}}, weights)
    return weights, config, net


def mel_yaml(target: str, other: str) -> str:
    return MEL_YAML.replace("{target}", target).replace("{other}", other)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and text, text
    return text


def wave(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    return np.stack([x, 0.7 * x]).astype(np.float32)


def run_variant(
    name: str, params: dict[str, Any], x: np.ndarray, target: str = "Voc"
) -> np.ndarray:
    ctx = build_context(name, {name: params}, target=target)
    return restore_array(name, x, SR, ctx)


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["ckpt", "safetensors"])
@pytest.mark.parametrize("kind", ["bs", "mel"])
def test_published_layouts_load_into_the_library_and_compute_the_same(tmp_path, kind, fmt):
    text = BS_YAML if kind == "bs" else mel_yaml("noreverb", "reverb")
    weights, config, net = write_model(tmp_path, "m", text, seed=1, fmt=fmt)
    model = rf.load_roformer(weights, config)
    x = torch.from_numpy(wave(0.5))[None]
    with torch.no_grad():
        assert torch.allclose(model.net(x), net(x), atol=1e-6)
    assert model.config.stems == (("vocals", "other") if kind == "bs" else ("noreverb", "reverb"))
    # the model is ZFTurbo's: no hyper-connections, no value-residual mix in any attention
    assert not any(getattr(m, "to_value_residual_mix", None) for m in model.net.modules())


def test_config_mapping_sets_zfturbo_defaults_and_drops_training_keys(tmp_path):
    (tmp_path / "m.yaml").write_text(mel_yaml("dry", "other"))
    cfg = rf.read_config(tmp_path / "m.yaml")
    assert cfg.kind == "mel" and cfg.sample_rate == 16000 and cfg.chunk_size == 12800
    assert cfg.kwargs["zero_dc"] is True and cfg.kwargs["linear_transformer_depth"] == 0
    assert not {"mlp_expansion_factor", "use_torch_checkpoint", "skip_connection"} & set(cfg.kwargs)
    assert cfg.outputs == ("dry",) and cfg.residual == "other"


def test_a_chain_of_three_runs_through_the_file_runner(tmp_path, monkeypatch):
    """separate (BS, .ckpt, local folder) -> de-reverb (Mel, HF cache) -> denoise (Mel,
    .safetensors): the variant's output is the three models' stems applied in order."""
    local = tmp_path / "pretrained"
    sep_w, sep_c, _ = write_model(local, "sep", BS_YAML, seed=1)
    den_w, den_c, _ = write_model(local, "denoise", mel_yaml("dry", "other"), 3, "safetensors")
    # the de-reverb model sits in a Hugging Face cache, as hf_hub_download leaves it
    snap = tmp_path / "hub" / "models--someone--dereverb" / "snapshots" / "abc123"
    der_w, der_c, _ = write_model(snap, "dereverb", mel_yaml("noreverb", "reverb"), seed=2)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    chain = [
        {"file": sep_w.name, "config": sep_c.name, "stem": "vocals"},
        {"file": der_w.name, "config": der_c.name, "stem": "reverb", "repo": "someone/dereverb"},
        {"file": den_w.name, "config": den_c.name, "stem": "dry"},
    ]
    params = {"dir": str(local), "default": chain, "context_s": 0.25}
    assert missing_checkpoints("roformer_chain", {"roformer_chain": params}, ["Voc"]) == []
    x = wave(2.0)
    out = run_variant("roformer_chain", params, x)

    want = x
    for w, c, stem in ((sep_w, sep_c, "vocals"), (der_w, der_c, "reverb"), (den_w, den_c, "dry")):
        want = rf.load_roformer(w, c).stem(want, SR, stem, context_s=0.25)
    assert out.shape == x.shape and np.isfinite(out).all()
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert np.abs(out - x).max() > 1e-3  # the chain did something
    # a Gtr_EG override runs its own (one-step) chain
    over = run_variant("roformer_chain", {**params, "Gtr_EG": chain[:1]}, x, target="Gtr_EG")
    np.testing.assert_allclose(
        over, rf.load_roformer(sep_w, sep_c).stem(x, SR, "vocals", context_s=0.25), atol=1e-5
    )


def test_windows_cover_the_signal_once_with_cross_fades_that_sum_to_one(tmp_path):
    """Inference in windows shorter than the input (context, Hann cross-fades, hop padding,
    crop): with a network that halves its input the chunked output is exactly half the input,
    for the target and for the residual stem; the real network joins its windows without
    jumps larger than inside them."""
    w, c, _ = write_model(tmp_path, "m", mel_yaml("dry", "other"), seed=4)
    model = rf.load_roformer(w, c)
    x = wave(3.0)[:, :47_001]  # not a whole number of hops
    real = model.stem(x, SR, "dry", chunk_s=0.8, context_s=0.4)
    assert real.shape == x.shape and np.isfinite(real).all()
    step = np.abs(np.diff(real, axis=1)).max(axis=0)
    assert step.max() < 4 * np.percentile(step, 99.9) + 1e-4  # no seam stands out

    class Half(torch.nn.Module):
        def forward(self, y: torch.Tensor) -> torch.Tensor:  # (B, C, L) -> (B, C, L - L % hop)
            return 0.5 * y[..., : y.shape[-1] // 64 * 64]

    model.net = Half()
    for stem in ("dry", "other"):
        half = model.stem(x, SR, stem, chunk_s=0.8, context_s=0.4, batch_size=2)
        np.testing.assert_allclose(half, 0.5 * x, atol=1e-5)


def test_msrkit_baseline_runs_its_groups_model_and_needs_one_per_group(tmp_path):
    w, c, _ = write_model(tmp_path, "Voc", mel_yaml("Voc", "rest"), seed=5)
    params = {"dir": str(tmp_path), "Voc": {"file": w.name, "config": c.name, "stem": "Voc"}}
    x = wave(1.0)
    out = run_variant("msrkit_baseline", params, x)
    np.testing.assert_allclose(out, rf.load_roformer(w, c).stem(x, SR, "Voc"), atol=1e-5)
    assert missing_checkpoints("msrkit_baseline", {"msrkit_baseline": params}, ["Voc"]) == []
    (miss,) = missing_checkpoints("msrkit_baseline", {"msrkit_baseline": params}, ["Bass"])
    assert "no checkpoint configured for Bass" in miss
    with pytest.raises(VariantError) as exc:
        run_variant("msrkit_baseline", params, x, target="Bass")
    assert "Bass" in one_line(exc)


# ----------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            ("heads: 2", "heads: 2\n  hyper_parallel: 3"),
            "model.hyper_parallel: not a MEL-RoFormer key",
        ),
        (("dim: 16", "dim: sixteen"), "model.dim: got 'sixteen'"),
        (("skip_connection: False", "skip_connection: True"), "changes the architecture"),
        (("num_bands: 8", "num_bands: 8\n  freqs_per_bands: [64, 65]"), "exactly one of"),
        (("!!python/tuple", "!!python/object/apply:os.system"), "invalid YAML"),
    ],
)
def test_a_wrong_config_is_one_line_naming_the_file(tmp_path, edit, says):
    text = mel_yaml("dry", "other").replace(*edit)
    if "!!python" in edit[0]:
        text = BS_YAML.replace(*edit)
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(SeparationError) as exc:
        rf.read_config(tmp_path / "bad.yaml")
    msg = one_line(exc)
    assert says in msg and "bad.yaml" in msg


def test_weights_that_do_not_fit_the_config_are_one_line(tmp_path):
    w, _, _ = write_model(tmp_path, "m", mel_yaml("dry", "other"), seed=1)
    (tmp_path / "wider.yaml").write_text(mel_yaml("dry", "other").replace("dim: 16", "dim: 24"))
    with pytest.raises(SeparationError) as exc:
        rf.load_roformer(w, tmp_path / "wider.yaml")
    msg = one_line(exc)
    assert str(w) in msg and "another shape" in msg
    torch.save({"state_dict": {"freq_blocks.0.att_norm.scale": torch.ones(16)}}, tmp_path / "x.pth")
    with pytest.raises(SeparationError) as exc:  # MSRKit's own generator layout
        rf.load_roformer(tmp_path / "x.pth", tmp_path / "m.yaml")
    assert "missing" in one_line(exc) and "unexpected" in one_line(exc)


class _Evil:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("touch pwned",))


def test_a_pickle_asking_for_a_forbidden_global_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, c, _ = write_model(tmp_path, "m", mel_yaml("dry", "other"), seed=1)
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": _Evil()}, tmp_path / "evil.ckpt")
    with pytest.raises(SeparationError) as exc:
        rf.load_roformer(tmp_path / "evil.ckpt", c)
    msg = one_line(exc)
    assert "evil.ckpt" in msg and "system" in msg and "not on the allowlist" in msg
    assert not (tmp_path / "pwned").exists()


def test_a_missing_checkpoint_offline_names_it_and_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    assert hf_constants.HF_HUB_OFFLINE
    params = {"dir": str(tmp_path / "pretrained")}  # the winner's chain, nothing downloaded
    missing = missing_checkpoints("roformer_chain", {"roformer_chain": params}, ["Voc"])
    assert len(missing) == 3 and any(
        "hf download anvuew/dereverb_mel_band_roformer" in m for m in missing
    )
    with pytest.raises(StageError) as exc:
        run_variant("roformer_chain", params, wave(0.3))
    msg = one_line(exc)
    assert "model_bs_roformer_ep_317_sdr_12.9755.ckpt is missing" in msg
    assert f"curl -L -o {tmp_path / 'pretrained'}/model_bs_roformer_ep_317" in msg
    with pytest.raises(StageError) as exc:  # a name from params is checked before it is a path
        run_variant(
            "roformer_chain",
            {**params, "default": [{"file": "../x.ckpt", "config": "c.yaml", "stem": "v"}]},
            wave(0.3),
        )
    assert "default[0].file" in one_line(exc)
