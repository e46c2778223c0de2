"""The ``unet_mask`` and ``wavenet`` variants (docs/method.md#unet-mask,
docs/method.md#wavenet): they load their network through ``ctx.model``, run it at the
checkpoint's rate and channel count, and hand back the input's shape and rate.

No trained checkpoint is needed: the loaders here return tiny untrained networks.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch import nn

import musicrestore.models
from musicrestore.models import ARCHITECTURES, UNetMask, WaveNetDenoiser
from musicrestore.variants import VARIANTS, VariantError, build_context, get_variant
from tests.helpers import tone_level_db, tones

SR = 44100
TINY = {
    "unet_mask": {"n_fft": 256, "hop": 64, "base_channels": 4, "levels": 3, "groups": 2},
    "wavenet": {"residual_channels": 4, "skip_channels": 4, "layers_per_stack": 4, "stacks": 1},
}


class Loader:
    """``loader(name, models_dir) -> (net, config)`` of tiny networks that pass their input
    through (mask forced to one, WaveNet head at zero), trained "at" ``sr``; records the
    calls and what each network was fed."""

    def __init__(self, sr: int, channels: int = 1) -> None:
        self.sr, self.channels = sr, channels
        self.calls: list[tuple[str, Path | None]] = []
        self.fed: list[tuple[int, ...]] = []

    def __call__(self, name: str, models_dir: Path | None) -> tuple[nn.Module, dict[str, Any]]:
        self.calls.append((name, models_dir))
        kwargs = dict(TINY[name])
        if name == "unet_mask":
            kwargs["channels"] = self.channels
        net = ARCHITECTURES[name](**kwargs).eval()
        if isinstance(net, UNetMask):
            nn.init.zeros_(net.head.weight)
            nn.init.constant_(net.head.bias, 30.0)  # sigmoid(30) = 1 in float32
        net.register_forward_pre_hook(lambda _m, args: self.fed.append(tuple(args[0].shape)))
        return net, {"sr": self.sr, "arch": name, "kwargs": kwargs}


def restore(name: str, wave: np.ndarray, loader: Loader, params: dict | None = None) -> np.ndarray:
    ctx = build_context(name, params, model_loader=loader)
    before = wave.copy()
    out = get_variant(name)(wave, SR, ctx)
    np.testing.assert_array_equal(wave, before)
    assert out.shape == wave.shape and out.dtype == np.float32 and np.isfinite(out).all()
    return out


@pytest.mark.parametrize("name", ["unet_mask", "wavenet"])
def test_registration(name):
    v = VARIANTS[name]
    assert v.checkpoint == name and not v.pointwise and v.output == "mixture"
    assert v.tasks == ("T1", "T3")
    # the trained models, in this order (then seed 004's per-target uformer), after the
    # methods that train nothing; only the downloaded pretrained ones come after them
    trained = [n for n, v in VARIANTS.items() if v.checkpoint]
    assert trained == ["unet_mask", "wavenet", "uformer"]
    assert all(
        VARIANTS[n].pretrained for n in list(VARIANTS)[list(VARIANTS).index("uformer") + 1 :]
    )


@pytest.mark.parametrize("name", ["unet_mask", "wavenet"])
def test_a_passthrough_network_at_the_input_rate_returns_the_input(name):
    loader = Loader(SR)
    x = tones(SR, [440.0, 3000.0], duration_s=0.5, channels=1)
    np.testing.assert_allclose(restore(name, x, loader), x, atol=1e-4)
    assert loader.calls == [(name, None)]


@pytest.mark.parametrize("name", ["unet_mask", "wavenet"])
def test_input_is_resampled_to_the_checkpoint_rate_and_back(name):
    """A 16 kHz network keeps 440 Hz and cannot return 12 kHz (above its Nyquist); it is fed
    mono at 16 kHz and the output has the input's stereo shape at 44.1 kHz."""
    loader = Loader(16000)
    x = tones(SR, [440.0, 12000.0], duration_s=1.0, channels=2)
    y = restore(name, x, loader)
    assert tone_level_db(y, 440.0, SR) == pytest.approx(tone_level_db(x, 440.0, SR), abs=0.1)
    assert tone_level_db(y, 12000.0, SR) < tone_level_db(x, 12000.0, SR) - 40.0
    np.testing.assert_array_equal(y[0], y[1])  # mono network: duplicated
    assert loader.fed and all(shape[1] == 1 for shape in loader.fed)
    assert loader.fed == [(1, 1, 16000)]  # one chunk: 1 s at 16 kHz


def test_a_stereo_unet_keeps_the_channels_apart():
    loader = Loader(SR, channels=2)
    x = np.concatenate([tones(SR, [440.0], 0.5, 1), tones(SR, [660.0], 0.5, 1)])
    np.testing.assert_allclose(restore("unet_mask", x, loader), x, atol=1e-4)
    assert all(shape[1] == 2 for shape in loader.fed)


def test_mono_input_to_a_mono_network_stays_mono():
    x = tones(SR, [440.0], duration_s=0.3, channels=1)
    for name in ("unet_mask", "wavenet"):
        assert restore(name, x, Loader(32000)).shape == (1, x.shape[1])


def test_long_inputs_are_chunked_by_the_variant_params():
    """25 s at the network's rate with 5-s U-Net chunks / 2-s WaveNet chunks: several
    batched forward passes, and the output is still the input."""
    x = tones(16000, [220.0], duration_s=25.0, channels=1)
    loader = Loader(16000)
    ctx = build_context(
        "unet_mask", {"unet_mask": {"chunk_s": 5.0, "context_s": 0.5}}, model_loader=loader
    )
    y = get_variant("unet_mask")(x, 16000, ctx)
    np.testing.assert_allclose(y, x, atol=1e-4)
    assert len(loader.fed) == 3 and loader.fed[0][0] == 2  # 5 chunks, batches of 2
    loader = Loader(16000)
    ctx = build_context("wavenet", {"wavenet": {"batch_size": 8}}, model_loader=loader)
    np.testing.assert_allclose(get_variant("wavenet")(x, 16000, ctx), x, atol=1e-6)
    assert [s[0] for s in loader.fed] == [8, 6]  # (25 s - 0.2 s) / 1.8 s: 14 chunks of 2 s


def test_the_model_is_loaded_once_and_shared_by_derived_contexts():
    loader = Loader(SR)
    ctx = build_context("wavenet", model_loader=loader)
    x = tones(SR, [440.0], duration_s=0.1)
    for child in (ctx, ctx.derive(), ctx.derive()):
        get_variant("wavenet")(x, SR, child)
    assert loader.calls == [("wavenet", None)]


def test_wavenet_size_applies_only_to_bare_weights():
    """A checkpoint with its config wins over ``size``; bare weights are built at ``size``."""
    with pytest.raises(VariantError, match="size"):
        restore("wavenet", tones(SR, [440.0], 0.1), Loader(SR), {"wavenet": {"size": "huge"}})
    bare = WaveNetDenoiser(**WaveNetDenoiser.SIZES["small"]).state_dict()
    ctx = build_context(
        "wavenet", {"wavenet": {"size": "small"}}, model_loader=lambda n, d: (bare, {"sr": SR})
    )
    x = tones(SR, [440.0], duration_s=0.2)
    np.testing.assert_allclose(get_variant("wavenet")(x, SR, ctx), x, atol=1e-6)
    ctx = build_context(
        "wavenet", {"wavenet": {"size": "medium"}}, model_loader=lambda n, d: (bare, {"sr": SR})
    )
    with pytest.raises(RuntimeError, match="size mismatch"):
        get_variant("wavenet")(x, SR, ctx)


@pytest.mark.parametrize(
    "params",
    [
        {"unet_mask": {"batch_size": 0}},
        {"unet_mask": {"context_s": 0.0}},
        {"wavenet": {"overlap": 0.7}},
        {"wavenet": {"min_chunk_s": -1.0}},
        {"wavenet": {"chunk_s": 1.0}},
    ],
)
def test_bad_params_are_one_line_errors(params):
    (name,) = params
    with pytest.raises(VariantError, match=f"variants.{name}") as err:
        restore(name, tones(SR, [440.0], 0.1), Loader(SR), params)
    assert "\n" not in str(err.value)


def test_a_loader_without_a_rate_is_a_clear_error():
    ctx = build_context("unet_mask", model_loader=lambda n, d: UNetMask())
    with pytest.raises(VariantError, match="config"):
        get_variant("unet_mask")(tones(SR, [440.0], 0.1), SR, ctx)


@pytest.fixture
def fake_checkpoint(monkeypatch):
    """``musicrestore.models.checkpoint`` replaced by a module whose ``load_model`` records calls."""
    calls: list[tuple[Path, str]] = []
    module = types.ModuleType("musicrestore.models.checkpoint")

    def load_model(folder: Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
        calls.append((Path(folder), device))
        return Loader(SR)("wavenet", None)

    module.load_model = load_model  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "musicrestore.models.checkpoint", module)
    # `from ..models import checkpoint` reads the package's attribute once the real module
    # has been imported (by another test module, at collection)
    monkeypatch.setattr(musicrestore.models, "checkpoint", module, raising=False)
    return calls


def test_models_dir_defaults_to_the_checkpoint_loader(tmp_path, fake_checkpoint):
    (tmp_path / "wavenet").mkdir()
    ctx = build_context("wavenet", models_dir=tmp_path, device="cpu")
    x = tones(SR, [440.0], duration_s=0.1)
    get_variant("wavenet")(x, SR, ctx)
    assert fake_checkpoint == [(tmp_path / "wavenet", "cpu")]
    # the pipeline passes the checkpoint folder itself (--models-dir models/wavenet)
    ctx = build_context("wavenet", models_dir=tmp_path / "wavenet")
    get_variant("wavenet")(x, SR, ctx)
    assert fake_checkpoint[-1] == (tmp_path / "wavenet", "cpu")
    # no models_dir: no loader, the usual one-line error
    with pytest.raises(VariantError, match="no model loader"):
        get_variant("wavenet")(x, SR, build_context("wavenet"))


@pytest.mark.parametrize("name", ["unet_mask", "wavenet"])
def test_a_saved_checkpoint_loads_through_the_default_loader(tmp_path, name):
    """``musicrestore.models.checkpoint`` round trip: saved at 16 kHz, found under ``models_dir``."""
    checkpoint = pytest.importorskip("musicrestore.models.checkpoint")
    net, config = Loader(16000)(name, None)
    checkpoint.save_model(tmp_path / name, net, name, config["kwargs"], 16000, 1, "d", "p")
    x = tones(SR, [440.0], duration_s=0.5)
    for models_dir in (tmp_path, tmp_path / name):
        ctx = build_context(name, models_dir=models_dir)
        y = get_variant(name)(x, SR, ctx)
        loaded, cfg = ctx.model(name)
        assert cfg["sr"] == 16000 and type(loaded) is type(net)
        assert tone_level_db(y, 440.0, SR) == pytest.approx(tone_level_db(x, 440.0, SR), abs=0.1)
