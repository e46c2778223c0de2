"""Stage index_rawstems: the stem index (durations, active seconds) and per-group splits.

Writes ``--index`` (CSV: song, group, subgroup, path, sr, channels, duration_s, active_s),
``--splits/{Target}_{train,test}.txt`` (seed 004 §3: 10 songs or 10 % per group, whichever is
larger, go to test) and ``--summary`` (JSON: songs, hours, songs per group).
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import json
from collections.abc import Mapping
from typing import Any

from musicrestore import tracking
from musicrestore.core.audio import atomic_path
from musicrestore.core.config import pipeline_seed
from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.data import rawstems
from musicrestore.data.taxonomy import TARGETS, scan, split_songs, write_splits


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--rawstems", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--splits", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``seed`` and ``data.split``, checked with the whole ``data`` block
    (:func:`musicrestore.data.rawstems.data_settings`) before any work."""
    if "data" not in params:
        raise StageError(f"{args.params}: missing section 'data'")
    return {"seed": pipeline_seed(params), "split": rawstems.data_settings(params["data"])["split"]}


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = settings(load_params(args.params), args)
    if args.check_params:
        return
    seed, split = config["seed"], config["split"]
    songs = scan(args.rawstems)
    if not songs:
        raise StageError(f"{args.rawstems}: no songs found; re-run fetch_rawstems")
    with tracking.stage_run("index_rawstems", {"seed": seed, "data.split": split}) as run:
        index = rawstems.build_index(args.rawstems, songs)
        splits = split_songs(songs, TARGETS, seed, split["min_test_songs"], split["test_fraction"])
        summary = rawstems.index_summary(index)
        summary["split"] = {
            t: {"train": len(tr), "test": len(te)} for t, (tr, te) in splits.items()
        }
        with atomic_path(args.index) as tmp:
            index.to_csv(tmp, index=False)
        with output_dir(args.splits) as tmp:
            write_splits(tmp, splits)
        with atomic_path(args.summary) as tmp:
            tmp.write_text(json.dumps(summary, indent=2) + "\n")
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, int | float)})
        run.log_artifact(args.summary)
    print(
        f"index_rawstems: {summary['songs']} songs, {summary['hours']:.2f} h, groups {summary['songs_per_group']}"
    )


if __name__ == "__main__":
    main()
