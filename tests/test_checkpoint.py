"""Inference checkpoints: safetensors + config.json, rebuilt from the registry, never unpickled."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from musicrestore.models import checkpoint
from musicrestore.models.checkpoint import CheckpointError, load_model, read_config, save_model
from tests import helpers


class TinyConv(helpers.TinyConv):
    """The shared tiny network with a shorter kernel (5), as these checkpoints record it."""

    def __init__(self, channels: int = 1, hidden: int = 4, kernel: int = 5) -> None:
        super().__init__(channels, hidden, kernel)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, type]]:
    """``tiny_conv`` in ``musicrestore.models.ARCHITECTURES`` for one test."""
    yield helpers.register_architecture(monkeypatch, "tiny_conv", TinyConv)


def _save(folder: Path, net: torch.nn.Module | None = None, **kw: object) -> torch.nn.Module:
    torch.manual_seed(0)
    net = net or TinyConv(hidden=6)
    args = {
        "arch": "tiny_conv",
        "kwargs": {"hidden": 6},
        "sr": 32000,
        "step": 12,
        "data_hash": "d" * 64,
        "params_hash": "p" * 16,
        **kw,
    }
    save_model(folder, net, **args)  # type: ignore[arg-type]
    return net


def _one_line(exc: pytest.ExceptionInfo[BaseException], *words: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for word in words:
        assert word in msg, msg


def test_save_load_gives_identical_outputs(registry: dict[str, type], tmp_path: Path) -> None:
    net = _save(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    loaded, config = load_model(tmp_path / "ckpt")
    assert isinstance(loaded, TinyConv) and not loaded.training
    x = torch.randn(2, 1, 300)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), loaded(x))
    assert config["arch"] == "tiny_conv" and config["kwargs"] == {"hidden": 6}
    assert (config["sr"], config["step"], config["params_hash"]) == (32000, 12, "p" * 16)
    assert config["code_version"] and config["data_hash"] == "d" * 64
    assert read_config(tmp_path / "ckpt") == config


class _Payload:
    """Unpickling this runs ``Path.write_text(marker, "pwned")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return Path.write_text, (self.marker, "pwned")


def test_a_pickle_in_place_of_the_weights_runs_no_code(
    registry: dict[str, type], tmp_path: Path
) -> None:
    folder = tmp_path / "ckpt"
    _save(folder)
    payload = pickle.dumps({"state_dict": _Payload(tmp_path / "marker")})
    pickle.loads(payload)  # the payload is live: plain unpickling runs it
    assert (tmp_path / "marker").read_text() == "pwned"
    (tmp_path / "marker").unlink()

    (folder / "model.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError) as exc:
        load_model(folder)
    _one_line(exc, "model.safetensors")
    # Even with a config that vouches for the replaced file, it is never unpickled.
    config = json.loads((folder / "config.json").read_text())
    config["weights_sha256"] = checkpoint._sha256(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as exc:
        load_model(folder)
    _one_line(exc, "not a safetensors file")
    torch.save({"w": _Payload(tmp_path / "marker")}, folder / "model.safetensors")
    config["weights_sha256"] = checkpoint._sha256(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as exc:
        load_model(folder)
    _one_line(exc, "not a safetensors file")
    assert not (tmp_path / "marker").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]


def test_unknown_architectures_are_refused(registry: dict[str, type], tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    _save(folder)
    config = json.loads((folder / "config.json").read_text())
    config["arch"] = "os.system"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as exc:
        load_model(folder)
    _one_line(exc, "'os.system'", "refusing")
    with pytest.raises(CheckpointError) as exc:
        _save(tmp_path / "other", arch="nosuch")
    _one_line(exc, "'nosuch'")
    assert not (tmp_path / "other" / "config.json").exists()


def test_bad_configs_and_mismatched_weights_are_one_line_errors(
    registry: dict[str, type], tmp_path: Path
) -> None:
    folder = tmp_path / "ckpt"
    with pytest.raises(CheckpointError) as exc:
        load_model(folder)
    _one_line(exc, "config.json")
    _save(folder)
    good = (folder / "config.json").read_text()
    for text, word in [
        ("{", "unreadable"),
        ('{"arch": "tiny_conv"}', "missing kwargs"),
        (good.replace('"sr": 32000', '"sr": -1'), "'sr'"),
        (good.replace('"hidden": 6', '"hidden": 7'), "do not fit tiny_conv"),
        (good.replace('"hidden": 6', '"hiden": 6'), "bad tiny_conv kwargs"),
    ]:
        (folder / "config.json").write_text(text)
        with pytest.raises(CheckpointError) as exc:
            load_model(folder)
        _one_line(exc, word)
    (folder / "config.json").write_text(good)
    with pytest.raises(CheckpointError) as exc:
        _save(tmp_path / "tuple", kwargs={"hidden": (6,)})
    _one_line(exc, "plain JSON")


def test_inference_never_imports_lightning() -> None:
    code = (
        "import sys, importlib.util\n"
        "import musicrestore.models.checkpoint\n"
        "if importlib.util.find_spec('musicrestore.models'):\n"
        "    import musicrestore.models\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'lightning_fabric', 'ema_pytorch'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
