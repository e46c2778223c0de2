"""Seed 000 pre-clean: declicking, de-quantization, minimum-statistics denoise."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest

from musicrestore.dsp.preclean import (
    declick,
    dequantize,
    detect_clicks,
    detect_quantization_step,
    fill_gap,
    lpc,
    min_stats_denoise,
    preclean,
)
from musicrestore.variants import build_context, get_variant
from tests.helpers import plant_clicks

SR = 44100


def plucked_notes(sr: int = SR, duration_s: float = 2.0, seed: int = 0) -> np.ndarray:
    """Stereo harmonic notes with sharp onsets and exponential decays, plus a faint hiss:
    the transients a declicker must not mistake for clicks."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * sr)) / sr
    x = np.zeros_like(t)
    for f0, onset in ((220.0, 0.0), (330.0, 0.37), (262.0, 0.8), (196.0, 1.2), (440.0, 1.55)):
        on = t >= onset
        tt = t[on] - onset
        note = sum((0.5 / h) * np.sin(2 * np.pi * f0 * h * tt) for h in range(1, 8))
        x[on] += 0.3 * note * np.exp(-3.0 * tt)
    x += 1e-3 * rng.standard_normal(x.shape)
    return np.stack([x, 0.8 * x]).astype(np.float32)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    err = max(float(np.sum((est.astype(np.float64) - ref) ** 2)), 1e-30)  # exact output: huge
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / err))


def test_lpc_predicts_a_sinusoid():
    t = np.arange(2000) / SR
    x = np.sin(2 * np.pi * 500 * t)
    a = lpc(x[:1000], order=8)
    pred = np.array([a @ x[n - 1 : n - 9 : -1] for n in range(1200, 1300)])
    assert np.max(np.abs(pred - x[1200:1300])) < 1e-3


def test_fill_gap_interpolates_a_tone_gap():
    t = np.arange(4000) / SR
    x = 0.5 * np.sin(2 * np.pi * 700 * t) + 0.2 * np.sin(2 * np.pi * 1900 * t)
    damaged = x.copy()
    damaged[2000:2040] = 0.9
    filled = fill_gap(damaged, 2000, 2040, order=32, context=512)
    # measured 0.012 against a 0.7 peak: windowed LPC poles sit just inside the unit circle
    assert np.max(np.abs(filled - x[2000:2040])) < 0.025


def test_declick_removes_planted_clicks():
    clean = plucked_notes()
    deg, mask = plant_clicks(clean, n=30)
    info: dict = {}
    out = declick(deg, SR, info=info)
    err_before = np.sum((deg - clean)[mask] ** 2)
    err_after = np.sum((out - clean)[mask] ** 2)
    # measured: 13.0 dB -> -6.2 dB of squared error at the click samples
    assert 10 * np.log10(err_before / err_after) > 15.0
    assert info["clicks"] >= 50  # 30 clicks x 2 channels, a few merge or split
    assert snr_db(clean, out) > snr_db(clean, deg) + 15.0


def test_declick_leaves_clean_music_alone():
    clean = plucked_notes()
    info: dict = {}
    out = declick(clean, SR, info=info)
    assert snr_db(clean, out) > 40.0
    assert out.shape == clean.shape and out.dtype == np.float32


def test_detect_clicks_ignores_note_onsets_and_long_bursts():
    clean = plucked_notes()[0]
    assert detect_clicks(clean, SR) == []
    burst = clean.copy()
    burst[20000:20600] += 0.5 * np.random.default_rng(0).standard_normal(600)  # 14 ms
    assert all(stop - start <= 0.003 * SR for start, stop in detect_clicks(burst, SR))


@pytest.mark.parametrize("bits", [6, 8, 10])
def test_detect_quantization_step_of_bitcrushed_audio(bits):
    x = plucked_notes()
    crushed = pedalboard.Bitcrush(bit_depth=bits)(x, SR)
    assert detect_quantization_step(crushed) == pytest.approx(2.0**-(bits), rel=1e-6)


def test_no_quantization_step_in_float_or_16_bit_audio():
    x = plucked_notes()
    assert detect_quantization_step(x) is None
    assert detect_quantization_step(np.round(x * 32767) / 32767) is None  # container grid
    noisy = pedalboard.Bitcrush(bit_depth=8)(x, SR) + 1e-3 * np.random.default_rng(
        0
    ).standard_normal(x.shape)
    assert detect_quantization_step(noisy.astype(np.float32)) is None


def test_dequantize_lowers_the_error_of_quantized_audio():
    t = np.arange(2 * SR) / SR
    x = sum(0.2 / h * np.sin(2 * np.pi * 220 * h * t + h) for h in range(1, 6))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
    clean = np.stack([x, 0.7 * x]).astype(np.float32)
    crushed = pedalboard.Bitcrush(bit_depth=8)(clean, SR)
    info: dict = {}
    out = dequantize(crushed, SR, info=info)
    assert info["quant_step"] == pytest.approx(2.0**-8)
    assert snr_db(clean, out) > snr_db(clean, crushed) + 3.0  # measured: 39.7 -> 44.7 dB
    # Consistency: every sample still quantizes to what was observed.
    assert np.max(np.abs(out - crushed)) <= 2.0**-9 + 1e-7
    np.testing.assert_array_equal(out, dequantize(crushed, SR))  # seeded dither


def test_dequantize_is_a_no_op_without_a_grid():
    x = plucked_notes()
    np.testing.assert_array_equal(dequantize(x, SR), x)


def tone_level_db(x: np.ndarray, freq_hz: float, sr: int = SR) -> float:
    t = np.arange(x.shape[-1]) / sr
    a = 2 * np.mean(x[0] * np.sin(2 * np.pi * freq_hz * t))
    b = 2 * np.mean(x[0] * np.cos(2 * np.pi * freq_hz * t))
    return float(20 * np.log10(np.hypot(a, b)))


def residual_db(x: np.ndarray, freq_hz: float, sr: int = SR) -> float:
    """Level of what is left after removing the best-fitting sinusoid at ``freq_hz``."""
    t = np.arange(x.shape[-1]) / sr
    s, c = np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t)
    fit = 2 * np.mean(x[0] * s) * s + 2 * np.mean(x[0] * c) * c
    return float(10 * np.log10(np.mean((x[0] - fit) ** 2)))


def test_min_stats_denoise_lowers_noise_and_keeps_the_tone(rng):
    t = np.arange(4 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    noisy = tone + (0.01 * rng.standard_normal(tone.shape)).astype(np.float32)
    out = min_stats_denoise(noisy, SR)
    assert abs(tone_level_db(out, 440) - tone_level_db(tone, 440)) < 1.0
    assert residual_db(out, 440) < residual_db(noisy, 440) - 6.0  # measured: -40.0 -> -49.1


def test_min_stats_denoise_does_not_take_a_sustained_tone_for_noise():
    t = np.arange(4 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    assert snr_db(tone, min_stats_denoise(tone, SR)) > 40.0


def test_preclean_variant_records_and_is_deterministic():
    clean = plucked_notes(duration_s=1.0)
    deg, _ = plant_clicks(pedalboard.Bitcrush(bit_depth=8)(clean, SR), n=5)
    ctx = build_context("preclean")
    out = get_variant("preclean")(deg, SR, ctx)
    assert ctx.decisions["clicks"] >= 5
    assert ctx.decisions["quant_step"] == pytest.approx(2.0**-8)  # repaired clicks are few
    np.testing.assert_array_equal(out, preclean(deg, SR, **ctx.params))


def test_preclean_steps_can_be_disabled():
    x = plucked_notes(duration_s=1.0)
    off = {
        "declick": {"enabled": False},
        "dequantize": {"enabled": False},
        "denoise": {"enabled": False},
    }
    ctx = build_context("preclean", {"preclean": off})
    np.testing.assert_array_equal(get_variant("preclean")(x, SR, ctx), x)
