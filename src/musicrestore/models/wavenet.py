"""The time-domain WaveNet denoiser of seed 000 §3 "Additional baseline"
(docs/method.md#wavenet).

The seed names the model (mono, checkpoint-driven, sizes small/medium/large) but not its
layers; they follow the speech-denoising WaveNet of Rethage et al. (2018), itself the
WaveNet of van den Oord et al. (2016) made non-autoregressive:

- a 1×1 input convolution to ``residual_channels``;
- ``stacks`` repetitions of ``layers_per_stack`` residual layers with dilations
  1, 2, ..., 2^(layers_per_stack - 1); each layer is a **non-causal** dilated convolution
  (``kernel_size`` taps centred on the output sample) to ``2 · residual_channels``, a gated
  activation ``tanh(a) · sigmoid(g)``, and one 1×1 convolution split into the residual
  (added to the layer's input) and the skip contribution (``skip_channels``);
- the sum of all skips through ReLU → 1×1 → ReLU → 1×1 to one channel.

Receptive field: ``(kernel_size - 1) · stacks · (2^layers_per_stack - 1) + 1`` samples
(:attr:`WaveNetDenoiser.receptive_field`); 6139 samples (384 ms at 16 kHz) at Rethage's
size, ``large`` here.

**Residual output.** The network predicts a correction that is added to its input
(``y = x + f(x)``), and the last convolution starts at zero, so an untrained network is the
identity. Restoration inputs are already close to the target (the degradations are mild
next to the music), so learning the artifact instead of the whole waveform starts training
at the ``identity`` baseline rather than at silence, and what the network cannot model
passes through unchanged instead of being smeared. Rethage et al. predict the clean signal
directly (with an energy-conserving loss that amounts to the same split of input into
signal and noise).

Departures from Rethage et al.: no speaker conditioning, 1×1 instead of 3×1 output
convolutions (as wide as the skips rather than 2048/256), and the output spans the whole
input (``same`` zero padding) rather than a target field; long inputs are chunked by
:func:`musicrestore.models.inference.wavenet_chunks`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class _ResidualLayer(nn.Module):
    """Dilated non-causal convolution, gated activation, residual and skip outputs."""

    def __init__(
        self, residual_channels: int, skip_channels: int, kernel_size: int, dilation: int
    ) -> None:
        super().__init__()
        self.residual_channels = residual_channels
        self.dilated = nn.Conv1d(
            residual_channels,
            2 * residual_channels,
            kernel_size,
            dilation=dilation,
            padding=dilation * (kernel_size - 1) // 2,  # centred: the output keeps T
        )
        self.out = nn.Conv1d(residual_channels, residual_channels + skip_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, R, T)`` -> (next layer's input ``(B, R, T)``, skip ``(B, S, T)``)."""
        a, g = self.dilated(x).chunk(2, dim=1)  # (B, R, T) each
        res, skip = self.out(torch.tanh(a) * torch.sigmoid(g)).split(
            [self.residual_channels, self.out.out_channels - self.residual_channels], dim=1
        )  # (B, R, T), (B, S, T)
        return x + res, skip


class WaveNetDenoiser(nn.Module):
    """Non-causal WaveNet denoiser: ``(B, C, T)`` in, ``(B, C, T)`` out.

    The model is mono; a multi-channel input is denoised channel by channel (channels are
    folded into the batch). The pipeline downmixes to mono first, as the seed does.

    Args (defaults = ``SIZES["small"]``):
        residual_channels: channels of the residual path.
        skip_channels: channels of the skip sum and of the output head.
        layers_per_stack: layers per stack; dilations 1 .. 2^(layers_per_stack - 1).
        stacks: how many times the dilation cycle repeats.
        kernel_size: taps of each dilated convolution (odd: centred, non-causal).
    """

    #: Named configurations (seed 000: "model sizes small/medium/large"). ``small`` trains
    #: in minutes on two CPU cores at 16 kHz and runs several times faster than real time
    #: on one thread; ``large`` is Rethage et al.'s 3 × 10 layers of 128 channels.
    SIZES: ClassVar[dict[str, dict[str, Any]]] = {
        "small": {
            "residual_channels": 16,
            "skip_channels": 16,
            "layers_per_stack": 8,
            "stacks": 2,
            "kernel_size": 3,
        },  # receptive field 1021 samples (64 ms at 16 kHz)
        "medium": {
            "residual_channels": 64,
            "skip_channels": 64,
            "layers_per_stack": 10,
            "stacks": 2,
            "kernel_size": 3,
        },  # 4093 samples (256 ms at 16 kHz)
        "large": {
            "residual_channels": 128,
            "skip_channels": 128,
            "layers_per_stack": 10,
            "stacks": 3,
            "kernel_size": 3,
        },  # 6139 samples (384 ms at 16 kHz), Rethage et al. 2018
    }

    #: The model is mono (see the class docstring).
    channels: ClassVar[int] = 1

    def __init__(
        self,
        residual_channels: int = 16,  # width of the residual path
        skip_channels: int = 16,  # width of the skip sum and the output head
        layers_per_stack: int = 8,  # dilations 1, 2, ..., 2^(layers_per_stack - 1)
        stacks: int = 2,  # repetitions of the dilation cycle
        kernel_size: int = 3,  # taps per dilated convolution, centred (odd)
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (non-causal, centred), got {kernel_size}")
        if min(residual_channels, skip_channels, layers_per_stack, stacks) < 1:
            raise ValueError("channels, layers_per_stack and stacks must be positive")
        self.kernel_size, self.layers_per_stack, self.stacks = kernel_size, layers_per_stack, stacks
        self.input = nn.Conv1d(1, residual_channels, 1)
        self.layers = nn.ModuleList(
            _ResidualLayer(residual_channels, skip_channels, kernel_size, 2**i)
            for _ in range(stacks)
            for i in range(layers_per_stack)
        )
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(skip_channels, skip_channels, 1),
            nn.ReLU(),
            nn.Conv1d(skip_channels, 1, 1),
        )
        last = self.head[-1]
        assert isinstance(last, nn.Conv1d) and last.bias is not None
        nn.init.zeros_(last.weight)  # the untrained network is the identity (residual output)
        nn.init.zeros_(last.bias)

    @property
    def receptive_field(self) -> int:
        """Input samples that one output sample depends on (centred on it)."""
        return (self.kernel_size - 1) * self.stacks * (2**self.layers_per_stack - 1) + 1

    def residual(self, wave: torch.Tensor) -> torch.Tensor:
        """The predicted correction: ``(B, 1, T)`` -> ``(B, 1, T)``."""
        assert wave.ndim == 3 and wave.shape[1] == 1, wave.shape
        x = self.input(wave)  # (B, R, T)
        skips: torch.Tensor | float = 0.0
        for layer in self.layers:
            x, skip = layer(x)  # (B, R, T), (B, S, T)
            skips = skips + skip
        assert isinstance(skips, torch.Tensor)
        return self.head(skips)  # (B, 1, T)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B, C, T)``: input plus the predicted correction, per channel."""
        b, c, t = wave.shape
        x = wave.reshape(b * c, 1, t)  # (B*C, 1, T): channels denoised independently
        return (x + self.residual(x)).reshape(b, c, t)
