"""Mutation check: break one behaviour that matters, run the tests that should notice, put it
back. A behaviour whose mutation passes its tests is a behaviour nobody tests.

    python benchmarks/mutation.py            # every mutation, a Markdown table on stdout
    python benchmarks/mutation.py -k SI-SDR  # the mutations whose name contains "SI-SDR"

Each mutation replaces one exact piece of source (it must occur exactly once, so a refactor
that moves the code makes the script fail loudly instead of testing nothing), runs the named
test files with ``pytest -x -q``, and restores the file in a ``finally`` (also on Ctrl-C).
Exit status 1 if any mutation survives. Run it alone: it runs pytest once per mutation.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "musicrestore"


@dataclass(frozen=True)
class Mutation:
    name: str  # what breaks
    file: str  # relative to src/musicrestore
    old: str  # exact source text, present exactly once
    new: str  # what it becomes
    tests: tuple[str, ...]  # test files (or node ids) that must fail


MUTATIONS = [
    Mutation(
        "GAN generator terms dropped (L = L1 only)",
        "train/modules.py",
        " + self.gan.gen_weight * loss_gen + self.gan.feat_weight * loss_feat",
        "",
        ("tests/test_uformer.py",),
    ),
    Mutation(
        "chunk fade rectangular (no raised cosine)",
        "core/chunks.py",
        "    return (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)",
        "    return np.ones(n, np.float32)",
        ("tests/test_restore.py",),
    ),
    Mutation(
        "SI-SDR without its projection (alpha = 1)",
        "evaluation/metrics.py",
        "    target = alpha * ref  # (C, T)\n",
        "    target = ref  # (C, T)\n",
        ("tests/test_metrics.py",),
    ),
    Mutation(
        "Multi-Mel-SNR without its gain (alpha = 1)",
        "evaluation/metrics.py",
        "    scaled = alpha * est  # (C, T)\n",
        "    scaled = est  # (C, T)\n",
        ("tests/test_metrics.py",),
    ),
    Mutation(
        "degradation seed ignores the example index",
        "degrade/examples.py",
        '    text = "|".join(str(k) for k in (seed, *keys))',
        "    text = str(seed)",
        ("tests/test_build.py",),
    ),
    Mutation(
        "target-to-background SNR not applied",
        "degrade/base.py",
        "        gain = math.sqrt(et / (eb * 10.0 ** (snr_db_ / 10.0)))",
        "        gain = 1.0",
        ("tests/test_effects.py", "tests/test_chains.py"),
    ),
    Mutation(
        "headroom gain never lowers the level",
        "degrade/chains.py",
        "    return min(1.0, max_peak / peak) if peak > 0 else 1.0",
        "    return 1.0",
        ("tests/test_chains.py",),
    ),
    Mutation(
        "resume key ignored (a stale checkpoint resumes)",
        "train/engine.py",
        "        if stored != key:\n",
        "        if False:\n",
        ("tests/test_train_engine.py",),
    ),
    Mutation(
        "OUT = IN accepted without --overwrite",
        "cli.py",
        "    if in_place and not args.overwrite:\n",
        "    if False:\n",
        ("tests/test_cli.py",),
    ),
    Mutation(
        "output folder written in place (not atomic)",
        "core/stage.py",
        '        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))',
        "        tmp = path; tmp.mkdir(parents=True, exist_ok=True)",
        ("tests/test_stage.py",),
    ),
]


def run(mutation: Mutation) -> tuple[bool, str, float]:
    """``(caught, the first failing test or '', seconds)``; the file is restored after."""
    path = SRC / mutation.file
    original = path.read_text()
    count = original.count(mutation.old)
    if count != 1:
        raise SystemExit(f"{mutation.name}: the text to mutate occurs {count} times in {path}")
    start = time.monotonic()
    try:
        path.write_text(original.replace(mutation.old, mutation.new))
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    finally:
        path.write_text(original)
    failed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    return proc.returncode != 0, (failed[0] if failed else ""), time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-k",
        action="append",
        default=[],
        help="only mutations whose name contains this (repeatable)",
    )
    args = parser.parse_args(argv)
    chosen = [
        m for m in MUTATIONS if not args.k or any(k.lower() in m.name.lower() for k in args.k)
    ]
    print("| mutation | file | caught by | s |\n|---|---|---|---|")
    survived = 0
    for mutation in chosen:
        caught, test, seconds = run(mutation)
        survived += not caught
        verdict = f"`{test}`" if caught and test else ("error" if caught else "**SURVIVED**")
        print(f"| {mutation.name} | {mutation.file} | {verdict} | {seconds:.0f} |", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
