"""Stage fetch_musicgen: the T3 set of MusicGen samples at --out (docs/method.md#musicgen-samples).

    python stages/fetch_musicgen.py --params params.yaml \
        --rawstems data/rawstems --splits data/splits --out data/musicgen

``musicgen.source``: ``simulated`` (default, offline: test-song excerpts through the
MusicGen-like chain), ``generate`` (MusicGen from prompts), ``local`` (a folder of clips).
The work is :func:`musicrestore.data.musicgen.fetch_musicgen`.
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import logging
from collections.abc import Mapping
from typing import Any

from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.data.musicgen import fetch_musicgen, musicgen_settings
from musicrestore.tracking import stage_run

log = logging.getLogger("fetch_musicgen")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (section 'musicgen')")
    parser.add_argument("--rawstems", required=True, help="RawStems-layout root (simulated source)")
    parser.add_argument("--splits", required=True, help="splits folder (simulated source)")
    parser.add_argument("--out", required=True, help="output dataset folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The ``musicgen`` block, every source's block included
    (:func:`musicrestore.data.musicgen.musicgen_settings`), checked before any work."""
    if "musicgen" not in params:
        raise StageError(f"{args.params}: missing section 'musicgen'")
    return musicgen_settings(params["musicgen"])


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = settings(load_params(args.params), args)
    if args.check_params:
        return
    # Only the chosen source's block is the config of this run; the others are not used.
    source = params["source"]
    logged = {k: v for k, v in params.items() if k not in ("generate", "local", "simulated")}
    logged[source] = params[source]
    with stage_run("fetch_musicgen", {"musicgen": logged}) as run, output_dir(args.out) as tmp:
        examples = fetch_musicgen(
            source,
            tmp,
            seed=params["seed"],
            duration_s=params["duration_s"],
            generate=params["generate"],
            local=params["local"],
            simulated=params["simulated"],
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
