"""Getting RawStems onto disk, and the index of what is there.

Source: Zang et al., "Music Source Restoration" (seed 004, §3); the dataset lives on the
Hugging Face Hub as ``yongyizang/RawStems`` (578 songs, 354.13 h of unprocessed stems) in the
layout ``<Artist>|<Song>/<Group>/<SubGroup>/*.{flac,wav,mp3}`` (see :mod:`.taxonomy`).

Three sources, one result (a RawStems-layout folder at ``out_root``):

- ``hf``: :func:`fetch_hf` downloads only the selected songs/groups with
  ``huggingface_hub.snapshot_download`` into the HF cache (resumable: partial blobs resume,
  complete blobs are never fetched again) and hard-links them into ``out_root``. Offline, it
  serves what the cache already holds and says clearly when that is not enough.
- ``local``: :func:`link_local` validates an existing RawStems folder and links its files
  into ``out_root`` (hard links, or symbolic links across filesystems: nothing is copied).
- ``embedded``: :func:`musicrestore.data.embedded.build_embedded` renders the offline stand-in.

:func:`build_index` then lists songs x stems x durations x active seconds (1-s segments over
-40 dB RMS after peak normalisation, as seed 004 counts active playing time).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..core.audio import load_audio
from ..core.config import ConfigError, merge, optional_str_problem, str_list_problem
from ..core.errors import AudioError, LayoutError, StageError
from .taxonomy import TAXONOMY, Song, scan, stem_from_relpath

log = logging.getLogger(__name__)

HF_REPO = "yongyizang/RawStems"
ACTIVE_DB = -40.0

#: Where ``data.source`` can take RawStems from (the module docstring).
SOURCES = ("embedded", "hf", "local")

#: The ``data`` block of params.yaml: its keys, their types and defaults. ``embedded`` holds
#: :func:`musicrestore.data.embedded.build_embedded`'s keywords, checked by
#: :func:`musicrestore.data.embedded.build.embedded_config`; ``split`` the arguments of
#: :func:`musicrestore.data.taxonomy.split_songs` (seed 004 §3: 10 songs or 10 %).
DATA_DEFAULTS: dict[str, Any] = {
    "source": "embedded",
    "local_root": "",
    "songs": [],
    "groups": [],
    "hf": {"repo": HF_REPO, "revision": None},
    "embedded": {},
    "split": {"min_test_songs": 10, "test_fraction": 0.1},
}


def _groups_problem(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(g, str) and g in TAXONOMY for g in value)
    return None if ok else "a list of groups out of " + ", ".join(TAXONOMY)


#: :func:`musicrestore.core.config.merge` rules of the ``data`` block.
DATA_RULES: dict[str, Any] = {
    "ranges": {
        "split.min_test_songs": (0, None),
        "split.test_fraction": (0.0, 1.0, "a fraction"),
    },
    "choices": {"source": SOURCES},
    "checks": {
        "songs": str_list_problem,
        "groups": _groups_problem,
        "hf.revision": optional_str_problem,
    },
    "open_keys": ("embedded",),
}


def data_settings(block: Mapping[str, Any] | None, where: str = "data") -> dict[str, Any]:
    """The ``data`` block merged over :data:`DATA_DEFAULTS` by
    :func:`musicrestore.core.config.merge` (an unknown key, a wrong type or a value outside
    :data:`DATA_RULES` is a one-line :class:`~musicrestore.core.config.ConfigError` naming
    ``data.<key>``); ``data.local_root`` must be set when ``data.source`` is ``local``.
    ``embedded`` comes back as given: only the embedded build checks its keywords."""
    settings: dict[str, Any] = merge(DATA_DEFAULTS, block, where, **DATA_RULES)
    if settings["source"] == "local" and not settings["local_root"]:
        raise ConfigError(f"{where}.local_root: got ''; expected a folder when source is local")
    return settings


def selection_patterns(
    songs: list[str] | None = None, groups: list[str] | None = None
) -> list[str]:
    """``allow_patterns`` for ``snapshot_download`` selecting songs and groups (globs allowed).

    Empty lists select everything. ``groups`` entries are first-level groups (``"Voc"``).
    """
    for g in groups or []:
        if g not in TAXONOMY:
            raise StageError(
                f"unknown group {g!r} in data.groups; expected some of {', '.join(TAXONOMY)}"
            )
    song_globs = [_glob_escape(s) for s in songs] if songs else ["*"]
    group_globs = groups or ["*"]
    return [f"{s}/{g}/**" for s in song_globs for g in group_globs]


def fetch_hf(
    out_root: str | os.PathLike[str],
    repo_id: str = HF_REPO,
    revision: str | None = None,
    songs: list[str] | None = None,
    groups: list[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_workers: int = 8,
) -> Path:
    """Download the selected part of RawStems and hard-link it into ``out_root``.

    Args:
        out_root: folder to fill (created; must not exist yet: stages pass a fresh temp dir).
        repo_id: HF dataset repo.
        revision: branch, tag or commit; ``None`` is ``main``. Pin a commit for reproducibility.
        songs: ``Artist|Song`` names or globs; empty/None = all 578 songs.
        groups: first-level groups; empty/None = all.
        cache_dir: HF cache (default: ``$HF_HOME/hub``); keeps downloads across runs.
        max_workers: parallel file downloads.

    Raises:
        StageError: the Hub is unreachable and the cache lacks the selection, or the
            selection matches no file.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = selection_patterns(songs, groups)
    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=revision,
                allow_patterns=patterns,
                cache_dir=None if cache_dir is None else Path(cache_dir),
                max_workers=max_workers,
            )
        )
    except (LocalEntryNotFoundError, OSError, HfHubHTTPError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageError(
            f"cannot fetch {repo_id} from the Hugging Face Hub ({first}); when offline, pre-fill the HF "
            f"cache (HF_HOME) or set data.source to 'local' (data.local_root) or 'embedded'"
        ) from None
    files = [
        p
        for p in sorted(snapshot.rglob("*"))
        if p.is_file() and _selected(p.relative_to(snapshot).as_posix(), patterns)
    ]
    if not files:
        raise StageError(
            f"{repo_id}: no file matches songs={songs or 'all'} groups={groups or 'all'} in the snapshot at {snapshot}"
        )
    out_root = Path(out_root)
    for src in tqdm(files, desc="linking RawStems", unit="file", disable=None):
        rel = src.relative_to(snapshot)
        try:
            stem_from_relpath(rel)
        except LayoutError:
            continue  # README, metadata...: not stems
        dst = out_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(src.resolve(), dst)
    return out_root


def link_local(
    src_root: str | os.PathLike[str],
    out_root: str | os.PathLike[str],
    songs: list[str] | None = None,
    groups: list[str] | None = None,
) -> Path:
    """Validate an existing RawStems folder and link the selected stems into ``out_root``.

    Files are hard-linked (no extra disk space; DVC hashes them as ordinary files) and
    symbolic-linked where a hard link is impossible (another filesystem); never copied.
    """
    src_root = Path(src_root).expanduser().resolve()
    if not src_root.is_dir():
        raise StageError(f"data.local_root {src_root} is not a folder; point it at a RawStems copy")
    found = scan(src_root)
    if not found:
        raise StageError(
            f"{src_root}: no <Artist>|<Song>/<Group>/... audio found; is this a RawStems folder?"
        )
    wanted = [s for s in found if not songs or any(fnmatch.fnmatchcase(s.name, p) for p in songs)]
    stems = [st for song in wanted for st in song.stems if not groups or st.group in groups]
    if not stems:
        raise StageError(
            f"{src_root}: nothing matches data.songs={songs or 'all'} data.groups={groups or 'all'}"
        )
    out_root = Path(out_root)
    for stem in tqdm(stems, desc="linking RawStems", unit="file", disable=None):
        dst = out_root / stem.path
        dst.parent.mkdir(parents=True, exist_ok=True)
        src = src_root / stem.path
        try:
            os.link(src, dst)
        except OSError:
            dst.symlink_to(src)
    return out_root


def active_seconds(wave: np.ndarray, sr: int, threshold_db: float = ACTIVE_DB) -> int:
    """1-s segments whose RMS exceeds ``threshold_db`` after peak normalisation (seed 004 §3)."""
    peak = float(np.abs(wave).max())
    if peak == 0.0:
        return 0
    mono = wave.mean(axis=0) / peak
    n = mono.shape[-1] // sr
    if n == 0:
        return 0
    seg = mono[: n * sr].reshape(n, sr)
    rms_db = 10 * np.log10(np.mean(seg**2, axis=1) + 1e-12)
    return int(np.sum(rms_db > threshold_db))


def _index_row(args: tuple[str, str, str, str, str]) -> dict[str, object]:
    root, song, group, subgroup, relpath = args
    wave, sr = load_audio(Path(root) / relpath)
    return {
        "song": song,
        "group": group,
        "subgroup": subgroup,
        "path": relpath,
        "sr": sr,
        "channels": wave.shape[0],
        "duration_s": round(wave.shape[-1] / sr, 3),
        "active_s": active_seconds(wave, sr),
    }


def build_index(
    root: str | os.PathLike[str], songs: list[Song] | None = None, workers: int | None = None
) -> pd.DataFrame:
    """One row per stem: song, group, subgroup, path, sr, channels, duration_s, active_s."""
    songs = scan(root) if songs is None else songs
    jobs = [(str(root), s.song, s.group, s.subgroup, s.path) for song in songs for s in song.stems]
    workers = workers or os.cpu_count() or 1
    rows: list[dict[str, object]] = []
    try:
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(workers) as pool:
                rows = list(
                    tqdm(
                        pool.map(_index_row, jobs, chunksize=4),
                        total=len(jobs),
                        desc="indexing",
                        unit="stem",
                        disable=None,
                    )
                )
        else:
            rows = [_index_row(j) for j in tqdm(jobs, desc="indexing", unit="stem", disable=None)]
    except AudioError as exc:
        raise StageError(f"bad stem file in the dataset: {exc}") from None
    columns = ["song", "group", "subgroup", "path", "sr", "channels", "duration_s", "active_s"]
    return pd.DataFrame(rows, columns=columns)


def index_summary(index: pd.DataFrame) -> dict[str, object]:
    """Headline numbers of an index: songs, stems, hours, groups populated (songs per group)."""
    per_song = index.groupby("song")["duration_s"].max()
    return {
        "songs": int(index["song"].nunique()),
        "stems": int(len(index)),
        "hours": round(float(per_song.sum()) / 3600, 4),
        "stem_hours": round(float(index["duration_s"].sum()) / 3600, 4),
        "active_hours": round(float(index["active_s"].sum()) / 3600, 4),
        "songs_per_group": {g: int(n) for g, n in index.groupby("group")["song"].nunique().items()},
    }


def _selected(relpath: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(relpath, p) for p in patterns)


def _glob_escape(name: str) -> str:
    # fnmatch has no escape for "[", which appears in real song titles; "[[]" matches it.
    return name if any(c in name for c in "*?") else name.replace("[", "[[]")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed
        shutil.copy2(src, dst)
