"""The learned restorers: seed 000's T1 models ``unet_mask`` and ``wavenet``
(docs/method.md#unet-mask, docs/method.md#wavenet) and seed 004's T2 ``uformer``
(docs/method.md#uformer), one U-Former per target group, loaded as
``ctx.model(f"uformer/{ctx.target}")`` (``models/uformer/<group>``) and cached per group.

Both load their network through ``ctx.model(name)``, which returns ``(net, config)`` with
``config["sr"]`` the rate the network was trained at (by default from
``musicrestore.models.checkpoint.load_model(<models_dir>/<name>)``). As in seed 000's app, the
input is resampled to that rate (julius, :func:`musicrestore.core.audio.resample`) and the output
back, the channels are matched to the network's (mono: downmix, then the output duplicated)
and the output has the input's shape.

Chunking, twice over, through the one engine (:mod:`musicrestore.core.chunks`): the file
runner (:mod:`musicrestore.variants.restore`) hands each variant one chunk of
``restore.chunk_s`` (30 s) with ``restore.context_s`` each side and cross-fades the chunks,
like every other variant, so a file of any length is restored in bounded memory; inside
that window the network's own overlap-add (:mod:`musicrestore.models.inference`: the
``chunk_s`` / ``context_s`` or ``min_chunk_s`` / ``overlap`` below) cuts it into the
network's chunks with their own context and fades. A signal up to ``restore.chunk_s``
(every 10-s test clip) is one runner chunk, handed over whole and without context. None
of them needs the whole signal: the networks see one chunk of their own at a time anyway,
and the runner's context and cross-fades cover what its window edges change (seed 000
§3, "Seamless inference").

Params (``variants.unet_mask`` / ``variants.wavenet`` / ``variants.uformer``) are the
inference settings; for
``wavenet`` also ``size``, the configuration used when the checkpoint holds bare weights
without its own config (the seed: "if the checkpoint carries the full config, it overrides
the size selection").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..core.audio import resample, set_channels
from .registry import VariantContext, VariantError, register

#: ``variants.unet_mask`` defaults: chunked overlap-add of seed 000's U-Net path.
UNET_DEFAULTS: dict[str, Any] = {
    "chunk_s": 10.0,  # chunk core length (rounded up to hop x pooling factor)
    "context_s": 1.0,  # extra audio each side of a chunk; the cross-fade spans as much
    "batch_size": 2,  # chunks per forward pass
}

#: ``variants.wavenet`` defaults: chunked inference of seed 000's WaveNet path.
WAVENET_DEFAULTS: dict[str, Any] = {
    "size": "small",  # used only for a checkpoint without its own config
    "min_chunk_s": 2.0,  # chunks of at least max(4 receptive fields, this)
    "overlap": 0.1,  # fraction of a chunk cross-faded with the next
    "batch_size": 4,  # chunks per forward pass
}


@register(
    "unet_mask",
    description="seed 000: 2D U-Net STFT mask (mono), hop-aligned overlap-add inference",
    checkpoint="unet_mask",
    defaults=UNET_DEFAULTS,
    tasks=("T1", "T3"),
)
def unet_mask(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    from ..models import UNetMask
    from ..models.inference import unet_ola

    p = ctx.params
    _check_batch_size(p, "unet_mask")
    net, model_sr = _network(ctx.model("unet_mask"), UNetMask, None)
    x = _to_model(wave, sr, model_sr, int(getattr(net, "channels", 1)))
    y = unet_ola(net, x, p["chunk_s"], p["context_s"], model_sr, batch_size=p["batch_size"])
    return _from_model(y, wave.shape, sr, model_sr)


@register(
    "wavenet",
    description="seed 000: time-domain WaveNet denoiser (mono), chunked overlap inference",
    checkpoint="wavenet",
    defaults=WAVENET_DEFAULTS,
    tasks=("T1", "T3"),
)
def wavenet(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    from ..models import WaveNetDenoiser
    from ..models.inference import wavenet_chunks

    p = ctx.params
    _check_batch_size(p, "wavenet")
    if not 0.0 <= p["overlap"] <= 0.5:
        raise VariantError(f"variants.wavenet.overlap: got {p['overlap']!r}; expected 0..0.5")
    if p["size"] not in WaveNetDenoiser.SIZES:
        raise VariantError(
            f"variants.wavenet.size: got {p['size']!r}; choose from "
            f"{', '.join(WaveNetDenoiser.SIZES)}"
        )
    net, model_sr = _network(ctx.model("wavenet"), WaveNetDenoiser, p["size"])
    x = _to_model(wave, sr, model_sr, 1)
    y = wavenet_chunks(net, x, model_sr, p["min_chunk_s"], p["overlap"], batch_size=p["batch_size"])
    return _from_model(y, wave.shape, sr, model_sr)


#: ``variants.uformer`` defaults: seed 004 trains on 10-s segments, so the network sees
#: 10-s chunks (on the alignment grid) with context each side and cross-fades between them.
UFORMER_DEFAULTS: dict[str, Any] = {
    "chunk_s": 10.0,  # chunk core length (rounded up to hop x 2^levels = 0.16 s)
    "context_s": 1.0,  # extra audio each side of a chunk; the cross-fade spans as much
    "batch_size": 1,  # chunks per forward pass
}


@register(
    "uformer",
    description="seed 004: U-Former (U-Net + RoFormer bottleneck on the complex STFT), "
    "one model per target group, 10-s chunks with context and cross-fades",
    output="stem",
    checkpoint="uformer",
    per_target=True,
    defaults=UFORMER_DEFAULTS,
    tasks=("T2",),
)
def uformer(wave: np.ndarray, sr: int, ctx: VariantContext) -> np.ndarray:
    from ..models import UFormer
    from ..models.inference import unet_ola

    p = ctx.params
    _check_batch_size(p, "uformer")
    if ctx.target is None:
        raise VariantError(
            "uformer restores a T2 target stem with that group's model: give a target "
            "(--target Voc, ...)"
        )
    net, model_sr = _network(ctx.model(f"uformer/{ctx.target}"), UFormer, None)
    x = _to_model(wave, sr, model_sr, int(getattr(net, "audio_channels", 2)))
    y = unet_ola(net, x, p["chunk_s"], p["context_s"], model_sr, batch_size=p["batch_size"])
    return _from_model(y, wave.shape, sr, model_sr)


# ------------------------------------------------------------------------------- helpers


def _check_batch_size(params: Mapping[str, Any], key: str) -> None:
    if params["batch_size"] < 1:
        raise VariantError(
            f"variants.{key}.batch_size: got {params['batch_size']!r}; expected >= 1"
        )


def _network(loaded: Any, cls: Any, size: str | None) -> tuple[Any, int]:
    """``(net, config)`` from ``ctx.model`` -> ``(network, its sample rate)``.

    ``cls`` is the network class (``UNetMask``, ``WaveNetDenoiser``, ``UFormer``). A network module is
    used as it is (its checkpoint's config decided its size). Bare weights (a state dict)
    are loaded into ``cls(**cls.SIZES[size])``.
    """
    import torch

    try:
        net, config = loaded
        model_sr = int(config["sr"])
    except (TypeError, ValueError, KeyError):
        raise VariantError(
            f"{cls.__name__}: the model loader must return (net, config) with config['sr']"
        ) from None
    if isinstance(net, Mapping):  # bare weights: the configured size decides the shape
        if size is None:
            raise VariantError(f"{cls.__name__}: a checkpoint of bare weights needs a size")
        module = cls(**cls.SIZES[size])
        module.load_state_dict(net)
        net = module.eval()
    if not isinstance(net, torch.nn.Module):
        raise VariantError(f"{cls.__name__}: the model loader returned {type(net).__name__}")
    return net, model_sr


def _to_model(wave: np.ndarray, sr: int, model_sr: int, channels: int) -> np.ndarray:
    """``(C, T)`` at ``sr`` -> ``(channels, T')`` at the network's rate."""
    assert wave.ndim == 2, wave.shape
    return np.ascontiguousarray(resample(set_channels(wave, channels), sr, model_sr))


def _from_model(y: np.ndarray, shape: tuple[int, ...], sr: int, model_sr: int) -> np.ndarray:
    """The network's ``(channels, T')`` -> the input's ``(C, T)`` at ``sr``: resampled back,
    channels matched (mono duplicated), and the length fixed (a rational resampling round
    trip may end a sample short: the last sample is repeated)."""
    channels, total = shape
    out = set_channels(resample(y, model_sr, sr), channels)  # (C, ~T)
    out = out[:, :total]
    if out.shape[1] < total:
        out = np.pad(out, ((0, 0), (0, total - out.shape[1])), mode="edge")
    assert out.shape == (channels, total), (out.shape, shape)
    return np.ascontiguousarray(out, dtype=np.float32)
