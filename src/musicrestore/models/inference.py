"""Seamless long-signal inference for the learned networks (seed 000 §3, "Seamless
inference" and "Overlap inference"; docs/method.md#unet-mask, docs/method.md#wavenet).

Both functions cut a ``(C, T)`` wave into equal-length regions that overlap their
neighbours, run each region **with extra context on both sides** (cropped afterwards),
weight each cropped region with a window whose ramps are complementary Hann halves
(``sin²`` up, ``cos²`` down, so neighbouring windows sum to exactly one), divide the
overlap-added result by the overlap-added windows (energy normalisation: no gain bump
wherever the windows' sum would deviate from one by rounding) and return ``(C, T)``.
Regions are processed in batches under :func:`torch.inference_mode`; the network should
be in eval mode. A signal that fits in one region is processed whole, without padding.

- :func:`unet_ola` (seed 000's U-Net path): hop-aligned chunks of ``chunk_s`` with
  ``context_s`` of context, cross-faded over ``fade_s``. Chunk starts sit on the network's
  ``alignment`` grid (hop × pooling factor), so every STFT frame and pooling cell of a chunk
  is one of the whole signal's: away from the chunk edges a chunk computes what the whole
  signal would, up to the GroupNorm statistics, which are the chunk's own.
- :func:`wavenet_chunks` (seed 000's WaveNet path): chunks of at least
  ``max(4 receptive fields, min_chunk_s)`` with fractional ``overlap`` (0.1), faded and
  averaged. Each chunk also gets half a receptive field of context, so every kept output
  sample sees its whole receptive field: chunked output equals whole-signal output (the
  seed's fades then only blend two equal estimates).
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from torch import nn


def unet_ola(
    net: nn.Module,
    wave: np.ndarray,
    chunk_s: float,
    context_s: float,
    sr: int,
    *,
    fade_s: float | None = None,
    batch_size: int = 4,
) -> np.ndarray:
    """Hop-aligned overlap-add of ``net`` over ``wave (C, T)`` (seed 000's U-Net inference).

    Args:
        net: ``(B, C, L) -> (B, C, L)``; its ``alignment`` attribute (samples, default 1)
            is the grid chunk starts, chunk length and context are rounded up to.
        wave: float32 ``(C, T)`` at ``sr``.
        chunk_s: chunk core length (rounded up to the alignment grid).
        context_s: extra audio processed on each side of a core, then cropped.
        sr: sample rate of ``wave`` (the network's rate).
        fade_s: cross-fade between neighbouring cores, centred on their border; default
            ``context_s`` (half a context of margin stays beyond each fade), at most
            ``2 · context_s`` and the core length.
        batch_size: chunks per forward pass.

    Returns:
        float32 ``(C, T)``.
    """
    align = int(getattr(net, "alignment", 1))
    core = _round_up(max(1, round(chunk_s * sr)), align)
    context = _round_up(round(context_s * sr), align)
    fade = round((context_s if fade_s is None else fade_s) * sr)
    fade = min(fade, 2 * context, core) // 2 * 2  # even: centred on the border
    return _overlap_add(
        net,
        wave,
        first=-fade // 2,
        step=core,
        overlap=fade,
        context=context - fade // 2,  # the processed window starts on the grid: k·core - context
        batch_size=batch_size,
    )


def wavenet_chunks(
    net: nn.Module,
    wave: np.ndarray,
    sr: int,
    min_chunk_s: float = 2.0,
    overlap: float = 0.1,
    *,
    batch_size: int = 4,
) -> np.ndarray:
    """Chunked inference of a WaveNet over ``wave (C, T)`` (seed 000's WaveNet inference).

    Args:
        net: ``(B, C, L) -> (B, C, L)`` with a ``receptive_field`` attribute (samples).
        wave: float32 ``(C, T)`` at ``sr``.
        sr: sample rate of ``wave`` (the network's rate).
        min_chunk_s: chunks are at least ``max(4 receptive fields, min_chunk_s)`` long.
        overlap: fraction of a chunk shared with the next one (faded, averaged).
        batch_size: chunks per forward pass.

    Returns:
        float32 ``(C, T)``.
    """
    if not 0.0 <= overlap <= 0.5:
        raise ValueError(f"overlap must be a fraction in [0, 0.5], got {overlap}")
    rf = int(cast(int, net.receptive_field))
    chunk = min(max(4 * rf, round(min_chunk_s * sr)), wave.shape[-1])
    n_overlap = round(overlap * chunk)
    return _overlap_add(
        net,
        wave,
        first=0,
        step=max(1, chunk - n_overlap),
        overlap=n_overlap,
        context=rf // 2,  # every kept sample sees its whole receptive field
        batch_size=batch_size,
    )


# ------------------------------------------------------------------------------- helpers


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _ramp(n: int) -> np.ndarray:
    """Hann half-window rising over ``n`` samples (``sin²``); ``1 - ramp`` is its mirror."""
    return (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


def _window(length: int, overlap: int, rise: bool, fall: bool) -> np.ndarray:
    """Weights ``(length,)`` of one region: Hann ramps over its first / last ``overlap``
    samples where it meets a neighbour, one elsewhere."""
    w = np.ones(length, np.float32)
    if overlap:
        if rise:
            w[:overlap] = _ramp(overlap)
        if fall:
            w[-overlap:] = _ramp(overlap)[::-1]
    return w


def _overlap_add(
    net: nn.Module,
    wave: np.ndarray,
    *,
    first: int,
    step: int,
    overlap: int,
    context: int,
    batch_size: int,
) -> np.ndarray:
    """Regions ``[first + k·step, first + k·step + step + overlap)`` covering ``[0, T)``,
    each processed with ``context`` samples either side (zeros beyond the signal), cropped,
    windowed, overlap-added and divided by the summed windows. A signal that fits in one
    region is processed whole, without padding."""
    assert wave.ndim == 2 and first <= 0 and step > 0, (wave.shape, first, step)
    assert 0 <= overlap <= step and context >= 0, (overlap, step, context)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    channels, total = wave.shape
    n = max(1, math.ceil((total - overlap - first) / step))
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    if n == 1:  # one chunk: the whole signal, without padding
        with torch.inference_mode():
            out = net(torch.from_numpy(np.ascontiguousarray(wave))[None].to(device))
        return out[0].float().cpu().numpy().astype(np.float32, copy=False)
    region = step + overlap
    length = region + 2 * context  # every chunk the same length: batched
    left = context - first  # samples of padding before the signal
    span = (n - 1) * step + length
    padded = np.zeros((channels, span), np.float32)  # (C, span)
    padded[:, left : left + total] = wave
    acc = np.zeros((channels, span), np.float64)  # (C, span): sum of w · y
    wsum = np.zeros(span, np.float64)  # (span,): sum of w
    with torch.inference_mode():
        for b0 in range(0, n, batch_size):
            ks = range(b0, min(n, b0 + batch_size))
            batch = np.stack([padded[:, k * step : k * step + length] for k in ks])
            out = net(torch.from_numpy(batch).to(device)).float().cpu().numpy()
            assert out.shape == batch.shape, (out.shape, batch.shape)  # (b, C, length)
            for k, y in zip(ks, out, strict=True):
                w = _window(region, overlap, rise=k > 0, fall=k < n - 1)  # (region,)
                at = k * step + context  # the region's first sample in padded coordinates
                acc[:, at : at + region] += y[:, context : context + region] * w
                wsum[at : at + region] += w
    core = slice(left, left + total)
    assert wsum[core].min() > 0.0
    return (acc[:, core] / wsum[core]).astype(np.float32)
