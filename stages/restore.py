"""DVC stage: run one restoration variant on one test set (SPEC §4).

    python stages/restore.py --params params.yaml --variant demucs_dsp \
        --testset data/msr/Voc/test --testset-name msr_Voc \
        --separator-dir models/separator --out data/restored/demucs_dsp/msr_Voc

Reads ``variants.<key>`` for every key the variant reads (its own and those in ``uses``)
and the ``restore`` section; writes ``{id}.wav`` per example and ``timing.json`` into
``--out`` atomically. The work is :func:`musicrestore.restore.restore_dataset`.
"""

from __future__ import annotations

import argparse
import logging

from musicrestore import restore as rs
from musicrestore.stage import load_params, main_guard, output_dir
from musicrestore.tracking import stage_run
from musicrestore.variants import build_context, get_variant

log = logging.getLogger("restore")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--variant", required=True, help="registered variant name")
    parser.add_argument("--testset", required=True, help="test set folder with manifest.jsonl")
    parser.add_argument("--testset-name", required=True, help="name of the test set in reports")
    parser.add_argument("--separator-dir", help="separator repo folder (variants that separate)")
    parser.add_argument("--models-dir", help="checkpoint folder (learned variants)")
    parser.add_argument("--out", required=True, help="output folder ({id}.wav, timing.json)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    variant = get_variant(args.variant)
    params = load_params(args.params)
    settings = rs.restore_settings(params.get("restore"))
    factory = None
    if variant.needs_separator:
        factory = rs.make_separator_factory(
            rs.recorded_separator(args.separator_dir) or settings["separator_model"],
            repo=args.separator_dir,
            device=settings["device"],
        )
    ctx = build_context(
        variant,
        params.get("variants"),
        separator_factory=factory,
        models_dir=args.models_dir,
        device=settings["device"],
    )
    logged = {
        "variant": variant.name,
        "testset": args.testset_name,
        "variants": {variant.params_key: ctx.params, **ctx.shared},
        "restore": settings,
    }
    with stage_run(f"restore:{variant.name}:{args.testset_name}", logged) as run:
        with output_dir(args.out) as tmp:
            timing = rs.restore_dataset(
                variant,
                args.testset,
                tmp,
                ctx,
                testset=args.testset_name,
                chunk_s=settings["chunk_s"],
                overlap_s=settings["overlap_s"],
                context_s=settings["context_s"],
                progress=not args.no_progress,
            )
        run.set_tags({"variant": variant.name, "testset": args.testset_name})
        run.log_metrics({k: timing[k] for k in ("rtf", "audio_s", "compute_s", "setup_s")})
        run.log_artifact(f"{args.out}/{rs.TIMING_FILE}", artifact_path="restore")
    log.info(
        "%s on %s: %d examples, %.1f s of audio in %.1f s (RTF %.3f)",
        variant.name,
        args.testset_name,
        len(timing["per_example"]),
        timing["audio_s"],
        timing["compute_s"],
        timing["rtf"],
    )


if __name__ == "__main__":
    main()
