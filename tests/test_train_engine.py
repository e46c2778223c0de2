"""The training engine: recipe, exact resume, EMA export, on-the-fly data, DDP, the stage."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from musicrestore import tracking
from musicrestore.core.audio import save_audio
from musicrestore.core.config import ConfigError
from musicrestore.core.stage import StageError
from musicrestore.data.dataset import Example, write_manifest
from musicrestore.models.checkpoint import load_model, save_model
from musicrestore.train import engine
from musicrestore.train.data import (
    CropDataset,
    DataConfig,
    StepSampler,
    data_config_from_params,
    denoiser_data,
    split_examples,
)
from musicrestore.train.engine import TrainConfig, config_from_params, fit, lr_factor
from musicrestore.train.losses import l1_logmag, l1_mrstft
from musicrestore.train.modules import DenoiserModule
from tests import helpers
from tests.helpers import TinyConv

SR = 32000
CROP = {"crop_s": 0.25, "val_fraction": 0.33}  # 6 examples: 4 train, 2 validation
FAST = {"batch": 2, "lr": 1e-2, "accelerator": "cpu", "log_every": 1, "grad_clip": 1.0}


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, type]]:
    """``tiny_conv`` in ``musicrestore.models.ARCHITECTURES`` for one test."""
    yield helpers.register_architecture(monkeypatch, "tiny_conv", TinyConv)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 T1 examples of 0.5 s at 32 kHz mono: a chord over a faint noise floor (clean) and
    the same plus hiss (degraded)."""
    folder = tmp_path_factory.mktemp("musicgen_like") / "train"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(SR // 2) / SR
    examples = []
    for i in range(6):
        f0 = 110.0 * 2 ** (i / 4)
        clean = sum(0.2 * np.sin(2 * np.pi * f0 * k * t + i) / k for k in (1, 2, 3))
        clean = (clean[None] + 0.005 * rng.standard_normal((1, t.size))).astype(np.float32)
        noisy = (clean + 0.05 * rng.standard_normal(clean.shape)).astype(np.float32)
        ex_id = f"mgl_train_{i:05d}"
        save_audio(folder / f"{ex_id}_mixture.flac", noisy, SR)
        save_audio(folder / f"{ex_id}_target.flac", clean, SR)
        examples.append(
            Example(ex_id, "T1", f"{ex_id}_mixture.flac", f"{ex_id}_target.flac", SR, 0.5)
        )
    write_manifest(folder, examples)
    return folder


def _run(
    dataset: Path,
    work: Path,
    callbacks: tuple[object, ...] = (),
    data: dict[str, object] | None = None,
    run: tracking.StageRun | None = None,
    **train: object,
) -> tuple[DenoiserModule, engine.FitResult]:
    config = TrainConfig(**{**FAST, **train})  # type: ignore[arg-type]
    data_config = DataConfig(**{**CROP, "on_the_fly": False, **(data or {})})  # type: ignore[arg-type]
    torch.manual_seed(0)
    module = DenoiserModule(TinyConv())
    dm = denoiser_data([dataset], data_config, config.batch, config.seed)
    return module, fit(module, dm, config, work, run, progress=False, callbacks=list(callbacks))


def _loss_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """``(columns, rows)`` of a ``loss.csv`` (Lightning's CSVLogger: a row per logging
    call, the training metrics of a step in one, each validation in another)."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or ()), list(reader)


def _steps(rows: list[dict[str, str]], column: str) -> list[int]:
    return [int(row["step"]) for row in rows if row[column]]


class _Kill(engine.pl.Callback):
    """Stands for a SIGKILL: the run dies before step ``at + 1`` starts."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_start(self, trainer: object, *args: object) -> None:
        if trainer.global_step == self.at:  # type: ignore[attr-defined]
            raise RuntimeError("killed")


# ------------------------------------------------------------------------------- recipe


def test_loss_and_schedule() -> None:
    x = torch.randn(2, 1, 4096, requires_grad=True)
    assert float(l1_logmag(x.detach(), x.detach())) == 0.0
    loss = l1_logmag(x, torch.zeros_like(x) + 0.01)
    loss.backward()
    assert float(loss.detach()) > 0 and x.grad is not None and torch.isfinite(x.grad).all()
    config = TrainConfig(steps=10, warmup_steps=2, lr=1.0)
    factors = [lr_factor(s, config) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[-1] == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 7 / 8))
    )
    assert all(a >= b for a, b in zip(factors[1:], factors[2:], strict=False))
    flat = TrainConfig(steps=10, schedule="constant")
    assert {lr_factor(s, flat) for s in range(10)} == {1.0}


def test_multi_resolution_stft_loss_sees_what_the_waveform_l1_misses() -> None:
    """l1_mrstft: zero on a perfect estimate, gradients flow through (B, C, T) stereo, and a
    removed high band, which the waveform L1 barely registers, costs several times more
    through the STFT terms (spectral convergence and log magnitude)."""
    torch.manual_seed(0)
    x = torch.randn(2, 2, 8192, requires_grad=True)  # (B, C, T) stereo: flattened per channel
    assert float(l1_mrstft(x.detach(), x.detach())) == 0.0
    loss = l1_mrstft(x, torch.zeros_like(x) + 0.01)
    loss.backward()
    assert float(loss.detach()) > 0 and x.grad is not None and torch.isfinite(x.grad).all()
    ref = torch.randn(1, 1, 8192)
    spec = torch.fft.rfft(ref)
    spec[..., spec.shape[-1] // 2 :] *= 0.01  # the top half-band nearly removed
    lowpassed = torch.fft.irfft(spec, n=8192)
    waveform_only = float(torch.mean(torch.abs(lowpassed - ref)))
    with_stft = float(l1_mrstft(lowpassed, ref))
    assert with_stft > 3 * waveform_only
    with pytest.raises(ValueError, match="estimate"):
        l1_mrstft(ref, ref[..., :100])


def test_config_errors_are_one_line() -> None:
    for params, words in [
        ({"stepz": 3}, "train: unknown key(s) stepz"),
        ({"precision": "fp8"}, "train.precision: got 'fp8'"),
        ({"ema_decay": 1.5}, "train.ema_decay"),
        ({"accumulate": 0}, "train.accumulate"),
    ]:
        with pytest.raises(ConfigError) as exc:
            config_from_params(params)
        assert words in str(exc.value) and "\n" not in str(exc.value)
    assert config_from_params({"precision": "auto", "lr": "3e-4"}).lr == 3e-4
    with pytest.raises(StageError, match="needs a GPU"):
        engine.resolve_hardware(TrainConfig(precision="bf16-mixed", accelerator="cpu"))
    assert engine.resolve_hardware(TrainConfig(precision="auto", accelerator="cpu")) == (
        "cpu",
        "32-true",
    )
    with pytest.raises(ConfigError, match="data.degrade"):
        data_config_from_params({"degrade": {"chain": {"resampel": 0.5}}})


def test_a_few_steps_lower_the_loss(dataset: Path, tmp_path: Path) -> None:
    val = denoiser_data([dataset], DataConfig(**CROP, on_the_fly=False), 2, 0).val_set
    degraded = torch.stack([val[j][0] for j in range(2)])
    clean = torch.stack([val[j][1] for j in range(2)])
    torch.manual_seed(0)
    with torch.no_grad():
        before = float(l1_logmag(TinyConv()(degraded), clean))
    run = tracking.StageRun({"params": {}, "metrics": [], "tags": {}})
    module, result = _run(dataset, tmp_path / "work", run=run, steps=8, val_every=4)
    with torch.no_grad():
        after = float(l1_logmag(module.export_net()(degraded), clean))
    assert after < 0.9 * before
    assert result.step == 8 and len(result.losses) == 8 and result.resumed_from == 0
    assert set(result.metrics) == {"val_loss", "val_si_sdr", "val_si_sdr_degraded"}
    assert result.metrics["val_loss"] == pytest.approx(after, rel=1e-5)
    header, rows = _loss_csv(tmp_path / "work" / "loss.csv")
    assert header[0] == "step" and {"train_loss", "lr", "val_loss", "val_si_sdr"} <= set(header)
    assert _steps(rows, "train_loss") == list(range(1, 9)) == _steps(rows, "lr")
    assert _steps(rows, "val_loss") == [4, 8]  # validation every 4 steps, logged once each
    logged = {(name, step) for name, _, step, _ in run.record["metrics"]}  # type: ignore[index]
    assert {("train_loss", 1), ("lr", 8), ("val_si_sdr", 4), ("val_si_sdr", 8)} <= logged


# ------------------------------------------------------------------------------- resume


def test_a_killed_run_continues_exactly(dataset: Path, tmp_path: Path) -> None:
    """Kill after 4 of 8 steps, rerun: the same weights, EMA, losses and curve as one
    uninterrupted run (on-the-fly degradation, accumulation, warmup + cosine, EMA)."""
    train = {
        "steps": 8,
        "accumulate": 2,
        "warmup_steps": 2,
        "ema_decay": 0.9,
        "checkpoint_every": 2,
    }
    data = {"on_the_fly": True}
    straight, ref = _run(dataset, tmp_path / "a", data=data, **train)
    with pytest.raises(RuntimeError, match="killed"):
        _run(dataset, tmp_path / "b", (_Kill(5),), data=data, **train)
    assert engine.checkpoint_step(tmp_path / "b" / "last.ckpt") == 4
    resumed, got = _run(dataset, tmp_path / "b", data=data, **train)
    assert got.resumed_from == 4 and got.step == 8 and got.losses == ref.losses
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert int(resumed.ema.step) == 8
    curves = [(tmp_path / d / "loss.csv").read_text() for d in ("a", "b")]
    assert curves[0] == curves[1]

    # Raising steps continues; another configuration starts over (the stale state goes).
    more, longer = _run(dataset, tmp_path / "b", data=data, **{**train, "steps": 9})
    assert longer.resumed_from == 8 and longer.step == 9 and longer.losses[:8] == ref.losses
    _, other = _run(dataset, tmp_path / "b", data=data, **{**train, "lr": 5e-3, "steps": 1})
    assert other.resumed_from == 0 and other.step == 1 and len(other.losses) == 1
    _, past = _run(dataset, tmp_path / "a", data=data, **{**train, "steps": 4})
    assert past.resumed_from == 0 and past.step == 4  # fewer steps than done: from scratch
    assert past.losses == ref.losses[:4]


def test_a_hostile_work_checkpoint_runs_no_code(tmp_path: Path) -> None:
    """A ``last.ckpt`` that is not the engine's (its pickle runs code) under the current
    resume key: refused in one line naming it, before Lightning opens it, and nothing runs;
    a damaged one is still just stale (training starts over)."""
    from tests.helpers import MarkerPayload, SystemPayload

    work, marker = tmp_path / "work", tmp_path / "marker"
    work.mkdir()
    (work / engine.RESUME_FILE).write_text(json.dumps({"resume_key": "k"}))
    ckpt = work / engine.CHECKPOINT
    for payload in (MarkerPayload(marker), SystemPayload(marker)):
        torch.save({"global_step": 1, "state_dict": {"w": payload}}, ckpt)
        with pytest.raises(StageError) as exc:
            engine.prepare_work_dir(work, "k", steps=8)
        msg = str(exc.value)
        assert "\n" not in msg and str(ckpt) in msg and "refused" in msg, msg
        assert not marker.exists() and ckpt.is_file()
    # the engine's own content (tensors, plain values) reads; a truncated file is stale
    torch.save({"global_step": 3, "state_dict": {"w": torch.zeros(2)}, "loops": {}}, ckpt)
    assert engine.prepare_work_dir(work, "k", steps=8) == (ckpt, 3)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    assert engine.prepare_work_dir(work, "k", steps=8) == (None, 0)
    assert not ckpt.exists()


def test_ema_weights_are_exported(registry: dict[str, type], dataset: Path, tmp_path: Path) -> None:
    module, result = _run(dataset, tmp_path / "work", steps=4, ema_decay=0.5)
    exported = module.export_net().state_dict()
    raw = module.net.state_dict()
    ema = module.ema.ema_model.state_dict()
    assert all(torch.equal(exported[k], ema[k]) for k in exported)
    assert any(not torch.equal(exported[k], raw[k]) for k in exported)
    save_model(tmp_path / "ckpt", module.export_net(), "tiny_conv", {}, SR, result.step, "", "")
    loaded, config = load_model(tmp_path / "ckpt")
    assert config["step"] == 4
    assert all(torch.equal(loaded.state_dict()[k], ema[k]) for k in ema)


# --------------------------------------------------------------------------------- data


def test_on_the_fly_degradation_is_fresh_per_epoch_and_seeded(dataset: Path) -> None:
    train, val = split_examples([dataset], CROP["val_fraction"], 64)
    assert [ex.id for _, ex in train] == [f"mgl_train_{i:05d}" for i in range(4)]
    assert [ex.id for _, ex in val] == ["mgl_train_00004", "mgl_train_00005"]
    fly = CropDataset(train, DataConfig(**CROP), seed=3)
    deg0, clean0 = fly.item(1, epoch=0)
    deg1, _ = fly.item(1, epoch=1)
    assert deg0.shape == clean0.shape == (1, SR // 4)
    assert not torch.equal(deg0, deg1)
    again = CropDataset(train, DataConfig(**CROP), seed=3).item(1, epoch=0)
    assert torch.equal(deg0, again[0]) and torch.equal(clean0, again[1])
    assert not torch.equal(deg0, CropDataset(train, DataConfig(**CROP), seed=4).item(1, 0)[0])
    # The stream: epoch e visits every example once, in a seeded order.
    assert sorted(int(fly.permutation(1)[p]) for p in range(4)) == [0, 1, 2, 3]
    assert torch.equal(fly[4 + 2][0], fly.item(int(fly.permutation(1)[2]), 1)[0])
    # Cached: the degraded mixture is cropped where the target is.
    cached = CropDataset(train, DataConfig(**CROP, on_the_fly=False), seed=3)
    deg, clean = cached.item(0)
    assert float(torch.mean(torch.abs(deg - clean))) == pytest.approx(0.04, abs=0.01)
    stereo = CropDataset(val, DataConfig(**CROP, channels=2), seed=0, split="val")
    assert stereo[0][0].shape == (2, SR // 4) and torch.equal(stereo[1][0], stereo[1][0])


def test_the_on_the_fly_chain_degrades_as_the_t1_recipe_does(rng) -> None:
    """MusicGenLikeChain merges its config once and passes it on (``merged=True``): the pair
    is the bytes the recipe gives with the config merged per call, for defaults and overrides."""
    from musicrestore.degrade.chains import (
        MUSICGEN_CLEAN_PEAK_DBFS,
        musicgen_like,
        normalise_and_degrade,
    )
    from musicrestore.train.on_the_fly import MusicGenLikeChain

    clean = (0.3 * rng.standard_normal((1, SR // 2))).astype(np.float32)
    for cfg in ({}, {"chain": {"multi_delay": 1.0, "soft_clip": 1.0}, "mulaw_p": 0.0}):
        for seed in range(4):
            got = MusicGenLikeChain(cfg)(clean, np.random.default_rng(seed), SR)
            draw = np.random.default_rng(seed)
            want = normalise_and_degrade(
                clean,
                lambda wave, draw=draw, cfg=cfg: musicgen_like(wave, draw, cfg, sr=SR),
                MUSICGEN_CLEAN_PEAK_DBFS,
                0.999,
            )
            assert got[0].tobytes() == want.degraded.tobytes()
            assert got[1].tobytes() == want.clean.tobytes()


def test_augmentation_varies_training_crops_only_and_is_seeded(dataset: Path) -> None:
    """data.eq_db and data.remix change the clean training target (and so the degraded
    input), the same way for the same (seed, epoch, index); validation crops never change;
    off, they leave the stream as it was; out of range is a one-line error."""
    train, val = split_examples([dataset], CROP["val_fraction"], 64)
    plain = CropDataset(train, DataConfig(**CROP), seed=3)
    _, clean = plain.item(1, epoch=0)
    eq = CropDataset(train, DataConfig(**CROP, eq_db=9.0), seed=3)
    _, eq_clean = eq.item(1, epoch=0)
    assert not torch.equal(eq_clean, clean)
    # a shelf reshapes the spectrum: no single gain maps the plain crop onto it
    gain = float(torch.sum(eq_clean * clean) / torch.sum(clean * clean))
    residual = float(torch.mean((eq_clean - gain * clean) ** 2))
    assert residual > 0.01 * float(torch.mean(eq_clean**2))
    assert torch.equal(eq_clean, CropDataset(train, DataConfig(**CROP, eq_db=9.0), 3).item(1, 0)[1])
    # remix 1.0: every crop holds another example's crop too (the chord of another pitch)
    mixed = CropDataset(train, DataConfig(**CROP, remix=1.0), seed=3)
    _, mix_clean = mixed.item(1, epoch=0)
    spectrum = np.abs(np.fft.rfft(mix_clean[0].numpy()))
    own = np.abs(np.fft.rfft(clean[0].numpy()))
    assert np.sum(np.abs(spectrum - own * (spectrum @ own) / (own @ own))) > 0.2 * spectrum.sum()
    # validation: fixed crops and degradations whatever the augmentation
    for config in (DataConfig(**CROP, eq_db=9.0, remix=1.0), DataConfig(**CROP)):
        held = CropDataset(val, config, seed=3, split="val")
        reference = CropDataset(val, DataConfig(**CROP), seed=3, split="val")
        assert all(torch.equal(a, b) for a, b in zip(held[0], reference[0], strict=True))
    with pytest.raises(ConfigError, match=r"data\.eq_db"):
        data_config_from_params({"eq_db": 30.0})
    with pytest.raises(ConfigError, match=r"data\.remix"):
        data_config_from_params({"remix": 1.5})


def test_step_sampler_splits_micro_batches_across_ranks() -> None:
    def take(start: int, rank: int, world: int) -> list[int]:
        it = iter(StepSampler(start, 2, rank, world))
        return [next(it) for _ in range(4)]

    assert take(0, 0, 1) == [0, 1, 2, 3] and take(1, 0, 1) == [2, 3, 4, 5]
    assert take(0, 0, 2) == [0, 1, 4, 5] and take(0, 1, 2) == [2, 3, 6, 7]


# -------------------------------------------------------------------------- distributed

DDP_SCRIPT = """
import os, sys, torch
from torch.utils.data import Dataset
from musicrestore.train.data import StepDataModule
from musicrestore.train.engine import TrainConfig, fit
from musicrestore.train.modules import DenoiserModule

torch.set_num_threads(1)


class Toy(Dataset):
    def __init__(self, n=None):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        g = torch.Generator().manual_seed(int(k))
        clean = 0.3 * torch.randn(1, 1024, generator=g)
        return clean + 0.1 * torch.randn(1, 1024, generator=g), clean


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 1, 5, padding=2)

    def forward(self, x):
        return x + self.conv(x)


if __name__ == "__main__":
    torch.manual_seed(0)
    module = DenoiserModule(Net())
    config = TrainConfig(steps=2, batch=2, lr=1e-2, accelerator="cpu", log_every=1)
    result = fit(module, StepDataModule(Toy(), Toy(4), batch=2), config, sys.argv[1], progress=False)
    total = float(sum(p.detach().sum() for p in module.net.parameters()))
    print(f"RANK {os.environ['RANK']} world {module.trainer.world_size} step {result.step} "
          f"weights {total:.6f} val {result.metrics['val_si_sdr']:.4f} "
          f"losses {' '.join(f'{v:.6f}' for v in result.losses)}", flush=True)
"""


def test_torchrun_two_processes(tmp_path: Path) -> None:
    """``torchrun --nproc_per_node 2`` (gloo on the CPU): both ranks train two steps in sync
    (same weights, same all-reduced losses and validation) and rank 0 writes the checkpoint."""
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, str(script), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = sorted(line for line in proc.stdout.splitlines() if line.startswith("RANK"))
    assert len(lines) == 2, proc.stdout
    assert [line.split()[1] for line in lines] == ["0", "1"]
    assert {" ".join(line.split()[2:]) for line in lines} == {
        " ".join(lines[0].split()[2:])
    }  # same world, step, weights, (all-reduced) validation and losses
    assert "world 2 step 2" in lines[0]
    assert engine.checkpoint_step(tmp_path / "work" / "last.ckpt") == 2


# -------------------------------------------------------------------------------- stage


def _stage_main():  # stages/ is not a package: load the script as a module
    return helpers.load_script("stages/train.py", "stage_train").main


def test_stage_writes_a_loadable_checkpoint(
    registry: dict[str, type], dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    preset = {
        "arch": {"hidden": 3},
        "train": {**FAST, "steps": 3, "val_every": 2, "checkpoint_every": 2},
        "data": {**CROP, "on_the_fly": False},
    }
    params = {"seed": 5, "models": {"tiny_conv": {"preset": "small", "presets": {"small": preset}}}}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    argv = [
        "--model",
        "tiny_conv",
        "--train",
        str(dataset),
        "--out",
        "models/tiny",
        "--no-progress",
    ]
    _stage_main()(argv)
    out = Path("models/tiny")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "loss.csv",
        "metrics.json",
        "model.safetensors",
    ]
    assert (Path("models/.tiny_work") / "last.ckpt").is_file()
    net, config = load_model(out)
    assert isinstance(net, TinyConv) and config["kwargs"] == {"hidden": 3} and config["sr"] == SR
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 3 and metrics["val_examples"] == 2
    assert np.isfinite(metrics["val_si_sdr"]) and "train_s" not in metrics
    _, rows = _loss_csv(out / "loss.csv")
    assert _steps(rows, "train_loss") == [1, 2, 3] and _steps(rows, "val_si_sdr") == [2, 3]

    # Every step done: the rerun resumes, trains nothing and writes the same bytes.
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _stage_main()(argv)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    preset["arch"] = {"hiddn": 3}
    Path("params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exit_info:
        _stage_main()(argv)
    assert exit_info.value.code == 1
    assert (out / "model.safetensors").is_file()  # the failed stage left the output alone


def test_a_checkpoint_under_another_resume_key_is_never_resumed(tmp_path: Path) -> None:
    """The resume key guards exact resumption: a readable checkpoint within ``steps`` but
    saved under another key (model, configuration or data changed) is deleted, training
    starts at 0 and the new key is recorded; under the recorded key it resumes."""
    work = tmp_path / "work"
    work.mkdir()
    (work / engine.RESUME_FILE).write_text(json.dumps({"resume_key": "old"}))
    ckpt = work / engine.CHECKPOINT
    state = {"global_step": 3, "state_dict": {"w": torch.zeros(2)}, "loops": {}}
    torch.save(state, ckpt)
    assert engine.prepare_work_dir(work, "new", steps=8) == (None, 0)
    assert not ckpt.exists()
    assert json.loads((work / engine.RESUME_FILE).read_text())["resume_key"] == "new"
    torch.save(state, ckpt)
    assert engine.prepare_work_dir(work, "new", steps=8) == (ckpt, 3)
