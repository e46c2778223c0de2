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


def _item_list(item: dict, key: str) -> list[str]:
    """The deps/params of one foreach item, without the padding (see pipeline._foreach)."""
    n = sum(1 for k in item if k.startswith(key) and k[len(key) :].isdigit())
    return list(dict.fromkeys(item[f"{key}{i}"] for i in range(n)))


def test_dvc_yaml_is_generated_from_the_current_code() -> None:
    """Adding a variant or an import without regenerating dvc.yaml fails here."""
    assert pipeline.main(["--check"]) == 0, "run `python -m musicrestore pipeline`"


def test_every_registered_variant_has_its_restore_and_evaluate_stage(dvc_yaml: dict) -> None:
    for group in ("restore", "evaluate"):
        assert list(dvc_yaml["stages"][group]["foreach"]) == list(VARIANTS)


def test_variant_stages_declare_exactly_their_params_and_artifacts(dvc_yaml: dict) -> None:
    restore = dvc_yaml["stages"]["restore"]["foreach"]
    for name, variant in VARIANTS.items():
        item = restore[name]
        params = _item_list(item, "params")
        assert [p for p in params if p.startswith("variants.")] == [
            f"variants.{key}" for key in variant.reads
        ]
        deps = _item_list(item, "deps")
        assert (pipeline.SEPARATOR in deps) == variant.needs_separator, name
        assert ("--separator-dir" in item["args"]) == variant.needs_separator, name
        # each restore stage reads its own variant's module, not the other variants'
        own = pipeline.module_file(variant.fn.__module__).relative_to(ROOT).as_posix()
        assert own in deps
        others = {
            pipeline.module_file(v.fn.__module__).relative_to(ROOT).as_posix()
            for v in VARIANTS.values()
        } - set(pipeline.code_deps("stages/restore.py", [variant.fn.__module__]))
        assert not others & set(deps), name


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


def _imported_at_runtime(script: str) -> set[str]:
    """Project modules in ``sys.modules`` after importing a stage script (without running it)."""
    code = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("stage_under_test", {str(ROOT / script)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
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


def test_stage_code_deps_in_dvc_yaml_match_the_imports(dvc_yaml: dict) -> None:
    stages = dvc_yaml["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = body["cmd"].split()[1]
        if "foreach" in stage and isinstance(stage["foreach"], dict):
            continue  # the variant stages: checked above, per variant
        declared = {d for d in body["deps"] if d.endswith(".py")}
        assert declared == set(pipeline.code_deps(script)), name


def test_a_clean_music_folder_in_params_becomes_a_dependency_of_the_t1_build(
    tmp_path: Path,
) -> None:
    params = tmp_path / "params.yaml"
    assert pipeline.clean_music_deps(params) == []  # no params file
    params.write_text(yaml.safe_dump({"musicgen_like": {"clean_dir": None}}))
    assert pipeline.clean_music_deps(params) == []
    params.write_text(yaml.safe_dump({"musicgen_like": {"clean_dir": "data/my_music"}}))
    assert pipeline.clean_music_deps(params) == ["data/my_music"]
