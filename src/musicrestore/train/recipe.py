"""A learned restorer from its ``params.yaml`` block to an inference checkpoint.

``models.<name>`` (``unet_mask``, ``wavenet``: seed 000's U-Net STFT mask and WaveNet
denoiser, docs/method.md#learned-models) is ``{preset: small, presets: {<preset>: {arch, train,
data, loss}}}``: ``arch`` are the constructor kwargs of ``musicrestore.models.ARCHITECTURES
[name]``, ``train`` a :class:`.engine.TrainConfig`, ``data`` a :class:`.data.DataConfig` and
``loss`` a name of :data:`.losses.LOSSES`. :func:`train_model` trains it with
:func:`.engine.fit` (resuming from the work folder) on dataset folders and writes the
checkpoint of :mod:`musicrestore.checkpoint`, ``metrics.json`` and ``loss.csv``.
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
from ..audio import atomic_path
from ..config import ConfigError, as_mapping, merge, merge_kwargs
from ..stage import StageError, output_dir
from .data import DataConfig, data_config_from_params
from .engine import TrainConfig, config_from_params, is_rank_zero

__all__ = ["ModelSpec", "is_rank_zero", "spec_from_params", "stage_outputs", "train_model"]
from .losses import LOSSES

PRESET_DEFAULTS: dict[str, Any] = {"arch": {}, "train": {}, "data": {}, "loss": "l1_logmag"}


@dataclass
class ModelSpec:
    name: str  # the architecture's registry name and the params block's
    preset: str
    arch: dict[str, Any]  # constructor kwargs
    train: TrainConfig
    data: DataConfig
    loss: str
    params_hash: str  # of everything above: what config.json records

    def params(self) -> dict[str, Any]:
        """The resolved preset, as logged to MLflow."""
        return {
            "preset": self.preset,
            "arch": self.arch,
            "train": asdict(self.train),
            "data": asdict(self.data),
            "loss": self.loss,
        }


def spec_from_params(params: Mapping[str, Any], name: str) -> ModelSpec:
    """The chosen preset of ``params["models"][name]``, every part checked with
    :func:`musicrestore.config.merge` (``arch`` against the class' signature). ``train.seed``
    defaults to the pipeline's ``seed``."""
    from ..checkpoint import architectures

    models = as_mapping(params.get("models"), "models")
    where = f"models.{name}"
    if name not in models:
        raise StageError(f"params: no {where} block (have {', '.join(models) or 'none'})")
    block = merge({"preset": "small", "presets": {}}, models[name], where, open_keys=("presets",))
    presets, preset = block["presets"], block["preset"]
    if preset not in presets:
        raise ConfigError(
            f"{where}.preset: got {preset!r}; expected one of {', '.join(presets) or '(none)'}"
        )
    pwhere = f"{where}.presets.{preset}"
    chosen = merge(
        PRESET_DEFAULTS,
        presets[preset],
        pwhere,
        open_keys=("arch", "train", "data"),
        choices={"loss": tuple(LOSSES)},
    )
    registry = architectures()
    if name not in registry:
        raise StageError(f"no architecture {name!r} in musicrestore.models ({', '.join(registry)})")
    arch = merge_kwargs(registry[name], chosen["arch"], f"{pwhere}.arch")
    train = {"seed": int(params.get("seed", 0)), **dict(chosen["train"])}
    spec = {
        "name": name,
        "preset": preset,
        "arch": arch,
        "train": config_from_params(train, f"{pwhere}.train"),
        "data": data_config_from_params(chosen["data"], f"{pwhere}.data"),
        "loss": chosen["loss"],
    }
    text = json.dumps(
        {**spec, "train": asdict(spec["train"]), "data": asdict(spec["data"])}, sort_keys=True
    )
    return ModelSpec(**spec, params_hash=hashlib.sha256(text.encode()).hexdigest()[:16])


def build_net(spec: ModelSpec) -> Any:
    """``ARCHITECTURES[name](**arch)``, initialised from ``train.seed`` (the global torch RNG
    is left as it was)."""
    import torch

    from ..checkpoint import architectures

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        try:
            return architectures()[spec.name](**spec.arch)
        except (TypeError, ValueError) as exc:
            where = f"models.{spec.name}.presets.{spec.preset}.arch"
            raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from None


def train_model(
    spec: ModelSpec,
    train_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    work_dir: str | os.PathLike[str],
    run: tracking.StageRun | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (or resume) ``spec`` on dataset folders and fill ``out_dir`` (rank 0) with
    ``model.safetensors`` + ``config.json`` (:func:`musicrestore.checkpoint.save_model`,
    EMA weights when on), ``metrics.json`` (final validation metrics; deterministic) and
    ``loss.csv``. Returns the metrics."""
    from ..checkpoint import save_model
    from .data import denoiser_data
    from .engine import LOSS_CSV, fit, make_resume_key
    from .modules import DenoiserModule, count_parameters

    data = denoiser_data(train_dirs, spec.data, spec.train.batch, spec.train.seed)
    module = DenoiserModule(build_net(spec), loss=spec.loss)
    data_settings = {k: v for k, v in asdict(spec.data).items() if k != "workers"}
    model_config = {
        "arch": spec.name,
        "kwargs": spec.arch,
        "loss": spec.loss,
        "data": data_settings,
    }
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
            tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


@contextlib.contextmanager
def stage_outputs(
    stage: str, params: Mapping[str, Any], out: str | os.PathLike[str]
) -> Iterator[tuple[tracking.StageRun, Path]]:
    """``(run, tmp)`` of a training stage: on rank 0 the MLflow record and the atomic
    output folder of :func:`musicrestore.stage.output_dir`; on other ranks (DDP) a
    disabled record and a scratch folder that is thrown away."""
    if is_rank_zero():
        with tracking.stage_run(stage, params) as run, output_dir(out) as tmp:
            yield run, tmp
        return
    with tempfile.TemporaryDirectory(prefix=".train_rank_") as scratch:
        yield tracking.StageRun(None), Path(scratch)
