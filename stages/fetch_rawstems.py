"""Stage fetch_rawstems: put a RawStems-layout dataset at --out (docs/method.md#data).

``data.source``: ``embedded`` (default, rendered offline), ``hf`` (yongyizang/RawStems from the
Hugging Face Hub, selected songs/groups only), ``local`` (link an existing copy).
"""

from __future__ import annotations

import argparse
import time

from musicrestore import tracking
from musicrestore.core.stage import StageError, load_params, main_guard, output_dir
from musicrestore.data import rawstems


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, help="dataset folder to (re)create")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    data, seed = params["data"], int(params["seed"])
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

            emb = data["embedded"]
            stats = build_embedded(tmp, seed=seed, **emb)
        elif source == "hf":
            hf = data["hf"]
            rawstems.fetch_hf(
                tmp,
                repo_id=hf["repo"],
                revision=hf.get("revision"),
                songs=data.get("songs"),
                groups=data.get("groups"),
            )
            stats = {}
        elif source == "local":
            rawstems.link_local(
                data["local_root"], tmp, songs=data.get("songs"), groups=data.get("groups")
            )
            stats = {}
        else:
            raise StageError(f"data.source must be embedded, hf or local, not {source!r}")
        elapsed = time.perf_counter() - start
        run.log_metrics({"fetch_s": elapsed})
        run.set_tags({"data_source": source})
    print(
        f"fetch_rawstems: {source} dataset at {args.out} in {elapsed:.1f} s {stats or ''}".rstrip()
    )


if __name__ == "__main__":
    main()
