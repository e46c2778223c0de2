"""The stages of ``dvc.yaml``: names, commands, params, data and code they declare.

See :mod:`musicrestore.pipeline` for what is derived and why.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..data.testsets import MSR_PREFIX
from .code import PACKAGE, code_deps

#: Mixture test sets: name -> (task, folder). T2 sets are ``MSR_TEST/<group>``.
MIX_TESTSETS: dict[str, tuple[str, str]] = {
    "musicgen_like": ("T1", "data/musicgen_like/test"),
    "musicgen": ("T3", "data/musicgen"),
}
MSR_TEST = "data/msr/test"
MSR_TRAIN = "data/msr/train"
SEPARATOR = "models/separator"
SEPARATED = "data/separated"
#: Where pretrained community checkpoints are put (git keeps its README only); the restore
#: stages of the variants that read them depend on it, so adding a checkpoint re-runs them.
PRETRAINED = "pretrained"
MODELS = "models"
RESTORED = "data/restored"
EVAL = "reports/eval"
TIMING = "reports/timing"


# ------------------------------------------------------------------------------ stages


def restore_stage(variant: str, group: str | None = None) -> str:
    """The name of a variant's restore stage (for ``group``, a per-target variant's)."""
    return f"restore-{variant}" if group is None else f"restore-{variant}@{group}"


#: The ``foreach`` stage that scores every variant (``evaluate@<variant>``).
EVALUATE = "evaluate"


def evaluate_stage(variant: str) -> str:
    """The name of a variant's evaluate stage."""
    return f"{EVALUATE}@{variant}"


def train_stage(model: str, group: str | None = None) -> str:
    """The name of the stage that trains ``model`` (for ``group``, a per-target model)."""
    return f"train-{model}" if group is None else f"train-{model}@{group}"


def _own_modules(kind: str) -> dict[str, str]:
    """``{name: module}`` of the registered variants (``kind="variants"``) or architectures
    (``"models"``): each stage follows its own and skips the others'."""
    if kind == "variants":
        from ..variants import VARIANTS

        return {name: v.fn.__module__ for name, v in VARIANTS.items()}
    from ..models import ARCHITECTURES

    return {name: cls.__module__ for name, cls in ARCHITECTURES.items()}


def _testset_args(tasks: Sequence[str]) -> tuple[list[str], list[str]]:
    """(command-line arguments, dependency folders) of the test sets of ``tasks``."""
    args, deps = [], []
    for name, (task, folder) in MIX_TESTSETS.items():
        if task in tasks:
            args.append(f"--testset {name}={folder}")
            deps.append(folder)
    if "T2" in tasks:
        args.append(f"--msr-test {MSR_TEST}")
        deps.append(MSR_TEST)
    return args, deps


def separate_stage() -> dict[str, Any]:
    """``separate``: the stems of every test mixture, once, for the variants that separate
    the mixture as it is (:mod:`musicrestore.separation.stored`)."""
    args, sets = _testset_args(("T1", "T2", "T3"))
    return {
        "cmd": " ".join(
            [
                "python stages/separate.py",
                *args,
                f"--separator-dir {SEPARATOR} --out {SEPARATED} --no-progress",
            ]
        ),  # fmt: skip
        "deps": [*code_deps("stages/separate.py"), *sets, SEPARATOR],
        "params": ["restore.separator_model", "restore.device", "msr.targets"],
        "outs": [SEPARATED],
    }


def variant_stages() -> dict[str, Any]:
    """``restore-<variant>`` for every registered variant, and for a per-target variant (one
    model per T2 group) ``restore-<variant>@<group>`` over ``msr.targets`` (DVC's
    ``foreach``), so retraining one group's model re-runs that group's restore only; then
    ``evaluate@<variant>``, one ``foreach`` over every variant: the same command and
    dependencies for all (every test set), scoring the sets the restore stage wrote. That
    over-reaches on purpose, for one template instead of a stage per variant: a T1-only
    variant's evaluation re-runs (tens of seconds) when the T2 test sets change, and a
    per-target variant's re-scores every group when one group's restore changes."""
    from ..variants import VARIANTS

    modules, architectures = _own_modules("variants"), _own_modules("models")
    restore: dict[str, Any] = {}
    for name, v in VARIANTS.items():
        item = "${item}"
        if v.per_target:  # one T2 set per stage: that set's folder is the stage's output
            args, sets = [f"--msr-test {MSR_TEST} --target {item}"], [f"{MSR_TEST}/{item}"]
            out = f"{RESTORED}/{name}/{MSR_PREFIX}{item}"
            timing = f"{TIMING}/{name}/{MSR_PREFIX}{item}.json"
        else:
            args, sets = _testset_args(v.tasks)
            out, timing = f"{RESTORED}/{name}", f"{TIMING}/{name}.json"
        artifacts = []
        if v.needs_separator:
            args.append(f"--separator-dir {SEPARATOR}")
            artifacts.append(SEPARATOR)
        if v.separates_mixture:  # the separate stage's stems instead of separating again
            args.append(f"--separated {SEPARATED}")
            artifacts.append(SEPARATED)
        if v.pretrained:
            artifacts.append(PRETRAINED)
        if v.checkpoint:  # ctx.model(name) loads <models-dir>/<name> (per target: /<group>)
            args.append(f"--models-dir {MODELS}")
            artifacts.append(f"{MODELS}/{v.checkpoint}" + (f"/{item}" if v.per_target else ""))
        others = set(modules.values()) - {modules[name]}
        # a learned variant loads its network by the name its checkpoint stores (importlib):
        # follow that architecture's module too, so editing its forward re-runs the restore
        own = [
            modules[name],
            *([architectures[v.checkpoint]] if v.checkpoint in architectures else []),
        ]
        body = {
            "cmd": " ".join(
                [
                    f"python stages/restore.py --variant {name}",
                    *args,
                    f"--out {out} --timing {timing} --no-progress",
                ]
            ),
            "deps": [*code_deps("stages/restore.py", own, others), *sets, *artifacts],
            "params": [
                *(f"variants.{key}" for key in v.reads),
                "restore",
                *(["msr.targets"] if "T2" in v.tasks else []),
            ],
            "outs": [out],
            "metrics": [{timing: {"cache": False}}],
        }
        restore[restore_stage(name)] = (
            {"foreach": "${msr.targets}", "do": body} if v.per_target else body
        )
    every_set, set_folders = _testset_args(("T1", "T2", "T3"))
    evaluate = {
        "foreach": list(VARIANTS),
        "do": {
            "cmd": " ".join(
                [
                    "python stages/evaluate.py --variant ${item}",
                    *every_set,
                    f"--restored {RESTORED}/${{item}} --out {EVAL}/${{item}} --no-progress",
                ]
            ),
            "deps": [*code_deps("stages/evaluate.py"), *set_folders, f"{RESTORED}/${{item}}"],
            "params": ["evaluate", "msr.targets"],
            "outs": [f"{EVAL}/${{item}}"],
        },
    }
    return {**restore, EVALUATE: evaluate}


#: Learned restorers trained by ``stages/train.py``: name -> training dataset folders.
LEARNED: dict[str, list[str]] = {
    "unet_mask": ["data/musicgen_like/train"],
    "wavenet": ["data/musicgen_like/train"],
}
#: Learned restorers with one model per T2 target group (seed 004's U-Former): name -> the
#: folder of the groups' training sets (``<folder>/<group>``).
PER_TARGET: dict[str, str] = {"uformer": MSR_TRAIN}
#: Modules a model's training reads besides its architecture's own (its adversary).
TRAINING_AIDS: dict[str, list[str]] = {"uformer": [f"{PACKAGE}.models.discriminator"]}


def _train_code(model: str) -> list[str]:
    """The training script's code deps for ``model``: its own architecture (and training
    aids), not the other architectures the models package registers."""
    arch = _own_modules("models")
    own = [arch[model], *TRAINING_AIDS.get(model, [])]
    others = {m for name, m in arch.items() if name != model}
    others |= {m for name, aids in TRAINING_AIDS.items() if name != model for m in aids}
    return code_deps("stages/train.py", own, others - set(own))


def train_stages() -> dict[str, Any]:
    """``train-<model>`` for every learned model whose variant is registered, and
    ``train-<model>@<group>`` for every per-target model (:data:`PER_TARGET`) over
    ``msr.targets`` (DVC's ``foreach``, like ``build_msr``): ``models/<model>/<group>``.
    The restore stage of a per-target variant depends on the whole ``models/<model>``
    folder, which DVC connects to every ``train_<model>@<group>`` output inside it."""
    from ..variants import VARIANTS

    checkpoints = {v.checkpoint for v in VARIANTS.values() if v.checkpoint}
    out: dict[str, Any] = {}
    for name, folders in LEARNED.items():
        if name not in checkpoints:
            continue
        out[train_stage(name)] = {
            "cmd": f"python stages/train.py --model {name} --train "
            f"{' '.join(folders)} --out {MODELS}/{name} --work {MODELS}/.{name}_work "
            "--no-progress",
            "deps": [*folders, *_train_code(name)],
            "params": ["seed", f"models.{name}"],
            "outs": [f"{MODELS}/{name}"],
        }
    per_target = {v.checkpoint for v in VARIANTS.values() if v.checkpoint and v.per_target}
    for name, root in PER_TARGET.items():
        if name not in per_target:
            continue
        out[train_stage(name)] = {
            "foreach": "${msr.targets}",
            "do": {
                "cmd": f"python stages/train.py --model {name} --target "
                f"${{item}} --train {root}/${{item}} --out {MODELS}/{name}/${{item}} "
                f"--work {MODELS}/.{name}_work/${{item}} --no-progress",
                "deps": [f"{root}/${{item}}", *_train_code(name)],
                "params": ["seed", f"models.{name}"],
                "outs": [f"{MODELS}/{name}/${{item}}"],
            },
        }
    return out


def _params(params_path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(params_path)
    doc = yaml.safe_load(path.read_text()) if path.is_file() else None
    return doc if isinstance(doc, dict) else {}


def msr_targets(params_path: str | Path = "params.yaml") -> list[str]:
    """``msr.targets`` of ``params.yaml``: the groups whose per-target models
    (:data:`PER_TARGET`) get a metrics file and loss plot each in ``dvc.yaml`` (DVC's
    top-level ``metrics``/``plots`` take no ``foreach``)."""
    targets = (_params(params_path).get("msr") or {}).get("targets") or []
    return [str(t) for t in targets]


def clean_music_deps(params_path: str | Path = "params.yaml") -> list[str]:
    """``[musicgen_like.clean_dir]`` when ``params.yaml`` points the T1 builder at a folder
    of the user's own clean music (``degrade.build.build_musicgen_like``), so DVC hashes
    the folder and re-runs the build when a file in it changes; else ``[]``. Regenerate
    ``dvc.yaml`` after setting it (``dvc exp run -S musicgen_like.clean_dir=...`` re-runs
    the build through the param, but only a regenerated ``dvc.yaml`` tracks the files)."""
    block = _params(params_path).get("musicgen_like") or {}
    folder = block.get("clean_dir") if isinstance(block, Mapping) else None
    return [str(folder)] if folder else []


def stages() -> dict[str, Any]:
    """Every stage of the pipeline, in execution order."""
    out: dict[str, Any] = {
        "fetch_rawstems": {
            "cmd": "python stages/fetch_rawstems.py --out data/rawstems",
            "deps": code_deps("stages/fetch_rawstems.py"),
            "params": [
                "seed",
                "data.source",
                "data.local_root",
                "data.songs",
                "data.groups",
                "data.hf",
                "data.embedded",
            ],
            "outs": ["data/rawstems"],
        },
        "index_rawstems": {
            "cmd": "python stages/index_rawstems.py --rawstems data/rawstems "
            "--index data/index.csv --splits data/splits --summary reports/dataset.json",
            "deps": ["data/rawstems", *code_deps("stages/index_rawstems.py")],
            "params": ["seed", "data.split"],
            "outs": ["data/index.csv", "data/splits"],
            "metrics": [{"reports/dataset.json": {"cache": False}}],
        },
        "build_msr": {
            "foreach": "${msr.targets}",
            "do": {
                "cmd": "python stages/build_msr.py --rawstems data/rawstems "
                f"--splits data/splits --target ${{item}} --out-test {MSR_TEST}/${{item}} "
                f"--out-train {MSR_TRAIN}/${{item}}",
                "deps": ["data/rawstems", "data/splits", *code_deps("stages/build_msr.py")],
                # key by key, so that editing msr.targets does not re-run every build
                "params": [
                    "seed",
                    "msr.n_test",
                    "msr.n_train",
                    "msr.segment_s",
                    "msr.train_segment_s",
                    "msr.sr",
                    "msr.active_db",
                    "msr.subtype",
                    "msr.degrade",
                ],
                "outs": [f"{MSR_TEST}/${{item}}", f"{MSR_TRAIN}/${{item}}"],
            },
        },
        "build_musicgen_like": {
            "cmd": "python stages/build_musicgen_like.py "
            "--rawstems data/rawstems --splits data/splits --out data/musicgen_like",
            "deps": [
                "data/rawstems",
                "data/splits",
                *clean_music_deps(),
                *code_deps("stages/build_musicgen_like.py"),
            ],
            "params": ["seed", "musicgen_like"],
            "outs": ["data/musicgen_like"],
        },
        "fetch_musicgen": {
            "cmd": "python stages/fetch_musicgen.py --rawstems data/rawstems "
            "--splits data/splits --out data/musicgen",
            "deps": ["data/rawstems", "data/splits", *code_deps("stages/fetch_musicgen.py")],
            "params": ["musicgen"],
            "outs": ["data/musicgen"],
        },
        "train_separator": {
            "cmd": "python stages/train_separator.py --rawstems data/rawstems "
            f"--splits data/splits --out {SEPARATOR} --work models/.separator_work",
            "deps": ["data/rawstems", "data/splits", *code_deps("stages/train_separator.py")],
            "params": ["seed", "separate"],
            "outs": [SEPARATOR],
        },
        **train_stages(),
        "separate": separate_stage(),
        **variant_stages(),
        "report": {
            "cmd": (f"python stages/report.py --eval {EVAL} --out reports --models {MODELS}"),
            "deps": [
                *code_deps("stages/report.py"),
                EVAL,
                RESTORED,
                MSR_TEST,
                *(folder for _, folder in MIX_TESTSETS.values()),
                *model_dirs(),
            ],
            "params": ["report"],
            "outs": [
                "reports/tables",
                "reports/plots",
                "reports/figures",
                "reports/html",
                {"reports/summary.md": {"cache": False}},
            ],
            "metrics": [
                {"reports/metrics.json": {"cache": False}},
                {"reports/models.json": {"cache": False}},
            ],
        },
    }
    return out


def model_dirs() -> list[str]:
    """Every trained model's output folder; a per-target family is one folder over its
    groups (``models/uformer``), so the list does not depend on ``msr.targets`` and a
    ``dvc exp run -S msr.targets=...`` needs no regenerated ``dvc.yaml``."""
    return [SEPARATOR, *(f"{MODELS}/{m}" for m in (*LEARNED, *PER_TARGET))]


def model_metric_files() -> list[str]:
    """Every trained model's ``metrics.json`` (in its cached model folder)."""
    per_target = [f"{MODELS}/{m}/{g}" for m in PER_TARGET for g in msr_targets()]
    return [
        f"{SEPARATOR}/metrics.json",
        *(f"{MODELS}/{m}/metrics.json" for m in LEARNED),
        *(f"{folder}/metrics.json" for folder in per_target),
    ]


#: Trained models as DVC artifacts (``dvc.yaml``'s ``artifacts:``): name -> (folder, what).
ARTIFACTS: dict[str, tuple[str, str]] = {
    "separator": (
        SEPARATOR,
        "Demucs separator (HTDemucs) trained on the training songs, or the pretrained model "
        "that separate.model names; used by every separating variant",
    ),
    "unet_mask": (f"{MODELS}/unet_mask", "Seed 000's 2D U-Net STFT mask, a T1 restorer"),
    "wavenet": (f"{MODELS}/wavenet", "Seed 000's WaveNet denoiser, a T1 restorer"),
    "uformer": (
        f"{MODELS}/uformer",
        "Seed 004's U-Former, one model per msr.targets group (<group>/), a T2 restorer",
    ),
}


def artifacts() -> dict[str, Any]:
    """``artifacts:`` of ``dvc.yaml``: every model a stage of :func:`stages` trains."""
    written = set(model_dirs())
    return {
        name: {"path": path, "type": "model", "desc": desc}
        for name, (path, desc) in ARTIFACTS.items()
        if path in written
    }


def stage_writing(out: str, targets: Sequence[str]) -> str | None:
    """The stage that writes ``out`` (a path as ``dvc.yaml`` names it), with ``targets`` as
    ``msr.targets``: ``train-unet_mask`` for ``models/unet_mask`` or a file or folder inside
    it; for a folder that several stages write below (``models/uformer``), the ``foreach``
    group's name, which ``dvc repro`` accepts for all of them; ``None`` if no stage writes
    it."""
    out = out.rstrip("/")
    inside = lambda o: out == o or out.startswith(o + "/")  # noqa: E731
    for name, stage in _stages_cached().items():
        if "foreach" not in stage:
            if any(inside(o) for o in _outs(stage)):
                return name
            continue
        below = False
        for item in foreach_items(stage, targets):
            outs = [o.replace("${item}", str(item)) for o in _outs(stage["do"])]
            if any(inside(o) for o in outs):
                return f"{name}@{item}"
            below = below or any(o.startswith(out + "/") for o in outs)
        if below:
            return name
    return None


def foreach_items(stage: Mapping[str, Any], targets: Sequence[str]) -> list[Any]:
    """The items of a ``foreach`` stage: its list, or ``targets`` (``msr.targets``) where
    it iterates ``${msr.targets}``; DVC names each ``<stage>@<item>``."""
    items = stage["foreach"]
    return list(targets) if isinstance(items, str) else list(items)


@functools.cache
def _stages_cached() -> dict[str, Any]:
    """:func:`stages`, computed once per process (it reads every module's imports)."""
    return stages()


def _outs(stage: Mapping[str, Any]) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else str(o) for o in stage.get("outs") or []]
