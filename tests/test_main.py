from __future__ import annotations

import subprocess
import sys

import pytest

from musicrestore.__main__ import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "restore" in capsys.readouterr().out


def test_unknown_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown command 'frobnicate'" in err


def test_module_entry_point_lists_variants() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "musicrestore", "restore", "--list"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    from musicrestore.variants import VARIANTS

    listed = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert listed == list(VARIANTS)


def test_restore_dispatches_to_the_cli_module(monkeypatch: pytest.MonkeyPatch) -> None:
    from musicrestore import cli

    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(argv) or 7)
    assert main(["restore", "--variant", "x", "a.wav", "b.wav"]) == 7
    assert seen == [["--variant", "x", "a.wav", "b.wav"]]


def test_restore_error_exit_code_through_the_entry_point(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "musicrestore", "restore", "--variant", "identity"]
        + [str(tmp_path / "missing.wav"), str(tmp_path / "o.wav")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "missing.wav: no such file" in proc.stderr
    assert list(tmp_path.iterdir()) == []
