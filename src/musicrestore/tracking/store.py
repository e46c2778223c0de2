"""The MLflow side: one spooled record becomes one MLflow run, nested under its group's
parent run. Only the flusher imports MLflow (its start-up costs seconds)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import quote
from ..core.paths import UnsafePathError, plain_name
from .settings import EXPERIMENT

_clients: dict[str, Any] = {}


def _client(uri: str) -> Any:
    if uri not in _clients:
        logging.getLogger("alembic").setLevel(logging.WARNING)
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        _clients[uri] = MlflowClient(tracking_uri=uri)
    return _clients[uri]


def _experiment_id(client: Any) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    return exp.experiment_id if exp is not None else client.create_experiment(EXPERIMENT)


def _parent_run(client: Any, experiment_id: str, gid: str, start_ms: int) -> str:
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.group_id = '{gid}' and tags.role = 'group'",
        max_results=1,
    )
    if found:
        return str(found[0].info.run_id)
    run = client.create_run(
        experiment_id,
        start_time=start_ms,
        run_name=gid,
        tags={"group_id": gid, "role": "group"},
    )
    client.set_terminated(run.info.run_id, end_time=start_ms)
    return str(run.info.run_id)


def send(
    path: Path, record: Mapping[str, Any], uri: str, extra_tags: Mapping[str, str] | None = None
) -> None:
    """One record -> one MLflow run in the store at ``uri`` (re-sent whole if an earlier
    attempt broke off); the record leaves the spool once the run is complete."""
    # The record's id names its files folder, removed below, and goes into a search filter:
    # a plain name, and the one its spool file is named after (``<record_id>.json``).
    record_id = plain_name(record["record_id"], f"{path}: record_id")
    if record_id != path.stem:
        raise UnsafePathError(f"{path}: record_id {quote(record_id)} is not the file's name")
    from mlflow.entities import Metric, Param

    client = _client(uri)
    exp_id = _experiment_id(client)
    for stale in client.search_runs([exp_id], filter_string=f"tags.record_id = '{record_id}'"):
        client.delete_run(stale.info.run_id)
    tags = {**record["tags"], **(extra_tags or {})}
    tags["record_id"] = record_id
    tags["mlflow.parentRunId"] = _parent_run(client, exp_id, tags["group_id"], record["start_ms"])
    run = client.create_run(
        exp_id, start_time=record["start_ms"], run_name=record["stage"], tags=tags
    )
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in record["params"].items()]
    for i in range(0, len(params), 100):  # MLflow caps a batch at 100 params
        client.log_batch(run_id, params=params[i : i + 100])
    metrics = [Metric(k, v, ts, step) for k, v, step, ts in record["metrics"]]
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])
    files = path.with_name(f"{record_id}.files") / "files"
    if files.is_dir():
        for item in sorted(files.iterdir()):
            if item.is_dir():
                client.log_artifacts(run_id, str(item), artifact_path=item.name)
            else:
                client.log_artifact(run_id, str(item))
    client.set_terminated(run_id, status=record["status"], end_time=record["end_ms"])
    path.unlink()
    shutil.rmtree(path.with_name(f"{record_id}.files"), ignore_errors=True)
