"""dvc.yaml agrees with the registry and with what each stage's code imports.

These run in a second: they read dvc.yaml and the sources, and never run DVC.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from musicrestore import pipeline
from musicrestore.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def _code_files(deps: list[str]) -> set[Path]:
    """The Python files a stage's deps name, folders expanded (as DVC hashes them)."""
    files: set[Path] = set()
    for dep in deps:
        path = ROOT / dep
        if path.is_dir() and dep.startswith("src/"):
            files |= {p.resolve() for p in path.rglob("*.py")}
        elif dep.endswith(".py"):
            files.add(path.resolve())
    return files


def test_dvc_yaml_is_generated_from_the_current_code() -> None:
    """Adding a variant or an import without regenerating dvc.yaml fails here."""
    assert pipeline.main(["--check"]) == 0, "run `python -m musicrestore pipeline`"


def _restore(stages: dict, name: str) -> dict:
    """A variant's restore stage body (the ``do`` of a per-target variant's ``foreach``)."""
    stage = stages[f"restore-{name}"]
    assert ("foreach" in stage) == VARIANTS[name].per_target, name
    return stage.get("do", stage)


def test_every_registered_variant_has_its_restore_and_evaluate_stage(dvc_yaml: dict) -> None:
    stages = dvc_yaml["stages"]
    assert stages["evaluate"]["foreach"] == list(VARIANTS)
    for name in VARIANTS:
        assert f"--variant {name} " in _restore(stages, name)["cmd"]
    per_target = _restore(stages, "uformer")  # one stage per group: retraining Gtr re-runs Gtr
    assert stages["restore-uformer"]["foreach"] == "${msr.targets}"
    assert "--target ${item}" in per_target["cmd"]
    assert {"data/msr/test/${item}", "models/uformer/${item}"} <= set(per_target["deps"])
    assert per_target["outs"] == ["data/restored/uformer/msr_${item}"]


def test_stage_names_resolve_as_dvc_names_them() -> None:
    assert pipeline.restore_stage("uformer", "Gtr") == "restore-uformer@Gtr"
    assert pipeline.evaluate_stage("unet_mask") == "evaluate@unet_mask"
    assert pipeline.stage_writing("data/restored/uformer/msr_Gtr", ["Voc", "Gtr"]) == (
        "restore-uformer@Gtr"
    )
    assert pipeline.stage_writing("reports/eval/wavenet", ["Voc"]) == "evaluate@wavenet"


def test_no_stage_lists_an_entry_twice(dvc_yaml: dict) -> None:
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        for key in ("deps", "params", "outs"):
            entries = [str(e) for e in body.get(key, [])]
            assert len(entries) == len(set(entries)), (name, key)


def test_variant_stages_declare_exactly_their_params_and_artifacts(dvc_yaml: dict) -> None:
    from musicrestore.models import ARCHITECTURES

    stages = dvc_yaml["stages"]
    arch_files = {
        name: pipeline.module_file(cls.__module__).resolve() for name, cls in ARCHITECTURES.items()
    }
    variant_files = {
        v.fn.__module__: pipeline.module_file(v.fn.__module__).resolve() for v in VARIANTS.values()
    }
    for name, variant in VARIANTS.items():
        stage = _restore(stages, name)
        assert [p for p in stage["params"] if p.startswith("variants.")] == [
            f"variants.{key}" for key in variant.reads
        ]
        deps = stage["deps"]
        assert (pipeline.SEPARATOR in deps) == variant.needs_separator, name
        assert ("--separator-dir" in stage["cmd"]) == variant.needs_separator, name
        ckpt = f"{pipeline.MODELS}/{variant.checkpoint}" if variant.checkpoint else None
        if ckpt and variant.per_target:
            ckpt += "/${item}"
        assert {d for d in deps if d.startswith("models/")} == (
            {pipeline.SEPARATOR} if variant.needs_separator else set()
        ) | ({ckpt} if ckpt else set()), name
        # each restore stage reads its own variant's module, not the other variants'
        files = _code_files(deps)
        own = variant_files[variant.fn.__module__]
        assert own in files, name
        imported_by_own = {  # a variant module may build on another one (snmf on preclean)
            pipeline.module_file(m).resolve()
            for m in pipeline.module_closure([variant.fn.__module__])
        }
        others = set(variant_files.values()) - imported_by_own
        assert not others & files, (name, sorted(str(p) for p in others & files))
        # a learned variant's restore reads the network its checkpoint names (the model is
        # built by name at run time, so only the generator can see this dependency)
        if variant.checkpoint in arch_files:
            assert arch_files[variant.checkpoint] in files, name
            assert not (set(arch_files.values()) - {arch_files[variant.checkpoint]}) & files


def test_training_stages_read_their_own_architecture_only(dvc_yaml: dict) -> None:
    from musicrestore.models import ARCHITECTURES

    stages = dvc_yaml["stages"]
    arch_files = {
        name: pipeline.module_file(cls.__module__).resolve() for name, cls in ARCHITECTURES.items()
    }
    trained = {"unet_mask": stages["train-unet_mask"], "wavenet": stages["train-wavenet"]}
    trained["uformer"] = stages["train-uformer"]["do"]
    for name, stage in trained.items():
        files = _code_files(stage["deps"])
        assert arch_files[name] in files, name
        assert not (set(arch_files.values()) - {arch_files[name]}) & files, name


def test_module_closure_follows_imports_anywhere_but_not_package_inits(tmp_path: Path) -> None:
    pkg = tmp_path / "musicrestore"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from . import b\n\ndef f():\n    from .sub import c  # lazy: still a dependency\n",
        "b.py": "import numpy\n",
        "sub/__init__.py": "from . import d  # runs when sub is imported by name\n",
        "sub/c.py": "from ..b import x\n",
        "sub/d.py": "",
        "sub/e.py": "from .. import a\n",
        "unused.py": "",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    mods = pipeline.module_closure(["musicrestore.sub.c"], src=tmp_path)
    # c imports b; its package `sub` runs first, but what sub/__init__ imports is not followed
    assert mods == {"musicrestore", "musicrestore.sub", "musicrestore.sub.c", "musicrestore.b"}
    mods = pipeline.module_closure(["musicrestore.sub.e"], src=tmp_path)
    assert mods == {
        "musicrestore",
        "musicrestore.sub",
        "musicrestore.sub.e",
        "musicrestore.a",
        "musicrestore.b",
        "musicrestore.sub.c",
        "musicrestore.sub.d",  # a imports `from .sub import c`: sub's __init__ runs, imports d
    }
    script = tmp_path / "stage.py"
    script.write_text("from musicrestore.sub import d\n")
    assert pipeline.module_closure([script], src=tmp_path) == {
        "musicrestore",
        "musicrestore.sub",
        "musicrestore.sub.d",
    }
    assert pipeline.module_closure(
        ["musicrestore.sub.e"], skip={"musicrestore.a"}, src=tmp_path
    ) == {
        "musicrestore",
        "musicrestore.sub",
        "musicrestore.sub.e",
    }


def _imported_at_runtime(script: str, extra: str | None = None) -> set[str]:
    """Project modules in ``sys.modules`` after importing a stage script (without running it)
    and, if given, the module ``extra``."""
    code = textwrap.dedent(
        f"""
        import importlib, importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("stage_under_test", {str(ROOT / script)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if {extra!r}:
            importlib.import_module({extra!r})
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "musicrestore")))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "stages").glob("*.py")))
def test_static_analysis_sees_every_module_a_stage_imports(script: str) -> None:
    """The import-time modules of each stage script are a subset of what the static closure
    declares (plus the modules left out on purpose and, for restore, the other variants)."""
    rel = f"stages/{script}"
    declared = pipeline.module_closure([ROOT / rel])
    variant_modules = {
        f"musicrestore.variants.{p.stem}" for p in (ROOT / "src/musicrestore/variants").glob("*.py")
    }
    missed = _imported_at_runtime(rel) - declared - pipeline.NOT_OUTPUT_SHAPING - variant_modules
    assert not missed, f"{rel} imports {sorted(missed)} but the static closure misses them"


def test_every_module_a_stage_runs_is_a_declared_dependency(dvc_yaml: dict) -> None:
    """Independent of the generator: import each stage's script (plus, for a restore stage,
    its variant's module; for a training stage, its architecture) in a fresh interpreter and
    check that every project module that runs is covered by the stage's deps in dvc.yaml
    (files, or folders expanded), bar the modules that shape no output and, by design, the
    other variants (architectures) that the variants (models) package registers."""
    from musicrestore.models import ARCHITECTURES

    def files_of(modules: set[str]) -> set[Path]:
        return {pipeline.module_file(m).resolve() for m in modules if pipeline.module_file(m)}

    neutral = {
        p.resolve()
        for m in pipeline.NOT_OUTPUT_SHAPING
        for p in (ROOT / "src" / m.replace(".", "/")).rglob("*.py")
    } | files_of(set(pipeline.NOT_OUTPUT_SHAPING))
    variant_modules = {v.fn.__module__ for v in VARIANTS.values()}
    arch_modules = {cls.__module__ for cls in ARCHITECTURES.values()}
    runtime: dict[tuple[str, str | None], set[Path]] = {}
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        script = body["cmd"].split()[1]
        extra, others = None, set()
        if name.startswith("restore-"):
            extra = VARIANTS[name.removeprefix("restore-")].fn.__module__
            others = variant_modules - pipeline.module_closure([extra])
        elif "--model " in body["cmd"]:
            extra = ARCHITECTURES[body["cmd"].split("--model ")[1].split()[0]].__module__
            others = arch_modules - {extra}
        key = (script, extra)
        if key not in runtime:
            runtime[key] = files_of(_imported_at_runtime(script, extra))
        # ... and what only those others import (S-NMF and the pre-clean DSP, for instance)
        reached = pipeline.module_closure([ROOT / script, *([extra] if extra else [])], others)
        only_others = pipeline.module_closure(others) - reached
        ran = {p for p in runtime[key] - neutral - files_of(only_others) if not pipeline._inert(p)}
        missing = ran - _code_files(body["deps"])
        assert not missing, f"{name}: {sorted(str(p.relative_to(ROOT)) for p in missing)}"


def test_a_clean_music_folder_in_params_becomes_a_dependency_of_the_t1_build(
    tmp_path: Path,
) -> None:
    params = tmp_path / "params.yaml"
    assert pipeline.clean_music_deps(params) == []  # no params file
    params.write_text(yaml.safe_dump({"musicgen_like": {"clean_dir": None}}))
    assert pipeline.clean_music_deps(params) == []
    params.write_text(yaml.safe_dump({"musicgen_like": {"clean_dir": "data/my_music"}}))
    assert pipeline.clean_music_deps(params) == ["data/my_music"]


LOCK = """\
schema: '2.0'
stages:
  fetch_rawstems:
    cmd: python stages/fetch_rawstems.py --out data/rawstems
    outs:
    - path: data/rawstems
      hash: md5
      md5: aaa.dir
  train_uformer@Voc:
    cmd: python stages/train.py --model uformer --target Voc
    outs:
    - path: models/uformer/Voc
      hash: md5
      md5: bbb.dir
  restore-identity:
    cmd: python stages/restore.py --variant identity
    outs:
    - path: data/restored/identity
      hash: md5
      md5: ccc.dir
    - path: reports/timing/identity.json
      hash: md5
      md5: t1
"""


def test_stale_lock_entries_are_found_pruned_and_fail_the_check(tmp_path: Path) -> None:
    """DVC keeps the entry of a renamed stage: --check names it, --prune-lock removes it and
    leaves every other line as DVC wrote it."""
    from musicrestore.pipeline import lock

    path = tmp_path / "dvc.lock"
    path.write_text(LOCK)
    names = {"fetch_rawstems", "train-uformer@Voc", "restore-identity"}
    assert lock.stale_entries(path, names) == ["train_uformer@Voc"]
    assert lock.prune(path, names) == ["train_uformer@Voc"]
    old_entry = LOCK[LOCK.index("  train_uformer@Voc:") : LOCK.index("  restore-identity:")]
    assert path.read_text() == LOCK.replace(old_entry, "")
    assert lock.prune(path, names) == []  # nothing left to remove
    assert lock.stage_names(
        {"a": {"cmd": "x"}, "b": {"foreach": "${msr.targets}", "do": {}}, "c": {"foreach": [1]}},
        ["Voc", "Gtr"],
    ) == {"a", "b@Voc", "b@Gtr", "c@1"}

    (tmp_path / "dvc.yaml").write_text(pipeline.render())
    stale = yaml.safe_load(LOCK)
    stale["stages"] = {"train_uformer@Voc": stale["stages"]["train_uformer@Voc"]}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(stale))
    assert pipeline.main(["--check", "--path", str(tmp_path / "dvc.yaml")]) == 1
    assert pipeline.main(["--prune-lock", "--path", str(tmp_path / "dvc.yaml")]) == 0
    assert pipeline.main(["--check", "--path", str(tmp_path / "dvc.yaml")]) == 0


def test_compare_lock_names_the_stages_whose_outputs_differ(tmp_path: Path) -> None:
    """Another machine's run against the committed lock, matched by output path (renamed
    stages still compare); timings are not content."""
    from musicrestore.pipeline import lock

    ours, theirs = tmp_path / "ours.lock", tmp_path / "theirs.lock"
    ours.write_text(LOCK.replace("train_uformer@Voc", "train-uformer@Voc"))
    theirs.write_text(LOCK.replace("md5: t1", "md5: t2"))
    assert lock.compare(ours, theirs) == {}  # renamed stage, same bytes; timing ignored
    theirs.write_text(LOCK.replace("bbb.dir", "bbx.dir").replace("ccc.dir", "ccx.dir"))
    assert lock.compare(ours, theirs) == {
        "train-uformer@Voc": ["models/uformer/Voc"],
        "restore-identity": ["data/restored/identity"],
    }
