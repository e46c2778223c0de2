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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from .uformer import UFormer
    from .unet_mask import UNetMask
    from .wavenet import WaveNetDenoiser

#: Class name -> (module, ``arch`` name as stored in checkpoints).
_CLASSES = {
    "UNetMask": (".unet_mask", "unet_mask"),
    "WaveNetDenoiser": (".wavenet", "wavenet"),
    "UFormer": (".uformer", "uformer"),
}


def __getattr__(name: str) -> Any:
    """The networks and ``ARCHITECTURES`` load on first use, so that importing
    :mod:`.checkpoint` or :mod:`.inference` does not import every architecture (and a DVC
    stage that reads one model does not depend on the others' code)."""
    if name in _CLASSES:
        module, _ = _CLASSES[name]
        return getattr(importlib.import_module(module, __name__), name)
    if name == "ARCHITECTURES":
        #: ``arch`` name (as stored in checkpoints) -> network class; built once, so tests
        #: may register an extra architecture in it.
        registry: dict[str, type[nn.Module]] = {
            arch: __getattr__(cls) for cls, (_, arch) in _CLASSES.items()
        }
        globals()["ARCHITECTURES"] = registry
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ARCHITECTURES", "UFormer", "UNetMask", "WaveNetDenoiser"]
