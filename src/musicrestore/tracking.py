"""MLflow tracking behind one small interface.

Every stage opens :func:`stage_run`; it logs the stage's params, its metrics and its output
artifacts. With nothing configured the store is ``sqlite:///mlflow.db`` in the working
directory (the repository root under DVC); ``MLFLOW_TRACKING_URI`` points it at a team
server. One ``dvc repro`` (or ``dvc exp run``) is one *group*: every stage run it starts is
nested under one parent run tagged ``group_id``, so the whole reproduction is found together.

The group id comes from ``MUSICRESTORE_RUN_GROUP`` when set; otherwise from the ``dvc``
process that launched the stage (its pid and start time, found by walking up the process
tree), which is the same for every stage of one invocation and different across invocations.
Set ``MUSICRESTORE_TRACKING=0`` to turn tracking off (e.g. inside unit tests of other code).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXPERIMENT = "musicrestore"
DEFAULT_URI = "sqlite:///mlflow.db"


def enabled() -> bool:
    return os.environ.get("MUSICRESTORE_TRACKING", "1") not in ("0", "false", "no", "")


def group_id() -> str:
    """Id shared by all stages of one ``dvc repro`` / ``dvc exp run`` (see module doc)."""
    if gid := os.environ.get("MUSICRESTORE_RUN_GROUP"):
        return gid
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            cmd = " ".join(proc.cmdline()[:3])
            if "dvc" in Path(proc.cmdline()[0]).name or " -m dvc" in cmd or "/dvc " in cmd + " ":
                return f"dvc-{proc.pid}-{int(proc.create_time())}"
            proc = proc.parent()
    except Exception:  # no psutil permission, zombie parent...: a standalone run
        pass
    gid = f"standalone-{uuid.uuid4().hex[:12]}"
    os.environ["MUSICRESTORE_RUN_GROUP"] = gid  # children of this process join it
    return gid


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become their string."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, int | float | str | bool) else str(value)
    return out


class StageRun:
    """What a stage logs through; every method is a no-op when tracking is off."""

    def __init__(self, run: Any | None) -> None:
        self.run = run

    @property
    def active(self) -> bool:
        return self.run is not None

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.run is None:
            return
        import mlflow

        flat = {k: str(v)[:6000] for k, v in flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
            mlflow.log_params(dict(items[i : i + 100]))

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self.run is None:
            return
        import mlflow

        clean = {
            k.replace("|", "_").replace("@", "_"): float(v)
            for k, v in flatten(metrics).items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v == v
        }
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        if self.run is None or not Path(path).exists():
            return
        import mlflow

        if Path(path).is_dir():
            mlflow.log_artifacts(str(path), artifact_path=artifact_path)
        else:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.run is None:
            return
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})


def _parent_run(client: Any, experiment_id: str, gid: str) -> str:
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.group_id = '{gid}' and tags.role = 'group'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=gid, tags={"group_id": gid, "role": "group"})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


@contextlib.contextmanager
def stage_run(stage: str, params: Mapping[str, Any] | None = None) -> Iterator[StageRun]:
    """Open an MLflow run for one stage, nested under this invocation's group run.

    Tracking failures (a store that cannot be opened) are logged as warnings and the stage
    goes on untracked: losing a log line must never lose a result.
    """
    if not enabled():
        yield StageRun(None)
        return
    try:
        import mlflow
        from mlflow.tracking import MlflowClient

        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(DEFAULT_URI)
        experiment = mlflow.set_experiment(EXPERIMENT)
        gid = group_id()
        parent = _parent_run(MlflowClient(), experiment.experiment_id, gid)
        tags = {"group_id": gid, "stage": stage, "role": "stage", "mlflow.parentRunId": parent}
        if exp := os.environ.get("DVC_EXP_NAME"):
            tags["dvc_exp"] = exp
        run = mlflow.start_run(run_name=stage, tags=tags)
    except Exception as exc:
        log.warning("MLflow tracking disabled for %s: %s", stage, str(exc).splitlines()[0])
        yield StageRun(None)
        return
    tracker = StageRun(run)
    status = "FAILED"
    try:
        if params:
            tracker.log_params(params)
        yield tracker
        status = "FINISHED"
    finally:
        mlflow.end_run(status=status)
