"""Stage fetch_rawstems: put a RawStems-layout dataset at --out (docs/method.md#data).

``data.source``: ``embedded`` (default, rendered offline), ``hf`` (yongyizang/RawStems from the
Hugging Face Hub, selected songs/groups only), ``local`` (link an existing copy).
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import time
from collections.abc import Mapping
from typing import Any

from musicrestore import tracking
from musicrestore.core.config import pipeline_seed
from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.data import rawstems
from musicrestore.data.embedded.build import embedded_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="dataset folder to (re)create")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``seed`` and the ``data`` block (:func:`musicrestore.data.rawstems.data_settings`, its
    ``embedded`` keywords :func:`musicrestore.data.embedded.build.embedded_config`), checked
    before any work: a wrong type, an unknown key or a value out of range is one line."""
    if "data" not in params:
        raise StageError(f"{args.params}: missing section 'data'")
    data = rawstems.data_settings(params["data"])
    data["embedded"] = embedded_config(data["embedded"])
    return {"seed": pipeline_seed(params), "data": data}


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = settings(load_params(args.params), args)
    if args.check_params:
        return
    data, seed = config["data"], config["seed"]
    source = data["source"]
    start = time.perf_counter()
    with (
        tracking.stage_run(
            "fetch_rawstems",
            {"seed": seed, "data": {k: v for k, v in data.items() if k != "split"}},
        ) as run,
        output_dir(args.out) as tmp,
    ):
        if source == "embedded":
            from musicrestore.data.embedded import build_embedded

            stats = build_embedded(tmp, seed=seed, **data["embedded"])
        elif source == "hf":
            hf = data["hf"]
            rawstems.fetch_hf(
                tmp,
                repo_id=hf["repo"],
                revision=hf["revision"],
                songs=data["songs"],
                groups=data["groups"],
            )
            stats = {}
        else:  # local (data_settings allows no other source)
            rawstems.link_local(data["local_root"], tmp, songs=data["songs"], groups=data["groups"])
            stats = {}
        elapsed = time.perf_counter() - start
        run.log_metrics({"fetch_s": elapsed})
        run.set_tags({"data_source": source})
    print(
        f"fetch_rawstems: {source} dataset at {args.out} in {elapsed:.1f} s {stats or ''}".rstrip()
    )


if __name__ == "__main__":
    main()
