"""The U-Former of seed 004 §4, the music source restoration baseline
(docs/method.md#uformer).

The seed fixes: a U-Net with RoFormer blocks (Su et al. 2021) in its bottleneck; four
convolution blocks on the way down and four on the way up with channels [16, 64, 256, 256];
6 RoFormer layers of 8 attention heads; complex STFT in and out with a 2048-sample FFT and
a 441-sample hop (10 ms at 44.1 kHz). One model per target group: it maps the degraded
mixture to the target stem. What the seed leaves open (its Figure 5 is not in the text),
filled here:

- **Input.** Stereo ``(B, 2, T)``; the Hann-windowed STFT (``normalized``, so magnitudes
  stay near 1 for full-scale music) of both channels as four real planes (real and
  imaginary part of left and right) over ``(frequency, frame)``. The Nyquist bin is left out
  of the U-Net (1024 bins halve four times) and passed through; frames are zero-padded to a
  multiple of 16 and cropped back. A mono input is duplicated and the output averaged back.
- **Convolution blocks.** Level ``i`` is two 3×3 convolutions to ``channels[i]``, each
  followed by a LayerNorm over the channels at every time-frequency point and GELU, then a
  2×2 stride-2 convolution that halves frequency and time. The norm is per point (not
  GroupNorm's statistics over the whole chunk, nor BatchNorm's over the batch), so a chunk
  of a long signal computes what the whole signal would, except near its edges and for the
  attention context. The decoder mirrors it: a 2×2 stride-2 transposed convolution, then
  the level's block on the concatenation with the encoder's skip.
- **Bottleneck.** RoFormer blocks over **time, per frequency row**: the ``(B, C, F/16,
  N/16)`` map becomes ``B·F/16`` sequences of ``N/16`` vectors of ``C = channels[-1]``
  features (256 in the paper config: 8 heads × 32). Each block is pre-norm (RMSNorm)
  multi-head self-attention (``F.scaled_dot_product_attention``) with rotary position
  embeddings from ``rotary_embedding_torch.RotaryEmbedding`` (one table shared by the
  blocks, as in BS-RoFormer), then a GELU feed-forward of 4× width; both residual.
  Rotary embeddings make the attention depend on relative positions only, so a shift of
  the input by whole bottleneck frames shifts the output (:attr:`UFormer.alignment`).
  Frames that are only padding are masked out of the attention keys.
- **Output.** The complex spectrum of the target stem: a 1×1 convolution over the
  decoder's features and the four input planes, initialised to zero, gives four planes
  ``M`` (real and imaginary part per channel), applied to the mixture's spectrum ``X`` as a
  complex ratio mask ``(1 + M)·X`` (``output="mask"``, the default, as BS-RoFormer's
  mask estimation) or added to it, ``X + M`` (``output="add"``). An untrained network is
  therefore the identity (the ``identity`` baseline of docs/method.md#baseline), as the
  WaveNet of this package is. ISTFT back to ``(B, 2, T)`` at 44.1 kHz. The Nyquist bin
  passes through unchanged.

Long signals: :func:`musicrestore.models.inference.unet_ola` with 10-s chunks, context and
cross-fades on the :attr:`UFormer.alignment` grid (the ``uformer`` variant).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from rotary_embedding_torch import RotaryEmbedding
from torch import nn

from .layers import match_channels


class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis of ``(B, C, H, W)`` at every point ``(h, w)``, with a
    gain and bias per channel. Computed in place along the channel axis (about 3x faster
    on a CPU than ``nn.LayerNorm`` on a permuted view)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()  # statistics in float32 under mixed precision (a no-op in float32)
        centred = xf - xf.mean(dim=1, keepdim=True)  # (B, C, H, W)
        scale = torch.rsqrt(centred.pow(2).mean(dim=1, keepdim=True) + self.eps)  # (B, 1, H, W)
        out = centred * scale * self.weight[:, None, None] + self.bias[:, None, None]
        return out.to(x.dtype)


class ConvBlock(nn.Module):
    """Two 3×3 convolutions, each followed by :class:`ChannelNorm` and GELU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            ChannelNorm(out_channels),
            nn.GELU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
            ChannelNorm(out_channels),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, C_in, H, W) -> (B, C_out, H, W)


class RoFormerBlock(nn.Module):
    """Pre-norm self-attention with rotary position embeddings, then a feed-forward layer.

    Args:
        dim: feature size of the sequence.
        heads, dim_head: attention heads and their size (``heads · dim_head`` need not be
            ``dim``: projections map in and out).
        rotary: the rotary table (``RotaryEmbedding(dim_head)``), shared by the blocks.
        ff_mult: width of the feed-forward layer in multiples of ``dim``.
        dropout: attention and feed-forward dropout (training only).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        rotary: RotaryEmbedding,
        ff_mult: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.heads, self.dim_head, self.dropout = heads, dim_head, dropout
        self.rotary = [rotary]  # a plain list: the owner registers the shared module once
        self.attn_norm = nn.RMSNorm(dim)
        self.qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.proj = nn.Linear(heads * dim_head, dim, bias=False)
        self.ff = nn.Sequential(
            nn.RMSNorm(dim),
            nn.Linear(dim, ff_mult * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * dim, dim),
        )

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (S, L, dim)`` -> ``(S, L, dim)``; ``key_mask (L,)`` bool, False = padding."""
        s, length, _ = x.shape
        qkv = self.qkv(self.attn_norm(x))  # (S, L, 3·H·Dh)
        q, k, v = qkv.view(s, length, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)
        rotary = self.rotary[0]  # q, k: (S, H, L, Dh); rotated in float32 (exact positions)
        q = rotary.rotate_queries_or_keys(q.float()).to(v.dtype)
        k = rotary.rotate_queries_or_keys(k.float()).to(v.dtype)
        mask = None if key_mask is None else key_mask[None, None, None, :]  # (1, 1, 1, L)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )  # (S, H, L, Dh)
        x = x + self.proj(a.transpose(1, 2).reshape(s, length, self.heads * self.dim_head))
        return x + self.ff(x)  # (S, L, dim)


class UFormer(nn.Module):
    """Seed 004's U-Former: degraded mixture ``(B, 2, T)`` -> target stem ``(B, 2, T)``.

    Args:
        n_fft: STFT size (Hann window of the same length); ``n_fft / 2`` bins must halve
            ``len(channels)`` times.
        hop: STFT hop (441 = 10 ms at 44.1 kHz).
        channels: convolution channels per level; the last is the RoFormer's width.
        roformer_layers: RoFormer blocks in the bottleneck (6 in the paper).
        heads: attention heads per block (8 in the paper).
        dim_head: size of each head (``channels[-1] / heads`` by default: 32 in the paper).
        ff_mult: feed-forward width in multiples of ``channels[-1]``.
        dropout: attention and feed-forward dropout.
        audio_channels: 2 (stereo, as RawStems) or 1.
        output: how the head's four planes become the target's complex spectrum ``S``
            from the mixture's ``X``: ``"mask"`` (default), a complex ratio mask
            ``S = (1 + M)·X`` per bin and channel (as BS-RoFormer predicts; learns "keep
            this bin, drop that one" in a few hundred CPU steps), or ``"add"``, a
            correction ``S = X + D``. Either way an untrained network is the identity.
    """

    window: torch.Tensor  # (n_fft,) Hann window, a buffer (moves with the module)

    #: Named configurations: ``large`` is seed 004's, ``small`` trains on a CPU in minutes.
    SIZES: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {"channels": [4, 8, 16, 32], "roformer_layers": 1, "heads": 2, "dim_head": 16},
        "large": {"channels": [16, 64, 256, 256], "roformer_layers": 6, "heads": 8, "dim_head": 32},
    }

    def __init__(
        self,
        n_fft: int = 2048,  # seed 004: 2048-sample FFT
        hop: int = 441,  # seed 004: 441-sample hop
        channels: list[int] | None = None,  # seed 004: [16, 64, 256, 256]
        roformer_layers: int = 6,  # seed 004: 6 RoFormer layers
        heads: int = 8,  # seed 004: 8 attention heads each
        dim_head: int | None = None,  # default channels[-1] // heads
        ff_mult: int = 4,
        dropout: float = 0.0,
        audio_channels: int = 2,
        output: str = "mask",
    ) -> None:
        super().__init__()
        if output not in ("mask", "add"):
            raise ValueError(f"output must be 'mask' or 'add', got {output!r}")
        self.output = output
        channels = list(channels if channels is not None else [16, 64, 256, 256])
        levels = len(channels)
        if levels < 1 or min(channels) < 1:
            raise ValueError(f"channels must be a non-empty list of positive widths: {channels}")
        if (n_fft // 2) % 2**levels or hop < 1 or hop > n_fft:
            raise ValueError(
                f"n_fft/2 = {n_fft // 2} must be a multiple of 2^{levels} and 1 <= hop <= n_fft"
            )
        if audio_channels not in (1, 2) or roformer_layers < 0 or heads < 1:
            raise ValueError("need audio_channels 1 or 2, roformer_layers >= 0, heads >= 1")
        dim = channels[-1]
        dim_head = int(dim_head if dim_head is not None else max(1, dim // heads))
        if dim_head % 2:
            raise ValueError(f"dim_head must be even (rotary pairs), got {dim_head}")
        self.n_fft, self.hop, self.levels = n_fft, hop, levels
        self.audio_channels = audio_channels
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        planes = 2 * audio_channels  # real and imaginary part per audio channel
        self.encoder = nn.ModuleList(
            ConvBlock(c_in, c_out)
            for c_in, c_out in zip([planes, *channels[:-1]], channels, strict=True)
        )
        self.down = nn.ModuleList(nn.Conv2d(c, c, 2, stride=2) for c in channels)
        self.rotary = RotaryEmbedding(dim_head)
        self.roformer = nn.ModuleList(
            RoFormerBlock(dim, heads, dim_head, self.rotary, ff_mult, dropout)
            for _ in range(roformer_layers)
        )
        # up[i]: from level i + 1 (or the bottleneck, for the last level) to level i
        ups = [*channels[1:], channels[-1]]
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c, 2, stride=2) for c_in, c in zip(ups, channels, strict=True)
        )
        self.decoder = nn.ModuleList(ConvBlock(2 * c, c) for c in channels)
        self.head = nn.Conv2d(channels[0] + planes, planes, 1, bias=False)  # mask or correction
        nn.init.zeros_(self.head.weight)

    @property
    def alignment(self) -> int:
        """Samples by which a shift of the input shifts the output exactly (away from the
        edges): one hop per frame times the pooling factor ``2 ** levels``."""
        return self.hop * 2**self.levels

    # ------------------------------------------------------------------------------ STFT

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> complex ``(B, C, F, N)``, ``F = n_fft/2 + 1``, ``N = T/hop + 1``."""
        b, c, t = wave.shape
        spec = torch.stft(
            wave.reshape(b * c, t).float(),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            normalized=True,
            return_complex=True,
        )  # (B·C, F, N)
        return spec.reshape(b, c, *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex ``(B, C, F, N)`` -> ``(B, C, length)``, the inverse of :meth:`stft`."""
        b, c, f, n = spec.shape
        wave = torch.istft(
            spec.reshape(b * c, f, n),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            normalized=True,
            length=length,
        )  # (B·C, length)
        return wave.reshape(b, c, length)

    # ------------------------------------------------------------------------- network

    def bottleneck(self, x: torch.Tensor, valid: int) -> torch.Tensor:
        """RoFormer over time per frequency row: ``(B, C, F', N')`` -> same; frames
        ``>= valid`` are padding and masked out of the keys."""
        if not self.roformer:
            return x
        b, c, f, n = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(b * f, n, c)  # (B·F', N', C)
        mask = None
        if valid < n:
            mask = torch.arange(n, device=x.device) < valid  # (N',)
        for block in self.roformer:
            seq = block(seq, mask)
        return seq.reshape(b, f, n, c).permute(0, 3, 1, 2)  # (B, C, F', N')

    def unet(self, planes: torch.Tensor, frames: int) -> torch.Tensor:
        """``(B, 2·channels, F - 1, N')`` planes (``N'`` a multiple of ``2^levels``, of
        which ``frames`` are real) -> the spectrum's correction, same shape."""
        skips: list[torch.Tensor] = []
        x = planes
        for block, down in zip(self.encoder, self.down, strict=True):
            x = block(x)  # (B, c_i, F/2^i, N'/2^i)
            skips.append(x)
            x = down(x)  # (B, c_i, F/2^(i+1), N'/2^(i+1))
        valid = -(-frames // 2**self.levels)  # bottleneck frames that hold any real frame
        x = self.bottleneck(x, valid)  # (B, c_last, F/2^L, N'/2^L)
        for i in reversed(range(self.levels)):
            x = self.up[i](x)  # (B, c_i, F/2^i, N'/2^i)
            x = self.decoder[i](torch.cat([x, skips[i]], dim=1))  # (B, c_i, ...)
        return self.head(torch.cat([x, planes], dim=1))  # (B, 2·channels, F - 1, N')

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` mixture (C = 1 or 2, any T) -> restored target ``(B, C, T)``."""
        b, c, t = wave.shape
        x = match_channels(wave, self.audio_channels)  # (B, A, T)
        spec = self.stft(x)  # (B, A, F, N) complex
        f, n = spec.shape[-2:]
        pad_n = -n % 2**self.levels
        # (B, A, F-1, N', 2): real and imaginary parts, Nyquist left out, frames padded
        body = F.pad(torch.view_as_real(spec[:, :, : f - 1]), (0, 0, 0, pad_n))
        planes = body.permute(0, 1, 4, 2, 3).reshape(b, 2 * self.audio_channels, f - 1, n + pad_n)
        correction = self.unet(planes.to(wave.dtype), n)[..., :n].float()  # (B, 2A, F-1, N)
        correction = correction.reshape(b, self.audio_channels, 2, f - 1, n).permute(0, 1, 3, 4, 2)
        correction = F.pad(torch.view_as_complex(correction.contiguous()), (0, 0, 0, 1))
        target = spec * (1 + correction) if self.output == "mask" else spec + correction
        out = self.istft(target, t)  # (B, A, T), the Nyquist bin passed through
        return match_channels(out, c).to(wave.dtype)  # (B, C, T)
