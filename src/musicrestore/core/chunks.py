"""The one chunked-inference engine: plan, fade, overlap-add (docs/method.md#methods,
docs/method.md#learned-models; seed 000 §3 "Seamless inference" and "Overlap inference").

Everything that runs a processor over a long signal in pieces goes through here:

- the file runner (:mod:`musicrestore.variants.restore`) streams any variant through an
  array or a file in ``chunk_s`` chunks;
- the learned networks' inference (:mod:`musicrestore.models.inference`) runs a network over
  a long signal in batches of equal-length, grid-aligned chunks.

One pass of :func:`run_chunks`: :func:`plan_chunks` cuts ``[0, T)`` into regions that
overlap their neighbours; each region is processed **with extra context on both sides**
(seed 000), the output is **cropped** to the region (its core), weighted with **Hann fades**
over the overlaps (:func:`fade_in` up, its complement down) and overlap-added by
:class:`OverlapAdd`, which emits every sample once, in order, as soon as no later region
reaches it. Working memory is one batch of windows plus one overlap, so a file is never
fully in memory. A signal that fits in one region is processed whole, without context.

**Where it lives.** In :mod:`musicrestore.core`, the bottom layer, because both callers
import it: :mod:`musicrestore.variants.restore` must not import :mod:`musicrestore.models`
(a DSP variant's restore stage would then import torch and depend on the networks' code),
and :mod:`musicrestore.models.inference` must not import :mod:`musicrestore.variants`. The
engine is NumPy only; what processes a window is a callback, so it knows nothing of
variants or torch.

**Two numerics, one accumulator.** The two engines this one replaces rounded differently;
the ``normalise`` switch keeps each caller's output byte-identical:

- ``normalise=False`` (the file runner): a complementary cross-fade. The falling weight is
  ``1 - rise`` in float32, so the two weights of a sample sum to exactly one in float32 and
  no division is needed; sums are float32.
- ``normalise=True`` (the networks; seed 000's energy normalisation): the falling weight is
  the mirrored ramp (``cos²`` against the rising ``sin²``), ``Σ w·y`` and ``Σ w`` are summed
  in float64 and the output is their quotient, so no gain bump survives where the float32
  windows' sum deviates from one by rounding.

In both, a chunk's samples and weights are float32 and so are their products; the fall is
applied to the overlap's running sum when the next chunk arrives, so a sample covered by
three regions (the runner's equalised hop can be shorter than the overlap) is faded twice,
as a chain of cross-fades.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

#: ``process(windows) -> outputs``: a batch of ``(C, L_k)`` windows to arrays of the same shapes.
Process = Callable[[list[np.ndarray]], Sequence[np.ndarray]]


def fade_in(n: int) -> np.ndarray:
    """Hann half-window rising over ``n`` samples, ``sin²(π/2 · (i + ½) / n)``, float32
    ``(n,)``. Its complement ``1 - ramp`` (or, mathematically the same, its mirror) is the
    fade out: the two sum to one, so a cross-fade has no level bump. The only fade of the
    package: :class:`OverlapAdd` uses it for every overlap."""
    return (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


def plan_chunks(
    total: int, chunk: int, overlap: int, *, first: int = 0, even: bool = True
) -> list[tuple[int, int]]:
    """Regions ``[start, stop)`` of at most ``chunk`` samples that cover ``[0, total)``, each
    overlapping the next by exactly ``overlap`` samples (at most ``chunk // 2``).

    Args:
        total: signal length (samples).
        chunk: the longest region. A signal that one region covers (``total <= chunk``
            for ``first = 0``) is the one region ``(0, total)``: processed whole.
        overlap: samples shared by neighbouring regions (cross-faded).
        first: where the first region starts (``<= 0``); a negative start puts the first
            fade away from the signal's start (the U-Net path centres its fades on the
            borders of its alignment grid).
        even: ``True`` (the file runner): the hop is shortened so that all regions have
            the same length (no runt last chunk that a variant's STFT would have to pad).
            ``False`` (the networks): the hop is exactly ``chunk - overlap``, so the starts
            ``first + k · hop`` stay on a grid.

    The first region may start before the signal and the last may end after it: the
    engine processes what lies outside as context (zeros, or nothing) and keeps only
    ``[0, total)``. Every region has the same length ``hop + overlap``.
    """
    if chunk < 1 or first > 0:
        raise ValueError(f"need chunk >= 1 and first <= 0, got chunk {chunk}, first {first}")
    overlap = max(0, min(overlap, chunk // 2))
    span = total - overlap - first  # what the hops must cover
    n = max(1, math.ceil(span / (chunk - overlap)))
    if n == 1:
        return [(0, total)]
    hop = math.ceil(span / n) if even else chunk - overlap
    return [(first + k * hop, first + k * hop + hop + overlap) for k in range(n)]


class OverlapAdd:
    """The overlap-add accumulator: chunk outputs in, finished samples out, in order.

    :meth:`add` takes the cropped output of one region; whatever it shares with the
    previous region is faded and summed with that region's running sum; the samples that
    no later region reaches go to ``write`` (float32 ``(C, n)``), the rest wait for the
    next :meth:`add`. See the module docstring for ``normalise``.
    """

    def __init__(self, write: Callable[[np.ndarray], None], *, normalise: bool = False) -> None:
        self._write = write
        self._normalise = normalise
        self._dtype = np.float64 if normalise else np.float32
        self.position = 0  #: samples written so far (the next region starts here)
        self._acc: np.ndarray | None = None  # (C, m): the running sum w·y of the overlap
        self._wsum: np.ndarray | None = None  # (m,): its summed weights (normalise only)

    def add(self, y: np.ndarray, start: int, final: int) -> None:
        """Add ``y (C, L)``, the output for samples ``[start, start + L)``; ``final`` is where
        the next region starts (``start + L`` for the last): the samples before it are done.

        ``start`` must be :attr:`position` (regions arrive in order and leave no gap)."""
        y = np.asarray(y, dtype=np.float32)
        length = y.shape[1]
        if start != self.position or not start <= final <= start + length:
            raise ValueError(
                f"region [{start}, {start + length}) ending at {final} does not follow "
                f"sample {self.position}"
            )
        n = 0 if self._acc is None else self._acc.shape[1]  # samples shared with the last region
        if n > length:
            raise ValueError(f"a region of {length} samples inside an overlap of {n}")
        keep = final - start
        if n == 0 and keep == length:  # nothing to fade: y is final as it is
            self._write(y)
            self.position = final
            return
        acc: np.ndarray = y.astype(self._dtype)  # a copy: never writes into the caller's array
        wsum: np.ndarray = np.ones(length, self._dtype)
        if n:
            assert self._acc is not None and self._wsum is not None
            rise = fade_in(n)
            fall = rise[::-1] if self._normalise else 1.0 - rise
            acc[:, :n] = self._acc.astype(np.float32) * fall  # float32 products
            acc[:, :n] += y[:, :n] * rise
            wsum[:n] = self._wsum * fall + rise
        done: np.ndarray = acc[:, :keep]
        if self._normalise:
            done = done / wsum[:keep]  # energy normalisation (float64)
        self._write(done.astype(np.float32, copy=False))
        self._acc, self._wsum = acc[:, keep:], wsum[keep:]
        self.position = final


def read_window(
    read: Callable[[int, int], np.ndarray], lo: int, hi: int, total: int, *, pad: bool
) -> tuple[np.ndarray, int]:
    """Samples ``[lo, hi)`` of a signal of ``total`` samples: ``(window, its first sample)``.

    ``pad=False``: the window is clamped to the signal (a variant sees real audio only).
    ``pad=True``: samples outside the signal are zeros, so every window of a plan has the
    same length and a batch of them stacks; the window is float32."""
    a, b = max(lo, 0), min(hi, total)
    if not pad:
        return read(a, b), a
    block = read(a, b)
    window = np.zeros((block.shape[0], hi - lo), np.float32)
    window[:, a - lo : b - lo] = block
    return window, lo


def run_chunks(
    process: Process,
    read: Callable[[int, int], np.ndarray],
    write: Callable[[np.ndarray], None],
    total: int,
    chunks: Sequence[tuple[int, int]],
    context: int = 0,
    *,
    pad: bool = False,
    normalise: bool = False,
    batch_size: int = 1,
) -> None:
    """Run ``process`` over a signal in ``chunks`` (from :func:`plan_chunks`) and ``write``
    its output, ``total`` samples in order.

    Args:
        process: ``windows -> outputs``, up to ``batch_size`` windows ``(C, L)`` at a time,
            each output the shape of its window.
        read: ``read(a, b)`` -> samples ``[a, b)`` ``(C, b - a)`` of the input,
            ``0 <= a < b <= total``.
        write: receives the output, float32 ``(C, n)`` blocks, in order.
        total: input length.
        chunks: the regions, in order.
        context: samples processed on each side of a region, then cropped (none when
            there is one region: the whole signal is processed as it is).
        pad: context beyond the signal is zeros (equal-length windows, batched) rather
            than left out; see :func:`read_window`.
        normalise: the accumulator's numerics (:class:`OverlapAdd`).
        batch_size: windows per ``process`` call.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(chunks) == 1:
        context = 0
    acc = OverlapAdd(write, normalise=normalise)
    for b0 in range(0, len(chunks), batch_size):
        ks = range(b0, min(len(chunks), b0 + batch_size))
        read_in = [read_window(read, *_widen(chunks[k], context), total, pad=pad) for k in ks]
        windows = [w for w, _ in read_in]
        outs = process(windows)
        if len(outs) != len(windows):
            raise ValueError(f"{len(windows)} windows processed into {len(outs)} outputs")
        for k, (window, lo), y in zip(ks, read_in, outs, strict=True):
            if y.shape != window.shape:
                raise ValueError(f"output shape {y.shape} for a window of shape {window.shape}")
            start, stop = max(chunks[k][0], 0), min(chunks[k][1], total)  # the core
            final = max(chunks[k + 1][0], 0) if k + 1 < len(chunks) else stop
            acc.add(y[:, start - lo : stop - lo], start, final)
    if acc.position != total:
        raise ValueError(f"the chunks cover {acc.position} of {total} samples")


def _widen(region: tuple[int, int], context: int) -> tuple[int, int]:
    return region[0] - context, region[1] + context
