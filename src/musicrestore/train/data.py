"""Training data for the engine: crops of dataset folders, degraded on the fly, in an order
that is a function of the optimizer step.

- :class:`CropDataset`: the examples of one or more dataset folders (the contract of
  :mod:`musicrestore.data.dataset`: ``manifest.jsonl`` with ``mixture``/``target`` paths), as
  seeded random crops of ``crop_s`` seconds, mono or stereo. With ``on_the_fly`` every
  draw takes the clean *target* crop and degrades it afresh with a chain of
  :mod:`.on_the_fly` (:data:`~.on_the_fly.CHAINS`; the MusicGen-like chain of seed 000 §3
  for T1, docs/method.md#musicgen-like), so a model sees a new degradation of every crop in
  every epoch; without it the cached degraded ``mixture`` is cropped at the same place.
  Everything an item draws comes from ``(seed, epoch, index)``: the same seed gives the
  same stream, another epoch other crops and degradations.
- Validation: the last ``val_fraction`` of the examples sorted by id (at most ``val_max``)
  are held out of training and scored with fixed crops and degradations.
- :class:`~.on_the_fly.MSRChain` (``chain: msr``): seed 004's MSR example drawn afresh
  from the clean target and the clean background (docs/method.md#msr-degradation), for
  datasets whose manifest names the background.
- :class:`StepSampler` / :class:`StepDataModule`: sample ``k`` of the stream is item ``k``
  of the dataset, and micro-batch ``m`` of rank ``r`` takes samples
  ``(m·world + r)·batch ...``: the loader built after a checkpoint is restored starts at
  ``global_step × accumulate``, so a resumed run sees exactly the data the uninterrupted
  run would have, on any number of devices. :class:`StagedBatchSampler` does the same
  for a batch size that changes at one step (the U-Former's second stage).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

try:
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - whichever is installed
    import pytorch_lightning as pl

from ..core.errors import StageError
from ..data.dataset import Example, read_manifest
from .on_the_fly import CHAINS

#: Keeps validation streams apart from the training epochs' streams.
_VAL_STREAM = 1 << 32


@dataclass
class DataConfig:
    """How a model's training data is drawn; the ``data`` block of a model preset."""

    crop_s: float = 3.0  # crop length (s); seed 000 trains on 3-4 s crops
    channels: int = 1  # 1: mono (seed 000's U-Net and WaveNet), 2: stereo
    sr: int | None = None  # model rate; null: the dataset's own (examples are resampled)
    on_the_fly: bool = True  # a fresh degradation of the clean target per draw
    chain: str = "musicgen_like"  # degradation chain for on_the_fly (CHAINS)
    degrade: dict[str, Any] = field(default_factory=dict)  # overrides of the chain's config
    val_fraction: float = 0.1  # last fraction of the examples (by id) held out
    val_max: int = 64  # at most this many validation examples
    workers: int = 0  # DataLoader worker processes (0: in the training process)
    # training-crop augmentation before an on-the-fly chain (validation crops are never
    # augmented); both off by default, and off they draw nothing from the stream
    eq_db: float = 0.0  # random low and high shelf, each with a gain in [-eq_db, +eq_db]
    remix: float = 0.0  # probability of mixing in a crop of another training example

    def __post_init__(self) -> None:
        if not self.crop_s > 0 or self.channels not in (1, 2):
            raise ValueError(
                f"need crop_s > 0 and channels 1 or 2; got {self.crop_s}, {self.channels}"
            )
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.chain not in CHAINS:
            raise ValueError(f"chain must be one of {', '.join(CHAINS)}, got {self.chain!r}")


def data_config_from_params(params: Mapping[str, Any] | None, where: str = "data") -> DataConfig:
    """:class:`DataConfig` through :func:`musicrestore.core.config.merge`; ``degrade`` is checked
    by the chain's own config merge (unknown keys and bad values are errors too)."""
    from ..core.config import ConfigError, merge

    config: DataConfig = merge(
        DataConfig,
        params,
        where,
        ranges={
            "channels": (1, 2),
            "val_fraction": (0.0, 0.99),
            "val_max": (0, None),
            "workers": (0, None),
            "sr": (1000, 384000),
            "eq_db": (0.0, 24.0),
            "remix": (0.0, 1.0),
        },
        positive=("crop_s",),
        choices={"chain": tuple(CHAINS)},
        open_keys=("degrade", "degrade.*"),
    )
    try:  # validate the overrides now, not in a worker
        CHAINS[config.chain](config.degrade)
    except ConfigError as exc:  # the chain names its block "degrade": give the full path
        raise ConfigError(f"{where}.{exc}") from None
    return config


# --------------------------------------------------------------------------------------------
# Examples and crops


def data_hash(folders: Sequence[str | os.PathLike[str]]) -> str:
    """SHA-256 over every manifest and the bytes of every file it names, in a fixed order:
    what a resumed run must have trained on (the resume key carries it)."""
    digest = hashlib.sha256()
    for folder in folders:
        folder = Path(folder)
        manifest = folder / "manifest.jsonl"
        digest.update(manifest.read_bytes())
        names = sorted({p for ex in read_manifest(folder) for p in _files(ex) if p})
        for name in names:
            digest.update(name.encode() + b"\0")
            with open(folder / name, "rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
    return digest.hexdigest()


def _background(ex: Example) -> str | None:
    """The clean background file of an MSR example, when its manifest names one."""
    value = ex.meta.get("background") if isinstance(ex.meta, Mapping) else None
    return str(value) if value else None


def _files(ex: Example) -> tuple[str | None, ...]:
    return (ex.mixture, ex.target, _background(ex))


def split_examples(
    folders: Sequence[str | os.PathLike[str]], val_fraction: float, val_max: int
) -> tuple[list[tuple[Path, Example]], list[tuple[Path, Example]]]:
    """``(train, val)`` ``(folder, example)`` pairs with a target: sorted by id (then
    folder), the last ``ceil(val_fraction · n)`` (at most ``val_max``, and never all of
    them) are the validation set."""
    items = sorted(
        ((Path(f), ex) for f in folders for ex in read_manifest(f) if ex.target),
        key=lambda p: (p[1].id, str(p[0])),
    )
    if not items:
        raise StageError(f"{', '.join(map(str, folders))}: no examples with a target to train on")
    n_val = min(math.ceil(val_fraction * len(items)), val_max, len(items) - 1)
    cut = len(items) - max(0, n_val)
    return items[:cut], items[cut:]


class CropDataset(Dataset):
    """Crops of ``(degraded, clean)`` pairs as float32 tensors ``(C, L)``.

    Training (``split="train"``): item ``k`` is sample ``k`` of an endless stream: epoch
    ``k // n`` visits the examples in a permutation drawn from ``(seed, epoch)``, and each
    draw crops (and, with ``on_the_fly``, degrades) with ``default_rng([seed, epoch, i])``.
    Validation (``split="val"``): item ``j`` is validation example ``j`` with a crop and
    degradation fixed by ``(seed, j)``.
    """

    def __init__(
        self,
        examples: Sequence[tuple[Path, Example]],
        config: DataConfig,
        seed: int = 0,
        split: str = "train",
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be train or val, got {split!r}")
        if not examples:
            raise StageError(f"no {split} examples")
        self.examples = list(examples)
        self.config = config
        self.seed = int(seed)
        self.split = split
        rates = {ex.sr for _, ex in self.examples}
        if config.sr is None and len(rates) > 1:
            raise StageError(f"examples at several rates {sorted(rates)}; set data.sr")
        self.sr = int(config.sr or rates.pop())
        self.length = int(round(config.crop_s * self.sr))
        self.chain = CHAINS[config.chain](config.degrade) if config.on_the_fly else None
        if getattr(self.chain, "needs_background", False):
            lacking = [ex.id for _, ex in self.examples if _background(ex) is None]
            if lacking:
                raise StageError(
                    f"data.chain {config.chain} needs each example's clean background "
                    f"(manifest meta.background), which {lacking[0]} and {len(lacking) - 1} "
                    "more lack (the cached MSR sets hold mixture and target only): set "
                    "data.on_the_fly: false to train on the cached mixtures"
                )
        self._audio: dict[Path, np.ndarray] = {}
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.examples)  # training: one epoch of the endless stream

    def _load(self, path: Path) -> np.ndarray:
        if path not in self._audio:
            from ..core.audio import load_audio

            wave, _ = load_audio(path, sr=self.sr, channels=self.config.channels)
            self._audio[path] = wave
        return self._audio[path]

    def permutation(self, epoch: int) -> np.ndarray:
        if self._perm is None or self._perm[0] != epoch:
            self._perm = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self)))
        return self._perm[1]

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.split == "val":
            return self.item(int(k), rng=np.random.default_rng([self.seed, _VAL_STREAM, int(k)]))
        epoch, pos = divmod(int(k), len(self))
        return self.item(int(self.permutation(epoch)[pos]), epoch)

    def item(
        self, index: int, epoch: int = 0, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(degraded, clean)`` of example ``index`` as drawn in ``epoch``."""
        rng = rng if rng is not None else np.random.default_rng([self.seed, epoch, index])
        folder, ex = self.examples[index]
        assert ex.target is not None
        clean_full = self._load(folder / ex.target)
        start = self._random_start(clean_full, rng)
        clean = _crop(clean_full, start, self.length)
        if self.split == "train" and self.chain is not None:
            clean = self._augment(clean, index, rng)
        if self.chain is not None and getattr(self.chain, "needs_background", False):
            background = _crop(self._load(folder / str(_background(ex))), start, self.length)
            degraded, clean = self.chain(clean, rng, self.sr, background)
        elif self.chain is not None:
            degraded, clean = self.chain(clean, rng, self.sr)
        else:
            degraded = _crop(self._load(folder / ex.mixture), start, self.length)
        return torch.from_numpy(np.ascontiguousarray(degraded)), torch.from_numpy(
            np.ascontiguousarray(clean)
        )

    def _random_start(self, wave: np.ndarray, rng: np.random.Generator) -> int:
        """A crop start drawn uniformly over ``wave`` (0 when it is shorter than a crop)."""
        return int(rng.integers(0, max(0, wave.shape[-1] - self.length) + 1))

    def _augment(self, clean: np.ndarray, index: int, rng: np.random.Generator) -> np.ndarray:
        """The clean training crop, varied before the chain degrades it (``data.remix``,
        ``data.eq_db``): with probability ``remix`` a crop of another example is mixed in
        (weights 0.3-0.7 and the rest), as source-separation trainers remix stems across
        songs, so denser textures than one rendered song appear; then with ``eq_db > 0`` a
        low shelf (80-400 Hz) and a high shelf (2-8 kHz), each with a gain drawn from
        ``[-eq_db, eq_db]`` (pedalboard), so the model does not learn one soundfont's
        spectral balance as "clean". Nothing is drawn from ``rng`` for a lever that is off,
        so a config without them gives the stream it gave before. ``MSRChain`` examples
        mix their own background, so ``remix`` leaves them alone."""
        cfg = self.config
        own_mix = getattr(self.chain, "needs_background", False)
        if cfg.remix > 0 and not own_mix and len(self.examples) > 1 and rng.random() < cfg.remix:
            other = int(rng.integers(len(self.examples) - 1))
            other += other >= index  # any example but this one
            folder, ex = self.examples[other]
            assert ex.target is not None
            wave = self._load(folder / ex.target)
            other_crop = _crop(wave, self._random_start(wave, rng), self.length)
            weight = float(rng.uniform(0.3, 0.7))
            clean = weight * clean + (1.0 - weight) * other_crop
        if cfg.eq_db > 0:
            import pedalboard

            low_hz, high_hz = np.exp(rng.uniform(np.log([80.0, 2000.0]), np.log([400.0, 8000.0])))
            low_db, high_db = rng.uniform(-cfg.eq_db, cfg.eq_db, size=2)
            board = pedalboard.Pedalboard(
                [
                    pedalboard.LowShelfFilter(float(low_hz), float(low_db)),
                    pedalboard.HighShelfFilter(float(min(high_hz, 0.45 * self.sr)), float(high_db)),
                ]
            )
            clean = board(np.ascontiguousarray(clean, np.float32), self.sr)
        return np.asarray(clean, np.float32)


def _crop(wave: np.ndarray, start: int, length: int) -> np.ndarray:
    out = np.zeros((wave.shape[0], length), np.float32)
    piece = wave[:, start : start + length]
    out[:, : piece.shape[-1]] = piece
    return out


class SeededBatches(Dataset):
    """Item ``k`` is a whole batch ``make_batch(np.random.default_rng([seed, k]))`` as
    tensors (for the separator's song-level sampling; use with ``batch=None``)."""

    def __init__(
        self, make_batch: Callable[[np.random.Generator], Sequence[Any]], seed: int
    ) -> None:
        self.make_batch = make_batch
        self.seed = int(seed)

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, k: int) -> tuple[torch.Tensor, ...]:
        items = self.make_batch(np.random.default_rng([self.seed, int(k)]))
        return tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in items)


# --------------------------------------------------------------------------------------------
# Step-indexed loading


class StepSampler(Sampler[int]):
    """Endless sample ids for one rank: micro-batch ``m`` (from ``start``) of rank ``rank``
    is ``(m·world + rank)·per_batch + [0, per_batch)``. No ``__len__``: Lightning treats the
    loader as infinite and ``max_steps`` ends training."""

    def __init__(self, start: int, per_batch: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.per_batch, self.rank, self.world = start, per_batch, rank, world

    def __iter__(self) -> Iterator[int]:
        m = self.start
        while True:
            base = (m * self.world + self.rank) * self.per_batch
            yield from range(base, base + self.per_batch)
            m += 1


class StagedBatchSampler(Sampler[list[int]]):
    """Endless batches of sample ids for one rank with a batch size that changes once:
    micro-batches ``m < at`` hold ``batch`` samples, later ones ``then`` (the U-Former's
    second stage trains on smaller batches, seed 004 §4.1). Micro-batch ``m`` of rank ``r``
    takes the ids :class:`StepSampler` would give it, counted from the switch on with the new
    size, so a loader built at any ``start`` continues the uninterrupted stream."""

    def __init__(
        self, start: int, batch: int, at: int, then: int, rank: int = 0, world: int = 1
    ) -> None:
        self.start, self.batch, self.at, self.then = start, batch, at, then
        self.rank, self.world = rank, world

    def first(self, m: int) -> int:
        """Id of the first sample of micro-batch ``m`` of this rank."""
        if m < self.at:
            return (m * self.world + self.rank) * self.batch
        return (
            self.at * self.world * self.batch + ((m - self.at) * self.world + self.rank) * self.then
        )

    def __iter__(self) -> Iterator[list[int]]:
        m = self.start
        while True:
            size = self.batch if m < self.at else self.then
            yield list(range(self.first(m), self.first(m) + size))
            m += 1


class StepDataModule(pl.LightningDataModule):
    """Train and validation loaders for :func:`.engine.fit`.

    Args:
        train: a dataset indexed by sample id (:class:`CropDataset`, :class:`SeededBatches`).
        val: a finite validation dataset, or ``None``; split across ranks.
        batch: examples per micro-batch; ``None`` when each item is already a batch.
        workers: DataLoader worker processes (spawned; 0 loads in the training process).
        data_hash: hash of the training data's bytes (part of the resume key).
        switch: ``(micro-batch, batch)``: from that micro-batch on, batches of the second
            size (:class:`StagedBatchSampler`); ``None`` keeps ``batch`` throughout.
    """

    def __init__(
        self,
        train: Dataset,
        val: Dataset | None = None,
        batch: int | None = None,
        workers: int = 0,
        data_hash: str = "",
        switch: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.train_set, self.val_set = train, val
        self.batch, self.workers, self.data_hash = batch, workers, data_hash
        if switch is not None and batch is None:
            raise ValueError("a batch switch needs a batch size")
        self.switch = switch

    @property
    def has_val(self) -> bool:
        return self.val_set is not None and len(self.val_set) > 0  # type: ignore[arg-type]

    def _world(self) -> tuple[int, int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 0, 1
        start = trainer.global_step * trainer.accumulate_grad_batches
        return start, trainer.global_rank, trainer.world_size

    def _loader_kwargs(self) -> dict[str, Any]:
        if not self.workers:
            return {"num_workers": 0}
        return {"num_workers": self.workers, "multiprocessing_context": "spawn"}

    def train_dataloader(self) -> DataLoader:
        start, rank, world = self._world()
        if self.switch is not None:
            assert self.batch is not None
            staged = StagedBatchSampler(start, self.batch, *self.switch, rank=rank, world=world)
            return DataLoader(self.train_set, batch_sampler=staged, **self._loader_kwargs())
        sampler = StepSampler(start, self.batch or 1, rank, world)
        return DataLoader(
            self.train_set, batch_size=self.batch, sampler=sampler, **self._loader_kwargs()
        )

    def val_dataloader(self) -> Any:
        if not self.has_val:
            return []
        _, rank, world = self._world()
        assert self.val_set is not None
        shard = Subset(self.val_set, range(rank, len(self.val_set), world))  # type: ignore[arg-type]
        return DataLoader(shard, batch_size=self.batch or 1, shuffle=False, **self._loader_kwargs())


def denoiser_data(
    folders: Sequence[str | os.PathLike[str]],
    config: DataConfig,
    batch: int,
    seed: int,
    switch: tuple[int, int] | None = None,
) -> StepDataModule:
    """The :class:`StepDataModule` of a denoiser trained on dataset ``folders``
    (``switch``: see :class:`StepDataModule`)."""
    train, val = split_examples(folders, config.val_fraction, config.val_max)
    return StepDataModule(
        CropDataset(train, config, seed, "train"),
        CropDataset(val, config, seed, "val") if val else None,
        batch=batch,
        workers=config.workers,
        data_hash=data_hash(folders),
        switch=switch,
    )
