"""Loading a Demucs model: from a local repository folder (safetensors without pickle, or
demucs' own ``.th`` packages), from the Hugging Face hub cache, or from the legacy torch hub
cache (see :mod:`musicrestore.separation` for the order).

Nothing loaded here runs code. safetensors holds raw tensors and JSON; a ``.th`` package (a
torch pickle) is read by :func:`load_th_package` with ``torch.load(weights_only=True)`` and
an allowlist of exactly what a Demucs package pickles beyond tensors: the model class, as a
stand-in that runs nothing, and ``fractions.Fraction`` (HTDemucs' ``segment``). A package
that asks for anything else is refused with one line naming the file. ``trust_pickle``
(``--trust-pickle``, ``separate.trust_pickle: true``) loads it the old way, through demucs'
own ``torch.load(weights_only=False)``, with a warning. Every name read from a bag file or a
model name is a plain file name before it becomes a path (:mod:`musicrestore.core.paths`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from ..core.config import load_yaml
from ..core.errors import StageError
from ..core.paths import plain_name
from ..core.safeload import RefusedPickle, weights_only_load
from .codec import decode_json
from .errors import SeparationError, one_line
from .separator import DemucsSeparator, Separator

log = logging.getLogger(__package__)  # the package's logger, as before the split

#: Name under which the pipeline-trained separator is exported (``<repo>/trained.yaml``).
TRAINED = "trained"

#: Model classes a safetensors file may name; anything else is refused, because the class is
#: imported by name from the file's metadata.
_ALLOWED_CLASSES = ("demucs.htdemucs.HTDemucs", "demucs.hdemucs.HDemucs", "demucs.demucs.Demucs")

#: What loading a pickle with ``trust_pickle`` says (once per file).
TRUST_WARNING = (
    "%s: loading with pickle (trust_pickle): a pickle runs whatever code it holds; only do "
    "this with files you trust"
)


class _ModelClass:
    """What a package's ``klass`` unpickles to: a stand-in for one Demucs model class that
    runs nothing, even when a pickle calls it; the real class is looked up by :attr:`path`
    after unpickling, from :data:`_ALLOWED_CLASSES` only."""

    path: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


_STAND_INS: dict[str, type[_ModelClass]] = {
    name: type(name.rsplit(".", 1)[1], (_ModelClass,), {"path": name}) for name in _ALLOWED_CLASSES
}


def package_allowlist() -> list[Any]:
    """The globals a Demucs package pickles beyond tensors and plain containers (read off
    ``demucs.states.serialize_model`` and :func:`~.export.export_repo` packages): the model
    class, unpickled as a stand-in (:class:`_ModelClass`), and ``fractions.Fraction``."""
    from fractions import Fraction

    return [*((cls, name) for name, cls in _STAND_INS.items()), Fraction]


def load_separator(
    model: str,
    repo: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    *,
    trust_pickle: bool = False,
    **apply_kwargs: Any,
) -> Separator:
    """Load a Demucs separator by name (see the module docstring for where it looks).

    Args:
        model: a bag or signature name: ``"htdemucs"``, ``"htdemucs_ft"``, ``"htdemucs_6s"``,
            ``"mdx_extra"``, ``"<namespace>/<name>"`` on the HF hub, or ``"trained"`` (the
            pipeline-trained model, which needs ``repo``).
        repo: a local Demucs repository folder, or ``None`` for the Hugging Face cache/hub.
        device: ``"cpu"`` or ``"cuda"``.
        trust_pickle: load ``.th`` packages with pickle, which runs whatever code they hold
            (a warning says so); without it they load with the allowlist of
            :func:`load_th_package`, and anything else is refused.
        apply_kwargs: :class:`DemucsSeparator` options (``shifts``, ``overlap``,
            ``segment_s``, ``seed``, ``progress``, ``num_workers``, ``split``).

    Raises:
        SeparationError: the model cannot be found or read; one line, with what to do.
    """
    name = str(model).strip()
    if not name:
        raise SeparationError("empty separator model name")
    if repo is not None:
        net = _load_from_folder(name, Path(repo), trust_pickle)
    elif name == TRAINED:
        raise SeparationError(
            "model 'trained' needs repo=<folder> written by the train_separator stage "
            "(e.g. models/separator)"
        )
    else:
        net = _load_from_hub(name, trust_pickle)
    return DemucsSeparator(net, device=device, **apply_kwargs)


def _load_from_folder(name: str, folder: Path, trust_pickle: bool = False) -> Any:
    from demucs.apply import BagOfModels

    if not folder.is_dir():
        raise SeparationError(f"{folder}: separator repo folder does not exist (model {name!r})")
    bag_name = plain_name(name.rsplit("/", 1)[-1], "separator model")  # "ns/name": name.yaml
    bag_file = folder / f"{bag_name}.yaml"
    packages = _th_packages(folder)
    if bag_file.is_file():
        bag = _read_bag(bag_file)
        models = [_load_signature(folder, sig, packages, trust_pickle) for sig in bag["models"]]
        return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()
    if (folder / f"{bag_name}.safetensors").is_file() or bag_name in packages:
        return _load_signature(folder, bag_name, packages, trust_pickle).eval()  # a bare signature
    found = sorted(p.name for p in folder.iterdir() if p.suffix in (".yaml", ".th", ".safetensors"))
    raise SeparationError(
        f"{folder}: no separator model {bag_name!r}; the folder holds "
        f"{', '.join(found) or 'no model files'}; expected {bag_name}.yaml plus "
        "<sig>.safetensors or <sig>.th per listed signature (run the train_separator stage "
        "or copy a demucs repo folder there)"
    )


def _th_packages(folder: Path) -> dict[str, Path]:
    """``{signature: file}`` of the ``<sig>[-<checksum>].th`` packages in ``folder``, as
    demucs' ``LocalRepo`` scans them (one package per signature)."""
    out: dict[str, Path] = {}
    for path in sorted(folder.glob("*.th")):
        sig = path.stem.rsplit("-", 1)[0]
        if sig in out:
            raise SeparationError(
                f"{folder}: two packages for signature {sig} ({out[sig].name}, {path.name}); "
                "keep one"
            )
        out[sig] = path
    return out


def _load_signature(
    folder: Path, sig: str, packages: Mapping[str, Path], trust_pickle: bool
) -> Any:
    """One model of a folder: ``<sig>.safetensors`` when there is one, else its package."""
    single = folder / f"{sig}.safetensors"
    if single.is_file():
        return load_safetensors_model(single)
    if sig in packages:
        return load_th_package(packages[sig], trust_pickle)
    raise SeparationError(
        f"{folder}: no model file for signature {sig} (expected {sig}.safetensors or "
        f"{sig}[-<checksum>].th)"
    )


def load_th_package(path: str | os.PathLike[str], trust_pickle: bool = False) -> Any:
    """One Demucs model from a ``.th`` package (``demucs.states.serialize_model``'s dict of
    ``klass``, ``args``, ``kwargs``, ``state``), without running anything it holds.

    A name ``<sig>-<checksum>.th`` is checked against the file's SHA-256 first, as demucs
    does. The package is unpickled with ``weights_only=True`` and :func:`package_allowlist`;
    a pickle that needs anything else is a one-line :class:`SeparationError` naming the file
    and the global it asked for. ``trust_pickle`` loads it with demucs' own
    ``torch.load(weights_only=False)`` instead, after a warning.
    """
    from demucs.states import load_model

    path = Path(path)
    _check_checksum(path)
    if trust_pickle:
        log.warning(TRUST_WARNING, path)
        try:
            return load_model(path)
        except Exception as exc:  # an unreadable package, a class demucs cannot build
            raise SeparationError(
                f"{path}: not a loadable demucs package ({one_line(exc)})"
            ) from None
    try:
        package = weights_only_load(path, package_allowlist())
    except RefusedPickle as exc:
        raise SeparationError(
            f"{exc}; a demucs package holds one Demucs model class, tensors and plain values "
            "only. If you trust the file, load it with --trust-pickle (separate.trust_pickle: "
            "true), or convert it once to <sig>.safetensors (musicrestore.separation.export_repo)"
        ) from None
    except Exception as exc:  # truncated, not a torch file, unreadable
        raise SeparationError(f"{path}: not a readable demucs package ({one_line(exc)})") from None
    klass = package.get("klass") if isinstance(package, dict) else None
    if not (isinstance(klass, type) and issubclass(klass, _ModelClass) and klass.path):
        raise SeparationError(
            f"{path}: not a demucs package (no 'klass' naming one of {', '.join(_ALLOWED_CLASSES)})"
        )
    if not (
        isinstance(package.get("args"), list | tuple)
        and isinstance(package.get("kwargs"), dict)
        and isinstance(package.get("state"), dict)
    ):
        raise SeparationError(f"{path}: not a demucs package (needs args, kwargs and state)")
    if package["state"].get("__quantized") and importlib.util.find_spec("diffq") is None:
        raise SeparationError(f"{path}: a quantized (diffq) package; install diffq to load it")
    module, cls = klass.path.rsplit(".", 1)
    real = getattr(importlib.import_module(module), cls)
    try:
        return load_model({**package, "klass": real})
    except Exception as exc:  # arguments or weights that do not fit the class
        raise SeparationError(f"{path}: not a loadable demucs package ({one_line(exc)})") from None


def _check_checksum(path: Path) -> None:
    """``<sig>-<checksum>.th``: the checksum is the start of the file's SHA-256 (demucs'
    ``check_checksum``; the torch hub cache names its files the same way)."""
    if "-" not in path.stem:
        return
    expected = path.stem.rsplit("-", 1)[1]
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    if not digest.hexdigest().startswith(expected):
        raise SeparationError(
            f"{path}: checksum mismatch (the name says {expected}, the file hashes to "
            f"{digest.hexdigest()[: len(expected)]}); the file is damaged or was replaced"
        )


def _load_from_hub(name: str, trust_pickle: bool = False) -> Any:
    from demucs.apply import BagOfModels
    from demucs.hf import DEFAULT_NAMESPACE, hf_repo_name
    from huggingface_hub import constants, hf_hub_download

    namespace, _, short = name.rpartition("/")
    plain_name(short, "separator model")
    if namespace:
        plain_name(namespace, "separator model namespace")
    repo_id = f"{namespace or DEFAULT_NAMESPACE}/{hf_repo_name(short)}"
    try:
        bag = _read_bag(Path(hf_hub_download(repo_id, f"{short}.yaml")))
        models = [
            load_safetensors_model(hf_hub_download(repo_id, f"{sig}.safetensors"))
            for sig in bag["models"]
        ]
        return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()
    except StageError:  # a bag or a model file that is there but refused: say so
        raise
    except Exception as exc:  # offline, not cached, no such repo: all mean "not available"
        hub_error = one_line(exc)
    legacy = _legacy_cached(short, trust_pickle) if not namespace else None
    if legacy is not None:
        return legacy
    raise SeparationError(
        f"separator model {name!r} is not available offline: Hugging Face repo {repo_id} "
        f"(files {short}.yaml + <sig>.safetensors) is not in the cache {constants.HF_HUB_CACHE} "
        f"(HF_HUB_OFFLINE={int(constants.HF_HUB_OFFLINE)}; {hub_error}); fill the cache "
        "(HF_HOME / HF_HUB_CACHE) on a machine with access, or put a demucs repo folder "
        "somewhere and set separate.repo, or use separate.model: trained"
    )


def _legacy_cached(name: str, trust_pickle: bool = False) -> Any | None:
    """A demucs < 4.1 bag whose ``.th`` files all sit in the torch hub cache, else ``None``;
    each is read by :func:`load_th_package` (weights only, unless ``trust_pickle``)."""
    import torch
    from demucs.apply import BagOfModels
    from demucs.pretrained import REMOTE_ROOT, _parse_remote_files

    bag_file = REMOTE_ROOT / f"{name}.yaml"
    if not bag_file.is_file():
        return None
    urls = _parse_remote_files(REMOTE_ROOT / "files.txt")
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    bag = _read_bag(bag_file)
    files = [hub_dir / urls[sig].rsplit("/", 1)[-1] for sig in bag["models"] if sig in urls]
    if len(files) != len(bag["models"]) or not all(f.is_file() for f in files):
        return None
    log.info("loading %s from the legacy .th files in %s", name, hub_dir)
    models = [load_th_package(f, trust_pickle) for f in files]
    return BagOfModels(models, bag.get("weights"), bag.get("segment")).eval()


def _read_bag(path: Path) -> dict[str, Any]:
    """A bag file (``models:`` signatures, optional ``weights``, ``segment``), read with the
    one safe YAML loader (bounded, no aliases); every signature a plain file name."""
    try:
        bag = load_yaml(path, "separator bag file")
    except StageError as exc:
        raise SeparationError(str(exc)) from None
    if not isinstance(bag, dict) or not isinstance(bag.get("models"), list) or not bag["models"]:
        raise SeparationError(f"{path}: bag file without a 'models:' list of signatures")
    for i, sig in enumerate(bag["models"]):
        plain_name(sig, f"{path}: models[{i}]", room=len(".safetensors"))
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
            f"{path}: not a readable safetensors file ({one_line(exc)})"
        ) from None
    klass_name = meta.get("klass", "")
    if klass_name not in _ALLOWED_CLASSES:
        raise SeparationError(
            f"{path}: model class {klass_name!r} is not one of {_ALLOWED_CLASSES}"
        )
    if "structure" in meta:  # a quantized (diffq) state: demucs' own loader rebuilds it
        from demucs.hf import load_safetensors_model as demucs_load

        # demucs imports every "_class" the structure names: only diffq's own may appear.
        foreign = sorted(
            c for c in _structure_classes(meta["structure"]) if c.split(".")[0] != "diffq"
        )
        if foreign:
            raise SeparationError(
                f"{path}: the quantized state names classes outside diffq: {foreign[:3]}"
            )
        try:
            return demucs_load(path)
        except Exception as exc:  # diffq not installed, a malformed structure
            raise SeparationError(
                f"{path}: quantized model not loadable ({one_line(exc)})"
            ) from None
    module, cls = klass_name.rsplit(".", 1)
    klass = getattr(importlib.import_module(module), cls)
    args = decode_json(json.loads(meta.get("args", "[]")))
    kwargs = decode_json(json.loads(meta.get("kwargs", "{}")))
    return load_model({"klass": klass, "args": args, "kwargs": kwargs, "state": state})


def _structure_classes(text: str) -> set[str]:
    """Every ``{"_class": name}`` of a quantized state's JSON structure."""
    found: set[str] = set()
    try:
        todo = [json.loads(text)]
    except ValueError:
        return {"<an unreadable structure>"}
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            if "_class" in node:
                found.add(str(node["_class"]))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return found
