"""Pre-cleaning of a degraded mixture (seed 000, §3 "Clean (Mixture)").

The hybrid pipeline of Ensoli & Massignan first repairs the pathologies that would bias the
later stages (separation masks, NMF dictionaries), in this order:

1. **Declicking** (:func:`declick`): clicks are found as runs of samples whose linear-
   prediction residual exceeds a multiple of a local percentile of that residual; each run is
   refilled by *dual-direction* LPC: an AR model fitted on the left context extrapolates
   forward, one fitted on the (time-reversed) right context extrapolates backward, and the
   two predictions are cross-faded across the gap.
2. **De-quantization** (:func:`dequantize`): when the samples sit on a uniform grid
   (:func:`detect_quantization_step`), the staircase error is reduced by *multi-cycle dither
   with residual tracking*. The paper names the method without giving it; our reading: each
   cycle adds fresh sub-step dither (so the error stops being correlated with the signal),
   applies a Wiener gain that knows the quantization noise PSD (white, ``step**2 / 12``), and
   tracks the residual against the observation, clipping it to half a step so the estimate
   stays *consistent* (it would quantize back to the observed samples: a projection onto a
   convex set containing the clean signal, which can only move the estimate closer to it).
   The cycle outputs are averaged, which also averages the dither away.
3. **Minimum-statistics denoise** (:func:`min_stats_denoise`): Martin's (2001) noise PSD
   tracker: recursively smoothed periodogram, minimum over a ~1.5 s window, bias
   compensation. Fixed smoothing instead of Martin's optimal time-varying one, and a centred
   (offline) window. We make the floor *conservative* as the paper asks: the tracked noise
   PSD is replaced by a low percentile across neighbouring frequency bins, so a sustained
   partial (which minimum statistics alone would take for noise) is not subtracted; the
   gain is a decision-directed Wiener gain with a floor.

Every step is its own function whose keyword defaults are its params block.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import scipy.ndimage
import scipy.signal

from ..core.config import kwargs_defaults

_EPS = 1e-12

# ----------------------------------------------------------------------------- STFT helpers


def stft(wave: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Hann STFT of ``(C, T)`` -> complex ``(C, F, N)``, ``F = n_fft // 2 + 1``.

    Inputs shorter than ``n_fft`` are zero-padded (scipy would silently shrink the window).
    """
    assert wave.ndim == 2, wave.shape
    if wave.shape[-1] < n_fft:
        wave = np.pad(wave, ((0, 0), (0, n_fft - wave.shape[-1])))
    _, _, spec = scipy.signal.stft(
        wave, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="zeros", padded=True
    )
    return spec


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Inverse of :func:`stft`: complex ``(C, F, N)`` -> float32 ``(C, length)``."""
    _, wave = scipy.signal.istft(
        spec, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary=True
    )
    wave = wave[..., :length]
    if wave.shape[-1] < length:
        wave = np.pad(wave, ((0, 0), (0, length - wave.shape[-1])))
    return wave.astype(np.float32)


# --------------------------------------------------------------------------------- LPC core


def lpc(x: np.ndarray, order: int) -> np.ndarray:
    """AR coefficients ``a`` (``x[n] ~ sum_k a[k] x[n-1-k]``) by the autocorrelation method.

    The autocorrelation method yields a minimum-phase predictor, so extrapolations decay
    instead of exploding. Hann-windowed; a tiny ridge keeps silent segments solvable.
    """
    x = np.asarray(x, np.float64)
    order = min(order, len(x) - 1)
    if order < 1:
        return np.zeros(0)
    xw = x * np.hanning(len(x) + 2)[1:-1]
    full = np.correlate(xw, xw, mode="full")
    r = full[len(xw) - 1 : len(xw) + order]
    if r[0] <= _EPS:
        return np.zeros(order)
    r = r.copy()
    r[0] *= 1.0 + 1e-6
    try:
        return scipy.linalg.solve_toeplitz(r[:order], r[1 : order + 1])
    except np.linalg.LinAlgError:
        return np.zeros(order)


def _extrapolate(past: np.ndarray, a: np.ndarray, n: int) -> np.ndarray:
    """Continue ``past`` by ``n`` samples with the AR model ``a`` and zero excitation."""
    if len(a) == 0 or len(past) < len(a):
        return np.full(n, past[-1] if len(past) else 0.0)
    den = np.r_[1.0, -a]
    zi = scipy.signal.lfiltic([1.0], den, y=past[::-1][: len(a)])
    out, _ = scipy.signal.lfilter([1.0], den, np.zeros(n), zi=zi)
    return out


def lpc_residual(x: np.ndarray, order: int, block: int) -> np.ndarray:
    """Forward linear-prediction error of a 1-D signal, one AR model per ``block`` samples."""
    x = np.asarray(x, np.float64)
    e = np.zeros_like(x)
    for start in range(0, len(x), block):
        stop = min(start + block, len(x))
        ctx0 = max(0, start - order)
        seg = x[ctx0:stop]
        a = lpc(x[start:stop], order)
        if len(a) == 0:
            continue
        res = scipy.signal.lfilter(np.r_[1.0, -a], [1.0], seg)
        e[start:stop] = res[start - ctx0 :]
    return e


# ------------------------------------------------------------------------------ declicking


def detect_clicks(
    x: np.ndarray,
    sr: int,
    *,
    order: int = 24,
    block: int = 2048,
    percentile: float = 99.0,
    threshold: float = 5.0,
    hysteresis: float = 0.3,
    max_click_ms: float = 3.0,
    margin: int = 2,
    onset_db: float = 6.0,
) -> list[tuple[int, int]]:
    """Runs ``[start, stop)`` of a 1-D signal that look like clicks.

    A click starts where the LPC residual exceeds ``threshold`` times the ``percentile`` of
    ``|residual|`` in its block (a local, level-independent threshold) and extends, by
    hysteresis, over the neighbouring samples above ``hysteresis`` times that threshold: a
    click's decaying tail is partly predictable, so its residual drops fast but stays well
    above the music's. Runs grow by ``margin`` samples each side. Two kinds of runs are
    left alone because interpolation would destroy them: runs longer than ``max_click_ms``
    (transients, bursts) and note onsets, where the level after the run exceeds the level
    before it by more than ``onset_db`` (a click returns to the signal it interrupted).
    """
    e = np.abs(lpc_residual(x, order, block))
    e[:order] = 0.0  # the first predictor has no history: its error there is not a click
    thr = np.empty_like(e)
    for start in range(0, len(e), block):
        seg = e[start : start + block]
        thr[start : start + block] = threshold * max(np.percentile(seg, percentile), _EPS)
    low = np.flatnonzero(e > hysteresis * thr)
    if low.size == 0:
        return []
    high = e > thr
    max_len = max(1, int(round(max_click_ms * 1e-3 * sr)))
    probe = max(order, int(round(5e-3 * sr)))  # level comparison window, 5 ms
    onset_ratio = 10.0 ** (onset_db / 10.0)
    runs = []
    for grp in np.split(low, np.flatnonzero(np.diff(low) > margin + 1) + 1):
        if not high[grp].any():
            continue
        start, stop = max(int(grp[0]) - margin, 0), min(int(grp[-1]) + 1 + margin, len(x))
        if stop - start > max_len:
            continue
        before = np.mean(x[max(0, start - probe) : start] ** 2) if start else 0.0
        after = np.mean(x[stop : stop + probe] ** 2) if stop < len(x) else 0.0
        if after > onset_ratio * before + _EPS:
            continue
        runs.append((start, stop))
    return runs


def fill_gap(
    x: np.ndarray,
    start: int,
    stop: int,
    *,
    order: int = 32,
    context: int = 512,
    limit: int | None = None,
) -> np.ndarray:
    """Dual-direction LPC interpolation of ``x[start:stop]`` (returns the new gap samples).

    The forward prediction from the left context and the backward prediction from the
    right context (``x[stop:limit]``) are cross-faded with a raised cosine, so each side
    dominates next to the samples it was fitted on.
    """
    n = stop - start
    limit = len(x) if limit is None else limit
    left = x[max(0, start - context) : start]
    right = x[stop : min(limit, stop + context)]
    use_left, use_right = len(left) > 2 * order // 4, len(right) > 2 * order // 4
    fwd = _extrapolate(left, lpc(left, order), n) if use_left else None
    bwd = _extrapolate(right[::-1], lpc(right[::-1], order), n)[::-1] if use_right else None
    if fwd is not None and bwd is not None:
        w = 0.5 + 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)  # 1 -> 0 across the gap
        return w * fwd + (1.0 - w) * bwd
    if fwd is not None:
        return fwd
    if bwd is not None:
        return bwd
    return x[start:stop].copy()


def declick(
    wave: np.ndarray,
    sr: int,
    *,
    order: int = 24,
    block: int = 2048,
    percentile: float = 99.0,
    threshold: float = 5.0,
    hysteresis: float = 0.3,
    max_click_ms: float = 3.0,
    margin: int = 2,
    onset_db: float = 6.0,
    fill_order: int = 32,
    context_ms: float = 12.0,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Detect clicks per channel (:func:`detect_clicks`) and refill them (:func:`fill_gap`).

    Args:
        wave: ``(C, T)`` float32.
        order / block / percentile / threshold / hysteresis / max_click_ms / margin /
            onset_db:
            detection (:func:`detect_clicks`).
        fill_order: AR order of the gap-filling predictors.
        context_ms: length of the left/right context each predictor is fitted on.
        info: if given, ``info["clicks"]`` receives the number of repaired runs.
    """
    out = wave.astype(np.float64, copy=True)
    context = max(2 * fill_order, int(round(context_ms * 1e-3 * sr)))
    total = 0
    for c in range(out.shape[0]):
        x = out[c]
        runs = detect_clicks(
            x,
            sr,
            order=order,
            block=block,
            percentile=percentile,
            threshold=threshold,
            hysteresis=hysteresis,
            max_click_ms=max_click_ms,
            margin=margin,
            onset_db=onset_db,
        )
        for i, (start, stop) in enumerate(runs):
            # The right context must not reach into the next, still unrepaired, click.
            limit = runs[i + 1][0] if i + 1 < len(runs) else len(x)
            x[start:stop] = fill_gap(x, start, stop, order=fill_order, context=context, limit=limit)
        total += len(runs)
    if info is not None:
        info["clicks"] = total
    return out.astype(np.float32)


# -------------------------------------------------------------------------- de-quantization


def detect_quantization_step(
    wave: np.ndarray,
    *,
    min_step: float = 2.0**-14,
    max_step: float = 2.0**-3,
    on_grid: float = 0.98,
    max_samples: int = 200_000,
) -> float | None:
    """The uniform quantization step of ``wave``, or ``None`` when it is not quantized.

    The candidate step is the smallest gap between recurring sample values (the value
    histogram's bin spacing), confirmed only when at least ``on_grid`` of the samples lie
    within 5 % of a step of one grid (with any offset). Steps finer than ``min_step``
    (about 15-bit) are ignored: that is the resolution of the container (16/24-bit files),
    not an audible artefact. Non-uniform (mu-law) grids are not detected.
    """
    v = np.asarray(wave, np.float64).ravel()
    if v.size > max_samples:  # an evenly strided subset sees the same grid
        v = v[:: v.size // max_samples + 1]
    levels, counts = np.unique(v, return_counts=True)
    # Grid levels recur; off-grid samples (repaired clicks, added noise) are one-offs whose
    # tiny gaps to the grid would otherwise pass for the step.
    levels = levels[counts >= 2]
    if levels.size < 3:
        return None
    gaps = np.diff(levels)
    gaps = gaps[gaps > 0]
    step = float(np.percentile(gaps, 5))
    if not min_step <= step <= max_step:
        return None
    phase = np.mod(v / step, 1.0)
    # Circular mean: the grid may be offset (mid-rise quantizers sit at half steps).
    offset = np.angle(np.mean(np.exp(2j * np.pi * phase))) / (2 * np.pi)
    dev = np.abs(np.mod(phase - offset + 0.5, 1.0) - 0.5)
    if np.mean(dev < 0.05) < on_grid:
        return None
    return step


def dequantize(
    wave: np.ndarray,
    sr: int,
    *,
    step: float | None = None,
    cycles: int = 6,
    dither: float = 0.5,
    n_fft: int = 1024,
    hop: int = 256,
    gain_floor_db: float = -25.0,
    seed: int = 0,
    min_step: float = 2.0**-14,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Multi-cycle dither with residual tracking (see the module docstring).

    Args:
        wave: ``(C, T)`` float32.
        step: the quantization step; ``None`` detects it (and returns the input unchanged
            when none is found).
        cycles: dither cycles averaged.
        dither: peak of the uniform dither, in steps (0.5 = +-half a step).
        n_fft / hop: STFT of the Wiener step.
        gain_floor_db: lowest Wiener gain.
        seed: seeds the dither (same seed -> identical output).
        min_step: passed to :func:`detect_quantization_step`.
        info: if given, ``info["quant_step"]`` receives the step used (or ``None``).
    """
    if step is None:
        step = detect_quantization_step(wave, min_step=min_step)
    if info is not None:
        info["quant_step"] = step
    if step is None or cycles < 1:
        return wave.copy()
    y = wave.astype(np.float64)
    rng = np.random.default_rng(seed)
    half = step / 2.0
    win = np.hanning(n_fft + 1)[:-1]  # scipy's periodic Hann
    # Quantization error ~ white with variance step^2/12; plus the dither's own variance.
    noise_var = step**2 / 12.0 + (dither * step) ** 2 / 3.0
    noise_psd = noise_var * np.sum(win**2) / np.sum(win) ** 2  # scipy.signal.stft scaling
    floor = 10.0 ** (gain_floor_db / 20.0)
    est = y.copy()
    acc = np.zeros_like(y)
    for _ in range(cycles):
        noisy = est + rng.uniform(-dither * step, dither * step, size=y.shape)
        spec = stft(noisy, n_fft, hop)
        power = np.abs(spec) ** 2
        gain = np.maximum(1.0 - noise_psd / np.maximum(power, _EPS), floor**2) ** 0.5
        z = istft(spec * gain, n_fft, hop, y.shape[-1]).astype(np.float64)
        # Residual tracking: stay inside the quantization cell of every observed sample.
        est = y + np.clip(z - y, -half, half)
        acc += est
    return (acc / cycles).astype(np.float32)


# ------------------------------------------------------------------ minimum-statistics denoise


def min_stats_noise_psd(
    power: np.ndarray,
    frame_rate_hz: float,
    *,
    smoothing: float = 0.85,
    window_s: float = 1.5,
    bias: float = 2.4,
) -> np.ndarray:
    """Martin's minimum-statistics noise PSD of a power spectrogram ``(..., F, N)``.

    The periodogram is smoothed recursively over frames (``smoothing``), its minimum is
    taken over a centred window of ``window_s`` and multiplied by ``bias`` to undo the
    minimum's downward bias (calibrated on white noise for the default STFT settings).
    """
    n = power.shape[-1]
    zi = scipy.signal.lfilter_zi([1.0 - smoothing], [1.0, -smoothing])
    zi = zi * power[..., :1]  # start the recursion at the first frame, not at zero
    smoothed, _ = scipy.signal.lfilter([1.0 - smoothing], [1.0, -smoothing], power, axis=-1, zi=zi)
    width = int(min(n, max(1, round(window_s * frame_rate_hz))))
    mins = scipy.ndimage.minimum_filter1d(smoothed, size=width, axis=-1, mode="nearest")
    return bias * mins


def conservative_floor(
    noise_psd: np.ndarray, bin_hz: float, *, width_hz: float = 600.0, percentile: float = 25.0
) -> np.ndarray:
    """A low percentile of ``noise_psd (..., F, N)`` across neighbouring frequency bins.

    Broadband hiss is smooth across frequency and survives; a sustained partial is a
    narrow peak that minimum statistics alone would call noise, and it is removed here.
    Computed every few frames (the minimum-statistics track moves slowly) and held.
    """
    width = max(1, int(round(width_hz / bin_hz)))
    n = noise_psd.shape[-1]
    step = max(1, n // 64)
    sub = noise_psd[..., ::step]
    size = (1,) * (sub.ndim - 2) + (width, 1)
    filt = scipy.ndimage.percentile_filter(sub, percentile=percentile, size=size, mode="nearest")
    return np.repeat(filt, step, axis=-1)[..., :n]


def min_stats_denoise(
    wave: np.ndarray,
    sr: int,
    *,
    n_fft: int = 2048,
    hop: int = 512,
    smoothing: float = 0.85,
    window_s: float = 1.5,
    bias: float = 2.4,
    floor_width_hz: float = 600.0,
    floor_percentile: float = 25.0,
    over_subtraction: float = 1.0,
    decision_directed: float = 0.9,
    gain_floor_db: float = -12.0,
) -> np.ndarray:
    """Frequency-domain denoise with a minimum-statistics noise estimate (seed 000).

    Args:
        wave: ``(C, T)`` float32.
        n_fft / hop: STFT.
        smoothing / window_s / bias: :func:`min_stats_noise_psd`.
        floor_width_hz / floor_percentile: :func:`conservative_floor`.
        over_subtraction: multiplies the noise PSD in the gain rule.
        decision_directed: Ephraim-Malah a-priori SNR smoothing (0 = maximum likelihood);
            less smoothing than the speech default 0.98 keeps note onsets intact.
        gain_floor_db: the lowest gain: residual noise stays as a steady, quiet floor
            instead of "musical" bubbles.
    """
    length = wave.shape[-1]
    spec = stft(wave, n_fft, hop)  # (C, F, N)
    power = np.abs(spec) ** 2
    noise = min_stats_noise_psd(power, sr / hop, smoothing=smoothing, window_s=window_s, bias=bias)
    noise = conservative_floor(
        noise, sr / n_fft, width_hz=floor_width_hz, percentile=floor_percentile
    )
    noise = np.maximum(over_subtraction * noise, _EPS)
    gamma = (power / noise).astype(np.float32)  # a-posteriori SNR, (C, F, N)
    del noise  # float32 from here: these arrays are the variant's peak memory
    floor = 10.0 ** (gain_floor_db / 20.0)
    gain = np.empty_like(gamma)
    prev = np.zeros(gamma.shape[:-1])  # G^2 * gamma of the previous frame
    for t in range(gamma.shape[-1]):
        ml = np.maximum(gamma[..., t] - 1.0, 0.0)
        xi = decision_directed * prev + (1.0 - decision_directed) * ml
        g = np.maximum(xi / (1.0 + xi), floor)
        gain[..., t] = g
        prev = g**2 * gamma[..., t]
    return istft(spec * gain, n_fft, hop, length)


# ------------------------------------------------------------------------------- the chain

# ``preclean``'s keyword arguments are named after the steps and shadow these functions.
_declick, _dequantize, _denoise = declick, dequantize, min_stats_denoise


def _step_defaults(fn: Any) -> dict[str, Any]:
    defaults = kwargs_defaults(fn)
    defaults.pop("info", None)
    return {"enabled": True, **defaults}


#: The ``variants.preclean`` params block (and ``preclean``'s defaults): one sub-block per step.
PRECLEAN_DEFAULTS: dict[str, Any] = {
    "declick": _step_defaults(declick),
    "dequantize": _step_defaults(dequantize),
    "denoise": _step_defaults(min_stats_denoise),
}


def preclean(
    wave: np.ndarray,
    sr: int,
    *,
    declick: dict[str, Any] | None = None,
    dequantize: dict[str, Any] | None = None,
    denoise: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
) -> np.ndarray:
    """Declick -> de-quantize -> minimum-statistics denoise (seed 000's order).

    Each argument is that step's params (:data:`PRECLEAN_DEFAULTS`); ``enabled: false``
    skips the step. ``info`` collects ``clicks`` and ``quant_step``.
    """
    blocks = {"declick": declick, "dequantize": dequantize, "denoise": denoise}
    params = {k: {**PRECLEAN_DEFAULTS[k], **(v or {})} for k, v in blocks.items()}
    out = wave
    for name, fn in (("declick", _declick), ("dequantize", _dequantize)):
        p = dict(params[name])
        if p.pop("enabled"):
            out = fn(out, sr, info=info, **p)
    p = dict(params["denoise"])
    if p.pop("enabled"):
        out = _denoise(out, sr, **p)
    return out
