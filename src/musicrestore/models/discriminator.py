"""HiFi-GAN's multi-scale discriminator (Kong et al. 2020, §2.3), the adversary of the
U-Former's second training stage (seed 004 §4.1, docs/method.md#uformer).

Three sub-discriminators look at the waveform at its own rate, at 1/2 and at 1/4: each
scale is the previous one average-pooled (kernel 4, stride 2, padding 2). A
sub-discriminator is a stack of grouped, strided 1-D convolutions with leaky ReLU (slope
0.1) and a last convolution to one channel of logits; every layer's output is a feature
map for the feature-matching loss. As in HiFi-GAN, the first scale uses spectral
normalisation and the others weight normalisation. Stereo (or any ``C``) input is judged
one channel at a time: ``(B, C, T)`` is folded to ``(B·C, 1, T)``.

HiFi-GAN's sizes are the defaults (channels 128 ... 1024, kernels 15/41/5, groups up to 16:
29.6 M parameters in all); ``width`` scales every hidden layer for a small CPU run (groups
shrink where a layer gets too narrow for them). On seed 004's 10-s stereo segments it costs
far more than the U-Former itself (one adversarial step at batch 1 takes about 5× the time
of an L1 step on a CPU). The discriminator is a training
aid only: it lives in the engine's ``last.ckpt`` and never in an inference checkpoint.

A preset picks its discriminator by name (``gan.discriminator``, a key of
:data:`DISCRIMINATORS`; ``msd``, this one, by default), so another adversary (HiFi-GAN's
multi-period discriminator, a multi-resolution STFT one) is one class and one registry line.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

#: HiFi-GAN's ``DiscriminatorS``: ``(out channels, kernel, stride, groups)`` per layer; the
#: input has one channel and the padding keeps ``kernel // 2``.
HIFIGAN_LAYERS: tuple[tuple[int, int, int, int], ...] = (
    (128, 15, 1, 1),
    (128, 41, 2, 4),
    (256, 41, 2, 16),
    (512, 41, 4, 16),
    (1024, 41, 4, 16),
    (1024, 41, 1, 16),
    (1024, 5, 1, 1),
)


class ScaleDiscriminator(nn.Module):
    """One scale: ``(B, 1, T)`` -> ``(logits (B, 1, T'), [feature maps])``."""

    def __init__(self, width: float = 1.0, spectral: bool = False) -> None:
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        layers, c_in = [], 1
        for c, kernel, stride, groups in HIFIGAN_LAYERS:
            c_out = max(1, round(c * width))
            g = max(1, min(groups, c_in, c_out))
            while c_in % g or c_out % g:
                g -= 1
            layers.append(norm(nn.Conv1d(c_in, c_out, kernel, stride, kernel // 2, groups=g)))
            c_in = c_out
        self.convs = nn.ModuleList(layers)
        self.post = norm(nn.Conv1d(c_in, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)  # (B, c_l, T_l)
            features.append(x)
        x = self.post(x)  # (B, 1, T_L)
        features.append(x)
        return x, features


class MultiScaleDiscriminator(nn.Module):
    """HiFi-GAN's multi-scale discriminator over ``(B, C, T)`` waveforms.

    Args:
        scales: sub-discriminators (3 in HiFi-GAN), each on the previous one's input
            average-pooled by 2.
        width: multiplier of every hidden layer's channels (1 = HiFi-GAN).

    ``forward(wave)`` returns ``(logits, features)``: one ``(B·C, 1, T_s)`` logit map per
    scale and, per scale, the list of its layers' outputs.
    """

    def __init__(self, scales: int = 3, width: float = 1.0) -> None:
        super().__init__()
        if scales < 1 or not width > 0:
            raise ValueError(f"need scales >= 1 and width > 0, got {scales}, {width}")
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(width, spectral=i == 0) for i in range(scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        b, c, t = wave.shape
        x = wave.reshape(b * c, 1, t)  # (B·C, 1, T): every channel judged on its own
        logits, features = [], []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = self.pool(x)  # (B·C, 1, ~T / 2^i)
            out, feats = disc(x)
            logits.append(out)
            features.append(feats)
        return logits, features


#: Discriminators by the name ``gan.discriminator`` gives them. Each class takes
#: ``(scales, width)`` and returns ``(logits, features)`` per sub-discriminator, as
#: :class:`MultiScaleDiscriminator` does (what :mod:`musicrestore.train.losses` expects).
DISCRIMINATORS: dict[str, type[nn.Module]] = {"msd": MultiScaleDiscriminator}
#: The discriminator of seed 004 (HiFi-GAN's multi-scale one), when a preset names none.
DEFAULT_DISCRIMINATOR = "msd"


def build_discriminator(name: str = DEFAULT_DISCRIMINATOR, **kwargs: Any) -> nn.Module:
    """``DISCRIMINATORS[name](**kwargs)``; an unknown name is a one-line ConfigError."""
    if name not in DISCRIMINATORS:
        from ..core.config import ConfigError

        raise ConfigError(
            f"gan.discriminator: got {name!r}; expected one of {', '.join(DISCRIMINATORS)}"
        )
    return DISCRIMINATORS[name](**kwargs)
