"""Audio I/O and validation shared by every stage.

Waves are float32 NumPy arrays shaped ``(channels, samples)``. Reading goes through
``soundfile`` (WAV/FLAC/OGG/MP3 via libsndfile); resampling through ``julius``
(docs/method.md#offline: no torchaudio); loudness through ``pyloudnorm``. Every problem
with an input is raised as :class:`AudioError`, whose message is one line naming the file
and the problem, so the CLI and the stages can print it and exit non-zero without a
traceback.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import soundfile as sf

from .errors import OS_CAUSES, AudioError, StorageError, quote, user_os_error

MIN_SR_HZ = 1_000
MAX_SR_HZ = 384_000
#: Highest rate :func:`load_audio` resamples to (DXD 8x; anything above is a typo).
MAX_TARGET_SR_HZ = 768_000
MAX_CHANNELS = 2
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def validate_wave(
    wave: np.ndarray, sr: int, source: str | os.PathLike[str] = "<array>"
) -> np.ndarray:
    """Check a ``(C, T)`` wave and return it as contiguous float32.

    Raises:
        AudioError: wrong rank, zero length, more than two channels, NaN/Inf samples or a
            sample rate outside [1 kHz, 384 kHz].
    """
    if not isinstance(sr, int | np.integer) or not MIN_SR_HZ <= int(sr) <= MAX_SR_HZ:
        raise AudioError(source, f"sample rate {sr} Hz is outside {MIN_SR_HZ}..{MAX_SR_HZ} Hz")
    wave = np.asarray(wave)
    if wave.ndim != 2:
        raise AudioError(source, f"expected a (channels, samples) array, got shape {wave.shape}")
    if wave.shape[0] == 0 or wave.shape[0] > MAX_CHANNELS:
        raise AudioError(source, f"{wave.shape[0]} channels; only mono or stereo is supported")
    if wave.shape[1] == 0:
        raise AudioError(source, "zero-length audio")
    if not np.isfinite(wave).all():
        raise AudioError(source, "contains NaN or Inf samples")
    return np.ascontiguousarray(wave, dtype=np.float32)


def audio_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Return ``(sample_rate, channels, frames)`` of a file without decoding it."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file" if not path.is_dir() else "is a folder, not a file")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types; all mean "not audio"
        raise AudioError(path, f"not a readable audio file ({_first_line(exc)})") from None
    return int(info.samplerate), int(info.channels), int(info.frames)


def _checked_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """:func:`audio_info` plus every check that needs no decoding: a WAV whose data chunk is
    all there, mono/stereo, a supported rate, at least one frame.

    The one header validation of the package: :func:`load_audio`, :func:`open_audio` and
    :func:`check_audio` all start here, so a file one of them refuses, all refuse.
    """
    path = Path(path)
    file_sr, file_channels, frames = audio_info(path)
    if path.suffix.lower() == ".wav" and (problem := _wav_truncation(path)):
        raise AudioError(path, problem)
    if file_channels > MAX_CHANNELS:
        raise AudioError(path, f"{file_channels} channels; only mono or stereo is supported")
    if not MIN_SR_HZ <= file_sr <= MAX_SR_HZ:
        raise AudioError(path, f"sample rate {file_sr} Hz is outside {MIN_SR_HZ}..{MAX_SR_HZ} Hz")
    if frames <= 0:
        raise AudioError(path, "zero-length audio")
    return file_sr, file_channels, frames


@contextlib.contextmanager
def open_audio(path: str | os.PathLike[str]) -> Iterator[sf.SoundFile]:
    """A validated :class:`soundfile.SoundFile` for streaming a long input block by block.

    Everything :func:`load_audio` checks up front is checked here too (see
    :func:`_checked_info`), and the last frame is decoded once: a FLAC/OGG cut short keeps
    the frame count of its header, so without the probe the shortfall would only show after
    most of the file had been processed. Reads past what decodes still fail in the caller's
    length check (:func:`read_block`).
    """
    path = Path(path)
    _, _, frames = _checked_info(path)
    try:
        fh = sf.SoundFile(str(path))
    except Exception as exc:
        raise AudioError(path, f"not a readable audio file ({_first_line(exc)})") from None
    with fh:
        if path.suffix.lower() != ".mp3":  # an MP3's frame count is an estimate
            try:
                fh.seek(frames - 1)
                tail = fh.read(1, dtype="float32", always_2d=True)
            except Exception:
                tail = np.empty((0, 1))
            if tail.shape[0] != 1:
                raise AudioError(
                    path, f"truncated file: the header's {frames} frames do not decode"
                )
            fh.seek(0)
        yield fh


def read_block(
    fh: sf.SoundFile, start: int, stop: int, source: str | os.PathLike[str]
) -> np.ndarray:
    """Samples ``[start, stop)`` of an :func:`open_audio` file as validated float32 ``(C, T)``;
    fewer decoded frames than asked for is an :class:`AudioError` (a truncated file)."""
    try:
        fh.seek(start)
        block = fh.read(stop - start, dtype="float32", always_2d=True).T
    except Exception as exc:
        raise AudioError(source, f"cannot decode audio ({_first_line(exc)})") from None
    if block.shape[1] != stop - start:
        raise AudioError(source, f"truncated file: could not read samples {start}..{stop}")
    return validate_wave(block, int(fh.samplerate), source)


def check_audio(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """Validate ``path`` as :func:`open_audio` does, without decoding it; returns
    ``(sample_rate, channels, frames)``. For checking a whole batch before starting it."""
    with open_audio(path) as fh:
        return int(fh.samplerate), int(fh.channels), int(fh.frames)


def load_audio(
    path: str | os.PathLike[str],
    sr: int | None = None,
    channels: int | None = None,
    offset_s: float = 0.0,
    duration_s: float | None = None,
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(C, T)``.

    Args:
        path: WAV, FLAC, OGG or MP3 file.
        sr: resample to this rate (Hz, 1 kHz..768 kHz); ``None`` keeps the file's rate.
        channels: 1 downmixes, 2 upmixes mono to stereo; ``None`` keeps the file's layout.
        offset_s: start reading this many seconds in (>= 0, before the end).
        duration_s: read at most this many seconds (> 0); ``None`` reads to the end.

    Returns:
        ``(wave, sample_rate)`` with ``wave`` shaped ``(C, T)``.
    """
    _check_args(path, sr, channels, offset_s, duration_s)
    file_sr, file_channels, frames = _checked_info(path)
    start = int(round(offset_s * file_sr))
    if start >= frames and not str(path).lower().endswith(".mp3"):
        raise AudioError(
            path, f"offset_s={offset_s} is at or past the end ({frames / file_sr:.3f} s)"
        )
    stop = None if duration_s is None else start + int(round(duration_s * file_sr))
    try:
        data, _ = sf.read(str(path), start=start, stop=stop, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(path, f"cannot decode audio ({_first_line(exc)})") from None
    # libsndfile reports the header's frame count; a truncated file decodes fewer frames.
    expected = (frames if stop is None else min(stop, frames)) - start
    if frames > 0 and data.shape[0] < expected and not str(path).lower().endswith(".mp3"):
        raise AudioError(
            path, f"truncated file: header says {expected} frames, decoded {data.shape[0]}"
        )
    wave = validate_wave(data.T, file_sr, path)
    if channels is not None:
        wave = set_channels(wave, channels)
    if sr is not None and sr != file_sr:
        wave = resample(wave, file_sr, sr)
    return wave, sr or file_sr


def _check_args(
    path: str | os.PathLike[str],
    sr: Any,
    channels: Any,
    offset_s: Any,
    duration_s: Any,
) -> None:
    """One-line errors for arguments that would otherwise divide by zero (``sr=0``), return
    a few samples (``sr=1``) or silently read the wrong part of the file (negative times)."""

    def number(x: Any) -> bool:
        return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)

    if sr is not None and (
        not number(sr) or not MIN_SR_HZ <= sr <= MAX_TARGET_SR_HZ or float(sr) != int(sr)
    ):  # the range first: float() of a huge integer raises
        raise AudioError(
            path,
            f"sr={quote(sr)}: the target rate must be an integer in {MIN_SR_HZ}..{MAX_TARGET_SR_HZ} Hz",
        )
    if channels is not None and channels not in (1, 2):
        raise AudioError(path, f"channels={quote(channels)}: must be 1, 2 or None")
    if not number(offset_s) or not math.isfinite(offset_s) or offset_s < 0:
        raise AudioError(path, f"offset_s={quote(offset_s)}: must be a number >= 0")
    if duration_s is not None and (
        not number(duration_s) or not math.isfinite(duration_s) or duration_s <= 0
    ):
        raise AudioError(path, f"duration_s={quote(duration_s)}: must be a number > 0 or None")


def save_audio(
    path: str | os.PathLike[str], wave: np.ndarray, sr: int, subtype: str | None = None
) -> Path:
    """Write ``(C, T)`` audio atomically: a temporary file in the same folder, then rename.

    A crash never leaves a half-written file under ``path``. ``subtype`` defaults to 24-bit
    PCM for WAV/FLAC (lossless enough for metrics, half the size of float).
    """
    path = Path(path)
    wave = validate_wave(wave, sr, path)
    with (
        atomic_path(path) as tmp,
        open_for_writing(
            tmp, sr, wave.shape[0], _subtype_for(path, wave, subtype), _format(path)
        ) as fh,
    ):
        fh.write(wave.T)
    return path


def encode_audio(name: str, wave: np.ndarray, sr: int, subtype: str | None = None) -> bytes:
    """The bytes :func:`save_audio` would write to a file called ``name`` (its suffix picks
    the format): a Dask task returns these, and the stage process, the only writer, writes
    them (:mod:`musicrestore.compute`)."""
    path = Path(name)
    wave = validate_wave(wave, sr, path)
    buf = io.BytesIO()
    with open_for_writing(
        buf, sr, wave.shape[0], _subtype_for(path, wave, subtype), _format(path)
    ) as fh:
        fh.write(wave.T)
    return buf.getvalue()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def _subtype_for(path: Path, wave: np.ndarray, subtype: str | None) -> str:
    if np.abs(wave).max() > 1.0 and subtype is None and path.suffix.lower() == ".wav":
        return "FLOAT"  # keep out-of-range samples rather than clipping them silently
    return subtype or _default_subtype(path)


#: libsndfile's SFC_SET_ADD_PEAK_CHUNK command (sndfile.h); soundfile does not wrap it.
_SFC_SET_ADD_PEAK_CHUNK = 0x1050


def open_for_writing(
    path: str | os.PathLike[str] | BinaryIO, sr: int, channels: int, subtype: str | None, fmt: str
) -> sf.SoundFile:
    """A soundfile writer whose bytes depend on the samples alone.

    libsndfile adds a PEAK chunk to float WAV files, and that chunk holds the time of
    writing: the same audio written twice would differ, and DVC would see every re-run of a
    stage as a changed output. The chunk is turned off before the first sample is written.

    A write the file system refuses for a reason the user must fix (a full disk, a
    read-only file system, a quota: :data:`~musicrestore.core.errors.OS_CAUSES`) raises a
    :class:`~musicrestore.core.errors.StorageError` saying so, at the open, any ``write``
    or the close, where libsndfile alone says "System error."; :func:`atomic_path` names the
    file the user asked for in it.
    """
    try:
        target = path if hasattr(path, "write") else str(path)
        fh = _Writer(target, "w", sr, channels, subtype=subtype, format=fmt)
    except Exception as exc:
        raise _write_error(exc) from None
    if fmt.upper() == "WAV" and (subtype or "").upper() in ("FLOAT", "DOUBLE"):
        from soundfile import _ffi, _snd  # the C handle; no public API for this command

        _snd.sf_command(fh._file, _SFC_SET_ADD_PEAK_CHUNK, _ffi.NULL, 0)
    return fh


class _Writer(sf.SoundFile):
    """:class:`soundfile.SoundFile` whose write, flush and close failures name their cause
    (see :func:`open_for_writing`)."""

    def write(self, data: Any) -> None:
        try:
            super().write(data)
        except Exception as exc:
            raise _write_error(exc) from None

    def flush(self) -> None:
        try:
            super().flush()
        except Exception as exc:
            raise _write_error(exc) from None

    def close(self) -> None:
        try:
            super().close()
        except Exception as exc:
            raise _write_error(exc) from None


def _write_error(exc: Exception) -> Exception:
    """``exc`` as a :class:`~musicrestore.core.errors.StorageError` (naming no file: the
    writer knows only a temporary name) when an ``errno`` of
    :data:`~musicrestore.core.errors.OS_CAUSES` is behind it: an ``OSError``'s own, or, for
    libsndfile's "System error.", the ``errno`` its failed system call left (cffi keeps it
    per thread, right after each C call); else ``exc`` itself."""
    code = exc.errno if isinstance(exc, OSError) else None
    if isinstance(exc, sf.LibsndfileError):
        from soundfile import _ffi

        code = _ffi.errno
    return StorageError(code) if code is not None and code in OS_CAUSES else exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the body succeeds.

    The temporary file is removed on any exception, :class:`KeyboardInterrupt` included (and
    SIGTERM, which :func:`musicrestore.core.stage.signals_as_exceptions` turns into one).
    Its name is short enough for any name ``path`` may have (:func:`temp_prefix`). The
    file that replaces ``path`` keeps what the file it replaces had: its permission bits
    (a 0600 file stays 0600, a 0444 one 0444) and, where the process may set them, its
    owner and group; a new file gets the umask's usual permissions.

    An ``OSError`` about the temporary name (a read-only folder, a full disk at the rename)
    is re-raised naming ``path``, the file the user asked for; one whose cause the user must
    fix outside the program (:data:`~musicrestore.core.errors.OS_CAUSES`: a read-only file
    system, no space left, a quota), in the body too, is a
    :class:`~musicrestore.core.errors.StorageError` (one line: ``<path>: <cause>``).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if (err := user_os_error(exc)) is None:
            raise
        raise err from None
    tmp: Path | None = None
    try:
        try:
            fd, tmp_name = tempfile.mkstemp(
                prefix=temp_prefix(path), suffix=".tmp", dir=path.parent
            )
        except OSError as exc:
            raise _renamed(exc, path) from None
        tmp = Path(tmp_name)
        os.close(fd)
        try:
            yield tmp
        except OSError as exc:
            if (err := user_os_error(exc, path)) is None:
                raise
            raise err from None
        try:
            keep_metadata(tmp, path)
            os.replace(tmp, path)
        except OSError as exc:
            raise _renamed(exc, path) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def temp_prefix(path: str | os.PathLike[str], room: int = 12) -> str:
    """``.<name>.``: the start of a hidden temporary sibling of ``path`` (``mkstemp`` adds 8
    random characters and the suffix: ``room`` bytes in all, 12 for ``.tmp``).

    The name is cut, at a character boundary, so that the whole temporary name fits the
    folder's longest file name (255 bytes on every common file system) whatever ``path``'s
    own name is: a legal 250-character output name must not fail because its temporary
    name is 14 characters longer.
    """
    path = Path(path)
    try:
        name_max = int(os.pathconf(path.parent, "PC_NAME_MAX"))
    except (OSError, ValueError):
        name_max = 255
    keep = max(name_max - room - 2, 1)  # less the two dots
    name = path.name[:keep]  # every character is at least one byte
    while len(os.fsencode(name)) > keep:
        name = name[:-1]
    return f".{name}."


def keep_metadata(new: str | os.PathLike[str], old: str | os.PathLike[str]) -> None:
    """Give ``new`` (a finished temporary file about to replace ``old``) what ``old`` has:
    its permission bits and, where the process may set them, its owner and group. A new
    file (``old`` missing, or a symbolic link, which the rename replaces rather than
    follows) gets ``0666`` less the umask, the permissions ``open`` gives (``mkstemp``
    makes ``0600``)."""
    try:
        st = os.lstat(old)
    except FileNotFoundError:
        st = None
    if st is None or not stat.S_ISREG(st.st_mode):
        os.chmod(new, 0o666 & ~_umask())
        return
    mine = os.stat(new)
    if (st.st_uid, st.st_gid) != (mine.st_uid, mine.st_gid):
        for uid, gid in ((st.st_uid, st.st_gid), (-1, st.st_gid)):
            try:
                os.chown(new, uid, gid)  # root may; an owner may give a group of its own
                break
            except OSError:
                continue
    os.chmod(new, stat.S_IMODE(st.st_mode))  # after chown, which may clear set-id bits


def write_protected(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an existing file the user marked read-only (no write permission
    bit, e.g. ``0444``) or one this process may not write. Replacing it takes an explicit
    ``--overwrite``: a rename into its folder would replace it silently, even as root."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    return not st.st_mode & 0o222 or not os.access(path, os.W_OK)


def _renamed(exc: OSError, path: Path) -> OSError:
    if (err := user_os_error(exc, path)) is not None:
        return err
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of ``(C, T)`` with julius (sinc, anti-aliased)."""
    if sr_in == sr_out:
        return wave
    import torch

    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
        out = _resampler(int(sr_in), int(sr_out))(x)
    return out.numpy().astype(np.float32, copy=False)


@functools.lru_cache(maxsize=512)
def _resampler(sr_in: int, sr_out: int) -> Any:
    # Building julius's sinc kernels costs tens of ms for awkward rate pairs; reuse them. The
    # degradations draw down-up rates on a 50-Hz grid (202 rates from 12 to 22.05 kHz, two
    # pairs each against the model rate): with 32 entries the cache thrashed and kernel
    # building was ~20% of a T1 training step, and 256 still missed on 40% of the calls
    # (wavenet's 1,200 training crops: 35 s of data work against 25 s with every pair kept).
    # The 404 pairs hold about 300 MB of kernels (0.75 MB each at 32 kHz).
    import julius

    g = math.gcd(sr_in, sr_out)
    return julius.ResampleFrac(sr_in // g, sr_out // g)


def set_channels(wave: np.ndarray, channels: int) -> np.ndarray:
    """Downmix to mono (mean) or duplicate mono to stereo."""
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    if wave.shape[0] == channels:
        return wave
    if channels == 1:
        return wave.mean(axis=0, keepdims=True)
    return np.repeat(wave[:1], 2, axis=0)


def to_mono(wave: np.ndarray) -> np.ndarray:
    return set_channels(wave, 1)


def to_stereo(wave: np.ndarray) -> np.ndarray:
    return set_channels(wave, 2)


def loudness_lufs(wave: np.ndarray, sr: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4) in LUFS; ``-inf`` for silence or clips < 0.4 s."""
    import pyloudnorm

    if wave.shape[-1] < int(0.4 * sr):
        return float("-inf")
    with np.errstate(divide="ignore"):
        return float(pyloudnorm.Meter(sr).integrated_loudness(wave.T.astype(np.float64)))


def list_audio(folder: str | os.PathLike[str]) -> list[Path]:
    """Audio files below ``folder``, sorted, hidden and temporary files excluded."""
    folder = Path(folder)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )


def _wav_truncation(path: Path) -> str | None:
    """libsndfile silently shortens a WAV whose data chunk runs past the end of the file;
    read the RIFF chunk sizes to tell a truncated file from a short one."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None  # RF64/W64 and friends: leave them to libsndfile
        order: Literal["little", "big"] = "little" if head[:4] == b"RIFF" else "big"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            length = int.from_bytes(chunk[4:8], order)
            if chunk[:4] == b"data":
                if pos + 8 + length > size and length != 0xFFFFFFFF:
                    return f"truncated file: data chunk declares {length} bytes, {size - pos - 8} present"
                return None
            pos += 8 + length + (length & 1)
    return None


def _default_subtype(path: Path) -> str:
    return {".flac": "PCM_24", ".wav": "PCM_24", ".ogg": "VORBIS", ".mp3": "MPEG_LAYER_III"}.get(
        path.suffix.lower(), "PCM_24"
    )


def _format(path: Path) -> str:
    fmt = {".flac": "FLAC", ".wav": "WAV", ".ogg": "OGG", ".mp3": "MP3"}.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(
            path, f"unsupported output format {path.suffix!r}; use one of {AUDIO_SUFFIXES}"
        )
    return fmt


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def fit_length(wave: np.ndarray, length: int) -> np.ndarray:
    """Cut or zero-pad ``(C, T)`` to ``length`` samples along the last axis.

    Resamplers, codecs and model round trips can be a sample or two off; every caller that
    must keep an input's length goes through this one function.
    """
    if wave.shape[-1] >= length:
        return wave[..., :length]
    pad = [(0, 0)] * (wave.ndim - 1) + [(0, length - wave.shape[-1])]
    return np.pad(wave, pad)
