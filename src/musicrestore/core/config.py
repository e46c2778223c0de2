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
cover a family of keys.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from .errors import StageError

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
        raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from None


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
    unknown = [str(k) for k in given if k not in out]
    if unknown and not is_open:
        known = ", ".join(str(k) for k in out) or "(none)"
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {known}")
    for key, value in given.items():
        sub = f"{rel}.{key}" if rel else str(key)
        out[key] = _coerce(
            value, out.get(key, REQUIRED), hints.get(key), _join(path, key), sub, rules
        )
    return out


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


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
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


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
        return float(value) if isinstance(value, int | float) or hasattr(value, "dtype") else None
    except (TypeError, ValueError):
        return None


def _numbers(value: Any) -> list[float]:
    items = value if isinstance(value, list | tuple) else [value]
    return [float(v) for v in items if isinstance(v, int | float) and not isinstance(v, bool)]


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
