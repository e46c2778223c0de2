"""The MSR example chain (seed 004 §4.2) and the MusicGen-like chain (seed 000 §3)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from musicrestore.degrade import chains
from musicrestore.degrade.effects import apply_record, snr_db

SR = 44100
#: Down-up resampling through a 2:1 rate: julius' kernels for odd ratios cost ~0.1 s each,
#: which would dominate the many-draw tests below on tiny signals.
CHEAP_RESAMPLE = {"resample": {"low_sr": [22050, 22050]}}


@pytest.fixture(autouse=True)
def single_thread():
    """torch (julius) on one thread, as in the builders' workers; restored afterwards.
    Two intra-op threads on a shared 2-core box make each tiny conv ~5x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def parts(n: int = 4096, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    target = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(n))[None].repeat(2, 0)
    background = 0.2 * rng.standard_normal((2, n))
    return target.astype(np.float32), background.astype(np.float32)


def db_to_gain(db: float) -> float:
    return 10 ** (db / 20)


def test_msr_example_shapes_levels_and_reference_scaling():
    target, background = parts()
    for seed in range(20):
        ex = chains.msr_example(
            target, background, SR, np.random.default_rng(seed), {"ranges": CHEAP_RESAMPLE}
        )
        assert ex.mixture.shape == ex.reference.shape == ex.degraded_target.shape == target.shape
        assert ex.mixture.dtype == ex.reference.dtype == np.float32
        assert max(np.abs(ex.mixture).max(), np.abs(ex.reference).max()) <= 0.999 + 1e-6
        # documented: reference = unprocessed target times the scalar gains of the target path
        np.testing.assert_allclose(
            ex.reference, target * db_to_gain(ex.meta["reference_gain_db"]), rtol=1e-4, atol=1e-6
        )
        assert json.loads(json.dumps(ex.meta)) == ex.meta
        assert json.loads(json.dumps(ex.effects)) == ex.effects


def test_msr_example_snr_is_achieved_and_in_range():
    target, background = parts()
    snrs = []
    for seed in range(40):
        ex = chains.msr_example(
            target, background, SR, np.random.default_rng(seed), {"ranges": CHEAP_RESAMPLE}
        )
        assert ex.meta["snr_db_achieved"] == pytest.approx(ex.meta["snr_db"], abs=0.1)
        snrs.append(ex.meta["snr_db"])
    assert min(snrs) >= -5 and max(snrs) <= 20


def test_msr_recorded_target_effects_reproduce_the_degraded_target():
    """The records are complete: re-applying them to the normalised clean target gives the
    degraded target that went into the mixture (up to the recorded scalar gains)."""
    target, background = parts(seed=1)
    cfg = {"target_chain": dict.fromkeys(chains.MSR_DEFAULTS["target_chain"], 1.0)}
    ex = chains.msr_example(target, background, SR, np.random.default_rng(7), cfg)
    wave = target * db_to_gain(ex.meta["target_gain_db"])
    target_fx = [e for e in ex.effects if e["stage"] == "target"]
    names = [e["name"] for e in target_fx]
    assert names[0] == "gain" and names[1] in ("graphic_eq", "parametric_eq")
    assert names[2:] == ["resample", "compressor", "distortion", "reverb"]
    for rec in target_fx:
        wave = apply_record(rec, wave, SR)
    later = db_to_gain(ex.meta["mix_gain_db"] + ex.meta["headroom_gain_db"])
    np.testing.assert_allclose(ex.degraded_target, wave * later, rtol=1e-3, atol=1e-5)


def test_msr_effects_fire_about_half_the_time():
    target, background = parts(n=1024)
    n = 400
    fired: Counter[str] = Counter()
    for seed in range(n):
        ex = chains.msr_example(
            target, background, SR, np.random.default_rng(seed), {"ranges": CHEAP_RESAMPLE}
        )
        names = {f"{e['stage']}/{e['name']}" for e in ex.effects}
        names |= {"target/eq"} if names & {"target/graphic_eq", "target/parametric_eq"} else set()
        fired.update(names)
    for key in ["target/eq", "target/resample", "target/compressor", "target/distortion", "target/reverb",
                "mixture/limiter", "mixture/resample", "mixture/mp3", "mixture/gaussian_noise"]:  # fmt: skip
        assert fired[key] / n == pytest.approx(0.5, abs=0.08), key
    assert fired["target/graphic_eq"] / n == pytest.approx(0.25, abs=0.06)
    assert fired["target/gain"] == 0  # off by default (not in seed 004 §4.2)


def test_msr_config_overrides_and_rejects_typos():
    target, background = parts(n=2048)
    never = {
        "target_chain": dict.fromkeys(chains.MSR_DEFAULTS["target_chain"], 0.0),
        "mixture_chain": dict.fromkeys(chains.MSR_DEFAULTS["mixture_chain"], 0.0),
        "snr_db": [7.0, 7.0],
    }
    ex = chains.msr_example(target, background, SR, np.random.default_rng(0), never)
    assert ex.effects == []
    assert ex.meta["snr_db"] == 7.0 and ex.meta["snr_db_achieved"] == pytest.approx(7.0, abs=0.01)
    # no effects: mixture is exactly reference + scaled background, at the documented SNR
    assert snr_db(ex.reference, ex.mixture - ex.reference) == pytest.approx(7.0, abs=0.1)

    narrow = {"mixture_chain": {"mp3": 1.0}, "ranges": {"mp3": {"vbr_quality": [4.0, 4.0]}}}
    ex = chains.msr_example(target, background, SR, np.random.default_rng(1), narrow)
    assert [e["params"] for e in ex.effects if e["name"] == "mp3"] == [{"vbr_quality": 4.0}]

    with pytest.raises(chains.ConfigError, match=r"degrade: unknown key\(s\) snr"):
        chains.msr_config({"snr": [0, 1]})
    with pytest.raises(chains.ConfigError, match=r"degrade.ranges.mp3: unknown key\(s\) quality"):
        chains.msr_config({"ranges": {"mp3": {"quality": [1, 2]}}})
    with pytest.raises(chains.ConfigError, match=r"degrade.ranges: unknown key\(s\) chorus"):
        chains.msr_config({"ranges": {"chorus": {}}})
    with pytest.raises(chains.ConfigError, match="probability"):
        chains.msr_config({"target_chain": {"eq": 1.5}})


def test_msr_example_is_deterministic_per_seed():
    target, background = parts()
    a = chains.msr_example(target, background, SR, np.random.default_rng(42))
    b = chains.msr_example(target, background, SR, np.random.default_rng(42))
    c = chains.msr_example(target, background, SR, np.random.default_rng(43))
    assert (
        a.mixture.tobytes() == b.mixture.tobytes()
        and a.reference.tobytes() == b.reference.tobytes()
    )
    assert a.effects == b.effects and a.meta == b.meta
    assert a.mixture.tobytes() != c.mixture.tobytes()


def test_msr_example_with_silent_background_or_target():
    target, background = parts(n=2048)
    ex = chains.msr_example(target, np.zeros_like(background), SR, np.random.default_rng(0))
    assert ex.meta["snr_db_achieved"] is None and np.isfinite(ex.mixture).all()
    ex = chains.msr_example(np.zeros_like(target), background, SR, np.random.default_rng(0))
    assert np.isfinite(ex.mixture).all() and not ex.reference.any()


def test_musicgen_like_chain_rates_ranges_and_exclusive_quantizers():
    sr = 32000
    clean = (0.5 * np.sin(2 * np.pi * 220 * np.arange(2048) / sr))[None].astype(np.float32)
    n = 400
    fired: Counter[str] = Counter()
    cheap = {"ranges": {"resample": {"low_sr": [16000, 16000]}}}
    for seed in range(n):
        degraded, effects = chains.musicgen_like(clean, np.random.default_rng(seed), cheap, sr=sr)
        assert degraded.shape == clean.shape and np.isfinite(degraded).all()
        names = [e["name"] for e in effects]
        assert not {"bitcrush", "mulaw"} <= set(names)  # one quantizer at most
        fired.update(names)
        for e in effects:
            if e["name"] == "env_noise":
                assert -5 <= e["params"]["snr_db"] <= 20
    p = chains.MUSICGEN_DEFAULTS["chain"]
    assert fired["resample"] / n == pytest.approx(p["resample"], abs=0.08)
    assert (fired["bitcrush"] + fired["mulaw"]) / n == pytest.approx(p["quantize"], abs=0.08)
    assert fired["mulaw"] / n == pytest.approx(
        p["quantize"] * chains.MUSICGEN_DEFAULTS["mulaw_p"], abs=0.08
    )
    assert fired["soft_clip"] / n == pytest.approx(p["soft_clip"], abs=0.08)
    assert fired["env_noise"] / n == pytest.approx(p["env_noise"], abs=0.08)
    assert fired["dither"] == n
    # the default resampling range is seed 000's 12-22.05 kHz
    for seed in range(10):
        _, effects = chains.musicgen_like(clean, np.random.default_rng(seed), sr=sr)
        for e in effects:
            if e["name"] == "resample":
                assert 12000 <= e["params"]["low_sr"] <= 22050


def test_musicgen_like_is_deterministic_and_configurable():
    sr = 32000
    clean = (0.1 * np.random.default_rng(0).standard_normal((1, 4000))).astype(np.float32)
    a, ea = chains.musicgen_like(clean, np.random.default_rng(5), sr=sr)
    b, eb = chains.musicgen_like(clean, np.random.default_rng(5), sr=sr)
    assert a.tobytes() == b.tobytes() and ea == eb
    off = {"chain": dict.fromkeys(chains.MUSICGEN_DEFAULTS["chain"], 0.0)}
    c, ec = chains.musicgen_like(clean, np.random.default_rng(5), off, sr=sr)
    assert ec == [] and c.tobytes() == clean.tobytes()


@pytest.mark.parametrize("boost", [0.5, 1.0, 4.0, 300.0])
def test_normalise_and_degrade_keeps_both_peaks_under_max_peak_with_one_gain(
    boost: float,
) -> None:
    """The one clean/degraded recipe: the clean input is peak-normalised, the chain runs on
    it, and a chain that pushes the level past full scale is brought back under ``max_peak``
    by one gain on both signals (their ratio, what the model learns, is kept)."""
    rng = np.random.default_rng(3)
    clean = (0.2 * rng.standard_normal((2, 4000))).astype(np.float32)
    out = chains.normalise_and_degrade(
        clean, lambda w: ((w * boost).astype(np.float32), [{"name": "boost"}]), -1.0, 0.9
    )
    peak_in = 10 ** (-1.0 / 20)
    assert out.input_gain == pytest.approx(peak_in / np.max(np.abs(clean)), rel=1e-6)
    expected_gain = min(1.0, 0.9 / (peak_in * max(boost, 1.0)))
    assert out.headroom_gain == pytest.approx(expected_gain, rel=1e-6)
    assert max(np.max(np.abs(out.clean)), np.max(np.abs(out.degraded))) <= 0.9 + 1e-6
    np.testing.assert_allclose(out.degraded, out.clean * boost, rtol=1e-5, atol=1e-7)
    assert out.effects == [{"name": "boost"}]
    assert out.clean.dtype == out.degraded.dtype == np.float32


def test_every_t1_shift_of_the_benchmark_leaves_the_training_ranges() -> None:
    """benchmarks/t1_shift.py: each shift is a valid MusicGen-like config whose moved range
    lies wholly outside what params.yaml trains on (the effect's default range where
    params.yaml names none), and fires its artifact on every clip."""
    import inspect

    import yaml

    from musicrestore.degrade import effects
    from musicrestore.degrade.build import musicgen_config
    from tests.helpers import REPO, load_script

    shift_module = load_script("benchmarks/t1_shift.py", "t1_shift")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    trained = musicgen_config(params["musicgen_like"]["degrade"])
    for name, (_, chain, ranges, _) in shift_module.SHIFTS.items():
        cfg = musicgen_config(shift_module.shifted_config(params["musicgen_like"]["degrade"], name))
        assert all(cfg["chain"][slot] == 1.0 for slot in chain), name
        for effect, kwargs in ranges.items():
            for key, (lo, hi) in kwargs.items():
                assert list(cfg["ranges"][effect][key]) == [lo, hi], (name, effect, key)
                default = inspect.signature(effects.EFFECTS[effect].sample).parameters[key].default
                t_lo, t_hi = trained["ranges"].get(effect, {}).get(key, default)
                assert hi < t_lo or lo > t_hi, (name, effect, key, (lo, hi), (t_lo, t_hi))
    assert set(shift_module.SHIFTS) >= {"in_range", "noise_strong", "cutoff_low", "clip_hard"}
