"""A Lightning logger that writes where every stage of the pipeline logs.

Metrics go to the stage's :class:`musicrestore.tracking.StageRun` (the spooled MLflow
record, so training curves sit in the same run group as every other stage of a
``dvc repro``) and to a CSV (``loss.csv``: ``step, train_loss, lr, val_loss, val_si_sdr,
...``) that the training stage copies into its output folder as a DVC plot. Rank zero only.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

try:
    import lightning.pytorch as pl
    from lightning.pytorch.utilities import rank_zero_only
except ImportError:  # pragma: no cover - whichever is installed
    import pytorch_lightning as pl
    from pytorch_lightning.utilities import rank_zero_only

from ..core.audio import atomic_path

#: Columns every loss.csv starts with; other metrics are appended in first-seen order.
COLUMNS = ("step", "train_loss", "lr", "val_loss", "val_si_sdr")


class TrainLogger(pl.loggers.Logger):
    """Forwards Lightning's metrics and hyperparameters to ``run`` and ``csv_path``.

    One CSV row per step that logged anything (train and validation metrics of the same
    step share the row). On a resumed run the rows after ``start_step`` (logged after the
    checkpoint by the run that was cut) are dropped; a fresh run (``start_step`` 0) starts
    a new file. The file is rewritten atomically at each save, so it is always complete.
    """

    def __init__(self, run: Any, csv_path: str | os.PathLike[str], start_step: int = 0) -> None:
        super().__init__()
        self.run = run
        self.csv_path = Path(csv_path)
        self.columns: list[str] = list(COLUMNS)
        self.rows: dict[int, dict[str, float]] = {}
        #: The step metrics are filed under (the engine sets the trainer's global step:
        #: Lightning hands validation metrics the step before the optimizer step's count).
        self.step_source: Callable[[], int] | None = None
        if start_step > 0:
            self._load(start_step)

    @property
    def name(self) -> str:
        return "musicrestore"

    @property
    def version(self) -> int:
        return 0

    def _load(self, start_step: int) -> None:
        if not self.csv_path.is_file():
            return
        with open(self.csv_path, newline="") as fh:
            reader = csv.DictReader(fh)
            for name in reader.fieldnames or ():
                if name not in self.columns:
                    self.columns.append(name)
            for row in reader:
                step = int(row["step"])
                if step <= start_step:
                    self.rows[step] = {k: float(v) for k, v in row.items() if v and k != "step"}

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if self.run is not None and isinstance(params, Mapping):
            self.run.log_params(dict(params))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        step = int(self.step_source() if self.step_source is not None else step or 0)
        values = {
            k: float(v) for k, v in metrics.items() if k != "epoch" and math.isfinite(float(v))
        }
        if not values:
            return
        if self.run is not None:
            self.run.log_metrics(values, step=step)
        self.rows.setdefault(step, {}).update(values)
        for key in values:
            if key not in self.columns:
                self.columns.append(key)

    @rank_zero_only
    def save(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        for step in sorted(self.rows):
            row = self.rows[step]
            writer.writerow(
                [step] + [f"{row[c]:.6g}" if c in row else "" for c in self.columns[1:]]
            )
        with atomic_path(self.csv_path) as tmp:
            tmp.write_text(buffer.getvalue())

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
