"""The one dataset contract every stage reads and writes.

A dataset is a folder with audio files and a ``manifest.jsonl``; each line is one
:class:`Example`. Paths in the manifest are relative to the manifest's folder, so a dataset
can be moved, cached and pulled from a DVC remote as one directory. Builders (degradation,
MusicGen fetch) write manifests; restorers iterate them and write the same ids under their
own folder; evaluation joins a variant's outputs with the references by id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.audio import atomic_path
from ..core.errors import ManifestError

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


def read_manifest(folder: str | os.PathLike[str]) -> list[Example]:
    """Read ``folder/manifest.jsonl``; raises ``FileNotFoundError`` with a one-line message."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no dataset manifest (was the dataset stage run?)")
    examples = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                examples.append(Example(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                problem = str(exc).splitlines()[0].replace("Example.__init__() ", "")
                raise ManifestError(f"{path}:{number}: not a valid example ({problem})") from None
    return examples


def iter_pairs(folder: str | os.PathLike[str]) -> Iterator[tuple[Example, Path, Path | None]]:
    """Yield ``(example, mixture_path, target_path_or_None)`` with absolute paths."""
    folder = Path(folder)
    for ex in read_manifest(folder):
        yield ex, folder / ex.mixture, (folder / ex.target) if ex.target else None
