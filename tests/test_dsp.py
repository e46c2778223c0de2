"""Seed 001's DSP chain and the dsp_direct variant."""

from __future__ import annotations

import numpy as np
import pytest

from musicrestore.variants import build_context, get_variant
from musicrestore.variants.dsp import DSP_CHAIN_DEFAULTS, dsp_chain

SR = 44100
#: Only the pedalboard filter and gain: no gating, expansion or compression.
LINEAR = {"nr_prop_decrease": 0.0, "gate_ratio": 1.0, "comp_ratio": 1.0}


def level_db(x: np.ndarray, mask: np.ndarray | None = None) -> float:
    x = x[0] if mask is None else x[0, mask]
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2)))


def sine(freq_hz: float, amp: float, duration_s: float = 1.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(duration_s * SR)) / SR
    return np.repeat((amp * np.sin(2 * np.pi * freq_hz * t))[None], channels, 0).astype(np.float32)


def test_defaults_are_the_seed_notebook_values():
    assert DSP_CHAIN_DEFAULTS == {
        "nr_stationary": True,
        "nr_prop_decrease": 0.75,
        "nr_n_fft": 1024,
        "nr_n_std_thresh": 1.5,
        "gate_threshold_db": -30.0,
        "gate_ratio": 1.5,
        "gate_attack_ms": 1.0,
        "gate_release_ms": 250.0,
        "comp_threshold_db": -16.0,
        "comp_ratio": 4.0,
        "comp_attack_ms": 1.0,
        "comp_release_ms": 100.0,
        "lowshelf_cutoff_hz": 400.0,
        "lowshelf_gain_db": 10.0,
        "lowshelf_q": 1.0,
        "gain_db": 2.0,
    }
    assert get_variant("dsp_direct").defaults == DSP_CHAIN_DEFAULTS


def test_low_shelf_and_gain_are_applied():
    gains = {}
    # 200 Hz: noisereduce's STFT is transparent there even at prop_decrease 0 (at 60 Hz it
    # loses ~2 dB); Q = 1 puts a small bump below the 400 Hz corner.
    for freq in (200.0, 5000.0):
        x = sine(freq, 0.05)
        y = dsp_chain(x, SR, **LINEAR)
        settled = np.arange(x.shape[1]) > SR // 4
        gains[freq] = level_db(y, settled) - level_db(x, settled)
    assert gains[200.0] == pytest.approx(12.7, abs=1.0)  # +10.7 dB shelf, +2 dB gain
    assert gains[5000.0] == pytest.approx(2.0, abs=0.5)


def test_compressor_turns_loud_signals_down_more():
    params = {**LINEAR, "comp_ratio": 4.0, "lowshelf_gain_db": 0.0, "gain_db": 0.0}
    quiet, loud = sine(1000.0, 0.05), sine(1000.0, 0.9)
    settled = np.arange(quiet.shape[1]) > SR // 4
    g_quiet = level_db(dsp_chain(quiet, SR, **params), settled) - level_db(quiet, settled)
    g_loud = level_db(dsp_chain(loud, SR, **params), settled) - level_db(loud, settled)
    assert g_quiet == pytest.approx(0.0, abs=0.5)
    assert g_loud < -5.0  # -3.9 dBFS RMS is 12 dB over -16 dB at 4:1: about -9 dB


def test_chain_lowers_the_noise_floor_between_notes(rng):
    t = np.arange(4 * SR) / SR
    notes = np.sin(2 * np.pi * 0.5 * t) > 0  # 1 s on, 1 s off
    x = 0.2 * notes * np.sin(2 * np.pi * 440 * t) + 0.003 * rng.standard_normal(t.size)
    x = x[None].astype(np.float32)
    y = dsp_chain(x, SR)
    gaps = np.zeros(t.size, bool)
    for a, b in ((1.2, 1.8), (3.2, 3.8)):  # away from the gate's release tails
        gaps[int(a * SR) : int(b * SR)] = True
    assert level_db(y, gaps) < level_db(x, gaps) - 10.0  # measured: -50.4 -> -70.2 dB


@pytest.mark.parametrize("channels", [1, 2])
def test_shapes_short_inputs_and_silence(channels):
    short = sine(440.0, 0.3, duration_s=0.01, channels=channels)  # 441 samples < n_fft
    out = dsp_chain(short, SR)
    assert out.shape == short.shape and out.dtype == np.float32 and np.isfinite(out).all()
    silence = np.zeros((channels, SR), np.float32)
    np.testing.assert_array_equal(dsp_chain(silence, SR), silence)


def test_dsp_direct_reads_its_params_block():
    x = sine(1000.0, 0.05, channels=2)
    base = get_variant("dsp_direct")(x, SR, build_context("dsp_direct"))
    ctx = build_context("dsp_direct", {"dsp_direct": {"gain_db": 8.0}})
    louder = get_variant("dsp_direct")(x, SR, ctx)
    settled = np.arange(x.shape[1]) > SR // 4
    assert level_db(louder, settled) - level_db(base, settled) == pytest.approx(6.0, abs=0.3)
