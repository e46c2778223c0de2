"""The layers of docs/architecture.md hold: no package imports one above it.

Every import statement of every module counts, lazy ones inside functions too (they run when
the code does); ``if TYPE_CHECKING:`` blocks do not (they never run).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from musicrestore import pipeline

SRC = Path(pipeline.SRC)
PKG = SRC / "musicrestore"

#: package (or root module) -> what it may import (docs/architecture.md, "The layers").
BELOW: dict[str, set[str]] = {
    "core": set(),
    "compute": {"core"},
    "data": {"core"},
    "tracking": {"core"},
    "dsp": {"core"},
    "degrade": {"core", "compute", "data"},
    "evaluation": {"core", "compute", "data"},
    "models": {"core", "data", "dsp"},
    "separation": {"core", "data", "models"},
    "train": {"core", "data", "degrade", "evaluation", "models", "separation", "tracking"},
    "variants": {"core", "compute", "data", "dsp", "models", "separation"},
    "report": {"core", "data", "evaluation"},
}
#: Single modules allowed one more layer, with the reason in docs/architecture.md.
EXCEPTIONS: dict[str, set[str]] = {"musicrestore.data.musicgen": {"degrade"}}
#: The entry points may import everything.
TOP = {"app", "cli", "pipeline", "__main__"}


def _layer(module: str) -> str | None:
    """``musicrestore.data.taxonomy`` -> ``data``; the package itself -> ``None``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        out.append((".".join(parts), path))
    return out


def test_every_package_is_in_the_table() -> None:
    layers = {_layer(m) for m, _ in _modules()} - {None}
    assert layers <= set(BELOW) | TOP, sorted(layers - set(BELOW) - TOP)


@pytest.mark.parametrize("module,path", _modules(), ids=[m for m, _ in _modules()])
def test_no_module_imports_a_layer_above_its_own(module: str, path: Path) -> None:
    layer = _layer(module)
    if layer is None or layer in TOP:
        return
    explicit, parents = pipeline._imports(path, module, SRC)
    allowed = BELOW[layer] | EXCEPTIONS.get(module, set()) | {layer}
    # importing a submodule runs its package's __init__ (the bare package) first: allowed
    wrong = {m for m in explicit | parents if _layer(m) not in allowed | {None}}
    assert not wrong, f"{module} ({layer}) imports {sorted(wrong)}"


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    """A lazy upward import (inside a function) is caught: the rule cannot pass vacuously."""
    pkg = tmp_path / "musicrestore" / "core"
    pkg.mkdir(parents=True)
    (tmp_path / "musicrestore" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (tmp_path / "musicrestore" / "variants").mkdir()
    (tmp_path / "musicrestore" / "variants" / "__init__.py").write_text("")
    (tmp_path / "musicrestore" / "variants" / "registry.py").write_text("")
    bad = pkg / "bad.py"
    bad.write_text("def f():\n    from ..variants import registry\n")
    explicit, _ = pipeline._imports(bad, "musicrestore.core.bad", tmp_path)
    assert {_layer(m) for m in explicit} == {"variants"}
