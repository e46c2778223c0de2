"""A learned restorer from its ``params.yaml`` block to an inference checkpoint.

``models.<name>`` (``unet_mask``, ``wavenet``: seed 000's U-Net STFT mask and WaveNet
denoiser, docs/method.md#learned-models; ``uformer``: seed 004's U-Former,
docs/method.md#uformer) is ``{preset: small, presets: {<preset>: {arch, train, data, loss,
gan}}}``: ``arch`` are the constructor kwargs of ``musicrestore.models.ARCHITECTURES
[name]``, ``train`` a :class:`.engine.TrainConfig`, ``data`` a :class:`.data.DataConfig`,
``loss`` a name of :data:`.losses.LOSSES` and ``gan`` (architectures in :data:`ADVERSARIAL`
only) a :class:`.modules.GANConfig`. The module follows the architecture: an adversarial one
trains with :class:`.modules.GANModule`, the others with :class:`.modules.DenoiserModule`.
:func:`train_model` trains it with :func:`.engine.fit` (resuming from the work folder) on
dataset folders and writes the checkpoint of :mod:`musicrestore.models.checkpoint`,
``metrics.json`` and ``loss.csv``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import tracking
from ..core.audio import atomic_path
from ..core.config import ConfigError, as_mapping, merge, merge_kwargs, pipeline_seed
from ..core.errors import QUOTE_LIMIT, StageError, one_line, quote
from ..core.stage import output_dir
from .data import DataConfig, data_config_from_params
from .engine import TrainConfig, config_from_params, is_rank_zero
from .modules import GANConfig, gan_config_from_params

__all__ = [
    "ADVERSARIAL",
    "ModelSpec",
    "build_module",
    "is_rank_zero",
    "spec_from_params",
    "stage_outputs",
    "train_model",
]
from .losses import LOSSES

PRESET_DEFAULTS: dict[str, Any] = {
    "arch": {},
    "train": {},
    "data": {},
    "loss": "l1_logmag",
    "gan": {},
}
#: Architectures trained adversarially (:class:`.modules.GANModule`, a ``gan`` block):
#: seed 004's U-Former (two stages: waveform L1, then with a HiFi-GAN discriminator).
ADVERSARIAL = frozenset({"uformer"})


def _widths_problem(value: Any) -> str | None:
    """The U-Former's ``channels``: a non-empty list of widths, one per level."""
    ok = isinstance(value, list) and value and all(_is_int(c) and c >= 1 for c in value)
    return None if ok else "a non-empty list of integers >= 1"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_AUDIO_CHANNELS = (1, 2, "1 (mono) or 2 (stereo)")
#: Bounds of each architecture's ``arch`` block (its constructor's keywords, typed by the
#: signature); an architecture not listed here (a test's) gets the types alone.
ARCH_RULES: dict[str, dict[str, Any]] = {
    "unet_mask": {
        "ranges": {
            "n_fft": (16, 65536),
            "hop": (1, 65536),
            "base_channels": (1, None),
            "levels": (1, None),
            "channels": _AUDIO_CHANNELS,
            "groups": (1, None),
        },
    },
    "wavenet": {
        "ranges": {
            "residual_channels": (1, None),
            "skip_channels": (1, None),
            "layers_per_stack": (1, None),
            "stacks": (1, None),
            "kernel_size": (1, None),
        },
    },
    "uformer": {
        "ranges": {
            "n_fft": (16, 65536),
            "hop": (1, 65536),
            "roformer_layers": (0, None),
            "heads": (1, None),
            "dim_head": (1, None),
            "ff_mult": (1, None),
            "dropout": (0.0, 1.0, "a probability"),
            "audio_channels": _AUDIO_CHANNELS,
        },
        "choices": {"output": ("mask", "add")},
        "checks": {"channels": _widths_problem},
    },
}


@dataclass
class ModelSpec:
    name: str  # the architecture's registry name and the params block's
    preset: str
    arch: dict[str, Any]  # constructor kwargs
    train: TrainConfig
    data: DataConfig
    loss: str
    params_hash: str  # of everything above: what config.json records
    gan: GANConfig | None = None  # the adversarial stage (ADVERSARIAL architectures)

    def params(self) -> dict[str, Any]:
        """The resolved preset, as logged to MLflow."""
        out = {
            "preset": self.preset,
            "arch": self.arch,
            "train": asdict(self.train),
            "data": asdict(self.data),
            "loss": self.loss,
        }
        return out if self.gan is None else {**out, "gan": asdict(self.gan)}


def spec_from_params(params: Mapping[str, Any], name: str) -> ModelSpec:
    """The chosen preset of ``params["models"][name]``, every part checked with
    :func:`musicrestore.core.config.merge` (``arch`` against the class' signature). ``train.seed``
    defaults to the pipeline's ``seed``."""
    from ..models.checkpoint import architectures

    models = as_mapping(params.get("models"), "models")
    where = f"models.{name}"
    if name not in models:
        raise StageError(f"params: no {where} block (have {_names(models) or 'none'})")
    block = merge({"preset": "small", "presets": {}}, models[name], where, open_keys=("presets",))
    presets, preset = block["presets"], block["preset"]
    if preset not in presets:
        raise ConfigError(
            f"{where}.preset: got {quote(preset)}; expected one of {_names(presets) or '(none)'}"
        )
    pwhere = f"{where}.presets.{one_line(preset, QUOTE_LIMIT)}"
    chosen = merge(
        PRESET_DEFAULTS,
        presets[preset],
        pwhere,
        open_keys=("arch", "train", "data", "gan"),
        choices={"loss": tuple(LOSSES)},
    )
    if chosen["gan"] and name not in ADVERSARIAL:
        raise ConfigError(
            f"{pwhere}.gan: {name} does not train adversarially "
            f"(only {', '.join(sorted(ADVERSARIAL))} take a gan block)"
        )
    registry = architectures()
    if name not in registry:
        raise StageError(f"no architecture {name!r} in musicrestore.models ({', '.join(registry)})")
    arch = merge_kwargs(
        registry[name], chosen["arch"], f"{pwhere}.arch", **ARCH_RULES.get(name, {})
    )
    train = {"seed": pipeline_seed(params), **dict(chosen["train"])}
    data = data_config_from_params(chosen["data"], f"{pwhere}.data")
    guided = arch.get("guide") is not None  # a guided network pre-cleans at the data's rate
    if guided and (data.sr is None or arch.setdefault("sr", data.sr) != data.sr):
        raise ConfigError(
            f"{pwhere}: arch.guide pre-cleans at the model's rate: set data.sr "
            f"(got {data.sr}) and leave arch.sr out (got {arch.get('sr')})"
        )
    spec = {
        "name": name,
        "preset": preset,
        "arch": arch,
        "train": config_from_params(train, f"{pwhere}.train"),
        "data": data,
        "loss": chosen["loss"],
    }
    hashed = {**spec, "train": asdict(spec["train"]), "data": asdict(spec["data"])}
    gan = None
    if name in ADVERSARIAL:
        gan = gan_config_from_params(chosen["gan"], f"{pwhere}.gan")
        hashed["gan"] = gan.identity()  # only here: the other models' hashes stay as they were
    text = json.dumps(hashed, sort_keys=True)
    return ModelSpec(**spec, params_hash=hashlib.sha256(text.encode()).hexdigest()[:16], gan=gan)


def _names(keys: Any, most: int = 10) -> str:
    """The keys of a params mapping for a message: each cut to the quoting limit, at most
    ``most`` of them (a key is the user's text as much as a value is)."""
    names = [one_line(str(k), QUOTE_LIMIT) for k in list(keys)[:most]]
    return ", ".join(names) + (f" and {len(keys) - most} more" if len(keys) > most else "")


def build_net(spec: ModelSpec) -> Any:
    """``ARCHITECTURES[name](**arch)``, initialised from ``train.seed`` (the global torch RNG
    is left as it was). The registry is read from the package at call time (tests register
    tiny architectures); importing the package makes every architecture's module a code
    dependency of the training stages (:func:`musicrestore.pipeline.code_deps`)."""
    import torch

    from .. import models

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        try:
            return models.ARCHITECTURES[spec.name](**spec.arch)
        except (TypeError, ValueError) as exc:
            where = f"models.{spec.name}.presets.{spec.preset}.arch"
            raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from None


def build_module(spec: ModelSpec) -> Any:
    """The LightningModule the architecture trains with: :class:`.modules.GANModule` with the
    discriminator ``gan.discriminator`` names
    (:data:`musicrestore.models.discriminator.DISCRIMINATORS`; HiFi-GAN's multi-scale one by
    default), initialised from ``train.seed + 1``, for :data:`ADVERSARIAL` ones, else
    :class:`.modules.DenoiserModule`."""
    import torch

    from .modules import DenoiserModule, GANModule

    net = build_net(spec)
    if spec.gan is None:
        return DenoiserModule(net, loss=spec.loss)
    from ..models.discriminator import build_discriminator

    gan = spec.gan
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed + 1)
        disc = build_discriminator(gan.discriminator, scales=gan.scales, width=gan.width)
    return GANModule(net, disc, spec.gan, loss=spec.loss)


def _check_target(train_dirs: Sequence[str | os.PathLike[str]], target: str) -> None:
    """Every example of ``train_dirs`` is a T2 example of group ``target``."""
    from ..data.dataset import read_manifest

    for folder in train_dirs:
        groups = {ex.group for ex in read_manifest(folder)}
        if groups != {target}:
            raise StageError(
                f"{folder}: examples of {', '.join(sorted(groups)) or 'no group'}; "
                f"--target {target} trains on {target} examples only"
            )


def train_model(
    spec: ModelSpec,
    train_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    run: tracking.StageRun | None = None,
    progress: bool = True,
    target: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) ``spec`` on dataset folders and fill ``out_dir`` (rank 0) with
    ``model.safetensors`` + ``config.json`` (:func:`musicrestore.models.checkpoint.save_model`,
    EMA weights when on), ``metrics.json`` (final validation metrics; deterministic) and
    ``loss.csv``. Returns the metrics. ``target``: the T2 group of a per-target model
    (the U-Former, seed 004 §4): every training example must be of that group, and
    ``metrics.json`` records it."""
    from ..models.checkpoint import save_model
    from .data import denoiser_data
    from .engine import fit, make_resume_key
    from .logger import LOSS_CSV
    from .modules import count_parameters

    if target is not None:
        _check_target(train_dirs, target)
    switch = None
    if spec.gan is not None and spec.gan.batch is not None:
        switch = (spec.gan.start, spec.gan.batch)  # seed 004: batch 16, then 4
    data = denoiser_data(train_dirs, spec.data, spec.train.batch, spec.train.seed, switch)
    module = build_module(spec)
    data_settings = {k: v for k, v in asdict(spec.data).items() if k != "workers"}
    model_config = {
        "arch": spec.name,
        "kwargs": spec.arch,
        "loss": spec.loss,
        "data": data_settings,
    }
    if spec.gan is not None:
        model_config["gan"] = spec.gan.identity()
    key = make_resume_key(model_config, spec.train, data.data_hash)
    result = fit(module, data, spec.train, work_dir, run, progress, resume_key=key)
    net = module.export_net()
    metrics: dict[str, Any] = {
        "step": result.step,
        "parameters": count_parameters(net),
        "train_examples": len(data.train_set),  # type: ignore[arg-type]
        "val_examples": len(data.val_set) if data.val_set is not None else 0,  # type: ignore[arg-type]
        **{k: round(v, 6) for k, v in sorted(result.metrics.items()) if math.isfinite(v)},
    }
    if is_rank_zero():
        out = Path(out_dir)
        sr = data.train_set.sr  # type: ignore[attr-defined]
        save_model(
            out, net, spec.name, spec.arch, sr, result.step, data.data_hash, spec.params_hash
        )
        if (Path(work_dir) / LOSS_CSV).is_file():
            shutil.copyfile(Path(work_dir) / LOSS_CSV, out / LOSS_CSV)
        with atomic_path(out / "metrics.json") as tmp:
            recorded = metrics if target is None else {**metrics, "target": target}
            tmp.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    return metrics


@contextlib.contextmanager
def stage_outputs(
    stage: str, params: Mapping[str, Any], out: str | os.PathLike[str]
) -> Iterator[tuple[tracking.StageRun, Path]]:
    """``(run, tmp)`` of a training stage: on rank 0 the MLflow record and the atomic
    output folder of :func:`musicrestore.core.stage.output_dir`; on other ranks (DDP) a
    disabled record and a scratch folder that is thrown away."""
    if is_rank_zero():
        with tracking.stage_run(stage, params) as run, output_dir(out) as tmp:
            yield run, tmp
        return
    with tempfile.TemporaryDirectory(prefix=".train_rank_") as scratch:
        yield tracking.StageRun(None), Path(scratch)
