"""The one registry of restoration variants and the context they run with."""

from __future__ import annotations

import numpy as np
import pytest

from musicrestore.variants import VARIANTS, VariantError, build_context, get_variant, register
from musicrestore.variants.registry import merge_params
from tests.test_separated import BandSplitSeparator

SPEC_VARIANTS = {
    "identity": "mixture",
    "preclean": "mixture",
    "dsp_direct": "mixture",
    "demucs_dsp": "stem",
    "demucs_snmf": "stem",
    "adaptive": "stem",
    "demucs": "stem",
}


def test_registry_holds_the_spec_variants():
    for name, output in SPEC_VARIANTS.items():
        v = VARIANTS[name]
        assert v.output == output and v.description and v.params_key == name
    assert [n for n in VARIANTS if VARIANTS[n].needs_separator] == [
        "demucs_dsp",
        "demucs_snmf",
        "adaptive",
        "demucs",
    ]
    assert VARIANTS["demucs_dsp"].reads == ("demucs_dsp", "dsp_direct")
    assert VARIANTS["demucs_snmf"].reads == ("demucs_snmf", "preclean")


def test_unknown_variant_is_a_one_line_error_listing_the_names():
    with pytest.raises(VariantError) as err:
        get_variant("unet")
    msg = str(err.value)
    assert "\n" not in msg and "'unet'" in msg
    assert all(name in msg for name in SPEC_VARIANTS)


def test_register_rejects_duplicates_and_bad_output_kinds(monkeypatch):
    monkeypatch.setattr("musicrestore.variants.registry.VARIANTS", dict(VARIANTS))
    with pytest.raises(ValueError, match="twice"):
        register("identity", description="again")(lambda w, sr, ctx: w)
    with pytest.raises(ValueError, match="output"):
        register("x", description="x", output="mix")  # type: ignore[arg-type]


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


@pytest.mark.parametrize("name", list(SPEC_VARIANTS))
def test_every_variant_survives_a_very_short_clip(name):
    """50 ms: shorter than every STFT window and the chain's gate release."""
    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2205) / 44100)).astype(np.float32)
    x = np.stack([x, 0.5 * x])
    ctx = build_context(name, separator_factory=BandSplitSeparator)
    out = get_variant(name)(x, 44100, ctx)
    assert out.shape == x.shape and out.dtype == np.float32 and np.isfinite(out).all()
