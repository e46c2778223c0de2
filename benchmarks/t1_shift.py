"""T1 variants on damage they were not trained on: the stand-in's T1 test songs degraded with
strengths outside the MusicGen-like chain's training ranges.

    python benchmarks/t1_shift.py                          # every shift, every T1 variant
    python benchmarks/t1_shift.py --shifts noise_strong clip_hard --variants identity unet_mask

Real MusicGen output is not our chain, so a learned model that only wins inside its training
distribution has learned the chain, not restoration. Each *shift* keeps the chain of
``params.yaml`` (``musicgen_like.degrade``) and moves one artifact outside its training range,
firing it on every clip:

- ``noise_strong`` / ``noise_weak``: environmental noise at -15..-7 dB / 25..35 dB SNR
  (trained: -5..20 dB).
- ``cutoff_low`` / ``cutoff_high``: down-up resampling through 6-11 kHz / 24-30 kHz
  (trained: 12-22.05 kHz).
- ``bits_low``: a 4-7-bit quantiser (trained: 8-12-bit or 8-bit μ-law).
- ``clip_hard``: soft clipping driven 8-14 dB (trained: 1-6 dB).
- ``in_range``: the training chain itself, for reference (the stand-in's own test set is
  built the same way).

The clean audio is the stand-in's T1 test songs (``data/rawstems``, ``data/splits``: the songs
of any target's test list, as ``build_musicgen_like`` picks them), so nothing here was
trained on. Each shifted test set is built once into ``--cache`` (keyed by its settings),
every variant restores it as ``restore-<name>`` does (``benchmarks/real_music.py``'s
``run_variants``) and it is scored with the project's metrics on 10-s segments. The table
(SI-SDR, mel-SSIM, LSD: mean ± 95 % CI per shift and variant) is printed and written to
``reports/t1_shift.md`` / ``.json`` (committed; a check outside the pipeline, not a DVC
output). Needs the trained models and the stand-in data (``dvc repro`` or ``dvc pull``).
About 1.5 minutes per shift on 2 cores with the four default variants.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import real_music  # noqa: E402  (the restore-and-score loop and the metric columns)

#: shift name -> (what it changes, chain probability overrides, range overrides, mulaw_p)
SHIFTS: dict[str, tuple[str, dict[str, float], dict[str, dict[str, Any]], float | None]] = {
    "in_range": ("the training chain", {}, {}, None),
    "noise_strong": ("env noise -15..-7 dB SNR", {"env_noise": 1.0},
                     {"env_noise": {"snr_db": [-15.0, -7.0]}}, None),
    "noise_weak": ("env noise 25..35 dB SNR", {"env_noise": 1.0},
                   {"env_noise": {"snr_db": [25.0, 35.0]}}, None),
    "cutoff_low": ("resampling via 6-11 kHz", {"resample": 1.0},
                   {"resample": {"low_sr": [6000.0, 11000.0]}}, None),
    "cutoff_high": ("resampling via 24-30 kHz", {"resample": 1.0},
                    {"resample": {"low_sr": [24000.0, 30000.0]}}, None),
    "bits_low": ("4-7-bit quantiser", {"quantize": 1.0}, {"bitcrush": {"bits": [4, 7]}}, 0.0),
    "clip_hard": ("soft clip 8-14 dB drive", {"soft_clip": 1.0},
                  {"soft_clip": {"drive_db": [8.0, 14.0]}}, None),
}  # fmt: skip

DEFAULT_VARIANTS = ["identity", "preclean", "unet_mask", "wavenet"]


def shifted_config(degrade: dict[str, Any] | None, shift: str) -> dict[str, Any]:
    """``musicgen_like.degrade`` of ``params.yaml`` with ``shift`` applied (a new dict)."""
    _, chain, ranges, mulaw_p = SHIFTS[shift]
    cfg = copy.deepcopy(dict(degrade or {}))
    cfg.setdefault("chain", {}).update(chain)
    merged = cfg.setdefault("ranges", {})
    for effect, kwargs in ranges.items():
        merged.setdefault(effect, {}).update(kwargs)
    if mulaw_p is not None:
        cfg["mulaw_p"] = mulaw_p
    return cfg


def build_shifted(params: dict[str, Any], shift: str, clips: int, cache: Path) -> Path:
    """The stand-in's T1 test songs degraded with ``shift`` (``clips`` 10-s clips), cached."""
    from musicrestore.degrade.build import build_musicgen_like, check_params

    kwargs = dict(params.get("musicgen_like") or {})
    kwargs.setdefault("seed", int(params.get("seed", 0)))
    cfg = shifted_config(kwargs.pop("degrade", None), shift)
    for key in ("n_test", "n_train", "clean_dir", "clean_test_fraction"):
        kwargs.pop(key, None)
    check_params(build_musicgen_like, kwargs, "params.yaml: musicgen_like")
    key = json.dumps([kwargs, cfg, clips], sort_keys=True, default=str)
    folder = cache / f"{shift}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if (folder / "test" / "manifest.jsonl").is_file():
        return folder / "test"
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".build-"))
    try:
        build_musicgen_like(
            ROOT / "data" / "rawstems", ROOT / "data" / "splits", tmp,
            n_test=clips, n_train=0, cfg=cfg, **kwargs,
        )  # fmt: skip
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / "test"


def cell(stats: dict[str, Any] | None, digits: int) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    ci = stats.get("ci")
    return f"{stats['mean']:.{digits}f}" + (f" ± {ci:.{digits}f}" if ci else "")


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One row per (shift, variant); SI-SDR, mel-SSIM, LSD and the SI-SDR gain over identity."""
    head = [label for _, label, _ in real_music.METRICS] + ["Δ SI-SDR vs identity"]
    lines = ["| shift | variant | " + " | ".join(head) + " |", "|---" * (len(head) + 2) + "|"]
    for shift, per_variant in results.items():
        base = (per_variant.get("identity", {}).get("metrics", {}).get("si_sdr") or {}).get("mean")
        for name, res in per_variant.items():
            cells = [cell(res["metrics"].get(m), d) for m, _, d in real_music.METRICS]
            mean = (res["metrics"].get("si_sdr") or {}).get("mean")
            gain = "–" if base is None or mean is None else f"{mean - base:+.2f}"
            lines.append(f"| {shift} | {name} | " + " | ".join([*cells, gain]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shifts", nargs="+", choices=list(SHIFTS), default=list(SHIFTS))
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    parser.add_argument("--clips", type=int, default=12, help="10-s clips per shift (12)")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "musicrestore" / "t1_shift"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "t1_shift")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "src"))
    import yaml

    from musicrestore.variants import VARIANTS

    if args.clips < 1:
        sys.exit("error: --clips must be >= 1")
    unknown = [n for n in args.variants if n not in VARIANTS or "T1" not in VARIANTS[n].tasks]
    if unknown:
        sys.exit(f"error: not a T1 variant: {', '.join(unknown)}")
    missing = [
        n
        for n in args.variants
        if VARIANTS[n].checkpoint and not (args.models_dir / VARIANTS[n].checkpoint).is_dir()
    ]
    if missing:
        sys.exit(f"error: no checkpoint in {args.models_dir} for {', '.join(missing)}; dvc repro")
    if not (ROOT / "data" / "rawstems").is_dir():
        sys.exit("error: data/rawstems not found; run dvc repro (or dvc pull) first")
    params = yaml.safe_load(args.params.read_text())
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for shift in args.shifts:
        start = time.perf_counter()
        testset = build_shifted(params, shift, args.clips, args.cache)
        print(f"{shift} ({SHIFTS[shift][0]}): {args.clips} clips", flush=True)
        with tempfile.TemporaryDirectory(prefix="t1_shift_") as work:
            results[shift] = real_music.run_variants(
                testset, Path(work), args.variants, params, args.models_dir
            )
        print(f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    text = (
        "# T1 variants on damage outside the training ranges\n\n"
        f"{args.clips} 10-s clips of the stand-in's T1 test songs per shift, degraded with the "
        "MusicGen-like chain of params.yaml with one artifact moved outside its training range "
        "and fired on every clip; means over 10-s segments ± 95 % CI.\n"
        "Regenerate: `python benchmarks/t1_shift.py`.\n\n"
        + "\n".join(f"- `{name}`: {SHIFTS[name][0]}" for name in args.shifts)
        + "\n\n"
        + table(results)
        + "\n"
    )
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"clips": args.clips, "shifts": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
