"""Spectral filtering: the graphic and parametric EQs (seed 004 §2.2).

SciPy designs and runs the filters; the RBJ-cookbook peak/shelf biquads are written here,
because no installed library has them. Each effect is ``apply(wave, sr, **params)`` plus its
seeded sampler, registered in :data:`musicrestore.degrade.effects.EFFECTS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import signal

from .base import Params, Range, as_f32, choice, uniform

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
    return as_f32(signal.sosfilt(graphic_eq_sos(gains_db, sr), wave.astype(np.float64), axis=-1))


def sample_graphic_eq(rng: np.random.Generator, sr: int, gain_db: Range = (-6.0, 6.0)) -> Params:
    return {"gains_db": [uniform(rng, gain_db) for _ in GRAPHIC_EQ_CENTERS_HZ]}


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
    return as_f32(signal.sosfilt(design_parametric_eq(bands, sr), wave.astype(np.float64), axis=-1))


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
        kind = str(choice(rng, list(types)))
        band: Params = {"type": kind, "freq_hz": uniform(rng, freq_range[kind])}
        if kind in BIQUAD_TYPES:
            band["q"] = uniform(rng, q if kind == "peak" else shelf_q)
            band["gain_db"] = uniform(rng, gain_db)
        else:
            if kind in ("bandpass", "bandstop"):
                band["q"] = uniform(rng, q)
            band["design"] = str(choice(rng, list(designs)))
            band["order"] = int(choice(rng, list(orders)))
            if band["design"] in ("cheby1", "ellip"):
                band["ripple_db"] = uniform(rng, ripple_db)
            if band["design"] in ("cheby2", "ellip"):
                band["stop_db"] = uniform(rng, stop_db)
        bands.append(band)
    return {"bands": bands}
