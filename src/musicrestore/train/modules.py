"""Thin LightningModules: losses, optimizer, EMA and logging around plain networks.

The networks are ordinary ``nn.Module``s defined elsewhere (``musicrestore.models``,
Demucs' ``HTDemucs``), so inference never needs Lightning. A module here only says how a
batch becomes a loss and what validation reports; :func:`.engine.fit` does the rest.

- :class:`DenoiserModule`: degraded ``(B, C, T)`` -> restored ``(B, C, T)`` (seed 000's U-Net
  STFT mask and WaveNet denoiser), trained with time-domain L1 + log-magnitude L1
  (:func:`.losses.l1_logmag`), validated with that loss and SI-SDR (Le Roux et al. 2019).
- :class:`SeparatorModule`: a mixture ``(B, C, T)`` -> sources ``(B, S, C, T)``, L1 on the
  waveforms of the sources (Défossez et al. 2019; docs/method.md#separator).
- :class:`GANModule`: seed 004's two-stage U-Former training (docs/method.md#uformer):
  waveform L1, then L1 + least-squares GAN + feature matching against a discriminator
  chosen by name (HiFi-GAN's multi-scale one by default) from ``gan.start`` on
  (:class:`GANConfig`), with Lightning's manual optimisation.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - whichever is installed
    import pytorch_lightning as pl

from ..core.errors import StageError
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

    def log_step(self, loss: torch.Tensor, batch_size: int) -> None:
        """``train_loss`` (the mean over ranks) and ``lr`` (the generator's rate of this
        optimizer step) with ``self.log``: the progress bar, and every ``log_every`` steps
        the loggers of :mod:`.logger` (``loss.csv``, the MLflow record). Under
        accumulation Lightning logs the last micro-batch's loss of the step."""
        step = {"on_step": True, "on_epoch": False, "batch_size": batch_size}
        self.log("train_loss", loss.detach(), prog_bar=True, sync_dist=True, **step)
        lr = torch.tensor(self.trainer.optimizers[0].param_groups[0]["lr"], dtype=torch.float64)
        self.log("lr", lr, **step)  # float64: a python float would be logged as float32


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
        self.log_step(loss, clean.shape[0])
        return loss  # type: ignore[no-any-return]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        from ..evaluation.metrics import si_sdr

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
    (:func:`musicrestore.train.separator.sample_batch`)."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        mix, sources = batch
        loss = torch.nn.functional.l1_loss(self.net(mix), sources)
        self.log_step(loss, mix.shape[0])
        return loss


def count_parameters(net: torch.nn.Module) -> int:
    return int(sum(np.prod(p.shape) for p in net.parameters()))


# --------------------------------------------------------------------- adversarial (seed 004)


@dataclass
class GANConfig:
    """The U-Former's second training stage (seed 004 §4.1, docs/method.md#uformer); the
    ``gan`` block of a preset. Before optimizer step ``start`` the generator learns from the
    reconstruction loss alone; from ``start`` on a HiFi-GAN multi-scale discriminator
    (:class:`musicrestore.models.discriminator.MultiScaleDiscriminator`, ``discriminator:
    msd``; a name of :data:`musicrestore.models.discriminator.DISCRIMINATORS`) joins, with
    its own Adam, and the generator's loss becomes
    ``recon + gen_weight·L_gen + feat_weight·L_feat``."""

    discriminator: str = "msd"  # a name of DISCRIMINATORS (msd: HiFi-GAN's, the default)
    start: int = 0  # optimizer step the discriminator joins (seed 004: 50000 of 85000)
    batch: int | None = None  # micro-batch from `start` on (seed 004: 4); null: train.batch
    gen_weight: float = 0.001  # λ_g of the least-squares generator loss (seed 004)
    feat_weight: float = 0.01  # λ_f of the feature-matching loss (seed 004)
    lr: float = 5e-5  # discriminator learning rate, constant (seed 004)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # its Adam's betas
    grad_clip: float | None = None  # its gradient-norm clip; null: train.grad_clip; 0: off
    scales: int = 3  # sub-discriminators (HiFi-GAN: 3)
    width: float = 1.0  # channel multiplier of the discriminator (1: HiFi-GAN's size)

    def __post_init__(self) -> None:
        # imported here: a denoiser's training (and its DVC stage) never reads the adversary
        from ..models.discriminator import DISCRIMINATORS

        problems = []
        if self.start < 0 or (self.batch is not None and self.batch < 1) or self.scales < 1:
            problems.append("need start >= 0, batch >= 1 (or null), scales >= 1")
        if self.gen_weight < 0 or self.feat_weight < 0 or not self.lr > 0 or not self.width > 0:
            problems.append("need gen_weight, feat_weight >= 0 and lr, width > 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.grad_clip is not None and self.grad_clip < 0:
            problems.append("grad_clip must be >= 0 or null")
        if self.discriminator not in DISCRIMINATORS:
            problems.append(f"discriminator must be one of {', '.join(DISCRIMINATORS)}")
        if problems:
            raise ValueError("; ".join(problems))

    def identity(self) -> dict[str, Any]:
        """The fields that name the run (params hash, resume key): all of them, less
        ``discriminator`` when it is the default, so presets written before the choice
        existed keep their hash, resume key and checkpoint bytes."""
        from ..models.discriminator import DEFAULT_DISCRIMINATOR

        fields = asdict(self)
        if fields["discriminator"] == DEFAULT_DISCRIMINATOR:
            del fields["discriminator"]
        return fields


def gan_config_from_params(params: Mapping[str, Any] | None, where: str = "gan") -> GANConfig:
    """:class:`GANConfig` through :func:`musicrestore.core.config.merge` (one-line errors)."""
    from ..core.config import merge
    from ..models.discriminator import DISCRIMINATORS

    return merge(  # type: ignore[no-any-return]
        GANConfig,
        params,
        where,
        ranges={
            "start": (0, None),
            "batch": (1, None),
            "scales": (1, None),
            "gen_weight": (0.0, None),
            "feat_weight": (0.0, None),
            "grad_clip": (0.0, None),
            "betas": (0.0, 0.9999999, "a beta in [0, 1)"),
        },
        positive=("lr", "width"),
        choices={"discriminator": tuple(DISCRIMINATORS)},
    )


def _no_closure() -> None:
    return None


class GANModule(DenoiserModule):
    """Seed 004's two-stage training of a restorer ``net`` against ``discriminator``, with
    Lightning's manual optimisation (two optimizers, one training step each batch).

    - Stage 1 (optimizer steps ``< gan.start``): ``recon`` (waveform L1, ``loss: l1``) only;
      the discriminator exists (its weights are in ``last.ckpt``) but does not train.
    - Stage 2: first the discriminator (``lsgan_discriminator`` on the clean target and the
      detached estimate; its own Adam at ``gan.lr``, gradient-norm clip), then the generator
      on ``recon + gen_weight·lsgan_generator + feat_weight·feature_matching`` through the
      updated discriminator (as HiFi-GAN orders the two updates).

    The generator keeps the engine's recipe (AdamW with ``train.weight_decay`` — Adam at 0 —,
    warmup and schedule of :func:`.engine.lr_factor`, clipping at ``train.grad_clip``, EMA).
    The stage is a function of the optimizer step, and both optimizers, the schedule and
    the discriminator are in ``last.ckpt``, so a run killed in stage 1 and resumed past
    ``gan.start`` is the uninterrupted run. Only the generator's step counts as a training
    step (the discriminator steps through the strategy, outside Lightning's step counter),
    so ``steps``, logging and checkpoint periods mean what they mean for the other models.
    Validation is :class:`DenoiserModule`'s (reconstruction loss and SI-SDR).

    Limits: no gradient accumulation (``train.accumulate`` must be 1), one device (the
    stage-1 discriminator is an unused DDP parameter set), and no ``16-mixed`` (clipping
    would act on scaled gradients; ``bf16-mixed`` or 32-bit).
    """

    def __init__(
        self,
        net: torch.nn.Module,
        discriminator: torch.nn.Module,
        gan: GANConfig,
        loss: str = "l1",
        loss_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(net, loss, loss_kwargs)
        self.automatic_optimization = False
        self.disc = discriminator
        self.gan = gan

    def model_config(self) -> dict[str, Any]:
        shapes = {k: list(v.shape) for k, v in self.disc.state_dict().items()}
        digest = hashlib.sha256(json.dumps(shapes, sort_keys=True).encode()).hexdigest()[:16]
        return {**super().model_config(), "gan": self.gan.identity(), "disc_shapes": digest}

    def configure_training(self, config: TrainConfig) -> None:
        if config.accumulate != 1:
            raise StageError(
                f"train.accumulate is {config.accumulate}: the adversarial module steps its "
                "optimizers by hand and does not accumulate; raise train.batch instead"
            )
        super().configure_training(config)

    def on_fit_start(self) -> None:
        trainer = self.trainer
        if trainer.world_size > 1:
            raise StageError("the adversarial module trains on one device (devices: 1)")
        if str(trainer.precision) == "16-mixed":
            raise StageError("precision 16-mixed is not supported here; use bf16-mixed or 32")

    def configure_optimizers(self) -> Any:
        generator = super().configure_optimizers()  # AdamW + the engine's schedule
        disc = torch.optim.Adam(
            self.disc.parameters(), lr=self.gan.lr, betas=(self.gan.betas[0], self.gan.betas[1])
        )
        return [generator, {"optimizer": disc}]

    def _clip(self, optimizer: Any, value: float | None) -> None:
        if value:
            self.clip_gradients(optimizer, gradient_clip_val=value, gradient_clip_algorithm="norm")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        from .losses import feature_matching, lsgan_discriminator, lsgan_generator

        degraded, clean = batch  # (B, C, T) each
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        schedulers = self.lr_schedulers()
        schedule = schedulers[0] if isinstance(schedulers, list) else schedulers
        estimate = self.net(degraded)  # (B, C, T)
        recon = self.loss_fn(estimate, clean)
        loss = recon
        logs = {"train_recon": recon.detach()}
        if self.global_step >= self.gan.start:  # stage 2
            real_logits, _ = self.disc(clean)
            fake_logits, _ = self.disc(estimate.detach())
            loss_d = lsgan_discriminator(real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(loss_d)
            clip_d = self.gan.grad_clip
            self._clip(opt_d, self.train_config.grad_clip if clip_d is None else clip_d)
            # through the strategy (precision plugin), not LightningOptimizer.step: only the
            # generator's step advances trainer.global_step
            self.trainer.strategy.optimizer_step(opt_d.optimizer, _no_closure)
            self.toggle_optimizer(opt_g)  # the discriminator needs no gradients now
            with torch.no_grad():
                _, real_features = self.disc(clean)
            fake_logits, fake_features = self.disc(estimate)
            loss_gen = lsgan_generator(fake_logits)
            loss_feat = feature_matching(real_features, fake_features)
            loss = recon + self.gan.gen_weight * loss_gen + self.gan.feat_weight * loss_feat
            logs.update(
                train_disc=loss_d.detach(),
                train_gen=loss_gen.detach(),
                train_feat=loss_feat.detach(),
            )
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.global_step >= self.gan.start:
            self.untoggle_optimizer(opt_g)
        self._clip(opt_g, self.train_config.grad_clip)
        opt_g.step()
        size = clean.shape[0]
        self.log_step(loss, size)  # before the schedule moves on: this step's rate
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=size)
        schedule.step()
        if self.ema is not None:
            self.ema.update()
        return loss.detach()
