"""Stage build_musicgen_like: MusicGen-like T1 pairs, mono 32 kHz (seed 000 §3).

Writes ``--out/test`` (10-s clips of every target's test songs) and ``--out/train`` (3-4 s
crops of the other songs), each a dataset folder, and ``--out/stats.json``. Params: the
``musicgen_like`` section (keys = :func:`musicrestore.degrade.build.build_musicgen_like`
arguments; ``degrade`` = the artifact chain config), ``seed`` when its own is unset.
``--shard i/n`` builds one shard on one machine (see :mod:`musicrestore.degrade.merge`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from musicrestore import tracking
from musicrestore.core.stage import load_params, main_guard, output_dir
from musicrestore.degrade.build import build_musicgen_like, check_params, parse_shard
from musicrestore.degrade.chains import musicgen_config


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rawstems", required=True, help="RawStems-layout folder")
    parser.add_argument("--splits", required=True, help="folder of {Target}_{train,test}.txt")
    parser.add_argument("--out", required=True, help="output folder, replaced atomically")
    parser.add_argument(
        "--shard",
        help="i/n: build only the examples whose index is i mod n (same ids and seeds) into "
        "--out; join the n shard folders with python -m musicrestore.degrade.merge",
    )
    args = parser.parse_args(argv)
    shard = parse_shard(args.shard)
    params = load_params(args.params)
    kwargs = dict(load_params(args.params, "musicgen_like"))
    kwargs.setdefault("seed", int(params.get("seed", 0)))
    cfg = kwargs.pop("degrade", None)
    check_params(build_musicgen_like, kwargs, f"{args.params}: musicgen_like")
    logged = {**kwargs, "degrade": musicgen_config(cfg)}  # with the defaults
    suffix = f"#{shard[0]}of{shard[1]}" if shard else ""
    with tracking.stage_run(f"build_musicgen_like{suffix}", logged) as run:
        with output_dir(args.out) as tmp:
            stats = build_musicgen_like(
                args.rawstems, args.splits, tmp, cfg=cfg, shard=shard, **kwargs
            )
        run.log_metrics({k: v for k, v in stats.items() if k in ("test", "train", "build_time_s")})
        run.log_artifact(Path(args.out) / "stats.json")
    print(
        f"build_musicgen_like: {stats['test']['examples']} test + {stats['train']['examples']}"
        f" train clips in {stats['build_time_s']:.1f} s -> {args.out}"
    )


if __name__ == "__main__":
    main()
