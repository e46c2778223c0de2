"""Seamless long-signal inference for the learned networks (seed 000 §3, "Seamless
inference" and "Overlap inference"; docs/method.md#unet-mask, docs/method.md#wavenet).

Both functions only choose the regions; the work is done by the package's one chunked
engine, :func:`musicrestore.core.chunks.run_chunks`: it cuts a ``(C, T)`` wave into
equal-length regions that overlap their neighbours, runs each region **with extra context
on both sides** (zeros beyond the signal, cropped afterwards), weights each cropped region
with complementary Hann fades (``sin²`` up, ``cos²`` down) and divides the overlap-added
result by the overlap-added weights (``normalise=True``, energy normalisation: no gain
bump wherever the weights' sum deviates from one by rounding). Here the regions are run in
batches under :func:`torch.inference_mode`; the network should be in eval mode. A signal
that fits in one region is processed whole, without padding.

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

from typing import cast

import numpy as np
import torch
from torch import nn

from ..core.chunks import plan_chunks, run_chunks


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
    # regions core + fade long, one every core, the first fade centred on the first border
    chunks = plan_chunks(wave.shape[-1], core + fade, fade, first=-(fade // 2), even=False)
    # the processed window of region k starts on the grid: k·core - context
    return _run(net, wave, chunks, context - fade // 2, batch_size)


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
    chunk = max(1, min(max(4 * rf, round(min_chunk_s * sr)), wave.shape[-1]))
    chunks = plan_chunks(wave.shape[-1], chunk, round(overlap * chunk), even=False)
    return _run(net, wave, chunks, rf // 2, batch_size)  # each kept sample sees its whole field


# ------------------------------------------------------------------------------- helpers


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _run(
    net: nn.Module,
    wave: np.ndarray,
    chunks: list[tuple[int, int]],
    context: int,
    batch_size: int,
) -> np.ndarray:
    """``net`` over ``wave (C, T)`` through :func:`musicrestore.core.chunks.run_chunks`:
    equal-length windows (zeros beyond the signal) in batches under
    :func:`torch.inference_mode`, seed 000's energy-normalised overlap-add."""
    assert wave.ndim == 2, wave.shape
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")

    def forward(windows: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            batch = torch.from_numpy(np.stack(windows)).to(device)  # (b, C, L)
            return list(net(batch).float().cpu().numpy())  # b × (C, L)

    out = np.empty(wave.shape, np.float32)
    pos = 0

    def write(block: np.ndarray) -> None:
        nonlocal pos
        out[:, pos : pos + block.shape[1]] = block
        pos += block.shape[1]

    run_chunks(
        forward,
        lambda a, b: wave[:, a:b],
        write,
        wave.shape[1],
        chunks,
        context,
        pad=True,
        normalise=True,
        batch_size=batch_size,
    )
    return out
