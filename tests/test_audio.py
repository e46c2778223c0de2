from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrestore.core.audio import (
    AudioError,
    atomic_path,
    audio_info,
    check_audio,
    load_audio,
    loudness_lufs,
    open_audio,
    read_block,
    resample,
    save_audio,
    set_channels,
    validate_wave,
)
from tests.conftest import tone


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_roundtrip_formats(tmp_path: Path, suffix: str) -> None:
    wave = tone(440, 1.0, 44100)
    path = save_audio(tmp_path / f"x{suffix}", wave, 44100)
    out, sr = load_audio(path)
    assert sr == 44100 and out.dtype == np.float32 and out.shape[0] == 2
    if suffix in (".wav", ".flac"):
        assert out.shape == wave.shape
        np.testing.assert_allclose(out, wave, atol=1e-5)
    else:  # lossy: same tone, roughly the same energy
        n = min(out.shape[1], wave.shape[1])
        assert abs(np.std(out[:, :n]) - np.std(wave[:, :n])) < 0.05


def test_load_resamples_and_downmixes(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "x.wav", tone(1000, 1.0, 48000), 48000)
    out, sr = load_audio(path, sr=32000, channels=1)
    assert sr == 32000 and out.shape == (1, 32000)
    # a 1 kHz tone survives resampling at its amplitude
    assert abs(np.abs(out[0, 1000:-1000]).max() - 0.5) < 0.01


def test_load_segment(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "x.wav", tone(100, 3.0, 8000), 8000)
    out, _ = load_audio(path, offset_s=1.0, duration_s=0.5)
    assert out.shape == (2, 4000)


def test_resample_removes_energy_above_new_nyquist() -> None:
    wave = tone(12000, 1.0, 44100, channels=1)
    down = resample(wave, 44100, 16000)
    assert down.shape == (1, 16000)
    assert np.abs(down[:, 500:-500]).max() < 1e-3  # julius pads the edges by replication


def test_set_channels() -> None:
    st = np.stack([np.ones(10), -np.ones(10)]).astype(np.float32)
    assert np.allclose(set_channels(st, 1), 0)
    mono = np.ones((1, 10), np.float32)
    assert set_channels(mono, 2).shape == (2, 10)
    with pytest.raises(ValueError):
        set_channels(mono, 3)


def test_save_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    save_audio(target, tone(440, 0.1, 8000), 8000)
    before = target.read_bytes()
    with pytest.raises(AudioError):
        save_audio(target, np.full((2, 100), np.nan, np.float32), 8000)
    assert target.read_bytes() == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.wav"]


def test_save_keeps_out_of_range_wav_samples(tmp_path: Path) -> None:
    wave = np.full((1, 100), 1.5, np.float32)
    out, _ = load_audio(save_audio(tmp_path / "x.wav", wave, 8000))
    assert np.allclose(out, 1.5)


def _assert_one_line(exc: pytest.ExceptionInfo[AudioError], path: Path, words: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and words in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError) as exc:
        load_audio(tmp_path / "nope.wav")
    _assert_one_line(exc, tmp_path / "nope.wav", "no such file")


def test_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "fake.wav"
    path.write_text("this is not audio\n" * 10)
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    _assert_one_line(exc, path, "not a readable audio file")


def test_truncated_file(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "t.wav", tone(440, 1.0, 8000), 8000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    _assert_one_line(exc, path, "truncated")


def test_zero_length(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 2), np.float32), 8000)
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    _assert_one_line(exc, path, "zero-length")


def test_nan_samples(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    data = np.zeros((100, 1), np.float32)
    data[50] = np.nan
    sf.write(path, data, 8000, subtype="FLOAT")
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    _assert_one_line(exc, path, "NaN or Inf")


def test_too_many_channels(tmp_path: Path) -> None:
    path = tmp_path / "six.wav"
    sf.write(path, np.zeros((100, 6), np.float32), 8000)
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    _assert_one_line(exc, path, "6 channels")


def test_absurd_sample_rate(tmp_path: Path) -> None:
    path = tmp_path / "slow.wav"
    sf.write(path, np.zeros((100, 1), np.float32), 100)
    with pytest.raises(AudioError) as exc:
        load_audio(path)
    _assert_one_line(exc, path, "sample rate 100 Hz")
    with pytest.raises(AudioError):
        validate_wave(np.zeros((1, 10)), 10_000_000)


def test_audio_info(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "x.flac", tone(440, 0.5, 22050, channels=1), 22050)
    assert audio_info(path) == (22050, 1, 11025)


def test_loudness_of_known_tone() -> None:
    # A full-scale-RMS-0.5/sqrt(2) 1 kHz sine in both channels: BS.1770 gives about -3.0 LUFS
    # for 0 dBFS-peak mono at 997 Hz; stereo adds +3 dB, amplitude 0.5 subtracts 6 dB.
    lufs = loudness_lufs(tone(997, 3.0, 48000, amp=0.5), 48000)
    assert lufs == pytest.approx(-6.0, abs=0.3)
    assert loudness_lufs(np.zeros((2, 100)), 48000) == float("-inf")


def test_saved_files_get_normal_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = save_audio(tmp_path / "x.wav", tone(440, 0.1, 8000), 8000)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------- argument checks, streaming, atomic writes


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"sr": 0}, "sr=0"),
        ({"sr": 1}, "sr=1"),
        ({"sr": 999}, "sr=999"),
        ({"sr": 768_001}, "sr=768001"),
        ({"sr": 16000.5}, "sr=16000.5"),
        ({"duration_s": -1}, "duration_s=-1"),
        ({"duration_s": 0}, "duration_s=0"),
        ({"offset_s": -1}, "offset_s=-1"),
        ({"offset_s": float("nan")}, "offset_s=nan"),
        ({"offset_s": 5.0}, "past the end"),
        ({"channels": 3}, "channels=3"),
    ],
)
def test_bad_load_arguments_are_one_line_audio_errors(
    tmp_path: Path, kwargs: dict, words: str
) -> None:
    """``sr=0`` used to divide by zero, ``sr=1`` returned 3 samples, ``duration_s=-1`` read
    the whole file and ``offset_s=-1`` claimed the file was truncated."""
    path = save_audio(tmp_path / "x.wav", tone(440, 2.0, 8000), 8000)
    with pytest.raises(AudioError) as exc:
        load_audio(path, **kwargs)
    _assert_one_line(exc, path, words)


def test_load_accepts_the_edges_of_the_rate_range(tmp_path: Path) -> None:
    path = save_audio(tmp_path / "x.wav", tone(100, 0.5, 8000, channels=1), 8000)
    assert load_audio(path, sr=1000)[0].shape == (1, 500)
    assert load_audio(path, sr=8000, duration_s=0.25)[0].shape == (1, 2000)


def _truncated(tmp_path: Path, suffix: str) -> Path:
    path = save_audio(tmp_path / f"t{suffix}", tone(440, 2.0, 16000), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_streaming_open_refuses_a_truncated_file(tmp_path: Path, suffix: str) -> None:
    """libsndfile reports a half-length frame count for a cut WAV, and the header's count
    for a cut FLAC: the streaming open must refuse both before any block is read."""
    path = _truncated(tmp_path, suffix)
    with pytest.raises(AudioError) as exc:
        check_audio(path)
    _assert_one_line(exc, path, "truncated")
    with pytest.raises(AudioError) as exc, open_audio(path):
        pass
    _assert_one_line(exc, path, "truncated")


def test_open_audio_streams_validated_blocks(tmp_path: Path) -> None:
    wave = tone(440, 1.0, 8000)
    path = save_audio(tmp_path / "x.flac", wave, 8000)
    assert check_audio(path) == (8000, 2, 8000)
    with open_audio(path) as fh:
        block = read_block(fh, 100, 300, path)
        assert block.shape == (2, 200) and block.dtype == np.float32
        np.testing.assert_allclose(block, wave[:, 100:300], atol=1e-5)
        with pytest.raises(AudioError, match="could not read samples"):
            read_block(fh, 7900, 8100, path)


def test_atomic_path_removes_its_temp_file_on_interrupt(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    target.write_bytes(b"previous")
    for exc in (KeyboardInterrupt(), SystemExit(143)):
        with pytest.raises(type(exc)), atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise exc
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
        assert target.read_bytes() == b"previous"


def test_atomic_path_errors_name_the_target_not_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only folder used to report ``Permission denied: '.out.wav.x1y2.tmp'``."""
    import tempfile

    def denied(*args: object, dir: str, **kw: object) -> None:
        raise PermissionError(13, "Permission denied", os.path.join(dir, ".out.wav.x1y2.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError) as exc, atomic_path(tmp_path / "out.wav"):
        pass
    assert exc.value.filename == str(tmp_path / "out.wav")
    assert ".tmp" not in str(exc.value)


# --------------------------------------------------------------------- load_audio(offset_s=...)


def _ramp_file(path: Path, sr: int = 8000, frames: int = 24000) -> Path:
    """16-bit file whose sample ``i`` is ``i / 32768`` (left) and ``-i / 32768`` (right):
    every decoded sample says which frame it came from, exactly."""
    ramp = np.arange(frames, dtype=np.int16)
    sf.write(path, np.stack([ramp, -ramp], axis=1), sr, subtype="PCM_16")
    return path


def _frames(wave: np.ndarray) -> np.ndarray:
    """Frame indices encoded by :func:`_ramp_file` (and check both channels agree)."""
    np.testing.assert_array_equal(wave[1], -wave[0])
    return (wave[0].astype(np.float64) * 32768).round().astype(np.int64)


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
@pytest.mark.parametrize(
    ("offset_s", "duration_s", "first", "count"),
    [
        (0.0, 0.5, 0, 4000),
        (1.0, 0.5, 8000, 4000),
        (0.25, None, 2000, 22000),  # to the end
        (1 / 3, 0.001, 2667, 8),  # 2666.67 frames rounds to 2667; 8 frames
        (2.5, 10.0, 20000, 4000),  # more than is left: what is left
        (0.0, None, 0, 24000),
    ],
)
def test_load_segment_returns_exactly_the_frames_asked_for(
    tmp_path: Path,
    suffix: str,
    offset_s: float,
    duration_s: float | None,
    first: int,
    count: int,
) -> None:
    path = _ramp_file(tmp_path / f"ramp{suffix}")
    wave, sr = load_audio(path, offset_s=offset_s, duration_s=duration_s)
    assert sr == 8000 and wave.shape == (2, count) and wave.dtype == np.float32
    np.testing.assert_array_equal(_frames(wave), np.arange(first, first + count))


def test_load_segment_then_downmix(tmp_path: Path) -> None:
    path = tmp_path / "ramp.wav"
    ramp = np.arange(24000, dtype=np.int16)
    sf.write(path, np.stack([ramp, ramp // 2], axis=1), 8000, subtype="PCM_16")
    wave, _ = load_audio(path, channels=1, offset_s=1.0, duration_s=0.25)
    frames = np.arange(8000, 10000)
    np.testing.assert_array_equal(wave[0], ((frames + frames // 2) / 2 / 32768).astype(np.float32))


def test_load_segment_then_resample_keeps_the_segment(tmp_path: Path) -> None:
    """Resampling happens after the cut: a segment at twice the rate is the same stretch of
    the ramp, twice as many samples (compared away from the edges, where the sinc rings)."""
    path = _ramp_file(tmp_path / "ramp.wav")
    wave, sr = load_audio(path, sr=16000, offset_s=1.0, duration_s=0.5)
    assert sr == 16000 and wave.shape == (2, 8000)
    expected = (8000 + np.arange(8000) / 2) / 32768
    np.testing.assert_allclose(wave[0, 200:-200], expected[200:-200], atol=2e-4)


def test_audio_error_survives_a_process_pool() -> None:
    """Raised in a builder's worker process, it reaches the parent as the same one-line
    error (it used to break the pool with an unpicklable exception)."""
    import pickle

    from musicrestore.core.audio import AudioError

    err = pickle.loads(pickle.dumps(AudioError("song.ogg", "truncated\nfile")))
    assert isinstance(err, AudioError) and str(err) == "song.ogg: truncated file"


# ------------------------------------------------ what a replaced file keeps, what a write says


def test_atomic_path_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    """``--overwrite`` on a 0600 file left it 0644; a 0444 one became 0644 too."""
    old = os.umask(0o022)
    try:
        for mode in (0o600, 0o444, 0o640, 0o755):
            target = tmp_path / f"x{mode:o}.wav"
            save_audio(target, tone(440, 0.1, 8000), 8000)
            os.chmod(target, mode)
            save_audio(target, tone(220, 0.1, 8000), 8000)
            assert target.stat().st_mode & 0o7777 == mode
            assert load_audio(target)[0].shape == (2, 800)
        new = save_audio(tmp_path / "new.wav", tone(440, 0.1, 8000), 8000)
        assert new.stat().st_mode & 0o777 == 0o644  # a new file: the umask's permissions
        (tmp_path / "link.wav").symlink_to(tmp_path / "x600.wav")
        with atomic_path(tmp_path / "link.wav") as tmp:  # the rename replaces the link itself
            tmp.write_bytes(b"data")
        assert (tmp_path / "link.wav").stat().st_mode & 0o777 == 0o644
        assert (tmp_path / "x600.wav").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_atomic_path_keeps_owner_and_group_where_it_may(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old")
    os.chown(target, 12345, 23456)
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    st = target.stat()
    assert (st.st_uid, st.st_gid, target.read_text()) == (12345, 23456, "new")


@pytest.mark.parametrize("name", ["a" * 236 + ".wav", "b" * 251 + ".wav", "é" * 125 + ".wav"])
def test_any_legal_name_can_be_written(tmp_path: Path, name: str) -> None:
    """A 250-character name failed with ENAMETOOLONG: its temporary name is 14 longer."""
    from musicrestore.core.audio import temp_prefix

    assert len(os.fsencode(name)) <= 255
    path = save_audio(tmp_path / name, tone(440, 0.1, 8000), 8000)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert load_audio(path)[0].shape == (2, 800)
    prefix = temp_prefix(tmp_path / name)
    assert len(os.fsencode(prefix)) + 12 <= 255 and name.startswith(prefix[1:-1])
    assert temp_prefix(tmp_path / "x.wav") == ".x.wav."


@pytest.mark.parametrize(
    "where", ["mkstemp", "write", "replace"], ids=["create", "write", "rename"]
)
@pytest.mark.parametrize(
    "code,cause",
    [
        (errno.EROFS, "read-only file system"),
        (errno.ENOSPC, "no space left on device"),
        (errno.EDQUOT, "disk quota exceeded"),
    ],
)
def test_a_refused_write_names_the_file_and_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, code: int, cause: str
) -> None:
    """A read-only file system was an OSError traceback, a full disk "System error."."""
    import tempfile

    from musicrestore.core.errors import USER_ERRORS, StorageError

    target = tmp_path / "out.wav"
    target.write_bytes(b"previous")

    def refuse(*args: object, **kw: object) -> None:
        raise OSError(code, os.strerror(code), str(tmp_path / ".out.wav.k2j4x9ab.tmp"))

    target_fn = {"mkstemp": (tempfile, "mkstemp"), "write": (sf.SoundFile, "write")}
    monkeypatch.setattr(*target_fn.get(where, (os, "replace")), refuse)
    with pytest.raises(StorageError) as exc:
        save_audio(target, tone(440, 0.1, 8000), 8000)
    assert isinstance(exc.value, USER_ERRORS) and isinstance(exc.value, OSError)
    assert exc.value.errno == code
    assert str(exc.value) == f"{target}: {cause}"
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]
    assert target.read_bytes() == b"previous"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_libsndfile_system_errors_name_their_cause() -> None:
    """libsndfile says only "System error."; the errno behind it says what to do."""
    from musicrestore.core.audio import open_for_writing
    from musicrestore.core.errors import StorageError

    with pytest.raises(StorageError, match="^no space left on device$"):
        open_for_writing("/dev/full", 8000, 1, "PCM_24", "WAV")


def test_write_protected_files(tmp_path: Path) -> None:
    from musicrestore.core.audio import write_protected

    assert not write_protected(tmp_path / "missing.wav")
    path = tmp_path / "x.wav"
    path.write_bytes(b"x")
    assert not write_protected(path)
    path.chmod(0o444)
    assert write_protected(path)  # even for root, whom the mode does not stop
    (tmp_path / "link").symlink_to(path)
    assert not write_protected(tmp_path / "link") and not write_protected(tmp_path)
