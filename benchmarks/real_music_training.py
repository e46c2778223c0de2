"""Does training on real music carry further than training on the stand-in? (T1, unet_mask)

    python benchmarks/real_music_training.py                  # Warzone 2100's soundtrack
    python benchmarks/real_music_training.py --music ~/Music  # your own folder of clean music

1. **Training music.** By default the tracks of Debian's ``warzone2100-music`` package
   (30 tracks, 4 h of orchestral and electronic game music, CC-BY-SA / GPL; Opus, decoded
   to FLAC once into ``--cache``), less its two remakes of other tracks (28 files). Not
   the Wesnoth soundtrack that ``benchmarks/real_music.py`` tests on: the two sets share
   no recording.
2. **Sets.** :func:`musicrestore.degrade.build.build_musicgen_like` with ``clean_dir`` set
   to that folder and the ``musicgen_like`` block of ``params.yaml`` (its chain, rate,
   ``n_train`` crops and ``n_test`` clips; ``clean_test_fraction`` of the files held out
   for the test set): the pipeline's T1 recipe on other music.
3. **Models.** The committed ``models/unet_mask`` (trained on the stand-in), and the same
   preset of ``params.yaml`` trained by ``stages/train.py`` on the real-music crops
   (``real``) and on the stand-in's and the real-music crops together (``both``).
4. **Scores.** ``identity``, ``preclean`` and each model on three T1 test sets: the
   stand-in's (``data/musicgen_like/test``), the held-out real-music files, and the
   Wesnoth clips of ``benchmarks/real_music.py``; SI-SDR, mel-SSIM and LSD mean ± 95 % CI,
   and each method's SI-SDR paired against ``identity`` segment by segment. Written to
   ``reports/real_music_training.md`` and ``.json``.

Needs ``dvc repro`` (or ``dvc pull``) first. About 15 minutes on 2 cores, most of it the
two trainings (about 3 minutes each) and the Wesnoth restorations.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from real_music import (
    METRICS,
    build_from_folder,
    build_testset,
    fetch_debian_music,
    fetch_wesnoth,
    paired_table,
    run_variants,
    usable_folder,
)

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "warzone2100-music"
STAND_IN = ROOT / "data" / "musicgen_like"


def originals(music: Path) -> Path:
    """``music`` without the soundtrack's remakes (``menu_enhanced``, ``track3_enhanced``:
    new versions of ``menu`` and ``track3``), so no test file has a version of itself among
    the training files: a folder of links beside it, made once."""
    folder = music.with_name(music.name + "-originals")
    if folder.is_dir():
        return folder
    tmp = Path(tempfile.mkdtemp(dir=music.parent, prefix=".originals-"))
    for path in sorted(music.iterdir()):
        if not path.stem.endswith("_enhanced"):
            (tmp / path.name).symlink_to(path.resolve())
    tmp.rename(folder)
    return folder


def train(name: str, folders: list[Path], params_file: Path, cache: Path) -> Path:
    """``unet_mask`` trained by ``stages/train.py`` on ``folders``: its models folder (cached
    by the folders and the params file)."""
    key = json.dumps([name, [str(f) for f in folders], params_file.read_text()])
    tag = f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    models = cache / "models" / tag
    if (models / "unet_mask" / "config.json").is_file():
        return models
    start = time.perf_counter()
    cmd = [
        sys.executable, str(ROOT / "stages" / "train.py"), "--params", str(params_file),
        "--model", "unet_mask", "--train", *map(str, folders),
        "--out", str(models / "unet_mask"), "--work", str(cache / "work" / tag), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "MUSICRESTORE_TRACKING": "0"}
    got = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if got.returncode != 0:
        sys.exit(f"error: training {name} failed: {got.stderr.strip()[-400:]}")
    print(f"  trained {name} in {time.perf_counter() - start:.0f} s", flush=True)
    return models


def score(testset: Path, models: dict[str, Path], params: dict[str, Any]) -> dict[str, Any]:
    """``identity``, ``preclean`` and ``unet_mask`` of every models folder on ``testset``."""
    with tempfile.TemporaryDirectory(prefix="real_music_training_") as work:
        out = run_variants(
            testset, Path(work) / "dsp", ["identity", "preclean"], params, ROOT / "models"
        )
        for name, folder in models.items():
            got = run_variants(testset, Path(work) / name, ["unet_mask"], params, folder)
            out[f"unet_mask ({name})"] = got["unet_mask"]
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    head = [label for _, label, _ in METRICS]
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, res in results.items():
        cells = []
        for metric, _, digits in METRICS:
            stats = res["metrics"].get(metric) or {}
            mean, ci = stats.get("mean"), stats.get("ci")
            cells.append(
                "–"
                if mean is None
                else f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if ci else "")
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--music", type=Path, help="folder of clean music (default: Warzone's)")
    parser.add_argument("--wesnoth-clips", type=int, default=24, help="Wesnoth test clips (24)")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "musicrestore" / "real_music"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "real_music_training")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "src"))
    import yaml

    params = yaml.safe_load(args.params.read_text())
    for need in (ROOT / "models" / "unet_mask", STAND_IN / "train", STAND_IN / "test"):
        if not need.is_dir():
            sys.exit(f"error: {need.relative_to(ROOT)} is missing; run dvc repro (or dvc pull)")
    args.cache.mkdir(parents=True, exist_ok=True)
    music = (
        args.music.expanduser()
        if args.music
        else originals(fetch_debian_music(args.cache, PACKAGE, "warzone-music", "about 85 MB"))
    )
    if not music.is_dir():
        sys.exit(f"error: {music}: not a folder")
    start = time.perf_counter()
    sets = build_from_folder(usable_folder(music, args.cache), args.cache, params, "sets")
    print(f"sets from {music.name} ({time.perf_counter() - start:.0f} s)", flush=True)
    models = {
        "stand-in": ROOT / "models",
        "real": train("real", [sets / "train"], args.params, args.cache),
        "both": train("both", [STAND_IN / "train", sets / "train"], args.params, args.cache),
    }
    wesnoth = fetch_wesnoth(args.cache)
    testsets = {
        "stand-in T1 test": STAND_IN / "test",
        f"held-out {music.name}": sets / "test",
        "Wesnoth": build_testset(
            usable_folder(wesnoth, args.cache), args.cache, params, args.wesnoth_clips
        ),
    }
    results = {}
    for label, testset in testsets.items():
        print(f"{label}:", flush=True)
        results[label] = score(testset, models, params)
    text = (
        "# unet_mask trained on real music\n\n"
        f"Training music: {music.name}"
        + (" (Debian warzone2100-music)" if not args.music else "")
        + "; the `musicgen_like` recipe of params.yaml (its chain and crop counts), "
        "one run per model (the params.yaml preset, seed fixed). `stand-in`: the committed "
        "models/unet_mask; `real`: trained on the real-music crops; `both`: on the "
        "stand-in's and the real-music crops. Means over 10-s segments ± 95 % CI.\n"
        "Regenerate: `python benchmarks/real_music_training.py`.\n"
    )
    for label, res in results.items():
        text += f"\n## {label}\n\n" + table(res) + "\nPaired against identity:\n\n"
        text += paired_table(res, ("identity",))
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"music": music.name, "results": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
