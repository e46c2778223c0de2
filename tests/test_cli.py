"""The restore command line (musicrestore.cli): what it does with good input, and that bad
input, a wrong OUT, wrong params and signals all end in one line on stderr, the usual exit
code, no temporary file and whatever was at OUT before left byte-identical."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrestore import cli
from musicrestore.core.audio import load_audio, save_audio
from musicrestore.variants import VARIANTS, Variant
from musicrestore.variants.restore import RestoreError
from tests.test_restore import music, tiny_dataset

SR = 16000


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path below ``folder`` (hidden ones included) -> its bytes (``None``: a folder)."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def assert_one_line_error(err: str, *words: object) -> None:
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for w in words:
        assert str(w) in err, (w, err)


def assert_no_temp(folder: Path) -> None:
    left = [p for p in folder.rglob("*") if p.name.endswith(".tmp") or ".old" in p.name]
    assert left == [], left


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def fake_variant(monkeypatch, name: str, fn) -> Variant:
    v = Variant(name=name, fn=fn, description=name, params_key=name)
    monkeypatch.setitem(VARIANTS, name, v)
    return v


# ------------------------------------------------------------------------------ good input


def test_cli_lists_the_registry(capsys):
    code, out, _ = run_cli(capsys, "--list")
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(VARIANTS)
    for line, variant in zip(lines, VARIANTS.values(), strict=True):
        assert variant.output in line
        assert ("separator" in line) == variant.needs_separator


def test_cli_restores_a_file_and_a_folder(tmp_path, capsys):
    sr = 32000
    save_audio(tmp_path / "in" / "x.wav", music(sr, 2, 1.0), sr)
    save_audio(tmp_path / "in" / "sub" / "y.flac", music(sr, 1, 0.5), sr)
    code, _, err = run_cli(
        capsys, "--variant", "dsp_direct", tmp_path / "in" / "x.wav", tmp_path / "x.wav"
    )
    assert code == 0 and "RTF" in err
    assert sf.info(str(tmp_path / "x.wav")).frames == sr
    code, _, err = run_cli(capsys, "--variant", "identity", tmp_path / "in", tmp_path / "out")
    assert code == 0, err
    assert sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.*")
    ) == ["sub/y.flac", "x.wav"]
    y, _ = load_audio(tmp_path / "out" / "sub" / "y.flac")
    np.testing.assert_allclose(y, load_audio(tmp_path / "in" / "sub" / "y.flac")[0], atol=1e-6)


def test_cli_restores_a_dataset_folder_with_params(tmp_path, capsys):
    data = tiny_dataset(tmp_path / "data")
    params = tmp_path / "params.yaml"
    params.write_text(
        "variants:\n  dsp_direct:\n    gain_db: 0.0\n"
        "restore:\n  chunk_s: 0.5\n  overlap_s: 0.1\n  context_s: 0.1\n"
    )
    old = os.umask(0o022)
    try:
        code, _, err = run_cli(
            capsys, "--params", params, "--variant", "dsp_direct", data, tmp_path / "out"
        )
    finally:
        os.umask(old)
    assert code == 0, err
    assert {"a.wav", "b.wav"} <= {p.name for p in (tmp_path / "out").iterdir()}
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    assert (tmp_path / "out" / "a.wav").stat().st_mode & 0o777 == 0o644
    assert_no_temp(tmp_path)


def _bad_cases(tmp: Path) -> list[tuple[list, str]]:
    (tmp / "in").mkdir()
    save_audio(tmp / "in" / "ok.wav", music(16000, 1, 0.5), 16000)
    (tmp / "in" / "broken.wav").write_text("not audio")
    (tmp / "good").mkdir()
    save_audio(tmp / "good" / "ok.wav", music(16000, 1, 0.5), 16000)
    (tmp / "taken").write_text("a file")
    (tmp / "bad.yaml").write_text("variants:\n  identity:\n    gain: 1\n")
    good = tmp / "good" / "ok.wav"
    return [
        (["--variant", "identity", tmp / "missing.wav", tmp / "o.wav"], "no such file"),
        (
            ["--variant", "identity", tmp / "in" / "broken.wav", tmp / "o.wav"],
            "not a readable audio",
        ),
        (["--variant", "nope", good, tmp / "o.wav"], "unknown variant"),
        (["--variant", "identity", tmp / "good", tmp / "taken"], "not a folder"),
        (["--variant", "identity", good, tmp / "o.txt"], "unsupported output format"),
        (
            ["--params", tmp / "bad.yaml", "--variant", "identity", good, tmp / "o.wav"],
            "variants.identity: unknown key(s) gain",
        ),
        (["--variant", "identity", good], "required"),
        (["--variant", "identity", "--target", "Drums", good, tmp / "o.wav"], "unknown stem group"),
        (["--variant", "identity", tmp / "in", tmp / "o"], "broken.wav: not a readable audio"),
        (["--bogus-flag", good, tmp / "o.wav"], "unrecognized"),
        (["--variant", "identity", "--skip-bad", good, tmp / "o.wav"], "folder IN only"),
    ]


def test_cli_bad_inputs_exit_1_with_one_line_and_write_nothing(tmp_path, capsys):
    for argv, expected in _bad_cases(tmp_path):
        before = snapshot(tmp_path)
        code, _, err = run_cli(capsys, *argv)
        assert code == 1, argv
        assert_one_line_error(err, expected)
        assert snapshot(tmp_path) == before, argv


# ------------------------------------------------------------------- 1: a truncated input


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_a_truncated_input_is_an_error_not_a_short_output(tmp_path, capsys, suffix):
    """A WAV cut in half was restored into a half-length file with exit 0."""
    inp = truncate(save_audio(tmp_path / f"cut{suffix}", music(SR, 2, 2.0), SR))
    out = tmp_path / "out" / "cut.wav"
    out.parent.mkdir()
    out.write_bytes(b"previous output")
    before = snapshot(tmp_path / "out")
    code, _, err = run_cli(capsys, "--variant", "identity", inp, out)
    assert code == 1
    assert_one_line_error(err, inp, "truncated file")
    assert snapshot(tmp_path / "out") == before


# -------------------------------------------------------------------------- 2: OUT is IN


@pytest.mark.parametrize("spelling", ["same", "dotted", "symlink"])
def test_out_equal_to_in_is_refused_without_overwrite(tmp_path, capsys, spelling):
    inp = save_audio(tmp_path / "song.wav", music(SR, 1, 1.0), SR)
    (tmp_path / "sub").mkdir()
    out = {
        "same": inp,
        "dotted": tmp_path / "sub" / ".." / "." / "song.wav",
        "symlink": tmp_path / "link.wav",
    }[spelling]
    if spelling == "symlink":
        out.symlink_to(inp)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "dsp_direct", inp, out)
    assert code == 1
    assert_one_line_error(err, out, "is the input file", "--overwrite")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flag", ["--overwrite", "--in-place"])
def test_overwrite_replaces_the_input_atomically(tmp_path, capsys, flag):
    inp = save_audio(tmp_path / "song.wav", music(SR, 1, 1.0), SR)
    (tmp_path / "link.wav").symlink_to(inp)
    original = load_audio(inp)[0]
    code, _, err = run_cli(capsys, "--variant", "dsp_direct", flag, inp, tmp_path / "link.wav")
    assert code == 0, err
    restored = load_audio(inp)[0]
    assert restored.shape == original.shape and not np.allclose(restored, original)
    assert (tmp_path / "link.wav").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.wav", "song.wav"]


# ---------------------------------------------------------------- 3: wrong params types


@pytest.mark.parametrize(
    "yaml_text,words",
    [
        ("restore:\n  chunk_s: abc\n", "restore.chunk_s: got 'abc'"),
        ("restore:\n  chunk_s: [1, 2]\n", "restore.chunk_s: got [1, 2]"),
        ("restore: 5\n", "restore: got 5; expected a mapping"),
        ("restore:\n  device: tpu9\n", "restore.device: got 'tpu9'"),
        ("variants:\n  preclean:\n    denoise:\n      n_fft: big\n", "denoise.n_fft: got 'big'"),
        ("variants:\n  preclean:\n    denoise:\n      hop: -512\n", "denoise.hop: got -512"),
        ("variants: [preclean]\n", "variants: got ['preclean']; expected a mapping"),
        ("- a\n- list\n", "expected a mapping of sections"),
    ],
)
def test_wrong_param_types_are_one_line_errors(tmp_path, capsys, yaml_text, words):
    params = tmp_path / "params.yaml"
    params.write_text(yaml_text)
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    out = tmp_path / "out" / "o.wav"
    out.parent.mkdir()
    out.write_bytes(b"previous output")
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--params", params, "--variant", "preclean", inp, out)
    assert code == 1
    assert_one_line_error(err, words)
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_a_numeric_string_is_a_number(tmp_path, capsys):
    """YAML reads ``1e12`` as a string; a float param accepts it as the number it spells."""
    params = tmp_path / "params.yaml"
    params.write_text("restore:\n  chunk_s: 1e12\n  device: cpu\n")
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    code, _, err = run_cli(capsys, "--params", params, "--variant", "identity", inp, "o.wav")
    assert code == 0, err
    Path("o.wav").unlink()


# --------------------------------------------------------------------- 4: folder batches


def _mixed_folder(tmp_path: Path) -> Path:
    inp = tmp_path / "in"
    save_audio(inp / "a.wav", music(SR, 2, 0.5), SR)
    truncate(save_audio(inp / "b.wav", music(SR, 2, 2.0), SR, subtype="PCM_16"))
    (inp / "c.txt").write_text("liner notes")
    (inp / "d.flac").write_bytes(b"fLaC but not really")
    save_audio(inp / "sub" / "e.wav", music(SR, 1, 0.5), SR)
    return inp


def test_a_folder_reports_every_bad_input_at_once_and_writes_nothing(tmp_path, capsys):
    inp = _mixed_folder(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.wav").write_bytes(b"previous output")
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "identity", inp, out)
    assert code == 1
    assert_one_line_error(
        err, "3 bad inputs", "b.wav: truncated", "c.txt: not audio", "d.flac: not a readable"
    )
    assert "a.wav" not in err and "e.wav" not in err
    assert snapshot(tmp_path) == before


def test_skip_bad_restores_the_rest_lists_the_skipped_and_exits_1(tmp_path, capsys):
    inp = _mixed_folder(tmp_path)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--variant", "identity", "--skip-bad", inp, out)
    assert code == 1
    assert_one_line_error(err, "restored 2 file(s)", "skipped", "3 bad inputs", "b.wav", "c.txt")
    assert sorted(snapshot(out)) == ["a.wav", "sub", "sub/e.wav"]
    for rel in ("a.wav", "sub/e.wav"):
        np.testing.assert_allclose(load_audio(out / rel)[0], load_audio(inp / rel)[0], atol=1e-6)
    assert_no_temp(tmp_path)


def test_finished_outputs_are_kept_when_a_later_file_fails(tmp_path, capsys, monkeypatch):
    def stereo_only(wave, sr, ctx):
        if wave.shape[0] != 2:
            raise RestoreError("mono is not supported")
        return wave

    fake_variant(monkeypatch, "stereo_only", stereo_only)
    inp = tmp_path / "in"
    save_audio(inp / "a.wav", music(SR, 2, 0.5), SR)
    save_audio(inp / "b.wav", music(SR, 1, 0.5), SR)
    save_audio(inp / "c.wav", music(SR, 2, 0.5), SR)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "--variant", "stereo_only", inp, out)
    assert code == 1
    assert_one_line_error(err, inp / "b.wav", "mono is not supported", "1 finished file(s)")
    assert sorted(snapshot(out)) == ["a.wav"]  # kept, not thrown away with the batch
    np.testing.assert_allclose(load_audio(out / "a.wav")[0], load_audio(inp / "a.wav")[0])
    assert_no_temp(tmp_path)


# ----------------------------------------------------------------- 5: folder permissions


def test_folder_outputs_get_normal_permissions(tmp_path, capsys):
    """Folder mode used to rename mkdtemp's 0700 folder into place."""
    save_audio(tmp_path / "in" / "sub" / "x.wav", music(SR, 1, 0.5), SR)
    old = os.umask(0o022)
    try:
        code, _, err = run_cli(capsys, "--variant", "identity", tmp_path / "in", tmp_path / "out")
    finally:
        os.umask(old)
    assert code == 0, err
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "sub").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "sub" / "x.wav").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", ["x.wav", "x.FLAC"])
def test_a_folder_in_with_a_file_like_out_is_an_error(tmp_path, capsys, name):
    save_audio(tmp_path / "in" / "a.wav", music(SR, 1, 0.5), SR)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "identity", tmp_path / "in", tmp_path / name)
    assert code == 1
    assert_one_line_error(err, tmp_path / name, "looks like an audio file")
    assert snapshot(tmp_path) == before


def test_a_folder_in_as_its_own_out_needs_overwrite(tmp_path, capsys):
    save_audio(tmp_path / "in" / "a.wav", music(SR, 1, 0.5), SR)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "dsp_direct", tmp_path / "in", tmp_path / "in")
    assert code == 1
    assert_one_line_error(err, "is the input folder", "--overwrite")
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- 6: signals


def _signal_run(tmp_path: Path, sig: int) -> tuple[int, str, Path]:
    """Start a restore of 120 s of noise in a subprocess, wait until its temporary output
    exists (it is mid-write), send ``sig``; returns (exit code, stderr, output folder)."""
    x = 0.1 * np.random.default_rng(0).standard_normal((120 * SR, 1))
    sf.write(tmp_path / "long.wav", x.astype(np.float32), SR, subtype="PCM_16")
    params = tmp_path / "params.yaml"
    params.write_text("restore:\n  chunk_s: 1.0\n  overlap_s: 0.1\n  context_s: 0.1\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    argv = ["--params", str(params), "--variant", "preclean", str(tmp_path / "long.wav")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "musicrestore", "restore", *argv, str(out_dir / "long.wav")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if any(p.name.endswith(".tmp") for p in out_dir.iterdir()):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the restore ended before it could be interrupted"
        assert any(p.name.endswith(".tmp") for p in out_dir.iterdir()), "no temp file appeared"
        time.sleep(0.3)  # well into the write
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err, out_dir


def test_sigint_exits_130_with_one_line_and_no_temp_file(tmp_path):
    """Ctrl-C printed a 48-line traceback."""
    code, err, out_dir = _signal_run(tmp_path, signal.SIGINT)
    assert code == 130, err
    assert_one_line_error(err, "interrupted (SIGINT)")
    assert list(out_dir.iterdir()) == []  # no temp file, no OUT


def test_sigterm_exits_143_with_one_line_and_keeps_the_previous_output(tmp_path):
    """SIGTERM left an 18 MB hidden temp file in the output folder."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "long.wav").write_bytes(b"previous output")
    code, err, out_dir = _signal_run(tmp_path, signal.SIGTERM)
    assert code == 143, err
    assert_one_line_error(err, "terminated (SIGTERM)")
    assert snapshot(out_dir) == {"long.wav": b"previous output"}


# ------------------------------------------------------------------------- 7: the smaller


def test_a_permission_error_names_out_not_the_temp_file(tmp_path, capsys, monkeypatch):
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    out = tmp_path / "ro" / "o.wav"
    out.parent.mkdir()

    def denied(*args, dir, **kw):  # what a read-only folder does (root ignores chmod)
        raise PermissionError(13, "Permission denied", os.path.join(dir, ".o.wav.k2j4.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    code, _, err = run_cli(capsys, "--variant", "identity", inp, out)
    assert code == 1
    assert_one_line_error(err, f"{out}: Permission denied")
    assert ".tmp" not in err
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True])
def test_a_trailing_slash_means_a_folder(tmp_path, capsys, existing):
    """``OUT/`` used to fail with "unsupported output format ''"."""
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    if existing:
        (tmp_path / "dest").mkdir()
    code, _, err = run_cli(capsys, "--variant", "identity", inp, f"{tmp_path / 'dest'}/")
    assert code == 0, err
    assert sorted(snapshot(tmp_path / "dest")) == ["in.wav"]
    np.testing.assert_allclose(load_audio(tmp_path / "dest" / "in.wav")[0], load_audio(inp)[0])


# ------------------------------------------------ 8: the user's file keeps what it had


def test_overwrite_keeps_the_inputs_mode(tmp_path, capsys):
    """``--overwrite`` on a 0600 input left it 0644."""
    inp = save_audio(tmp_path / "song.wav", music(SR, 1, 1.0), SR)
    os.chmod(inp, 0o600)
    code, _, err = run_cli(capsys, "--variant", "dsp_direct", "--overwrite", inp, inp)
    assert code == 0, err
    assert inp.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


def test_a_write_protected_out_needs_overwrite_and_then_keeps_its_mode(tmp_path, capsys):
    """A 0444 OUT was silently replaced by a 0644 file."""
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    out = tmp_path / "out.wav"
    out.write_bytes(b"previous output")
    out.chmod(0o444)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "identity", inp, out)
    assert code == 1
    assert_one_line_error(err, f"{out}: is write-protected", "--overwrite")
    assert snapshot(tmp_path) == before and out.stat().st_mode & 0o777 == 0o444
    code, _, err = run_cli(capsys, "--variant", "identity", "--overwrite", inp, out)
    assert code == 0, err
    assert out.stat().st_mode & 0o777 == 0o444
    np.testing.assert_allclose(load_audio(out)[0], load_audio(inp)[0], atol=1e-6)
    assert_no_temp(tmp_path)


def test_write_protected_outputs_of_a_folder_are_refused_before_any_work(tmp_path, capsys):
    inp = tmp_path / "in"
    save_audio(inp / "a.wav", music(SR, 1, 0.5), SR)
    save_audio(inp / "b.wav", music(SR, 1, 0.5), SR)
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.wav").write_bytes(b"keep me")
    (out / "b.wav").chmod(0o444)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "identity", inp, out)
    assert code == 1
    assert_one_line_error(err, f"{out / 'b.wav'}: is write-protected")
    assert snapshot(tmp_path) == before
    data = tiny_dataset(tmp_path / "data")
    (out / "a.wav").write_bytes(b"keep me too")
    (out / "a.wav").chmod(0o400)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "identity", data, out)
    assert code == 1
    assert_one_line_error(err, "2 outputs are write-protected", "a.wav", "b.wav")
    assert snapshot(tmp_path) == before
    code, _, err = run_cli(capsys, "--variant", "identity", "--overwrite", data, out)
    assert code == 0, err
    assert (out / "a.wav").stat().st_mode & 0o777 == 0o400
    assert (out / "b.wav").stat().st_mode & 0o777 == 0o444
    assert load_audio(out / "b.wav")[0].shape[1] == load_audio(data / "mix" / "b.wav")[0].shape[1]
    assert_no_temp(tmp_path)


@pytest.mark.parametrize("length", [240, 255])
def test_any_legal_out_name_works(tmp_path, capsys, length):
    """A legal OUT name failed with an ENAMETOOLONG traceback: the temporary name was 14
    characters longer."""
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    out = tmp_path / "out" / ("x" * (length - 4) + ".wav")
    code, _, err = run_cli(capsys, "--variant", "identity", inp, out)
    assert code == 0, err
    assert [p.name for p in out.parent.iterdir()] == [out.name]
    code, _, err = run_cli(capsys, "--variant", "identity", inp, tmp_path / ("y" * 256 + ".wav"))
    assert code == 1  # an illegal one is one line too
    assert_one_line_error(err, "file name too long")


@pytest.mark.parametrize(
    "code_,cause,where",
    [
        (errno.EROFS, "read-only file system", "create"),
        (errno.EROFS, "read-only file system", "rename"),
        (errno.ENOSPC, "no space left on device", "write"),
        (errno.EDQUOT, "disk quota exceeded", "write"),
    ],
)
def test_a_refused_write_is_one_line_naming_out_and_the_cause(
    tmp_path, capsys, monkeypatch, code_, cause, where
):
    """A read-only file system was an OSError traceback; a full disk said "cannot write
    (System error.)"."""
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    out = tmp_path / "out" / "o.wav"
    out.parent.mkdir()

    def refuse(*args, **kw):
        raise OSError(code_, os.strerror(code_), str(out.parent / ".o.wav.k2j4x9ab.tmp"))

    target = {"create": (tempfile, "mkstemp"), "rename": (os, "replace")}
    monkeypatch.setattr(*target.get(where, (sf.SoundFile, "write")), refuse)
    code, _, err = run_cli(capsys, "--variant", "identity", inp, out)
    assert code == 1
    assert_one_line_error(err, out, cause)
    assert ".tmp" not in err and "Traceback" not in err and "System error" not in err
    monkeypatch.undo()
    assert list(out.parent.iterdir()) == []


def test_a_billion_laughs_params_file_is_one_line_at_once(tmp_path, capsys):
    """355 bytes of nested YAML aliases: 45 s of allocation, then a MemoryError traceback."""
    from tests.test_stage import laughs

    params = tmp_path / "params.yaml"
    params.write_text(laughs())
    inp = save_audio(tmp_path / "in.wav", music(SR, 1, 0.5), SR)
    start = time.monotonic()
    code, _, err = run_cli(
        capsys, "--params", params, "--variant", "identity", inp, tmp_path / "o.wav"
    )
    assert time.monotonic() - start < 2.0
    assert code == 1
    assert_one_line_error(err, params, "anchors and aliases")
    assert not (tmp_path / "o.wav").exists()


# ----------------------------------------------------------- 9: signals from the first instant


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize(
    "sig,code,words",
    [(signal.SIGINT, 130, "interrupted (SIGINT)"), (signal.SIGTERM, 143, "terminated (SIGTERM)")],
)
def test_a_signal_while_the_cli_imports_exits_with_its_code_and_one_line(
    tmp_path, sig, code, words
):
    """Ctrl-C within the first second printed a KeyboardInterrupt traceback; SIGTERM exited
    -15 with no line."""
    from tests.test_stage import signal_during_imports

    argv = [sys.executable, "-m", "musicrestore", "restore", "--help"]
    status, output, took = signal_during_imports(argv, sig, tmp_path)
    assert (status, output) == (code, f"error: {words}\n")
    assert took < 5
    assert list(tmp_path.iterdir()) == []


def test_the_entry_point_puts_the_handlers_back(capsys):
    from musicrestore.__main__ import main

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    assert main(["--help"]) == 0
    assert main(["x" * 10**6]) == 2  # an unknown command, quoted briefly
    assert {s: signal.getsignal(s) for s in before} == before
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 200


# --------------------------------------------- safe by construction: what the CLI reads


@pytest.mark.parametrize(
    "override,words",
    [
        ({"id": "../escaped"}, "manifest.jsonl:1: id: '../escaped'"),
        ({"id": "sub/../../escaped"}, "manifest.jsonl:1: id:"),
        ({"mixture": "../outside.wav"}, "manifest.jsonl:1: mixture: '../outside.wav' leaves"),
        ({"mixture": "link/secret.wav"}, "through a symbolic link"),
    ],
)
def test_a_hostile_manifest_writes_nothing_outside_out(tmp_path, capsys, override, words):
    """A dataset folder whose manifest names a file outside it or an id that is a path:
    exit 1, one line naming the manifest and line, nothing written anywhere."""
    from tests.test_paths import hostile_dataset

    ds = hostile_dataset(tmp_path / "ds", override)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, "--variant", "identity", ds, tmp_path / "out")
    assert code == 1
    assert_one_line_error(err, words)
    assert snapshot(tmp_path) == before  # no escaped.wav beside OUT, no OUT, no temp folder


def test_help_says_what_is_trusted(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--trust-pickle" in out and "What is trusted" in out


def test_a_hostile_separator_package_runs_no_code(tmp_path, capsys, caplog):
    """A ``.th`` in ``--separator-repo`` whose pickle creates a file when unpickled: one
    line naming it, and the file never appears; ``--trust-pickle`` loads a benign package
    that needs more than the allowlist, and says it did."""
    import torch

    from musicrestore.separation import tiny_htdemucs
    from tests.helpers import SystemPayload
    from tests.test_separation import _demucs_package

    marker, repo = tmp_path / "marker", tmp_path / "repo"
    repo.mkdir()
    torch.save({"klass": SystemPayload(marker), "args": [], "kwargs": {}}, repo / "e1.th")
    (repo / "evil.yaml").write_text("models: [e1]\n")
    package = _demucs_package(tiny_htdemucs(1)) | {"training_args": {"lr": np.float64(1e-3)}}
    torch.save(package, repo / "n1.th")
    (repo / "numpy.yaml").write_text("models: [n1]\n")
    song = tmp_path / "song.wav"
    save_audio(song, music(44100, 2, 0.5), 44100)
    before = snapshot(tmp_path)
    common = ["--variant", "demucs_dsp", "--separator-repo", repo, song]
    code, _, err = run_cli(capsys, "--separator", "evil", *common, tmp_path / "o.wav")
    assert code == 1
    assert_one_line_error(err, repo / "e1.th", "refused", "posix.system", "--trust-pickle")
    assert not marker.exists() and snapshot(tmp_path) == before
    code, _, err = run_cli(capsys, "--separator", "numpy", *common, tmp_path / "o.wav")
    assert code == 1
    assert_one_line_error(err, repo / "n1.th", "numpy")
    with caplog.at_level("WARNING"):
        code, _, err = run_cli(
            capsys, "--separator", "numpy", "--trust-pickle", *common, tmp_path / "o.wav"
        )
    assert code == 0, err
    assert (tmp_path / "o.wav").is_file()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("trust_pickle" in m and "n1.th" in m for m in warned), warned
    # the same opt-in from params (the separate block, read as train_separator reads it)
    params = tmp_path / "params.yaml"
    for value, expected in (("true", 0), ("false", 1), ("'yes'", 1)):
        params.write_text(f"separate:\n  trust_pickle: {value}\n")
        code, _, err = run_cli(
            capsys, "--params", params, "--separator", "numpy", *common, tmp_path / "p.wav"
        )
        assert code == expected, (value, err)
        if value == "'yes'":
            assert_one_line_error(err, "separate.trust_pickle")
