from __future__ import annotations

import errno
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


# ------------------------------------------------------------- params files that attack


def laughs(levels: int = 9) -> str:
    """The "billion laughs" params file: each level 9 aliases of the one above; 9 levels
    quote 9**9 (387 million) strings in a few hundred bytes."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    lines.append(f"restore: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def test_load_params_refuses_a_billion_laughs_at_once(tmp_path: Path) -> None:
    """355 bytes of nested aliases kept the CLI allocating for 45 s, then MemoryError."""
    p = tmp_path / "params.yaml"
    p.write_text(laughs())
    start = time.monotonic()
    with pytest.raises(StageError) as exc:
        load_params(p, "restore")
    assert time.monotonic() - start < 1.0
    assert str(exc.value).startswith(f"{p}: line 1: anchors and aliases")
    assert "\n" not in str(exc.value)


# ------------------------------------------------- long names, read-only and full file systems


def test_output_dir_takes_any_legal_name(tmp_path: Path) -> None:
    """The temporary folder's name was the output's plus 14 characters (ENAMETOOLONG)."""
    out = tmp_path / ("o" * 255)
    for content in ("first", "second"):  # the second run moves the first aside (.<name>.old)
        with output_dir(out) as tmp:
            (tmp / "x.txt").write_text(content)
    assert (out / "x.txt").read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@pytest.mark.parametrize(
    "code,cause",
    [(errno.EROFS, "read-only file system"), (errno.ENOSPC, "no space left on device")],
)
def test_a_refused_write_in_a_stage_is_one_line_naming_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], code: int, cause: str
) -> None:
    out = tmp_path / "out"

    @main_guard
    def stage() -> None:
        with output_dir(out) as tmp:
            (tmp / "half.txt").write_text("half")
            raise OSError(code, os.strerror(code), str(tmp / "half.txt"))

    with pytest.raises(SystemExit) as exc:
        stage()
    assert exc.value.code == 1
    assert capsys.readouterr().err == f"error: {out}: {cause}\n"
    assert list(tmp_path.iterdir()) == []


def test_main_guard_reports_a_bare_oserror_of_the_disk_and_lets_others_through(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from musicrestore.core.stage import format_error

    @main_guard
    def full() -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded", "reports/x.json")

    with pytest.raises(SystemExit) as exc:
        full()
    assert exc.value.code == 1
    assert capsys.readouterr().err == "error: reports/x.json: disk quota exceeded\n"

    @main_guard
    def bug() -> None:
        raise OSError(errno.EBADF, "Bad file descriptor")

    with pytest.raises(OSError, match="Bad file descriptor"):
        bug()
    assert format_error(OSError(errno.EROFS, "Read-only file system", "o.wav")) == (
        "o.wav: read-only file system"
    )


# ------------------------------------------------------------------ signals at any moment

STAGE_SCRIPTS = sorted((Path(__file__).parents[1] / "stages").glob("*.py"))


def caught_signals(pid: int) -> int:
    """The mask of signals process ``pid`` has handlers for (``SigCgt`` of /proc)."""
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1], 16) for line in fh if line.startswith("SigCgt:"))


def signal_during_imports(argv: list[str], sig: int, cwd: Path) -> tuple[int, str, float]:
    """Start ``argv``, wait until it handles SIGTERM (the early guard is in place: Python
    itself handles only SIGINT), then ~0.05 s, while NumPy, PyTorch and the project are
    still importing, send ``sig``; returns (exit code, stderr, seconds to exit)."""
    import subprocess

    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not caught_signals(proc.pid) & (1 << (signal.SIGTERM - 1)):
            assert proc.poll() is None and time.monotonic() < deadline, "no early guard"
            time.sleep(0.002)
        time.sleep(0.05)
        assert proc.poll() is None, "the imports ended before the signal"
        sent = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, out + err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize(
    "sig,code,words",
    [(signal.SIGINT, 130, "interrupted (SIGINT)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
@pytest.mark.parametrize("script", ["restore", "evaluate"])
def test_a_signal_while_a_stage_imports_exits_with_its_code_and_one_line(
    tmp_path: Path, script: str, sig: int, code: int, words: str
) -> None:
    """Ctrl-C in the first second printed a KeyboardInterrupt traceback; SIGTERM exited -15
    without a word."""
    import sys

    argv = [sys.executable, str(Path(__file__).parents[1] / "stages" / f"{script}.py")]
    status, output, took = signal_during_imports([*argv, "--help"], sig, tmp_path)
    assert (status, output) == (code, f"error: {words}\n")
    assert took < 5
    assert list(tmp_path.iterdir()) == []  # nothing left behind


@pytest.mark.parametrize("script", STAGE_SCRIPTS, ids=[p.stem for p in STAGE_SCRIPTS])
def test_every_stage_script_guards_its_imports_first(script: Path) -> None:
    """The guard comes before the first project import other than its own, and only when
    the script is the program (a test that loads the script keeps pytest's handlers)."""
    import ast

    body = ast.parse(script.read_text()).body
    statements = [n for n in body if not (isinstance(n, ast.Expr) and n is body[0])]
    guard = next(
        i
        for i, n in enumerate(statements)
        if isinstance(n, ast.If) and "exit_on_signals()" in ast.unparse(n)
    )
    assert ast.unparse(statements[guard].test) == "__name__ == '__main__'"
    before = [ast.unparse(n) for n in statements[:guard]]
    assert before == [
        "from __future__ import annotations",
        "from musicrestore import exit_on_signals",
    ]


def test_loading_a_stage_script_as_a_module_leaves_the_handlers_alone() -> None:
    import runpy

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    runpy.run_path(str(Path(__file__).parents[1] / "stages" / "index_rawstems.py"))
    assert {s: signal.getsignal(s) for s in before} == before


def test_the_early_guard_and_main_guard_say_the_same() -> None:
    import musicrestore
    from musicrestore.core.stage import Terminated, exit_code, interrupted_message

    early = musicrestore.SIGNAL_EXITS
    assert early == {
        signal.SIGINT: (interrupted_message(KeyboardInterrupt()), exit_code(KeyboardInterrupt())),
        signal.SIGTERM: (interrupted_message(Terminated()), exit_code(Terminated())),
    }
