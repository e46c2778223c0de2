from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from musicrestore.core.config import ConfigError
from musicrestore.core.stage import (
    StageError,
    load_params,
    main_guard,
    output_dir,
    signals_as_exceptions,
)


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


def test_output_dir_of_a_killed_run_is_hidden_and_removed_by_the_next_run(
    tmp_path: Path,
) -> None:
    """A SIGKILL leaves the hidden temp folder (nothing can clean up); it is never the
    output, and the next run for the same output removes it (not a neighbour's)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import os, signal
        from musicrestore.core.stage import output_dir
        with output_dir({str(tmp_path / "out")!r}) as tmp:
            (tmp / "half.wav").write_bytes(b"RIFF")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 1 and left[0].startswith(".out.") and left[0].endswith(".tmp")
    assert not (tmp_path / "out").exists()
    (tmp_path / ".outer.abc.tmp").mkdir()  # another output's temp folder
    with output_dir(tmp_path / "out") as tmp:
        (tmp / "done.wav").write_bytes(b"RIFF")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".outer.abc.tmp", "out"]


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
    p.write_text("- a\n- b\n")
    with pytest.raises(StageError, match="expected a mapping of sections, got list"):
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


def test_main_guard_turns_config_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    @main_guard
    def stage() -> None:
        raise ConfigError("variants.preclean.denoise.n_fft: got 'big'; expected an integer")

    with pytest.raises(SystemExit) as exc:
        stage()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err == "error: variants.preclean.denoise.n_fft: got 'big'; expected an integer\n"


@pytest.mark.parametrize(
    "sig,code,words", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")]
)
def test_a_signal_mid_stage_exits_with_its_code_and_removes_the_temp_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sig: int, code: int, words: str
) -> None:
    """SIGTERM used to kill the stage on the spot, leaving ``.out.XXXX.tmp`` behind."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")

    @main_guard
    def stage() -> None:
        with output_dir(out) as tmp:
            (tmp / "half.txt").write_text("half")
            os.kill(os.getpid(), sig)
            time.sleep(10)  # the handler raises here, at once

    start = time.monotonic()
    with pytest.raises(SystemExit) as exc:
        stage()
    assert time.monotonic() - start < 5
    assert exc.value.code == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temp folder left
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    assert (out / "old.txt").read_text() == "old"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers restored


def test_signals_as_exceptions_restores_the_previous_handlers() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with signals_as_exceptions():
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
    assert {s: signal.getsignal(s) for s in before} == before
