"""Community RoFormer checkpoints (ZFTurbo's Music-Source-Separation-Training / UVR format)
loaded into lucidrains' ``bs_roformer`` classes, without running pickled code
(docs/method.md#pretrained-roformers).

The two architectures: BS-RoFormer (Lu et al., "Music Source Separation with Band-Split RoPE
Transformer", arXiv 2309.02612), which splits the complex STFT into fixed bands
(``freqs_per_bands``), and Mel-RoFormer (Wang et al., "Mel-Band RoFormer for Music Source
Separation", arXiv 2310.01809), whose bands are overlapping mel bands (``num_bands``). Both
alternate transformers across time and across bands and predict a complex mask per stem.

**What a published checkpoint is.** A weights file (``.ckpt`` / ``.pth``: a torch pickle of
a state dict, possibly nested under ``state_dict`` / ``model`` / ``state`` and with
``model.`` / ``module.`` prefixes; or ``.safetensors``) plus a YAML config with ``audio:``
(``sample_rate``, ``chunk_size``), ``model:`` (the constructor arguments of ZFTurbo's class)
and ``training:`` (``instruments``, ``target_instrument``). The weights are read with
:func:`musicrestore.core.safeload.weights_only_load` (no globals allowed beyond torch's own)
or safetensors; the YAML with :func:`musicrestore.core.config.load_yaml`. ZFTurbo's configs
tag their tuples ``!!python/tuple``, which a safe loader refuses: that one tag is removed
from the text before parsing (a sequence of numbers either way); any other tag is refused.

**From ZFTurbo's ``model:`` keys to ``bs_roformer`` 1.2.4** (:func:`library_kwargs`):

- passed on unchanged: ``dim, depth, stereo, num_stems, time_transformer_depth,
  freq_transformer_depth, dim_head, heads, attn_dropout, ff_dropout, flash_attn,
  dim_freqs_in, stft_n_fft, stft_hop_length, stft_win_length, stft_normalized, zero_dc,
  mask_estimator_depth, multi_stft_*`` (the last are the training loss's), BS
  ``freqs_per_bands``, Mel ``num_bands, sample_rate, linear_transformer_depth,
  match_input_audio_length``; ``use_pope`` when false.
- defaults that differ and are set explicitly: ZFTurbo's ``zero_dc`` defaults to true (the
  library's to false); Mel ``linear_transformer_depth`` defaults to 0 (library: 1).
- library features ZFTurbo's models lack, switched off: hyper-connections
  (``num_residual_streams=1``), value residuals (Mel ``add_value_residual=False``; BS has no
  switch, so the ``to_value_residual_mix`` layers of its attention are removed after
  construction, which is exactly ZFTurbo's attention).
- dropped (training only, no effect on the output): ``use_torch_checkpoint``,
  ``skip_connection: false``, ``mlp_expansion_factor: 4``.
- refused with one line (they change the architecture and the library cannot express
  them): ``skip_connection: true``, ``mlp_expansion_factor`` other than 4, ``use_pope: true``,
  BS ``linear_transformer_depth > 0``, and any key not listed here.

**State-dict names.** ZFTurbo's ``layers.<i>.<j>.layers.<k>.<0|1>.<param>`` become the
library's ``...<0|1>.branch.<param>`` (its residual wrapper), and a Mel model without linear
transformers shifts ``<j>`` by one (the library keeps an empty slot for them). A state dict
that still does not fit, by name or shape, is one line naming the file and the first keys.

Errors are :class:`RoformerError` (a :class:`~musicrestore.separation.SeparationError`), one
line naming the file. Names read from params become paths only after
:func:`musicrestore.core.paths.plain_name`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import resample, set_channels
from ..core.config import load_yaml
from ..core.errors import StageError
from ..core.paths import plain_name
from ..core.safeload import RefusedPickle, weights_only_load
from .errors import SeparationError, one_line


class RoformerError(SeparationError):
    """A RoFormer checkpoint or config that cannot be read, mapped or found; one line."""


#: ZFTurbo ``model:`` keys passed to both library classes, with the type each must have.
_COMMON: dict[str, type | tuple[type, ...]] = {
    "dim": int,
    "depth": int,
    "stereo": bool,
    "num_stems": int,
    "time_transformer_depth": int,
    "freq_transformer_depth": int,
    "dim_head": int,
    "heads": int,
    "attn_dropout": (int, float),
    "ff_dropout": (int, float),
    "flash_attn": bool,
    "dim_freqs_in": int,
    "stft_n_fft": int,
    "stft_hop_length": int,
    "stft_win_length": int,
    "stft_normalized": bool,
    "zero_dc": bool,
    "mask_estimator_depth": int,
    "multi_stft_resolution_loss_weight": (int, float),
    "multi_stft_resolutions_window_sizes": tuple,
    "multi_stft_hop_size": int,
    "multi_stft_normalized": bool,
}
_ONLY: dict[str, dict[str, type | tuple[type, ...]]] = {
    "bs": {"freqs_per_bands": tuple},
    "mel": {
        "num_bands": int,
        "sample_rate": int,
        "linear_transformer_depth": int,
        "match_input_audio_length": bool,
    },
}
#: Keys read and dropped when they hold the value that leaves the architecture unchanged.
_NEUTRAL: dict[str, Any] = {
    "use_torch_checkpoint": None,  # any value: gradient checkpointing, training only
    "skip_connection": False,
    "mlp_expansion_factor": 4,
    "use_pope": False,
    "linear_transformer_depth": 0,  # BS only (Mel passes it on)
}
#: ZFTurbo's defaults where they differ from the library's.
_ZFTURBO_DEFAULTS: dict[str, dict[str, Any]] = {
    "bs": {"zero_dc": True},
    "mel": {"zero_dc": True, "linear_transformer_depth": 0},
}
_TAG = re.compile(r"!!python/tuple\b")
_LAYER = re.compile(r"^layers\.(\d+)\.(\d+)\.layers\.(\d+)\.([01])\.(.+)$")


@dataclass(frozen=True)
class RoformerConfig:
    """What a published YAML says: architecture, library arguments, rate and stems.

    Attributes:
        kind: ``"bs"`` (``freqs_per_bands``) or ``"mel"`` (``num_bands``).
        kwargs: the library constructor's arguments (:func:`library_kwargs`).
        sample_rate: ``audio.sample_rate`` in Hz.
        chunk_size: ``audio.chunk_size`` in samples (the training window).
        outputs: the stems the network returns, in order.
        residual: the stem that is ``input - outputs[0]`` (a one-target model trained on two
            instruments: ZFTurbo writes it as the mixture minus the target), or ``None``.
    """

    kind: str
    kwargs: dict[str, Any]
    sample_rate: int
    chunk_size: int
    outputs: tuple[str, ...]
    residual: str | None

    @property
    def stems(self) -> tuple[str, ...]:
        return self.outputs + ((self.residual,) if self.residual else ())


def read_config(path: str | os.PathLike[str]) -> RoformerConfig:
    """A ZFTurbo/UVR RoFormer YAML -> :class:`RoformerConfig`; one-line errors naming it."""
    path = Path(path)
    doc = _load_tagged_yaml(path)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("model"), Mapping):
        raise RoformerError(f"{path}: not a RoFormer config (no 'model:' mapping)")
    model, audio = doc["model"], doc.get("audio") or {}
    training = doc.get("training") or {}
    if not isinstance(audio, Mapping) or not isinstance(training, Mapping):
        raise RoformerError(f"{path}: 'audio:' and 'training:' must be mappings")
    if "num_bands" in model and "freqs_per_bands" not in model:
        kind = "mel"
    elif "freqs_per_bands" in model and "num_bands" not in model:
        kind = "bs"
    else:
        raise RoformerError(
            f"{path}: model: needs exactly one of num_bands (Mel-RoFormer) or freqs_per_bands "
            "(BS-RoFormer)"
        )
    kwargs = library_kwargs(model, kind, str(path))
    sr = _positive_int(
        audio.get("sample_rate", kwargs.get("sample_rate", 44100)), path, "audio.sample_rate"
    )
    if kind == "mel" and kwargs.setdefault("sample_rate", sr) != sr:
        raise RoformerError(
            f"{path}: model.sample_rate {kwargs['sample_rate']} != audio.sample_rate {sr}"
        )
    chunk = _positive_int(audio.get("chunk_size", 8 * sr), path, "audio.chunk_size")
    outputs, residual = _stems(training, int(kwargs.get("num_stems", 1)), path)
    return RoformerConfig(kind, kwargs, sr, chunk, outputs, residual)


def library_kwargs(model: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    """ZFTurbo's ``model:`` block -> ``bs_roformer`` constructor arguments (see the module
    docstring for the mapping); a key or value it cannot map is one line naming ``where``."""
    known = {**_COMMON, **_ONLY[kind]}
    out: dict[str, Any] = dict(_ZFTURBO_DEFAULTS[kind])
    for key, value in model.items():
        if key in known:
            want = known[key]
            if want is tuple:
                if not isinstance(value, list | tuple) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value
                ):
                    raise RoformerError(
                        f"{where}: model.{key}: got {value!r}; expected a list of integers"
                    )
                value = tuple(value)
            elif want is bool and not isinstance(value, bool):
                raise RoformerError(f"{where}: model.{key}: got {value!r}; expected true or false")
            elif want is not bool and (isinstance(value, bool) or not isinstance(value, want)):
                raise RoformerError(f"{where}: model.{key}: got {value!r}; expected a number")
            out[key] = value
        elif key in _NEUTRAL:
            if _NEUTRAL[key] is not None and value != _NEUTRAL[key]:
                raise RoformerError(
                    f"{where}: model.{key}: {value!r} changes the architecture and "
                    f"bs_roformer cannot express it (supported: {_NEUTRAL[key]!r})"
                )
        else:
            raise RoformerError(
                f"{where}: model.{key}: not a {kind.upper()}-RoFormer key this loader knows "
                f"(known: {', '.join(sorted({*known, *_NEUTRAL}))})"
            )
    for key in ("dim", "depth"):
        if key not in out:
            raise RoformerError(f"{where}: model.{key} is missing")
    return out


def build_model(config: RoformerConfig) -> Any:
    """A ``bs_roformer`` module for ``config``, randomly initialised, with ZFTurbo's
    attention (no value-residual mix) and no hyper-connections; in eval mode."""
    import bs_roformer

    kwargs = dict(config.kwargs, num_residual_streams=1)
    try:
        if config.kind == "mel":
            net = bs_roformer.MelBandRoformer(**kwargs, add_value_residual=False)
        else:
            net = bs_roformer.BSRoformer(**kwargs)
    except Exception as exc:  # beartype, the library's asserts (bands that miss the STFT)
        raise RoformerError(f"model: {one_line(exc)}") from None
    for module in net.modules():
        if getattr(module, "to_value_residual_mix", None) is not None:
            module.to_value_residual_mix = None  # ZFTurbo's attention has no such mix
    return net.eval()


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The tensors of a ``.ckpt`` / ``.pth`` (weights only) or ``.safetensors`` file, unnested
    from ``state_dict`` / ``model`` / ``state`` and without a ``model.`` / ``module.`` prefix
    shared by every key."""
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = weights_only_load(path)
    except RefusedPickle as exc:
        raise RoformerError(
            f"{exc}; a RoFormer checkpoint holds tensors and plain values only"
        ) from None
    except Exception as exc:  # truncated, not a torch file, unreadable
        raise RoformerError(f"{path}: not a readable checkpoint ({one_line(exc)})") from None
    for _ in range(4):  # Lightning: {"state_dict": {"model.x": ...}}; others: {"model": ...}
        if isinstance(state, Mapping) and not any(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            inner = next(
                (
                    state[k]
                    for k in ("state_dict", "model", "state")
                    if isinstance(state.get(k), Mapping)
                ),
                None,
            )
            if inner is None:
                break
            state = inner
    if not isinstance(state, Mapping) or not state:
        raise RoformerError(
            f"{path}: no state dict found (expected tensors, or under state_dict/model)"
        )
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    for prefix in ("module.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def to_library_names(state: Mapping[str, Any], config: RoformerConfig) -> dict[str, Any]:
    """ZFTurbo's parameter names -> the library's (a state dict already in the library's
    names passes unchanged)."""
    shift = int(config.kind == "mel" and config.kwargs.get("linear_transformer_depth", 0) == 0)
    out = {}
    for key, value in state.items():
        if (m := _LAYER.match(key)) and not m.group(5).startswith("branch."):
            i, j, k, sub, rest = m.groups()
            key = f"layers.{i}.{int(j) + shift}.layers.{k}.{sub}.branch.{rest}"
        out[key] = value
    return out


def load_roformer(
    checkpoint: str | os.PathLike[str], config_path: str | os.PathLike[str], device: str = "cpu"
) -> RoformerModel:
    """A checkpoint and its YAML -> :class:`RoformerModel` on ``device``; one-line errors."""
    checkpoint = Path(checkpoint)
    config = read_config(config_path)
    try:
        net = build_model(config)
    except RoformerError as exc:
        raise RoformerError(f"{config_path}: {exc}") from None
    state = to_library_names(read_state_dict(checkpoint), config)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or shapes:
        said = [
            f"{len(missing)} missing (e.g. {', '.join(missing[:2])})" if missing else "",
            f"{len(extra)} unexpected (e.g. {', '.join(extra[:2])})" if extra else "",
            f"{len(shapes)} of another shape (e.g. {shapes[0]}: {tuple(state[shapes[0]].shape)} "
            f"vs {tuple(own[shapes[0]].shape)})"
            if shapes
            else "",
        ]
        raise RoformerError(
            f"{checkpoint}: weights do not fit the {config.kind.upper()}-RoFormer of "
            f"{Path(config_path).name}: " + "; ".join(s for s in said if s)
        )
    net.load_state_dict(state, strict=True)
    return RoformerModel(net.to(device), config, str(checkpoint))


class RoformerModel:
    """A loaded RoFormer with its config: :meth:`stem` runs it chunked and seamlessly.

    Attributes:
        net: the ``bs_roformer`` module (eval mode).
        config: its :class:`RoformerConfig`.
        name: the checkpoint file, for messages.
    """

    def __init__(self, net: Any, config: RoformerConfig, name: str) -> None:
        self.net, self.config, self.name = net, config, name

    @property
    def channels(self) -> int:
        return 2 if self.config.kwargs.get("stereo") else 1

    def stem(
        self,
        wave: np.ndarray,
        sr: int,
        stem: str,
        *,
        chunk_s: float | None = None,
        context_s: float = 1.0,
        batch_size: int = 1,
    ) -> np.ndarray:
        """The ``stem`` of ``wave (C, T)`` at ``sr``, as ``(C, T)`` at ``sr``.

        Resampled to the model's rate (:func:`musicrestore.core.audio.resample`), channels
        matched (:func:`~musicrestore.core.audio.set_channels`), run in windows of
        ``chunk_s`` (default the config's ``chunk_size``) with ``context_s`` of context each
        side and Hann cross-fades through the one engine
        (:func:`musicrestore.models.inference.unet_ola`), so memory is bounded by the window.
        """
        from ..models.inference import unet_ola

        if stem not in self.config.stems:
            raise RoformerError(
                f"{self.name}: no stem {stem!r}; it gives {', '.join(self.config.stems)}"
            )
        assert wave.ndim == 2, wave.shape
        model_sr = self.config.sample_rate
        x = np.ascontiguousarray(resample(set_channels(wave, self.channels), sr, model_sr))
        chunk = chunk_s if chunk_s is not None else self.config.chunk_size / model_sr
        net = _StemNet(self.net, self.config, stem)
        y = unet_ola(net, x, chunk, context_s, model_sr, batch_size=batch_size)
        out = set_channels(resample(y, model_sr, sr), wave.shape[0])[:, : wave.shape[1]]
        if out.shape[1] < wave.shape[1]:  # a rational resampling round trip ends a sample short
            out = np.pad(out, ((0, 0), (0, wave.shape[1] - out.shape[1])), mode="edge")
        return np.ascontiguousarray(out, dtype=np.float32)


@functools.cache
def _stem_net_class() -> Any:
    import torch
    from torch import nn

    class StemNet(nn.Module):
        """``(B, C, L) -> (B, C, L)``: one stem of a RoFormer (or the residual), the window
        padded to whole STFT hops and the output cropped back (the library's ISTFT drops the
        last partial hop)."""

        def __init__(self, net: nn.Module, config: RoformerConfig, stem: str) -> None:
            super().__init__()
            self.net = net
            self.hop = int(config.kwargs.get("stft_hop_length", 512))
            self.alignment = self.hop  # chunk starts on the STFT grid (unet_ola)
            self.index = config.outputs.index(stem) if stem in config.outputs else 0
            self.residual = stem not in config.outputs

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
            length = x.shape[-1]
            pad = -length % self.hop
            y = self.net(nn.functional.pad(x, (0, pad)))  # (B, C, L') or (B, N, C, L')
            if y.ndim == 4:
                y = y[:, self.index]
            y = y[..., :length]
            if y.shape[-1] < length:
                y = nn.functional.pad(y, (0, length - y.shape[-1]))
            return x - y if self.residual else y

    return StemNet


def _StemNet(net: Any, config: RoformerConfig, stem: str) -> Any:  # noqa: N802 (a factory)
    return _stem_net_class()(net, config, stem)


# ------------------------------------------------------------------------------- helpers


def _load_tagged_yaml(path: Path) -> Any:
    """:func:`load_yaml` of ``path`` with ZFTurbo's ``!!python/tuple`` tags removed (a copy
    in a private temporary folder, so the one safe loader reads it; messages name ``path``)."""
    import tempfile

    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise RoformerError(f"{path}: RoFormer config not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RoformerError(f"{path}: unreadable RoFormer config ({one_line(exc)})") from None
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "config.yaml"
        copy.write_text(_TAG.sub("", text), "utf-8")
        try:
            return load_yaml(copy, "RoFormer config")
        except StageError as exc:
            raise RoformerError(str(exc).replace(str(copy), str(path))) from None


def _positive_int(value: Any, path: Path, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RoformerError(f"{path}: {key}: got {value!r}; expected a positive integer")
    return value


def _stems(
    training: Mapping[str, Any], num_stems: int, path: Path
) -> tuple[tuple[str, ...], str | None]:
    """``(outputs, residual)`` from ``training.instruments`` / ``target_instrument``."""
    instruments = training.get("instruments") or []
    target = training.get("target_instrument")
    if not isinstance(instruments, list) or not all(isinstance(i, str) for i in instruments):
        raise RoformerError(f"{path}: training.instruments: expected a list of names")
    if target is not None:
        if not isinstance(target, str) or num_stems != 1:
            raise RoformerError(
                f"{path}: training.target_instrument {target!r} needs a name and num_stems 1"
            )
        others = [i for i in instruments if i != target]
        return (target,), others[0] if len(others) == 1 else None
    if len(instruments) != num_stems:
        raise RoformerError(
            f"{path}: training.instruments names {len(instruments)} stems, model.num_stems is "
            f"{num_stems}; set target_instrument for a one-stem model"
        )
    return tuple(instruments), None


# ------------------------------------------------------------------------ where files are


def cached_file(name: str, folder: str | os.PathLike[str] | None, repo: str | None) -> Path | None:
    """``folder/name`` when it is a file, else the Hugging Face cache's copy of ``name`` in
    ``repo``, else ``None``; never the network. ``name`` is checked to be a plain file name."""
    plain_name(name, "RoFormer checkpoint file")
    if folder is not None and (Path(folder) / name).is_file():
        return Path(folder) / name
    if repo:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str) and Path(found).is_file():
            return Path(found)
    return None


def fetch_file(
    name: str, folder: str | os.PathLike[str] | None, repo: str | None, url: str | None = None
) -> Path:
    """:func:`cached_file`, else a download from ``repo`` through ``huggingface_hub`` (into
    its cache; not when ``HF_HUB_OFFLINE=1``); else a one-line :class:`RoformerError` saying
    what to download and the command (:func:`download_command`; ``url``: where the file is
    published when it is not on the hub, a GitHub release asset)."""
    found = cached_file(name, folder, repo)
    if found is not None:
        return found
    problem = "no Hugging Face repo is given for it"
    if repo:
        from huggingface_hub import constants, hf_hub_download

        problem = "not in the Hugging Face cache and HF_HUB_OFFLINE=1"
        if not constants.HF_HUB_OFFLINE:
            try:
                return Path(hf_hub_download(repo, name))
            except Exception as exc:  # no such repo or file, no network
                problem = one_line(exc)
    where = f"{folder}/" if folder is not None else "the checkpoint folder"
    raise RoformerError(
        f"RoFormer file {name} is missing: not in {where} and {problem}; download it on a "
        f"machine with network: {download_command([(name, url)], folder, repo)}"
    )


def download_command(
    files: list[tuple[str, str | None]], folder: str | os.PathLike[str] | None, repo: str | None
) -> str:
    """The shell command that puts ``files`` (``(name, url or None)``) into ``folder``:
    ``hf download`` from ``repo``, else ``curl`` from each file's URL."""
    dest = str(folder) if folder is not None else "pretrained"
    names = [n for n, _ in files]
    if repo:
        return f"hf download {repo} {' '.join(names)} --local-dir {dest}"
    if all(u for _, u in files):
        return " && ".join(f"curl -L -o {dest}/{n} {u}" for n, u in files)
    return f"copy {', '.join(names)} into {dest}/ (see pretrained/README.md)"
