"""Variants that separate first: demucs, demucs_dsp, demucs_snmf, adaptive."""

from __future__ import annotations

import numpy as np
import pytest

from musicrestore.variants import build_context
from musicrestore.variants.dsp import dsp_chain
from musicrestore.variants.separated import (
    adaptive,
    demucs,
    demucs_dsp,
    demucs_snmf,
    stem_levels_db,
)


class BandSplitSeparator:
    """A test double of :class:`musicrestore.separation.Separator`: FFT band masks.

    bass < 150 Hz, other 150-1000 Hz, vocals 1-4 kHz, drums above; the stems sum exactly to
    the input, at any rate and channel count, so tests know which stem holds what.
    """

    sources = ["drums", "bass", "other", "vocals"]
    samplerate = 44100
    bands = {"bass": (0.0, 150.0), "other": (150.0, 1000.0), "vocals": (1000.0, 4000.0)}

    def __init__(self) -> None:
        self.calls = 0

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        self.calls += 1
        spec = np.fft.rfft(wave.astype(np.float64), axis=-1)
        freqs = np.fft.rfftfreq(wave.shape[-1], 1.0 / sr)
        out, covered = {}, np.zeros(freqs.shape, bool)
        for name, (lo, hi) in self.bands.items():
            band = (freqs >= lo) & (freqs < hi)
            covered |= band
            out[name] = np.fft.irfft(spec * band, n=wave.shape[-1], axis=-1).astype(np.float32)
        out["drums"] = np.fft.irfft(spec * ~covered, n=wave.shape[-1], axis=-1).astype(np.float32)
        return {name: out[name] for name in self.sources}


def band_ctx(variant: str, target: str | None = None, **params: dict) -> tuple:
    sep = BandSplitSeparator()
    ctx = build_context(variant, params or None, target=target, separator_factory=lambda: sep)
    return ctx, sep


def tones(sr: int, freqs: list[float], duration_s: float = 2.0, channels: int = 2) -> np.ndarray:
    t = np.arange(int(duration_s * sr)) / sr
    mono = sum(0.15 * np.sin(2 * np.pi * f * t) for f in freqs)
    return np.repeat(mono[None], channels, axis=0).astype(np.float32)


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
    out = adaptive(tones(sr, [80.0, 440.0, 2000.0]), sr, ctx)
    assert ctx.decisions["separated"] is True
    assert ctx.decisions["active_stems"] == ["bass", "other", "vocals"]
    assert "3 stem(s)" in ctx.decisions["reason"]
    assert out.shape == (2, 2 * sr) and np.isfinite(out).all()


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


def test_separator_variants_with_tiny_htdemucs():
    """The real separator (a random-init HTDemucs) through the same variants: shapes only."""
    separation = pytest.importorskip("musicrestore.separation")
    sep = separation.tiny_separator(seed=0)
    sr = 44100
    x = tones(sr, [110.0, 440.0], duration_s=1.0)
    for fn, target in ((demucs_dsp, None), (adaptive, "Voc")):
        ctx = build_context(fn.__name__, target=target, separator_factory=lambda: sep)
        out = fn(x, sr, ctx)
        assert out.shape == x.shape and np.isfinite(out).all(), (fn.__name__, target)
