"""Audio degradations as recorded, reproducible effects.

Sources: Zang et al., "Music Source Restoration" (seed 004, §2.2 "The Degradation Set" and
§4.2 "Degradation Setting") for the production effects (EQ, dynamics, distortion, reverb,
codec, gain, resampling, noise); seed 000 (§3, "Training") for the MusicGen-like artifacts
(down-up resampling, bit crush or μ-law, soft clipping, light multi-delay reverb,
environmental noise, dither).

Every effect is two functions, bundled as an :class:`Effect` in :data:`EFFECTS`:

- ``apply(wave, sr, **params) -> wave``: deterministic. ``wave`` is float32 ``(C, T)`` at
  ``sr``; the output has the same shape. Effects that need randomness (noise) take an integer
  ``seed`` among their params, so the params alone reproduce the output.
- ``sample(rng, sr, **ranges) -> params``: draws params uniformly from the ranges of
  docs/method.md#degradations (the keyword defaults) with the given
  :class:`numpy.random.Generator`. Params are plain JSON types (float, int, str,
  lists/dicts of them) so every applied effect is recorded as ``{"name", "stage",
  "params"}`` in a dataset manifest (:func:`draw_effect`).

Library code does the DSP wherever a library has it: pedalboard for compressor, limiter,
tanh distortion, Freeverb and the LAME MP3 codec; SciPy for filter design and filtering;
julius (through :func:`musicrestore.core.audio.resample`) for resampling. Written by hand, because
no installed library has them: the RBJ-cookbook peak/shelf biquads, the PCM bit-depth
quantizer and μ-law, the sparse multi-delay reverb, the environmental noise generators and
SNR mixing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from ..core.audio import fit_length
from ..core.audio import resample as _resample

Params = dict[str, Any]
Range = Sequence[float]

#: Silence floor for SNR/peak computations: energies below this count as silent.
EPS_ENERGY = 1e-20


class EffectError(RuntimeError):
    """An effect produced an unusable output (NaN/Inf or a changed shape); names the params."""


@dataclass(frozen=True)
class Effect:
    """One degradation: ``apply(wave (C, T), sr, **params) -> wave`` and its seeded sampler
    ``sample(rng, sr, **ranges) -> params``."""

    name: str
    apply: Callable[..., np.ndarray]
    sample: Callable[..., Params]


# --------------------------------------------------------------------------------------
# helpers


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    lo, hi = float(bounds[0]), float(bounds[1])
    if hi < lo:
        raise ValueError(f"range {list(bounds)} has its upper bound below the lower bound")
    return float(rng.uniform(lo, hi))


def _choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    if len(options) == 0:
        raise ValueError("empty list of options")
    item = options[int(rng.integers(len(options)))]
    return item.item() if isinstance(item, np.generic) else item


def _db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def _f32(wave: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(wave, dtype=np.float32)


def energy(wave: np.ndarray) -> float:
    """Sum of squares (float64) over every channel and sample."""
    w = np.asarray(wave, dtype=np.float64)
    return float(np.dot(w.ravel(), w.ravel()))


def snr_db(signal_wave: np.ndarray, noise_wave: np.ndarray) -> float:
    """``10 log10(E_signal / E_noise)``; ``inf`` for a silent noise, ``-inf`` for a silent signal."""
    es, en = energy(signal_wave), energy(noise_wave)
    if en <= EPS_ENERGY:
        return math.inf
    if es <= EPS_ENERGY:
        return -math.inf
    return 10.0 * math.log10(es / en)


def mix_at_snr(
    target: np.ndarray, background: np.ndarray, snr_db_: float
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Sum ``target + g * background`` with ``g`` chosen so that the target-to-background
    energy ratio is ``snr_db_`` (seed 004 §4.2: "target stems with background signals at
    signal-to-noise ratios ranging from -5 to 20 dB").

    Only the background is scaled, so the target keeps its level (the clean reference stays at
    the scale it entered with). The gain is computed in float64 on the float32 parts that are
    returned, so the achieved SNR matches the request to far better than 0.01 dB.

    Silent parts: if either part is silent (energy below :data:`EPS_ENERGY`) no SNR can be
    set; the parts are summed unscaled (the achieved SNR, from :func:`snr_db`, is then
    ``±inf``).

    Args:
        target: ``(C, T)``.
        background: ``(C, T)``, same shape.
        snr_db_: requested target-to-background ratio in dB.

    Returns:
        ``(mixture, (target, scaled_background))``, all float32 ``(C, T)``.
    """
    if target.shape != background.shape:
        raise ValueError(f"target {target.shape} and background {background.shape} differ in shape")
    target = _f32(target)
    background = _f32(background)
    et, eb = energy(target), energy(background)
    if et > EPS_ENERGY and eb > EPS_ENERGY:
        gain = math.sqrt(et / (eb * 10.0 ** (snr_db_ / 10.0)))
        background = _f32(background.astype(np.float64) * gain)
    return _f32(target.astype(np.float64) + background), (target, background)


# --------------------------------------------------------------------------------------
# spectral filtering (seed 004 §2.2)

#: Graphic EQ centre frequencies (seed 004 §2.2), Hz.
GRAPHIC_EQ_CENTERS_HZ: tuple[float, ...] = (
    25, 40, 63, 100, 160, 250, 400, 630, 1000, 1600, 2500, 4000, 6300, 10000, 16000, 20000,
)  # fmt: skip


def graphic_eq_q() -> np.ndarray:
    """Peak Q per graphic-EQ band: ``Q = f_center / (f_upper - f_lower) * 2.5`` (seed 004).

    The paper does not define the band edges; we take the geometric midpoints to the
    neighbouring centres (``f_lower = sqrt(f_{i-1} f_i)``, ``f_upper = sqrt(f_i f_{i+1})``)
    and, for the first and last band, mirror the ratio to the one neighbour. With these
    2/3-octave-ish spacings Q is about 5.3; the 16 and 20 kHz bands, only a ratio of 1.25
    apart, get 7.6 and 11.2.
    """
    c = np.asarray(GRAPHIC_EQ_CENTERS_HZ, dtype=np.float64)
    mids = np.sqrt(c[:-1] * c[1:])
    lower = np.concatenate([[c[0] ** 2 / mids[0]], mids])
    upper = np.concatenate([mids, [c[-1] ** 2 / mids[-1]]])
    return c / (upper - lower) * 2.5


def rbj_biquad(kind: str, freq_hz: float, sr: int, q: float, gain_db: float = 0.0) -> np.ndarray:
    """One RBJ-cookbook biquad (R. Bristow-Johnson, "Audio EQ Cookbook") as a ``(1, 6)`` SOS.

    ``kind`` is ``"peak"``, ``"lowshelf"`` or ``"highshelf"``: SciPy has no design for
    gain-carrying peaks or shelves, so these three are written out. A peak's gain at
    ``freq_hz`` is exactly ``gain_db``; shelves use the cookbook's Q form.
    """
    a_lin = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * freq_hz / sr
    cw, alpha = math.cos(w0), math.sin(w0) / (2.0 * q)
    if kind == "peak":
        b = [1 + alpha * a_lin, -2 * cw, 1 - alpha * a_lin]
        a = [1 + alpha / a_lin, -2 * cw, 1 - alpha / a_lin]
    elif kind in ("lowshelf", "highshelf"):
        s = 2.0 * math.sqrt(a_lin) * alpha
        ap, am = a_lin + 1, a_lin - 1
        if kind == "lowshelf":
            b = [a_lin * (ap - am * cw + s), 2 * a_lin * (am - ap * cw), a_lin * (ap - am * cw - s)]
            a = [ap + am * cw + s, -2 * (am + ap * cw), ap + am * cw - s]
        else:
            b = [
                a_lin * (ap + am * cw + s),
                -2 * a_lin * (am + ap * cw),
                a_lin * (ap + am * cw - s),
            ]
            a = [ap - am * cw + s, 2 * (am - ap * cw), ap - am * cw - s]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    return np.asarray([b + a], dtype=np.float64) / a[0]


def graphic_eq_sos(gains_db: Sequence[float], sr: int) -> np.ndarray:
    """Cascade of 16 peak biquads at :data:`GRAPHIC_EQ_CENTERS_HZ`, ``(n, 6)`` SOS.

    Bands whose centre is not below 0.95 × Nyquist (e.g. 16 and 20 kHz at 32 kHz) cannot be
    realised and are left out; at 44.1 kHz all 16 are used.
    """
    if len(gains_db) != len(GRAPHIC_EQ_CENTERS_HZ):
        raise ValueError(
            f"graphic EQ needs {len(GRAPHIC_EQ_CENTERS_HZ)} gains, got {len(gains_db)}"
        )
    sections = [
        rbj_biquad("peak", fc, sr, float(q), float(g))
        for fc, q, g in zip(GRAPHIC_EQ_CENTERS_HZ, graphic_eq_q(), gains_db, strict=True)
        if fc < 0.95 * sr / 2 and g != 0.0
    ]
    return np.concatenate(sections) if sections else np.asarray([[1.0, 0, 0, 1.0, 0, 0]])


def graphic_eq(wave: np.ndarray, sr: int, gains_db: Sequence[float]) -> np.ndarray:
    """16-band graphic EQ (seed 004 §2.2): peak filters, Q from :func:`graphic_eq_q`."""
    return _f32(signal.sosfilt(graphic_eq_sos(gains_db, sr), wave.astype(np.float64), axis=-1))


def sample_graphic_eq(rng: np.random.Generator, sr: int, gain_db: Range = (-6.0, 6.0)) -> Params:
    return {"gains_db": [_uniform(rng, gain_db) for _ in GRAPHIC_EQ_CENTERS_HZ]}


#: SciPy ``iirfilter`` families for the parametric EQ's cut filters (seed 004 §2.2).
FILTER_DESIGNS = ("butter", "cheby1", "cheby2", "ellip", "bessel")
CUT_TYPES = ("lowpass", "highpass", "bandpass", "bandstop")
BIQUAD_TYPES = ("peak", "lowshelf", "highshelf")
BAND_TYPES = CUT_TYPES + BIQUAD_TYPES


def band_edges_hz(freq_hz: float, q: float) -> tuple[float, float]:
    """Edges of a band of centre ``freq_hz`` and ``Q = f / (f_hi - f_lo)``, geometric about f."""
    half = 1.0 / (2.0 * q)
    root = math.sqrt(1.0 + half * half)
    return freq_hz * (root - half), freq_hz * (root + half)


def design_band(band: Params, sr: int) -> np.ndarray:
    """SOS ``(n, 6)`` of one parametric-EQ band (a dict from :func:`sample_parametric_eq`).

    - ``peak``/``lowshelf``/``highshelf``: one RBJ biquad (``freq_hz``, ``q``, ``gain_db``).
    - ``lowpass``/``highpass``: ``scipy.signal.iirfilter(order, freq_hz, ...)`` with the band's
      ``design`` (Butterworth, Chebyshev I with ``ripple_db``, Chebyshev II with ``stop_db``
      (its ``freq_hz`` is the stop-band edge, SciPy's convention), elliptic with both, Bessel
      phase-normalised). Q plays no part in these designs, so it is not drawn for them.
    - ``bandpass``/``bandstop``: the same families between :func:`band_edges_hz` of
      ``freq_hz`` and ``q``; SciPy doubles a band filter's order, so ``order // 2`` is passed
      and ``order`` stays the total order.

    Frequencies are kept inside (1 Hz, 0.95 × Nyquist) so every design exists at any ``sr``.
    """
    kind = band["type"]
    nyq = sr / 2.0
    clamp = lambda f: min(max(float(f), 1.0), 0.95 * nyq)  # noqa: E731
    if kind in BIQUAD_TYPES:
        return rbj_biquad(
            kind, clamp(band["freq_hz"]), sr, float(band["q"]), float(band["gain_db"])
        )
    if kind not in CUT_TYPES:
        raise ValueError(f"unknown parametric EQ band type {kind!r}; expected one of {BAND_TYPES}")
    design, order = band["design"], int(band["order"])
    if design not in FILTER_DESIGNS:
        raise ValueError(f"unknown filter design {design!r}; expected one of {FILTER_DESIGNS}")
    if kind in ("bandpass", "bandstop"):
        lo, hi = band_edges_hz(float(band["freq_hz"]), float(band["q"]))
        lo, hi = clamp(lo), clamp(hi)
        if lo >= hi:  # a band squeezed against Nyquist: keep a sliver so it designs
            lo = 0.9 * hi
        wn: float | list[float] = [lo, hi]
        n = max(1, order // 2)
    else:
        wn, n = clamp(band["freq_hz"]), order
    return signal.iirfilter(
        n,
        wn,
        rp=band.get("ripple_db"),
        rs=band.get("stop_db"),
        btype=kind,
        ftype=design,
        output="sos",
        fs=sr,
    )


def design_parametric_eq(bands: Sequence[Params], sr: int) -> np.ndarray:
    """Cascade of every band's SOS, in order: ``(n, 6)``."""
    return np.concatenate([design_band(b, sr) for b in bands])


def parametric_eq(wave: np.ndarray, sr: int, bands: Sequence[Params]) -> np.ndarray:
    """Parametric EQ (seed 004 §2.2): a cascade of 1-5 random bands as second-order sections."""
    return _f32(signal.sosfilt(design_parametric_eq(bands, sr), wave.astype(np.float64), axis=-1))


def sample_parametric_eq(
    rng: np.random.Generator,
    sr: int,
    n_bands: Sequence[int] = (1, 5),
    lowpass_hz: Range = (200.0, 8000.0),
    highpass_hz: Range = (20.0, 2000.0),
    band_hz: Range = (100.0, 8000.0),
    lowshelf_hz: Range = (50.0, 1000.0),
    highshelf_hz: Range = (1000.0, 10000.0),
    q: Range = (0.5, 10.0),
    shelf_q: Range = (0.5, 0.7071),
    gain_db: Range = (-6.0, 6.0),
    ripple_db: Range = (0.1, 3.0),
    stop_db: Range = (20.0, 60.0),
    orders: Sequence[int] = (2, 4, 6, 8),
    designs: Sequence[str] = FILTER_DESIGNS,
    types: Sequence[str] = BAND_TYPES,
) -> Params:
    """Draw 1-5 bands (seed 004 §2.2); frequencies uniform in Hz as in the paper.

    ``shelf_q`` departs from the paper's Q 0.5-10 for shelves only: an RBJ shelf with Q above
    1/√2 overshoots (Q = 10 with +6 dB gives a +20 dB resonance), which is no longer a shelf.
    Peaks and band filters use the paper's ``q`` range.
    """
    freq_range = {
        "lowpass": lowpass_hz,
        "highpass": highpass_hz,
        "bandpass": band_hz,
        "bandstop": band_hz,
        "peak": band_hz,
        "lowshelf": lowshelf_hz,
        "highshelf": highshelf_hz,
    }
    bands = []
    for _ in range(int(rng.integers(int(n_bands[0]), int(n_bands[1]) + 1))):
        kind = str(_choice(rng, list(types)))
        band: Params = {"type": kind, "freq_hz": _uniform(rng, freq_range[kind])}
        if kind in BIQUAD_TYPES:
            band["q"] = _uniform(rng, q if kind == "peak" else shelf_q)
            band["gain_db"] = _uniform(rng, gain_db)
        else:
            if kind in ("bandpass", "bandstop"):
                band["q"] = _uniform(rng, q)
            band["design"] = str(_choice(rng, list(designs)))
            band["order"] = int(_choice(rng, list(orders)))
            if band["design"] in ("cheby1", "ellip"):
                band["ripple_db"] = _uniform(rng, ripple_db)
            if band["design"] in ("cheby2", "ellip"):
                band["stop_db"] = _uniform(rng, stop_db)
        bands.append(band)
    return {"bands": bands}


# --------------------------------------------------------------------------------------
# dynamics, distortion, reverb, codec (pedalboard; seed 004 §2.2)


def compressor(
    wave: np.ndarray,
    sr: int,
    threshold_db: float,
    ratio: float,
    attack_ms: float,
    release_ms: float,
) -> np.ndarray:
    """pedalboard ``Compressor`` (JUCE): gain reduction above ``threshold_db`` by ``ratio``."""
    import pedalboard

    fx = pedalboard.Compressor(
        threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms, release_ms=release_ms
    )
    return _f32(fx(_f32(wave), sr))


def sample_compressor(
    rng: np.random.Generator,
    sr: int,
    threshold_db: Range = (-20.0, 0.0),
    ratio: Range = (1.5, 10.0),
    attack_ms: Range = (1.0, 10.0),
    release_ms: Range = (50.0, 200.0),
) -> Params:
    return {
        "threshold_db": _uniform(rng, threshold_db),
        "ratio": _uniform(rng, ratio),
        "attack_ms": _uniform(rng, attack_ms),
        "release_ms": _uniform(rng, release_ms),
    }


#: Look-ahead of the brick-wall limiter; pedalboard reports it as latency and removes it.
LIMITER_LOOKAHEAD_MS = 5.0


def limiter(wave: np.ndarray, sr: int, threshold_db: float, release_ms: float) -> np.ndarray:
    """Peak limiter with ceiling ``threshold_db`` (seed 004 §2.2: "any signal exceeding T_l is
    immediately attenuated to maintain the threshold ceiling", release ``release_ms``).

    Uses pedalboard's ``BrickwallLimiter`` (look-ahead, instant attack, no makeup gain, output
    aligned with the input). pedalboard's ``Limiter`` (JUCE ``dsp::Limiter``) is *not* that:
    it adds automatic makeup gain and hard-clips at 0 dBFS whatever the threshold, so it would
    push every limited mixture to full scale. The output's sample peak stays at or below the
    ceiling (measured overshoot < 0.01 dB; inter-sample peaks are not limited).
    """
    import pedalboard

    fx = pedalboard.BrickwallLimiter(
        ceiling_db=threshold_db, release_ms=release_ms, lookahead_ms=LIMITER_LOOKAHEAD_MS
    )
    return _f32(fx(_f32(wave), sr))


def sample_limiter(
    rng: np.random.Generator,
    sr: int,
    threshold_db: Range = (-10.0, 0.0),
    release_ms: Range = (50.0, 200.0),
) -> Params:
    return {"threshold_db": _uniform(rng, threshold_db), "release_ms": _uniform(rng, release_ms)}


def distortion(wave: np.ndarray, sr: int, drive_db: float) -> np.ndarray:
    """``tanh(x · 10^(drive_db/20))`` via pedalboard ``Distortion`` (seed 004 §2.2)."""
    import pedalboard

    return _f32(pedalboard.Distortion(drive_db=drive_db)(_f32(wave), sr))


def sample_distortion(rng: np.random.Generator, sr: int, drive_db: Range = (0.0, 5.0)) -> Params:
    return {"drive_db": _uniform(rng, drive_db)}


#: Freeverb dry level. JUCE's reverb scales ``dry_level`` by 2, so 0.5 passes the dry signal
#: at unity and the wet level alone sets how much reverb is added (seed 004 gives no dry level).
REVERB_DRY_LEVEL = 0.5


def reverb(
    wave: np.ndarray,
    sr: int,
    room_size: float,
    damping: float,
    wet_level: float,
    width: float,
    dry_level: float = REVERB_DRY_LEVEL,
) -> np.ndarray:
    """Freeverb through pedalboard ``Reverb`` (seed 004 §2.2). The tail past the input's end
    is cut: lengths stay equal."""
    import pedalboard

    fx = pedalboard.Reverb(
        room_size=room_size, damping=damping, wet_level=wet_level, dry_level=dry_level, width=width
    )
    return fit_length(_f32(fx(_f32(wave), sr)), wave.shape[-1])


def sample_reverb(
    rng: np.random.Generator,
    sr: int,
    room_size: Range = (0.1, 1.0),
    damping: Range = (0.1, 1.0),
    wet_level: Range = (0.1, 0.5),
    width: Range = (0.1, 1.0),
    dry_level: float = REVERB_DRY_LEVEL,
) -> Params:
    return {
        "room_size": _uniform(rng, room_size),
        "damping": _uniform(rng, damping),
        "wet_level": _uniform(rng, wet_level),
        "width": _uniform(rng, width),
        "dry_level": float(dry_level),
    }


#: Sample rates LAME (and so pedalboard's ``MP3Compressor``) accepts.
MP3_RATES_HZ = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


def mp3(wave: np.ndarray, sr: int, vbr_quality: float) -> np.ndarray:
    """MP3 VBR round trip through LAME (pedalboard ``MP3Compressor``; seed 004 §2.2).

    pedalboard reports the encoder+decoder delay as latency and removes it, so the output is
    sample-aligned with the input (``tests/test_effects.py`` checks the cross-correlation
    peak is at lag 0); the length is kept.
    """
    import pedalboard

    if sr not in MP3_RATES_HZ:
        raise ValueError(f"MP3 needs one of {MP3_RATES_HZ} Hz, got {sr} Hz")
    out = pedalboard.MP3Compressor(vbr_quality=vbr_quality)(_f32(wave), sr)
    return fit_length(_f32(out), wave.shape[-1])


def sample_mp3(rng: np.random.Generator, sr: int, vbr_quality: Range = (1.0, 9.0)) -> Params:
    return {"vbr_quality": _uniform(rng, vbr_quality)}


def gain(wave: np.ndarray, sr: int, gain_db: float) -> np.ndarray:
    """``F(x) = a x`` with ``a = 10^(gain_db/20) ≠ 0`` (seed 004 §2.2)."""
    return _f32(wave.astype(np.float64) * _db_to_gain(gain_db))


def sample_gain(rng: np.random.Generator, sr: int, gain_db: Range = (-12.0, 6.0)) -> Params:
    """Our range (the paper gives none): cuts down to -12 dB, boosts up to +6 dB."""
    return {"gain_db": _uniform(rng, gain_db)}


# --------------------------------------------------------------------------------------
# resampling and noise


#: Down-up resampling rates are drawn on this grid so julius' rational ratio stays small
#: (44100 and 32000 share a factor 50 with every multiple of 50).
RESAMPLE_GRID_HZ = 50


def resample_roundtrip(wave: np.ndarray, sr: int, low_sr: int) -> np.ndarray:
    """Down to ``low_sr`` and back to ``sr`` (band-limits to about 0.47 × ``low_sr``; julius
    sinc). A ``low_sr`` at or above ``sr`` leaves the wave unchanged."""
    low_sr = int(low_sr)
    if low_sr >= sr:
        return _f32(wave)
    return fit_length(_resample(_resample(_f32(wave), sr, low_sr), low_sr, sr), wave.shape[-1])


def sample_resample(rng: np.random.Generator, sr: int, low_sr: Range = (8000.0, 32000.0)) -> Params:
    """``low_sr`` uniform in the range (seed 004's code: 8-32 kHz) on a 50-Hz grid, below ``sr``."""
    hi = min(float(low_sr[1]), sr - RESAMPLE_GRID_HZ)
    value = _uniform(rng, (float(low_sr[0]), max(hi, float(low_sr[0]))))
    return {"low_sr": int(round(value / RESAMPLE_GRID_HZ) * RESAMPLE_GRID_HZ)}


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def gaussian_noise(wave: np.ndarray, sr: int, std: float, seed: int) -> np.ndarray:
    """Add white Gaussian noise of ``std`` (full-scale units), drawn from ``seed``."""
    noise = np.random.default_rng(seed).standard_normal(wave.shape) * std
    return _f32(wave.astype(np.float64) + noise)


def sample_gaussian_noise(rng: np.random.Generator, sr: int, std: Range = (0.001, 0.005)) -> Params:
    """Seed 004 §4.2 (its "means" is the standard deviation): std U(0.001, 0.005).

    See docs/method.md#msr-mixture-chain.
    """
    return {"std": _uniform(rng, std), "seed": _seed(rng)}


def dither(wave: np.ndarray, sr: int, std: float, seed: int) -> np.ndarray:
    """Tiny Gaussian dither (seed 000): the same operation as :func:`gaussian_noise`."""
    return gaussian_noise(wave, sr, std, seed)


def sample_dither(rng: np.random.Generator, sr: int, std: Range = (1.5e-5, 6e-5)) -> Params:
    """Our "tiny" (seed 000 gives no level): 0.5-2 LSB of 16-bit audio (1 LSB = 3.05e-5)."""
    return {"std": _uniform(rng, std), "seed": _seed(rng)}


# --------------------------------------------------------------------------------------
# MusicGen-like artifacts (seed 000 §3 "Training")


def bitcrush(wave: np.ndarray, sr: int, bits: int) -> np.ndarray:
    """Quantize to ``bits``-bit PCM: ``2**bits`` levels, step ``2 / 2**bits``, clipped to
    ``[-1, 1 - step]``.

    Written here rather than with pedalboard ``Bitcrush``, whose ``bit_depth=b`` rounds to
    ``2**b`` steps per polarity (``2**(b+1) + 1`` levels, i.e. b+1 bits).
    """
    half = 2.0 ** (int(bits) - 1)
    q = np.clip(np.round(wave.astype(np.float64) * half), -half, half - 1)
    return _f32(q / half)


def sample_bitcrush(rng: np.random.Generator, sr: int, bits: Sequence[int] = (8, 12)) -> Params:
    return {"bits": int(rng.integers(int(bits[0]), int(bits[1]) + 1))}


def mulaw(wave: np.ndarray, sr: int, mu: int = 255, bits: int = 8) -> np.ndarray:
    """μ-law companding round trip (ITU-T G.711 style): compress, quantize to ``bits`` bits
    (``2**bits`` levels, uniformly in the companded domain), expand."""
    x = np.clip(wave.astype(np.float64), -1.0, 1.0)
    comp = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    half = 2.0 ** (int(bits) - 1)
    # mid-rise levels (k + 0.5) / half: symmetric about zero, exactly 2**bits of them
    comp_q = (np.clip(np.floor(comp * half), -half, half - 1) + 0.5) / half
    return _f32(np.sign(comp_q) * np.expm1(np.abs(comp_q) * math.log1p(mu)) / mu)


def sample_mulaw(rng: np.random.Generator, sr: int, mu: int = 255, bits: int = 8) -> Params:
    return {"mu": int(mu), "bits": int(bits)}


def soft_clip(wave: np.ndarray, sr: int, drive_db: float) -> np.ndarray:
    """Soft clipping with ``drive_db`` of drive (seed 000: 1-6 dB): ``tanh(g x) / g``.

    Dividing by the drive gain ``g`` keeps the small-signal gain at one, so only peaks are
    squashed (by up to ``drive_db``) and the clean reference stays level-aligned.
    """
    return _f32(distortion(wave, sr, drive_db).astype(np.float64) / _db_to_gain(drive_db))


def sample_soft_clip(rng: np.random.Generator, sr: int, drive_db: Range = (1.0, 6.0)) -> Params:
    return {"drive_db": _uniform(rng, drive_db)}


def multi_delay(
    wave: np.ndarray, sr: int, delays_ms: Sequence[float], gains_db: Sequence[float]
) -> np.ndarray:
    """Light multi-delay reverb (seed 000): ``y[n] = x[n] + Σ_k g_k x[n - d_k]``, a sparse FIR
    of a few early reflections. Written by hand: pedalboard's ``Delay`` has one tap."""
    x = wave.astype(np.float64)
    y = x.copy()
    for d_ms, g_db in zip(delays_ms, gains_db, strict=True):
        d = int(round(d_ms * sr / 1000.0))
        if 0 < d < x.shape[-1]:
            y[:, d:] += _db_to_gain(g_db) * x[:, :-d]
    return _f32(y)


def sample_multi_delay(
    rng: np.random.Generator,
    sr: int,
    n_taps: Sequence[int] = (2, 6),
    delay_ms: Range = (10.0, 120.0),
    gain_db: Range = (-24.0, -10.0),
) -> Params:
    """2-6 taps at 10-120 ms, each -24..-10 dB: "light" (our ranges; seed 000 gives none)."""
    n = int(rng.integers(int(n_taps[0]), int(n_taps[1]) + 1))
    delays = sorted(_uniform(rng, delay_ms) for _ in range(n))
    return {"delays_ms": delays, "gains_db": [_uniform(rng, gain_db) for _ in range(n)]}


NOISE_KINDS = ("colored", "hum", "crackle")


def make_env_noise(kind: str, shape: tuple[int, int], sr: int, seed: int, **kw: Any) -> np.ndarray:
    """Environmental noise ``(C, T)`` float64 (unnormalised), generated from ``seed``.

    - ``colored``: Gaussian noise with a ``1/f^slope`` power spectrum (``slope`` 0 = white,
      1 = pink, 2 = brown), then a 2nd-order Butterworth low-pass at ``cutoff_hz``: hiss,
      rumble, air-conditioning.
    - ``hum``: mains hum at ``f0_hz`` (50 or 60 Hz) with ``n_harmonics`` harmonics of
      amplitude ``k^-decay`` and random phases, plus 10 % of white noise: ground loops.
    - ``crackle``: Poisson clicks at ``rate_hz`` with Laplacian amplitudes, each a 1-ms
      exponentially decaying burst, high-passed at 500 Hz: vinyl/dust crackle.
    """
    gen = np.random.default_rng(seed)
    channels, length = shape
    t = np.arange(length) / sr
    if kind == "colored":
        white = gen.standard_normal((channels, length))
        spec = np.fft.rfft(white, axis=-1)
        # the 1/f tilt stops at 20 Hz: below it brown noise would be all inaudible rumble
        freqs = np.maximum(np.fft.rfftfreq(length, 1.0 / sr), 20.0)
        spec *= freqs ** (-kw["slope"] / 2.0)
        noise = np.fft.irfft(spec, n=length, axis=-1)
        sos = signal.butter(
            2, min(kw["cutoff_hz"], 0.45 * sr), btype="lowpass", fs=sr, output="sos"
        )
        return signal.sosfilt(sos, noise, axis=-1)
    if kind == "hum":
        noise = np.zeros((channels, length))
        for k in range(1, int(kw["n_harmonics"]) + 1):
            if k * kw["f0_hz"] >= sr / 2:
                break
            phase = gen.uniform(0, 2 * np.pi, size=(channels, 1))
            noise += k ** (-kw["decay"]) * np.sin(2 * np.pi * k * kw["f0_hz"] * t + phase)
        return noise + 0.1 * gen.standard_normal((channels, length)) * np.std(noise)
    if kind == "crackle":
        n_clicks = gen.poisson(kw["rate_hz"] * length / sr)
        clicks = np.zeros((channels, length))
        pos = gen.integers(0, length, size=n_clicks)
        clicks[:, pos] = gen.laplace(size=(channels, n_clicks))
        burst = np.exp(-np.arange(max(1, int(0.001 * sr))) / (0.0002 * sr))
        noise = signal.lfilter(burst, [1.0], clicks, axis=-1)
        sos = signal.butter(2, 500.0, btype="highpass", fs=sr, output="sos")
        return signal.sosfilt(sos, noise, axis=-1)
    raise ValueError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")


def env_noise(
    wave: np.ndarray, sr: int, kind: str, snr_db: float, seed: int, **kw: Any
) -> np.ndarray:
    """Add :func:`make_env_noise` at ``snr_db`` relative to ``wave`` (seed 000: U(-5, 20) dB)."""
    noise = make_env_noise(kind, wave.shape, sr, seed, **kw)
    mixed, _ = mix_at_snr(wave, noise.astype(np.float32), snr_db)
    return mixed


def sample_env_noise(
    rng: np.random.Generator,
    sr: int,
    snr_db: Range = (-5.0, 20.0),
    kinds: Sequence[str] = NOISE_KINDS,
    slope: Range = (0.0, 2.0),
    cutoff_hz: Range = (2000.0, 16000.0),
    hum_f0_hz: Sequence[float] = (50.0, 60.0),
    n_harmonics: Sequence[int] = (3, 8),
    decay: Range = (0.5, 2.0),
    rate_hz: Range = (5.0, 60.0),
) -> Params:
    """Noise kind uniform over ``kinds``; SNR uniform (seed 000); the rest our ranges."""
    kind = str(_choice(rng, list(kinds)))
    params: Params = {"kind": kind, "snr_db": _uniform(rng, snr_db), "seed": _seed(rng)}
    if kind == "colored":
        params.update(slope=_uniform(rng, slope), cutoff_hz=_uniform(rng, cutoff_hz))
    elif kind == "hum":
        params.update(
            f0_hz=float(_choice(rng, list(hum_f0_hz))),
            n_harmonics=int(rng.integers(int(n_harmonics[0]), int(n_harmonics[1]) + 1)),
            decay=_uniform(rng, decay),
        )
    elif kind == "crackle":
        params.update(rate_hz=_uniform(rng, rate_hz))
    return params


# --------------------------------------------------------------------------------------
# registry

EFFECTS: dict[str, Effect] = {
    e.name: e
    for e in (
        Effect("graphic_eq", graphic_eq, sample_graphic_eq),
        Effect("parametric_eq", parametric_eq, sample_parametric_eq),
        Effect("compressor", compressor, sample_compressor),
        Effect("limiter", limiter, sample_limiter),
        Effect("distortion", distortion, sample_distortion),
        Effect("reverb", reverb, sample_reverb),
        Effect("mp3", mp3, sample_mp3),
        Effect("gain", gain, sample_gain),
        Effect("resample", resample_roundtrip, sample_resample),
        Effect("gaussian_noise", gaussian_noise, sample_gaussian_noise),
        Effect("bitcrush", bitcrush, sample_bitcrush),
        Effect("mulaw", mulaw, sample_mulaw),
        Effect("soft_clip", soft_clip, sample_soft_clip),
        Effect("multi_delay", multi_delay, sample_multi_delay),
        Effect("env_noise", env_noise, sample_env_noise),
        Effect("dither", dither, sample_dither),
    )
}


def apply_effect(name: str, wave: np.ndarray, sr: int, params: Params) -> np.ndarray:
    """Run ``EFFECTS[name].apply`` and check the result: same shape, finite, float32.

    Raises:
        EffectError: NaN/Inf or a shape change, naming the effect and its params, so a bad
            draw surfaces instead of silently writing a broken example.
    """
    if name not in EFFECTS:
        raise KeyError(f"unknown effect {name!r}; expected one of {', '.join(EFFECTS)}")
    out = EFFECTS[name].apply(wave, sr, **params)
    if out.shape != wave.shape:
        raise EffectError(f"{name}{params} changed the shape {wave.shape} -> {out.shape}")
    if not np.isfinite(out).all():
        raise EffectError(f"{name}{params} produced NaN/Inf")
    return _f32(out)


def draw_effect(
    name: str, rng: np.random.Generator, sr: int, stage: str, **ranges: Any
) -> dict[str, Any]:
    """Sample ``name``'s params and return the record ``{"name", "stage", "params"}``."""
    if name not in EFFECTS:
        raise KeyError(f"unknown effect {name!r}; expected one of {', '.join(EFFECTS)}")
    return {"name": name, "stage": stage, "params": EFFECTS[name].sample(rng, sr, **ranges)}


def apply_record(record: dict[str, Any], wave: np.ndarray, sr: int) -> np.ndarray:
    """Re-apply a recorded effect: ``apply_effect(record["name"], wave, sr, record["params"])``."""
    return apply_effect(record["name"], wave, sr, record["params"])
