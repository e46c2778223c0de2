"""Learned restoration networks (docs/method.md#learned-models).

Plain :class:`torch.nn.Module` s that know nothing about training: the training engine
builds one as ``ARCHITECTURES[arch](**kwargs)``, and a checkpoint stores ``arch`` and
``kwargs`` next to the weights and the sample rate. Each class has ``SIZES``, its named
configurations (``small`` for a CPU, ``large`` = the paper's).

- :class:`UNetMask`: seed 000's 2D U-Net STFT mask.
- :class:`WaveNetDenoiser`: seed 000's time-domain WaveNet denoiser (Rethage et al. 2018).
- :class:`UFormer`: seed 004's U-Former (U-Net + RoFormer bottleneck on the complex STFT),
  one per target group. Its adversary, :mod:`.discriminator` (HiFi-GAN's multi-scale
  discriminator), is a training aid and not an architecture of this registry.

Their long-signal inference is in :mod:`musicrestore.models.inference`.
"""

from __future__ import annotations

from torch import nn

from .uformer import UFormer
from .unet_mask import UNetMask
from .wavenet import WaveNetDenoiser

#: ``arch`` name (as stored in checkpoints) -> network class.
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "unet_mask": UNetMask,
    "wavenet": WaveNetDenoiser,
    "uformer": UFormer,
}

__all__ = ["ARCHITECTURES", "UFormer", "UNetMask", "WaveNetDenoiser"]
