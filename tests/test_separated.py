"""Variants that separate first: demucs, demucs_dsp, demucs_snmf, adaptive."""

from __future__ import annotations

import numpy as np
import pytest

from musicrestore.variants import VariantError, build_context
from musicrestore.variants.dsp import dsp_chain
from musicrestore.variants.separated import (
    adaptive,
    demucs,
    demucs_dsp,
    demucs_snmf,
    separate,
    stem_levels_db,
)
from tests.helpers import BandSplitSeparator, FixedStemsSeparator, random_stems, tones


def band_ctx(variant: str, target: str | None = None, **params: dict) -> tuple:
    sep = BandSplitSeparator()
    ctx = build_context(variant, params or None, target=target, separator_factory=lambda: sep)
    return ctx, sep


def test_band_split_double_sums_to_input():
    x = tones(44100, [80.0, 440.0, 2000.0, 6000.0])
    stems = BandSplitSeparator().separate(x, 44100)
    np.testing.assert_allclose(sum(stems.values()), x, atol=1e-5)


def test_demucs_returns_the_target_stem_on_t2_and_the_remix_on_t1():
    sr = 44100
    x = tones(sr, [80.0, 440.0, 2000.0])
    ctx, _ = band_ctx("demucs", target="Bass")
    bass = demucs(x, sr, ctx)
    np.testing.assert_allclose(bass, tones(sr, [80.0]), atol=2e-3)
    ctx, _ = band_ctx("demucs", target="Gtr_EG")  # guitars live in "other"
    np.testing.assert_allclose(demucs(x, sr, ctx), tones(sr, [440.0]), atol=2e-3)
    ctx, _ = band_ctx("demucs")
    np.testing.assert_allclose(demucs(x, sr, ctx), x, atol=1e-5)


def test_demucs_dsp_applies_the_dsp_direct_chain_to_the_target_stem():
    sr = 44100
    x = tones(sr, [80.0, 440.0, 2000.0])
    ctx, sep = band_ctx("demucs_dsp", target="Voc", dsp_direct={"gain_db": -3.0})
    assert ctx.params_of("dsp_direct")["gain_db"] == -3.0
    out = demucs_dsp(x, sr, ctx)
    vocals = BandSplitSeparator().separate(x, sr)["vocals"]
    np.testing.assert_allclose(out, dsp_chain(vocals, sr, **ctx.params_of("dsp_direct")), atol=1e-6)
    assert sep.calls == 1


def test_adaptive_separates_a_multi_stem_mix():
    sr = 44100
    ctx, sep = band_ctx("adaptive")
    x = tones(sr, [80.0, 440.0, 2000.0])
    out = adaptive(x, sr, ctx)
    assert ctx.decisions["separated"] is True
    assert ctx.decisions["active_stems"] == ["bass", "other", "vocals"]
    assert "3 stem(s)" in ctx.decisions["reason"]
    chain = ctx.params_of("dsp_direct")
    stems = BandSplitSeparator().separate(x, sr)
    expected = np.sum([dsp_chain(s, sr, **chain) for s in stems.values()], axis=0)
    np.testing.assert_allclose(out, expected, atol=1e-5)  # the chain per stem, remixed
    assert sep.calls == 1


def test_adaptive_min_active_is_a_param():
    sr = 44100
    x = tones(sr, [80.0, 440.0, 2000.0], duration_s=1.0)  # three active stems
    for min_active, split in ((3, True), (4, False)):
        ctx, _ = band_ctx("adaptive", adaptive={"min_active": min_active})
        adaptive(x, sr, ctx)
        assert ctx.decisions["separated"] is split, min_active


def test_adaptive_restores_a_solo_instrument_directly():
    sr = 44100
    solo = tones(sr, [440.0, 880.0])  # both partials in the "other" band
    ctx, _ = band_ctx("adaptive")
    out = adaptive(solo, sr, ctx)
    assert ctx.decisions["separated"] is False
    assert ctx.decisions["active_stems"] == ["other"]
    np.testing.assert_allclose(out, dsp_chain(solo, sr, **ctx.params_of("dsp_direct")), atol=1e-6)


def test_adaptive_threshold_is_a_param():
    sr = 44100
    # bass 26 dB below the rest: inactive at -20 dB, active at -30 dB.
    t = np.arange(2 * sr) / sr
    mix = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.015 * np.sin(2 * np.pi * 80 * t))[None]
    mix = mix.astype(np.float32)
    levels = stem_levels_db(mix, BandSplitSeparator().separate(mix, sr))
    assert levels["bass"] == pytest.approx(-26.0, abs=0.5)
    for threshold, split in ((-20.0, False), (-30.0, True)):
        ctx, _ = band_ctx("adaptive", adaptive={"threshold_db": threshold})
        adaptive(mix, sr, ctx)
        assert ctx.decisions["separated"] is split


def test_adaptive_on_t2_with_another_soloist_returns_the_target_stem():
    sr = 44100
    solo = tones(sr, [440.0])  # "other" plays alone; the target is vocals
    ctx, _ = band_ctx("adaptive", target="Voc")
    out = adaptive(solo, sr, ctx)
    assert ctx.decisions["separated"] is False
    assert np.sqrt(np.mean(out**2)) < 1e-3 * np.sqrt(np.mean(solo**2))


def test_demucs_snmf_keeps_mono_mono_and_denoises_the_target_stem(rng):
    sr = 44100
    t = np.arange(3 * sr) / sr
    env = (np.sin(2 * np.pi * 1.0 * t) > 0).astype(float)  # notes with rests between
    clean = (0.3 * env * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    noisy = clean + (0.03 * rng.standard_normal(clean.shape)).astype(np.float32)
    ctx, _ = band_ctx("demucs_snmf", target="Gtr")
    out = demucs_snmf(noisy, sr, ctx)
    assert out.shape == clean.shape
    ref = BandSplitSeparator().separate(clean, sr)["other"]

    def snr(x: np.ndarray) -> float:
        return 10 * np.log10(np.sum(ref**2) / np.sum((x - ref) ** 2))

    noisy_other = BandSplitSeparator().separate(noisy, sr)["other"]
    assert snr(out) > snr(noisy_other) + 4.0  # measured: 28.2 -> 35.3 dB
    assert set(ctx.decisions) == {"preclean_clicks", "preclean_quant_step"}


def test_separate_checks_what_the_separator_returns():
    x = np.zeros((2, 1000), np.float32)
    ctx = build_context("demucs", separator_factory=lambda: FixedStemsSeparator({}))
    with pytest.raises(VariantError, match="no stems"):
        separate(x, 44100, ctx)
    short = random_stems((2, 999))
    ctx = build_context("demucs", separator_factory=lambda: FixedStemsSeparator(short))
    with pytest.raises(VariantError) as err:
        separate(x, 44100, ctx)
    assert "\n" not in str(err.value) and "(2, 999)" in str(err.value)
    stems = {k: v.astype(np.float64) for k, v in random_stems((2, 1000)).items()}
    ctx = build_context("demucs", separator_factory=lambda: FixedStemsSeparator(stems))
    out = separate(x, 44100, ctx)
    assert all(s.dtype == np.float32 for s in out.values()) and list(out) == list(stems)


def test_a_target_the_separator_lacks_is_a_clear_error():
    stems = {k: v for k, v in random_stems((2, 1000)).items() if k != "vocals"}
    ctx = build_context(
        "demucs", target="Voc", separator_factory=lambda: FixedStemsSeparator(stems)
    )
    with pytest.raises(VariantError, match="'vocals'"):
        demucs(np.zeros((2, 1000), np.float32), 44100, ctx)


def test_variants_with_tiny_htdemucs_use_its_stems():
    """The real separator (a random-init HTDemucs, deterministic without shifts) through the
    variants: each returns what it should make of the separator's own stems."""
    separation = pytest.importorskip("musicrestore.separation")
    sep = separation.tiny_separator(seed=0)
    sr = 44100
    x = tones(sr, [110.0, 440.0], duration_s=1.0)
    stems = sep.separate(x, sr)

    def run(fn, target=None, **params):
        ctx = build_context(
            fn.__name__, params or None, target=target, separator_factory=lambda: sep
        )
        out = fn(x, sr, ctx)
        assert out.shape == x.shape and out.dtype == np.float32, fn.__name__
        return out, ctx

    np.testing.assert_array_equal(run(demucs, "Voc")[0], stems["vocals"])
    np.testing.assert_allclose(run(demucs)[0], sum(stems.values()), atol=1e-6)
    out, ctx = run(demucs_dsp, "Bass")
    np.testing.assert_allclose(
        out, dsp_chain(stems["bass"], sr, **ctx.params_of("dsp_direct")), atol=1e-6
    )
    levels = stem_levels_db(x, stems)
    for threshold, split in (
        (min(levels.values()) - 1.0, True),
        (max(levels.values()) + 1.0, False),
    ):
        _, ctx = run(adaptive, "Voc", adaptive={"threshold_db": threshold})
        assert ctx.decisions["separated"] is split
        assert ctx.decisions["active_stems"] == (sorted(stems) if split else [])
