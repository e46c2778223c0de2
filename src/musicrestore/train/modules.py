"""Thin LightningModules: losses, optimizer, EMA and logging around plain networks.

The networks are ordinary ``nn.Module``s defined elsewhere (``musicrestore.models``,
Demucs' ``HTDemucs``), so inference never needs Lightning. A module here only says how a
batch becomes a loss and what validation reports; :func:`.engine.fit` does the rest.

- :class:`DenoiserModule`: degraded ``(B, C, T)`` -> restored ``(B, C, T)`` (seed 000's U-Net
  STFT mask and WaveNet denoiser), trained with time-domain L1 + log-magnitude L1
  (:func:`.losses.l1_logmag`), validated with that loss and SI-SDR (Le Roux et al. 2019).
- :class:`SeparatorModule`: a mixture ``(B, C, T)`` -> sources ``(B, S, C, T)``, L1 on the
  waveforms of the sources (Défossez et al. 2019; docs/method.md#separator).
"""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

import numpy as np
import torch

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - whichever is installed
    import pytorch_lightning as pl

from .engine import TrainConfig, lr_factor
from .losses import LOSSES


class TrainModule(pl.LightningModule):
    """What every learned model shares: AdamW on ``net``'s parameters with the engine's
    per-step schedule (:func:`.engine.lr_factor`), and an optional EMA of ``net``
    (``ema-pytorch``, updated after every optimizer step, with its decay warmup
    ``1 − (1 + t)^(−2/3)`` capped at ``ema_decay``). Validation and export use the EMA
    weights when there are any (:attr:`inference_net`)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.ema: Any = None
        self.train_config = TrainConfig()

    def model_config(self) -> dict[str, Any]:
        """Identifies the network for the resume key: its class and parameter shapes."""
        shapes = {k: list(v.shape) for k, v in self.net.state_dict().items()}
        digest = hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()[:16]
        return {
            "class": f"{type(self.net).__module__}.{type(self.net).__qualname__}",
            "shapes": digest,
        }

    def configure_training(self, config: TrainConfig) -> None:
        """Called by :func:`.engine.fit` before training (and before a checkpoint is
        restored, so the EMA's state has somewhere to go)."""
        self.train_config = config
        if config.ema_decay is not None and self.ema is None:
            from ema_pytorch import EMA

            self.ema = EMA(
                self.net,
                beta=config.ema_decay,
                update_after_step=0,
                update_every=1,
                include_online_model=False,
            )

    @property
    def inference_net(self) -> torch.nn.Module:
        """The weights to validate and export: the EMA's when on, else the raw ones."""
        return self.ema.ema_model if self.ema is not None else self.net  # type: ignore[no-any-return]

    def export_net(self) -> torch.nn.Module:
        """:attr:`inference_net` in eval mode on the CPU (what the checkpoint saves)."""
        return self.inference_net.eval().cpu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inference_net(x)  # type: ignore[no-any-return]

    def configure_optimizers(self) -> Any:
        config = self.train_config
        optimizer = torch.optim.AdamW(
            self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        # A plain function (not a callable object): LambdaLR then keeps only its step count
        # in the checkpoint, so raising `steps` on resume stretches the schedule.
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, config)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update()


class DenoiserModule(TrainModule):
    """A restorer ``net(degraded (B, C, T)) -> (B, C, T)`` trained on ``(degraded, clean)``
    batches (:class:`.data.CropDataset`).

    Args:
        net: the network.
        loss: a name in :data:`.losses.LOSSES` (``l1_logmag``: seed 000's L1 + log-magnitude L1).
        loss_kwargs: keyword arguments of the loss (``n_fft``, ``hop``, ``mag_weight``).

    Logs ``val_loss``, ``val_si_sdr`` (restored vs clean) and ``val_si_sdr_degraded`` (the
    input vs clean: the identity baseline of docs/method.md#baseline), means over examples.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        loss: str = "l1_logmag",
        loss_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(net)
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; one of {', '.join(LOSSES)}")
        self.loss_name = loss
        self.loss_fn = functools.partial(LOSSES[loss], **(loss_kwargs or {}))
        from torchmetrics import MeanMetric

        self.val_loss = MeanMetric()
        self.val_si_sdr = MeanMetric()
        self.val_si_sdr_degraded = MeanMetric()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        degraded, clean = batch
        loss = self.loss_fn(self.net(degraded), clean)
        self.log("train_loss", loss, prog_bar=True, logger=False, batch_size=clean.shape[0])
        return loss  # type: ignore[no-any-return]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        from ..metrics import si_sdr

        degraded, clean = batch
        estimate = self.inference_net(degraded)
        self.val_loss.update(self.loss_fn(estimate, clean).detach(), weight=clean.shape[0])
        ref = clean.float().cpu().numpy()
        est = estimate.float().cpu().numpy()
        deg = degraded.float().cpu().numpy()
        for b in range(ref.shape[0]):
            self.val_si_sdr.update(float(si_sdr(ref[b], est[b])))
            self.val_si_sdr_degraded.update(float(si_sdr(ref[b], deg[b])))
        for name in ("val_loss", "val_si_sdr", "val_si_sdr_degraded"):
            self.log(
                name,
                getattr(self, name),
                on_step=False,
                on_epoch=True,
                prog_bar=name == "val_si_sdr",
            )


class SeparatorModule(TrainModule):
    """Hybrid Transformer Demucs (Rouard et al. 2023) on ``(mixture (B, C, T), sources
    (B, S, C, T))`` batches, with the L1 waveform loss of Demucs (Défossez et al. 2019);
    the augmentation (gain, sign and channel flips, remixing) is in the batches
    (:func:`musicrestore.train_separator.sample_batch`)."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        mix, sources = batch
        loss = torch.nn.functional.l1_loss(self.net(mix), sources)
        self.log("train_loss", loss, prog_bar=True, logger=False, batch_size=mix.shape[0])
        return loss


def count_parameters(net: torch.nn.Module) -> int:
    return int(sum(np.prod(p.shape) for p in net.parameters()))
