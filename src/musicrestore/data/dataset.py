"""The one dataset contract every stage reads and writes.

A dataset is a folder with audio files and a ``manifest.jsonl``; each line is one
:class:`Example`. Paths in the manifest are relative to the manifest's folder, so a dataset
can be moved, cached and pulled from a DVC remote as one directory. Builders (degradation,
MusicGen fetch) write manifests; restorers iterate them and write the same ids under their
own folder; evaluation joins a variant's outputs with the references by id.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.audio import atomic_path
from ..core.config import parse_json
from ..core.errors import QUOTE_LIMIT, ManifestError, StageError, one_line
from ..core.paths import inside, plain_name

MANIFEST = "manifest.jsonl"

#: Task names (docs/method.md#tasks).
TASKS = ("T1", "T2", "T3")


@dataclass
class Example:
    """One test or training example.

    Attributes:
        id: unique within its dataset; also the file stem of every restored output.
        task: ``"T1"`` (degraded mix -> clean mix), ``"T2"`` (degraded mix -> clean stem),
            ``"T3"`` (MusicGen sample, no reference).
        mixture: path of the degraded input, relative to the manifest's folder.
        target: path of the clean reference, or ``None`` when there is none (T3).
        sr: sample rate of both files (Hz).
        duration_s: length of the input.
        song: source song (``Artist|Song``), or a prompt / clip name for T3.
        group: the restoration target (``"Voc"``, ``"Gtr_EG"``) for T2; ``"mix"`` otherwise.
        effects: every degradation applied, in order: ``{"name", "stage", "params"}``.
        seed: the seed the example was drawn with.
        meta: anything else worth keeping (SNR, stems used, generator, ``simulated``).
    """

    id: str
    task: str
    mixture: str
    target: str | None
    sr: int
    duration_s: float
    song: str = ""
    group: str = "mix"
    effects: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    def effect_names(self) -> list[str]:
        return [e["name"] for e in self.effects]


def write_manifest(folder: str | os.PathLike[str], examples: Iterable[Example]) -> Path:
    """Write ``folder/manifest.jsonl`` atomically, one example a line, sorted keys."""
    path = Path(folder) / MANIFEST
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(asdict(ex), sort_keys=True) + "\n")
    return path


#: Longest manifest line :func:`read_manifest` reads, in bytes (an example is well under
#: 10 kB).
MAX_LINE_BYTES = 2**20


def read_manifest(folder: str | os.PathLike[str]) -> list[Example]:
    """Read ``folder/manifest.jsonl``; raises ``FileNotFoundError`` with a one-line message.

    Each line is parsed with :func:`musicrestore.core.config.parse_json` (nested at most
    :data:`~musicrestore.core.config.MAX_DEPTH` levels) and is at most
    :data:`MAX_LINE_BYTES` long, so a broken or hostile manifest (one endless line, a
    ``[[[[...`` a million deep) is a :class:`ManifestError` naming file and line, never a
    traceback or a process that fills memory. Every name in it is checked once, here
    (:func:`check_names`), so no reader ever opens or writes a path it leads outside.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no dataset manifest (was the dataset stage run?)")
    examples = []
    with open(path, "rb") as fh:
        for number in itertools.count(1):
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                break
            if len(raw) > MAX_LINE_BYTES:
                raise ManifestError(
                    f"{path}:{number}: longer than {MAX_LINE_BYTES} bytes; not a dataset example"
                )
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ManifestError(f"{path}:{number}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                examples.append(
                    check_names(
                        folder, Example(**parse_json(line, f"{path}:{number}")), f"{path}:{number}"
                    )
                )
            except StageError as exc:
                raise ManifestError(str(exc)) from None
            except TypeError as exc:
                problem = str(exc).splitlines()[0].replace("Example.__init__() ", "")
                raise ManifestError(
                    f"{path}:{number}: not a valid example ({one_line(problem, QUOTE_LIMIT)})"
                ) from None
    return examples


#: ``meta`` keys that hold a path relative to the dataset folder (the clean background of an
#: MSR example, the clean reference of a simulated MusicGen clip).
PATH_META = ("background", "reference")


def check_names(folder: str | os.PathLike[str], ex: Example, where: str) -> Example:
    """``ex`` when its names are safe (:mod:`musicrestore.core.paths`), else
    :class:`~musicrestore.core.paths.UnsafePathError` naming ``where`` (file and line).

    The id is a plain file name with room for ``.wav`` (every restorer writes
    ``<out>/<id>.wav``); ``mixture``, ``target`` and the :data:`PATH_META` entries are
    relative paths that stay inside ``folder``, symbolic links resolved.
    """
    plain_name(ex.id, f"{where}: id", room=len(".wav"))
    inside(folder, ex.mixture, f"{where}: mixture")
    if ex.target is not None and ex.target != "":
        inside(folder, ex.target, f"{where}: target")
    meta = ex.meta if isinstance(ex.meta, dict) else {}
    for key in PATH_META:
        if meta.get(key) is not None and meta.get(key) != "":
            inside(folder, meta[key], f"{where}: meta.{key}")
    return ex


def iter_pairs(folder: str | os.PathLike[str]) -> Iterator[tuple[Example, Path, Path | None]]:
    """Yield ``(example, mixture_path, target_path_or_None)`` with absolute paths."""
    folder = Path(folder)
    for ex in read_manifest(folder):
        yield ex, folder / ex.mixture, (folder / ex.target) if ex.target else None
