"""Merge the shard folders of one sharded build into the folder a single build writes.

A builder run with ``shard=(i, n)`` (``--shard i/n`` on the ``build_msr`` and
``build_musicgen_like`` stage scripts) writes the examples whose index is ``i`` mod ``n``,
with the ids, seeds and songs of the single build, into the usual layout: dataset folders
(``manifest.jsonl`` and the audio it names) and ``stats.json``, whose ``shard`` entry says
which shard it is. :func:`merge_shards` puts the shards back together:

- every dataset folder (the shard folder itself, as ``build_msr`` writes it, or its
  ``test/`` and ``train/`` subfolders, as ``build_musicgen_like`` does) gets the union of
  the shards' audio files and one manifest sorted by id, as the builder sorts it;
- every ``stats.json`` is recomputed from the merged manifests
  (:func:`musicrestore.degrade.stats.split_stats`), without the ``shard`` entry.

The result equals the single-machine build byte for byte (tested). The merge refuses shards
of different builds (other seed, target, rate or shard count), a missing or repeated shard,
and two shards holding different bytes under one name. Audio is hard-linked when the shard
folders share the output's filesystem, copied otherwise.

Command line (the output folder is replaced atomically)::

    python -m musicrestore.degrade.merge OUT SHARD_DIR [SHARD_DIR ...]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import StageError
from ..core.stage import main_guard, output_dir
from ..data.dataset import MANIFEST, Example, read_manifest
from .stats import split_stats, write_stats

STATS = "stats.json"
SPLITS = ("test", "train")


def _read_stats(folder: Path) -> dict[str, Any]:
    path = folder / STATS
    if not path.is_file():
        raise StageError(f"{path}: missing; is {folder} the output of a sharded build?")
    return dict(json.loads(path.read_text()))


def _check_shards(stats: Sequence[dict[str, Any]], folders: Sequence[Path]) -> None:
    """The shards are ``0..n-1`` of one build: same count, every index once, same settings."""
    shards = [s.get("shard") for s in stats]
    if any(not isinstance(s, dict) for s in shards):
        bad = next(f for f, s in zip(folders, shards, strict=True) if not isinstance(s, dict))
        raise StageError(f"{bad / STATS}: not a shard (no 'shard' entry); build it with --shard")
    counts = {s["count"] for s in shards}  # type: ignore[index]
    if len(counts) != 1:
        raise StageError(f"shards of different builds: shard counts {sorted(counts)}")
    (count,) = counts
    indices = sorted(s["index"] for s in shards)  # type: ignore[index]
    if indices != list(range(count)):
        missing = sorted(set(range(count)) - set(indices))
        repeated = sorted({i for i in indices if indices.count(i) > 1})
        raise StageError(
            f"need shards 0..{count - 1} once each: missing {missing or 'none'}, "
            f"repeated {repeated or 'none'}"
        )
    settings = [{k: v for k, v in s.items() if k not in ("shard", *SPLITS)} for s in stats]
    for folder, other in zip(folders[1:], settings[1:], strict=True):
        if other != settings[0]:
            raise StageError(
                f"{folder}: built with other settings than {folders[0]} ({other} vs {settings[0]})"
            )


def _dataset_dirs(shard: Path) -> list[str]:
    """Relative paths of the dataset folders of one shard (``""`` for the shard itself)."""
    if (shard / MANIFEST).is_file():
        return [""]
    return [s for s in SPLITS if (shard / s / MANIFEST).is_file()]


def _place(src: Path, dest: Path) -> None:
    if dest.exists():
        if not filecmp.cmp(src, dest, shallow=False):
            raise StageError(f"{src}: differs from the same file of another shard ({dest.name})")
        return
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _merge_dataset(out: Path, sources: Sequence[Path]) -> list[Example]:
    """Union of the audio files, one manifest sorted by id (the shards' lines as written)."""
    out.mkdir(parents=True, exist_ok=True)
    lines: dict[str, str] = {}
    for folder in sources:
        read_manifest(folder)  # every id and path checked (core.paths) before anything moves
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name not in (MANIFEST, STATS):
                _place(path, out / path.name)
        for line in (folder / MANIFEST).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            ex_id = json.loads(line)["id"]
            if ex_id in lines and lines[ex_id] != line:
                raise StageError(f"{folder / MANIFEST}: example {ex_id} differs in another shard")
            lines[ex_id] = line
    ordered = sorted(lines)
    with open(out / MANIFEST, "w", encoding="utf-8") as fh:
        fh.writelines(lines[i] + "\n" for i in ordered)
    return [Example(**json.loads(lines[i])) for i in ordered]


def merge_shards(
    out_dir: str | os.PathLike[str], shard_dirs: Sequence[str | os.PathLike[str]]
) -> dict[str, Any]:
    """Write into ``out_dir`` (created; best empty) the dataset the shards of one build make.

    Returns the merged top-level ``stats.json`` content.
    """
    out = Path(out_dir)
    shards = [Path(d) for d in shard_dirs]
    if not shards:
        raise StageError("no shard folders given")
    for folder in shards:
        if not folder.is_dir():
            raise StageError(f"{folder}: not a folder")
    stats = [_read_stats(f) for f in shards]
    _check_shards(stats, shards)
    layouts = {tuple(_dataset_dirs(f)) for f in shards}
    if len(layouts) != 1 or not next(iter(layouts)):
        raise StageError(f"shards differ in layout or hold no dataset: {sorted(layouts)}")
    (datasets,) = layouts
    merged: dict[str, list[Example]] = {
        rel: _merge_dataset(out / rel, [f / rel for f in shards]) for rel in datasets
    }
    result = {k: v for k, v in stats[0].items() if k != "shard"}
    for split in SPLITS:
        if split not in result:
            continue
        examples = merged[""] if "" in merged else merged.get(split)
        if examples is None:
            raise StageError(f"{shards[0] / STATS}: has {split!r} but no {split}/ dataset")
        songs = {s[split]["songs"] for s in stats}
        if len(songs) != 1:
            raise StageError(f"shards disagree on the number of {split} songs: {sorted(songs)}")
        entry = split_stats(examples, songs.pop())
        if "inactive" in result[split]:
            entry["inactive"] = sum(1 for ex in examples if not ex.meta.get("active", True))
        result[split] = entry
    write_stats(out, result)
    return result


@main_guard
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m musicrestore.degrade.merge",
        description="Merge the shard folders of one sharded build (see the module doc).",
    )
    parser.add_argument("out", help="output folder, replaced atomically")
    parser.add_argument("shards", nargs="+", help="the shard folders, 0..n-1 in any order")
    args = parser.parse_args(argv)
    with output_dir(args.out) as tmp:
        stats = merge_shards(tmp, args.shards)
    counts = ", ".join(f"{s} {stats[s]['examples']}" for s in SPLITS if s in stats)
    print(f"merged {len(args.shards)} shards -> {args.out} ({counts} examples)")


if __name__ == "__main__":
    main()
