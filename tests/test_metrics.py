"""Each metric against a value known analytically or from its standard, plus the
properties the evaluation relies on: identity is ideal, a known degradation moves every
metric the known way, stereo is the mean of its channels, silence never gives NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from musicrestore.evaluation import metrics as M

SR = 16_000


def music(sr: int = SR, duration_s: float = 2.0, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Notes with harmonics and decaying envelopes, with short gaps: ``(C, T)`` float32."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sr)
    out = np.zeros((channels, n))
    note = int(0.25 * sr)
    for start in range(0, n - note, int(0.3 * sr)):  # 50 ms of silence between notes
        f0 = rng.uniform(110, 880)
        t = np.arange(note) / sr
        tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.28)) / k for k in range(1, 6))
        for c in range(channels):
            out[c, start : start + note] += 0.2 * rng.uniform(0.6, 1.0) * tone * np.exp(-6 * t)
    return out.astype(np.float32)


def noise_like(x: np.ndarray, level: float, seed: int = 1) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(x.shape)).astype(np.float32)


# ---------------------------------------------------------------- known values


def test_si_sdr_of_scaled_reference_plus_orthogonal_noise_is_analytic():
    rng = np.random.default_rng(0)
    t = rng.standard_normal(8000)
    n = rng.standard_normal(8000)
    n -= (n @ t) / (t @ t) * t  # orthogonal to t, so alpha is exactly the gain
    n *= 0.1
    p = 0.5 * t + n
    expected = 10 * math.log10((0.5**2 * (t @ t)) / (n @ n))
    assert M.si_sdr(t, p) == pytest.approx(expected, abs=1e-6)
    # scale invariance: any gain on the estimate leaves it unchanged
    assert M.si_sdr(t, 7.0 * p) == pytest.approx(expected, abs=1e-6)
    # SNR is not scale invariant: known value for r vs 2r is 10*log10(|r|^2 / |r|^2) = 0 dB
    assert M.snr(t, 2 * t) == pytest.approx(0.0, abs=1e-6)
    assert M.snr(t, t + n) == pytest.approx(10 * math.log10((t @ t) / (n @ n)), abs=1e-6)


def test_lsd_of_a_20_db_gain_is_two_log10_units():
    # |10 x|^2 = 100 |x|^2 in every bin: log10 power differs by exactly 2 everywhere
    x = np.random.default_rng(0).standard_normal((1, SR)).astype(np.float32)
    assert M.lsd(x, 10 * x) == pytest.approx(2.0, abs=1e-3)


def test_seg_snr_is_clamped_to_its_documented_range():
    x = music()
    assert M.seg_snr(x, x, SR) == pytest.approx(35.0)
    assert M.seg_snr(x, -x + noise_like(x, 1.0), SR) == pytest.approx(-10.0)
    # a uniform 20 dB SNR in every frame reads 20 dB
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((1, SR))
    err = rng.standard_normal((1, SR))
    frame = int(0.03 * SR)
    for k in range(SR // frame):  # scale the error frame by frame to exactly -20 dB
        sl = slice(k * frame, (k + 1) * frame)
        err[:, sl] *= np.sqrt(np.sum(ref[:, sl] ** 2) / np.sum(err[:, sl] ** 2) / 100)
    assert M.seg_snr(ref, ref + err, SR) == pytest.approx(20.0, abs=1e-6)


def test_loudness_of_minus_20_dbfs_rms_1khz_sine():
    # BS.1770: a 0 dBFS-peak 1 kHz sine in one channel reads -3.01 LUFS, so a -20 dBFS-RMS
    # sine (peak -16.99 dBFS) reads -20.0 LUFS; the same in both channels adds 3.01 LU.
    sr = 48_000
    t = np.arange(5 * sr) / sr
    sine = (10 ** (-20 / 20) * math.sqrt(2) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    assert M.loudness_lufs(sine, sr) == pytest.approx(-20.0, abs=0.1)
    assert M.loudness_lufs(np.stack([sine, sine]), sr) == pytest.approx(-16.99, abs=0.1)


def test_true_peak_finds_the_inter_sample_peak():
    # fs/4 sine at 45° phase: every sample sits at 0.707 of the true amplitude (-3 dB)
    sr = 48_000
    n = np.arange(sr)
    x = (0.5 * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)
    sample_peak_db = 20 * math.log10(float(np.abs(x).max()))
    assert sample_peak_db == pytest.approx(20 * math.log10(0.5) - 3.01, abs=0.01)
    assert M.true_peak_dbtp(x, sr) == pytest.approx(20 * math.log10(0.5), abs=0.3)


def test_p25_level_is_floored_at_minus_80_db_and_drops_when_noise_is_removed():
    clean = music()
    noisy = clean + noise_like(clean, 0.01)
    p_noisy, p_clean = M.percentile_level_db(noisy, SR), M.percentile_level_db(clean, SR)
    assert p_clean < p_noisy - 10  # stationary noise fills the gaps between notes
    assert p_clean >= -M.TOP_DB
    assert M.percentile_level_db(np.zeros_like(clean), SR) == -M.TOP_DB


def test_multi_mel_snr_ignores_gain_and_uses_the_three_challenge_resolutions():
    ref = music()
    est = ref + noise_like(ref, 0.01)
    assert M.multi_mel_snr(ref, 0.3 * est, SR) == pytest.approx(
        M.multi_mel_snr(ref, est, SR), abs=1e-6
    )
    one = [M.multi_mel_snr(ref, est, SR, configs=[cfg]) for cfg in M.MULTI_MEL_CONFIGS]
    assert M.multi_mel_snr(ref, est, SR) == pytest.approx(np.mean(one), abs=1e-9)
    assert M.MULTI_MEL_CONFIGS == ((512, 256, 80), (1024, 512, 128), (2048, 1024, 192))


def test_mel_filterbank_is_slaney_and_ordered():
    fb = M.mel_filterbank(44_100, 4096, 256)
    assert fb.shape == (256, 2049)
    peaks = fb.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0)
    # Slaney scale is linear below 1 kHz: the first filters are evenly spaced in Hz
    hz = peaks[:20] * 44_100 / 4096
    assert np.ptp(np.diff(hz[5:15])) <= 2 * 44_100 / 4096
    # area normalisation: wider (higher) filters are lower
    assert fb[10].max() > fb[200].max()


# ---------------------------------------------------------------- ideal values and directions


def test_identity_gives_ideal_values():
    x = music(channels=2)
    s = M.score(x, x, SR)
    assert s["si_sdr"] > 100 and s["snr"] > 100 and s["multi_mel_snr"] > 100
    assert s["mel_ssim"] == pytest.approx(1.0)
    assert s["lsd"] == pytest.approx(0.0, abs=1e-12)
    assert s["seg_snr"] == pytest.approx(35.0)
    assert s["stoi"] == pytest.approx(1.0, abs=1e-6)
    assert s["loudness_delta_lu"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("degrade", ["noise", "lowpass"])
def test_a_stronger_degradation_moves_every_metric_the_known_way(degrade):
    ref = music(duration_s=2.0)

    def apply(strength: float) -> np.ndarray:
        if degrade == "noise":
            return ref + noise_like(ref, strength)
        sos = butter(8, strength, fs=SR, output="sos")  # strength = cutoff in Hz
        return sosfilt(sos, ref, axis=-1).astype(np.float32)

    mild, strong = (apply(0.003), apply(0.03)) if degrade == "noise" else (apply(4000), apply(800))
    a, b = M.score(ref, mild, SR), M.score(ref, strong, SR)
    for name in ("si_sdr", "snr", "seg_snr", "mel_ssim", "multi_mel_snr", "stoi"):
        assert a[name] > b[name], (name, a[name], b[name])
    assert a["lsd"] < b["lsd"]


def test_stereo_is_the_mean_of_the_channels():
    left = music(seed=1)
    right = 0.5 * music(seed=2)
    ref = np.concatenate([left, right])
    est = ref + noise_like(ref, 0.01)
    per_channel = {
        "si_sdr": lambda r, e: M.si_sdr(r, e),
        "snr": lambda r, e: M.snr(r, e),
        "seg_snr": lambda r, e: M.seg_snr(r, e, SR),
        "lsd": lambda r, e: M.lsd(r, e),
        "mel_ssim": lambda r, e: M.mel_ssim(r, e, SR),
        "multi_mel_snr": lambda r, e: M.multi_mel_snr(r, e, SR),
    }
    for name, fn in per_channel.items():
        both = fn(ref, est)
        mean = (fn(ref[:1], est[:1]) + fn(ref[1:], est[1:])) / 2
        assert both == pytest.approx(mean, rel=1e-9, abs=1e-9), name
    # (T,) is read as (1, T)
    assert M.si_sdr(left[0], est[0]) == pytest.approx(M.si_sdr(left, est[:1]))


def test_silence_never_gives_nan():
    x = music(channels=2)
    z = np.zeros_like(x)
    for ref, est in ((z, z), (z, x), (x, z)):
        values = M.score(ref, est, SR)
        assert set(values) == set(M.ALL_METRICS)
        assert all(math.isfinite(v) for v in values.values()), values
    both_silent = M.score(z, z, SR)
    assert both_silent["si_sdr"] == 0.0 and both_silent["snr"] == 0.0
    assert both_silent["mel_ssim"] == pytest.approx(1.0)
    assert both_silent["loudness_lufs"] == M.LOUDNESS_FLOOR_LUFS
    assert both_silent["true_peak_dbtp"] == pytest.approx(M.TRUE_PEAK_FLOOR_DBTP)
    assert M.score(z, x, SR)["si_sdr"] < -50  # something where there should be nothing


# ---------------------------------------------------------------- registry


def test_score_without_reference_gives_only_non_intrusive_metrics():
    x = music()
    assert list(M.score(None, x, SR)) == list(M.NON_INTRUSIVE)
    assert list(M.score(x, x, SR)) == list(M.ALL_METRICS)
    assert list(M.score(x, x, SR, ["lsd", "si_sdr"])) == ["si_sdr", "lsd"]
    assert set(M.INFO) == set(M.ALL_METRICS)


def test_bad_inputs_raise_clear_errors():
    x = music()
    with pytest.raises(ValueError, match="differ in shape"):
        M.si_sdr(x, np.concatenate([x, x]))
    with pytest.raises(ValueError, match="unknown metric"):
        M.score(x, x, SR, ["pesq"])
