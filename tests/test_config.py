"""The one strict, typed params merge (musicrestore.core.config) and every block that uses it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from musicrestore.core import config
from musicrestore.core.config import ConfigError, device_problem, merge, merge_kwargs
from musicrestore.core.stage import USER_ERRORS, StageError
from musicrestore.data.musicgen import fetch_musicgen
from musicrestore.degrade import chains
from musicrestore.degrade.build import build_msr, check_params
from musicrestore.train.separator import SeparatorTrainConfig, config_from_params
from musicrestore.variants import VARIANTS, VariantError, build_context
from musicrestore.variants.registry import merge_params
from musicrestore.variants.restore import RESTORE_DEFAULTS, restore_settings
from tests.test_stage import laughs

DEFAULTS = {
    "n": 3,
    "x": 0.5,
    "flag": True,
    "name": "cpu",
    "opt": None,
    "pair": [1.0, 2.0],
    "sub": {"k": 1, "deep": {"z": 2.0}},
}


def one_line_error(exc: pytest.ExceptionInfo[ConfigError], *words: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_defaults_come_back_unchanged_and_are_not_shared():
    out = merge(DEFAULTS, None, "blk")
    assert out == DEFAULTS
    out["sub"]["k"] = 99
    assert DEFAULTS["sub"]["k"] == 1


def test_values_are_converted_to_the_defaults_type():
    out = merge(DEFAULTS, {"x": "1e12", "n": 2048.0, "pair": [0, "3"], "opt": [1, 2]}, "blk")
    assert out["x"] == 1e12 and isinstance(out["x"], float)  # YAML reads 1e12 as a string
    assert out["n"] == 2048 and isinstance(out["n"], int)
    assert out["pair"] == [0.0, 3.0]
    assert out["opt"] == [1, 2]  # a None default takes anything
    assert merge(DEFAULTS, {"x": 2}, "blk")["x"] == 2.0  # an int is a fine float


@pytest.mark.parametrize(
    "given,path,expected",
    [
        ({"n": "abc"}, "blk.n", "an integer"),
        ({"n": 2.5}, "blk.n", "an integer"),
        ({"n": True}, "blk.n", "an integer"),  # a bool is not an int
        ({"x": "abc"}, "blk.x", "a finite number"),
        ({"x": [1]}, "blk.x", "a finite number"),
        ({"x": "nan"}, "blk.x", "a finite number"),
        ({"x": None}, "blk.x", "a finite number"),
        ({"flag": 1}, "blk.flag", "true or false"),
        ({"name": 5}, "blk.name", "a string"),
        ({"pair": 3}, "blk.pair", "a list"),
        ({"pair": [1, "x"]}, "blk.pair[1]", "a finite number"),
        ({"sub": 5}, "blk.sub", "a mapping"),
        ({"sub": {"deep": {"z": "big"}}}, "blk.sub.deep.z", "a finite number"),
        ({"sub": {"deep": {"y": 1}}}, "blk.sub.deep", "unknown key(s) y; known: z"),
        ({"typo": 1}, "blk", "unknown key(s) typo"),
    ],
)
def test_wrong_types_and_unknown_keys_name_the_full_path(given, path, expected):
    with pytest.raises(ConfigError) as exc:
        merge(DEFAULTS, given, "blk")
    msg = one_line_error(exc, f"{path}: ", expected)
    if "unknown" not in expected:
        assert "got " in msg  # the value is shown


def test_a_block_that_is_not_a_mapping_is_an_error():
    with pytest.raises(ConfigError) as exc:
        merge(DEFAULTS, 5, "restore")  # type: ignore[arg-type]
    one_line_error(exc, "restore: got 5; expected a mapping")


def test_declared_ranges_positive_pairs_choices_checks_and_open_keys():
    rules = {
        "ranges": {"x": (0.0, 1.0, "a probability"), "sub.k": (0, 10)},
        "positive": ("n", "*.z"),
        "pairs": ("pair",),
        "choices": {"name": ("cpu", "gpu")},
        "checks": {"opt": lambda v: None if v != "bad" else "anything but 'bad'"},
        "open_keys": ("sub.deep",),
    }
    for given, words in [
        ({"x": 1.5}, "blk.x: got 1.5; expected a probability in [0, 1]"),
        ({"sub": {"k": 11}}, "blk.sub.k: got 11; expected an integer in [0, 10]"),
        ({"n": 0}, "blk.n: got 0; expected a number > 0"),
        ({"sub": {"deep": {"z": -1}}}, "blk.sub.deep.z: got -1.0; expected a number > 0"),
        ({"pair": [3, 1]}, "blk.pair: got [3.0, 1.0]; expected [low, high] with low <= high"),
        ({"pair": [1, 2, 3]}, "blk.pair"),
        ({"name": "tpu"}, "blk.name: got 'tpu'; expected one of cpu, gpu"),
        ({"opt": "bad"}, "blk.opt: got 'bad'; expected anything but 'bad'"),
    ]:
        with pytest.raises(ConfigError) as exc:
            merge(DEFAULTS, given, "blk", **rules)
        one_line_error(exc, words)
    ok = merge(DEFAULTS, {"x": 1, "sub": {"deep": {"extra": "kwarg"}}}, "blk", **rules)
    assert ok["x"] == 1.0 and ok["sub"]["deep"] == {"z": 2.0, "extra": "kwarg"}


@dataclass
class _Cfg:
    steps: int = 10
    rate: float | None = None
    model: dict = field(default_factory=lambda: {"depth": 4})


def test_dataclass_defaults_use_annotations_and_return_an_instance():
    cfg = merge(_Cfg, {"rate": "0.5", "model": {"depth": 2}}, "train")
    assert cfg == _Cfg(steps=10, rate=0.5, model={"depth": 2})
    with pytest.raises(ConfigError) as exc:
        merge(_Cfg, {"rate": "fast"}, "train")
    one_line_error(exc, "train.rate: got 'fast'; expected a finite number or null")


def _fn(a: int, b: float | None = None, *, c: str = "x", out_dir: str = "") -> None: ...


def test_merge_kwargs_checks_a_signature_and_returns_only_given_keys():
    assert merge_kwargs(_fn, {"b": "2", "a": 1}, "blk", skip=("out_dir",)) == {"b": 2.0, "a": 1}
    for given, words in [
        ({"b": "two"}, "blk.b: got 'two'; expected a finite number or null"),
        ({"a": "x"}, "blk.a: got 'x'; expected an integer"),
        ({"out_dir": "/"}, "blk: unknown key(s) out_dir"),
    ]:
        with pytest.raises(ConfigError) as exc:
            merge_kwargs(_fn, given, "blk", skip=("out_dir",))
        one_line_error(exc, words)


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:0", "cuda:12", "mps", "auto"])
def test_device_names(name):
    assert device_problem(name) is None


@pytest.mark.parametrize("name", ["tpu9", "cuda:", "gpu", "CPU", 0, None])
def test_bad_device_names(name):
    assert device_problem(name) == "cpu, cuda, cuda:N, mps or auto"
    assert device_problem("auto", auto=False) is not None


def test_config_errors_are_user_errors():
    assert issubclass(ConfigError, StageError) and issubclass(ConfigError, USER_ERRORS)


# ------------------------------------------------------------- every block goes through it


@pytest.mark.parametrize(
    "section,words",
    [
        ({"chunk_s": "abc"}, "restore.chunk_s: got 'abc'; expected a finite number"),
        ({"chunk_s": [1]}, "restore.chunk_s: got [1]"),
        ({"chunk_s": 0.05}, "restore.chunk_s: got 0.05; expected a number >= 0.1"),
        ({"overlap_s": 20.0}, "restore.overlap_s: got 20.0; expected at most chunk_s / 2"),
        ({"context_s": -1}, "restore.context_s: got -1.0; expected a number >= 0"),
        ({"device": "tpu9"}, "restore.device: got 'tpu9'; expected cpu, cuda, cuda:N, mps"),
        ({"chunk": 3}, "restore: unknown key(s) chunk"),
        (5, "restore: got 5; expected a mapping"),
    ],
)
def test_restore_settings(section, words):
    with pytest.raises(ConfigError) as exc:
        restore_settings(section)
    one_line_error(exc, words)


def test_restore_settings_convert_and_accept_devices():
    assert restore_settings(None) == RESTORE_DEFAULTS
    s = restore_settings({"chunk_s": "1e12", "device": "cuda:1"})
    assert s["chunk_s"] == 1e12 and s["device"] == "cuda:1"


@pytest.mark.parametrize(
    "variants,words",
    [
        ({"preclean": {"denoise": {"n_fft": "big"}}}, "variants.preclean.denoise.n_fft: got 'big'"),
        ({"preclean": {"denoise": {"hop": -512}}}, "variants.preclean.denoise.hop: got -512"),
        ({"preclean": {"declick": {"percentile": 120}}}, "variants.preclean.declick.percentile"),
        ({"preclean": {"declick": "on"}}, "variants.preclean.declick: got 'on'; expected a"),
        ({"preclean": 5}, "variants.preclean: got 5; expected a mapping"),
        ([1], "variants: got [1]; expected a mapping"),
    ],
)
def test_variant_params(variants, words):
    with pytest.raises(VariantError) as exc:
        build_context("preclean", variants)
    assert isinstance(exc.value, ConfigError)
    one_line_error(exc, words)


def test_every_registered_default_passes_its_own_rules():
    for v in VARIANTS.values():
        assert merge_params(v.defaults, v.defaults, f"variants.{v.params_key}") == v.defaults


def test_degrade_chain_config():
    with pytest.raises(ConfigError) as exc:
        chains.msr_config({"snr_db": "loud"})
    one_line_error(exc, "degrade.snr_db: got 'loud'; expected a list")
    with pytest.raises(ConfigError) as exc:
        chains.msr_config({"snr_db": [20, -5]})
    one_line_error(exc, "degrade.snr_db", "low <= high")
    with pytest.raises(ConfigError) as exc:
        chains.musicgen_config({"ranges": {"bitcrush": {"bits": [8.5, 12]}}})
    one_line_error(exc, "degrade.ranges.bitcrush.bits[0]: got 8.5; expected an integer")
    with pytest.raises(ConfigError) as exc:
        chains.msr_config({"ranges": {"mp3": {"vbr_quality": [9, 1]}}})
    one_line_error(exc, "degrade.ranges.mp3.vbr_quality", "low <= high")
    cfg = chains.musicgen_config({"ranges": {"resample": {"low_sr": ["1.2e4", 22050]}}})
    assert cfg["ranges"]["resample"]["low_sr"] == [12000.0, 22050.0]
    assert cfg["ranges"].keys() == {"resample"}  # only what is configured


def test_build_and_musicgen_blocks():
    with pytest.raises(ConfigError) as exc:
        check_params(build_msr, {"n_test": "six"}, "msr")
    one_line_error(exc, "msr.n_test: got 'six'; expected an integer")
    with pytest.raises(ConfigError) as exc:
        check_params(build_msr, {"segment_s": -10}, "msr")
    one_line_error(exc, "msr.segment_s", "> 0")
    assert check_params(build_msr, {"n_test": 6, "subtype": None}, "msr") == {
        "n_test": 6,
        "subtype": None,
    }
    with pytest.raises(ConfigError) as exc:  # where the work runs is the compute block's
        check_params(build_msr, {"workers": 2}, "msr")
    one_line_error(exc, "msr: unknown key(s) workers")
    with pytest.raises(ConfigError) as exc:
        fetch_musicgen("generate", "/nonexistent", generate={"device": "tpu9"})
    one_line_error(exc, "musicgen.generate.device: got 'tpu9'")
    with pytest.raises(ConfigError) as exc:
        fetch_musicgen("local", "/nonexistent", local={"max_clips": "all"})
    one_line_error(exc, "musicgen.local.max_clips: got 'all'; expected an integer or null")


def test_separator_train_config():
    cfg = config_from_params({"lr": "3e-4", "model": {"dconv_mode": 3}})
    assert isinstance(cfg, SeparatorTrainConfig) and cfg.lr == 3e-4
    assert cfg.model == {"channels": 8, "depth": 4, "t_layers": 1, "dconv_mode": 3}
    for params, *words in [
        ({"steps": "many"}, "separate.train.steps: got 'many'; expected an integer"),
        ({"gain_db": [3, -9]}, "separate.train.gain_db", "low <= high"),
        ({"flip_p": 2}, "separate.train.flip_p: got 2.0; expected a probability in [0, 1]"),
        ({"device": "tpu9"}, "separate.train.device: got 'tpu9'"),
        ({"device": "auto"}, "separate.train.device: got 'auto'"),
    ]:
        with pytest.raises(ConfigError) as exc:
            config_from_params(params)
        one_line_error(exc, *words)


def test_signature_defaults_mark_required_parameters():
    defaults, hints = config.signature_defaults(_fn, skip=("out_dir",))
    assert defaults == {"a": config.REQUIRED, "b": None, "c": "x"}
    assert set(hints) == {"a", "b", "c"}


# ------------------------------------------------------------- bounded messages and loaders


def test_a_message_quotes_at_most_80_characters_of_any_value():
    """A 355-byte params file of nested aliases made ``_show`` build a repr of hundreds of
    millions of strings (45 s, then MemoryError): the message is cut while it is built."""
    import time

    nested: object = ["lol"] * 9
    for _ in range(9):
        nested = [nested] * 9  # 9**10 strings if walked whole
    for value in (nested, "x" * 10**7, list(range(10**6)), {"k" * 10**5: 1}, 16 ** (10**5)):
        start = time.monotonic()
        with pytest.raises(ConfigError) as exc:
            merge({"n": 1}, {"n": value}, "blk")
        assert time.monotonic() - start < 1.0
        msg = one_line_error(exc, "blk.n: got ")
        quoted = msg.removeprefix("blk.n: got ").rsplit("; expected", 1)[0]
        assert len(quoted) <= 80, quoted
    # short values still read exactly as repr writes them
    with pytest.raises(ConfigError) as exc:
        merge({"n": 1}, {"n": {"a": [1, (2,)], "b": None}}, "blk")
    one_line_error(exc, "blk.n: got {'a': [1, (2,)], 'b': None}; expected an integer")


def test_unknown_keys_are_listed_briefly():
    given = {f"{'k' * 500}{i}": 1 for i in range(50)}
    with pytest.raises(ConfigError) as exc:
        merge({"n": 1}, given, "blk")
    msg = one_line_error(exc, "blk: unknown key(s) ", "and 40 more", "known: n")
    assert len(msg) < 1200


def test_quote_is_repr_for_short_values_and_bounded_for_any():
    from musicrestore.core.errors import one_line, quote

    for v in ("abc", [1, 2], (1,), (), {1}, set(), frozenset({2}), frozenset(), {"a": 1.5}, None):
        assert quote(v) == repr(v)
    assert quote(10**5000) == "<an integer of about 5001 digits>"  # repr(10**5000) raises
    assert len(quote("é" * 10**6)) == 80 and quote("x" * 100).endswith("...")
    assert one_line("a\n b\t\tc", 5) == "a b c" and one_line("abcdefgh", 6) == "abc..."


def test_load_yaml_refuses_anchors_and_aliases_at_once(tmp_path):
    import time

    path = tmp_path / "params.yaml"
    path.write_text(laughs())
    assert path.stat().st_size < 500
    start = time.monotonic()
    with pytest.raises(StageError) as exc:
        config.load_yaml(path)
    assert time.monotonic() - start < 1.0
    one_line_error(exc, str(path), "line 1", "anchors and aliases")
    for text in ("a: &x 1\nb: 2\n", "a: 1\nb: *x\n", "base: &b {x: 1}\nblk:\n  <<: *b\n"):
        path.write_text(text)
        with pytest.raises(StageError) as exc:
            config.load_yaml(path)
        one_line_error(exc, str(path), "anchors and aliases")


@pytest.mark.parametrize(
    "text,words",
    [
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 32 levels"),  # RecursionError
        ("a: " + "1" * 5000 + "\n", "invalid YAML"),  # ValueError: int of 5000 digits
        ("a: 2024-13-45\n", "invalid YAML"),  # ValueError: not a date
        ("a: [unclosed\n", "invalid YAML"),
        ("a: !!python/object:os.system x\n", "invalid YAML"),
    ],
    ids=["deep", "long int", "bad date", "unclosed", "python tag"],
)
def test_load_yaml_problems_are_one_line_naming_the_file(tmp_path, text, words):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(StageError) as exc:
        config.load_yaml(path)
    msg = one_line_error(exc, str(path), words)
    assert len(msg) < 400


def test_load_yaml_bounds_the_file_and_reads_plain_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"a: 1\n" * (config.MAX_YAML_BYTES // 5 + 1))
    with pytest.raises(StageError) as exc:
        config.load_yaml(path)
    one_line_error(exc, str(path), "larger than 1 MiB")
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(StageError) as exc:
        config.load_yaml(path)
    one_line_error(exc, "not a text file")
    nested = "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 31)) + "  " * 31 + "v: 1\n"
    path.write_text(nested + "b: [1, 2.5, x, null, true]\n")
    doc = config.load_yaml(path)
    assert doc["b"] == [1, 2.5, "x", None, True]  # 31 levels of mappings are fine
    path.write_text("")
    assert config.load_yaml(path) is None


def test_json_loaders_bound_depth_and_size(tmp_path):
    with pytest.raises(StageError) as exc:
        config.parse_json("[" * 100_000 + "]" * 100_000, "m.jsonl:3")
    one_line_error(exc, "m.jsonl:3: nested deeper than 32 levels")
    with pytest.raises(StageError) as exc:
        config.parse_json("[" * 40 + "]" * 40, "m.jsonl:3")  # json manages, the limit refuses
    one_line_error(exc, "m.jsonl:3: nested deeper than 32 levels")
    with pytest.raises(StageError) as exc:
        config.parse_json('{"a": 1', "c.json")
    one_line_error(exc, "c.json: not valid JSON")
    assert config.parse_json('{"a": [1, {"b": null}]}', "c.json") == {"a": [1, {"b": None}]}
    path = tmp_path / "config.json"
    path.write_text('{"k": "' + "x" * config.MAX_JSON_BYTES + '"}')
    with pytest.raises(StageError) as exc:
        config.load_json(path)
    one_line_error(exc, str(path), "larger than 16 MiB")
    path.write_text('{"k": 1}')
    assert config.load_json(path) == {"k": 1}
