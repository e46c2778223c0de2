"""The DVC pipeline, generated: ``dvc.yaml`` is written from this module and the registry.

``python -m musicrestore pipeline`` rewrites ``dvc.yaml``; ``python -m musicrestore pipeline
--check`` fails when the file on disk differs (a test runs the check). Two things are derived
here rather than typed by hand, because a hand-written copy drifts:

- **The variant stages.** ``restore@<variant>`` and ``evaluate@<variant>`` come from
  :data:`musicrestore.variants.VARIANTS`: each variant's params (its own block and the ones
  it borrows, ``uses``), its artifacts (the separator, a checkpoint) and the test sets of
  the tasks it applies to are declared once, at its registration.
- **Code dependencies.** Each stage depends on its script and on every project module the
  script imports, directly or through other modules, found by reading the import statements
  (:func:`module_closure`; imports inside functions count, since they run when the code
  does). Editing a module therefore re-runs exactly the stages whose code reads it. Two
  modules are left out on purpose: :mod:`musicrestore.core.stage` (atomic folders, one-line
  errors) and :mod:`musicrestore.tracking` (MLflow records) shape no output. A restore stage
  depends on its own variant's module, not on the modules of the other variants that the
  ``variants`` package also registers.

Paths of data and reports live here and in the generated ``dvc.yaml`` only; stage scripts
receive them as arguments. The set of T2 groups stays a parameter (``msr.targets``): the
``build_msr`` stages iterate it with DVC's own ``foreach``.

DVC's ``foreach`` needs the same number of entries in every item's ``deps``/``params``
list; lists shorter than the longest are padded by repeating their first entry, which DVC
treats as the same dependency.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "musicrestore"
ROOT = Path(__file__).resolve().parents[2]  # the repository (src/musicrestore/pipeline.py)
SRC = ROOT / "src"
DVC_YAML = ROOT / "dvc.yaml"

#: Modules that shape no stage output (see the module docstring); never a code dependency.
NOT_OUTPUT_SHAPING = frozenset({f"{PACKAGE}.core.stage", f"{PACKAGE}.tracking"})

#: Mixture test sets: name -> (task, folder). T2 sets are ``MSR_TEST/<group>``.
MIX_TESTSETS: dict[str, tuple[str, str]] = {
    "musicgen_like": ("T1", "data/musicgen_like/test"),
    "musicgen": ("T3", "data/musicgen"),
}
MSR_TEST = "data/msr/test"
MSR_TRAIN = "data/msr/train"
SEPARATOR = "models/separator"
MODELS = "models"
RESTORED = "data/restored"
EVAL = "reports/eval"
TIMING = "reports/timing"


# ----------------------------------------------------------------------------- imports


def module_file(name: str, src: Path = SRC) -> Path | None:
    """The file of module ``name`` (``a.b`` -> ``src/a/b.py`` or ``src/a/b/__init__.py``)."""
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, name: str | None, src: Path) -> tuple[set[str], set[str]]:
    """Project modules that ``path`` (module ``name``, or a script) imports anywhere, and the
    packages above them (their ``__init__`` runs first, so they are dependencies; but what an
    ``__init__`` imports is followed only where the package itself is imported)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
            found.update(t for t in targets if t.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if name is None:
                    continue  # a script has no package to be relative to
                parts = name.split(".") if is_package else name.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            for alias in node.names:  # `from pkg import submodule`
                if module_file(f"{base}.{alias.name}", src) is not None:
                    found.add(f"{base}.{alias.name}")
    parents = {".".join(mod.split(".")[:i]) for mod in found for i in range(1, mod.count(".") + 1)}
    exists = lambda mods: {m for m in mods if module_file(m, src) is not None}  # noqa: E731
    return exists(found), exists(parents - found)


def module_closure(
    roots: Iterable[str | Path], skip: Iterable[str] = (), src: Path = SRC
) -> set[str]:
    """Every project module that ``roots`` (module names or script paths) import, directly
    or transitively. Modules in ``skip`` are neither included nor followed."""
    skipped = set(skip)
    seen: set[str] = set()  # dependencies
    followed: set[str] = set()  # modules whose imports were read
    todo: list[tuple[Path, str | None]] = []
    for root in roots:
        if isinstance(root, Path):
            todo.append((root, None))
        elif root not in skipped and (path := module_file(root, src)) is not None:
            todo.append((path, root))
    while todo:
        path, name = todo.pop()
        if name is not None:
            if name in followed:
                continue
            followed.add(name)
            seen.add(name)
            seen.update({".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)})
        explicit, parents = _imports(path, name, src)
        seen.update(parents)
        todo.extend((module_file(m, src), m) for m in explicit - skipped - followed)  # type: ignore[misc]
    return seen - skipped


def code_deps(
    script: str, extra_modules: Sequence[str] = (), skip: Iterable[str] = ()
) -> list[str]:
    """``script`` plus the files of every output-shaping module it (and ``extra_modules``)
    import, as repository-relative paths in a stable order."""
    skipped = set(skip) | NOT_OUTPUT_SHAPING
    mods = module_closure([ROOT / script], skipped)
    mods |= module_closure(extra_modules, NOT_OUTPUT_SHAPING)
    files = sorted(str(module_file(m).relative_to(ROOT)) for m in mods)  # type: ignore[union-attr]
    return [script, *files]


# ------------------------------------------------------------------------------ stages


def _variant_modules() -> dict[str, str]:
    from .variants import VARIANTS

    return {name: v.fn.__module__ for name, v in VARIANTS.items()}


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


def _foreach(items: Mapping[str, Mapping[str, Any]], do: Mapping[str, Any]) -> dict[str, Any]:
    """A ``foreach`` over a dict whose items carry their ``deps``/``params`` lists; DVC wants
    one template, so the lists become padded, numbered fields (see the module docstring)."""
    width = {key: max(len(item[key]) for item in items.values()) for key in ("deps", "params")}
    flat: dict[str, dict[str, Any]] = {}
    for name, item in items.items():
        fields = {k: v for k, v in item.items() if k not in width}
        for key, n in width.items():
            values = list(item[key])
            values += [values[0]] * (n - len(values))
            fields.update({f"{key}{i}": v for i, v in enumerate(values)})
        flat[name] = fields
    body = dict(do)
    body["deps"] = [f"${{item.deps{i}}}" for i in range(width["deps"])]
    body["params"] = [f"${{item.params{i}}}" for i in range(width["params"])]
    order = ["cmd", "deps", "params", "outs", "metrics"]
    return {"foreach": flat, "do": {k: body[k] for k in order if k in body}}


def variant_stages() -> dict[str, Any]:
    """``restore`` and ``evaluate``: one ``foreach`` item per registered variant."""
    from .variants import VARIANTS

    modules = _variant_modules()
    # the variants package registers every variant module; each stage follows only its own
    skip = {
        f"{PACKAGE}.variants.{path.stem}"
        for path in (SRC / PACKAGE / "variants").glob("*.py")
        if path.stem not in ("__init__", "registry", "restore")
    }
    eval_code = code_deps("stages/evaluate.py")
    restore, evaluate = {}, {}
    for name, v in VARIANTS.items():
        args, sets = _testset_args(v.tasks)
        artifacts = []
        if v.needs_separator:
            args.append(f"--separator-dir {SEPARATOR}")
            artifacts.append(SEPARATOR)
        if v.checkpoint:  # ctx.model(name) loads <models-dir>/<name> (per target: /<group>)
            args.append(f"--models-dir {MODELS}")
            artifacts.append(f"{MODELS}/{v.checkpoint}")
        targets = ["msr.targets"] if "T2" in v.tasks else []
        restore[name] = {
            "args": " ".join(args),
            "deps": code_deps("stages/restore.py", [modules[name]], skip) + sets + artifacts,
            "params": [f"variants.{key}" for key in v.reads] + ["restore", *targets],
        }
        evaluate[name] = {
            "args": " ".join(_testset_args(v.tasks)[0]),
            "deps": eval_code + sets + [f"{RESTORED}/{name}"],
            "params": ["evaluate", *targets],
        }
    return {
        "restore": _foreach(
            restore,
            {
                "cmd": "python stages/restore.py --params params.yaml --variant ${key} "
                f"${{item.args}} --out {RESTORED}/${{key}} --timing {TIMING}/${{key}}.json "
                "--no-progress",
                "outs": [f"{RESTORED}/${{key}}"],
                "metrics": [{f"{TIMING}/${{key}}.json": {"cache": False}}],
            },
        ),
        "evaluate": _foreach(
            evaluate,
            {
                "cmd": "python stages/evaluate.py --params params.yaml --variant ${key} "
                f"${{item.args}} --restored {RESTORED}/${{key}} --out {EVAL}/${{key}} "
                "--no-progress",
                "outs": [f"{EVAL}/${{key}}"],
            },
        ),
    }


#: Learned restorers trained by ``stages/train.py``: name -> training dataset folders.
LEARNED: dict[str, list[str]] = {
    "unet_mask": ["data/musicgen_like/train"],
    "wavenet": ["data/musicgen_like/train"],
}
#: Learned restorers with one model per T2 target group (seed 004's U-Former): name -> the
#: folder of the groups' training sets (``<folder>/<group>``).
PER_TARGET: dict[str, str] = {"uformer": MSR_TRAIN}


def train_stages() -> dict[str, Any]:
    """``train@<model>`` for every learned model whose variant is registered, and
    ``train_<model>@<group>`` for every per-target model (:data:`PER_TARGET`) over
    ``msr.targets`` (DVC's ``foreach``, like ``build_msr``): ``models/<model>/<group>``.
    The restore stage of a per-target variant depends on the whole ``models/<model>``
    folder, which DVC connects to every ``train_<model>@<group>`` output inside it."""
    from .variants import VARIANTS

    checkpoints = {v.checkpoint for v in VARIANTS.values() if v.checkpoint}
    items = {
        name: {"data": " ".join(folders), "dep": folders[0]}
        for name, folders in LEARNED.items()
        if name in checkpoints
    }
    out: dict[str, Any] = {}
    if items:
        out["train"] = {
            "foreach": items,
            "do": {
                "cmd": "python stages/train.py --params params.yaml --model ${key} --train "
                f"${{item.data}} --out {MODELS}/${{key}} --work {MODELS}/.${{key}}_work "
                "--no-progress",
                "deps": ["${item.dep}", *code_deps("stages/train.py")],
                "params": ["seed", "models.${key}"],
                "outs": [f"{MODELS}/${{key}}"],
            },
        }
    per_target = {v.checkpoint for v in VARIANTS.values() if v.checkpoint and v.per_target}
    for name, root in PER_TARGET.items():
        if name not in per_target:
            continue
        out[f"train_{name}"] = {
            "foreach": "${msr.targets}",
            "do": {
                "cmd": f"python stages/train.py --params params.yaml --model {name} --target "
                f"${{item}} --train {root}/${{item}} --out {MODELS}/{name}/${{item}} "
                f"--work {MODELS}/.{name}_work/${{item}} --no-progress",
                "deps": [f"{root}/${{item}}", *code_deps("stages/train.py")],
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
            "cmd": "python stages/fetch_rawstems.py --params params.yaml --out data/rawstems",
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
            "cmd": "python stages/index_rawstems.py --params params.yaml --rawstems data/rawstems "
            "--index data/index.csv --splits data/splits --summary reports/dataset.json",
            "deps": ["data/rawstems", *code_deps("stages/index_rawstems.py")],
            "params": ["seed", "data.split"],
            "outs": ["data/index.csv", "data/splits"],
            "metrics": [{"reports/dataset.json": {"cache": False}}],
        },
        "build_msr": {
            "foreach": "${msr.targets}",
            "do": {
                "cmd": "python stages/build_msr.py --params params.yaml --rawstems data/rawstems "
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
                    "msr.workers",
                    "msr.subtype",
                    "msr.degrade",
                ],
                "outs": [f"{MSR_TEST}/${{item}}", f"{MSR_TRAIN}/${{item}}"],
            },
        },
        "build_musicgen_like": {
            "cmd": "python stages/build_musicgen_like.py --params params.yaml "
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
            "cmd": "python stages/fetch_musicgen.py --params params.yaml --rawstems data/rawstems "
            "--splits data/splits --out data/musicgen",
            "deps": ["data/rawstems", "data/splits", *code_deps("stages/fetch_musicgen.py")],
            "params": ["musicgen"],
            "outs": ["data/musicgen"],
        },
        "train_separator": {
            "cmd": "python stages/train_separator.py --params params.yaml --rawstems data/rawstems "
            f"--splits data/splits --out {SEPARATOR} --work models/.separator_work",
            "deps": ["data/rawstems", "data/splits", *code_deps("stages/train_separator.py")],
            "params": ["seed", "separate"],
            "outs": [SEPARATOR],
        },
        **train_stages(),
        **variant_stages(),
        "report": {
            "cmd": (
                f"python stages/report.py --params params.yaml --eval {EVAL} --out reports"
                f" --models {MODELS}"
            ),
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


HEADER = """\
# GENERATED by `python -m musicrestore pipeline` from src/musicrestore/pipeline.py and the
# variant registry: edit those, then regenerate (a test fails while this file is stale).
# Stages are named by what they do (restore@preclean, build_msr@Voc); each declares the
# params, data and code it reads (code: its script and every project module it imports) and
# nothing else. Wall-clock timings are uncached metrics (reports/timing/), never inside a
# cached output, so a re-run on unchanged inputs reproduces every output byte for byte.
"""


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


def render() -> str:
    """The text of ``dvc.yaml``."""
    per_target = [f"{MODELS}/{m}/{g}" for m in PER_TARGET for g in msr_targets()]
    gan_curves = ["train_recon", "train_gen", "train_feat", "train_disc"]
    doc = {
        "stages": stages(),
        "metrics": model_metric_files(),
        "plots": [
            {f"{SEPARATOR}/loss.csv": {"x": "step", "y": "loss"}},
            *({f"{MODELS}/{m}/loss.csv": {"x": "step", "y": "train_loss"}} for m in LEARNED),
            *(
                {f"{folder}/loss.csv": {"x": "step", "y": list(gan_curves)}}
                for folder in per_target
            ),
            {"reports/plots": {"template": "bar_horizontal", "x": "mean", "y": "variant"}},
        ],
    }
    body = yaml.safe_dump(doc, sort_keys=False, width=100, default_flow_style=False)
    return HEADER + body


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m musicrestore pipeline [--check]``."""
    parser = argparse.ArgumentParser(
        prog="musicrestore pipeline", description="write (or check) dvc.yaml"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if dvc.yaml is stale")
    parser.add_argument("--path", type=Path, default=DVC_YAML, help="dvc.yaml to write/check")
    args = parser.parse_args(argv)
    text = render()
    current = args.path.read_text() if args.path.is_file() else ""
    if args.check:
        if current == text:
            return 0
        diff = difflib.unified_diff(
            current.splitlines(), text.splitlines(), "dvc.yaml", "generated", lineterm="", n=1
        )
        print("\n".join(list(diff)[:60]), file=sys.stderr)
        print("error: dvc.yaml is stale; run `python -m musicrestore pipeline`", file=sys.stderr)
        return 1
    if current != text:
        args.path.write_text(text)
        print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
