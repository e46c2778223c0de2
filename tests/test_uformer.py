"""Seed 004's U-Former (docs/method.md#uformer): the network, its rotary attention, the
two-stage adversarial training on the one engine (stage switch, exact resume across it),
per-group checkpoints through the ``uformer`` variant, and seamless chunked inference."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from musicrestore.core.audio import save_audio
from musicrestore.core.config import ConfigError
from musicrestore.core.stage import StageError
from musicrestore.data.dataset import Example, write_manifest
from musicrestore.models import ARCHITECTURES, UFormer
from musicrestore.models.checkpoint import load_model, save_model
from musicrestore.models.discriminator import DISCRIMINATORS, MultiScaleDiscriminator
from musicrestore.train import engine
from musicrestore.train.data import (
    CropDataset,
    DataConfig,
    StagedBatchSampler,
    denoiser_data,
    split_examples,
)
from musicrestore.train.engine import fit
from musicrestore.train.losses import feature_matching, lsgan_discriminator, lsgan_generator
from musicrestore.train.recipe import build_module, spec_from_params
from musicrestore.variants import VariantError, build_context, get_variant

SR = 44100
#: A U-Former small enough for a test: 129 bins, two levels, one RoFormer block.
TINY: dict[str, Any] = {
    "n_fft": 256,
    "hop": 64,
    "channels": [2, 4],
    "roformer_layers": 1,
    "heads": 2,
    "dim_head": 4,
}
#: A tiny two-stage preset: 2 L1 steps at batch 2, then 2 adversarial steps at batch 1.
PRESET: dict[str, Any] = {
    "arch": TINY,
    "train": {
        "steps": 4,
        "batch": 2,
        "lr": 1e-2,
        "weight_decay": 0.0,
        "warmup_steps": 1,
        "schedule": "constant",
        "grad_clip": 2.0,
        "checkpoint_every": 1,
        "log_every": 1,
        "accelerator": "cpu",
    },
    "gan": {"start": 2, "batch": 1, "width": 0.03125, "lr": 1e-3},
    "data": {"crop_s": 0.25, "channels": 2, "sr": SR, "on_the_fly": False, "val_fraction": 0.2},
    "loss": "l1",
}


def _params(preset: dict[str, Any] = PRESET) -> dict[str, Any]:
    return {"seed": 0, "models": {"uformer": {"preset": "t", "presets": {"t": preset}}}}


def gain_net(gain: float, **kwargs: Any) -> UFormer:
    """A U-Former whose output is ``gain`` × its input below Nyquist: the head maps the
    input planes to ``(gain − 1)`` × themselves (the additive output) and ignores the decoder."""
    net = UFormer(**{**TINY, "output": "add", **kwargs}).eval()
    c0, planes = net.head.in_channels - net.head.out_channels, net.head.out_channels
    with torch.no_grad():
        net.head.weight.zero_()
        for i in range(planes):
            net.head.weight[i, c0 + i] = gain - 1.0
    return net


def _signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Stereo tones below 10 kHz with a slow tremolo, faded in and out over 10 ms (no
    energy at Nyquist, where the network passes its input through, not even at the edges)."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    left = sum(0.1 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (110, 440, 2500, 9000))
    right = 0.7 * left + 0.05 * np.sin(2 * np.pi * 660 * t)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01) ** 2
    wave = np.stack([left, right]) * (1 + 0.5 * np.sin(2 * np.pi * 1.3 * t)) * fade
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def msr_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 T2 training segments of group Voc (0.5 s, stereo, 44.1 kHz), as build_msr caches
    them: a degraded mixture and the clean target."""
    folder = tmp_path_factory.mktemp("msr") / "Voc"
    folder.mkdir()
    rng = np.random.default_rng(1)
    examples = []
    for i in range(5):
        target = _signal(0.5, seed=i)
        mixture = 0.6 * target + 0.05 * rng.standard_normal(target.shape).astype(np.float32)
        ex_id = f"Voc_train_{i:05d}"
        save_audio(folder / f"{ex_id}_mixture.flac", mixture, SR)
        save_audio(folder / f"{ex_id}_target.flac", target, SR)
        examples.append(
            Example(ex_id, "T2", f"{ex_id}_mixture.flac", f"{ex_id}_target.flac", SR, 0.5,
                    group="Voc")
        )  # fmt: skip
    write_manifest(folder, examples)
    return folder


# ------------------------------------------------------------------------------- network


def test_shapes_identity_at_init_and_alignment() -> None:
    net = UFormer(**TINY).eval()
    assert net.alignment == 64 * 4
    for shape in [(2, 2, 3001), (1, 1, 700), (1, 2, 64)]:
        x = torch.randn(*shape) * 0.1
        with torch.no_grad():
            y = net(x)
        assert y.shape == x.shape and y.dtype == x.dtype
        torch.testing.assert_close(y, x, atol=1e-5, rtol=0)  # zero head: the identity
    with pytest.raises(ValueError, match="multiple of 2"):
        UFormer(n_fft=256, hop=64, channels=[2, 4, 8, 8, 8, 8, 8, 8])
    with pytest.raises(ValueError, match="output"):
        UFormer(**TINY, output="replace")
    paper = UFormer(**UFormer.SIZES["large"])
    assert [b.net[0].out_channels for b in paper.encoder] == [16, 64, 256, 256]
    assert len(paper.roformer) == 6 and paper.roformer[0].heads == 8
    # Discriminator: 3 scales of logits, 8 feature maps each (7 layers + logits)
    disc = MultiScaleDiscriminator(width=1 / 16)
    logits, feats = disc(torch.randn(2, 2, 4000))
    assert len(logits) == 3 and [len(f) for f in feats] == [8, 8, 8]
    assert logits[0].shape[:2] == (4, 1) and logits[1].shape[-1] < logits[0].shape[-1]


def test_mask_output_scales_the_mixture_and_the_additive_one_does_not() -> None:
    """``output="mask"`` applies ``(1 + M)`` to the mixture's spectrum: where the input is
    silent so is the output, whatever the network computes; ``output="add"`` adds its
    correction and fills the silence. Both are the identity with the zero-initialised head."""
    x = torch.zeros(1, 2, 6000)
    x[..., :2000] = torch.from_numpy(_signal(2000 / SR))
    outs = {}
    for output in ("mask", "add"):
        torch.manual_seed(0)
        net = UFormer(**TINY, output=output).eval()
        torch.nn.init.normal_(net.head.weight, std=0.5)  # a trained-looking head
        with torch.no_grad():
            outs[output] = net(x)
    silent = slice(2000 + 256, None)  # one n_fft past the last sound
    assert outs["mask"][..., :2000].abs().max() > 0.01
    assert outs["mask"][..., silent].abs().max() < 1e-6
    assert outs["add"][..., silent].abs().max() > 1e-3


def test_rotary_scores_depend_only_on_the_offset() -> None:
    """RoFormer's property: with the same query and key vector at every position, the
    scores after rotation, ``q_i · k_j``, are a function of ``i − j`` only (Toeplitz)."""
    net = UFormer(**{**TINY, "dim_head": 8})
    g = torch.Generator().manual_seed(0)
    length = 12
    q = torch.randn(1, 1, 1, 8, generator=g).expand(1, 1, length, 8)
    k = torch.randn(1, 1, 1, 8, generator=g).expand(1, 1, length, 8)
    qr, kr = net.rotary.rotate_queries_or_keys(q), net.rotary.rotate_queries_or_keys(k)
    scores = (qr @ kr.transpose(-1, -2))[0, 0]  # (L, L)
    for offset in range(-length + 1, length):
        diagonal = torch.diagonal(scores, offset)
        torch.testing.assert_close(diagonal, diagonal[:1].expand_as(diagonal), atol=1e-5, rtol=0)
    assert float(scores[0].std()) > 1e-3  # and they do change with the offset


def test_adversarial_losses() -> None:
    real, fake = [torch.ones(2, 1, 5)], [torch.zeros(2, 1, 5)]
    assert float(lsgan_discriminator(real, fake)) == 0.0  # a perfect discriminator
    assert float(lsgan_generator(fake)) == 1.0 and float(lsgan_generator(real)) == 0.0
    feats = [[torch.ones(3), torch.zeros(4)]]
    assert float(feature_matching(feats, [[torch.zeros(3), torch.ones(4)]])) == 2.0


# ------------------------------------------------------------------------------ training


def _module_and_data(preset: dict[str, Any], folder: Path) -> tuple[Any, Any, Any]:
    spec = spec_from_params(_params(preset), "uformer")
    assert spec.gan is not None
    switch = (spec.gan.start, spec.gan.batch) if spec.gan.batch else None
    data = denoiser_data([folder], spec.data, spec.train.batch, spec.train.seed, switch)
    return spec, build_module(spec), data


class _Batches(engine.pl.Callback):
    """Records the batch size of every training step; raises at step ``kill``."""

    def __init__(self, kill: int | None = None) -> None:
        self.kill, self.sizes = kill, []

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
        if trainer.global_step == self.kill:
            raise RuntimeError("killed")
        self.sizes.append(int(batch[0].shape[0]))


def test_one_adversarial_step_updates_generator_and_discriminator(
    msr_train: Path, tmp_path: Path
) -> None:
    preset = {
        **PRESET,
        "train": {**PRESET["train"], "steps": 1},
        "gan": {**PRESET["gan"], "start": 0},
    }
    spec, module, data = _module_and_data(preset, msr_train)
    net0 = {k: v.clone() for k, v in module.net.state_dict().items()}
    disc0 = {k: v.clone() for k, v in module.disc.state_dict().items()}
    result = fit(module, data, spec.train, tmp_path / "work", progress=False)
    assert result.step == 1  # the discriminator's step is not a training step
    changed = lambda a, b: [k for k in a if not torch.equal(a[k], b[k])]  # noqa: E731
    assert "head.weight" in changed(net0, module.net.state_dict())
    assert len(changed(disc0, module.disc.state_dict())) >= 8
    optimizers = module.trainer.optimizers
    assert len(optimizers) == 2 and optimizers[1].state  # the discriminator's Adam stepped
    assert optimizers[1].param_groups[0]["lr"] == pytest.approx(1e-3)


class _GeneratorGrad(engine.pl.Callback):
    """The generator's gradient, per parameter, as its optimizer is about to step."""

    def __init__(self) -> None:
        self.grad: dict[str, torch.Tensor] = {}

    def on_before_optimizer_step(self, trainer: Any, module: Any, optimizer: Any) -> None:
        if optimizer is trainer.optimizers[0]:  # the generator's (the discriminator's is [1])
            grads = {k: p.grad for k, p in module.net.named_parameters() if p.grad is not None}
            self.grad = {k: g.detach().clone() for k, g in grads.items()}


def test_the_adversarial_terms_reach_the_generator(msr_train: Path, tmp_path: Path) -> None:
    """One adversarial step from the same seed and batch with ``gen_weight`` and
    ``feat_weight`` each at 0 or not: the generator's gradient changes with each weight,
    and by ``gen_weight·∇L_gen + feat_weight·∇L_feat`` (the loss is linear in them), so
    dropping either term from the generator's loss fails here (seed 004 §4.1)."""

    def grad(gen_weight: float, feat_weight: float) -> torch.Tensor:
        gan = {**PRESET["gan"], "start": 0, "gen_weight": gen_weight, "feat_weight": feat_weight}
        train = {**PRESET["train"], "steps": 1, "grad_clip": 0.0}  # the raw gradient
        spec, module, data = _module_and_data({**PRESET, "train": train, "gan": gan}, msr_train)
        seen = _GeneratorGrad()
        work = tmp_path / f"g{gen_weight}_f{feat_weight}"
        fit(module, data, spec.train, work, progress=False, callbacks=[seen])
        assert seen.grad, "the generator's optimizer never stepped"
        return torch.cat([g.flatten() for _, g in sorted(seen.grad.items())])

    both, no_gen, no_feat, neither = grad(1.0, 1.0), grad(0.0, 1.0), grad(1.0, 0.0), grad(0, 0)
    scale = float(both.norm())
    gen_part, feat_part = both - no_gen, both - no_feat  # 1·∇L_gen and 1·∇L_feat
    assert float(gen_part.norm()) > 1e-3 * scale, "gen_weight does not reach the generator"
    assert float(feat_part.norm()) > 1e-3 * scale, "feat_weight does not reach the generator"
    # each term enters once, with its weight: the four runs are linear in the weights
    torch.testing.assert_close(neither + gen_part + feat_part, both, atol=1e-6 * scale, rtol=1e-4)
    torch.testing.assert_close(no_feat - neither, gen_part, atol=1e-6 * scale, rtol=1e-4)


def test_stage_switch_at_the_configured_step_survives_a_resume(
    msr_train: Path, tmp_path: Path
) -> None:
    """Steps 0-1: L1 at batch 2, steps 2-3: adversarial at batch 1. A run killed at step 1
    and resumed past the switch equals the uninterrupted run: weights of both networks,
    both optimizers, the losses and the curve."""
    spec, straight, data = _module_and_data(PRESET, msr_train)
    seen = _Batches()
    ref = fit(straight, data, spec.train, tmp_path / "a", progress=False, callbacks=[seen])
    assert seen.sizes == [2, 2, 1, 1] and ref.step == 4
    with open(tmp_path / "a" / "loss.csv", newline="") as fh:
        rows = [row for row in csv.DictReader(fh) if row["train_recon"]]  # not validation's
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 4]
    for name in ("train_disc", "train_gen", "train_feat"):  # the DVC plot's columns
        assert [bool(row[name]) for row in rows] == [False, False, True, True], name

    _, killed, data = _module_and_data(PRESET, msr_train)
    with pytest.raises(RuntimeError, match="killed"):
        fit(killed, data, spec.train, tmp_path / "b", progress=False, callbacks=[_Batches(1)])
    assert engine.checkpoint_step(tmp_path / "b" / "last.ckpt") == 1
    _, resumed, data = _module_and_data(PRESET, msr_train)
    got = fit(resumed, data, spec.train, tmp_path / "b", progress=False)
    assert got.resumed_from == 1 and got.step == 4 and got.losses == ref.losses
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    for a, b in zip(straight.trainer.optimizers, resumed.trainer.optimizers, strict=True):
        for pa, pb in zip(a.state.values(), b.state.values(), strict=True):
            assert all(torch.equal(pa[k], pb[k]) for k in ("exp_avg", "exp_avg_sq"))
    assert (tmp_path / "a" / "loss.csv").read_text() == (tmp_path / "b" / "loss.csv").read_text()


def test_staged_batches_continue_from_any_step() -> None:
    def take(start: int, rank: int = 0, world: int = 1) -> list[list[int]]:
        it = iter(StagedBatchSampler(start, 4, 2, 1, rank, world))
        return [next(it) for _ in range(4)]

    full = take(0)
    assert full == [[0, 1, 2, 3], [4, 5, 6, 7], [8], [9]]
    assert take(1) == full[1:] + [[10]] and take(3)[0] == [9]
    assert take(0, 1, 2) == [[4, 5, 6, 7], [12, 13, 14, 15], [17], [19]]


def test_config_errors(msr_train: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="gan.start"):
        spec_from_params(_params({**PRESET, "gan": {"start": -1}}), "uformer")
    with pytest.raises(ConfigError, match="does not train adversarially"):
        spec_from_params(
            {"models": {"wavenet": {"presets": {"small": {"gan": {"start": 1}}}}}}, "wavenet"
        )
    preset = {**PRESET, "train": {**PRESET["train"], "accumulate": 2}}
    spec, module, data = _module_and_data(preset, msr_train)
    with pytest.raises(StageError, match="accumulate"):
        fit(module, data, spec.train, tmp_path / "w", progress=False)


def test_the_discriminator_is_chosen_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gan.discriminator`` names a class of the registry; ``msd`` (HiFi-GAN's multi-scale
    one) is the default and naming it changes nothing: same weights, same params hash (what
    the checkpoint's config.json records) as a preset that does not name it."""

    def spec(name: str) -> Any:
        gan = {**PRESET["gan"], "discriminator": name}
        return spec_from_params(_params({**PRESET, "gan": gan}), "uformer")

    default, named = spec_from_params(_params(), "uformer"), spec("msd")
    assert default.gan is not None and default.gan.discriminator == "msd"
    assert named.params_hash == default.params_hash and named.gan == default.gan
    disc_a, disc_b = build_module(default).disc, build_module(named).disc
    assert type(disc_a) is MultiScaleDiscriminator
    for key, value in disc_a.state_dict().items():
        assert torch.equal(value, disc_b.state_dict()[key]), key
    with pytest.raises(ConfigError, match=r"gan\.discriminator.*'mpd'.*msd") as err:
        spec("mpd")
    assert "\n" not in str(err.value)
    # a registered name builds its class, and is part of the params hash
    monkeypatch.setitem(DISCRIMINATORS, "msd2", MultiScaleDiscriminator)
    other = spec("msd2")
    assert other.params_hash != default.params_hash
    assert type(build_module(other).disc) is MultiScaleDiscriminator


def test_msr_chain_needs_the_clean_background(msr_train: Path, tmp_path: Path) -> None:
    train, _ = split_examples([msr_train], 0.2, 4)
    fly = DataConfig(crop_s=0.25, channels=2, sr=SR, chain="msr")
    with pytest.raises(StageError, match="on_the_fly: false"):
        CropDataset(train, fly)
    # With a background beside each example, every draw is a fresh MSR example.
    folder = tmp_path / "with_bg"
    folder.mkdir()
    examples = []
    for _, ex in train[:2]:
        for name in (ex.mixture, ex.target):
            (folder / name).write_bytes((msr_train / name).read_bytes())
        save_audio(folder / f"{ex.id}_background.flac", _signal(0.5, seed=9), SR)
        ex.meta = {"background": f"{ex.id}_background.flac"}
        examples.append(ex)
    write_manifest(folder, examples)
    data = CropDataset(split_examples([folder], 0.0, 0)[0], fly, seed=0)
    mix0, ref0 = data.item(0, epoch=0)
    mix1, _ = data.item(0, epoch=1)
    assert mix0.shape == ref0.shape == (2, SR // 4) and not torch.equal(mix0, mix1)


# ---------------------------------------------------------------- checkpoints and variant


def _stage_main() -> Any:
    path = Path(__file__).resolve().parents[1] / "stages" / "train.py"
    spec = importlib.util.spec_from_file_location("stage_train_uformer", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_per_group_checkpoints_load_by_group_name(
    msr_train: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train-uformer@Voc writes models/uformer/Voc; the variant loads each group's model by
    the example's group, once, from models/ or from models/uformer itself."""
    monkeypatch.chdir(tmp_path)
    preset = {
        **PRESET,
        "train": {**PRESET["train"], "steps": 2},
        "gan": {**PRESET["gan"], "start": 1},
    }
    Path("params.yaml").write_text(yaml.safe_dump(_params(preset)))
    argv = ["--model", "uformer", "--target", "Voc", "--train", str(msr_train)]
    out = ["--out", "models/uformer/Voc", "--work", "models/.uformer_work/Voc", "--no-progress"]
    _stage_main()([*argv, *out])
    net, config = load_model("models/uformer/Voc")
    assert isinstance(net, UFormer) and config["kwargs"] == TINY and config["sr"] == SR
    metrics = json.loads(Path("models/uformer/Voc/metrics.json").read_text())
    assert metrics["target"] == "Voc" and metrics["step"] == 2
    with pytest.raises(SystemExit):  # the Voc set is no Bass set
        _stage_main()([*argv[:3], "Bass", *argv[4:], "--out", "models/uformer/Bass"])
    save_model(
        "models/uformer/Bass", gain_net(0.25), "uformer", {**TINY, "output": "add"}, SR, 0, "", ""
    )

    x = _signal(1.0)
    for models_dir in (Path("models"), Path("models/uformer")):
        ctx = build_context("uformer", models_dir=models_dir)
        bass = get_variant("uformer")(x, SR, ctx.derive(target="Bass"))
        np.testing.assert_allclose(bass, 0.25 * x, atol=2e-4)
        voc = get_variant("uformer")(x, SR, ctx.derive(target="Voc"))
        with torch.inference_mode():
            direct = net(torch.from_numpy(x)[None])[0].numpy()
        np.testing.assert_allclose(voc, direct, atol=1e-4)  # one chunk: the network itself
        assert set(ctx._cache.models) == {"uformer/Bass", "uformer/Voc"}
        assert ctx.derive(target="Bass").model("uformer/Bass") is ctx.model("uformer/Bass")
    with pytest.raises(VariantError, match="give a target"):
        get_variant("uformer")(x, SR, build_context("uformer", models_dir="models"))


def test_chunked_inference_has_no_seams() -> None:
    """A constant-gain network over 10 chunks with context and cross-fades: the output is
    the gain times the input everywhere, borders included; mono stays mono."""
    net = gain_net(0.5)
    loader = lambda name, folder: (net, {"sr": SR})  # noqa: E731
    params = {"uformer": {"chunk_s": 0.2, "context_s": 0.05}}
    ctx = build_context("uformer", params, target="Voc", model_loader=loader)
    calls: list[tuple[int, ...]] = []
    net.register_forward_pre_hook(lambda _m, args: calls.append(tuple(args[0].shape)))
    x = _signal(2.0)
    y = get_variant("uformer")(x, SR, ctx)
    assert len(calls) == 10 and len({c[-1] for c in calls}) == 1  # equal chunks, one each
    np.testing.assert_allclose(y, 0.5 * x, atol=1e-6)  # measured 7e-8
    mono = get_variant("uformer")(x[:1], SR, ctx)
    assert mono.shape == (1, x.shape[1])
    np.testing.assert_allclose(mono, 0.5 * x[:1], atol=1e-6)


def test_registered_as_a_per_target_t2_variant() -> None:
    v = get_variant("uformer")
    assert v.output == "stem" and v.tasks == ("T2",) and v.checkpoint == "uformer"
    assert v.per_target and v.model_name("Voc") == "uformer/Voc" and v.model_name() is None
    assert ARCHITECTURES["uformer"] is UFormer
