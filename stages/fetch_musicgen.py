"""Stage fetch_musicgen: the T3 set of MusicGen samples at --out (docs/method.md#musicgen-samples).

    python stages/fetch_musicgen.py --params params.yaml \
        --rawstems data/rawstems --splits data/splits --out data/musicgen

``musicgen.source``: ``simulated`` (default, offline: test-song excerpts through the
MusicGen-like chain), ``generate`` (MusicGen from prompts), ``local`` (a folder of clips).
The work is :func:`musicrestore.data.musicgen.fetch_musicgen`.
"""

from __future__ import annotations

import argparse
import logging

from musicrestore.core.stage import load_params, main_guard, output_dir
from musicrestore.data.musicgen import fetch_musicgen
from musicrestore.tracking import stage_run

log = logging.getLogger("fetch_musicgen")


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section 'musicgen')")
    parser.add_argument("--rawstems", required=True, help="RawStems-layout root (simulated source)")
    parser.add_argument("--splits", required=True, help="splits folder (simulated source)")
    parser.add_argument("--out", required=True, help="output dataset folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    params = load_params(args.params, "musicgen")
    # Only the chosen source's block is the config of this run; the others are not used.
    source = params["source"]
    logged = {k: v for k, v in params.items() if k not in ("generate", "local", "simulated")}
    logged[source] = params.get(source) or {}
    with stage_run("fetch_musicgen", {"musicgen": logged}) as run, output_dir(args.out) as tmp:
        examples = fetch_musicgen(
            source,
            tmp,
            seed=int(params.get("seed", 0)),
            duration_s=float(params.get("duration_s", 10.0)),
            generate=params.get("generate"),
            local=params.get("local"),
            simulated=params.get("simulated"),
            rawstems=args.rawstems,
            splits=args.splits,
            progress=not args.no_progress,
        )
        seconds = sum(ex.duration_s for ex in examples)
        run.set_tags({"musicgen_source": source, "simulated": source == "simulated"})
        run.log_metrics({"clips": len(examples), "audio_s": seconds})
    log.info(
        "fetch_musicgen: %d %s clips (%.0f s of audio) at %s",
        len(examples),
        source,
        seconds,
        args.out,
    )


if __name__ == "__main__":
    main()
