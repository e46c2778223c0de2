"""A built dataset's ``stats.json``: examples, seconds, songs and how often each effect fired.

:func:`split_stats` is one split's entry, computed from its manifest rows, sorted by id, so it
does not depend on the order in which the Dask tasks of :mod:`.build` finish;
:func:`write_stats` writes the file without the run-dependent keys (time, workers), so the
same seed gives byte-identical DVC outputs.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..data.dataset import Example


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


def write_stats(out_dir: Path, stats: Mapping[str, Any]) -> None:
    """Write ``stats.json`` without the run-dependent keys (time, workers): the same seed must
    give byte-identical outputs, or DVC would see a changed folder after every re-run."""
    from ..core.audio import atomic_path

    stable = {k: v for k, v in stats.items() if k not in ("build_time_s", "workers")}
    with atomic_path(out_dir / "stats.json") as tmp:
        tmp.write_text(json.dumps(stable, indent=2, sort_keys=True) + "\n")
