"""On-the-fly degradation chains: a clean training crop -> a fresh ``(degraded, clean)`` pair.

With ``data.on_the_fly`` (:class:`musicrestore.train.data.DataConfig`), every draw of a
:class:`musicrestore.train.data.CropDataset` takes the clean *target* crop and degrades it
afresh with the chain named by ``data.chain`` (:data:`CHAINS`), so a model sees a new
degradation of every crop in every epoch. The chains are the builders' recipes of
:mod:`musicrestore.degrade`, applied to a crop instead of a song:

- :class:`MusicGenLikeChain` (``chain: musicgen_like``): seed 000 §3's MusicGen-like
  artifacts for T1 (docs/method.md#musicgen-like), normalised and scaled as the T1 builder
  does (:func:`musicrestore.degrade.chains.normalise_and_degrade`).
- :class:`MSRChain` (``chain: msr``): seed 004's MSR example drawn afresh from the clean
  target and the clean background (§4.2, docs/method.md#msr-degradation), for datasets
  whose manifest names the background.

Each chain is a class, not a closure, so DataLoader workers can receive it; all its draws
come from the ``rng`` it is given (the dataset's ``(seed, epoch, index)`` stream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core.errors import StageError


class MusicGenLikeChain:
    """Seed 000's MusicGen-like artifacts (:func:`musicrestore.degrade.chains.musicgen_like`)
    applied as the T1 builder does (:func:`musicrestore.degrade.examples.make_musicgen_example`):
    the clean crop is peak-normalised to -1 dBFS, degraded, and both are scaled by the same
    headroom gain. ``chain(clean (C, T), rng, sr) -> (degraded, clean)``. A class, not a
    closure, so DataLoader workers can receive it."""

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        from ..degrade.chains import musicgen_config

        self.config = musicgen_config(cfg)

    def __call__(
        self, clean: np.ndarray, rng: np.random.Generator, sr: int
    ) -> tuple[np.ndarray, np.ndarray]:
        from ..degrade.chains import MUSICGEN_CLEAN_PEAK_DBFS, musicgen_like, normalise_and_degrade

        out = normalise_and_degrade(
            clean,
            lambda wave: musicgen_like(wave, rng, self.config, sr=sr, merged=True),
            MUSICGEN_CLEAN_PEAK_DBFS,
            float(self.config["max_peak"]),
        )
        return out.degraded, out.clean


class MSRChain:
    """Seed 004 §4.2 on the fly (:func:`musicrestore.degrade.chains.msr_example`, T2): the
    clean target crop goes through a fresh target chain, is mixed with the clean
    *background* crop at a fresh SNR and the mixture through a fresh mixture chain.
    ``chain(target (C, T), rng, sr, background (C, T)) -> (mixture, reference)``, the
    reference being the unprocessed target at the level it entered the mixture.

    It needs the clean background of every example (a manifest's ``meta["background"]``,
    a file beside the mixture). The cached MSR training sets of
    :func:`musicrestore.degrade.build.build_msr` hold only the degraded mixture and the
    clean target, so on them a model trains on the cached mixtures (``on_the_fly: false``).
    """

    needs_background = True

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        from ..degrade.chains import msr_config

        self.config = msr_config(cfg)

    def __call__(
        self,
        clean: np.ndarray,
        rng: np.random.Generator,
        sr: int,
        background: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        from ..degrade.chains import msr_example

        if background is None:
            raise StageError("the msr chain needs the clean background of the example")
        ex = msr_example(clean, background, sr, rng, self.config)
        return ex.mixture, ex.reference


#: Chain name -> ``factory(cfg) -> chain(clean, rng, sr) -> (degraded, clean)``; a chain with
#: ``needs_background`` also takes the example's clean background crop (MSR, task T2).
CHAINS: dict[str, Callable[..., Any]] = {"musicgen_like": MusicGenLikeChain, "msr": MSRChain}
