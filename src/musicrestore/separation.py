"""Music source separation with Demucs, one interface for pretrained and pipeline-trained models.

Seed 001 (§3, "Source separation") splits MusicGen outputs into Demucs' four stems (drums,
bass, other, vocals) and restores each stem before remixing; seed 000 ("Baseline: Demucs +
S-NMF") separates the pre-cleaned, stereo-upmixed mixture with ``htdemucs``; the MSR baseline
(docs/method.md#demucs) takes the separated stem of a target group as its estimate. The model is
Hybrid Transformer Demucs (Rouard, Massa & Défossez, "Hybrid Transformers for Music Source
Separation", ICASSP 2023); :mod:`demucs.apply` does the chunking, overlap-add and shift trick.

Where a model comes from (:func:`load_separator`):

* ``repo`` given: a local folder in Demucs' repository format, i.e. a bag file ``<name>.yaml``
  (``models: [<sig>, ...]``, optional ``weights``, ``segment``) plus one file per signature.
  ``<sig>.safetensors`` (the Hugging Face format of demucs 4.1, class + constructor args as JSON
  metadata) is loaded here without pickle; a folder with only ``<sig>[-<checksum>].th``
  packages goes through ``demucs.pretrained.get_model(name, repo)``, whose ``torch.load`` uses
  ``weights_only=False`` (the package pickles the model class), so only use such folders from
  a source you trust. :func:`export_repo` writes both files, so a folder written by this
  pipeline loads in both ways (``python -m demucs --repo DIR -n trained`` works too).
* ``repo`` is ``None``: the Hugging Face hub repository demucs 4.1 uses for the name
  (``htdemucs`` -> ``adefossez/HTDemucs``, ``htdemucs_ft`` -> ``adefossez/HTDemucs-ft``,
  ``ns/name`` -> ``ns/...``) through ``huggingface_hub``, so an offline cache
  (``HF_HOME`` / ``HF_HUB_CACHE`` with ``HF_HUB_OFFLINE=1``) works; failing that, the legacy
  ``.th`` files of demucs < 4.1 in the torch hub cache (pickle, as above). Nothing else
  touches the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import yaml

from .core.audio import fit_length, resample, set_channels, validate_wave
from .core.errors import StageError
from .data.taxonomy import parse_target

log = logging.getLogger(__name__)

#: Demucs' four sources, in its order (``demucs.pretrained.SOURCES``).
SOURCES: tuple[str, ...] = ("drums", "bass", "other", "vocals")

#: Name under which the pipeline-trained separator is exported (``<repo>/trained.yaml``).
TRAINED = "trained"

#: Model classes a safetensors file may name; anything else is refused, because the class is
#: imported by name from the file's metadata.
_ALLOWED_CLASSES = ("demucs.htdemucs.HTDemucs", "demucs.hdemucs.HDemucs", "demucs.demucs.Demucs")

#: First-level group -> Demucs source (seed 001: vocals, drums, bass, "others").
_GROUP_SOURCE = {"Voc": "vocals", "Rhy": "drums", "Bass": "bass"}


class SeparationError(StageError):
    """A separator that cannot be loaded or used; the message is one line saying what to do."""


@runtime_checkable
class Separator(Protocol):
    """What every restoration variant separates with."""

    sources: list[str]  # e.g. ["drums", "bass", "other", "vocals"]
    samplerate: int  # the model's rate in Hz (44100 for every Demucs release)

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """``wave  # (C, T) at sr`` -> ``{source: (C, T) at sr}``, same C and T as the input."""
        ...


class DemucsSeparator:
    """A Demucs model (or bag of models) behind :class:`Separator`.

    Args:
        model: a ``demucs`` ``HTDemucs`` / ``HDemucs`` / ``Demucs`` or ``BagOfModels``.
        device: where the network runs (``"cpu"``, ``"cuda"``); the full-length input and
            output stay on the CPU, so memory on the device is bounded by one chunk.
        shifts: random time shifts averaged (demucs' "shift trick", +0.2 dB SDR each up to
            ~10); 0 disables it. The shifts are drawn from ``seed``, so output is repeatable.
        overlap: overlap of consecutive chunks (0.25 as in demucs).
        split: chunk the input (always on for any length; off only for short inputs).
        segment_s: chunk length in seconds; ``None`` uses the model's own training segment.
        seed: seeds the shift offsets of every call.
        progress: tqdm bar over chunks.
        num_workers: CPU threads for chunks in parallel (0: sequential).
    """

    def __init__(
        self,
        model: Any,
        device: str = "cpu",
        shifts: int = 1,
        overlap: float = 0.25,
        split: bool = True,
        segment_s: float | None = None,
        seed: int = 0,
        progress: bool = False,
        num_workers: int = 0,
    ) -> None:
        if shifts < 0:
            raise ValueError(f"shifts must be >= 0, got {shifts}")
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if segment_s is not None and segment_s > _max_segment_s(model):
            raise ValueError(
                f"segment_s={segment_s} exceeds the model's training segment "
                f"({_max_segment_s(model):.2f} s); a transformer model cannot run longer chunks"
            )
        self.model = model.to(device).eval()  # once, not per call (bags move sub-models)
        self.sources: list[str] = list(model.sources)
        self.samplerate: int = int(model.samplerate)
        self.audio_channels: int = int(model.audio_channels)
        self.device = device
        self.shifts = shifts
        self.overlap = overlap
        self.split = split
        self.segment_s = segment_s
        self.seed = seed
        self.progress = progress
        self.num_workers = num_workers

    def __repr__(self) -> str:
        kind = type(self.model).__name__
        return f"DemucsSeparator({kind}, sources={self.sources}, samplerate={self.samplerate})"

    def separate(self, wave: np.ndarray, sr: int) -> dict[str, np.ndarray]:
        """Split ``wave  # (C, T) at sr`` into ``{source: (C, T) at sr}``.

        Mono is upmixed to the model's channels and the stems are downmixed back; any rate is
        resampled to the model's and back; the output length equals the input length.
        """
        import torch
        from demucs.apply import apply_model

        wave = validate_wave(wave, sr)
        channels_in, length_in = wave.shape
        mix = resample(set_channels(wave, self.audio_channels), sr, self.samplerate)  # (C_m, T_m)
        # demucs' CLI scales the whole track to unit std before chunking, so every chunk sees
        # the track's level rather than its own. Unlike the CLI we do not remove the mean: it
        # would be added back to every stem, and the stems would no longer sum to the mix.
        scale = float(mix.mean(axis=0).std()) + 1e-8
        x = torch.from_numpy(mix / scale)[None]  # (1, C_m, T_m)
        with _seeded_python_random(self.seed), torch.no_grad():
            out = apply_model(
                self.model,
                x,
                shifts=self.shifts,
                split=self.split,
                overlap=self.overlap,
                progress=self.progress,
                device=self.device,
                num_workers=self.num_workers,
                segment=self.segment_s,
            )
        stems = (out[0].cpu().numpy() * scale).astype(np.float32)  # (S, C_m, T_m)
        result = {}
        for name, stem in zip(self.sources, stems, strict=True):
            stem = resample(np.ascontiguousarray(stem), self.samplerate, sr)
            stem = fit_length(stem, length_in)
            result[name] = np.ascontiguousarray(set_channels(stem, channels_in), dtype=np.float32)
        return result


def _max_segment_s(model: Any) -> float:
    """Longest chunk a model accepts: HTDemucs (and bags of them) are bound to their training
    segment; the convolutional Demucs versions take any length."""
    from demucs.apply import BagOfModels
    from demucs.htdemucs import HTDemucs

    if isinstance(model, BagOfModels):
        return float(model.max_allowed_segment)
    if isinstance(model, HTDemucs):
        return float(model.segment)
    return float("inf")


@contextlib.contextmanager
def _seeded_python_random(seed: int) -> Iterator[None]:
    """``demucs.apply`` draws shift offsets from the global ``random``; seed it and restore it."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def target_source(target: str, sources: Sequence[str] | None = None) -> str:
    """Demucs source that carries a taxonomy target (``"Voc"``, ``"Gtr_EG"``, ``"Rhy"``, ...).

    Voc -> vocals, Rhy -> drums, Bass -> bass, every other group -> other (seed 001). With a
    6-source model (``htdemucs_6s``: ``sources`` containing ``guitar`` / ``piano``) guitars map
    to ``guitar`` and keyboards to ``piano``.

    Raises:
        LayoutError: an unknown group or sub-group.
        SeparationError: ``MiscRoom`` (room microphones bleed every instrument; no source).
    """
    group, _ = parse_target(target)
    if group == "MiscRoom":
        raise SeparationError("MiscRoom (room microphones) is not a separable source")
    if sources is not None:
        if group == "Gtr" and "guitar" in sources:
            return "guitar"
        if group == "Kbs" and "piano" in sources:
            return "piano"
    return _GROUP_SOURCE.get(group, "other")


def tiny_htdemucs(seed: int = 0, segment_s: float = 2.0, **kwargs: Any) -> Any:
    """A small random-init ``HTDemucs`` (docs/method.md#offline: channels 8, t_layers 1,
    depth 4 runs 5 s of stereo in ~1.7 s on CPU). ``kwargs`` override the small configuration.

    Global torch RNG state is left as it was.
    """
    import torch
    from demucs.htdemucs import HTDemucs

    config: dict[str, Any] = {"channels": 8, "depth": 4, "t_layers": 1, **kwargs}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return HTDemucs(sources=list(SOURCES), segment=segment_s, **config).eval()


def tiny_separator(seed: int = 0) -> Separator:
    """A :class:`DemucsSeparator` around :func:`tiny_htdemucs`, without shifts; for tests."""
    return DemucsSeparator(tiny_htdemucs(seed), shifts=0)


# --------------------------------------------------------------------------------------------
# Loading


def load_separator(
    model: str, repo: str | os.PathLike[str] | None = None, device: str = "cpu", **apply_kwargs: Any
) -> Separator:
    """Load a Demucs separator by name (see the module docstring for where it looks).

    Args:
        model: a bag or signature name: ``"htdemucs"``, ``"htdemucs_ft"``, ``"htdemucs_6s"``,
            ``"mdx_extra"``, ``"<namespace>/<name>"`` on the HF hub, or ``"trained"`` (the
            pipeline-trained model, which needs ``repo``).
        repo: a local Demucs repository folder, or ``None`` for the Hugging Face cache/hub.
        device: ``"cpu"`` or ``"cuda"``.
        apply_kwargs: :class:`DemucsSeparator` options (``shifts``, ``overlap``,
            ``segment_s``, ``seed``, ``progress``, ``num_workers``, ``split``).

    Raises:
        SeparationError: the model cannot be found or read; one line, with what to do.
    """
    name = str(model).strip()
    if not name:
        raise SeparationError("empty separator model name")
    if repo is not None:
        net = _load_from_folder(name, Path(repo))
    elif name == TRAINED:
        raise SeparationError(
            "model 'trained' needs repo=<folder> written by the train_separator stage "
            "(e.g. models/separator)"
        )
    else:
        net = _load_from_hub(name)
    return DemucsSeparator(net, device=device, **apply_kwargs)


def _load_from_folder(name: str, folder: Path) -> Any:
    from demucs.apply import BagOfModels

    if not folder.is_dir():
        raise SeparationError(f"{folder}: separator repo folder does not exist (model {name!r})")
    bag_name = name.rsplit("/", 1)[-1]  # "ns/name" was exported as "name.yaml"
    bag_file = folder / f"{bag_name}.yaml"
    if bag_file.is_file():
        bag = _read_bag(bag_file)
        files = [folder / f"{sig}.safetensors" for sig in bag["models"]]
        if all(f.is_file() for f in files):
            models = [load_safetensors_model(f) for f in files]
            return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()
    # A folder of .th packages (demucs' own LocalRepo): demucs loads them with pickle.
    from demucs.pretrained import get_model

    single = folder / f"{bag_name}.safetensors"
    if single.is_file():  # a bare signature, as demucs' LocalRepo also accepts for .th
        return load_safetensors_model(single).eval()
    try:
        return get_model(bag_name, repo=folder)
    except Exception as exc:  # ModelLoadingError, a bad checksum, an unreadable package
        found = sorted(
            p.name for p in folder.iterdir() if p.suffix in (".yaml", ".th", ".safetensors")
        )
        raise SeparationError(
            f"{folder}: no separator model {bag_name!r} ({_one_line(exc)}); the folder holds "
            f"{', '.join(found) or 'no model files'}; expected {bag_name}.yaml plus "
            "<sig>.safetensors or <sig>.th per listed signature (run the train_separator stage "
            "or copy a demucs repo folder there)"
        ) from None


def _load_from_hub(name: str) -> Any:
    from demucs.apply import BagOfModels
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
    from huggingface_hub import constants, hf_hub_download

    namespace, _, short = name.rpartition("/")
    repo_id = f"{namespace or DEFAULT_NAMESPACE}/{hf_repo_name(short)}"
    try:
        bag = _read_bag(Path(hf_hub_download(repo_id, f"{short}.yaml")))
        models = [
            load_safetensors_model(hf_hub_download(repo_id, f"{sig}.safetensors"))
            for sig in bag["models"]
        ]
        return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()
    except SeparationError:
        raise
    except Exception as exc:  # offline, not cached, no such repo: all mean "not available"
        hub_error = _one_line(exc)
    legacy = _legacy_cached(short) if not namespace else None
    if legacy is not None:
        return legacy
    raise SeparationError(
        f"separator model {name!r} is not available offline: Hugging Face repo {repo_id} "
        f"(files {short}.yaml + <sig>.safetensors) is not in the cache {constants.HF_HUB_CACHE} "
        f"(HF_HUB_OFFLINE={int(constants.HF_HUB_OFFLINE)}; {hub_error}); fill the cache "
        "(HF_HOME / HF_HUB_CACHE) on a machine with access, or put a demucs repo folder "
        "somewhere and set separate.repo, or use separate.model: trained"
    )


def _legacy_cached(name: str) -> Any | None:
    """A demucs < 4.1 bag whose ``.th`` files all sit in the torch hub cache, else ``None``."""
    import torch
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files, get_model

    bag_file = REMOTE_ROOT / f"{name}.yaml"
    if not bag_file.is_file():
        return None
    urls = _parse_remote_files(REMOTE_ROOT / "files.txt")
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    sigs = _read_bag(bag_file)["models"]
    if not all(sig in urls and (hub_dir / urls[sig].rsplit("/", 1)[-1]).is_file() for sig in sigs):
        return None
    log.warning("loading %s from legacy .th files in %s (pickle)", name, hub_dir)
    return get_model(name)


def _read_bag(path: Path) -> dict[str, Any]:
    try:
        bag = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SeparationError(f"{path}: unreadable bag file ({_one_line(exc)})") from None
    if not isinstance(bag, dict) or not bag.get("models"):
        raise SeparationError(f"{path}: bag file without a 'models:' list of signatures")
    return bag


def load_safetensors_model(path: str | os.PathLike[str]) -> Any:
    """One Demucs model from a safetensors file in demucs 4.1's Hugging Face format.

    The metadata holds ``klass`` (module path), ``args`` and ``kwargs`` (JSON, fractions as
    ``{"_type": "fraction", ...}``); the tensors are the state dict. No pickle is involved and
    only Demucs model classes are accepted.
    """
    from demucs.states import load_model
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:
        raise SeparationError(
            f"{path}: not a readable safetensors file ({_one_line(exc)})"
        ) from None
    klass_name = meta.get("klass", "")
    if klass_name not in _ALLOWED_CLASSES:
        raise SeparationError(
            f"{path}: model class {klass_name!r} is not one of {_ALLOWED_CLASSES}"
        )
    if "structure" in meta:  # a quantized (diffq) state: demucs' own loader rebuilds it
        from demucs.hf import load_safetensors_model as demucs_load

        return demucs_load(path)
    module, cls = klass_name.rsplit(".", 1)
    klass = getattr(importlib.import_module(module), cls)
    args = _decode_json(json.loads(meta.get("args", "[]")))
    kwargs = _decode_json(json.loads(meta.get("kwargs", "{}")))
    return load_model({"klass": klass, "args": args, "kwargs": kwargs, "state": state})


# --------------------------------------------------------------------------------------------
# Exporting


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

    from .core.audio import atomic_path

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
            "args": json.dumps(_encode_json(list(args))),
            "kwargs": json.dumps(_encode_json(kwargs), sort_keys=True),
        }
        if training_args is not None:
            meta["training_args"] = json.dumps(_encode_json(dict(training_args)), sort_keys=True)
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
                "training_args": _encode_json(dict(training_args or {})),
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


def _encode_json(value: Any) -> Any:
    if isinstance(value, Fraction):
        return {"_type": "fraction", "numerator": value.numerator, "denominator": value.denominator}
    if isinstance(value, Mapping):
        return {str(k): _encode_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode_json(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("_type") == "fraction":
            return Fraction(value["numerator"], value["denominator"])
        return {k: _decode_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_json(v) for v in value]
    return value


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
