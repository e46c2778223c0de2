"""Fixed signal processing that more than one method builds on (docs/architecture.md).

:mod:`.preclean`: seed 000's pre-clean of a degraded mixture (LPC declick, dither
de-quantization, minimum-statistics denoise) and its STFT helpers. It is a restoration
variant of its own (``variants.preclean``), the first step of ``demucs_snmf``, the source of
S-NMF's noise spectrum, and the guide plane of ``unet_mask``'s ``arch.guide: preclean``; so
it sits below both ``models`` and ``variants``. NumPy/SciPy only, no torch.
"""
