from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from musicrestore.audio import (
    AudioError,
    audio_info,
    load_audio,
    loudness_lufs,
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
