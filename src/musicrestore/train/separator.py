"""Training a Hybrid Transformer Demucs on the RawStems training songs, inside the pipeline.

The separator of seeds 000/001 and of the MSR ``demucs`` baseline (docs/method.md#separator)
is HTDemucs (Rouard, Massa & Défossez, "Hybrid Transformers for Music Source Separation",
ICASSP 2023). Pretrained weights need the Hugging Face hub, which the default pipeline cannot
reach (docs/method.md#offline), so the default trains a small HTDemucs here on the stems of
the songs that are in no test split (seed 004 §3 splits;
:func:`musicrestore.data.taxonomy.test_songs`). First-level groups are summed into Demucs' four
sources with :func:`musicrestore.separation.target_source` (Voc -> vocals, Rhy -> drums,
Bass -> bass, the rest -> other; MiscRoom is left out).

Training follows demucs' recipe at a smaller scale: random segments, per-source random gain,
sign and channel flips, remixing sources across songs (Défossez et al. 2019, §4.2 "remixing";
the batches come from :mod:`musicrestore.train.separator_data`), L1 loss on waveforms, Adam
at a constant rate. It runs on the pipeline's one training engine
(:mod:`musicrestore.train.engine`, PyTorch Lightning): its working checkpoint
``last.ckpt`` (weights, optimizer, step, loss history) makes training resume where it
stopped when the resume key (configuration, training songs, their audio bytes) matches.
The result is exported in Demucs' own repository format
(:func:`musicrestore.separation.export_repo`), so ``load_separator("trained", repo=DIR)`` and
``demucs.pretrained.get_model("trained", repo=DIR)`` both load it, then evaluated with SI-SDR
per source on 10-s segments of the test songs against the unprocessed mixture as a baseline.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..core.audio import atomic_path
from ..core.errors import StageError
from ..data.taxonomy import Song, read_splits, scan
from ..separation import (
    SOURCES,
    TRAINED,
    DemucsSeparator,
    Separator,
    export_repo,
    load_separator,
)
from .separator_data import SongBank, partition_songs, sample_batch

log = logging.getLogger(__name__)

#: The engine's resumable working checkpoint (a private work file; see
#: :mod:`musicrestore.train.engine`).
CHECKPOINT = "last.ckpt"


@dataclass
class SeparatorTrainConfig:
    """Everything a training run depends on; constructor args are the config.

    The defaults are the small CPU profile of the embedded dataset: 0.36 M parameters, about
    1-2 s a step on a shared 2-core machine (600 steps: 10-15 min; 300 steps already lower
    the loss but do not yet beat the unseparated mixture's mean test SI-SDR). Paper scale
    (HTDemucs as trained in Rouard et al. 2023, demucs' ``grids/mmi.py``): ``model:
    {dconv_mode: 3, t_dropout: 0.02}`` (HTDemucs defaults otherwise: channels 48, depth 4,
    t_layers 5, nfft 4096; 27.4 M parameters), ``segment_s: 10``, ``batch: 4`` per device
    on ``devices: 8`` (32 in all), ``lr: 3e-4``, ``steps: 288000`` (360 epochs of 800
    batches), ``device: cuda`` (optionally ``precision: bf16-mixed``).
    """

    steps: int = 600  # optimizer steps in total (a resumed run continues up to this)
    batch: int = 4  # segments per step
    segment_s: float = 2.0  # training segment; HTDemucs' transformer is bound to it at inference
    lr: float = 1e-3  # Adam; demucs uses 3e-4 at paper scale, a tiny model tolerates more
    seed: int = 0  # weights init and every batch (batch k draws from seed and k)
    sr: int = 44100  # model rate; every Demucs release runs at 44.1 kHz
    gain_db: tuple[float, float] = (-9.0, 3.0)  # per-source random gain range (dB)
    flip_p: float = 0.5  # probability of a sign flip and, separately, a left/right swap per source
    remix_p: float = 0.5  # probability a segment mixes sources drawn from different songs
    clip_grad: float = 5.0  # gradient norm clip; 0 disables it
    device: str = "cpu"  # "cuda" for the paper-scale setting
    devices: int = 1  # data-parallel devices (DDP; each draws its own batch); torchrun wins
    strategy: str = "auto"  # auto | ddp
    precision: str = "32"  # 32, or bf16-mixed / 16-mixed on a GPU
    log_every: int = 10  # report the mean loss of this many steps
    checkpoint_every: int = 50  # save last.ckpt every this many steps (and at the end)
    max_cached_songs: int = 64  # songs kept decoded in memory (the embedded set fits)
    model: dict[str, Any] = field(
        default_factory=lambda: {"channels": 8, "depth": 4, "t_layers": 1}
    )  # HTDemucs kwargs; keep depth 4 (depth 2 makes the transformer sequence explode)

    def __post_init__(self) -> None:
        self.gain_db = (float(self.gain_db[0]), float(self.gain_db[1]))
        self.model = dict(self.model)
        if self.steps < 0 or self.batch < 1 or self.segment_s <= 0:
            raise ValueError(
                f"need steps >= 0, batch >= 1, segment_s > 0; got {self.steps}, {self.batch}, "
                f"{self.segment_s}"
            )
        if not (0.0 <= self.flip_p <= 1.0 and 0.0 <= self.remix_p <= 1.0):
            raise ValueError("flip_p and remix_p are probabilities in [0, 1]")
        if self.gain_db[0] > self.gain_db[1]:
            raise ValueError(f"gain_db must be (low, high), got {self.gain_db}")
        if self.devices < 1:
            raise ValueError(f"devices must be >= 1, got {self.devices}")

    def resume_key(self, train_songs: Sequence[str], data_hash: str = "") -> str:
        """What a checkpoint must match to be continued: everything that changes the model's
        trajectory (not ``steps``, logging, caching or the device), the training songs and
        the bytes of their audio (``data_hash``, :func:`audio_hash`): the same names with
        other audio (a new dataset revision, another ``duration_s``) train from scratch."""
        fields = asdict(self)
        for name in (
            "steps",
            "device",
            "strategy",
            "log_every",
            "checkpoint_every",
            "max_cached_songs",
        ):
            fields.pop(name)
        fields["train_songs"] = sorted(train_songs)
        fields["data_hash"] = data_hash
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def audio_hash(root: str | os.PathLike[str], songs: Sequence[Song]) -> str:
    """SHA-256 over the relative path and the bytes of every stem file of ``songs``: the
    content that DVC's hash of the dataset folder covers, restricted to what training reads
    (~0.3 s for 150 MB)."""
    digest = hashlib.sha256()
    for stem in sorted((st for song in songs for st in song.stems), key=lambda st: st.path):
        digest.update(stem.path.encode() + b"\0")
        with open(Path(root) / stem.path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def config_from_params(params: Mapping[str, Any] | None) -> SeparatorTrainConfig:
    """``SeparatorTrainConfig`` from the ``separate.train`` block through
    :func:`musicrestore.core.config.merge`: unknown keys, wrong types and out-of-range values are
    a one-line :class:`~musicrestore.core.config.ConfigError` (a :class:`StageError`). ``model``
    is open: any HTDemucs keyword may be added to it."""
    from ..core.config import SEED_RANGE, device_problem, merge

    return merge(  # type: ignore[no-any-return]
        SeparatorTrainConfig,
        params,
        "separate.train",
        ranges={
            "steps": (0, None),
            "batch": (1, None),
            "flip_p": (0.0, 1.0, "a probability"),
            "remix_p": (0.0, 1.0, "a probability"),
            "clip_grad": (0.0, None),
            "log_every": (1, None),
            "checkpoint_every": (1, None),
            "max_cached_songs": (1, None),
            "sr": (1000, 384000, "a sample rate in Hz"),
            "devices": (1, None),
            "seed": SEED_RANGE,
            "gain_db": (-60.0, 60.0, "a gain in dB"),
            # the HTDemucs keywords of the default model (any other passes through)
            "model.channels": (1, None),
            "model.depth": (1, None),
            "model.t_layers": (0, None),
        },
        positive=("segment_s", "lr"),
        pairs=("gain_db",),
        choices={"strategy": ("auto", "ddp"), "precision": ("32", "bf16-mixed", "16-mixed")},
        checks={"device": lambda v: device_problem(v, auto=False)},
        open_keys=("model",),
    )


@dataclass(frozen=True)
class SeparatorEvalConfig:
    """The ``separate.eval`` block: how :func:`build_separator` scores the separator on the
    test songs (SI-SDR per source on segments of ``segment_s``, at most ``max_segments`` of
    them; ``None``: every segment)."""

    segment_s: float = 10.0
    max_segments: int | None = 24


#: The ``separate`` block: which separator (``trained`` or a pretrained Demucs name), a local
#: Demucs folder for a pretrained one, and the ``train`` and ``eval`` blocks (checked by
#: :func:`config_from_params` and as :class:`SeparatorEvalConfig`).
SEPARATE_DEFAULTS: dict[str, Any] = {
    "model": TRAINED,
    "repo": None,
    "trust_pickle": False,  # load .th packages of `repo` with pickle (runs their code)
    "train": {},
    "eval": {},
}


def separate_settings(block: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    """The whole ``separate`` block through :func:`musicrestore.core.config.merge`, before any
    work: ``{"model", "repo", "train": the given train block with ``seed`` defaulting to the
    pipeline's, "train_config": its :class:`SeparatorTrainConfig`, "eval":
    :class:`SeparatorEvalConfig`}``. An unknown key, a wrong type or a value out of range is a
    one-line :class:`~musicrestore.core.config.ConfigError` naming ``separate.<key>``."""
    from ..core.config import ConfigError, merge, optional_str_problem

    settings: dict[str, Any] = merge(
        SEPARATE_DEFAULTS,
        block,
        "separate",
        checks={"repo": optional_str_problem},
        open_keys=("train", "eval"),
    )
    if not settings["model"]:
        raise ConfigError("separate.model: got ''; expected trained or a Demucs model name")
    # The pipeline's one seed seeds this training too unless separate.train.seed overrides it.
    settings["train"] = dict(settings["train"])
    settings["train"].setdefault("seed", seed)
    settings["train_config"] = config_from_params(settings["train"])
    settings["eval"] = merge(
        SeparatorEvalConfig,
        settings["eval"],
        "separate.eval",
        ranges={"max_segments": (1, None)},
        positive=("segment_s",),
    )
    return settings


@dataclass
class TrainResult:
    model: Any  # the trained demucs HTDemucs, in eval mode, on the CPU
    step: int  # optimizer steps done in total
    resumed_from: int  # step the run started at (0: from scratch)
    losses: list[float]  # per-step training loss since step 0
    train_songs: list[str]


# --------------------------------------------------------------------------------------------
# Training


def build_model(config: SeparatorTrainConfig) -> Any:
    """A fresh HTDemucs for ``config`` (init seeded, global torch RNG left untouched)."""
    import torch
    from demucs.htdemucs import HTDemucs

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return HTDemucs(
            sources=list(SOURCES), samplerate=config.sr, segment=config.segment_s, **config.model
        )


def engine_config(config: SeparatorTrainConfig) -> Any:
    """The separator's recipe as a :class:`musicrestore.train.engine.TrainConfig`: Adam
    (AdamW without weight decay) at a constant rate, no warmup, no EMA, one batch a step."""
    from .engine import TrainConfig

    accelerator = "gpu" if config.device.startswith("cuda") else config.device
    return TrainConfig(
        steps=config.steps,
        batch=config.batch,
        lr=config.lr,
        weight_decay=0.0,
        warmup_steps=0,
        schedule="constant",
        accumulate=1,
        grad_clip=config.clip_grad,
        precision=config.precision,
        ema_decay=None,
        val_every=0,
        checkpoint_every=config.checkpoint_every,
        seed=config.seed,
        accelerator=accelerator,
        devices=config.devices,
        strategy=config.strategy,
        log_every=config.log_every,
    )


def train_separator(
    root: str | os.PathLike[str],
    splits: str | os.PathLike[str] | Mapping[str, tuple[list[str], list[str]]],
    work_dir: str | os.PathLike[str],
    config: SeparatorTrainConfig | None = None,
    progress: bool = True,
    on_log: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train (or resume training) an HTDemucs on the training songs of a RawStems folder.

    Runs on the pipeline's training engine (:func:`musicrestore.train.engine.fit`,
    :class:`musicrestore.train.modules.SeparatorModule`): step ``k`` of rank ``r`` trains
    on :func:`sample_batch` drawn from ``default_rng([seed, k·world + r])``, so a resumed
    run (from ``work_dir/last.ckpt`` when its resume key, :meth:`SeparatorTrainConfig.resume_key`,
    matches) gives the weights of an uninterrupted one.

    Args:
        root: RawStems-layout folder.
        splits: the splits folder (``{Target}_{train,test}.txt``) or what ``read_splits`` returns.
        work_dir: where ``last.ckpt`` lives; keep it between runs to resume.
        config: the run's settings; ``None`` is the small default.
        progress: a progress bar over steps.
        on_log: called with ``(step, mean loss of the last log_every steps)``.

    Raises:
        StageError: no training songs.
    """
    from .data import SeededBatches, StepDataModule
    from .engine import fit
    from .modules import SeparatorModule

    config = config or SeparatorTrainConfig()
    split_map = read_splits(splits) if isinstance(splits, str | os.PathLike) else splits
    train, _ = partition_songs(scan(root), split_map)
    if not train:
        raise StageError(
            f"{root}: no training songs for the separator (every song is in a test split); "
            "add songs or lower the test share of the split"
        )
    names = [s.name for s in train]
    key = config.resume_key(names, audio_hash(root, train))
    model = build_model(config)
    bank = SongBank(root, train, config.sr, SOURCES, config.max_cached_songs)
    batches = SeededBatches(functools.partial(sample_batch, bank, config), config.seed)
    log.info(
        "separator: %d training songs, %.2f M parameters, %d steps",
        len(train),
        sum(p.numel() for p in model.parameters()) / 1e6,
        config.steps,
    )
    result = fit(
        SeparatorModule(model),
        StepDataModule(batches, batch=None),
        engine_config(config),
        work_dir,
        progress=progress,
        resume_key=key,
        on_log=on_log,
    )
    model.eval().cpu()
    # HTDemucs records the length it last saw as its segment; the exported config must match.
    from fractions import Fraction

    model.segment = Fraction(int(round(config.segment_s * config.sr)), config.sr)
    return TrainResult(
        model=model,
        step=result.step,
        resumed_from=result.resumed_from,
        losses=result.losses,
        train_songs=names,
    )


# --------------------------------------------------------------------------------------------
# Evaluation


def evaluate_separator(
    separator: Separator,
    root: str | os.PathLike[str],
    songs: Sequence[Song],
    segment_s: float = 10.0,
    max_segments: int | None = None,
    silence_dbfs: float = -60.0,
    progress: bool = False,
) -> dict[str, Any]:
    """SI-SDR per source on ``segment_s`` segments of ``songs``, with the mixture as baseline.

    Each segment's mixture (sum of all groups, MiscRoom excluded) is separated on its own, as
    a 10-s test example is (seed 004 §4.2). A source whose reference is below
    ``silence_dbfs`` RMS in a segment is skipped there (SI-SDR is undefined for silence).
    ``max_segments`` keeps an evenly spaced subset.

    Returns:
        ``{source: mean SI-SDR dB, "mean": ..., "mixture": {source: mean SI-SDR of the
        mixture, "mean": ...}, "segments": {source: count}}``; ``None`` where no segment had
        the source.
    """
    from tqdm import tqdm

    from ..evaluation.metrics import si_sdr

    sr = separator.samplerate
    sources = list(separator.sources)
    seg = int(round(segment_s * sr))
    bank = SongBank(root, songs, sr, sources, max_cached=1)
    lengths = [_song_frames(root, song, sr) for song in songs]
    windows = [(i, k * seg) for i, n in enumerate(lengths) for k in range(max(1, n // seg))]
    if max_segments is not None and len(windows) > max_segments:
        keep = np.unique(np.linspace(0, len(windows) - 1, max_segments).round().astype(int))
        windows = [windows[k] for k in keep]
    floor = 10.0 ** (silence_dbfs / 20.0)
    scores: dict[str, list[float]] = {s: [] for s in sources}
    baseline: dict[str, list[float]] = {s: [] for s in sources}
    for song_index, start in tqdm(windows, desc="evaluate separator", disable=not progress):
        refs = bank[song_index][:, :, start : start + seg]  # (S, C, T)
        mix = refs.sum(axis=0)
        if not np.any(mix):
            continue
        estimate = separator.separate(mix, sr)
        for s, name in enumerate(sources):
            if np.sqrt(np.mean(refs[s] ** 2)) < floor:
                continue
            scores[name].append(float(si_sdr(refs[s], estimate[name])))
            baseline[name].append(float(si_sdr(refs[s], mix)))
    result: dict[str, Any] = {name: _mean(scores[name]) for name in sources}
    result["mean"] = _mean([v for v in result.values() if v is not None])
    result["mixture"] = {name: _mean(baseline[name]) for name in sources}
    result["mixture"]["mean"] = _mean([v for v in result["mixture"].values() if v is not None])
    result["segments"] = {name: len(scores[name]) for name in sources}
    return result


def _song_frames(root: str | os.PathLike[str], song: Song, sr: int) -> int:
    from ..core.audio import audio_info

    frames = 0
    for stem in song.stems:
        file_sr, _, n = audio_info(Path(root) / stem.path)
        frames = max(frames, int(n * sr / file_sr))
    return frames


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


# --------------------------------------------------------------------------------------------
# The stage's work


def build_separator(
    model: str,
    out_dir: str | os.PathLike[str],
    rawstems: str | os.PathLike[str],
    splits: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    train_config: SeparatorTrainConfig | None = None,
    repo: str | os.PathLike[str] | None = None,
    eval_segment_s: float = 10.0,
    eval_max_segments: int | None = 24,
    progress: bool = True,
    on_log: Callable[[int, float], None] | None = None,
    trust_pickle: bool = False,
) -> dict[str, Any]:
    """Fill ``out_dir`` with a separator that ``load_separator(model, repo=out_dir)`` loads.

    ``model == "trained"``: train (resuming from ``work_dir``) and export. Any other name: load
    that pretrained model (HF cache, or ``repo``) and export a copy, so every downstream stage
    depends on one folder whatever the choice, and ``dvc push`` shares the weights with
    teammates who have no hub access. Both then evaluate on the test songs.

    Writes ``<name>.yaml`` + model files, ``separator.json`` (what it is), ``metrics.json``
    (:func:`evaluate_separator`) and, when trained, ``loss.csv`` (step, loss). Returns the
    metrics. ``trust_pickle`` (``separate.trust_pickle``) lets a pretrained model in ``repo``
    load from ``.th`` packages with pickle (:func:`musicrestore.separation.load_separator`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"model": model, "code_version": __version__}
    if model == TRAINED:
        config = train_config or SeparatorTrainConfig()
        result = train_separator(
            rawstems, splits, work_dir, config, progress=progress, on_log=on_log
        )
        net = result.model
        training_args = {
            **asdict(config),
            "steps_done": result.step,
            "train_songs": len(result.train_songs),
        }
        export_repo(net, out_dir, TRAINED, training_args=training_args)
        with atomic_path(out_dir / "loss.csv") as tmp:
            tmp.write_text(
                "step,loss\n" + "".join(f"{i + 1},{v:.6g}\n" for i, v in enumerate(result.losses))
            )
        info.update(
            origin="trained",
            steps=result.step,
            train_songs=len(result.train_songs),
            config=asdict(config),
        )
    else:
        net = load_separator(model, repo=repo, trust_pickle=trust_pickle).model  # type: ignore[attr-defined]
        export_repo(net, out_dir, model)
        info.update(origin="pretrained", source=str(repo) if repo else "huggingface")
    separator = DemucsSeparator(net, shifts=0)
    info.update(sources=separator.sources, samplerate=separator.samplerate)
    split_map = read_splits(splits)
    _, test = partition_songs(scan(rawstems), split_map)
    metrics = evaluate_separator(
        separator, rawstems, test, eval_segment_s, eval_max_segments, progress=progress
    )
    info["eval"] = {
        "songs": len(test),
        "segment_s": eval_segment_s,
        "max_segments": eval_max_segments,
    }
    for name, payload in (("separator.json", info), ("metrics.json", metrics)):
        with atomic_path(out_dir / name) as tmp:
            tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return metrics
