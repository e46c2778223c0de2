"""Learned restoration networks (docs/method.md#learned-models).

Plain :class:`torch.nn.Module` s that know nothing about training: the training engine
builds one as ``ARCHITECTURES[arch](**kwargs)``, and a checkpoint stores ``arch`` and
``kwargs`` next to the weights and the sample rate. Each class has ``SIZES``, its named
configurations (``small`` for a CPU, ``large`` = the paper's).

- :class:`UNetMask`: seed 000's 2D U-Net STFT mask.
- :class:`WaveNetDenoiser`: seed 000's time-domain WaveNet denoiser (Rethage et al. 2018).

Their long-signal inference is in :mod:`musicrestore.models.inference`.
"""

from __future__ import annotations

from torch import nn

from .unet_mask import UNetMask
from .wavenet import WaveNetDenoiser

#: ``arch`` name (as stored in checkpoints) -> network class.
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "unet_mask": UNetMask,
    "wavenet": WaveNetDenoiser,
}

__all__ = ["ARCHITECTURES", "UNetMask", "WaveNetDenoiser"]
