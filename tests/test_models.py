"""The learned networks (seed 000's U-Net STFT mask and WaveNet denoiser) and their chunked
long-signal inference (docs/method.md#unet-mask, docs/method.md#wavenet).

Every network here is tiny (a few thousand parameters) so the file runs in seconds; the
named ``SIZES`` are only built, never run.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from musicrestore.models import ARCHITECTURES, UNetMask, WaveNetDenoiser
from musicrestore.models.inference import unet_ola, wavenet_chunks

SR = 8000
#: A U-Net small enough to run on seconds of audio in milliseconds.
TINY_UNET = {"n_fft": 256, "hop": 64, "base_channels": 4, "levels": 3, "groups": 2}
#: A WaveNet with a receptive field of 2 · 1 · (2^4 - 1) + 1 = 31 samples.
TINY_WAVENET = {
    "residual_channels": 4,
    "skip_channels": 4,
    "layers_per_stack": 4,
    "stacks": 1,
    "kernel_size": 3,
}


def noise(n: int, channels: int = 1, seed: int = 0, rms: float = 0.1) -> np.ndarray:
    return (rms * np.random.default_rng(seed).standard_normal((channels, n))).astype(np.float32)


def constant_mask(net: UNetMask, value: float) -> UNetMask:
    """The U-Net with its head zeroed and its bias at ``logit(value)``: mask = ``value``."""
    nn.init.zeros_(net.head.weight)
    nn.init.constant_(net.head.bias, float(np.log(value / (1.0 - value))))
    return net


def random_wavenet(seed: int = 0, **changes: int) -> WaveNetDenoiser:
    """A WaveNet whose output head is random too (it starts at zero: the identity)."""
    torch.manual_seed(seed)
    net = WaveNetDenoiser(**{**TINY_WAVENET, **changes}).eval()
    nn.init.normal_(net.head[-1].weight, std=0.5)
    return net


def without_groupnorm(net: UNetMask) -> UNetMask:
    """The U-Net with its GroupNorm layers removed: an exactly local network, so chunked
    inference can be compared with whole-signal inference sample for sample."""
    for block in [*net.encoder, *net.decoder]:
        for i, layer in enumerate(block.net):
            if isinstance(layer, nn.GroupNorm):
                block.net[i] = nn.Identity()
    return net


def run(net: nn.Module, wave: np.ndarray) -> np.ndarray:
    """Whole-signal inference of ``wave (C, T)``."""
    with torch.inference_mode():
        return net(torch.from_numpy(wave)[None])[0].numpy()


class Gain(nn.Module):
    """A constant gain with the attributes the chunkers read: the identity-like network
    that shows any level bump at chunk borders."""

    def __init__(self, gain: float, alignment: int = 1, receptive_field: int = 1) -> None:
        super().__init__()
        self.gain, self.alignment, self.receptive_field = gain, alignment, receptive_field

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * x


# ------------------------------------------------------------------------- architectures


def test_architectures_build_every_named_size():
    from musicrestore.models.uformer import UFormer

    assert dict(ARCHITECTURES) == {
        "unet_mask": UNetMask,
        "wavenet": WaveNetDenoiser,
        "uformer": UFormer,
    }
    counts = {}
    for name, cls in ARCHITECTURES.items():
        assert {"small", "large"} <= set(cls.SIZES)
        for size, kwargs in cls.SIZES.items():
            net = cls(**kwargs)
            counts[name, size] = sum(p.numel() for p in net.parameters())
    # seed 000's U-Net: 4 levels of 32, 64, 128, 256 channels
    big = UNetMask(**UNetMask.SIZES["large"])
    assert [b.net[0].out_channels for b in big.encoder] == [32, 64, 128, 256]
    assert counts["unet_mask", "small"] < counts["unet_mask", "large"]
    assert counts["wavenet", "small"] < counts["wavenet", "medium"] < counts["wavenet", "large"]
    assert WaveNetDenoiser(**WaveNetDenoiser.SIZES["large"]).receptive_field == 6139  # Rethage


def test_constructor_rejects_impossible_configs():
    with pytest.raises(ValueError, match="channels"):
        UNetMask(channels=3)
    with pytest.raises(ValueError, match="hop"):
        UNetMask(n_fft=1000, hop=256)
    with pytest.raises(ValueError, match="odd"):
        WaveNetDenoiser(kernel_size=2)


# ---------------------------------------------------------------------------------- U-Net


@pytest.mark.parametrize("model_channels", [1, 2])
@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("length", [50, 1001, 4 * 64 * 5 + 3])
def test_unet_keeps_shape_for_mono_stereo_and_odd_lengths(model_channels, in_channels, length):
    net = UNetMask(**TINY_UNET, channels=model_channels).eval()
    x = torch.from_numpy(noise(2 * length, seed=length)).reshape(2, 1, length)
    x = x.expand(-1, in_channels, -1).contiguous()  # (2, C, T)
    with torch.inference_mode():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    if model_channels == 1 and in_channels == 2:  # mono model: the output is duplicated
        assert torch.equal(y[:, 0], y[:, 1])


def test_unet_mask_is_in_the_unit_interval():
    torch.manual_seed(0)
    net = UNetMask(**TINY_UNET, channels=2).eval()
    nn.init.normal_(net.head.weight, std=10.0)  # push the logits far both ways
    mag = torch.rand(3, 2, 129, 37) * 100  # (B, C, F, N), F = 256/2 + 1, any N
    with torch.inference_mode():
        m = net.mask(mag)
    assert m.shape == mag.shape
    assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
    assert float(m.min()) < 0.1 and float(m.max()) > 0.9  # both ends reachable


@pytest.mark.parametrize("model_channels", [1, 2])
def test_a_fresh_complex_mask_is_the_identity_and_learns_phase_and_gain(model_channels):
    """mask: complex starts as M = 1 (the output is the input), sees the phase (3 input
    planes per channel) and can raise a magnitude above 1 and turn a phase."""
    net = UNetMask(**TINY_UNET, channels=model_channels, mask="complex").eval()
    assert net.encoder[0].net[0].in_channels == 3 * model_channels
    x = torch.from_numpy(noise(4001, channels=2))[None]  # (1, 2, T)
    with torch.inference_mode():
        y = net(x)
    expected = x if model_channels == 2 else x.mean(dim=1, keepdim=True).expand(-1, 2, -1)
    torch.testing.assert_close(y, expected, atol=1e-5, rtol=0)
    nn.init.normal_(net.head.weight, std=10.0)
    spec = net.stft(torch.from_numpy(noise(1024, channels=model_channels))[None])
    with torch.inference_mode():
        m = net.mask(spec)
    assert m.is_complex() and m.shape == spec.shape
    assert float(m.abs().max()) > 1.2 and float(m.imag.abs().max()) > 0.5
    with pytest.raises(ValueError, match="mask must be one of"):
        UNetMask(**TINY_UNET, mask="phase")


def test_a_guided_unet_sees_the_preclean_of_its_input_and_round_trips(tmp_path, monkeypatch):
    """guide: preclean adds log(1 + |P|) of the input's DSP pre-clean as an input plane: the
    first convolution takes one more plane, the guide is what variants.preclean gives for
    the input, the mask depends on it, and a saved model comes back with its guide."""
    from musicrestore.dsp.preclean import preclean
    from musicrestore.models.checkpoint import load_model, save_model

    kw = {"n_fft": 256, "hop": 64, "base_channels": 4, "levels": 2, "groups": 2}
    torch.manual_seed(0)
    net = UNetMask(**kw, guide="preclean", sr=16000).eval()
    assert net.encoder[0].net[0].in_channels == UNetMask(**kw).encoder[0].net[0].in_channels + 1
    wave = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, (2, 1, 4096)).astype("f4"))
    want = np.stack([preclean(w.numpy(), 16000) for w in wave])
    assert np.array_equal(net.preclean(wave).numpy(), want)
    with torch.no_grad():
        out = net(wave)
        monkeypatch.setattr(net, "preclean", lambda x: torch.zeros_like(x))
        assert not torch.allclose(net(wave), out)  # the guide reaches the mask
        monkeypatch.undo()
    save_model(
        tmp_path / "m", net, "unet_mask", {**kw, "guide": "preclean", "sr": 16000}, 16000, 1, "", ""
    )
    loaded, config = load_model(tmp_path / "m")
    assert loaded.guide == "preclean" and config["sr"] == 16000
    with torch.no_grad():
        assert torch.equal(loaded(wave), out)
    with pytest.raises(ValueError, match="guide"):
        UNetMask(**kw, guide="preclean")  # no rate for the pre-clean
    with pytest.raises(ValueError, match="guide"):
        UNetMask(**kw, guide="wiener", sr=16000)


def test_a_guided_preset_takes_the_data_rate_for_its_pre_clean() -> None:
    """arch.guide needs the rate the pre-clean runs at; the recipe fills it from data.sr (the
    rate the network is trained and stored at), and refuses a preset without one or with
    another; an unguided preset's arch stays as given (its resume key does not move)."""
    from musicrestore.core.config import ConfigError
    from musicrestore.train.recipe import spec_from_params

    def spec(arch: dict, data: dict) -> dict:
        preset = {"arch": {**TINY_UNET, **arch}, "data": data}
        return spec_from_params(
            {"models": {"unet_mask": {"presets": {"small": preset}}}}, "unet_mask"
        ).arch

    assert spec({"guide": "preclean"}, {"sr": 16000})["sr"] == 16000
    assert "sr" not in spec({}, {"sr": 16000}) and "guide" not in spec({}, {"sr": 16000})
    with pytest.raises(ConfigError, match="set data.sr"):
        spec({"guide": "preclean"}, {})
    with pytest.raises(ConfigError, match="arch.guide"):
        spec({"guide": "preclean", "sr": 44100}, {"sr": 16000})


def test_a_deep_filter_starts_as_the_identity_and_reaches_past_frames():
    """mask: deep starts as H_0 = 1 (the output is the input); tap k multiplies the frame k
    hops back, so a filter that is 1 at tap 2 only delays the signal by two hops, and
    taps of opposite sign cancel an echo of the same delay."""
    net = UNetMask(**TINY_UNET, mask="deep", taps=4).eval()
    x = torch.from_numpy(noise(4096))[None]  # (1, 1, T)
    with torch.inference_mode():
        torch.testing.assert_close(net(x), x, atol=1e-5, rtol=0)
        spec = net.stft(x)
        mask = net.mask(spec)
    assert mask.shape == (1, 1, 4, *spec.shape[-2:]) and mask.is_complex()
    hop = TINY_UNET["hop"]
    delay = torch.zeros_like(mask)
    delay[:, :, 2] = 1.0
    delayed = net.istft(net.apply_mask(delay, spec), x.shape[-1])
    core = slice(4 * hop, x.shape[-1] - 4 * hop)
    torch.testing.assert_close(
        delayed[..., core], x[..., core.start - 2 * hop : core.stop - 2 * hop], atol=1e-5, rtol=0
    )
    echo = x.clone()
    echo[..., 2 * hop :] += 0.3 * x[..., : -2 * hop]
    dry = torch.zeros_like(mask)
    dry[:, :, 0], dry[:, :, 2] = 1.0, -0.3  # first-order inverse of y = x + 0.3 x(n - 2 hops)
    out = net.istft(net.apply_mask(dry, net.stft(echo)), x.shape[-1])

    def error(y: torch.Tensor) -> float:
        return float(torch.sum((y - x)[..., core] ** 2) / torch.sum(x[..., core] ** 2))

    assert error(echo) == pytest.approx(0.09, rel=0.2)  # the echo: 0.3² of the energy
    assert error(out) < 0.015  # what is left is the echo of the echo, 0.3⁴
    with pytest.raises(ValueError, match="taps must be positive"):
        UNetMask(**TINY_UNET, mask="deep", taps=0)


@pytest.mark.parametrize("model_channels", [1, 2])
def test_a_constant_mask_scales_the_input(model_channels):
    """M = 0.7 everywhere: ISTFT(M · Y) = 0.7 · y, at any length and at the very edges."""
    net = constant_mask(UNetMask(**TINY_UNET, channels=model_channels).eval(), 0.7)
    x = noise(3001, channels=2)
    y = run(net, x)
    want = 0.7 * (x if model_channels == 2 else x.mean(axis=0, keepdims=True).repeat(2, axis=0))
    np.testing.assert_allclose(y, want, atol=1e-5)


def test_unet_is_shift_equivariant_on_its_alignment_grid():
    """Shifting the input by ``alignment`` samples shifts the output: frames and pooling
    cells line up, which is what chunk starts rely on (GroupNorm removed: its statistics
    would see the shifted edges)."""
    torch.manual_seed(0)
    net = without_groupnorm(UNetMask(**TINY_UNET).eval())
    a = net.alignment
    assert a == 64 * 4
    x = noise(8 * a)
    y = run(net, x)
    shifted = run(net, np.concatenate([np.zeros((1, a), np.float32), x], axis=1))[:, a:]
    inner = slice(2 * a, -2 * a)
    np.testing.assert_allclose(shifted[:, inner], y[:, inner], atol=1e-6)


# -------------------------------------------------------------------------------- WaveNet


@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 777), (3, 2, 1001)])
def test_wavenet_keeps_shape_and_starts_as_the_identity(shape):
    net = WaveNetDenoiser(**TINY_WAVENET).eval()
    x = torch.from_numpy(noise(int(np.prod(shape)))).reshape(shape)
    with torch.inference_mode():
        assert torch.equal(net(x), x)  # the zero-initialised head: y = x + 0
        y = random_wavenet()(x)
    assert y.shape == x.shape and not torch.equal(y, x)


@pytest.mark.parametrize("changes", [{}, {"kernel_size": 5}, {"stacks": 2, "layers_per_stack": 3}])
def test_wavenet_receptive_field_matches_its_impulse_response(changes):
    """An impulse changes exactly ``receptive_field`` output samples, centred on it."""
    net = random_wavenet(**changes).double()
    rf, n, at = net.receptive_field, 400, 200
    k, layers, stacks = net.kernel_size, net.layers_per_stack, net.stacks
    assert rf == (k - 1) * stacks * (2**layers - 1) + 1
    silence = torch.zeros(1, 1, n, dtype=torch.float64)
    impulse = silence.clone()
    impulse[..., at] = 0.5
    with torch.inference_mode():
        diff = (net.residual(impulse) - net.residual(silence)).abs()[0, 0]
    support = torch.nonzero(diff > 1e-12)[:, 0]
    assert int(support[0]) == at - rf // 2 and int(support[-1]) == at + rf // 2
    assert len(support) == rf


# ------------------------------------------------------------------- chunked inference


def test_wavenet_chunks_equal_whole_signal_inference():
    """Half a receptive field of context per chunk: every kept sample sees its whole
    receptive field, so chunking changes nothing (except within one receptive field of
    the signal's ends, where the whole-signal run pads each layer with zeros)."""
    net = random_wavenet()
    x = noise(5003)
    whole = run(net, x)
    for min_chunk_s, overlap in ((0.1, 0.1), (0.05, 0.3), (0.2, 0.0)):
        y = wavenet_chunks(net, x, SR, min_chunk_s=min_chunk_s, overlap=overlap)
        assert y.shape == x.shape and y.dtype == np.float32
        rf = net.receptive_field
        np.testing.assert_allclose(y[:, rf:-rf], whole[:, rf:-rf], atol=1e-5)


def test_wavenet_chunks_are_at_least_four_receptive_fields():
    seen: list[int] = []

    class Recorder(Gain):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.shape[-1])
            return x

    wavenet_chunks(Recorder(1.0, receptive_field=501), noise(20_000), SR, min_chunk_s=0.01)
    assert seen and all(n == 4 * 501 + 2 * 250 for n in seen)  # chunk + context both sides


def test_unet_ola_equals_whole_signal_inference_for_a_local_network():
    """Without GroupNorm the U-Net is local and shift-equivariant on its grid: hop-aligned
    chunks with enough context reproduce the whole-signal output."""
    torch.manual_seed(0)
    net = without_groupnorm(UNetMask(**TINY_UNET).eval())
    x = noise(6 * SR)
    whole = run(net, x)
    for chunk_s, context_s in ((1.0, 0.25), (0.5, 0.5), (2.0, 0.3)):
        y = unet_ola(net, x, chunk_s, context_s, SR, batch_size=3)
        assert y.shape == x.shape and y.dtype == np.float32
        np.testing.assert_allclose(
            y[:, SR // 2 : -SR // 2], whole[:, SR // 2 : -SR // 2], atol=1e-6
        )


def test_unet_ola_is_close_to_whole_signal_inference_with_groupnorm():
    """With GroupNorm a chunk normalises with its own statistics; on a stationary signal
    they barely differ from the whole signal's. Measured rms difference 1.3 % of the
    output's rms (untrained network, 1-s chunks)."""
    torch.manual_seed(0)
    net = UNetMask(**TINY_UNET).eval()
    x = noise(6 * SR)
    whole = run(net, x)[:, SR // 2 : -SR // 2]
    y = unet_ola(net, x, 1.0, 0.25, SR)[:, SR // 2 : -SR // 2]
    assert np.sqrt(np.mean((y - whole) ** 2)) < 0.05 * np.sqrt(np.mean(whole**2))


@pytest.mark.parametrize("channels", [1, 2])
def test_no_level_bump_at_chunk_borders(channels):
    """A constant gain through both chunkers: output / input is flat across every border
    (the windows sum to one), mono and stereo."""
    t = np.arange(37_001) / SR
    x = np.stack([0.5 + 0.2 * np.sin(2 * np.pi * (110 + 50 * c) * t) for c in range(channels)])
    x = x.astype(np.float32)  # never near zero: the ratio is defined everywhere
    outs = {
        "ola": unet_ola(Gain(0.7, alignment=256), x, 0.5, 0.125, SR),
        "ola_hard_cuts": unet_ola(Gain(0.7, alignment=256), x, 0.5, 0.125, SR, fade_s=0.0),
        "wavenet": wavenet_chunks(Gain(0.7, receptive_field=101), x, SR, 0.3, 0.1),
    }
    for name, y in outs.items():
        ratio = y / x
        assert np.ptp(ratio) < 1e-3 and abs(float(ratio.mean()) - 0.7) < 1e-3, name
    # the real STFT path with a constant mask: the same, through the ISTFT
    net = constant_mask(UNetMask(**TINY_UNET, channels=channels).eval(), 0.7)
    ratio = unet_ola(net, x, 1.0, 0.25, SR) / x
    assert np.ptp(ratio) < 1e-3, np.ptp(ratio)


def test_short_signals_are_one_chunk():
    for n in (1, 100, 3000):
        x = noise(n)
        np.testing.assert_allclose(unet_ola(Gain(2.0, alignment=256), x, 1.0, 0.1, SR), 2 * x)
        np.testing.assert_allclose(wavenet_chunks(Gain(2.0, receptive_field=31), x, SR), 2 * x)
