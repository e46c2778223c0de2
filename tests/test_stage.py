from __future__ import annotations

import os
from pathlib import Path

import pytest

from musicrestore.stage import StageError, load_params, main_guard, output_dir


def test_output_dir_replaces_only_on_success(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), output_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("crash mid-stage")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp left behind
    old = os.umask(0o022)
    try:
        with output_dir(out) as tmp:
            (tmp / "new.txt").write_text("new")
    finally:
        os.umask(old)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert out.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_load_params(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("a: {b: 1}\n")
    assert load_params(p, "a") == {"b": 1}
    with pytest.raises(StageError, match="missing section 'z'"):
        load_params(p, "z")
    with pytest.raises(StageError, match="not found"):
        load_params(tmp_path / "none.yaml")
    p.write_text("a: [unclosed\n")
    with pytest.raises(StageError, match="invalid YAML"):
        load_params(p)


def test_main_guard_prints_one_line_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    @main_guard
    def stage() -> None:
        raise StageError("data.source must be embedded, hf or local,\n not 'ftp'")

    with pytest.raises(SystemExit) as exc:
        stage()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err == "error: data.source must be embedded, hf or local, not 'ftp'\n"


def test_main_guard_lets_bugs_through() -> None:
    @main_guard
    def stage() -> None:
        raise ZeroDivisionError("a bug, not a user error")

    with pytest.raises(ZeroDivisionError):
        stage()
