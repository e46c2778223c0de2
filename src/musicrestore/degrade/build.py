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
training source the trainers read.

This module owns the orchestration only: which songs a split uses (the splits, or a clean
folder: :func:`clean_folder_split`), which example goes to which song with which seed, and
the checked keyword arguments of the builders (:func:`check_params`). The rest lives beside it:

- :mod:`.examples`: the pure per-example functions (seeds, activity, the two examples);
- :mod:`.tasks`: one song's chunk of examples read, made and encoded (a Dask task);
- :mod:`musicrestore.compute`: where the tasks run (in this process, a local Dask cluster or
  a remote one); the builder writes what they return;
- :mod:`.stats`: each split's ``stats.json``.

Determinism: example ``i`` of a split draws everything from its own seed,
``example_seed(seed, target, split, i)``, and goes to song ``i mod n_songs``; adding examples
never changes earlier ones, and the output bytes do not depend on the number of workers or
on the order in which the tasks finish (tests/test_compute.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..compute import Engine
from ..core.audio import write_bytes
from ..core.config import (
    REQUIRED,
    SEED_RANGE,
    ConfigError,
    as_mapping,
    merge,
    merge_kwargs,
    optional_str_problem,
    signature_defaults,
)
from ..core.errors import LayoutError, StageError
from ..core.paths import plain_name
from ..data.dataset import Example, write_manifest
from ..data.taxonomy import Song, parse_target, read_splits, scan, test_songs
from .chains import msr_config, musicgen_config
from .examples import example_seed
from .stats import split_stats, write_stats
from .tasks import (
    MSR_TASK_EXAMPLES,
    MUSICGEN_TASK_EXAMPLES,
    Files,
    msr_offsets_task,
    msr_song_task,
    musicgen_song_task,
)

log = logging.getLogger(__name__)


def _songs_by_name(root: str | os.PathLike[str], names: Sequence[str], what: str) -> list[Song]:
    songs = {s.name: s for s in scan(root)}
    missing = [n for n in names if n not in songs]
    if missing:
        raise StageError(
            f"{root}: {len(missing)} {what} song(s) from the splits are missing, e.g. {missing[0]!r};"
            " re-run the fetch stage or rebuild the splits"
        )
    return [songs[n] for n in sorted(names)]


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


def chunks(jobs: list[Any], size: int) -> list[list[Any]]:
    """``jobs`` in consecutive lists of at most ``size`` (one task each)."""
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def _run_and_write(
    engine: Engine,
    fn: Callable[..., tuple[list[Example], Files]],
    tasks: list[dict[str, Any]],
    units: list[int],
    folder: Path,
    desc: str,
) -> list[Example]:
    """Run the example tasks, write each task's files into ``folder`` as it finishes (this
    process is the only writer), and return every manifest row, sorted by id."""
    examples: list[Example] = []
    for _, (rows, files) in engine.imap(fn, tasks, desc, units):
        for name, data in files:
            write_bytes(folder / plain_name(name, f"{desc}: file"), data)
        examples.extend(rows)
    return sorted(examples, key=lambda ex: ex.id)


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
    cfg: Mapping[str, Any] | None = None,
    active_db: float = -40.0,
    subtype: str | None = None,
    engine: Engine | None = None,
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
        cfg: degradation config, overrides of :data:`.chains.MSR_DEFAULTS`.
        active_db: activity threshold of a segment's target RMS (dBFS).
        subtype: FLAC sample format (``None``: :func:`musicrestore.core.audio.save_audio`'s 24-bit;
            ``"PCM_16"`` halves the disk use).
        engine: where the tasks run (:func:`musicrestore.compute.engine`; ``None``: in this
            process); the output does not depend on it.

    Returns:
        The stats written to ``stats.json``.
    """
    start = time.perf_counter()
    parse_target(target)
    config = msr_config(cfg)
    splits = read_splits(splits_dir)
    if target not in splits:
        raise StageError(
            f"{splits_dir}: no split for target {target!r}; have {', '.join(sorted(splits)) or 'none'}"
        )
    train_names, test_names = splits[target]
    root = str(rawstems_root)
    engine = engine or Engine(None)
    split_dirs = (
        {k: Path(v) for k, v in out_dir.items()}
        if isinstance(out_dir, Mapping)
        else {split: Path(out_dir) / split for split in ("test", "train")}
    )
    stats: dict[str, Any] = {"target": target, "sr": sr, "seed": seed}
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
        offsets = engine.map(
            msr_offsets_task,
            [
                dict(root=root, song=s, target=target, sr=sr, length=length, active_db=active_db)
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
            per_song.setdefault(i % len(usable), []).append(
                (f"{target}_{split}_{i:05d}", example_seed(seed, target, split, i))
            )
        tasks, units = [], []
        for k, jobs in sorted(per_song.items()):
            song, song_offsets = usable[k]
            for chunk in chunks(jobs, MSR_TASK_EXAMPLES):
                tasks.append(
                    dict(root=root, song=song, target=target, sr=sr, length=length, offsets=song_offsets,
                         jobs=chunk, cfg=config, split=split, subtype=subtype)
                )  # fmt: skip
                units.append(len(chunk))
        examples = _run_and_write(engine, msr_song_task, tasks, units, folder, f"{target} {split}")
        write_manifest(folder, examples)
        stats[split] = split_stats(examples, len(usable))
    stats["build_time_s"] = round(time.perf_counter() - start, 3)
    stats["workers"] = engine.workers
    for split, folder in split_dirs.items():
        other = "train" if split == "test" else "test"
        write_stats(folder, {k: v for k, v in stats.items() if k != other})
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
    cfg: Mapping[str, Any] | None = None,
    active_db: float = -40.0,
    subtype: str | None = None,
    engine: Engine | None = None,
    clean_dir: str | os.PathLike[str] | None = None,
    clean_test_fraction: float = 0.2,
) -> dict[str, Any]:
    """Write the MusicGen-like T1 sets (seed 000 §3): mono ``sr`` (32 kHz) clean/degraded pairs.

    ``out_dir/test``: ``n_test`` clips of ``test_s`` from the songs in any target's test list
    (``taxonomy.test_songs``), so no test audio is ever trained on; ``out_dir/train``:
    ``n_train`` crops of uniform length in ``train_crop_s`` from every other song. Clips are
    the full mix (all stems but room microphones) downmixed to mono.

    Args: as :func:`build_msr`; ``cfg`` overrides :data:`.chains.MUSICGEN_DEFAULTS`.
        clean_dir: take the clean music from this folder of audio files (a user's own
            library: WAV, FLAC, OGG, MP3, searched recursively) instead of the RawStems
            mixes; ``rawstems_root`` and ``splits_dir`` are then not read. Each file is a
            "song": :func:`clean_folder_split` holds ``clean_test_fraction`` of them out
            for the test set, the others give the training crops.

    Returns:
        The stats written to ``stats.json``.
    """
    start = time.perf_counter()
    config = musicgen_config(cfg)
    engine = engine or Engine(None)
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
            per_song.setdefault(i % len(songs), []).append(
                (f"mgl_{split}_{i:05d}", example_seed(seed, "musicgen_like", split, i))
            )
        tasks, units = [], []
        for k, jobs in sorted(per_song.items()):
            for chunk in chunks(jobs, MUSICGEN_TASK_EXAMPLES):
                tasks.append(
                    dict(root=root, song=songs[k], sr=sr, length_s=length_s, jobs=chunk, cfg=config,
                         split=split, active_db=active_db, subtype=subtype)
                )  # fmt: skip
                units.append(len(chunk))
        examples = _run_and_write(
            engine, musicgen_song_task, tasks, units, folder, f"musicgen_like {split}"
        )
        write_manifest(folder, examples)
        stats[split] = split_stats(examples, len(songs))
        stats[split]["inactive"] = sum(1 for ex in examples if not ex.meta["active"])
    stats["build_time_s"] = round(time.perf_counter() - start, 3)
    stats["workers"] = engine.workers
    write_stats(out_dir, stats)
    return stats


#: Bounds of the ``msr`` / ``musicgen_like`` blocks (keyword arguments of the builders).
BUILD_RULES: dict[str, Any] = {
    "ranges": {
        "n_test": (0, None),
        "n_train": (0, None),
        "sr": (1000, 384000, "a sample rate in Hz"),
        "active_db": (-200.0, 0.0, "a level in dBFS"),
        "clean_test_fraction": (0.0, 1.0),
        "seed": SEED_RANGE,
    },
    "positive": ("segment_s", "train_segment_s", "test_s", "train_crop_s"),
    "pairs": ("train_crop_s",),
    "choices": {"subtype": ("PCM_16", "PCM_24", "PCM_S8")},  # FLAC's sample formats
    "checks": {"clean_dir": optional_str_problem},
}

#: Builder arguments the stage passes itself (paths, the engine, the chain config, which the
#: block holds as ``degrade``); a params block may not set them.
STAGE_ARGS = ("engine", "cfg", "rawstems_root", "splits_dir", "target", "out_dir")


def check_params(fn: Callable[..., Any], params: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check ``params`` as keyword arguments of ``fn`` (:func:`musicrestore.core.config.merge_kwargs`):
    a key ``fn`` does not take (or one the stage passes itself, :data:`STAGE_ARGS`), a wrong
    type or a value outside :data:`BUILD_RULES` is a one-line
    :class:`~musicrestore.core.config.ConfigError`, so a typo in ``params.yaml`` fails loudly
    instead of falling back to a default. Returns the given keys, converted."""
    return merge_kwargs(fn, params, where, skip=STAGE_ARGS, **BUILD_RULES)


def _targets_problem(value: Any) -> str | None:
    """``None`` for a list of target names :func:`musicrestore.data.taxonomy.parse_target` takes."""
    try:
        if isinstance(value, list) and all(isinstance(t, str) for t in value):
            for target in value:
                parse_target(target)
            return None
    except LayoutError:
        pass
    return "a list of targets (Voc, Rhy, ..., Gtr_AG, Gtr_EG)"


#: The builder and the chain config of each block :func:`block_settings` reads.
_BUILDERS: dict[str, tuple[Callable[..., Any], Callable[[Any], dict[str, Any]]]] = {
    "msr": (build_msr, msr_config),
    "musicgen_like": (build_musicgen_like, musicgen_config),
}


def block_settings(block: Mapping[str, Any] | None, seed: int, where: str) -> dict[str, Any]:
    """A builder's whole params block (``msr`` or ``musicgen_like``, named by ``where``),
    checked before any work: ``{"kwargs": the builder's keywords, converted, with ``seed``
    defaulting to the pipeline's; "cfg": the ``degrade`` overrides as given (the builder
    merges them itself); "degrade": the full chain config (:func:`.chains.msr_config` or
    :func:`.chains.musicgen_config`)}``. ``msr.targets`` (read by ``dvc.yaml``'s ``foreach``)
    must be a list of targets. Every problem is a one-line
    :class:`~musicrestore.core.config.ConfigError` naming ``<where>.<key>``."""
    fn, chain = _BUILDERS[where]
    given = dict(as_mapping(block, where))
    if where == "msr" and "targets" in given:
        targets = {"targets": given.pop("targets")}
        merge({"targets": []}, targets, where, checks={"targets": _targets_problem})
    cfg = given.pop("degrade", None)
    kwargs = check_params(fn, given, where)
    kwargs.setdefault("seed", seed)
    required = signature_defaults(fn, STAGE_ARGS)[0]
    if missing := [k for k, v in required.items() if v is REQUIRED and k not in kwargs]:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    try:
        degrade = chain(cfg)
    except ConfigError as exc:  # the chain names its block "degrade": give the full path
        raise ConfigError(f"{where}.{exc}") from None
    return {"kwargs": kwargs, "cfg": cfg, "degrade": degrade}
