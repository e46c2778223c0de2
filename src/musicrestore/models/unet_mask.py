"""The 2D U-Net STFT mask of seed 000 §3 "Contribution" (docs/method.md#unet-mask).

Mono STFT (``n_fft`` 1024, hop 256, Hann window) of the waveform ``y``; a 2D U-Net
(Ronneberger et al. 2015) over the ``(frequency, time)`` plane of ``|Y|`` predicts a mask
``M`` in ``[0, 1]`` (sigmoid head); the output is ``ISTFT(M · |Y|, ∠Y)``. Architecture as in
the seed: four encoder levels with 32 base channels doubling per level (32, 64, 128, 256),
GELU activations, GroupNorm, a symmetric decoder with transposed-convolution upsampling and
skip concatenation.

What the seed leaves open, filled here:

- **Input compression.** The U-Net sees ``log(1 + |Y|)``, not ``|Y|``: music magnitudes
  span five orders of magnitude and the log keeps quiet partials visible to the first
  convolutions. The mask still multiplies the linear magnitude.
- **Phase.** ``M · |Y| · exp(i ∠Y)`` is computed as ``M · Y`` (the same number, without the
  angle of zero bins).
- **Levels.** Each encoder level is two 3×3 convolutions (GroupNorm, GELU); levels are
  joined by 2×2 max-pooling, so the deepest level (256 channels) is the bottleneck at 1/8
  of the resolution, and the decoder has ``levels - 1`` transposed-convolution steps.
- **Shapes.** The frequency axis (513 bins) and the frame count are zero-padded to a
  multiple of ``2 ** (levels - 1)`` and the mask is cropped back; the waveform is padded to
  a multiple of ``hop`` and the output cropped to the input length.
- **Channels.** ``channels=1`` is the seed's mono path: a stereo input is downmixed (mean)
  and the mono output duplicated. ``channels=2`` is the seed's future work (stereo-aware
  U-Net): both channels' magnitudes enter as two input planes and get one mask each.

Chunked inference over long signals is :func:`musicrestore.models.inference.unet_ola`;
:attr:`UNetMask.alignment` is the shift under which the network is exactly shift-equivariant
(hop × pooling factor), the grid chunk starts must sit on.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import match_channels


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with ``groups`` groups, fewer when ``channels`` is not divisible by it."""
    g = max(1, min(groups, channels))
    while channels % g:
        g -= 1
    return nn.GroupNorm(g, channels)


class _ConvBlock(nn.Module):
    """Two 3×3 convolutions, each followed by GroupNorm and GELU (a U-Net level)."""

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),  # GroupNorm shifts
            _norm(out_channels, groups),
            nn.GELU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            _norm(out_channels, groups),
            nn.GELU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, C_in, F, N) -> (B, C_out, F, N)


class UNetMask(nn.Module):
    """Seed 000's 2D U-Net STFT mask: ``(B, C, T)`` waveform in, same shape out.

    Args:
        n_fft: STFT size (Hann window of the same length).
        hop: STFT hop; ``n_fft / hop = 4`` gives exact overlap-add reconstruction.
        base_channels: channels of the first level; level ``i`` has ``base · 2^i``.
        levels: encoder levels (the last is the bottleneck); the input is pooled
            ``levels - 1`` times.
        channels: 1 = mono model (stereo downmixed, output duplicated); 2 = stereo model.
        groups: GroupNorm groups (fewer where a level's channels are not divisible).
        mask: ``magnitude`` = seed 000's real mask in ``[0, 1]`` on ``|Y|`` (sigmoid head);
            ``complex`` = a complex ratio mask ``M = 1 + tanh(a) + i·tanh(b)`` that starts
            as the identity (zero-initialised head), can raise a magnitude (up to 2x, for
            clipped peaks) and turn a phase, and sees the phase: the U-Net's input planes
            are ``log(1 + |Y|)`` and that magnitude times ``cos ∠Y`` and ``sin ∠Y``
            (docs/method.md#unet-mask). ``deep`` = a deep filter (DeepFilterNet, Schröter
            et al. 2022): per bin, ``taps`` complex coefficients over the current and past
            frames, ``X(n) = Σ_k H_k(n) · Y(n - k)``, with ``H_0 = 1 + tanh(a_0) + i·tanh(b_0)``
            and ``H_k = tanh(a_k) + i·tanh(b_k)``, also the identity at the start. One frame
            cannot undo an echo that arrives frames later (the chain's early reflections
            reach 120 ms, 15 hops); a filter over past frames can subtract it.
        taps: frames of the ``deep`` filter (the current one and ``taps - 1`` past ones).
        guide: ``"preclean"`` adds ``log(1 + |P|)``, the magnitude of the input's DSP
            pre-clean (seed 000's declick / de-quantise / minimum-statistics denoise,
            :func:`musicrestore.dsp.preclean.preclean`, default settings), as one more
            input plane per channel; the mask still applies to the input's own spectrum.
            The U-Net then learns where to trust the DSP estimate instead of averaging with
            it (docs/method.md#unet-mask). The pre-clean is a fixed NumPy front end computed
            inside :meth:`forward` without gradients, on the CPU, at ``sr``.
        sr: the model's sample rate; needed (and only used) by ``guide``.
    """

    window: torch.Tensor  # (n_fft,) Hann window, a buffer (moves with the module)

    #: Named configurations: ``large`` is seed 000's, ``small`` trains on a CPU in minutes.
    SIZES: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {"base_channels": 8, "levels": 4, "groups": 4},
        "large": {"base_channels": 32, "levels": 4, "groups": 8},
    }

    #: ``mask`` -> (U-Net input planes, mask planes) per audio channel.
    MASKS: ClassVar[dict[str, tuple[int, int]]] = {
        "magnitude": (1, 1),
        "complex": (3, 2),
        "deep": (3, 2),  # times taps
    }

    def __init__(
        self,
        n_fft: int = 1024,  # seed 000: STFT size
        hop: int = 256,  # seed 000: STFT hop (n_fft / 4)
        base_channels: int = 32,  # seed 000: 32 channels at the first level, doubling by depth
        levels: int = 4,  # seed 000: four encoder levels (32, 64, 128, 256 channels)
        channels: int = 1,  # 1 = seed 000's mono path; 2 = stereo-aware (its future work)
        groups: int = 8,  # GroupNorm groups per normalisation layer
        mask: str = "magnitude",  # seed 000: a magnitude mask; "complex", "deep": see above
        taps: int = 16,  # "deep" only: frames of the filter
        guide: str | None = None,  # "preclean": the input's pre-clean as extra input planes
        sr: int | None = None,  # the model's rate, for the guide
    ) -> None:
        super().__init__()
        if n_fft % hop or n_fft // hop < 2:
            raise ValueError(f"n_fft {n_fft} must be a multiple (>= 2x) of hop {hop}")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        if levels < 1 or base_channels < 1:
            raise ValueError(
                f"levels and base_channels must be positive, got {levels}, {base_channels}"
            )
        if mask not in self.MASKS:
            raise ValueError(f"mask must be one of {', '.join(self.MASKS)}, got {mask!r}")
        self.n_fft, self.hop, self.channels, self.levels = n_fft, hop, channels, levels
        if taps < 1:
            raise ValueError(f"taps must be positive, got {taps}")
        if guide not in (None, "preclean") or (guide and not sr):
            raise ValueError(f"guide must be null or 'preclean' (with sr), got {guide!r}, sr {sr}")
        self.guide, self.sr = guide, sr
        self.mask_kind = mask
        self.taps = taps if mask == "deep" else 1
        planes = self.MASKS[mask]  # input planes and mask planes per audio channel
        planes = (planes[0] + (guide is not None), planes[1] * self.taps)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        widths = [base_channels * 2**i for i in range(levels)]  # e.g. 32, 64, 128, 256
        self.encoder = nn.ModuleList(
            _ConvBlock(c_in, c_out, groups)
            for c_in, c_out in zip([planes[0] * channels, *widths[:-1]], widths, strict=True)
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(levels - 1)
        )
        self.decoder = nn.ModuleList(
            _ConvBlock(2 * widths[i], widths[i], groups) for i in range(levels - 1)
        )
        self.head = nn.Conv2d(widths[0], planes[1] * channels, 1)  # mask logits per channel
        if mask != "magnitude":  # identity mask at the start: the model learns a correction
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        # Channels-last weights make the convolutions pick channels-last kernels (about 2x
        # faster on CPU at these widths); values and state dicts are unchanged.
        for p in self.parameters():
            if p.ndim == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)

    @property
    def alignment(self) -> int:
        """Samples by which a shift of the input shifts the output exactly (away from the
        edges): one hop per frame times the pooling factor ``2 ** (levels - 1)``."""
        return self.hop * 2 ** (self.levels - 1)

    # ------------------------------------------------------------------------------ STFT

    def stft(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` with ``T`` a multiple of ``hop`` -> complex ``(B, C, F, N)``,
        ``F = n_fft/2 + 1``, ``N = T/hop + 1`` (centred frames, zero padding at the ends)."""
        b, c, t = wave.shape
        assert t % self.hop == 0, (t, self.hop)
        spec = torch.stft(
            wave.reshape(b * c, t),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (B*C, F, N)
        return spec.reshape(b, c, *spec.shape[-2:])

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex ``(B, C, F, N)`` -> ``(B, C, length)``, the inverse of :meth:`stft`."""
        b, c, f, n = spec.shape
        assert f == self.n_fft // 2 + 1, (f, self.n_fft)
        wave = torch.istft(
            spec.reshape(b * c, f, n),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            length=length,
        )  # (B*C, length)
        return wave.reshape(b, c, length)

    # ------------------------------------------------------------------------------ mask

    def mask(self, spec: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """The U-Net: complex ``(B, channels, F, N)`` -> the mask, same shape: real in
        ``[0, 1]`` (``magnitude``) or complex (``complex``). ``guide``: the complex spectrum
        of the pre-cleaned input, same shape, for a model built with ``guide``."""
        b, c, f, n = spec.shape
        assert c == self.channels, (c, self.channels)
        m = 2 ** (self.levels - 1)
        pad_f, pad_n = -f % m, -n % m
        mag = spec.abs()
        x = torch.log1p(mag)  # (B, C, F, N)
        if self.mask_kind != "magnitude":
            unit = spec / mag.clamp_min(1e-8)  # e^{i∠Y}; 0-magnitude bins give 0
            x = torch.cat([x, x * unit.real, x * unit.imag], dim=1)  # (B, 3C, F, N)
        if self.guide is not None:
            assert guide is not None and guide.shape == spec.shape, "the guide's spectrum"
            x = torch.cat([x, torch.log1p(guide.abs())], dim=1)  # (B, planes, F, N)
        x = F.pad(x, (0, pad_n, 0, pad_f))  # (B, planes, F', N'), multiples of m
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.encoder):
            if i:
                x = self.pool(x)  # (B, w_{i-1}, F'/2^i, N'/2^i)
            x = block(x)  # (B, w_i, F'/2^i, N'/2^i)
            skips.append(x)
        for i in reversed(range(self.levels - 1)):
            x = self.up[i](x)  # (B, w_i, F'/2^i, N'/2^i)
            x = self.decoder[i](torch.cat([x, skips[i]], dim=1))  # (B, w_i, ...)
        logits = self.head(x)[..., :f, :n]  # (B, C·mask planes, F, N)
        if self.mask_kind == "deep":  # (B, C, 2, taps, F, N): re/im of every tap
            a, b_ = torch.tanh(logits).reshape(b, c, 2, self.taps, f, n).unbind(2)
            return torch.complex(a + F.one_hot(torch.tensor(0), self.taps)[:, None, None], b_)
        if self.mask_kind == "complex":
            a, b_ = torch.tanh(logits).chunk(2, dim=1)  # (B, C, F, N) each
            return torch.complex(1.0 + a, b_)
        return torch.sigmoid(logits)

    def apply_mask(self, mask: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """``mask · spec``; a ``deep`` mask ``(B, C, taps, F, N)`` filters over frames:
        ``Σ_k mask[:, :, k] · spec`` delayed by ``k`` frames (zeros before the first)."""
        if self.mask_kind != "deep":
            return mask * spec
        n = spec.shape[-1]
        out = mask[:, :, 0] * spec
        for k in range(1, min(self.taps, n)):
            out = out + mask[:, :, k] * F.pad(spec[..., : n - k], (k, 0))
        return out

    def preclean(self, wave: torch.Tensor) -> torch.Tensor:
        """The guide's waveform: each ``(channels, T)`` item pre-cleaned in NumPy at ``sr``
        (no gradient flows through it; it is an input, like the degraded audio)."""
        from ..dsp.preclean import preclean

        assert self.sr is not None
        items = wave.detach().float().cpu().numpy()
        out = np.stack([preclean(np.ascontiguousarray(item), int(self.sr)) for item in items])
        return torch.from_numpy(out).to(device=wave.device, dtype=wave.dtype)

    # ---------------------------------------------------------------------------- forward

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` waveform (C = 1 or 2, any T) -> restored ``(B, C, T)``."""
        b, c, t = wave.shape
        x = match_channels(wave, self.channels)  # (B, channels, T)
        x = F.pad(x, (0, -t % self.hop))  # (B, channels, T'), T' a multiple of hop
        spec = self.stft(x)  # (B, channels, F, N) complex
        guide = self.stft(self.preclean(x)) if self.guide is not None else None
        mask = self.mask(spec, guide)
        out = self.istft(self.apply_mask(mask, spec), x.shape[-1])  # (B, channels, T')
        return match_channels(out[..., :t], c)  # (B, C, T)
