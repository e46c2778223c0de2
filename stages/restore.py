"""DVC stage ``restore-<variant>``: one restoration variant on every test set it applies to.

    python stages/restore.py --params params.yaml --variant demucs_dsp \
        --testset musicgen_like=data/musicgen_like/test --testset musicgen=data/musicgen \
        --msr-test data/msr/test --separator-dir models/separator \
        --out data/restored/demucs_dsp --timing reports/timing/demucs_dsp.json

Reads ``variants.<key>`` for every key the variant reads (its own and those in ``uses``),
the ``restore`` section and ``msr.targets``; with ``--target G`` (a per-group stage,
``restore-uformer@Voc``) only the ``msr_G`` set, written straight into ``--out``; writes ``<out>/<testset>/{id}.wav`` and
``decisions.json`` atomically (byte-identical on a re-run) and the wall-clock timings to
``--timing`` (an uncached DVC metric) and MLflow. The work is
:func:`musicrestore.variants.restore.restore_dataset`.
"""

from __future__ import annotations

from musicrestore import exit_on_signals

if __name__ == "__main__":
    exit_on_signals()  # Ctrl-C / SIGTERM while the modules below import: 130 / 143, one line

import argparse
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from musicrestore import compute
from musicrestore.core.audio import atomic_path
from musicrestore.core.stage import load_params, main_guard, output_dir
from musicrestore.data import testsets as ts
from musicrestore.separation.stored import stored_factory
from musicrestore.tracking import stage_run
from musicrestore.variants import build_context, get_variant
from musicrestore.variants import restore as rs
from musicrestore.variants.pretrained import missing_checkpoints
from musicrestore.variants.registry import resolve_params

log = logging.getLogger("restore")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file")
    parser.add_argument("--variant", required=True, help="registered variant name")
    ts.add_arguments(parser)
    parser.add_argument("--separator-dir", help="separator repo folder (variants that separate)")
    parser.add_argument("--models-dir", help="checkpoint folder (learned variants)")
    parser.add_argument(
        "--separated", help="the separate stage's stems (variants that separate the mixture)"
    )
    parser.add_argument("--out", required=True, help="output folder (<testset>/{id}.wav)")
    parser.add_argument("--timing", help="uncached timing metrics file (JSON)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--check-params", action="store_true", help="check the params this stage reads and exit"
    )
    return parser.parse_args(argv)


def settings(params: Mapping[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The variant, ``variants.<key>`` of every key it reads
    (:func:`musicrestore.variants.registry.resolve_params`), the ``restore`` block
    (:func:`musicrestore.variants.restore.restore_settings`) and, with ``--msr-test``,
    ``msr.targets`` (or ``--target``: :func:`musicrestore.data.testsets.chosen_targets`), checked
    before any work."""
    variant = get_variant(args.variant)
    targets = ts.chosen_targets(params, args)
    restore = rs.restore_settings(params.get("restore"))
    resolve_params(variant, params.get("variants"))
    return {"variant": variant, "targets": targets, "restore": restore}


def timing_metrics(per_set: dict[str, dict], tasks: dict[str, str]) -> dict[str, float]:
    """Real-time factors, overall and per task (compute seconds / audio seconds), and the two
    sums (``compute_s``, ``audio_s``), so per-group files combine into one figure."""
    out: dict[str, float] = {
        "audio_s": round(sum(t["audio_s"] for t in per_set.values()), 3),
        "compute_s": round(sum(t["compute_s"] for t in per_set.values()), 3),
    }
    for label, names in [("rtf", list(per_set))] + [
        (f"rtf_{task.lower()}", [n for n in per_set if tasks[n] == task])
        for task in sorted(set(tasks.values()))
    ]:
        audio = sum(per_set[n]["audio_s"] for n in names)
        compute = sum(per_set[n]["compute_s"] for n in names)
        if audio > 0:
            out[label] = round(compute / audio, 4)
    return out


def skip(name: str, missing: list[str], args: argparse.Namespace) -> None:
    """A variant that cannot run here (its pretrained checkpoints are absent): write
    ``<out>/skipped.json`` (and an empty timing file) so the pipeline goes on offline; the
    evaluate stage passes it on and the report lists the variant as not run."""
    for line in missing:
        log.warning("%s: %s", name, line)
    doc = {"variant": name, "reason": "checkpoints not present", "missing": missing}
    with output_dir(args.out) as tmp:
        (tmp / ts.SKIPPED_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    if args.timing:
        with atomic_path(Path(args.timing)) as path:
            path.write_text("{}\n")
    log.warning(
        "%s skipped: %d checkpoint(s) missing (README, Pretrained RoFormers)", name, len(missing)
    )


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = load_params(args.params)
    config = settings(params, args)
    cluster = compute.compute_settings(params.get("compute"))
    if args.check_params:
        return
    variant, restore = config["variant"], config["restore"]
    sets = ts.resolve(args.testset, args.msr_test, config["targets"])
    factory = None
    if variant.needs_separator:
        factory = rs.make_separator_factory(
            rs.recorded_separator(args.separator_dir) or restore["separator_model"],
            repo=args.separator_dir,
            device=restore["device"],
        )
        if args.separated and variant.separates_mixture:  # separation computed once
            factory = stored_factory(args.separated, factory)
    if missing := missing_checkpoints(variant.name, params.get("variants"), config["targets"]):
        with stage_run(f"restore-{variant.name}", {"variant": variant.name, "missing": missing}):
            skip(variant.name, missing, args)
        return
    ctx = build_context(
        variant,
        params.get("variants"),
        separator_factory=factory,
        models_dir=args.models_dir,
        device=restore["device"],
    )
    logged = {
        "variant": variant.name,
        "testsets": sorted(sets),
        "variants": {variant.params_key: ctx.params, **ctx.shared},
        "restore": restore,
    }
    chunking = {k: restore[k] for k in ("chunk_s", "overlap_s", "context_s")}
    per_set: dict[str, dict] = {}
    tasks: dict[str, str] = {}
    with stage_run(f"restore-{variant.name}", logged) as run:
        with (
            compute.engine(cluster, progress=not args.no_progress) as eng,
            output_dir(args.out) as tmp,
        ):
            for name, folder in sets.items():
                per_set[name] = rs.restore_dataset(
                    variant,
                    folder,
                    ts.set_folder(tmp, name, args),
                    ctx,
                    testset=name,
                    progress=not args.no_progress,
                    engine=eng,
                    **chunking,
                )
                tasks[name] = per_set[name]["task"]
        setup_s = sum(t["setup_s"] for t in per_set.values())
        metrics = {**timing_metrics(per_set, tasks), "setup_s": round(setup_s, 3)}
        if args.timing:
            with atomic_path(Path(args.timing)) as path:
                path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        run.set_tags({"variant": variant.name, **per_set[next(iter(per_set))]["machine"]})
        run.log_metrics(metrics)
        run.log_metrics({f"rtf.{n}": t["rtf"] for n, t in per_set.items()})
    log.info(
        "%s: %d test sets, %.1f s of audio, RTF %.3f",
        variant.name,
        len(sets),
        sum(t["audio_s"] for t in per_set.values()),
        metrics.get("rtf", float("nan")),
    )


if __name__ == "__main__":
    main()
