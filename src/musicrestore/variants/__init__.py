"""Restoration variants: one registry, one signature (docs/method.md#methods).

Importing this package registers every variant; iterate :data:`VARIANTS` or look one up
with :func:`get_variant`. A variant is ``fn(wave (C, T), sr, ctx) -> (C, T)``; see
:mod:`musicrestore.variants.registry` for the context and the registration metadata.

Modules: :mod:`.registry` (``identity`` and the machinery), :mod:`.preclean` (seed 000
pre-clean), :mod:`.dsp` (seed 001 chain, ``dsp_direct``), :mod:`.snmf` (seed 000 S-NMF),
:mod:`.separated` (``demucs_dsp``, ``demucs_snmf``, ``adaptive``, ``demucs``), :mod:`.learned`
(``unet_mask``, ``wavenet``, ``uformer``), :mod:`.pretrained` (``roformer_chain``,
``msrkit_baseline``: frozen community RoFormer checkpoints). Learned variants register with a
``checkpoint`` and load it through ``ctx.model(name)``.
"""

# Importing a module registers its variants; this order is the order of ``--list``.
# isort: off
from . import registry, preclean, dsp, separated, learned, pretrained  # noqa: F401

# isort: on
from .registry import (
    VARIANTS,
    Separator,
    Variant,
    VariantContext,
    VariantError,
    build_context,
    get_variant,
    register,
)

__all__ = [
    "VARIANTS",
    "Separator",
    "Variant",
    "VariantContext",
    "VariantError",
    "build_context",
    "get_variant",
    "register",
]
