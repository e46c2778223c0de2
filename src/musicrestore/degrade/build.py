"""Dataset builders: the degraded MSR sets per target and the MusicGen-like set.

- :func:`build_msr` (seed 004 §4.2): for one target (``"Voc"``, ``"Gtr_EG"``, ...), segments
  of the target's test songs and of its train songs, each a degraded mixture and its clean
  target stem (:func:`.chains.msr_example`); task ``T2``.
- :func:`build_musicgen_like` (seed 000 §3): mono 32 kHz crops of full mixes passed through
  the MusicGen-like artifact chain (:func:`.chains.musicgen_like`); task ``T1``. Test clips
  come from every target's test songs (``taxonomy.test_songs``), train crops from the rest.

Each output folder (``test/``, ``train/``) is a dataset of :mod:`musicrestore.data.dataset`:
``{id}_mixture.flac`` (degraded input), ``{id}_target.flac`` (clean reference) and
``manifest.jsonl`` with every effect and its params. The ``train/`` folders are the cached
training source the trainers read; :func:`make_msr_example` and
:func:`make_musicgen_example` are pure functions of (audio, seed, config), so a trainer can
also generate examples on the fly with the same code.

Determinism: example ``i`` of a split draws everything from its own seed,
``example_seed(seed, target, split, i)``, and goes to song ``i mod n_songs``; adding examples
never changes earlier ones, and the output bytes do not depend on the number of workers
(each worker runs torch single-threaded, as does the in-process path).

Sharding: with ``shard=(i, n)`` a builder writes only the examples whose index is ``i`` mod
``n`` (same ids, seeds and songs), so ``n`` machines can build one dataset;
:mod:`musicrestore.degrade.merge` joins the shard folders into the folder a single build
writes, byte for byte (README, "Team use").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import audio_info, load_audio, save_audio
from ..core.errors import StageError
from ..data.dataset import Example, write_manifest
from ..data.stems import is_stand_in, load_mix, load_stem, pad_to, sum_waves
from ..data.taxonomy import Song, parse_target, read_splits, scan, test_songs
from .chains import (
    MSRExample,
    headroom_gain,
    msr_config,
    msr_example,
    musicgen_config,
    musicgen_like,
    peak_gain,
)

log = logging.getLogger(__name__)

#: Segment start offsets are drawn on this grid (s).
OFFSET_HOP_S = 0.1
#: At most this many examples per worker task. An MSR task reads only its segments; a
#: MusicGen-like task decodes its whole song once, so it takes more examples per task.
MSR_TASK_EXAMPLES = 8
MUSICGEN_TASK_EXAMPLES = 32
#: Peak of the clean MusicGen-like crop before its artifacts (dBFS).
MUSICGEN_CLEAN_PEAK_DBFS = -1.0


# --------------------------------------------------------------------------------------
# pure per-example functions


def example_seed(seed: int, *keys: Any) -> int:
    """A 63-bit seed from ``(seed, *keys)`` by SHA-256: independent across keys and stable
    across Python versions and processes (unlike ``hash``)."""
    text = "|".join(str(k) for k in (seed, *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def energy_cumsum(wave: np.ndarray) -> np.ndarray:
    """``cs[n] = Σ_{m<n} mean_c wave[c, m]²`` (float64, length T+1): any segment's mean
    square in O(1)."""
    power = np.mean(np.square(wave, dtype=np.float64), axis=0)
    return np.concatenate([[0.0], np.cumsum(power)])


def active_offsets(
    cs: np.ndarray, length: int, sr: int, active_db: float = -40.0, hop_s: float = OFFSET_HOP_S
) -> np.ndarray:
    """Start samples (on a ``hop_s`` grid) of the ``length``-sample segments whose RMS is at
    least ``active_db`` dBFS; ``cs`` from :func:`energy_cumsum`.

    Seed 004 counts a stem's active playing time with a -40 dB RMS threshold; a segment
    below it would be a (near-)silent target. A song shorter than ``length`` has the one
    offset 0 (the segment is zero-padded and its RMS counts the padding).
    """
    total = len(cs) - 1
    hop = max(1, int(round(hop_s * sr)))
    starts = np.arange(0, max(total - length, 0) + 1, hop)
    ends = np.minimum(starts + length, total)
    mean_sq = (cs[ends] - cs[starts]) / length
    with np.errstate(divide="ignore"):
        level_db = 10.0 * np.log10(mean_sq)
    return starts[level_db >= active_db]


def _rms_db(wave: np.ndarray) -> float:
    ms = float(np.mean(np.square(wave, dtype=np.float64)))
    return 10.0 * math.log10(ms) if ms > 0 else -math.inf


def segment_offset(offsets: Sequence[int] | np.ndarray, seed: int) -> int:
    """The start sample an example with ``seed`` uses among ``offsets``.

    Drawn from its own stream (``default_rng([seed, 1])``), apart from the degradation
    draws (``default_rng(seed)``), so a worker can pick the offset first and then read just
    that segment from disk: the example is the same as when cropped from the whole song.
    """
    if len(offsets) == 0:
        raise ValueError("no active segment to choose from")
    rng = np.random.default_rng([seed, 1])
    return int(offsets[int(rng.integers(len(offsets)))])


def make_msr_example(
    target: np.ndarray,
    background: np.ndarray,
    sr: int,
    length: int,
    seed: int,
    cfg: Mapping[str, Any] | None = None,
    offsets: Sequence[int] | np.ndarray | None = None,
    active_db: float = -40.0,
) -> tuple[MSRExample, int]:
    """One MSR example from a whole song: pick a segment where the target is active, degrade.

    Args:
        target: ``(C, T)`` the song's target mix (:func:`musicrestore.data.stems.load_target_and_background`).
        background: ``(C, T)`` everything else.
        sr: sample rate (Hz).
        length: segment length in samples.
        seed: the example's seed; the same seed gives the same example.
        cfg: degradation config (:data:`.chains.MSR_DEFAULTS` overrides).
        offsets: allowed start samples (:func:`active_offsets`); computed when ``None``.
        active_db: activity threshold used when ``offsets`` is ``None``.

    Returns:
        ``(example, offset)``; raises ``ValueError`` if the target is never active.
    """
    if offsets is None:
        offsets = active_offsets(energy_cumsum(target), length, sr, active_db)
    offset = segment_offset(offsets, seed)
    tgt = pad_to(target[:, offset : offset + length], length)
    bg = pad_to(background[:, offset : offset + length], length)
    return msr_example(tgt, bg, sr, np.random.default_rng(seed), cfg), offset


def make_musicgen_example(
    mix: np.ndarray,
    sr: int,
    seed: int,
    cfg: Mapping[str, Any] | None = None,
    length_s: float | Sequence[float] = 10.0,
    active_db: float = -40.0,
    cs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """One MusicGen-like pair from a whole mono mix: crop, normalise, degrade.

    The crop length is ``length_s`` or, for a ``(lo, hi)`` pair, uniform in it (training
    crops: 3-4 s, seed 000). The crop starts where the mix is active (above ``active_db``),
    or at the loudest offset if it never is (``meta["active"]`` is then false); the clean crop
    is peak-normalised to -1 dBFS, degraded, and both are scaled by the same headroom gain.

    Returns:
        ``(clean (1, L), degraded (1, L), effects, meta)``.
    """
    cfg = musicgen_config(cfg)
    rng = np.random.default_rng(seed)
    if isinstance(length_s, int | float):
        dur_s = float(length_s)
    else:
        dur_s = float(rng.uniform(float(length_s[0]), float(length_s[1])))
    length = int(round(dur_s * sr))
    cs = energy_cumsum(mix) if cs is None else cs
    offsets = active_offsets(cs, length, sr, active_db)
    active = len(offsets) > 0
    if not active:
        offsets = active_offsets(cs, length, sr, -math.inf)
        ends = np.minimum(offsets + length, len(cs) - 1)
        offsets = offsets[[int(np.argmax(cs[ends] - cs[offsets]))]]
    offset = int(offsets[int(rng.integers(len(offsets)))])
    clean = pad_to(mix[:, offset : offset + length], length)
    clean = (clean.astype(np.float64) * peak_gain(clean, MUSICGEN_CLEAN_PEAK_DBFS)).astype(
        np.float32
    )
    degraded, effects = musicgen_like(clean, rng, cfg, sr=sr)
    g = headroom_gain(clean, degraded, max_peak=float(cfg["max_peak"]))
    meta = {
        "offset_s": offset / sr,
        "active": active,
        "headroom_gain_db": 20.0 * math.log10(g),
        "artifacts": "musicgen_like",
    }
    scale = lambda w: (w.astype(np.float64) * g).astype(np.float32)  # noqa: E731
    return scale(clean), scale(degraded), effects, meta


# --------------------------------------------------------------------------------------
# workers


def _worker_init() -> None:
    """Pool workers run torch on one thread: the pool already uses every core, and the
    result must not depend on the thread count."""
    import torch

    torch.set_num_threads(1)


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _executor(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """One spawn-context process pool for a whole build (``None``: run in this process, on
    one torch thread like the workers).

    Spawn, not fork: a forked child of a process that already ran OpenMP (torch) can hang.
    """
    if workers <= 1:
        with _single_thread():
            yield None
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
        yield pool


def _run_tasks(
    pool: ProcessPoolExecutor | None,
    fn: Callable[..., Any],
    tasks: list[dict[str, Any]],
    desc: str,
    units: list[int] | None = None,
) -> list[Any]:
    """``[fn(**t) for t in tasks]`` on ``pool`` (or in-process), with a tqdm bar counting
    ``units`` (examples) per task; results in task order whatever order they finish in."""
    from tqdm import tqdm

    units = units if units is not None else [1] * len(tasks)
    results: list[Any] = [None] * len(tasks)
    with tqdm(total=sum(units), desc=desc, unit="ex", leave=False) as bar:
        if pool is None:
            for i, task in enumerate(tasks):
                results[i] = fn(**task)
                bar.update(units[i])
            return results
        futures = {pool.submit(fn, **task): i for i, task in enumerate(tasks)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            bar.update(units[i])
    return results


def _chunks(jobs: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(jobs), size):
        yield jobs[i : i + size]


def _save_pair(
    folder: Path, ex_id: str, mixture: np.ndarray, target: np.ndarray, sr: int, subtype: str | None
) -> tuple[str, str]:
    mix_name, tgt_name = f"{ex_id}_mixture.flac", f"{ex_id}_target.flac"
    save_audio(folder / mix_name, mixture, sr, subtype=subtype)
    save_audio(folder / tgt_name, target, sr, subtype=subtype)
    return mix_name, tgt_name


def _msr_offsets_task(
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


def _msr_song_task(
    root: str,
    song: Song,
    target: str,
    sr: int,
    length: int,
    offsets: list[int],
    jobs: list[tuple[str, int]],
    cfg: dict[str, Any],
    folder: str,
    split: str,
    subtype: str | None,
) -> list[Example]:
    """Phase 2: every example of ``jobs`` (``(id, seed)``) from one song, written to ``folder``."""
    out = []
    embedded = is_stand_in(root)
    for ex_id, seed in jobs:
        offset = segment_offset(offsets, seed)
        tgt, bg, tgt_stems, bg_stems = load_segment(root, song, target, sr, offset, length)
        ex = msr_example(tgt, bg, sr, np.random.default_rng(seed), cfg)
        mix_name, tgt_name = _save_pair(Path(folder), ex_id, ex.mixture, ex.reference, sr, subtype)
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
    return out


def _musicgen_song_task(
    root: str,
    song: Song | str,
    sr: int,
    length_s: float | list[float],
    jobs: list[tuple[str, int]],
    cfg: dict[str, Any],
    folder: str,
    split: str,
    active_db: float,
    subtype: str | None,
) -> list[Example]:
    if isinstance(song, str):  # a file of a clean-music folder (clean_dir)
        mix, name, stand_in = load_audio(Path(root) / song, sr, channels=1)[0], song, False
    else:
        mix, name, stand_in = load_mix(root, song, sr, channels=1), song.name, is_stand_in(root)
    cs = energy_cumsum(mix)
    out = []
    for ex_id, seed in jobs:
        clean, degraded, effects, meta = make_musicgen_example(
            mix, sr, seed, cfg, length_s, active_db, cs
        )
        mix_name, tgt_name = _save_pair(Path(folder), ex_id, degraded, clean, sr, subtype)
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
    return out


# --------------------------------------------------------------------------------------
# builders


def effect_rates(examples: Sequence[Example]) -> dict[str, float]:
    """Fraction of examples in which each ``stage/name`` effect fired (at least once)."""
    counts: Counter[str] = Counter()
    for ex in examples:
        counts.update({f"{e['stage']}/{e['name']}" for e in ex.effects})
    n = max(len(examples), 1)
    return {k: counts[k] / n for k in sorted(counts)}


def split_stats(examples: Sequence[Example], n_songs: int) -> dict[str, Any]:
    """A split's entry of ``stats.json``; ``examples`` sorted by id (the manifest's order)."""
    return {
        "examples": len(examples),
        "seconds": round(sum(ex.duration_s for ex in examples), 3),
        "songs": n_songs,
        "effect_rates": effect_rates(examples),
    }


def _split_stats(examples: Sequence[Example], songs: Sequence[Any]) -> dict[str, Any]:
    return split_stats(examples, len(songs))


def clean_folder_split(
    folder: str | os.PathLike[str], test_fraction: float = 0.2
) -> tuple[list[str], list[str]]:
    """A folder of clean music -> ``(test files, train files)``, paths relative to it.

    The files (:func:`musicrestore.core.audio.list_audio`, sorted) are spread evenly: file ``i``
    of ``n`` is a test file when ``floor(i·k/n)`` steps up, ``k = max(1, round(n·f))``, so
    the split depends only on the file names, never on their order on disk. A fraction of
    1 makes every file a test file (a test-only set, as ``benchmarks/real_music.py``
    builds), 0 every file a training file.
    """
    from ..core.audio import list_audio

    if not 0.0 <= test_fraction <= 1.0:
        raise StageError(f"clean_test_fraction: got {test_fraction}; expected 0..1")
    root = Path(folder)
    if not root.is_dir():
        raise StageError(f"clean_dir {folder}: not a folder")
    files = [p.relative_to(root).as_posix() for p in list_audio(root)]
    if not files:
        raise StageError(f"clean_dir {folder}: no audio files (.wav, .flac, .ogg, .mp3)")
    n = len(files)
    k = 0 if test_fraction == 0 else max(1, round(n * test_fraction))
    test_idx = {(j * n) // k for j in range(k)} if k else set()
    test = [f for i, f in enumerate(files) if i in test_idx]
    train = [f for i, f in enumerate(files) if i not in test_idx]
    return test, train


def parse_shard(text: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"i/n"`` (or ``(i, n)``) -> ``(i, n)`` with ``0 <= i < n``; ``None`` stays ``None``.
    Anything else is a one-line :class:`~musicrestore.core.stage.StageError`."""
    if text is None:
        return None
    try:
        i, n = (int(x) for x in (text.split("/") if isinstance(text, str) else text))
    except ValueError:
        raise StageError(f"shard {text!r}: expected i/n, e.g. 0/4") from None
    if not 0 <= i < n:
        raise StageError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def _in_shard(i: int, shard: tuple[int, int] | None) -> bool:
    return shard is None or i % shard[1] == shard[0]


def _shard_stats(stats: dict[str, Any], shard: tuple[int, int] | None) -> None:
    if shard is not None:  # merge.py checks that the shards of one build are complete
        stats["shard"] = {"index": shard[0], "count": shard[1]}


def _workers(workers: int | None) -> int:
    return max(1, int(workers if workers is not None else (os.cpu_count() or 1)))


def _songs_by_name(root: str | os.PathLike[str], names: Sequence[str], what: str) -> list[Song]:
    songs = {s.name: s for s in scan(root)}
    missing = [n for n in names if n not in songs]
    if missing:
        raise StageError(
            f"{root}: {len(missing)} {what} song(s) from the splits are missing, e.g. {missing[0]!r};"
            " re-run the fetch stage or rebuild the splits"
        )
    return [songs[n] for n in sorted(names)]


def build_msr(
    rawstems_root: str | os.PathLike[str],
    splits_dir: str | os.PathLike[str],
    target: str,
    out_dir: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]],
    n_test: int,
    n_train: int,
    segment_s: float = 10.0,
    train_segment_s: float | None = None,
    sr: int = 44100,
    seed: int = 0,
    workers: int | None = None,
    cfg: Mapping[str, Any] | None = None,
    active_db: float = -40.0,
    subtype: str | None = None,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Write the degraded MSR test and train sets of one target (seed 004 §4.2).

    ``out_dir/test`` holds ``n_test`` segments of ``segment_s`` from the target's test songs,
    ``out_dir/train`` ``n_train`` segments of ``train_segment_s`` (default ``segment_s``) from
    its train songs; stereo at ``sr``. Only segments where the target's RMS reaches
    ``active_db`` are used, and songs with no such segment are skipped. ``out_dir`` may also
    be ``{"test": folder, "train": folder}``: the pipeline keeps the two splits in separate
    DVC outputs so that what reads the test sets does not depend on the training segments.
    Each split folder gets a ``stats.json`` (counts, seconds, how often each effect fired).

    Args:
        rawstems_root: RawStems-layout folder.
        splits_dir: folder of ``{Target}_{train,test}.txt`` (:func:`musicrestore.data.taxonomy.write_splits`).
        target: ``"Voc"``, ``"Gtr_EG"``, ...
        out_dir: output folder (the stage passes an atomic temporary folder).
        n_test, n_train: examples per split.
        segment_s, train_segment_s: segment lengths (s).
        sr: sample rate (Hz); RawStems is used at 44.1 kHz.
        seed: base seed; example ``i`` of split ``s`` uses ``example_seed(seed, target, s, i)``.
        workers: processes (default ``os.cpu_count()``); the output does not depend on it.
        cfg: degradation config, overrides of :data:`.chains.MSR_DEFAULTS`.
        active_db: activity threshold of a segment's target RMS (dBFS).
        subtype: FLAC sample format (``None``: :func:`musicrestore.core.audio.save_audio`'s 24-bit;
            ``"PCM_16"`` halves the disk use).
        shard: ``(i, n)``: only the examples whose index is ``i`` mod ``n`` (see the module
            docstring); ``stats.json`` then counts those and records the shard.

    Returns:
        The stats written to ``stats.json``.
    """
    start = time.perf_counter()
    parse_target(target)
    shard = parse_shard(shard)
    config = msr_config(cfg)
    splits = read_splits(splits_dir)
    if target not in splits:
        raise StageError(
            f"{splits_dir}: no split for target {target!r}; have {', '.join(sorted(splits)) or 'none'}"
        )
    train_names, test_names = splits[target]
    root = str(rawstems_root)
    nproc = _workers(workers)
    split_dirs = (
        {k: Path(v) for k, v in out_dir.items()}
        if isinstance(out_dir, Mapping)
        else {split: Path(out_dir) / split for split in ("test", "train")}
    )
    stats: dict[str, Any] = {"target": target, "sr": sr, "seed": seed}
    _shard_stats(stats, shard)
    with _executor(nproc) as pool:
        for split, names, n, seg_s in (
            ("test", test_names, n_test, segment_s),
            ("train", train_names, n_train, train_segment_s or segment_s),
        ):
            folder = split_dirs[split]
            folder.mkdir(parents=True, exist_ok=True)
            length = int(round(seg_s * sr))
            songs = _songs_by_name(root, names, f"{target} {split}") if n > 0 else []
            if n > 0 and not songs:
                raise StageError(
                    f"{splits_dir}: no {split} songs for {target}; set n_{split} to 0 or add songs"
                )
            offsets = _run_tasks(
                pool,
                _msr_offsets_task,
                [
                    dict(
                        root=root, song=s, target=target, sr=sr, length=length, active_db=active_db
                    )
                    for s in songs
                ],
                f"{target} {split}: activity",
            )
            usable = [(s, o) for s, o in zip(songs, offsets, strict=True) if o]
            for s, o in zip(songs, offsets, strict=True):
                if not o:
                    log.warning(
                        "%s: %s is below %s dB RMS everywhere; song skipped",
                        s.name,
                        target,
                        active_db,
                    )
            if n > 0 and not usable:
                raise StageError(
                    f"{target} {split}: no song has a segment where {target} is active (>= {active_db} dB RMS)"
                )
            per_song: dict[int, list[tuple[str, int]]] = {}
            for i in range(n):
                if not _in_shard(i, shard):
                    continue
                per_song.setdefault(i % len(usable), []).append(
                    (f"{target}_{split}_{i:05d}", example_seed(seed, target, split, i))
                )
            tasks, units = [], []
            for k, jobs in sorted(per_song.items()):
                song, song_offsets = usable[k]
                for chunk in _chunks(jobs, MSR_TASK_EXAMPLES):
                    tasks.append(
                        dict(root=root, song=song, target=target, sr=sr, length=length, offsets=song_offsets,
                             jobs=chunk, cfg=config, folder=str(folder), split=split, subtype=subtype)
                    )  # fmt: skip
                    units.append(len(chunk))
            results = _run_tasks(pool, _msr_song_task, tasks, f"{target} {split}", units)
            examples = sorted((ex for chunk in results for ex in chunk), key=lambda ex: ex.id)
            write_manifest(folder, examples)
            stats[split] = _split_stats(examples, [s.name for s, _ in usable])
    stats["build_time_s"] = round(time.perf_counter() - start, 3)
    stats["workers"] = nproc
    for split, folder in split_dirs.items():
        other = "train" if split == "test" else "test"
        _write_stats(folder, {k: v for k, v in stats.items() if k != other})
    return stats


def build_musicgen_like(
    rawstems_root: str | os.PathLike[str],
    splits_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    n_test: int,
    n_train: int,
    test_s: float = 10.0,
    train_crop_s: Sequence[float] = (3.0, 4.0),
    sr: int = 32000,
    seed: int = 0,
    workers: int | None = None,
    cfg: Mapping[str, Any] | None = None,
    active_db: float = -40.0,
    subtype: str | None = None,
    shard: tuple[int, int] | None = None,
    clean_dir: str | os.PathLike[str] | None = None,
    clean_test_fraction: float = 0.2,
) -> dict[str, Any]:
    """Write the MusicGen-like T1 sets (seed 000 §3): mono ``sr`` (32 kHz) clean/degraded pairs.

    ``out_dir/test``: ``n_test`` clips of ``test_s`` from the songs in any target's test list
    (``taxonomy.test_songs``), so no test audio is ever trained on; ``out_dir/train``:
    ``n_train`` crops of uniform length in ``train_crop_s`` from every other song. Clips are
    the full mix (all stems but room microphones) downmixed to mono.

    Args: as :func:`build_msr`; ``cfg`` overrides :data:`.chains.MUSICGEN_DEFAULTS`;
    ``shard`` likewise.
        clean_dir: take the clean music from this folder of audio files (a user's own
            library: WAV, FLAC, OGG, MP3, searched recursively) instead of the RawStems
            mixes; ``rawstems_root`` and ``splits_dir`` are then not read. Each file is a
            "song": :func:`clean_folder_split` holds ``clean_test_fraction`` of them out
            for the test set, the others give the training crops.

    Returns:
        The stats written to ``stats.json``.
    """
    start = time.perf_counter()
    shard = parse_shard(shard)
    config = musicgen_config(cfg)
    nproc = _workers(workers)
    out_dir = Path(out_dir)
    test_list: list[Song] | list[str]
    train_list: list[Song] | list[str]
    if clean_dir is not None:
        root = str(clean_dir)
        test_list, train_list = clean_folder_split(clean_dir, clean_test_fraction)
    else:
        held_out = test_songs(read_splits(splits_dir))
        root = str(rawstems_root)
        test_list = _songs_by_name(root, sorted(held_out), "test")
        train_list = [s for s in scan(rawstems_root) if s.name not in held_out]
    stats: dict[str, Any] = {"sr": sr, "seed": seed}
    if clean_dir is not None:  # the folder's name only: no absolute path in a DVC output
        stats["clean_dir"] = Path(clean_dir).name
    _shard_stats(stats, shard)
    with _executor(nproc) as pool:
        for split, songs, n, length_s in (
            ("test", test_list, n_test, float(test_s)),
            ("train", train_list, n_train, [float(x) for x in train_crop_s]),
        ):
            folder = out_dir / split
            folder.mkdir(parents=True, exist_ok=True)
            if n > 0 and not songs:
                raise StageError(
                    f"musicgen_like {split}: no songs available (check the splits and {root})"
                )
            per_song: dict[int, list[tuple[str, int]]] = {}
            for i in range(n):
                if not _in_shard(i, shard):
                    continue
                per_song.setdefault(i % len(songs), []).append(
                    (f"mgl_{split}_{i:05d}", example_seed(seed, "musicgen_like", split, i))
                )
            tasks, units = [], []
            for k, jobs in sorted(per_song.items()):
                for chunk in _chunks(jobs, MUSICGEN_TASK_EXAMPLES):
                    tasks.append(
                        dict(root=root, song=songs[k], sr=sr, length_s=length_s, jobs=chunk, cfg=config,
                             folder=str(folder), split=split, active_db=active_db, subtype=subtype)
                    )  # fmt: skip
                    units.append(len(chunk))
            results = _run_tasks(pool, _musicgen_song_task, tasks, f"musicgen_like {split}", units)
            examples = sorted((ex for chunk in results for ex in chunk), key=lambda ex: ex.id)
            write_manifest(folder, examples)
            stats[split] = _split_stats(examples, songs)
            stats[split]["inactive"] = sum(1 for ex in examples if not ex.meta["active"])
    stats["build_time_s"] = round(time.perf_counter() - start, 3)
    stats["workers"] = nproc
    _write_stats(out_dir, stats)
    return stats


def _write_stats(out_dir: Path, stats: Mapping[str, Any]) -> None:
    """Write ``stats.json`` without the run-dependent keys (time, workers): the same seed must
    give byte-identical outputs, or DVC would see a changed folder after every re-run."""
    from ..core.audio import atomic_path

    stable = {k: v for k, v in stats.items() if k not in ("build_time_s", "workers")}
    with atomic_path(out_dir / "stats.json") as tmp:
        tmp.write_text(json.dumps(stable, indent=2, sort_keys=True) + "\n")


#: Bounds of the ``msr`` / ``musicgen_like`` blocks (keyword arguments of the builders).
BUILD_RULES: dict[str, Any] = {
    "ranges": {
        "n_test": (0, None),
        "n_train": (0, None),
        "workers": (1, None),
        "sr": (1000, 384000),
        "active_db": (None, 0.0, "a level in dBFS"),
        "clean_test_fraction": (0.0, 1.0),
    },
    "positive": ("segment_s", "train_segment_s", "test_s", "train_crop_s"),
    "pairs": ("train_crop_s",),
}


def check_params(fn: Callable[..., Any], params: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check ``params`` as keyword arguments of ``fn`` (:func:`musicrestore.core.config.merge_kwargs`):
    a key ``fn`` does not take, a wrong type or a value outside :data:`BUILD_RULES` is a
    one-line :class:`~musicrestore.core.config.ConfigError`, so a typo in ``params.yaml`` fails
    loudly instead of falling back to a default. Returns the given keys, converted."""
    from ..core import config

    return config.merge_kwargs(fn, params, where, skip=("shard",), **BUILD_RULES)
