"""Every T1 variant on real recordings that nobody here made (issue: does what the learned
models pick up on the stand-in carry over to real music?).

    python benchmarks/real_music.py                    # Wesnoth's soundtrack, 24 clips
    python benchmarks/real_music.py --music ~/Music    # your own folder of clean music
    python benchmarks/real_music.py --variants identity preclean unet_mask --clips 8

1. **Music.** By default the OGG tracks of Debian's ``wesnoth-1.16-music`` package
   (orchestral game music, GPL, 41 tracks), fetched once with ``apt-get download`` and
   unpacked with ``dpkg -x`` into ``--cache``; nothing is installed. They are Vorbis files:
   the mastered release, the cleanest version that exists, not a lossless master.
2. **Test set.** :func:`musicrestore.degrade.build.build_musicgen_like` with ``clean_dir``
   set to that folder and every file held out for testing: 10-s clips degraded with the
   MusicGen-like chain of ``params.yaml`` (``musicgen_like``: the same chain, rate and
   seeds as the stand-in's T1 set; docs/method.md#musicgen-like). Cached per settings.
3. **Variants.** Every registered variant whose tasks include T1, run as ``restore-<name>``
   runs it (``params.yaml``'s ``variants`` and ``restore`` blocks, checkpoints from
   ``--models-dir``, the separator recorded in ``models/separator``), then scored with the
   project's metrics on 10-s segments (``evaluate``).
4. **Table.** SI-SDR, mel-SSIM and LSD, mean ± 95 % CI, with the stand-in's T1 numbers
   from ``reports/metrics.json`` beside them; printed and written to
   ``reports/real_music.md`` and ``reports/real_music.json`` (committed; not DVC outputs:
   this is a check outside the pipeline).

Needs the trained models (``dvc repro`` or ``dvc pull`` first). About 6 minutes on 2 cores
for 24 clips (the separating variants are most of it).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "wesnoth-1.16-music"
METRICS = (("si_sdr", "SI-SDR (dB) ↑", 2), ("mel_ssim", "mel-SSIM ↑", 3), ("lsd", "LSD ↓", 3))


def fetch_wesnoth(cache: Path) -> Path:
    """The folder of Wesnoth's OGG tracks, downloaded and unpacked once into ``cache``."""
    return fetch_debian_music(cache, PACKAGE, "wesnoth-music", "about 150 MB")


def fetch_debian_music(cache: Path, package: str, name: str, size: str) -> Path:
    """``cache/name``: the audio tracks of Debian ``package`` (``apt-get download``, ``dpkg
    -x``; nothing is installed), made once, complete or absent. Vorbis files are kept as
    they are; Opus files (which the project's loader does not list) are decoded to FLAC.
    Files keep their own names, or where names repeat their paths below the folder all
    tracks share, joined by ``__``."""
    music = cache / name
    if music.is_dir() and any(music.iterdir()):
        return music
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found; pass --music DIR with a folder of clean music")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        print(f"fetching {package} with apt-get download ({size}) ...", flush=True)
        got = subprocess.run(
            ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True
        )
        debs = sorted(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            sys.exit(f"error: apt-get download {package} failed: {got.stderr.strip()[-300:]}")
        unpacked = Path(tmp) / "x"
        subprocess.run(["dpkg", "-x", str(debs[0]), str(unpacked)], check=True)
        tracks = sorted(p for p in unpacked.rglob("*") if p.suffix in (".ogg", ".opus"))
        if not tracks:
            sys.exit(f"error: {debs[0].name} holds no .ogg or .opus files")
        unique = len({p.name for p in tracks}) == len(tracks)
        base = Path(os.path.commonpath([t.parent for t in tracks]))
        staging = Path(tmp) / "music"
        staging.mkdir()
        for track in tracks:
            dest = staging / (track.name if unique else "__".join(track.relative_to(base).parts))
            if track.suffix == ".opus":
                import soundfile

                wave, sr = soundfile.read(track, dtype="float32")
                soundfile.write(dest.with_suffix(".flac"), wave, sr, subtype="PCM_16")
            else:
                shutil.move(str(track), dest)
        staging.rename(music)  # complete or absent
    return music


def usable_folder(music: Path, cache: Path) -> Path:
    """``music`` without the files the project's loader refuses (one Wesnoth track decodes
    5806 frames short of its header, which :func:`musicrestore.core.audio.load_audio` reports as
    truncated): a folder of links to the others, made once and listed on the console."""
    from musicrestore.core.audio import AudioError, list_audio, load_audio

    files = list_audio(music)
    key = hashlib.sha256("\n".join(f"{p}:{p.stat().st_size}" for p in files).encode())
    folder = cache / f"usable-{key.hexdigest()[:12]}"
    if folder.is_dir():
        return folder
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".usable-"))
    for path in files:
        try:
            load_audio(path)
        except AudioError as err:
            print(f"  left out: {err}")
            continue
        link = tmp / path.relative_to(music)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
    tmp.rename(folder)
    return folder


def build_testset(music: Path, cache: Path, params: dict[str, Any], clips: int) -> Path:
    """The degraded T1 test set of ``clips`` clips from ``music`` (every file held out)."""
    sets = build_from_folder(
        music, cache, params, "testset", n_test=clips, n_train=0, clean_test_fraction=1.0
    )
    return sets / "test"


def build_from_folder(
    music: Path, cache: Path, params: dict[str, Any], prefix: str, **overrides: Any
) -> Path:
    """:func:`musicrestore.degrade.build.build_musicgen_like` on the clean files of ``music``:
    ``params.yaml``'s ``musicgen_like`` block with ``overrides``; the folder holding
    ``test`` and ``train``, cached under ``cache`` by the settings and the file names."""
    from musicrestore.degrade.build import build_musicgen_like, check_params

    kwargs = dict(params.get("musicgen_like") or {})
    kwargs.setdefault("seed", int(params.get("seed", 0)))
    cfg = kwargs.pop("degrade", None)
    kwargs.pop("clean_dir", None)
    kwargs.update(overrides)
    check_params(build_musicgen_like, kwargs, "params.yaml: musicgen_like")
    files = sorted(p.name for p in music.iterdir())
    key = json.dumps([kwargs, cfg, files], sort_keys=True, default=str)
    folder = cache / f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if folder.is_dir():  # renamed into place only when complete
        return folder
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".build-"))
    try:
        build_musicgen_like("unused", "unused", tmp, cfg=cfg, clean_dir=music, **kwargs)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def run_variants(
    testset: Path, work: Path, names: list[str], params: dict[str, Any], models_dir: Path
) -> dict[str, dict[str, Any]]:
    """Restore ``testset`` with each variant and score it: ``{variant: summary metrics}``."""
    from musicrestore.evaluation import evaluate as ev
    from musicrestore.variants import build_context, get_variant
    from musicrestore.variants import restore as rs

    settings = rs.restore_settings(params.get("restore"))
    config = ev.eval_config(params.get("evaluate"))
    separator_dir = models_dir / "separator"
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        variant = get_variant(name)
        factory = None
        if variant.needs_separator:
            factory = rs.make_separator_factory(
                rs.recorded_separator(separator_dir) or settings["separator_model"],
                repo=separator_dir,
                device=settings["device"],
            )
        ctx = build_context(
            variant, params.get("variants"), separator_factory=factory,
            models_dir=models_dir, device=settings["device"],
        )  # fmt: skip
        out = work / name
        start = time.perf_counter()
        timing = rs.restore_dataset(
            variant, testset, out, ctx, testset="real_music", progress=False,
            **{k: settings[k] for k in ("chunk_s", "overlap_s", "context_s")},
        )  # fmt: skip
        summary = ev.evaluate(
            testset, out, work / f"{name}-eval", name, "real_music", config, progress=False
        )
        with open(work / f"{name}-eval" / ev.CLIPS_CSV, newline="") as fh:
            per_segment = {
                f"{r['id']}/{r['segment']}": float(r["si_sdr"]) for r in csv.DictReader(fh)
            }
        results[name] = {
            "metrics": {m: summary["metrics"].get(m) for m, _, _ in METRICS},
            "rtf": round(timing["rtf"], 4),
            "n_segments": summary["n_segments"],
            "si_sdr_per_segment": per_segment,
        }
        print(
            f"  {name}: SI-SDR {summary['metrics']['si_sdr']['mean']:.2f} dB "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    return results


def paired_table(results: dict[str, dict[str, Any]], against: tuple[str, ...]) -> str:
    """Δ SI-SDR of every variant against each of ``against``, segment by segment (the same
    clips, so the clip-to-clip spread cancels): mean ± 95 % CI of the differences."""
    from musicrestore.evaluation.evaluate import mean_ci

    bases = [b for b in against if b in results]
    if not bases:
        return ""
    lines = [
        "| variant | " + " | ".join(f"Δ SI-SDR vs {b} (dB)" for b in bases) + " |",
        "|---" * (len(bases) + 1) + "|",
    ]
    for name, res in results.items():
        cells = []
        for base in bases:
            ours, theirs = res["si_sdr_per_segment"], results[base]["si_sdr_per_segment"]
            stats = mean_ci(ours[k] - theirs[k] for k in sorted(ours) if k in theirs)
            mean, ci = stats["mean"], stats["ci"]
            cells.append("–" if mean is None else f"{mean:+.2f}" + (f" ± {ci:.2f}" if ci else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def stand_in_numbers() -> dict[str, dict[str, float]]:
    """The committed T1 headline numbers of the embedded stand-in (``reports/metrics.json``)."""
    path = ROOT / "reports" / "metrics.json"
    if not path.is_file():
        return {}
    return {v: d.get("t1", {}) for v, d in json.loads(path.read_text()).items()}


def metric_cells(result: dict[str, Any]) -> list[str]:
    """``mean ± ci`` of each of :data:`METRICS` in one variant's result (``–`` if absent)."""
    cells = []
    for metric, _, digits in METRICS:
        stats = result["metrics"].get(metric) or {}
        mean, ci = stats.get("mean"), stats.get("ci")
        cells.append(
            "–" if mean is None else f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if ci else "")
        )
    return cells


def table(results: dict[str, dict[str, Any]], stand_in: dict[str, dict[str, float]]) -> str:
    head = [f"{label} real" for _, label, _ in METRICS] + [
        f"{label} stand-in" for _, label, _ in METRICS
    ]
    lines = ["| variant | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, res in results.items():
        real = metric_cells(res)
        ref = stand_in.get(name, {})
        stood = [f"{ref[m]:.{d}f}" if m in ref else "–" for m, _, d in METRICS]
        lines.append(f"| {name} | " + " | ".join(real + stood) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--music", type=Path, help="folder of clean music (default: Wesnoth's)")
    parser.add_argument("--clips", type=int, default=24, help="10-s test clips (default 24)")
    parser.add_argument("--variants", nargs="+", help="T1 variants (default: every one)")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "musicrestore" / "real_music"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "real_music")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT / "src"))
    import yaml

    from musicrestore.variants import VARIANTS

    if args.clips < 1:
        sys.exit("error: --clips must be >= 1")
    params = yaml.safe_load(args.params.read_text())
    names = args.variants or [n for n, v in VARIANTS.items() if "T1" in v.tasks]
    unknown = [n for n in names if n not in VARIANTS or "T1" not in VARIANTS[n].tasks]
    if unknown:
        sys.exit(f"error: not a T1 variant: {', '.join(unknown)}")
    missing = [
        n
        for n in names
        if VARIANTS[n].checkpoint and not (args.models_dir / VARIANTS[n].checkpoint).is_dir()
    ]
    if missing:
        sys.exit(
            f"error: no checkpoint in {args.models_dir} for {', '.join(missing)}; run dvc repro"
        )
    music = args.music.expanduser() if args.music else fetch_wesnoth(args.cache)
    if not music.is_dir():
        sys.exit(f"error: {music}: not a folder")
    start = time.perf_counter()
    args.cache.mkdir(parents=True, exist_ok=True)
    testset = build_testset(usable_folder(music, args.cache), args.cache, params, args.clips)
    print(f"test set: {args.clips} clips from {music.name} ({time.perf_counter() - start:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="real_music_") as work:
        results = run_variants(testset, Path(work), names, params, args.models_dir)
    source = (
        "Wesnoth 1.16 soundtrack (Debian wesnoth-1.16-music, OGG)" if not args.music else music.name
    )
    text = (
        f"# T1 variants on real music\n\n{args.clips} 10-s clips of {source}, degraded with the "
        "MusicGen-like chain of params.yaml; means over 10-s segments ± 95 % CI. "
        "`stand-in`: the committed T1 numbers (reports/metrics.json).\n"
        "Regenerate: `python benchmarks/real_music.py`.\n\n"
        + table(results, stand_in_numbers())
        + "\n\nPaired over the same segments (each variant's SI-SDR minus the baseline's, "
        "segment by segment):\n\n" + paired_table(results, ("identity", "preclean"))
    )
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(
        json.dumps({"source": source, "clips": args.clips, "variants": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
