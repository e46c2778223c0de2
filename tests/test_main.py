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
    for name in (
        "identity",
        "preclean",
        "dsp_direct",
        "demucs_dsp",
        "demucs_snmf",
        "adaptive",
        "demucs",
    ):
        assert name in proc.stdout
