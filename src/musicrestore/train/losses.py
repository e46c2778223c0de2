"""Training losses of the learned restorers.

The U-Former's second stage (seed 004 §4.1, eqs. 2-4; docs/method.md#uformer) adds the
least-squares GAN losses and HiFi-GAN's feature matching: :func:`lsgan_generator`,
:func:`lsgan_discriminator`, :func:`feature_matching`, over the per-scale outputs of
:class:`musicrestore.models.discriminator.MultiScaleDiscriminator`.

Seed 000 §3 ("Training") trains its U-Net STFT mask with a loss that "combines time-domain
L1 and log-magnitude L1"; the WaveNet denoiser uses the same here (docs/method.md#learned-models).
The paper gives no STFT size for the loss: we take the U-Net's own analysis (n_fft 1024,
hop 256, Hann window) and ``log(|X| + 1e-5)``, so silence does not dominate the log term.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch


def log_magnitude(
    wave: torch.Tensor, n_fft: int = 1024, hop: int = 256, eps: float = 1e-5
) -> torch.Tensor:
    """``log(|STFT(wave)| + eps)`` of ``wave  # (..., T)`` -> ``(..., F, frames)``, in float32
    (an autocast region may hand in bf16/fp16, which ``torch.stft`` does not take)."""
    shape = wave.shape
    flat = wave.reshape(-1, shape[-1]).float()
    window = torch.hann_window(n_fft, device=flat.device, dtype=flat.dtype)
    spec = torch.stft(flat, n_fft, hop, window=window, center=True, return_complex=True)
    mag = torch.log(spec.abs() + eps)
    return mag.reshape(*shape[:-1], *mag.shape[-2:])


def l1_logmag(
    estimate: torch.Tensor,
    target: torch.Tensor,
    n_fft: int = 1024,
    hop: int = 256,
    eps: float = 1e-5,
    mag_weight: float = 1.0,
) -> torch.Tensor:
    """Seed 000's denoiser loss: ``mean|ŷ − y| + mag_weight · mean|log(|Ŷ|+ε) − log(|Y|+ε)|``.

    ``estimate`` and ``target`` are ``(B, C, T)`` waveforms of the same shape.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} != target {tuple(target.shape)}")
    time_l1 = torch.mean(torch.abs(estimate.float() - target.float()))
    spec_l1 = torch.mean(
        torch.abs(log_magnitude(estimate, n_fft, hop, eps) - log_magnitude(target, n_fft, hop, eps))
    )
    return time_l1 + mag_weight * spec_l1


def l1(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Time-domain L1 only (Demucs' waveform loss; Défossez et al. 2019)."""
    return torch.nn.functional.l1_loss(estimate.float(), target.float())


@functools.lru_cache(maxsize=4)
def _mrstft(fft_sizes: tuple[int, ...]) -> Any:
    import auraloss

    return auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=list(fft_sizes),
        hop_sizes=[n // 4 for n in fft_sizes],
        win_lengths=list(fft_sizes),
    )


def l1_mrstft(
    estimate: torch.Tensor,
    target: torch.Tensor,
    fft_sizes: Sequence[int] = (512, 1024, 2048),
    stft_weight: float = 1.0,
) -> torch.Tensor:
    """Waveform L1 plus ``auraloss``' multi-resolution STFT loss (spectral convergence +
    log-magnitude L1 at each STFT size; Yamamoto et al. 2020, the loss of Parallel WaveGAN
    that the MSR challenge systems train with, docs/method.md#learned-models).

    Three resolutions instead of :func:`l1_logmag`'s one: the short window sees transients
    and pre-echo, the long one sustained partials, so the model cannot trade one for the
    other. ``estimate`` and ``target`` are ``(B, C, T)`` waveforms of the same shape.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} != target {tuple(target.shape)}")
    est, ref = estimate.float(), target.float()
    stft = _mrstft(tuple(int(n) for n in fft_sizes)).to(est.device)
    flat_est = est.reshape(-1, 1, est.shape[-1])  # (B*C, 1, T): auraloss takes (B, 1, T)
    flat_ref = ref.reshape(-1, 1, ref.shape[-1])
    return torch.mean(torch.abs(est - ref)) + stft_weight * stft(flat_est, flat_ref)


#: Loss name (params ``loss:``) -> ``fn(estimate, target, **kwargs) -> scalar``.
LOSSES: dict[str, Callable[..., Any]] = {
    "l1_logmag": l1_logmag,
    "l1_mrstft": l1_mrstft,
    "l1": l1,
}


# ---------------------------------------------------------------------- adversarial (seed 004)


def lsgan_generator(fake_logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Seed 004 eq. 2, summed over the discriminator's scales: ``Σ_s mean((1 − D_s(G(x)))²)``."""
    return torch.stack([torch.mean((1.0 - d.float()) ** 2) for d in fake_logits]).sum()


def lsgan_discriminator(
    real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Seed 004 eq. 4: ``Σ_s mean(D_s(G(x))²) + mean((1 − D_s(y))²)`` (``fake_logits`` from a
    detached generator output, so only the discriminator learns from it)."""
    terms = [
        torch.mean(f.float() ** 2) + torch.mean((1.0 - r.float()) ** 2)
        for r, f in zip(real_logits, fake_logits, strict=True)
    ]
    return torch.stack(terms).sum()


def feature_matching(
    real_features: Sequence[Sequence[torch.Tensor]],
    fake_features: Sequence[Sequence[torch.Tensor]],
) -> torch.Tensor:
    """Seed 004 eq. 3: ``Σ_l (1/N_l) ‖D^(l)(y) − D^(l)(G(x))‖₁`` over every layer of every
    scale, the real features taken as constants."""
    terms = [
        torch.mean(torch.abs(r.detach().float() - f.float()))
        for rs, fs in zip(real_features, fake_features, strict=True)
        for r, f in zip(rs, fs, strict=True)
    ]
    return torch.stack(terms).sum()
