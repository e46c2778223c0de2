"""Stage build_musicgen_like: MusicGen-like T1 pairs, mono 32 kHz (seed 000 §3).

Writes ``--out/test`` (10-s clips of every target's test songs) and ``--out/train`` (3-4 s
crops of the other songs), each a dataset folder, and ``--out/stats.json``. Params: the
``musicgen_like`` section (keys = :func:`musicrestore.degrade.build.build_musicgen_like`
arguments; ``degrade`` = the artifact chain config), ``seed`` when its own is unset.
The examples are Dask tasks (:mod:`musicrestore.compute`, the ``compute`` block, which is
not a DVC param: where the work runs never changes an output).
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from musicrestore import compute, tracking
from musicrestore.core.config import pipeline_seed
from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.degrade.build import block_settings, build_musicgen_like


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rawstems", required=True, help="RawStems-layout folder")
    parser.add_argument("--splits", required=True, help="folder of {Target}_{train,test}.txt")
    parser.add_argument("--out", required=True, help="output folder, replaced atomically")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``seed`` and the whole ``musicgen_like`` block
    (:func:`musicrestore.degrade.build.block_settings`), checked before any work."""
    if "musicgen_like" not in params:
        raise StageError(f"{args.params}: missing section 'musicgen_like'")
    return block_settings(params["musicgen_like"], pipeline_seed(params), "musicgen_like")


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    config = settings(params, args)
    cluster = compute.compute_settings(params.get("compute"))
    if args.check_params:
        return
    kwargs, cfg = config["kwargs"], config["cfg"]
    logged = {**kwargs, "degrade": config["degrade"]}  # with the defaults
    with tracking.stage_run("build_musicgen_like", logged) as run:
        with compute.engine(cluster) as eng, output_dir(args.out) as tmp:
            stats = build_musicgen_like(
                args.rawstems, args.splits, tmp, cfg=cfg, engine=eng, **kwargs
            )
        run.log_metrics({k: v for k, v in stats.items() if k in ("test", "train", "build_time_s")})
        run.log_artifact(Path(args.out) / "stats.json")
    print(
        f"build_musicgen_like: {stats['test']['examples']} test + {stats['train']['examples']}"
        f" train clips in {stats['build_time_s']:.1f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
