"""Exporting a model (or bag) into Demucs' repository format, with byte-stable files:
``<sig>.safetensors`` with sorted metadata, ``<sig>-<sha256[:8]>.th`` and ``<name>.yaml``."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .codec import encode_json
from .errors import SeparationError


def export_repo(
    model: Any,
    folder: str | os.PathLike[str],
    name: str,
    training_args: Mapping[str, Any] | None = None,
    formats: Sequence[str] = ("safetensors", "th"),
) -> Path:
    """Write a model (or bag) into ``folder`` in Demucs' repository format under ``name``.

    Per model: ``<sig>.safetensors`` (HF format, loads without pickle) and/or
    ``<sig>-<sha256[:8]>.th`` (the package ``demucs.states.load_model`` reads: ``klass``,
    ``args``, ``kwargs``, ``state``, ``training_args``; demucs checks the checksum). Then
    ``<name>.yaml`` lists the signatures. ``<sig>`` is a hash of the model's class, config
    and weights, so re-exporting the same model gives the same files. Returns the bag file.
    """
    import torch
    from demucs.apply import BagOfModels
    from safetensors.torch import save as safetensors_bytes

    from ..core.audio import atomic_path

    unknown = set(formats) - {"safetensors", "th"}
    if unknown or not formats:
        raise ValueError(
            f"formats must be a non-empty subset of ('safetensors', 'th'), got {formats}"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bag_name = name.rsplit("/", 1)[-1]
    models = list(model.models) if isinstance(model, BagOfModels) else [model]
    weights = model.weights if isinstance(model, BagOfModels) else None
    sigs = []
    for net in models:
        klass, args, kwargs = _init_config(net)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
        meta = {
            "klass": f"{klass.__module__}.{klass.__qualname__}",
            "args": json.dumps(encode_json(list(args))),
            "kwargs": json.dumps(encode_json(kwargs), sort_keys=True),
        }
        if training_args is not None:
            meta["training_args"] = json.dumps(encode_json(dict(training_args)), sort_keys=True)
        blob = canonical_safetensors(safetensors_bytes(state, metadata=meta))
        sig = _content_hash(meta, state)
        sigs.append(sig)
        if "safetensors" in formats:
            with atomic_path(folder / f"{sig}.safetensors") as tmp:
                tmp.write_bytes(blob)
        if "th" in formats:
            package = {
                "klass": klass,
                "args": list(args),
                "kwargs": kwargs,
                "state": state,
                "training_args": encode_json(dict(training_args or {})),
            }
            buf = _torch_bytes(torch, package)
            check = hashlib.sha256(buf).hexdigest()[:8]
            for old in folder.glob(f"{sig}*.th"):  # one package per signature (demucs insists)
                old.unlink()
            with atomic_path(folder / f"{sig}-{check}.th") as tmp:
                tmp.write_bytes(buf)
    bag: dict[str, Any] = {"models": sigs}
    if weights is not None and any(w != 1.0 for row in weights for w in row):
        bag["weights"] = [[float(w) for w in row] for row in weights]
    bag_file = folder / f"{bag_name}.yaml"
    with atomic_path(bag_file) as tmp:
        tmp.write_text(yaml.safe_dump(bag, sort_keys=False))
    return bag_file


def canonical_safetensors(blob: bytes) -> bytes:
    """The same safetensors file with its ``__metadata__`` keys in sorted order.

    The safetensors writer keeps the metadata in a Rust ``HashMap`` and serialises it in
    whatever order that map iterates, which changes from one process to the next: the same
    model gave files that differ in the header only, so DVC saw a new ``models/separator``
    on every run. The header is JSON behind an 8-byte little-endian length (the format's
    whole framing); we re-serialise it with sorted metadata, keep the tensor entries in the
    writer's order and pad with spaces to a multiple of 8 bytes, as the writer does, so the
    tensor data stays aligned.
    """
    import struct

    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + size])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + size :]


def _content_hash(meta: Mapping[str, str], state: Mapping[str, Any]) -> str:
    """8 hex digits over the config and the weights; safetensors' own bytes are no use here
    because it writes the metadata map in an arbitrary order."""
    digest = hashlib.sha256(json.dumps(dict(meta), sort_keys=True).encode())
    for key in sorted(state):
        tensor = state[key]
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:8]


def _torch_bytes(torch: Any, package: dict[str, Any]) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(package, buf)
    return buf.getvalue()


def _init_config(net: Any) -> tuple[type, tuple[Any, ...], dict[str, Any]]:
    """Class and constructor args of a demucs model, with its current (inference) segment."""
    if not hasattr(net, "_init_args_kwargs"):
        raise SeparationError(f"{type(net).__name__} was not built through demucs' capture_init")
    args, kwargs = net._init_args_kwargs
    kwargs = dict(kwargs)
    segment = getattr(net, "segment", None)
    if segment is not None and "segment" in _signature(type(net)):
        # A bag's `segment:` or HTDemucs' training length may have changed it after __init__.
        kwargs["segment"] = segment
    return type(net), tuple(args), kwargs


def _signature(klass: type) -> set[str]:
    import inspect

    return set(inspect.signature(klass).parameters)
