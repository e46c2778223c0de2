"""Inference checkpoints of the learned restorers: safetensors weights plus a JSON config.

A checkpoint is a folder that the training stage (``stages/train.py``) writes and the
restoration variants read (docs/method.md#learned-models: the U-Net STFT mask and the WaveNet
denoiser of seed 000):

- ``model.safetensors``: the network's state dict (the EMA weights when training kept an
  exponential moving average), written with :func:`safetensors.torch.save_file`;
- ``config.json``: ``{"arch", "kwargs", "sr", "code_version", "step", "data_hash",
  "params_hash", "format", "weights_sha256"}``. ``arch`` names a class of the registry
  ``musicrestore.models.ARCHITECTURES`` and ``kwargs`` are its constructor arguments, so the
  network is rebuilt from code in this repository, never from the file.

Nothing here unpickles: safetensors holds only raw tensors, and an ``arch`` that is not in
the registry is refused before anything is built. A file that is not safetensors (a pickle,
say, which ``torch.load`` could run code from) is a one-line :class:`CheckpointError`. The
training engine's ``last.ckpt`` (Lightning's resumable state, optimizer included) is a
different thing: a private work file of the training stage, never shared or loaded here.

Inference must stay light: this module imports torch and safetensors (and the package's
error type), never Lightning or the training code.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..core.audio import atomic_path
from ..core.config import load_json
from ..core.errors import StageError, one_line

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "musicrestore.model/1"
#: Keys every ``config.json`` has.
CONFIG_KEYS = ("arch", "kwargs", "sr", "code_version", "step", "data_hash", "params_hash")


class CheckpointError(StageError):
    """A checkpoint folder that cannot be used; one line saying which file and why."""


def architectures() -> Mapping[str, Any]:
    """The registry ``musicrestore.models.ARCHITECTURES`` (name -> ``nn.Module`` class),
    looked up at call time so tests can register a tiny architecture."""
    try:
        models = importlib.import_module("musicrestore.models")
    except ImportError as exc:
        raise CheckpointError(f"no model registry musicrestore.models ({exc})") from None
    return dict(models.ARCHITECTURES)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_json(value: Any, where: str) -> None:
    try:
        text = json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} must be plain JSON ({exc})") from None
    if json.loads(text) != value:  # tuples would come back as lists: a different config
        raise CheckpointError(f"{where} must be plain JSON (lists, not tuples)")


def save_model(
    folder: str | os.PathLike[str],
    net: Any,
    arch: str,
    kwargs: Mapping[str, Any],
    sr: int,
    step: int,
    data_hash: str,
    params_hash: str,
) -> Path:
    """Write ``folder/model.safetensors`` and ``folder/config.json``; returns ``folder``.

    Each file is written to a temporary sibling and renamed into place, the weights first
    and the config last; the config records the weights' SHA-256, so a folder whose save was
    cut between the two renames is refused by :func:`load_model` rather than loaded with
    mismatched weights. ``net`` is any ``nn.Module`` whose class ``ARCHITECTURES[arch]``
    rebuilds from ``kwargs``; tied tensors are stored once per key (cloned).
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if arch not in architectures():
        raise CheckpointError(
            f"architecture {arch!r} is not in musicrestore.models.ARCHITECTURES "
            f"({', '.join(sorted(architectures())) or 'empty'})"
        )
    kwargs = dict(kwargs)
    _check_json(kwargs, f"{arch} kwargs")
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    with atomic_path(folder / MODEL_FILE) as tmp:
        # One metadata key: safetensors writes a map's keys in no fixed order, and the file
        # must be byte-identical for the same weights (DVC hashes it).
        save_file(state, str(tmp), metadata={"format": FORMAT})
    config = {
        "format": FORMAT,
        "arch": arch,
        "kwargs": kwargs,
        "sr": int(sr),
        "code_version": __version__,
        "step": int(step),
        "data_hash": str(data_hash),
        "params_hash": str(params_hash),
        "weights_sha256": _sha256(folder / MODEL_FILE),
    }
    with atomic_path(folder / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder, checked (keys, types); nothing is built."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no model config (is {folder} a training stage output?)")
    try:  # bounded in size and depth: a checkpoint folder may come from anyone
        config = load_json(path, "model config")
    except (OSError, StageError) as exc:
        raise CheckpointError(f"unreadable model config: {one_line(str(exc))}") from None
    if not isinstance(config, dict) or (missing := [k for k in CONFIG_KEYS if k not in config]):
        what = f"missing {', '.join(missing)}" if isinstance(config, dict) else "not a mapping"
        raise CheckpointError(f"{path}: not a model config ({what})")
    if not isinstance(config["arch"], str) or not isinstance(config["kwargs"], dict):
        raise CheckpointError(f"{path}: 'arch' must be a string and 'kwargs' a mapping")
    sr = config["sr"]
    if isinstance(sr, bool) or not isinstance(sr, int | float) or not math.isfinite(sr) or sr <= 0:
        raise CheckpointError(f"{path}: 'sr' must be a positive rate, got {sr!r}")
    return config


def load_model(folder: str | os.PathLike[str], device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """``(net, config)``: the network of a checkpoint folder, in eval mode on ``device``.

    The class comes from ``musicrestore.models.ARCHITECTURES[config["arch"]]`` and the
    tensors from ``safetensors.torch.load_file``; no pickle is ever read.

    Raises:
        CheckpointError: a missing or malformed config, an unknown architecture, weights
            that are not a safetensors file or do not match the config or the network.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    registry = architectures()
    arch = config["arch"]
    if arch not in registry:
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: architecture {arch!r} is not one of "
            f"{', '.join(sorted(registry)) or '(none registered)'}; refusing to build it"
        )
    weights = folder / MODEL_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing model weights")
    expected = config.get("weights_sha256")
    if expected is not None and _sha256(weights) != expected:
        raise CheckpointError(
            f"{weights}: does not match {CONFIG_FILE} (weights_sha256); the save was cut off "
            "or the file was replaced: re-run the training stage"
        )
    try:
        state = load_file(str(weights), device="cpu")
    except Exception as exc:  # SafetensorError, OSError: a pickle or a truncated file
        msg = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{weights}: not a safetensors file ({msg})") from None
    try:
        net = registry[arch](**config["kwargs"])
    except TypeError as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE}: bad {arch} kwargs ({exc})") from None
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{weights}: weights do not fit {arch} ({first})") from None
    return net.to(device).eval(), config
