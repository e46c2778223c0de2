"""The one registry of restoration variants, the context they run with, and a round trip of
every registered variant through it that checks the variant does its job.

Nothing here lists variant names except :data:`EXPECTED`, which states, for each registered
variant, its registration metadata and a check of its job on a synthetic signal.
``test_every_registered_variant_has_stated_expectations`` makes a newly registered variant
fail until its behaviour is stated here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from musicrestore.variants import (
    VARIANTS,
    Separator,
    VariantContext,
    VariantError,
    build_context,
    get_variant,
    register,
)
from musicrestore.variants.pretrained import missing_checkpoints
from musicrestore.variants.registry import merge_params
from tests.helpers import (
    BandSplitSeparator,
    FixedStemsSeparator,
    band_level_db,
    level_db,
    plant_clicks,
    random_stems,
    tone_level_db,
    tones,
    white_noise,
)

SR = 44100

#: ``dsp_direct`` params that make the seed-001 chain a pure gain: no spectral gating, gate
#: and compressor at ratio 1, a flat shelf. Only ``gain_db`` (default +2 dB) still acts.
NEUTRAL_CHAIN = {
    "nr_prop_decrease": 0.0,
    "gate_ratio": 1.0,
    "comp_ratio": 1.0,
    "lowshelf_gain_db": 0.0,
}


def passthrough_model(name: str, models_dir: Path | None) -> tuple[Any, dict[str, Any]]:
    """A model loader without checkpoints: tiny untrained networks at :data:`SR` that return
    their input (the U-Net's mask forced to one, the WaveNet's zero-initialised head)."""
    from torch import nn

    from musicrestore.models import ARCHITECTURES

    arch = name.split("/")[0]  # a per-target model: "uformer/<group>"
    kwargs = {
        "unet_mask": {"n_fft": 256, "hop": 64, "base_channels": 4, "levels": 2, "groups": 2},
        "wavenet": {"residual_channels": 4, "skip_channels": 4, "layers_per_stack": 3},
        "uformer": {"n_fft": 256, "hop": 64, "channels": [2, 4], "roformer_layers": 1, "heads": 1},
    }[arch]
    net = ARCHITECTURES[arch](**kwargs).eval()  # the U-Former's zero head: the identity
    if arch == "unet_mask":
        nn.init.zeros_(net.head.weight)
        nn.init.constant_(net.head.bias, 30.0)  # sigmoid(30) = 1 in float32
    return net, {"sr": SR, "arch": arch, "kwargs": kwargs}


def restore(
    name: str,
    wave: np.ndarray,
    params: dict[str, Any] | None = None,
    *,
    target: str | None = None,
    separator: Separator | None = None,
) -> tuple[np.ndarray, VariantContext]:
    """Run the registered variant ``name`` as the restore stage does, and check the contract
    every variant shares: same shape, float32, finite, and the input left untouched. A
    variant with a checkpoint gets :func:`passthrough_model`."""
    factory = None if separator is None else (lambda: separator)
    loader = passthrough_model if get_variant(name).checkpoint else None
    ctx = build_context(name, params, target=target, separator_factory=factory, model_loader=loader)
    before = wave.copy()
    out = get_variant(name)(wave, SR, ctx)
    np.testing.assert_array_equal(wave, before, err_msg=f"{name} modified its input")
    assert out.shape == wave.shape and out.dtype == np.float32, (name, out.shape, out.dtype)
    assert np.isfinite(out).all(), name
    return out, ctx


# ----------------------------------------------------------------------------- job checks


def identity_job(name: str) -> None:
    """Returns the input bit for bit (values over full scale, signed zeros, subnormals
    included) in a new array, so whoever writes into the output cannot alter the input."""
    x = np.random.default_rng(0).uniform(-1.5, 1.5, (2, 4000)).astype(np.float32)
    x[0, :4] = [-0.0, 0.0, np.float32(1e-40), -np.float32(1e-40)]
    out, _ = restore(name, x)
    assert out.tobytes() == x.tobytes()
    assert not np.shares_memory(out, x)


def preclean_job(name: str) -> None:
    """Lowers a stationary noise floor, keeps the tones, and removes injected clicks."""
    rng = np.random.default_rng(0)
    music = tones(SR, [440.0, 660.0], duration_s=2.0, amp=0.15)
    noisy = music + white_noise(rng, music.shape, -40.0)  # white noise at -40 dBFS RMS
    clicked, at_clicks = plant_clicks(noisy, n=10, seed=1, max_width=8)
    out, ctx = restore(name, clicked)
    # 3-8 kHz holds only noise. Measured: -46.4 -> -54.7 dB.
    assert band_level_db(out, SR, 3000, 8000) < band_level_db(noisy, SR, 3000, 8000) - 5.0
    for freq in (440.0, 660.0):
        assert tone_level_db(out, freq, SR) == pytest.approx(
            tone_level_db(music, freq, SR), abs=0.5
        )
    # The clicks (0.2-0.6 peak) are gone: what remains at their samples is the noise's size.
    # Measured: the error there drops by 28.6 dB, to at most 0.03.
    click_err_db = level_db((clicked - noisy)[at_clicks]) - level_db((out - noisy)[at_clicks])
    assert click_err_db > 15.0
    assert np.max(np.abs(out - noisy)[at_clicks]) < 0.1
    assert ctx.decisions["clicks"] >= 10  # 10 clicks in each of 2 channels
    assert ctx.decisions["quant_step"] is None  # float noise: nothing to de-quantize


def dsp_direct_job(name: str) -> None:
    """Applies its configured gain, and its gate attenuates a quiet noise-only passage."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    loud = (0.1 * np.sin(2 * np.pi * 1000 * t) * (t < 1.0)).astype(np.float32)  # -23 dBFS
    hiss = white_noise(rng, t.shape, -50.0) * (t >= 1.0)  # far below the -30 dB gate
    x = np.stack([loud + hiss, loud + hiss])
    tone_part, hiss_part = (t > 0.1) & (t < 0.9), (t > 1.3) & (t < 1.9)  # gate settled
    for gain_db in (5.0, -3.0):
        out, _ = restore(name, x, {name: {**NEUTRAL_CHAIN, "gain_db": gain_db}})
        for part in (tone_part, hiss_part):
            shift = level_db(out[:, part]) - level_db(x[:, part])
            assert shift == pytest.approx(gain_db, abs=0.5), (gain_db, shift)
    # The seed's gate (threshold -30 dB, ratio 1.5), everything else neutral and no gain.
    gated, _ = restore(name, x, {name: {**NEUTRAL_CHAIN, "gate_ratio": 1.5, "gain_db": 0.0}})
    assert level_db(gated[:, tone_part]) == pytest.approx(level_db(x[:, tone_part]), abs=0.5)
    # measured -4.9 dB (0.0 dB at ratio 1, above)
    assert level_db(gated[:, hiss_part]) < level_db(x[:, hiss_part]) - 3.0


def demucs_job(name: str) -> None:
    """The separator's stem of the target group on T2, the sum of its stems on T1."""
    x = tones(SR, [440.0], duration_s=0.5)
    stems = random_stems(x.shape)  # unrelated to x: only the separator's output can be returned
    for target, source in (
        ("Voc", "vocals"),
        ("Rhy", "drums"),
        ("Bass", "bass"),
        ("Gtr_EG", "other"),
    ):
        out, _ = restore(name, x, target=target, separator=FixedStemsSeparator(stems))
        np.testing.assert_array_equal(out, stems[source], err_msg=target)
    sep = FixedStemsSeparator(stems)
    out, _ = restore(name, x, separator=sep)
    np.testing.assert_allclose(out, sum(stems.values()), rtol=1e-6, atol=1e-7)
    assert len(sep.inputs) == 1 and np.array_equal(sep.inputs[0][0], x) and sep.inputs[0][1] == SR


def adaptive_job(name: str) -> None:
    """Separates (and returns the processed target stem) when two or more stems are active;
    runs the chain on the mixture when one is. The chain is a pure +3 dB gain here."""
    params = {"dsp_direct": {**NEUTRAL_CHAIN, "gain_db": 3.0}}
    band = BandSplitSeparator()  # bass < 150 Hz, other < 1 kHz, vocals < 4 kHz
    multi = tones(SR, [80.0, 440.0, 2000.0], duration_s=1.0)
    out, ctx = restore(name, multi, params, target="Voc", separator=band)
    assert ctx.decisions["separated"] is True, ctx.decisions
    assert ctx.decisions["active_stems"] == ["bass", "other", "vocals"]
    assert tone_level_db(out, 2000.0, SR) == pytest.approx(
        tone_level_db(multi, 2000.0, SR) + 3.0, abs=0.5
    )
    for other in (80.0, 440.0):  # not in the vocals stem
        assert tone_level_db(out, other, SR) < tone_level_db(multi, other, SR) - 40.0
    solo = tones(SR, [440.0, 880.0], duration_s=1.0)  # both partials in "other"
    out, ctx = restore(name, solo, params, separator=BandSplitSeparator())
    assert ctx.decisions["separated"] is False, ctx.decisions
    assert ctx.decisions["active_stems"] == ["other"]
    assert level_db(out) == pytest.approx(level_db(solo) + 3.0, abs=0.5)
    np.testing.assert_allclose(out, solo * 10 ** (3.0 / 20), atol=0.02)  # the mixture, louder


def demucs_snmf_job(name: str) -> None:
    """Lowers a stationary noise floor (S-NMF alone, and after pre-cleaning), keeps the tones,
    and returns mono for mono."""
    rng = np.random.default_rng(0)
    music = tones(SR, [440.0, 2000.0], duration_s=2.0, channels=1, amp=0.15)
    noisy = music + white_noise(rng, music.shape, -40.0)
    noise_in = band_level_db(noisy, SR, 5000, 10000)  # only noise there
    # (pre-clean off, measured drop 19.6 dB; on, 12.1 dB)
    for preclean, min_drop_db in ((False, 10.0), (True, 6.0)):
        out, ctx = restore(
            name, noisy, {name: {"preclean": preclean}}, separator=BandSplitSeparator()
        )
        assert band_level_db(out, SR, 5000, 10000) < noise_in - min_drop_db, preclean
        for freq in (440.0, 2000.0):
            assert tone_level_db(out, freq, SR) == pytest.approx(
                tone_level_db(music, freq, SR), abs=0.5
            )
        assert set(ctx.decisions) == (
            {"preclean_clicks", "preclean_quant_step"} if preclean else set()
        )


def demucs_dsp_job(name: str) -> None:
    """Applies the ``dsp_direct`` chain to each stem: its gain everywhere, and its gate to a
    quiet stem that the mixture's level would have kept open."""
    band = BandSplitSeparator()
    x = tones(SR, [440.0], duration_s=1.0, amp=0.2) + tones(SR, [2000.0], duration_s=1.0, amp=0.003)
    # -50 dBFS of 2 kHz: in the "vocals" stem, far below the gate threshold (-30 dB)
    late = slice(SR // 2, None)  # after the gate has settled

    def shift_db(out: np.ndarray, freq: float) -> float:
        return tone_level_db(out[:, late], freq, SR) - tone_level_db(x[:, late], freq, SR)

    chain = {**NEUTRAL_CHAIN, "gain_db": 3.0}
    out, _ = restore(name, x, {"dsp_direct": chain}, separator=band)
    assert shift_db(out, 440.0) == pytest.approx(3.0, abs=0.5)
    assert shift_db(out, 2000.0) == pytest.approx(3.0, abs=0.5)
    out, _ = restore(name, x, {"dsp_direct": chain}, target="Gtr_EG", separator=band)
    assert shift_db(out, 440.0) == pytest.approx(3.0, abs=0.5)
    assert shift_db(out, 2000.0) < -40.0  # only the "other" stem
    gate = {**chain, "gate_ratio": 4.0}
    out, _ = restore(name, x, {"dsp_direct": gate}, separator=band)
    assert shift_db(out, 440.0) == pytest.approx(3.0, abs=0.5)
    assert shift_db(out, 2000.0) < -20.0  # measured -60 dB: gated on its own stem
    on_mix = build_context("dsp_direct", {"dsp_direct": gate})
    assert shift_db(get_variant("dsp_direct")(x, SR, on_mix), 2000.0) == pytest.approx(3.0, abs=0.5)


#: Learned-variant params that cut a 1-s input into several chunks.
CHUNKED = {
    "unet_mask": {"unet_mask": {"chunk_s": 0.4, "context_s": 0.1}},
    "wavenet": {"wavenet": {"min_chunk_s": 0.2}},
}


def learned_job(name: str) -> None:
    """Loads its network through ``ctx.model`` and returns what the network returns: with
    a network that passes its input through, the input (mono and stereo, chunked)."""
    rng = np.random.default_rng(0)
    for channels in (1, 2):
        x = tones(SR, [440.0, 3000.0], duration_s=1.0, channels=channels)
        x = x + white_noise(rng, x.shape, -40.0)
        out, _ = restore(name, x, CHUNKED[name])
        np.testing.assert_allclose(
            out, x if channels == 1 else x.mean(0, keepdims=True).repeat(2, 0), atol=1e-4
        )


def uformer_job(name: str) -> None:
    """Loads the model of the example's target group (``ctx.model("uformer/<group>")``,
    once per group) and returns what it returns: with networks that pass their input
    through, the input, mono and stereo, chunked. Without a target it refuses to run."""
    rng = np.random.default_rng(0)
    for channels in (1, 2):
        x = tones(SR, [440.0, 3000.0], duration_s=1.0, channels=channels)
        x = x + white_noise(rng, x.shape, -40.0)
        for target in ("Voc", "Bass"):
            out, ctx = restore(name, x, {name: {"chunk_s": 0.4, "context_s": 0.1}}, target=target)
            np.testing.assert_allclose(out, x, atol=1e-4)
            assert set(ctx._cache.models) == {f"uformer/{target}"}
    with pytest.raises(VariantError, match="target"):
        restore(name, x)


@dataclass(frozen=True)
class Expected:
    """What a registered variant must be: its metadata, and ``job(name)`` that asserts it
    does its job on a synthetic signal."""

    output: str
    needs_separator: bool
    reads: tuple[str, ...]
    job: Callable[[str], None]


def pretrained_job(name: str) -> None:
    """Frozen community checkpoints (tests/test_pretrained.py runs them on tiny models):
    without them, offline, the variant refuses in one line that says what to download."""
    from musicrestore.core.errors import StageError

    x = tones(SR, [440.0], duration_s=0.2)
    params = {
        name: {
            "dir": "/nonexistent/pretrained",
            "default": [
                {"file": "m.ckpt", "config": "m.yaml", "stem": "vocals", "repo": "someone/model"}
            ],
        }
    }
    with pytest.raises(StageError) as err:
        restore(name, x, params, target="Voc")
    assert "m.ckpt is missing" in str(err.value) and "\n" not in str(err.value)
    assert "hf download someone/model m.ckpt" in str(err.value)


EXPECTED: dict[str, Expected] = {
    "identity": Expected("mixture", False, ("identity",), identity_job),
    "preclean": Expected("mixture", False, ("preclean",), preclean_job),
    "dsp_direct": Expected("mixture", False, ("dsp_direct",), dsp_direct_job),
    "demucs_dsp": Expected("stem", True, ("demucs_dsp", "dsp_direct"), demucs_dsp_job),
    "demucs_snmf": Expected("stem", True, ("demucs_snmf", "preclean"), demucs_snmf_job),
    "adaptive": Expected("stem", True, ("adaptive", "dsp_direct"), adaptive_job),
    "demucs": Expected("stem", True, ("demucs",), demucs_job),
    "unet_mask": Expected("mixture", False, ("unet_mask",), learned_job),
    "wavenet": Expected("mixture", False, ("wavenet",), learned_job),
    "uformer": Expected("stem", False, ("uformer",), uformer_job),
    "roformer_chain": Expected("stem", False, ("roformer_chain",), pretrained_job),
    "msrkit_baseline": Expected("stem", False, ("msrkit_baseline",), pretrained_job),
}


def expected(name: str) -> Expected:
    if name not in EXPECTED:
        pytest.fail(f"variant {name!r} is registered but its behaviour is not stated in EXPECTED")
    return EXPECTED[name]


# ---------------------------------------------------------------------------------- tests


def test_every_registered_variant_has_stated_expectations():
    assert list(VARIANTS), "no variant registered"
    assert set(EXPECTED) == set(VARIANTS), "EXPECTED and the registry disagree"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_registration_metadata(name):
    v, want = VARIANTS[name], expected(name)
    assert v.name == name and v.output == want.output
    assert v.needs_separator is want.needs_separator
    assert v.reads == want.reads and v.params_key == want.reads[0]
    assert v.description and "\n" not in v.description


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_does_its_job(name):
    expected(name).job(name)


def test_unknown_variant_is_a_one_line_error_listing_the_names():
    with pytest.raises(VariantError) as err:
        get_variant("unet")
    msg = str(err.value)
    assert "\n" not in msg and "'unet'" in msg
    assert all(name in msg for name in VARIANTS)


def test_register_rejects_duplicates_and_bad_output_kinds(monkeypatch):
    monkeypatch.setattr("musicrestore.variants.registry.VARIANTS", dict(VARIANTS))
    with pytest.raises(ValueError, match="twice"):
        register(next(iter(VARIANTS)), description="again")(lambda w, sr, ctx: w)
    with pytest.raises(ValueError, match="output"):
        register("x", description="x", output="mix")  # type: ignore[arg-type]


def test_register_adds_a_variant_with_its_metadata(monkeypatch):
    monkeypatch.setattr("musicrestore.variants.registry.VARIANTS", {})
    from musicrestore.variants import registry

    @register("halve", description="half\n   the level", defaults={"k": {"a": 1}})
    def halve(wave, sr, ctx):
        return wave * 0.5

    v = registry.get_variant("halve")
    assert v.fn is halve and v.description == "half the level" and v.params_key == "halve"
    assert v.output == "mixture" and not v.needs_separator and v.reads == ("halve",)
    assert v(np.ones((1, 4), np.float32), SR, VariantContext()).tolist() == [[0.5] * 4]


def test_unknown_params_are_rejected_with_the_accepted_keys():
    with pytest.raises(VariantError, match="gain_db") as err:
        build_context("dsp_direct", {"dsp_direct": {"gain": 3}})
    assert "variants.dsp_direct" in str(err.value)
    with pytest.raises(VariantError, match="variants.preclean.declick"):
        build_context("preclean", {"preclean": {"declick": {"treshold": 4}}})
    with pytest.raises(VariantError, match="expected a mapping"):
        merge_params({"a": {"b": 1}}, {"a": 3}, "x")


def test_context_merges_defaults_and_shared_params():
    ctx = build_context(
        "demucs_dsp", {"dsp_direct": {"gain_db": 0.0}, "preclean": {"denoise": {"bias": 9}}}
    )
    assert ctx.params == {}
    assert ctx.params_of("dsp_direct")["gain_db"] == 0.0
    assert ctx.params_of("dsp_direct")["comp_ratio"] == 4.0  # default kept
    with pytest.raises(VariantError, match="uses"):
        ctx.params_of("preclean")  # not declared: its params are not a dependency
    pre = build_context("preclean", {"preclean": {"denoise": {"bias": 9}}})
    assert pre.params["denoise"]["bias"] == 9 and pre.params["declick"]["order"] == 24
    assert VARIANTS["preclean"].defaults["denoise"]["bias"] == 2.4  # defaults not mutated


def test_separator_is_built_lazily_once_and_shared_by_derived_contexts():
    built = []

    def factory() -> BandSplitSeparator:
        built.append(1)
        return BandSplitSeparator()

    ctx = build_context("demucs", separator_factory=factory)
    assert built == []
    child = ctx.derive(target="Bass")
    assert child.target_source() == "bass" and ctx.target_source() is None
    assert ctx.separator() is child.separator() and built == [1]
    child.record("k", 1)
    assert child.decisions == {"k": 1} and ctx.decisions == {}


def test_missing_separator_or_model_loader_is_a_clear_error():
    ctx = build_context("demucs")
    with pytest.raises(VariantError, match="separator"):
        ctx.separator()
    with pytest.raises(VariantError, match="model 'unet_mask'"):
        ctx.model("unet_mask")


def test_models_are_loaded_lazily_and_cached(tmp_path):
    loads = []

    def loader(name, models_dir):
        loads.append((name, models_dir))
        return object()

    ctx = build_context("identity", models_dir=tmp_path, model_loader=loader)
    m = ctx.model("unet_mask")
    assert ctx.derive().model("unet_mask") is m and loads == [("unet_mask", tmp_path)]


def test_separator_doubles_have_the_separator_interface():
    assert isinstance(BandSplitSeparator(), Separator)
    assert isinstance(FixedStemsSeparator(random_stems((2, 8))), Separator)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_survives_a_very_short_clip(name):
    """50 ms: shorter than every STFT window and the chain's gate release."""
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2205) / SR)).astype(np.float32)
    x = np.stack([x, 0.5 * x])
    separator = BandSplitSeparator() if VARIANTS[name].needs_separator else None
    target = "Voc" if VARIANTS[name].per_target else None  # one model per T2 group
    if missing_checkpoints(name, None, ["Voc"]):  # community checkpoints: test_pretrained.py
        pytest.skip(f"{name} needs downloaded checkpoints")
    restore(name, x, separator=separator, target=target)


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ({"gain_db": 200.0}, "variants.dsp_direct.gain_db: got 200.0; expected a gain in dB"),
        ({"gain_db": -61.0}, "expected a gain in dB in [-60, 24]"),
        ({"gate_threshold_db": 6.0}, "expected a level in dBFS in [-120, 0]"),
        ({"comp_ratio": 0.5}, "expected a ratio in [1, 100]"),
        ({"lowshelf_cutoff_hz": 1e6}, "expected a frequency in Hz in [0, 96000]"),
    ],
)
def test_dsp_params_out_of_a_sane_range_are_one_line(block, says):
    """A +200 dB gain once reached the browser as a signal peaking near 1e9: every level,
    gain, ratio and frequency of the typed params has a range, for the app, the CLI and the
    stages alike (one merge)."""
    from musicrestore.variants.registry import VariantParamsError, resolve_params

    with pytest.raises(VariantParamsError, match=re.escape(says)):
        resolve_params(get_variant("dsp_direct"), {"dsp_direct": block})
    own, _ = resolve_params(get_variant("dsp_direct"), {"dsp_direct": {"gain_db": 24.0}})
    assert own["gain_db"] == 24.0
