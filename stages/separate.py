"""Stage separate: the stems of every test mixture, computed once (docs/architecture.md#separation-once).

    python stages/separate.py --params params.yaml \
        --testset musicgen_like=data/musicgen_like/test --testset musicgen=data/musicgen \
        --msr-test data/msr/test --separator-dir models/separator --out data/separated

Separates each mixture with the pipeline's separator (``restore.separator_model``, or the
one ``--separator-dir`` records) exactly as a restoration variant would, one Dask task per
mixture (:mod:`musicrestore.compute`), and writes ``<out>/<key>/<source>.wav`` plus
``<out>/index.json`` atomically (:mod:`musicrestore.separation.stored`). The restore stages of
``demucs``, ``demucs_dsp`` and ``adaptive`` read them (``--separated``) instead of separating
the same mixtures three times over.
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from musicrestore import compute
from musicrestore.core.audio import write_bytes
from musicrestore.core.paths import plain_name
from musicrestore.core.stage import load_params, main_guard, output_dir
from musicrestore.data import testsets as ts
from musicrestore.data.dataset import read_manifest
from musicrestore.separation.stored import INDEX, separate_task
from musicrestore.tracking import stage_run
from musicrestore.variants import restore as rs

log = logging.getLogger("separate")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file")
    ts.add_arguments(parser)
    parser.add_argument("--separator-dir", help="separator repo folder (train_separator's)")
    parser.add_argument("--out", required=True, help="output folder, replaced atomically")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The ``restore`` block (which separator, on which device), ``msr.targets`` with
    ``--msr-test`` and the ``compute`` block, checked before any work."""
    return {
        "restore": rs.restore_settings(params.get("restore")),
        "targets": ts.msr_targets(params) if args.msr_test else None,
        "compute": compute.compute_settings(params.get("compute")),
    }


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    checked = settings(load_params(args.params), args)
    if args.check_params:
        return
    restore, targets, cluster = checked["restore"], checked["targets"], checked["compute"]
    sets = ts.resolve(args.testset, args.msr_test, targets)
    model = rs.recorded_separator(args.separator_dir) or restore["separator_model"]
    factory = rs.make_separator_factory(model, repo=args.separator_dir, device=restore["device"])
    clips = [
        (f"{name}/{ex.id}", str(folder / ex.mixture))
        for name, folder in sets.items()
        for ex in read_manifest(folder)
    ]
    logged = {"separator_model": model, "device": restore["device"], "testsets": sorted(sets)}
    start = time.perf_counter()
    with stage_run("separate", logged) as run:
        with (
            compute.engine(cluster, progress=not args.no_progress) as eng,
            output_dir(args.out) as tmp,
        ):
            shared = eng.share({})  # one separator per worker, built at its first task
            tasks = [{"factory": factory, "mixture": path, "cache": shared} for _, path in clips]
            index: dict[str, str] = {}
            sources: list[str] = []
            for i, result in eng.imap(separate_task, tasks, "separate", gpu=True):
                key = plain_name(result["key"], "stem key")
                for name, data in result["files"]:
                    write_bytes(tmp / key / plain_name(name, "source"), data)
                index[clips[i][0]] = key
                sources = result["sources"]
            meta = {"model": model, "sources": sources, "clips": dict(sorted(index.items()))}
            (tmp / INDEX).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        seconds = time.perf_counter() - start
        run.log_metrics({"clips": len(clips), "separate_s": round(seconds, 3)})
    log.info("separated %d mixtures of %d test sets in %.1f s", len(clips), len(sets), seconds)


if __name__ == "__main__":
    main()
