"""The ``preclean`` variant: seed 000's pre-clean of a degraded mixture (declick,
de-quantize, minimum-statistics denoise) as a restoration method of its own.

The DSP lives in :mod:`musicrestore.dsp.preclean`, below the models, because the guided U-Net
(``unet_mask``'s ``arch.guide: preclean``) computes it as an input plane too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..dsp.preclean import PRECLEAN_DEFAULTS, preclean
from .registry import VariantContext, register


@register(
    "preclean",
    description="seed 000 pre-clean: LPC declick, dither de-quantization, min-statistics denoise",
    defaults=PRECLEAN_DEFAULTS,
)
def preclean_variant(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    info: dict[str, Any] = {}
    out = preclean(wave, sr, **ctx.params, info=info)
    for key, value in info.items():
        ctx.record(key, value)
    return out
