"""Where training metrics go: Lightning's ``CSVLogger`` and the stage's MLflow record.

The modules log with ``self.log(..., on_step=True)`` (``train_loss`` and ``lr``; the
U-Former adds ``train_recon``, ``train_gen``, ``train_feat`` and ``train_disc``) and their
validation metrics once per validation; Lightning hands them to the trainer's loggers every
``log_every_n_steps`` steps (``train.log_every``):

- :class:`LossCSVLogger`: Lightning's ``CSVLogger`` writing ``work_dir/loss.csv`` (one row
  per logging call with a ``step`` column: a DVC plot of the training stage), kept across
  a resume;
- :class:`StageRunLogger`: the stage's :class:`musicrestore.tracking.StageRun` (the spooled
  MLflow record, so training curves sit in the run group of every other stage).

Both file a metric under the optimizer steps done when it was logged (the trainer's
``global_step``, through ``step_source``): Lightning's own step is that of the step being
taken for training metrics and of the last one for validation, so a validation after step
50 would share a row with step 49's loss, and one after ``fit`` land at the next step.
Rank zero only.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Mapping
from typing import Any

try:  # the `lightning` distribution, else the standalone `pytorch-lightning` one
    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.loggers import CSVLogger, Logger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter
    from lightning.pytorch.utilities.rank_zero import rank_zero_only
except ImportError:  # pragma: no cover - whichever is installed
    from lightning_fabric.loggers.logger import rank_zero_experiment
    from pytorch_lightning.loggers import CSVLogger, Logger
    from pytorch_lightning.loggers.csv_logs import ExperimentWriter
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

from ..core.audio import atomic_path

#: The curve's file name in the work folder (and in the model folder, a DVC plot).
LOSS_CSV = "loss.csv"


def _values(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Scalars without the ``epoch`` Lightning adds (steps, not epochs, count here)."""
    return {k: float(v) for k, v in metrics.items() if k != "epoch"}


class _LossWriter(ExperimentWriter):
    """Lightning's CSV writer on ``loss.csv``. Lightning deletes a metrics file it finds; a
    resumed run keeps the rows up to its checkpoint's step (``keep_until``) instead, and
    drops those the interrupted run logged after it."""

    NAME_METRICS_FILE = LOSS_CSV

    def __init__(self, log_dir: str, keep_until: int) -> None:
        self.keep_until = keep_until
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        path = self.metrics_file_path
        if not os.path.isfile(path):
            return
        if self.keep_until <= 0:
            os.remove(path)
            return
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            keys = list(reader.fieldnames or ())
            rows = [row for row in reader if int(row["step"]) <= self.keep_until]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = keys

    def _record_new_keys(self) -> set[str]:
        new_keys = super()._record_new_keys()  # sorts the columns by name
        self.metrics_keys.sort(key=lambda key: (key != "step", key))  # the x axis first
        return new_keys


class LossCSVLogger(CSVLogger):
    """``CSVLogger`` writing ``work_dir/loss.csv`` directly (no ``name/version_N``
    folders); ``start_step``: the step a resumed run continues from (0: a new file)."""

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        start_step: int = 0,
        step_source: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(work_dir, name="", version="")
        self.start_step = start_step
        self.step_source = step_source

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        writer: ExperimentWriter | None = getattr(self, "_experiment", None)
        if writer is None:
            self._fs.makedirs(self.log_dir, exist_ok=True)
            writer = self._experiment = _LossWriter(self.log_dir, self.start_step)
        return writer

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:  # type: ignore[override]
        step = self.step_source() if self.step_source is not None else step
        super().log_metrics(_values(metrics), step)


class StageRunLogger(Logger):
    """Lightning's metrics and hyperparameters to ``run``, a
    :class:`musicrestore.tracking.StageRun` (its ``log_metrics``/``log_params``)."""

    def __init__(self, run: Any, step_source: Callable[[], int] | None = None) -> None:
        super().__init__()
        self.run = run
        self.step_source = step_source

    @property
    def name(self) -> str:
        return "musicrestore"

    @property
    def version(self) -> int:
        return 0

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(params, Mapping):
            self.run.log_params(dict(params))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        step = self.step_source() if self.step_source is not None else step
        if values := _values(metrics):
            self.run.log_metrics(values, step=int(step or 0))
