"""The builders' units of work: one song's chunk of examples, read, made and written.

A task reads what it needs of one song (the target's stems to find its active segments;
only the chosen segments of every stem for an MSR example, :func:`load_segment`; the whole
mono mix once for the MusicGen-like crops), makes each example with the pure functions of
:mod:`.examples`, encodes the ``{id}_mixture.flac`` / ``{id}_target.flac`` pair and returns
the manifest rows (:class:`musicrestore.data.dataset.Example`) with the encoded files
(:data:`Files`); the builder, the only writer, writes them. Tasks are top-level functions
of picklable arguments, so :mod:`musicrestore.compute` can run them as Dask tasks; the
builders (:mod:`.build`) cut the jobs of a song into chunks of at most
:data:`MSR_TASK_EXAMPLES` / :data:`MUSICGEN_TASK_EXAMPLES`.

- :func:`msr_offsets_task`, :func:`msr_song_task`: seed 004 §4.2 (task ``T2``);
- :func:`musicgen_song_task`: seed 000 §3 (task ``T1``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import audio_info, encode_audio, load_audio
from ..data.dataset import Example
from ..data.stems import is_stand_in, load_mix, load_stem, pad_to, sum_waves
from ..data.taxonomy import Song
from .chains import msr_example
from .examples import active_offsets, energy_cumsum, make_musicgen_example, segment_offset

#: At most this many examples per worker task. An MSR task reads only its segments, so small
#: tasks cost nothing and keep the workers evenly busy (8 per task left one worker idle at the
#: end of a song: 40 Voc examples on 2 workers took 12.1 s, with 2 per task 11.4 s); a
#: MusicGen-like task decodes its whole song once, so it takes more examples per task.
MSR_TASK_EXAMPLES = 2
MUSICGEN_TASK_EXAMPLES = 32

#: What a task returns besides its manifest rows: ``[(file name, encoded bytes)]``.
Files = list[tuple[str, bytes]]


def _rms_db(wave: np.ndarray) -> float:
    ms = float(np.mean(np.square(wave, dtype=np.float64)))
    return 10.0 * math.log10(ms) if ms > 0 else -math.inf


def _encode_pair(
    files: Files, ex_id: str, mixture: np.ndarray, target: np.ndarray, sr: int, subtype: str | None
) -> tuple[str, str]:
    """Encode one example's pair into ``files``; returns the two file names."""
    mix_name, tgt_name = f"{ex_id}_mixture.flac", f"{ex_id}_target.flac"
    files.append((mix_name, encode_audio(mix_name, mixture, sr, subtype)))
    files.append((tgt_name, encode_audio(tgt_name, target, sr, subtype)))
    return mix_name, tgt_name


def msr_offsets_task(
    root: str, song: Song, target: str, sr: int, length: int, active_db: float
) -> list[int]:
    """Phase 1: the target's active segment starts in one song (loads the target stems only)."""
    wave = sum_waves([load_stem(root, s, sr) for s in song.stems_of(target)])
    return [int(o) for o in active_offsets(energy_cumsum(wave), length, sr, active_db)]


def load_segment(
    root: str | os.PathLike[str], song: Song, target: str, sr: int, offset: int, length: int
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """``(target, background, target_stems, background_stems)`` of one segment, stereo at
    ``sr``: the same sums as :func:`musicrestore.data.stems.load_target_and_background` (room
    microphones left out), but each stem file is read only from ``offset`` for ``length``
    samples, so a 10-s example from a 4-minute song does not decode the whole song."""
    chosen = {s.path for s in song.stems_of(target)}
    tgt_stems = [s.path for s in song.stems if s.path in chosen]
    bg_stems = [s.path for s in song.stems if s.path not in chosen and s.group != "MiscRoom"]

    def read(paths: list[str]) -> np.ndarray:
        waves = []
        for rel in paths:
            path = Path(root) / rel
            file_sr, _, frames = audio_info(path)
            if offset / sr * file_sr >= frames:  # a stem that ends before the segment starts
                continue
            wave, _ = load_audio(
                path, sr=sr, channels=2, offset_s=offset / sr, duration_s=length / sr
            )
            waves.append(pad_to(wave, length))
        return sum_waves(waves) if waves else np.zeros((2, length), np.float32)

    return read(tgt_stems), read(bg_stems), tgt_stems, bg_stems


def msr_song_task(
    root: str,
    song: Song,
    target: str,
    sr: int,
    length: int,
    offsets: list[int],
    jobs: list[tuple[str, int]],
    cfg: dict[str, Any],
    split: str,
    subtype: str | None,
) -> tuple[list[Example], Files]:
    """Phase 2: every example of ``jobs`` (``(id, seed)``) from one song, with its files."""
    out: list[Example] = []
    files: Files = []
    embedded = is_stand_in(root)
    for ex_id, seed in jobs:
        offset = segment_offset(offsets, seed)
        tgt, bg, tgt_stems, bg_stems = load_segment(root, song, target, sr, offset, length)
        ex = msr_example(tgt, bg, sr, np.random.default_rng(seed), cfg)
        mix_name, tgt_name = _encode_pair(files, ex_id, ex.mixture, ex.reference, sr, subtype)
        meta = {
            **ex.meta,
            "split": split,
            "offset_s": offset / sr,
            "target_rms_db": _rms_db(tgt),
            "target_stems": tgt_stems,
            "background_stems": bg_stems,
            "embedded": embedded,
        }
        out.append(
            Example(
                id=ex_id,
                task="T2",
                mixture=mix_name,
                target=tgt_name,
                sr=sr,
                duration_s=length / sr,
                song=song.name,
                group=target,
                effects=ex.effects,
                seed=seed,
                meta=meta,
            )
        )
    return out, files


def musicgen_song_task(
    root: str,
    song: Song | str,
    sr: int,
    length_s: float | list[float],
    jobs: list[tuple[str, int]],
    cfg: dict[str, Any],
    split: str,
    active_db: float,
    subtype: str | None,
) -> tuple[list[Example], Files]:
    """Every example of ``jobs`` (``(id, seed)``) from one song, or one file of a clean-music
    folder (``song`` a path), whose mono mix is decoded once, with its files."""
    if isinstance(song, str):  # a file of a clean-music folder (clean_dir)
        mix, name, stand_in = load_audio(Path(root) / song, sr, channels=1)[0], song, False
    else:
        mix, name, stand_in = load_mix(root, song, sr, channels=1), song.name, is_stand_in(root)
    cs = energy_cumsum(mix)
    out: list[Example] = []
    files: Files = []
    for ex_id, seed in jobs:
        clean, degraded, effects, meta = make_musicgen_example(
            mix, sr, seed, cfg, length_s, active_db, cs
        )
        mix_name, tgt_name = _encode_pair(files, ex_id, degraded, clean, sr, subtype)
        out.append(
            Example(
                id=ex_id,
                task="T1",
                mixture=mix_name,
                target=tgt_name,
                sr=sr,
                duration_s=clean.shape[-1] / sr,
                song=name,
                group="mix",
                effects=effects,
                seed=seed,
                meta={**meta, "split": split, "embedded": stand_in},
            )
        )
    return out, files
