"""Peak memory of ``python -m musicrestore restore`` against the input's length.

    python benchmarks/bench_memory.py                                    # every variant
    python benchmarks/bench_memory.py --variants identity preclean --minutes 3 10 20
    python benchmarks/bench_memory.py --variants demucs --json mem.json   # figures add up

The file runner (:func:`musicrestore.variants.restore.restore_file`) streams every variant
in chunks of ``restore.chunk_s`` with context (docs/method.md#methods), so peak memory
must not grow with the file: the target is the 20-min figure within 10 % of the 3-min one.

For each length this writes a synthetic stereo 44.1 kHz file (16-bit WAV: harmonic tones
over a bass line, with noise) into a temporary folder, then runs the real command line in
a fresh subprocess per variant and length (``--params params.yaml``, so the pipeline's
chunk settings; one thread for torch and the BLAS libraries unless ``--threads``) and
reads that child's peak resident memory (``ru_maxrss`` from :func:`os.wait4`, which sees
every allocation, C extensions included). The models are the tests' tiny offline ones,
built here with the tests' own builders and written as the pipeline writes them: the
separator is :func:`musicrestore.separation.tiny_htdemucs` exported as ``trained``
(``--separator-repo``), the learned checkpoints are the tiny configurations of
``tests/test_learned_variants.py`` (U-Net, WaveNet at 32 kHz) and ``tests/test_uformer.py``
(U-Former, 44.1 kHz, target ``Voc``) saved by :func:`musicrestore.models.checkpoint.save_model`
(``--models-dir``). Their memory is a lower bound of the full-size models', but what this
measures is the growth with length, which the model size does not change.

Prints a Markdown table: variant | 3 min | 10 min | 20 min | 20/3 ratio | models used, in
MB (MiB); a variant left out by ``--variants`` is listed as not measured.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 44100
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
TARGET = "Voc"  # the per-target model's group (uformer)
#: Which tiny model each kind of variant runs on (the table's last column).
MODEL_NOTES = {
    "separator": "tiny HTDemucs (channels 8, depth 4, 1 transformer layer)",
    "unet_mask": "tiny UNetMask (n_fft 256, base 4, 3 levels), 32 kHz mono",
    "wavenet": "tiny WaveNet (4 residual ch, 4 layers), 32 kHz mono",
    "uformer": "tiny UFormer (n_fft 256, channels [2, 4], 1 RoFormer layer), 44.1 kHz stereo",
}


def write_signal(path: Path, minutes: float, seed: int = 0, block_s: float = 10.0) -> Path:
    """``minutes`` of stereo 44.1 kHz (16-bit WAV) at ``path``, written block by block so
    this process never holds the file: notes of five harmonics every 0.5 s over a 55-Hz
    bass, plus noise at -50 dBFS, the right channel 20 samples late and a little quieter."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    total = int(round(minutes * 60 * SR))
    block = int(block_s * SR)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", SR, 2, "PCM_16", format="WAV") as fh:
        for start in range(0, total, block):
            t = np.arange(start, min(total, start + block) + 20) / SR
            note = np.floor(t / 0.5)
            f0 = np.choose((note % 4).astype(int), [220.0, 262.0, 330.0, 294.0])
            tt = t - 0.5 * note
            x = 0.15 * sum(np.sin(2 * np.pi * f0 * h * tt) / h for h in range(1, 6))
            x = x * np.exp(-3 * tt) + 0.1 * np.sin(2 * np.pi * 55.0 * t)
            x = x + 0.003 * rng.standard_normal(t.size)
            fh.write(np.stack([x[20:], 0.8 * x[:-20]], axis=1).astype(np.float32))
    return path


def build_models(folder: Path) -> tuple[Path, Path]:
    """The tiny separator repository and learned checkpoints under ``folder``: returns
    ``(separator repo, models dir)``. The builders are the tests' (not copies)."""
    sys.path.insert(0, str(ROOT))  # the tests' builders: tests/ is a package of the repo
    from tests.test_learned_variants import Loader
    from tests.test_uformer import TINY as UFORMER_TINY

    from musicrestore import separation
    from musicrestore.models import UFormer, checkpoint

    repo = folder / "separator"
    separation.export_repo(
        separation.tiny_htdemucs(seed=0), repo, "trained", formats=("safetensors",)
    )
    models = folder / "models"
    for name in ("unet_mask", "wavenet"):
        net, config = Loader(32000)(name, None)  # the rate of the pipeline's small presets
        checkpoint.save_model(
            models / name, net, name, config["kwargs"], config["sr"], 0, "bench", "bench"
        )
    net = UFormer(**UFORMER_TINY).eval()
    checkpoint.save_model(
        models / "uformer" / TARGET, net, "uformer", UFORMER_TINY, SR, 0, "bench", "bench"
    )
    return repo, models


def command(variant: Any, inp: Path, out: Path, repo: Path, models: Path, params: Path | None):
    """The command line that restores ``inp`` into ``out`` with ``variant``."""
    cmd = [sys.executable, "-m", "musicrestore", "restore", str(inp), str(out)]
    cmd += ["--variant", variant.name]
    if params is not None:
        cmd += ["--params", str(params)]
    if variant.needs_separator:
        cmd += ["--separator", "trained", "--separator-repo", str(repo)]
    if variant.checkpoint:
        cmd += ["--models-dir", str(models)]
    if variant.per_target:
        cmd += ["--target", TARGET]
    return cmd


def peak_rss_mb(cmd: Sequence[str], threads: int, log: Path) -> tuple[float, float]:
    """Run ``cmd`` to the end; ``(its peak resident memory in MiB, wall seconds)``. A
    failure raises ``RuntimeError`` with the last line it printed."""
    env = {**os.environ, **dict.fromkeys(THREAD_ENV, str(threads))}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    start = time.perf_counter()
    with open(log, "wb") as fh:
        proc = subprocess.Popen(list(cmd), stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        lines = log.read_text(errors="replace").strip().splitlines() or ["(no output)"]
        raise RuntimeError(f"exit {proc.returncode}: {lines[-1]}")
    return usage.ru_maxrss / 1024.0, wall  # KiB on Linux


def models_used(variant: Any) -> str:
    notes = []
    if variant.needs_separator:
        notes.append(MODEL_NOTES["separator"])
    if variant.checkpoint:
        notes.append(MODEL_NOTES.get(variant.checkpoint, variant.checkpoint))
    return "; ".join(notes) or "none"


def format_table(
    names: Sequence[str], minutes: Sequence[float], results: dict[str, dict[float, Any]]
) -> str:
    """Markdown: one row a variant, its peak MiB per length, last/first ratio, its models."""
    from musicrestore.variants import VARIANTS

    first, last = minutes[0], minutes[-1]
    head = ["variant", *(f"{m:g} min" for m in minutes), f"{last:g}/{first:g} ratio", "models used"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        row = results.get(name)
        if row is None:
            cells = ["not measured"] * len(minutes) + ["-"]
        else:
            cells = [
                f"{v:.0f}" if isinstance(v, float) else str(v)
                for v in (row.get(m, "not measured") for m in minutes)
            ]
            a, b = row.get(first), row.get(last)
            ok = isinstance(a, float) and isinstance(b, float)
            cells.append(f"{b / a:.3f}" if ok else "-")
        lines.append("| " + " | ".join([name, *cells, models_used(VARIANTS[name])]) + " |")
    return "\n".join(lines)


def measure(
    names: Sequence[str], minutes: Sequence[float], threads: int, params: Path | None, tmp: Path
) -> dict[str, dict[float, Any]]:
    """Peak MiB of each variant at each length (or ``"error (...)"``), measured in ``tmp``."""
    import soundfile as sf

    from musicrestore.variants import VARIANTS

    results: dict[str, dict[float, Any]] = {name: {} for name in names}
    repo, models = build_models(tmp)
    for length in minutes:
        inp = write_signal(tmp / f"in_{length:g}min.wav", length)
        for name in names:
            out = tmp / f"out_{name}.wav"
            cmd = command(VARIANTS[name], inp, out, repo, models, params)
            try:
                mb, wall = peak_rss_mb(cmd, threads, tmp / f"{name}.log")
                frames_in, frames_out = sf.info(str(inp)).frames, sf.info(str(out)).frames
                if frames_out != frames_in:
                    raise RuntimeError(f"{frames_out} frames out for {frames_in} in")
            except RuntimeError as exc:
                results[name][length] = f"error ({exc})"
                print(f"{name} {length:g} min: {exc}", file=sys.stderr, flush=True)
                continue
            out.unlink()
            results[name][length] = mb
            rtf = wall / (60 * length)
            print(
                f"{name} {length:g} min: peak {mb:.0f} MiB, {wall:.0f} s (RTF {rtf:.3f})",
                file=sys.stderr,
                flush=True,
            )
        inp.unlink()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--variants", nargs="*", help="default: every registered variant")
    parser.add_argument("--minutes", nargs="+", type=float, default=[3.0, 10.0, 20.0])
    parser.add_argument("--threads", type=int, default=1, help="torch / BLAS threads")
    parser.add_argument(
        "--params", default=str(ROOT / "params.yaml"), help="'none': the registry's defaults"
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="keep the figures here; figures already in it are kept and shown (so the "
        "variants can be measured in several runs and tabled together)",
    )
    parser.add_argument("--tmp", type=Path, help="where the work folder goes (default: /tmp)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from musicrestore.variants import VARIANTS

    names = list(VARIANTS) if args.variants is None else args.variants
    if unknown := [n for n in names if n not in VARIANTS]:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    results: dict[str, dict[float, Any]] = {}
    if args.json and args.json.is_file():
        saved = json.loads(args.json.read_text())
        results = {n: {float(m): v for m, v in r.items()} for n, r in saved.items()}
    if names:
        with tempfile.TemporaryDirectory(prefix="bench_memory_", dir=args.tmp) as tmp:
            params = None if args.params == "none" else Path(args.params)
            for name, row in measure(names, args.minutes, args.threads, params, Path(tmp)).items():
                results.setdefault(name, {}).update(row)
    if args.json:
        rows = {n: {f"{m:g}": v for m, v in r.items()} for n, r in results.items()}
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    first, last = args.minutes[0], args.minutes[-1]
    print(
        f"Peak RSS (MiB) of `python -m musicrestore restore IN OUT --variant NAME`, stereo "
        f"{SR} Hz 16-bit WAV in, {args.threads} thread(s), params {args.params}, "
        f"{os.cpu_count()} CPUs\n"
    )
    print(format_table(list(VARIANTS), args.minutes, results))
    ratios = [
        r[last] / r[first]
        for r in results.values()
        if isinstance(r.get(first), float) and isinstance(r.get(last), float)
    ]
    worst = max(ratios, default=math.nan)
    print(f"\nlargest {last:g}/{first:g} ratio: {worst:.3f} (target: at most 1.10)")
    failed = any(isinstance(results[n].get(m), str) for n in names for m in args.minutes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
