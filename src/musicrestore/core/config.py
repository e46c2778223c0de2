"""One strict, typed way to merge a params block over its defaults.

Every block of ``params.yaml`` (``restore:``, ``variants.<key>``, ``degrade:``,
``separate.train``, ``musicgen.<source>``, ``msr``) is read the same way: the defaults say
which keys exist and what type each one has, the given mapping overrides some of them, and
anything else is a :class:`ConfigError` whose message is one line naming the full key path,
the value and what is allowed. Without this, a typo is silently ignored and a wrong type
(YAML reads ``1e12`` as a *string*, ``hop: -512`` is a valid int) surfaces much later as a
traceback deep inside NumPy, long after the stage has started writing outputs.

Types are inferred from each default (its annotation where a dataclass field or a function
parameter has a simple one, ``float | None`` included):

- ``bool`` accepts only ``true``/``false`` (``1`` is not a bool; a bool is not an int);
- ``int`` accepts integers and integral numbers (``2048.0``, ``"1e3"``);
- ``float`` accepts any finite number, and numeric strings such as ``"1e12"``;
- ``str`` accepts strings; a list/tuple default accepts a list of items of its items' type;
- a mapping default is merged recursively (unknown keys are errors unless declared open);
- a ``None`` default, or a parameter without one, accepts any value.

Ranges are declared per call with ``fnmatch`` patterns over the dotted path *below* the
block (``"denoise.n_fft"``, ``"*n_fft"``, ``"target_chain.*"``), so one declaration can
cover a family of keys. A message quotes the value it refuses through
:func:`~musicrestore.core.errors.quote` (at most 80 characters, however large the value).

The files themselves are read here too, by the one loader of each format a user hands the
package: :func:`load_yaml` (params files: no anchors or aliases, bounded size and depth, so a
few hundred bytes cannot expand into gigabytes) and :func:`load_json` / :func:`parse_json`
(JSON configs and manifest lines: bounded size and depth). Each problem is one line naming
the file.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .errors import QUOTE_LIMIT, StageError, one_line, quote

#: ``(low, high)`` inclusive, either end ``None`` for unbounded; an optional third item
#: names what the value is (``"a probability"``) for the message.
Bound = tuple[float | None, float | None] | tuple[float | None, float | None, str]
#: ``check(value) -> None`` when fine, else the text of what is allowed.
Check = Callable[[Any], str | None]


class ConfigError(StageError):
    """A params value with an unknown key, a wrong type or out of range; one line that names
    the full key path (``variants.preclean.denoise.n_fft``), the value and what is allowed."""


class _Required:
    """Marks a key without a default (a function parameter without one): any value goes."""

    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()

_DEVICE = re.compile(r"cpu|cuda(:\d+)?|mps|auto")


def device_problem(value: Any, auto: bool = True) -> str | None:
    """``None`` for a torch device name this package accepts, else what is allowed.

    ``auto`` means CUDA when available, else the CPU; training resolves no ``auto``."""
    if isinstance(value, str) and _DEVICE.fullmatch(value) and (auto or value != "auto"):
        return None
    return "cpu, cuda, cuda:N, mps" + (" or auto" if auto else "")


@dataclasses.dataclass(frozen=True)
class _Rules:
    ranges: Mapping[str, Bound]
    positive: tuple[str, ...]
    pairs: tuple[str, ...]
    choices: Mapping[str, Sequence[Any]]
    checks: Mapping[str, Check]
    open_keys: tuple[str, ...]


def merge(
    defaults: Any,
    given: Mapping[str, Any] | None,
    where: str,
    *,
    ranges: Mapping[str, Bound] | None = None,
    positive: Iterable[str] = (),
    pairs: Iterable[str] = (),
    choices: Mapping[str, Sequence[Any]] | None = None,
    checks: Mapping[str, Check] | None = None,
    open_keys: Iterable[str] = (),
) -> Any:
    """``defaults`` updated with ``given``, type-checked and range-checked.

    Args:
        defaults: a mapping (returns a new dict) or a dataclass, class or instance (returns
            an instance built from the merged values).
        given: the params block; ``None`` keeps the defaults; anything that is not a
            mapping is an error.
        where: the block's key path in ``params.yaml``, the prefix of every message.
        ranges: ``{pattern: (low, high[, what])}``, inclusive; applies to numbers and to
            each number of a list.
        positive: patterns whose numbers must be ``> 0``.
        pairs: patterns whose value must be a ``[low, high]`` list with ``low <= high``.
        choices: ``{pattern: allowed values}``.
        checks: ``{pattern: check(value) -> None | what is allowed}``.
        open_keys: patterns of mappings that accept keys their default lacks (keyword
            arguments passed on to another library, such as HTDemucs' constructor).

    Raises:
        ConfigError: one line naming the key path, the value and what is allowed.
    """
    rules = _rules_of(
        {
            "ranges": ranges,
            "positive": positive,
            "pairs": pairs,
            "choices": choices,
            "checks": checks,
            "open_keys": open_keys,
        }
    )
    cls = None
    if dataclasses.is_dataclass(defaults):
        cls = defaults if isinstance(defaults, type) else type(defaults)
        values, hints = _dataclass_defaults(defaults), _hints(cls)
    elif isinstance(defaults, Mapping):
        values, hints = dict(defaults), {}
    else:
        raise TypeError(f"defaults must be a mapping or a dataclass, got {type(defaults)}")
    out = _merge_mapping(values, as_mapping(given, where), where, "", rules, hints, False)
    if cls is None:
        return out
    if missing := [k for k, v in out.items() if v is REQUIRED]:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    try:
        return cls(**out)
    except (TypeError, ValueError) as exc:  # the dataclass' own cross-field checks
        raise ConfigError(f"{where}: {one_line(str(exc))}") from None


def merge_kwargs(
    fn: Callable[..., Any],
    given: Mapping[str, Any] | None,
    where: str,
    *,
    skip: Iterable[str] = (),
    **rules: Any,
) -> dict[str, Any]:
    """Check ``given`` as keyword arguments of ``fn`` (its signature is the defaults); returns
    only the given keys, converted (``"1e3"`` -> ``1000.0`` for a float parameter).

    ``skip`` names parameters the caller passes itself, which the block may not set.
    ``rules`` are :func:`merge`'s keyword arguments.
    """
    defaults, hints = signature_defaults(fn, skip)
    given = as_mapping(given, where)
    merged = _merge_mapping(defaults, given, where, "", _rules_of(rules), hints, False)
    return {key: merged[key] for key in given}


def kwargs_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """Keyword defaults of ``fn``: a DSP function's signature is its params block."""
    return {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


def signature_defaults(
    fn: Callable[..., Any], skip: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``({name: default or REQUIRED}, {name: annotation})`` of ``fn``'s keyword parameters."""
    skipped = set(skip)
    params = inspect.signature(fn).parameters.values()
    defaults = {
        p.name: REQUIRED if p.default is inspect.Parameter.empty else p.default
        for p in params
        if p.name not in skipped
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    hints = _hints(fn)
    return defaults, {k: v for k, v in hints.items() if k in defaults}


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` if it is a mapping, ``{}`` for ``None``, else a :class:`ConfigError`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: got {_show(value)}; expected a mapping")
    return value


#: Every seed of the pipeline (the top-level ``seed``, ``msr.seed``, ``separate.train.seed``,
#: ...): NumPy's ``default_rng``, ``torch.manual_seed`` and the seeded hashes all take it.
SEED_RANGE: Bound = (0, 2**32 - 1, "a seed")


def pipeline_seed(params: Mapping[str, Any]) -> int:
    """The top-level ``seed`` of ``params.yaml`` (0 when absent) through :func:`merge`:
    ``seed: abc``, ``seed: [1]`` or ``seed: -1`` is a one-line :class:`ConfigError` naming
    ``seed``."""
    given = {"seed": as_mapping(params, "params").get("seed", 0)}
    return int(merge({"seed": 0}, given, "", ranges={"seed": SEED_RANGE})["seed"])


def optional_str_problem(value: Any) -> str | None:
    """A check (``checks={...}``) for a key whose default is ``None``: a string or null."""
    return None if value is None or isinstance(value, str) else "a string or null"


def str_list_problem(value: Any) -> str | None:
    """A check for a list of strings (a ``[]`` default does not say its items' type)."""
    ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    return None if ok else "a list of strings"


# ----------------------------------------------------------------------------- files

#: Largest params file :func:`load_yaml` reads (``params.yaml`` is ~16 kB; the pure-Python
#: YAML parser takes seconds per MiB).
MAX_YAML_BYTES = 2**20
#: Largest file :func:`load_json` reads (a config, a metrics file; C-parsed, fast).
MAX_JSON_BYTES = 16 * 2**20
#: Deepest nesting of mappings and lists a loaded document may have (``params.yaml``: 5).
MAX_DEPTH = 32


def load_yaml(path: str | os.PathLike[str], what: str = "params file") -> Any:
    """The YAML document of ``path`` (``None`` for an empty one), read safely.

    Anchors and aliases (``&name``, ``*name``, ``<<: *name``) are refused: a params file has
    no use for them, and a few hundred bytes of nested aliases ("billion laughs") expand into
    a structure of billions of items that every later step (a merge, a message quoting it)
    would walk. The file is at most :data:`MAX_YAML_BYTES` and nested at most
    :data:`MAX_DEPTH` levels. Only plain YAML types are built (``yaml.SafeLoader``).

    Raises:
        StageError: one line naming ``path``: missing, too large, not UTF-8 text, not valid
            YAML (with the line), an anchor or alias, nested too deep.
    """
    import yaml

    path = Path(path)
    text = _read_text(path, what, MAX_YAML_BYTES)

    class Loader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else 0
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise StageError(
                    f"{path}: line {line}: anchors and aliases (&name, *name) are not "
                    f"allowed in a {what}; write the values out"
                )
            nested = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
            self.depth += nested
            if self.depth > MAX_DEPTH:
                raise StageError(f"{path}: line {line}: nested deeper than {MAX_DEPTH} levels")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= nested

    loader = Loader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or [""])[0]
        raise StageError(f"{path}: invalid YAML ({one_line(problem)}{_yaml_line(exc)})") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # a scalar YAML cannot build
        raise StageError(f"{path}: invalid YAML ({one_line(str(exc))})") from None
    finally:
        loader.dispose()


def load_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """The JSON document of ``path``: at most :data:`MAX_JSON_BYTES`, nested at most
    :data:`MAX_DEPTH` levels; anything else is a :class:`StageError` of one line naming it."""
    path = Path(path)
    return parse_json(_read_text(path, what, MAX_JSON_BYTES), str(path))


def parse_json(text: str, where: str) -> Any:
    """``json.loads(text)``, bounded: a document nested deeper than :data:`MAX_DEPTH` levels
    (which ``json`` answers with a ``RecursionError`` past ~1000) or not JSON is one line
    starting with ``where`` (a file, or ``file:line``)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StageError(f"{where}: not valid JSON ({one_line(str(exc))})") from None
    except RecursionError:
        raise StageError(f"{where}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise StageError(f"{where}: not valid JSON ({one_line(str(exc))})") from None
    if _too_deep(value, MAX_DEPTH):
        raise StageError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    return value


def _read_text(path: Path, what: str, limit: int) -> str:
    if not path.is_file():
        raise StageError(f"{path}: {what} not found")
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise StageError(f"{path}: larger than {limit // 2**20} MiB; not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise StageError(f"{path}: not a text file (UTF-8)") from None


def _yaml_line(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f", line {mark.line + 1}" if mark is not None else ""


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests mappings and lists more than ``limit`` levels (iteratively: no
    recursion, whatever the depth)."""
    todo: list[tuple[Any, int]] = [(value, 1)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, dict | list):
            if depth > limit:
                return True
            todo.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


# ----------------------------------------------------------------------------- internals


def _rules_of(kw: Mapping[str, Any]) -> _Rules:
    if unknown := set(kw) - {f.name for f in dataclasses.fields(_Rules)}:
        raise TypeError(f"unknown rule(s) {sorted(unknown)}")
    return _Rules(
        dict(kw.get("ranges") or {}),
        tuple(kw.get("positive") or ()),
        tuple(kw.get("pairs") or ()),
        dict(kw.get("choices") or {}),
        dict(kw.get("checks") or {}),
        tuple(kw.get("open_keys") or ()),
    )


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # an unresolvable forward reference: fall back to the defaults' types
        return {}


def _dataclass_defaults(obj: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if not f.init:
            continue
        if not isinstance(obj, type):
            values[f.name] = copy.deepcopy(getattr(obj, f.name))
        elif f.default is not dataclasses.MISSING:
            values[f.name] = copy.deepcopy(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = f.default_factory()
        else:
            values[f.name] = REQUIRED
    return values


def _merge_mapping(
    defaults: Mapping[str, Any],
    given: Mapping[str, Any],
    path: str,
    rel: str,
    rules: _Rules,
    hints: Mapping[str, Any],
    is_open: bool,
) -> dict[str, Any]:
    out = copy.deepcopy(dict(defaults))
    unknown = [k for k in given if k not in out]
    if unknown and not is_open:
        known = ", ".join(str(k) for k in out) or "(none)"
        shown = ", ".join(_key(k) for k in unknown[:_MAX_KEYS_SHOWN])
        if len(unknown) > _MAX_KEYS_SHOWN:
            shown += f" and {len(unknown) - _MAX_KEYS_SHOWN} more"
        raise ConfigError(f"{path}: unknown key(s) {shown}; known: {known}")
    for key, value in given.items():
        sub = f"{rel}.{_key(key)}" if rel else _key(key)
        out[key] = _coerce(
            value, out.get(key, REQUIRED), hints.get(key), _join(path, key), sub, rules
        )
    return out


def _join(path: str, key: Any) -> str:
    return f"{path}.{_key(key)}" if path else _key(key)


#: Most unknown keys one message lists.
_MAX_KEYS_SHOWN = 10


def _key(key: Any) -> str:
    """A key as a message shows it: a string as it is, anything else as its ``repr``; cut to
    the quoting limit either way (a key comes from the user's file as much as a value)."""
    return one_line(key, QUOTE_LIMIT) if isinstance(key, str) else quote(key)


_SIMPLE = {bool: "bool", int: "int", float: "float", str: "str"}


def _kind(default: Any, hint: Any) -> tuple[str, bool]:
    """``(kind, accepts None)`` from the annotation when it is simple, else the default."""
    nullable = default is None or default is REQUIRED
    if hint is not None:
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            rest = [a for a in args if a is not type(None)]
            nullable = nullable or len(rest) < len(args)
            if len(rest) == 1 and rest[0] in _SIMPLE:
                return _SIMPLE[rest[0]], nullable
        elif hint in _SIMPLE:
            return _SIMPLE[hint], nullable
    return _kind_of(default), nullable


def _kind_of(value: Any) -> str:
    if value is None or value is REQUIRED:
        return "any"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    try:  # NumPy scalars
        import numpy as np

        if isinstance(value, np.integer):
            return "int"
        if isinstance(value, np.floating):
            return "float"
    except ImportError:  # pragma: no cover
        pass
    return "any"


_EXPECTED = {
    "bool": "true or false",
    "int": "an integer",
    "float": "a finite number",
    "str": "a string",
    "list": "a list",
    "mapping": "a mapping",
}


def _show(value: Any) -> str:
    return quote(value)


def _coerce(value: Any, default: Any, hint: Any, path: str, rel: str, rules: _Rules) -> Any:
    kind, nullable = _kind(default, hint)
    if value is None:
        if nullable or kind == "any":
            return None
        raise ConfigError(f"{path}: got null; expected {_EXPECTED[kind]}")
    out: Any
    if kind == "mapping":
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: got {_show(value)}; expected a mapping")
        is_open = any(fnmatchcase(rel, p) for p in rules.open_keys)
        out = _merge_mapping(default, value, path, rel, rules, {}, is_open)
    elif kind == "list":
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: got {_show(value)}; expected a list")
        item = _item_default(default)
        out = type(value)(
            _convert(v, item, _kind_of(item), f"{path}[{i}]") for i, v in enumerate(value)
        )
    elif kind == "any":
        out = copy.deepcopy(value)
    else:
        out = _convert(value, default, kind, path, nullable)
    _check_rules(out, path, rel, rules)
    return out


def _item_default(default: Sequence[Any]) -> Any:
    """A representative item of a list default: its common type (ints widen to float)."""
    kinds = {_kind_of(v) for v in default}
    if kinds == {"int", "float"}:
        return 0.0
    return default[0] if len(kinds) == 1 else None


def _convert(value: Any, default: Any, kind: str, path: str, nullable: bool = False) -> Any:
    if kind in ("any", "list", "mapping"):
        return copy.deepcopy(value)
    out: Any = None
    if kind == "bool":
        out = value if isinstance(value, bool) else None
    elif kind == "str":
        out = value if isinstance(value, str) else None
    elif kind == "float":
        x = _number(value)
        out = x if x is not None and math.isfinite(x) else None
    elif kind == "int":
        x = _number(value)
        out = int(x) if x is not None and math.isfinite(x) and x.is_integer() else None
    if out is None:
        expected = _EXPECTED[kind] + (" or null" if nullable else "")
        raise ConfigError(f"{path}: got {_show(value)}; expected {expected}")
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    try:
        return _float(value) if isinstance(value, int | float) or hasattr(value, "dtype") else None
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float:
    """``float(value)``; an integer too large for a float (YAML reads ``0x`` and 400 hex
    digits as one) is an infinity, so that it fails the checks rather than raise."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _numbers(value: Any) -> list[float]:
    items = value if isinstance(value, list | tuple) else [value]
    return [_float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


def _check_rules(value: Any, path: str, rel: str, rules: _Rules) -> None:
    def fail(expected: str) -> None:
        raise ConfigError(f"{path}: got {_show(value)}; expected {expected}")

    if value is None:
        return
    for pattern in rules.pairs:
        if fnmatchcase(rel, pattern) and isinstance(value, list | tuple):
            nums = _numbers(value)
            if len(value) != 2 or len(nums) != 2 or nums[0] > nums[1]:
                fail("[low, high] with low <= high")
    for pattern, bound in rules.ranges.items():
        if fnmatchcase(rel, pattern):
            lo, hi = bound[0], bound[1]
            integer = isinstance(value, int) and not isinstance(value, bool)
            default_what = "an integer" if integer else "a number"
            what = bound[2] if len(bound) > 2 else default_what  # type: ignore[misc]
            for x in _numbers(value):
                if (lo is not None and x < lo) or (hi is not None and x > hi):
                    if lo is not None and hi is not None:
                        fail(f"{what} in [{lo:g}, {hi:g}]")
                    fail(f"{what} >= {lo:g}" if lo is not None else f"{what} <= {hi:g}")
    for pattern in rules.positive:
        if fnmatchcase(rel, pattern) and any(x <= 0 for x in _numbers(value)):
            fail("a number > 0")
    for pattern, allowed in rules.choices.items():
        if fnmatchcase(rel, pattern) and value not in allowed:
            fail("one of " + ", ".join(str(a) for a in allowed))
    for pattern, check in rules.checks.items():
        if fnmatchcase(rel, pattern) and (problem := check(value)) is not None:
            fail(problem)
