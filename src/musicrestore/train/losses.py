"""Training losses of the learned restorers.

Seed 000 §3 ("Training") trains its U-Net STFT mask with a loss that "combines time-domain
L1 and log-magnitude L1"; the WaveNet denoiser uses the same here (docs/method.md#learned-models).
The paper gives no STFT size for the loss: we take the U-Net's own analysis (n_fft 1024,
hop 256, Hann window) and ``log(|X| + 1e-5)``, so silence does not dominate the log term.
"""

from __future__ import annotations

from collections.abc import Callable
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


#: Loss name (params ``loss:``) -> ``fn(estimate, target, **kwargs) -> scalar``.
LOSSES: dict[str, Callable[..., Any]] = {"l1_logmag": l1_logmag, "l1": l1}
