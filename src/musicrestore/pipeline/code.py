"""Code dependencies of a stage, read from the import statements of its script.

Every project module a script imports, directly or through other modules (imports inside
functions count: they run when the code does; ``if TYPE_CHECKING:`` blocks do not), is a
dependency of its stage; a package the stage reads entirely is one folder; a package
``__init__`` that holds only its docstring is none. See :mod:`musicrestore.pipeline`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

PACKAGE = "musicrestore"
ROOT = Path(__file__).resolve().parents[3]  # the repository (src/musicrestore/pipeline/code.py)
SRC = ROOT / "src"

#: Modules that shape no stage output (see the module docstring); never a code dependency.
NOT_OUTPUT_SHAPING = frozenset({f"{PACKAGE}.tracking"})
#: The foundation layer (docs/architecture.md): every stage reads most of it (errors, config,
#: audio I/O, the stage guard), so a stage that reads any of its modules depends on the
#: whole folder. One entry instead of five per stage; the cost is that editing one of its
#: modules a stage does not read (the overlap-add engine, the checkpoint allowlist) re-runs
#: that stage too.
FOUNDATION = frozenset({f"{PACKAGE}.core"})

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
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
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


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:`` (imports for the
    type checker only; they never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def module_closure(
    roots: Iterable[str | Path], skip: Iterable[str] = (), src: Path = SRC
) -> set[str]:
    """Every project module that ``roots`` (module names or script paths) import, directly
    or transitively. Modules in ``skip`` (and, for a package, the modules inside it) are
    neither included nor followed."""
    skipped = _Skip(skip)
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
        todo.extend(
            (module_file(m, src), m)  # type: ignore[misc]
            for m in explicit - followed
            if m not in skipped
        )
    return {m for m in seen if m not in skipped}


class _Skip:
    """Membership in a set of module names or inside one of them (``a.b`` holds ``a.b.c``)."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def __contains__(self, module: object) -> bool:
        parts = str(module).split(".")
        return any(".".join(parts[:i]) in self.names for i in range(1, len(parts) + 1))


def code_deps(
    script: str, extra_modules: Sequence[str] = (), skip: Iterable[str] = ()
) -> list[str]:
    """``script`` plus the files of every output-shaping module it (and ``extra_modules``)
    import, as repository-relative paths in a stable order; a package whose every module is
    among them is one folder (:func:`collapse_packages`)."""
    skipped = set(skip) | NOT_OUTPUT_SHAPING
    mods = module_closure([ROOT / script], skipped)
    mods |= module_closure(extra_modules, NOT_OUTPUT_SHAPING)
    files = {f for m in mods if (f := module_file(m)) is not None and not _inert(f)}
    return [script, *collapse_packages(files)]


def _inert(path: Path) -> bool:
    """A package ``__init__.py`` that holds nothing but its docstring (and ``from __future__``
    imports): it cannot shape an output, so it is no dependency of its own (a folder
    dependency on its package still covers it)."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return all(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in body)


def collapse_packages(files: Iterable[Path], src: Path = SRC) -> list[str]:
    """Repository-relative paths of ``files``, with every package folder below the top
    package whose ``.py`` files are all among them given as the folder alone (outermost
    first), so a stage that reads a whole package lists one directory dependency; a
    :data:`FOUNDATION` package is one folder as soon as one of its modules is read. A module
    that shapes no output (:data:`NOT_OUTPUT_SHAPING`) does not keep its package from being
    one folder: editing it then re-runs the stage, which is harmless."""
    wanted = {Path(f).resolve() for f in files}
    top = src / PACKAGE
    neutral = {p.resolve() for m in NOT_OUTPUT_SHAPING if (p := module_file(m, src))}
    out: list[str] = []

    foundation = {p.resolve().parent for m in FOUNDATION if (p := module_file(m, src))}

    def covered(folder: Path) -> bool:
        mine = {f.resolve() for f in folder.rglob("*.py") if not _inert(f)}
        if folder.resolve() in foundation:
            return bool(mine & wanted)
        return bool(mine & wanted) and mine <= wanted | neutral

    def visit(folder: Path) -> None:
        for path in sorted(folder.iterdir()):
            if path.is_dir() and (path / "__init__.py").is_file():
                if covered(path):
                    out.append(str(path.relative_to(ROOT)))
                else:
                    visit(path)
            elif path.suffix == ".py" and path.resolve() in wanted:
                out.append(str(path.relative_to(ROOT)))

    visit(top)
    return out
