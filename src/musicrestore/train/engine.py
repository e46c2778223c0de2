"""The one training engine: every learned model of the pipeline trains through :func:`fit`.

:func:`fit` builds a PyTorch Lightning ``Trainer`` from a :class:`TrainConfig` (one typed
params block, read with :func:`musicrestore.core.config.merge`) and runs a LightningModule of
:mod:`.modules` on the data of :mod:`.data`. What it adds to Lightning:

- **Recipe** (seed 000 §3, "Training"): AdamW, a cosine schedule with linear warmup stepped
  per optimizer step (``schedule: constant`` keeps the rate flat, as the separator's Adam
  recipe does; Défossez et al. 2019), gradient accumulation (effective batch = ``batch`` ×
  ``accumulate`` × world size), gradient-norm clipping, mixed precision on a GPU, and an
  optional exponential moving average of the weights (``ema_decay``; ``ema-pytorch``), which
  is what validation scores and what is exported.
- **Resuming**: ``ModelCheckpoint(dirpath=work_dir, save_last=True)`` keeps
  ``work_dir/last.ckpt`` (plus a final save when the run ends). A run resumes from it only
  when ``work_dir/resume.json`` holds the current *resume key* (:func:`make_resume_key`: the
  model config, the train config without ``steps``/logging/checkpointing, the world size and
  a hash of the training data's bytes) and the checkpoint is not past ``steps``; otherwise
  the stale checkpoint is deleted and training starts from scratch. Raising ``steps``
  continues from ``last.ckpt``. Weights, optimizer, scheduler, EMA, step count, loss
  history (:class:`History`) and the rows of ``loss.csv`` up to the checkpoint come back,
  and the data (:class:`.data.StepSampler`) and the per-step torch seed
  (:class:`StepSeed`) are functions of the step, so a killed run continues exactly where
  it stopped.
  ``last.ckpt`` is Lightning's own file (a torch pickle): a private work file of the
  training stage, never shared or shipped. Lightning loads it with ``weights_only=True``,
  and so does the one read of this package (its step, :func:`checkpoint_step`), which also
  refuses, in one line, a checkpoint whose pickle asks for any global beyond torch's own
  (:data:`CHECKPOINT_GLOBALS`), before Lightning ever opens it. What the pipeline
  ships is the inference checkpoint of :mod:`musicrestore.models.checkpoint` (safetensors).
- **Logging**: Lightning's. The modules ``self.log`` ``train_loss``/``lr`` per step and the
  validation metrics; every ``log_every`` steps (``log_every_n_steps``) and at each
  validation Lightning hands them to a ``CSVLogger`` on ``work_dir/loss.csv`` and to the
  stage's MLflow record (:mod:`.logger`).
- **Distributed**: the same code runs under ``torchrun --nproc_per_node N`` (Lightning
  detects the torchrun environment; ``devices``/``num_nodes`` are taken from it) and under
  Lightning's own launcher (``devices: 2, strategy: ddp``; gloo on the CPU).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

try:  # the `lightning` distribution, else the standalone `pytorch-lightning` one
    import lightning.pytorch as pl
    from lightning.fabric.plugins.environments import TorchElasticEnvironment
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
except ImportError:  # pragma: no cover - whichever is installed
    import pytorch_lightning as pl
    from lightning_fabric.plugins.environments import TorchElasticEnvironment
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

from ..core.errors import StageError
from .logger import LOSS_CSV, LossCSVLogger, StageRunLogger

log = logging.getLogger(__name__)

CHECKPOINT = "last.ckpt"
RESUME_FILE = "resume.json"

PRECISIONS = ("auto", "32", "32-true", "bf16-mixed", "16-mixed")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
STRATEGIES = ("auto", "ddp")
SCHEDULES = ("cosine", "constant")
#: TrainConfig fields that do not change a run's trajectory (left out of the resume key).
#: ``devices``/``num_nodes``/``strategy`` are replaced by the actual world size.
NOT_IN_KEY = (
    "steps",
    "log_every",
    "val_every",
    "checkpoint_every",
    "accelerator",
    "devices",
    "num_nodes",
    "strategy",
)


@dataclass
class TrainConfig:
    """Everything the engine needs to train; constructor args are the params block.

    Defaults are a small CPU run; seed 000's recipe (AdamW, cosine with warmup, effective
    batch 8, AMP, optional EMA) is the ``paper`` preset of each model in ``params.yaml``.
    """

    steps: int = 1000  # optimizer steps in total (a resumed run continues up to this)
    batch: int = 8  # examples per micro-batch and device (read by the data module)
    lr: float = 3e-4  # peak learning rate (AdamW)
    weight_decay: float = 0.01  # AdamW's decoupled weight decay
    warmup_steps: int = 0  # linear warmup from lr/warmup to lr over this many steps
    schedule: str = "cosine"  # cosine decay to 0 at `steps`, or constant
    accumulate: int = 1  # micro-batches per optimizer step (accumulate_grad_batches)
    grad_clip: float = 1.0  # gradient-norm clip; 0 disables it
    precision: str = "32"  # 32 | bf16-mixed | 16-mixed (GPU only) | auto (32 on CPU)
    ema_decay: float | None = None  # EMA of the weights (exported when on); null: off
    val_every: int = 0  # validate every this many steps (0: only at the end)
    checkpoint_every: int = 100  # save last.ckpt every this many steps (and at the end)
    seed: int = 0  # data order, crops, degradations, dropout
    accelerator: str = "auto"  # cpu | gpu | auto (a GPU when there is one)
    devices: int = 1  # devices per node (torchrun's --nproc_per_node wins)
    strategy: str = "auto"  # auto | ddp
    num_nodes: int = 1
    log_every: int = 10  # log the mean train loss of this many steps

    def __post_init__(self) -> None:
        problems = []
        for name in ("steps", "warmup_steps", "val_every"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        for name in ("batch", "accumulate", "checkpoint_every", "devices", "num_nodes"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.log_every < 1:
            problems.append("log_every must be >= 1")
        if not self.lr > 0 or self.weight_decay < 0 or self.grad_clip < 0:
            problems.append("need lr > 0, weight_decay >= 0, grad_clip >= 0")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            problems.append(f"ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        for name, allowed in (
            ("precision", PRECISIONS),
            ("accelerator", ACCELERATORS),
            ("strategy", STRATEGIES),
            ("schedule", SCHEDULES),
        ):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}")
        if problems:
            raise ValueError("; ".join(problems))


def config_from_params(params: Mapping[str, Any] | None, where: str = "train") -> TrainConfig:
    """:class:`TrainConfig` from a params block through :func:`musicrestore.core.config.merge`:
    unknown keys, wrong types and bad values are a one-line ConfigError naming ``where``."""
    from ..core.config import SEED_RANGE, merge

    return merge(  # type: ignore[no-any-return]
        TrainConfig,
        params,
        where,
        ranges={
            "steps": (0, None),
            "batch": (1, None),
            "warmup_steps": (0, None),
            "accumulate": (1, None),
            "grad_clip": (0.0, None),
            "weight_decay": (0.0, None),
            "val_every": (0, None),
            "checkpoint_every": (1, None),
            "devices": (1, None),
            "num_nodes": (1, None),
            "log_every": (1, None),
            "ema_decay": (0.0, 1.0, "a decay in (0, 1)"),
            "seed": SEED_RANGE,
        },
        positive=("lr",),
        choices={
            "precision": PRECISIONS,
            "accelerator": ACCELERATORS,
            "strategy": STRATEGIES,
            "schedule": SCHEDULES,
        },
    )


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of ``lr`` at optimizer step ``step`` (0-based): linear warmup over
    ``warmup_steps``, then cosine to 0 at ``steps`` (or flat for ``schedule: constant``)."""
    if config.warmup_steps and step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------------------------
# Resume key and the work folder


def world_size(config: TrainConfig) -> int:
    devices, nodes, _ = launch_settings(config)
    return devices * nodes


def launch_settings(config: TrainConfig) -> tuple[int, int, str]:
    """``(devices, num_nodes, strategy)``: under ``torchrun`` (Lightning's
    ``TorchElasticEnvironment`` detects it) the launcher's world, else the config's. The
    Trainer needs them: it checks its ``devices × num_nodes`` against the launcher's world."""
    if TorchElasticEnvironment.detect():
        elastic = TorchElasticEnvironment()
        world = elastic.world_size()
        local = int(os.environ["LOCAL_WORLD_SIZE"])  # devices per node (no getter for it)
        return local, max(1, world // local), "ddp" if world > 1 else config.strategy
    strategy = config.strategy
    if config.devices * config.num_nodes > 1 and strategy == "auto":
        strategy = "ddp"
    return config.devices, config.num_nodes, strategy


def is_rank_zero() -> bool:
    """Whether this process is global rank 0: Lightning's ``rank_zero_only.rank`` (the
    launcher's ``RANK``/``LOCAL_RANK`` before a Trainer exists, the strategy's global rank
    after), on node 0 (``NODE_RANK``, which Lightning's own launcher on several nodes needs
    and ``LOCAL_RANK`` alone does not tell); true when nothing is distributed."""
    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def make_resume_key(
    model_config: Mapping[str, Any], config: TrainConfig, data_hash: str, **extra: Any
) -> str:
    """What a checkpoint must match to be continued: the model's config, every train
    setting that changes the trajectory (not ``steps``, logging, checkpointing or the
    device kind), the world size, the training data's bytes (``data_hash``) and ``extra``."""
    fields = {k: v for k, v in asdict(config).items() if k not in NOT_IN_KEY}
    payload = {
        "model": model_config,
        "train": fields,
        "world": world_size(config),
        "data_hash": data_hash,
        "extra": extra,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Globals a work checkpoint may need beyond torch's own weights-only list (tensors,
#: storages, ``OrderedDict``, plain containers and numbers): none. What Lightning saves for
#: the modules of :mod:`.modules` (weights, optimizer and scheduler state, EMA, the
#: callbacks' state, loops) is all of that kind; a checkpoint that asks for anything else
#: was not written by this engine and is refused (:func:`checkpoint_step`).
CHECKPOINT_GLOBALS: tuple[Any, ...] = ()


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """The optimizer step a Lightning checkpoint was saved at; ``None`` if unreadable.

    Read with :func:`musicrestore.core.safeload.weights_only_load` (``weights_only=True``
    with :data:`CHECKPOINT_GLOBALS`: tensors and plain containers only, nothing runs),
    memory-mapped so a large checkpoint is not read whole. A truncated or damaged file is
    unreadable (the caller trains from scratch); one whose pickle asks for a global is not
    this engine's and is a one-line :class:`StageError`, never unpickled.
    """
    from ..core.safeload import RefusedPickle, weights_only_load

    try:
        ckpt = weights_only_load(path, CHECKPOINT_GLOBALS, mmap=True)
        return int(ckpt["global_step"])
    except RefusedPickle as exc:
        if exc.needs is None:
            log.warning("unreadable checkpoint %s (%s)", path, str(exc))
            return None
        raise StageError(
            f"{exc}; a work checkpoint of the training engine holds tensors and plain values "
            f"only, so this one was not written by it: delete {path} to train from scratch"
        ) from None
    except Exception as exc:
        log.warning("unreadable checkpoint %s (%s)", path, " ".join(str(exc).split())[:200])
        return None


def prepare_work_dir(work_dir: Path, key: str, steps: int) -> tuple[Path | None, int]:
    """``(checkpoint to resume or None, its step)``; a stale checkpoint (other key, past
    ``steps``, unreadable) is deleted with its ``loss.csv`` on rank 0, and ``resume.json``
    then records ``key`` (only after the deletion, so a stale checkpoint never matches)."""
    ckpt, meta = work_dir / CHECKPOINT, work_dir / RESUME_FILE
    stored = None
    with contextlib.suppress(OSError, ValueError, AttributeError):
        stored = json.loads(meta.read_text()).get("resume_key")
    reason = None
    if ckpt.is_file():
        if stored != key:
            reason = "is from another model, configuration or training data"
        else:
            step = checkpoint_step(ckpt)
            if step is None:
                reason = "is unreadable"
            elif step > steps:
                reason = f"is past step {steps} (the result must be what {steps} steps give)"
            else:
                log.info("resuming from step %d (%s)", step, ckpt)
                return ckpt, step
        log.warning("%s %s; training from scratch", ckpt, reason)
    if is_rank_zero():
        work_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*work_dir.glob("*.ckpt"), work_dir / LOSS_CSV]:
            stale.unlink(missing_ok=True)
        tmp = meta.with_name(f".{meta.name}.tmp")
        tmp.write_text(json.dumps({"resume_key": key}, indent=2) + "\n")
        os.replace(tmp, meta)
    return None, 0


# --------------------------------------------------------------------------------------------
# Callbacks


class StepSeed(pl.Callback):
    """Seeds torch before every micro-batch from ``(seed, global step, micro-batch, rank)``,
    so dropout and any other draw in the model are the same after a resume; the caller's
    global RNG state is restored when fitting ends."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._saved: Any = None

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        import torch

        self._saved = torch.get_rng_state()

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        import torch

        if self._saved is not None:
            torch.set_rng_state(self._saved)

    def on_train_batch_start(
        self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
    ) -> None:
        import torch

        micro = batch_idx % trainer.accumulate_grad_batches
        text = f"{self.seed}|{trainer.global_step}|{micro}|{trainer.global_rank}"
        torch.manual_seed(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1)


class History(pl.Callback):
    """Per-step mean training loss (over the micro-batches of the step and the ranks), kept in
    the checkpoint so a resumed run has the whole curve (:attr:`FitResult.losses`, exact
    across a resume); every ``log_every`` steps (and at the last) ``on_log(step, mean of
    the last log_every losses)`` on rank 0. A non-finite loss stops training with a
    StageError. What the loggers get is the modules' ``self.log``, not this."""

    def __init__(self, log_every: int, on_log: Callable[[int, float], None] | None = None) -> None:
        self.log_every = log_every
        self.on_log = on_log
        self.losses: list[float] = []
        self._pending: list[float] = []
        self._step = 0

    def state_dict(self) -> dict[str, Any]:
        return {"losses": [float(v) for v in self.losses]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.losses = [float(v) for v in state_dict.get("losses", [])]

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._step = trainer.global_step
        self.losses = self.losses[: self._step]
        self._pending = []

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        if loss is None:
            return
        # Lightning hands back the loss divided by accumulate (what was back-propagated).
        self._pending.append(float(loss) * trainer.accumulate_grad_batches)
        if trainer.global_step == self._step:
            return  # inside an accumulation window: no optimizer step yet
        self._step = step = trainer.global_step
        value = sum(self._pending) / len(self._pending)
        self._pending = []
        if trainer.world_size > 1:  # every rank calls this: the mean over all ranks' batches
            import torch

            local = torch.tensor(value, dtype=torch.float32, device=pl_module.device)
            value = float(trainer.strategy.reduce(local, reduce_op="mean"))
        if not math.isfinite(value):
            raise StageError(f"training diverged at step {step} (loss {value}); lower lr")
        self.losses.append(value)
        if self.on_log is None or (step % self.log_every and step != trainer.max_steps):
            return
        if trainer.is_global_zero:
            window = self.losses[-self.log_every :]
            self.on_log(step, sum(window) / len(window))


# --------------------------------------------------------------------------------------------
# fit


@dataclass
class FitResult:
    step: int  # optimizer steps done in total
    resumed_from: int  # step this call started at (0: from scratch)
    losses: list[float]  # per-step training loss since step 0
    metrics: dict[str, float]  # final validation metrics (empty without validation data)
    work_dir: Path


def resolve_hardware(config: TrainConfig) -> tuple[str, str]:
    """``(accelerator, precision)`` for Lightning: ``auto`` is a GPU when CUDA is available;
    precision ``auto`` is bf16-mixed on a GPU (16-mixed where bf16 is unsupported) and 32 on
    the CPU; mixed precision on the CPU is refused (slow and not seed 000's recipe)."""
    import torch

    accelerator = config.accelerator
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    accelerator = "gpu" if accelerator == "cuda" else accelerator
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise StageError("accelerator gpu asked for, but CUDA is not available")
    precision = config.precision
    if precision == "auto":
        if accelerator == "gpu":
            precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        else:
            precision = "32"
    if precision.endswith("-mixed") and accelerator == "cpu":
        raise StageError(f"precision {precision} needs a GPU; use 32 (or auto) on the CPU")
    return accelerator, "32-true" if precision == "32" else precision


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Lightning's start-up chatter (GPU available, tips) and the warnings that do not apply
    here. The others are fixed where they arise: ``save_top_k=0`` (no "checkpoint directory
    not empty"), a CSV writer that keeps ``loss.csv`` across a resume (no "logs directory
    not empty"); every module's ``training_step`` returns its loss."""
    names = ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    if os.environ.get("LOGLEVEL", "").upper() != "DEBUG":
        for lg in loggers:
            lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in (
                # data loading is cheap, or runs in workers by choice (``data.workers``)
                ".*does not have many workers.*",
                # a finite loader shorter than log_every: steps, not epochs, are logged
                ".*log_every_n_steps.*",
                # Lightning's own use of a torch pytree API that newer torch deprecates
                ".*LeafSpec.*",
                # an empty loader (a run without validation examples)
                ".*Total length of .* across ranks is zero.*",
                # manual optimisation (GANModule): last.ckpt holds the state after the step,
                # as it does with automatic optimisation
                ".*manual optimization and every_n_train_steps.*",
            ):
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def fit(
    module: Any,
    data: Any,
    config: TrainConfig,
    work_dir: str | os.PathLike[str],
    run: Any = None,
    progress: bool = True,
    *,
    resume_key: str | None = None,
    on_log: Callable[[int, float], None] | None = None,
    callbacks: Sequence[Any] = (),
) -> FitResult:
    """Train ``module`` (a :class:`.modules.TrainModule`) up to ``config.steps``, resuming
    from ``work_dir/last.ckpt`` when its resume key matches.

    Args:
        module: the LightningModule; :meth:`~.modules.TrainModule.configure_training` is
            called with ``config`` (optimizer, schedule, EMA). A module with manual
            optimisation (:class:`~.modules.GANModule`) clips by itself and needs
            ``accumulate: 1``.
        data: a LightningDataModule (:class:`.data.StepDataModule` resumes its data stream
            exactly), a ``(train_loader, val_loader)`` pair or a train loader.
        config: the run's settings.
        work_dir: persistent folder of ``last.ckpt``, ``resume.json`` and ``loss.csv``.
        run: the stage's :class:`musicrestore.tracking.StageRun` (metrics go there too).
        progress: Lightning's progress bar.
        resume_key: what a checkpoint must match; default :func:`make_resume_key` of
            ``module.model_config()`` and ``data.data_hash``.
        on_log: called on rank 0 with ``(step, mean train loss)`` at every log point.
        callbacks: more Lightning callbacks.

    Returns:
        :class:`FitResult`; ``module`` holds the trained weights (EMA in its ``ema``).
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    accelerator, precision = resolve_hardware(config)
    devices, num_nodes, strategy = launch_settings(config)
    if resume_key is None:
        model_config = module.model_config() if hasattr(module, "model_config") else {}
        resume_key = make_resume_key(model_config, config, str(getattr(data, "data_hash", "")))
    ckpt, start = prepare_work_dir(work, resume_key, config.steps)
    module.configure_training(config)
    # A module that steps its optimizers by hand (the adversarial one, .modules.GANModule)
    # clips its own gradients and does not accumulate: Lightning refuses both settings then.
    manual = not getattr(module, "automatic_optimization", True)
    if manual and config.accumulate != 1:
        raise StageError(f"{type(module).__name__} optimizes by hand: train.accumulate must be 1")

    if isinstance(data, pl.LightningDataModule):
        fit_data: dict[str, Any] = {"datamodule": data}
        has_val = bool(getattr(data, "has_val", True))
    elif isinstance(data, tuple | list):
        fit_data = {"train_dataloaders": data[0], "val_dataloaders": data[1]}
        has_val = data[1] is not None
    else:
        fit_data, has_val = {"train_dataloaders": data}, False
    val_every = config.val_every if has_val and config.val_every else config.steps + 1

    history = History(config.log_every, on_log)
    checkpointing = pl.callbacks.ModelCheckpoint(
        dirpath=work,
        filename="step{step}",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=config.checkpoint_every,
        save_on_train_epoch_end=False,
        enable_version_counter=False,
    )
    loggers: list[Any] = [LossCSVLogger(work, start_step=start)]
    if run is not None:
        loggers.append(StageRunLogger(run))
    with _quiet():
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy=strategy,
            precision=precision,  # type: ignore[arg-type]
            max_steps=config.steps,
            max_epochs=-1,
            accumulate_grad_batches=1 if manual else config.accumulate,
            gradient_clip_val=None if manual else config.grad_clip or None,
            val_check_interval=max(1, val_every * config.accumulate),
            check_val_every_n_epoch=None,
            num_sanity_val_steps=0,
            logger=loggers,
            callbacks=[StepSeed(config.seed), history, *callbacks, checkpointing],
            enable_progress_bar=progress,
            enable_model_summary=False,
            log_every_n_steps=config.log_every,
            use_distributed_sampler=False,
            default_root_dir=str(work),
        )
        for logger in loggers:  # optimizer steps done, for train and validation rows alike
            logger.step_source = lambda: trainer.global_step
        trainer.fit(module, **fit_data, ckpt_path=str(ckpt) if ckpt else None, weights_only=True)
        if trainer.global_step != start or ckpt is None:
            trainer.save_checkpoint(work / CHECKPOINT)  # the final state, whatever the period
        metrics: dict[str, float] = {}
        if has_val:
            val_data = (
                {"datamodule": data} if "datamodule" in fit_data else {"dataloaders": data[1]}
            )
            step = trainer.global_step
            if (step == start and ckpt is not None) or (config.val_every and not step % val_every):
                trainer.loggers = []  # this step's validation is logged already
            out = trainer.validate(module, **val_data, verbose=False)
            metrics = {k: float(v) for k, v in (out[0] if out else {}).items()}
    return FitResult(
        step=int(trainer.global_step),
        resumed_from=start,
        losses=list(history.losses),
        metrics=metrics,
        work_dir=work,
    )
