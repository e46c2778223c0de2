"""The stage side: :func:`stage_run` builds one record of params, metrics, tags and artifacts
and writes it to the spool when the stage ends; it never imports MLflow."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .flusher import dispatch
from .groups import group_id
from .server import redact, server_problem, shorten
from .settings import (
    RECORD_VERSION,
    config_error,
    enabled,
    local_uri,
    on_server_down,
    spool_dir,
    tracking_uri,
)
from .spool import link_tree, now_ms, write_record

log = logging.getLogger(__package__)  # the package's logger, as before the split


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

    def __init__(self, record: dict[str, Any] | None, files: Path | None = None) -> None:
        self.record = record
        self.files = files

    @property
    def active(self) -> bool:
        return self.record is not None

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.record is not None:
            self.record["params"].update({k: str(v)[:6000] for k, v in flatten(params).items()})

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if self.record is None:
            return
        now = now_ms()
        for key, value in flatten(metrics).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
                name = key.replace("|", "_").replace("@", "_")
                self.record["metrics"].append([name, float(value), step or 0, now])

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        if self.record is None or self.files is None or not Path(path).exists():
            return
        src = Path(path)
        rel = Path(artifact_path or "") / src.name if src.is_file() else Path(artifact_path or "")
        link_tree(src, self.files / "files" / rel)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.record is not None:
            self.record["tags"].update({k: str(v) for k, v in tags.items()})


@contextlib.contextmanager
def stage_run(stage: str, params: Mapping[str, Any] | None = None) -> Iterator[StageRun]:
    """Record one stage run (see :mod:`musicrestore.tracking`); sent to MLflow after the stage.

    Recording must never cost a result: a spool that cannot be written is a warning.
    """
    if not enabled():
        yield StageRun(None)
        return
    mode, uri = on_server_down(), tracking_uri()
    if mode == "fail" and (problem := server_problem(uri)):
        config_error(
            f"MLflow server {redact(uri)} does not answer ({shorten(problem)}); "
            f"{stage} not started (tracking.on_server_down: fail)"
        )
    record_id = f"{time.time_ns()}-{os.getpid()}"
    spool = spool_dir()
    try:
        spool.mkdir(parents=True, exist_ok=True)
        files = spool / f"{record_id}.files"
    except OSError as exc:
        log.warning("MLflow tracking disabled for %s: %s", stage, exc)
        yield StageRun(None)
        return
    tags = {"group_id": group_id(), "stage": stage, "role": "stage"}
    if exp := os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp"] = exp
    record: dict[str, Any] = {
        "version": RECORD_VERSION,
        "record_id": record_id,
        "stage": stage,
        "tracking_uri": uri,
        "on_server_down": mode,
        "local_uri": local_uri(),
        "start_ms": now_ms(),
        "params": {},
        "metrics": [],
        "tags": tags,
    }
    tracker = StageRun(record, files)
    status = "FAILED"
    try:
        if params:
            tracker.log_params(params)
        yield tracker
        status = "FINISHED"
    finally:
        record["status"] = status
        record["end_ms"] = now_ms()
        try:
            write_record(spool, record_id, record)
        except OSError as exc:
            log.warning("MLflow record of %s not written: %s", stage, exc)
        else:
            dispatch(spool)
