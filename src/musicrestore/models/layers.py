"""Helpers shared by the networks of :mod:`musicrestore.models` (docs/method.md#learned-models).

A network module imports what it shares from here, never from another network's module, so
that each architecture depends on its own file and this one only (a DVC stage that trains
or runs one model does not depend on the others' code).

- :func:`match_channels`: the channel rule of seed 000's mono path (a stereo input is
  downmixed, the mono output duplicated), used by :class:`~.unet_mask.UNetMask` and
  :class:`~.uformer.UFormer` on the way in and out.
"""

from __future__ import annotations

import torch


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``(B, C, T)`` -> ``(B, channels, T)``: mean downmix, or duplication of mono."""
    assert x.ndim == 3 and x.shape[1] in (1, 2), x.shape
    if x.shape[1] == channels:
        return x
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    return x.expand(-1, channels, -1)
