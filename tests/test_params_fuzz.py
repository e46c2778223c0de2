"""Property-based fuzzing of every stage's params parsing (hypothesis).

Each stage script reads the blocks of ``params.yaml`` it uses in a ``settings(params, args)``
function, before any work, through :func:`musicrestore.core.config.merge` (the rules live
beside the library code that uses each block; docs/architecture.md, "One of each"). Here
the real ``params.yaml`` (or ``profiles/tiny.yaml`` merged over it) gets one top-level block
mutated (a wrong type, an out-of-range number, an unknown key, a deleted key, nested junk, a
huge string, the whole block replaced), is written to a params file, read back by the one
loader (:func:`musicrestore.core.stage.load_params`) and handed to every stage's
``settings``. Each must either accept it or raise a user error that ``main_guard`` prints as
one line and exit 1; any other exception (``TypeError``, ``KeyError``, ...) is a bug. A few
real subprocess runs of ``python stages/<x>.py --params bad.yaml ...`` check the exit code,
the single stderr line and the absence of a traceback end to end.

Size: :data:`MAX_EXAMPLES` (150) generated mutations, each parsed by the 21 entries of
:data:`STAGE_ARGS` (every stage script; ``train`` once per model, ``restore`` once per
variant), so 3150 parses; plus the issue's symptoms one by one (:data:`SYMPTOMS`), both valid
files, a file of nested aliases, and 7 subprocess runs. About 25 s on two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from musicrestore.core.errors import USER_ERRORS, is_user_error
from musicrestore.core.stage import format_error, load_params
from musicrestore.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
#: Generated mutations of the main property test (each is checked by every stage below);
#: ``PARAMS_FUZZ_EXAMPLES=5000`` searches longer.
MAX_EXAMPLES = int(os.environ.get("PARAMS_FUZZ_EXAMPLES", "150"))
#: Longest one-line message a params error may print (values are quoted to 80 characters).
MAX_MESSAGE = 1000
#: A string far longer than any message may quote.
HUGE = "x" * 100_000

#: Each stage's arguments besides ``--params`` (paths need not exist: only parsing runs).
STAGE_ARGS: dict[str, tuple[str, list[str]]] = {
    "fetch_rawstems": ("fetch_rawstems", ["--out", "o"]),
    "index_rawstems": (
        "index_rawstems",
        ["--rawstems", "r", "--index", "i.csv", "--splits", "s", "--summary", "s.json"],
    ),
    "build_msr": (
        "build_msr",
        [
            "--rawstems",
            "r",
            "--splits",
            "s",
            "--target",
            "Voc",
            "--out-test",
            "a",
            "--out-train",
            "b",
        ],
    ),
    "build_musicgen_like": (
        "build_musicgen_like",
        ["--rawstems", "r", "--splits", "s", "--out", "o"],
    ),
    "fetch_musicgen": ("fetch_musicgen", ["--rawstems", "r", "--splits", "s", "--out", "o"]),
    "train_separator": ("train_separator", ["--rawstems", "r", "--splits", "s", "--out", "o"]),
    **{
        f"train-{model}": (
            "train",
            ["--model", model, "--train", "t", "--out", "o"]
            + (["--target", "Voc"] if model == "uformer" else []),
        )
        for model in ("unet_mask", "wavenet", "uformer")
    },
    **{
        f"restore-{name}": (
            "restore",
            ["--variant", name, "--testset", "musicgen=m", "--msr-test", "t", "--out", "o"],
        )
        for name in VARIANTS
    },
    "separate": ("separate", ["--testset", "musicgen=m", "--msr-test", "t", "--out", "o"]),
    "evaluate": (
        "evaluate",
        ["--variant", "identity", "--msr-test", "t", "--restored", "r", "--out", "o"],
    ),
    "report": ("report", ["--eval", "e", "--out", "o"]),
}


@functools.cache
def stage_module(script: str) -> ModuleType:
    """``stages/<script>.py`` imported under another name (its ``__main__`` block stays off)."""
    from tests.helpers import load_script

    return load_script(f"stages/{script}.py", f"_stage_{script}")


def base_params(profile: bool) -> dict[str, Any]:
    """``params.yaml``, with ``profiles/tiny.yaml`` merged over it key by key when ``profile``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if profile:

        def deep(into: dict[str, Any], over: dict[str, Any]) -> None:
            for key, value in over.items():
                if isinstance(value, dict) and isinstance(into.get(key), dict):
                    deep(into[key], value)
                else:
                    into[key] = value

        deep(params, yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text()))
    return params


BASE = {False: base_params(False), True: base_params(True)}


def user_error_line(exc: BaseException, stage: str) -> str:
    """The line ``main_guard`` prints for ``exc``; fails the test for any other exception."""
    assert isinstance(exc, USER_ERRORS) and is_user_error(exc), (
        f"{stage}: {type(exc).__name__} is not a user error: {str(exc)[:300]}"
    )
    line = format_error(exc)
    assert "\n" not in line and 0 < len(line) <= MAX_MESSAGE, f"{stage}: {line[:300]!r}"
    return line


def check_all_stages(path: Path) -> dict[str, str | None]:
    """``{stage: None (accepted) or its one-line error}`` for the params file ``path``."""
    try:
        params = load_params(path)
    except Exception as exc:  # the loader's own refusal: the same line for every stage
        return dict.fromkeys(STAGE_ARGS, user_error_line(exc, "load_params"))
    out: dict[str, str | None] = {}
    for stage, (script, argv) in STAGE_ARGS.items():
        module = stage_module(script)
        args = module.parse_args(["--params", str(path), *argv])
        try:
            module.settings(params, args)
        except Exception as exc:
            out[stage] = user_error_line(exc, stage)
        else:
            out[stage] = None
    return out


def write_params(folder: Path, params: Any, name: str = "params.yaml") -> Path:
    path = folder / name
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: fast for huge strings
    path.write_text(yaml.dump(params, Dumper=dumper, sort_keys=False, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


# ------------------------------------------------------------------------------ strategies

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.5, 0.5, 1.5, 1e-300, 1e300, -1e300]),
    _TEXT,
    st.sampled_from(["abc", "1e12", "-1", "nan", "inf", "", "../x", "Voc", "cpu", "auto"]),
    st.just(len(HUGE)).map(lambda n: "x" * n),  # a huge string (mapped: short to print)
)
#: Nested junk: lists and mappings of scalars, a few levels deep.
JUNK = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_TEXT, st.integers(-5, 5)), inner, max_size=4),
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path below ``value`` (mapping keys and list indices), ``()`` included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, (*prefix, i))


def _numeric_variants(value: Any) -> list[Any]:
    """Out-of-range and wrongly typed versions of a number already in params.yaml."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    return [-value, -1, 0, value * 1000, value / 3, str(value), [value], float("nan")]


def _at(params: dict[str, Any], path: tuple[Any, ...]) -> Any:
    for key in path:
        params = params[key]
    return params


#: Keys a block does not have, some of them names a stage passes itself.
UNKNOWN_KEYS = ["bogus", "seed", "targets", "cfg", "shard", "out_dir", "progress", 7, None]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """``(what was done, the mutated params)``: one top-level block changed."""
    params = copy.deepcopy(BASE[draw(st.booleans())])
    block = draw(st.sampled_from(sorted(params)))
    paths = list(_paths(params[block], (block,)))
    kind = draw(st.sampled_from(["replace", "replace", "numeric", "unknown key", "delete"]))
    if kind == "unknown key" and (maps := [p for p in paths if isinstance(_at(params, p), dict)]):
        path = draw(st.sampled_from(maps))
        path = (*path, draw(st.sampled_from(UNKNOWN_KEYS)))
    else:
        path = draw(st.sampled_from(paths))
    *parents, last = path
    node = _at(params, tuple(parents))
    if kind == "numeric" and (options := _numeric_variants(node[last])):
        node[last] = draw(st.sampled_from(options))
    elif kind == "delete" and parents:
        del node[last]
    elif kind == "unknown key" and isinstance(node, dict):
        node[last] = draw(JUNK)
    else:
        kind = "replace"
        node[last] = draw(JUNK)
    return f"{kind} {'.'.join(map(str, path))}", params


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("profile", [False, True], ids=["params.yaml", "tiny profile"])
def test_valid_params_are_accepted_by_every_stage(profile: bool, folder: Path) -> None:
    path = write_params(folder, BASE[profile], f"valid{int(profile)}.yaml")
    assert check_all_stages(path) == dict.fromkeys(STAGE_ARGS)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure is reproducible as it is
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutation=mutations())
def test_mutated_params_give_one_line_or_are_accepted(
    mutation: tuple[str, dict[str, Any]], folder: Path
) -> None:
    what, params = mutation
    path = write_params(folder, params, "fuzz.yaml")
    results = check_all_stages(path)
    assert set(results) == set(STAGE_ARGS), what


#: ``_mutate``'s value that deletes the key.
DELETE = object()
UFORMER_ARCH = ("models", "uformer", "presets", "small", "arch")

#: The symptoms of the issue: (block path, bad value, a stage that reads it, what its line says).
SYMPTOMS = [
    (("seed",), "abc", "fetch_rawstems", "seed: got 'abc'; expected an integer"),
    (("seed",), -1, "train-unet_mask", "seed: got -1; expected a seed"),
    (("data",), 5, "index_rawstems", "data: got 5; expected a mapping"),
    (("msr",), [1, 2], "build_msr", "msr: got [1, 2]; expected a mapping"),
    (("msr",), [1, 2], "evaluate", "msr: got [1, 2]; expected a mapping"),
    (("msr",), [1, 2], "restore-identity", "msr: got [1, 2]; expected a mapping"),
    (("evaluate", "segment_s"), "abc", "evaluate", "evaluate.segment_s: got 'abc'"),
    (("evaluate", "bogus"), 1, "evaluate", "evaluate: unknown key(s) bogus"),
    (("evaluate", "confidence"), 2, "evaluate", "evaluate.confidence: got 2"),
    (("compute", "workers"), "all", "separate", "compute.workers: got 'all'"),
    (("report", "bogus"), 1, "report", "report: unknown key(s) bogus"),
    (("report",), 5, "report", "report: got 5; expected a mapping"),
    (("msr", "cfg"), {}, "build_msr", "msr: unknown key(s) cfg"),
    (("musicgen_like", "out_dir"), "x", "build_musicgen_like", "unknown key(s) out_dir"),
    (("musicgen",), "simulated", "fetch_musicgen", "musicgen: got 'simulated'"),
    (("separate", "eval"), [], "train_separator", "separate.eval: got []; expected a mapping"),
    (("separate", "eval", "segment_s"), "abc", "train_separator", "separate.eval.segment_s"),
    (("data", "embedded", "sr"), "abc", "fetch_rawstems", "data.embedded.sr: got 'abc'"),
    (("data", "split", "test_fraction"), 2, "index_rawstems", "data.split.test_fraction: got 2"),
    (("msr", "targets"), ["../x"], "evaluate", "msr.targets: got ['../x']"),
    (("msr", "targets"), ["Vox"], "build_msr", "msr.targets: got ['Vox']"),
    (("msr", "n_test"), DELETE, "build_msr", "msr: missing required key(s) n_test"),
    (("musicgen", "source"), "local", "fetch_musicgen", "musicgen.local.folder: not set"),
    (("data", "embedded", "seed"), 3, "fetch_rawstems", "data.embedded: unknown key(s) seed"),
    (("report", "excerpt_s"), [5.0], "report", "report.excerpt_s: got [5.0]"),
    (UFORMER_ARCH + ("channels",), "abc", "train-uformer", "arch.channels: got 'abc'"),
]


def _mutate(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    params = copy.deepcopy(BASE[False])
    node = _at(params, path[:-1])
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return params


@pytest.mark.parametrize("path, value, stage, expected", SYMPTOMS)
def test_each_reported_symptom_is_one_line(
    path: tuple[str, ...], value: Any, stage: str, expected: str, folder: Path
) -> None:
    params_file = write_params(folder, _mutate(path, value), "symptom.yaml")
    line = check_all_stages(params_file)[stage]
    assert line is not None and expected in line, line


def test_main_with_check_params_exits_1_with_one_line(folder: Path) -> None:
    """In process, through ``main_guard``: ``--check-params`` stops after the checks."""
    script, argv = STAGE_ARGS["report"]
    main = stage_module(script).main
    good = write_params(folder, BASE[False], "good.yaml")
    assert main(["--params", str(good), *argv, "--check-params"]) is None
    bad = write_params(folder, _mutate(("report", "n_examples"), "two"), "bad.yaml")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        main(["--params", str(bad), *argv, "--check-params"])
    assert exc.value.code == 1
    assert err.getvalue().strip().splitlines()[-1].startswith("error: report.n_examples: got")


def test_yaml_aliases_are_refused_in_one_line(folder: Path) -> None:
    """The loader refuses anchors and aliases: the nested-alias "billion laughs" is one line."""
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for p, n in zip("abcdefgh", "bcdefghi", strict=True):
        laughs.append(f"{n}: &{n} [" + ", ".join([f"*{p}"] * 9) + "]")
    path = folder / "aliases.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + "\n" + "\n".join(laughs) + "\n")
    results = check_all_stages(path)
    assert all(line is not None and "anchors and aliases" in line for line in results.values())


#: Real runs: (stage, block path, bad value); each must exit 1 with one line and no traceback.
SUBPROCESS_CASES = [
    ("fetch_rawstems", ("seed",), "abc"),
    ("index_rawstems", ("data",), 5),
    ("build_msr", ("msr",), [1, 2]),
    ("evaluate", ("compute", "workers"), -1),
    ("report", ("report",), 5),
    ("train_separator", ("separate", "eval", "max_segments"), "all"),
]


def test_stage_scripts_exit_1_with_one_line_and_no_traceback(folder: Path) -> None:
    """``python stages/<x>.py --params bad.yaml ...``: the stage stops before any work, with
    exit code 1 and one line on stderr; a valid file with ``--check-params`` exits 0 silently.
    The runs go two at a time (the test machine has two cores)."""
    env = {**os.environ, "MUSICRESTORE_TRACKING": "0", "HF_HUB_OFFLINE": "1"}
    runs = []
    for i, (stage, path, value) in enumerate(SUBPROCESS_CASES):
        params_file = write_params(folder, _mutate(path, value), f"sub{i}.yaml")
        runs.append((stage, params_file, 1))
    runs.append(("report", write_params(folder, BASE[True], "sub_ok.yaml"), 0))
    results = []
    for start in range(0, len(runs), 2):
        procs = []
        for stage, params_file, code in runs[start : start + 2]:
            script, argv = STAGE_ARGS[stage]
            cmd = [sys.executable, str(ROOT / "stages" / f"{script}.py"), "--params"]
            cmd += [str(params_file), *argv] + (["--check-params"] if code == 0 else [])
            proc = subprocess.Popen(
                cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            procs.append((stage, code, proc))
        for stage, code, proc in procs:
            _, err = proc.communicate(timeout=120)
            results.append((stage, code, proc.returncode, err))
    for stage, code, returncode, err in results:
        assert returncode == code, f"{stage}: exit {returncode}: {err[-2000:]}"
        assert "Traceback" not in err, f"{stage}: {err[-2000:]}"
        lines = err.strip().splitlines()
        if code == 0:
            assert not lines, f"{stage}: {err}"
        else:
            assert len(lines) == 1 and lines[0].startswith("error: "), f"{stage}: {err}"


def test_every_stage_script_has_settings() -> None:
    """Every stage script parses its params in ``settings`` (the fuzzing above relies on it)."""
    scripts = {p.stem for p in (ROOT / "stages").glob("*.py")}
    assert scripts == {script for script, _ in STAGE_ARGS.values()}
    for script, argv in {script: argv for script, argv in STAGE_ARGS.values()}.items():
        module = stage_module(script)
        assert callable(module.settings), script
        assert isinstance(module.parse_args(["--params", "p", *argv]), argparse.Namespace)
