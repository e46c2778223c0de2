"""Build the whole embedded dataset: plan, render in parallel, describe, swap into place."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ...core.errors import StageError
from ...core.stage import output_dir
from ..taxonomy import GROUPS, TAXONOMY
from .arrangement import SongPlan, StemPlan, plan_songs
from .catalogue import PROGRAM_NAMES
from .render import render_song


def render_job(args: tuple[SongPlan, str, float, int]) -> dict[str, Any]:
    return render_song(*args)


def build_embedded(
    out_root: str | os.PathLike[str],
    n_songs: int = 24,
    duration_s: float = 30.0,
    sr: int = 44100,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    bpm_range: tuple[float, float] = (70.0, 140.0),
    max_transpose: int = 5,
) -> dict[str, Any]:
    """Render the embedded RawStems-layout stand-in into ``out_root`` (atomically).

    Args:
        out_root: dataset folder; replaced only when the build succeeds.
        n_songs: songs to render (24 gives every target group 12+ songs).
        duration_s: length of every stem (all stems of a song are equally long).
        sr: sample rate in Hz (RawStems is used at 44.1 kHz).
        seed: the same seed renders byte-identical FLACs.
        workers: processes (default: CPU count); 1 renders in this process.
        progress: show a progress bar and print the build time.
        bpm_range: tempo range in quarter notes per minute.
        max_transpose: songs are transposed by up to this many semitones either way.

    Returns:
        Stats: ``songs``, ``stems``, ``groups`` and ``targets`` (songs each appears in),
        ``hours`` (song audio) and ``stem_hours``, ``build_s``, ``parse_s`` (total).
    """
    from tqdm import tqdm

    _check_config(n_songs, duration_s, sr, bpm_range, max_transpose)
    t0 = time.perf_counter()
    plans = plan_songs(n_songs, seed, bpm_range=bpm_range, max_transpose=max_transpose)
    workers = max(1, min(workers or len(os.sched_getaffinity(0)), n_songs))
    with output_dir(out_root) as tmp:
        jobs = [(p, str(tmp), float(duration_s), int(sr)) for p in plans]
        bar = tqdm(total=n_songs, desc="embedded songs", unit="song", disable=not progress)
        records = []
        if workers == 1:
            for job in jobs:
                records.append(render_job(job))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for rec in pool.map(render_job, jobs):
                    records.append(rec)
                    bar.update()
        bar.close()
        stats = _stats(plans, duration_s)
        meta = _description(plans, records, stats, seed=seed, duration_s=duration_s, sr=sr)
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        (tmp / "README.txt").write_text(_readme(meta))
    stats["build_s"] = round(time.perf_counter() - t0, 2)
    stats["parse_s"] = round(sum(r["parse_s"] for r in records), 2)
    if progress:
        print(
            f"embedded: {stats['songs']} songs, {stats['stems']} stems, "
            f"{stats['hours']:.2f} h in {stats['build_s']:.1f} s "
            f"(score parsing {stats['parse_s']:.1f} s) -> {out_root}",
            file=sys.stderr,
        )
    return stats


#: Bounds of the ``data.embedded`` block (:func:`build_embedded`'s keywords), as
#: :func:`musicrestore.core.config.merge` rules; :func:`_check_config` says the same.
EMBEDDED_RULES: dict[str, Any] = {
    "ranges": {
        "n_songs": (1, None),
        "duration_s": (1.0, None),
        "sr": (8000, 192000, "a sample rate in Hz"),
        "bpm_range": (20.0, 300.0, "a tempo in BPM"),
        "max_transpose": (0, 12, "semitones"),
        "workers": (1, None),
    },
    "pairs": ("bpm_range",),
}


def embedded_config(
    block: Mapping[str, Any] | None, where: str = "data.embedded"
) -> dict[str, Any]:
    """The ``data.embedded`` block as keywords of :func:`build_embedded` (``out_root`` and
    ``seed`` are the stage's), through :func:`musicrestore.core.config.merge_kwargs`: an
    unknown key, a wrong type or a value outside :data:`EMBEDDED_RULES` is a one-line
    :class:`~musicrestore.core.config.ConfigError` naming ``data.embedded.<key>``."""
    from ...core.config import merge_kwargs

    return merge_kwargs(build_embedded, block, where, skip=("out_root", "seed"), **EMBEDDED_RULES)


def _check_config(
    n_songs: int,
    duration_s: float,
    sr: int,
    bpm_range: tuple[float, float],
    max_transpose: int,
) -> None:
    """Bad ``data.embedded`` values fail before any work, with one line naming the key."""
    problems = []
    if int(n_songs) < 1:
        problems.append(f"n_songs must be >= 1 (got {n_songs})")
    if not float(duration_s) >= 1.0:
        problems.append(f"duration_s must be >= 1 s (got {duration_s})")
    if not 8000 <= int(sr) <= 192000:
        problems.append(f"sr must be 8000..192000 Hz (got {sr})")
    lo, hi = (float(x) for x in bpm_range)
    if not 20.0 <= lo <= hi <= 300.0:
        problems.append(f"bpm_range must be [lo, hi] within 20..300 (got {list(bpm_range)})")
    if not 0 <= int(max_transpose) <= 12:
        problems.append(f"max_transpose must be 0..12 semitones (got {max_transpose})")
    if problems:
        raise StageError("embedded dataset: " + "; ".join(problems))


def _stats(plans: list[SongPlan], duration_s: float) -> dict[str, Any]:
    groups: dict[str, int] = {}
    targets: dict[str, int] = {}
    for plan in plans:
        for g in sorted({s.group for s in plan.stems}):
            groups[g] = groups.get(g, 0) + 1
        for t in sorted(
            {s.group for s in plan.stems} | {s.kind for s in plan.stems if s.group == "Gtr"}
        ):
            targets[t] = targets.get(t, 0) + 1
    n_stems = sum(len(p.stems) for p in plans)
    return {
        "songs": len(plans),
        "stems": n_stems,
        "groups": {g: groups[g] for g in GROUPS if g in groups},
        "targets": dict(sorted(targets.items())),
        "hours": round(len(plans) * duration_s / 3600, 4),
        "stem_hours": round(n_stems * duration_s / 3600, 4),
    }


def _description(
    plans: list[SongPlan], records: list[dict[str, Any]], stats: dict[str, Any], **config: Any
) -> dict[str, Any]:
    """``dataset.json``: deterministic (no timings), so a rebuild with one seed hashes equal."""
    import music21

    rec = {r["song"]: r for r in records}
    return {
        "name": "musicrestore embedded RawStems stand-in",
        "stand_in": True,
        "note": "Synthetic STAND-IN for RawStems: music21 corpus scores rendered per part with "
        "the TimGM6mb General MIDI SoundFont. Not real recordings.",
        "layout": "<Artist>|<Song>/<Group>/<SubGroup>/<stem>.flac (seed 004 RawStems layout)",
        "soundfont": "TimGM6mb.sf2 (bundled with pretty_midi)",
        "renderer": "tinysoundfont",
        "music21_version": music21.__version__,
        "taxonomy": {g: list(s) for g, s in TAXONOMY.items()},
        **config,
        **stats,
        "songs": [
            {
                "song": p.name,
                "composer": p.piece.artist,
                "corpus_path": p.piece.corpus,
                "seed": p.seed,
                "bpm": p.bpm,
                "transpose": p.transpose,
                "time_signature": rec[p.name]["time_signature"],
                "loops": rec[p.name]["loops"],
                "stems": [
                    {
                        "path": f"{p.name}/{s.relpath}",
                        "group": s.group,
                        "subgroup": s.subgroup,
                        "program": s.program,
                        "instrument": _instrument(s),
                        "role": s.role,
                        "parts": rec[p.name]["parts"][s.relpath],
                        "texture": s.texture,
                        "pan": s.pan,
                        "level_db": s.level_db,
                    }
                    for s in p.stems
                ],
            }
            for p in plans
        ],
        "n_songs": stats["songs"],
    }


def _instrument(stem: StemPlan) -> str:
    if stem.program is not None:
        return PROGRAM_NAMES[stem.program]
    return "GM standard drum kit" if stem.role == "drums" else f"GM percussion ({stem.texture})"


def _readme(meta: dict[str, Any]) -> str:
    lines = [
        "musicrestore embedded dataset: a synthetic STAND-IN for RawStems",
        "=" * 64,
        "",
        *textwrap.wrap(
            "This folder has the RawStems layout and taxonomy (Zang et al., Music Source "
            "Restoration, seed 004) but NOT its audio. Every song is a real composition from "
            f"the music21 corpus (music21 {meta['music21_version']}), arranged for a band and "
            "rendered part by part with the TimGM6mb General MIDI SoundFont (bundled with "
            "pretty_midi) by tinysoundfont. Drum parts are generated to fit each piece's meter "
            "and tempo. Voices are choir patches, not singers. Results on this data check the "
            "pipeline; they are not research results. Say so in every report that uses it.",
            width=88,
        ),
        "",
        f"seed {meta['seed']}, {meta['n_songs']} songs x {meta['duration_s']} s, "
        f"{meta['sr']} Hz stereo FLAC (16 bit), {meta['stems']} stems",
        "songs per group: " + ", ".join(f"{g} {n}" for g, n in meta["groups"].items()),
        "",
        "Per-song instrumentation (dataset.json has pans, levels and parts):",
    ]
    for song in meta["songs"]:
        lines.append(
            f"  {song['song']}  ({song['corpus_path']}, {song['bpm']:.0f} BPM, "
            f"{song['time_signature']}, transpose {song['transpose']:+d})"
        )
        for s in song["stems"]:
            lines.append(
                f"      {s['path'].split('/', 1)[1]:<34} {s['instrument']} ({s['role']}, {s['texture']})"
            )
    return "\n".join(lines) + "\n"
