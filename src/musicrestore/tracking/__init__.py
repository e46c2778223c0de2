"""MLflow tracking behind one small interface, kept off every stage's critical path.

Every stage opens :func:`stage_run`; it records the stage's params, metrics, tags and output
artifacts. One ``dvc repro`` (or ``dvc exp run``) is one *group*: every stage run it starts
is nested under one parent run tagged ``group_id``, so the whole reproduction is found
together. With nothing configured the store is ``sqlite:///mlflow.db`` in the working
directory (the repository root under DVC); ``MLFLOW_TRACKING_URI`` points it at a team server.

Why a spool. Importing MLflow and opening its store costs 4-6 s of CPU, more than most stages
work, and it used to be paid once per stage. A stage now writes its record as one JSON file
(plus hard links to its artifacts) into a spool folder, which takes milliseconds, and a
detached *flusher* process (``python -m musicrestore.tracking flush``) sends the records to
MLflow. One flusher serves a whole ``dvc repro``: it holds a lock, drains the spool, waits a
little for the next stage's record and exits when the pipeline has gone quiet, so MLflow's
start-up is paid once per invocation, beside the stages instead of inside them. A record
leaves the spool only once MLflow has accepted it: a store that is down loses nothing, and
``python -m musicrestore.tracking flush`` (or the next stage) sends it later.

Environment:
    ``MUSICRESTORE_TRACKING=0``: no records at all (e.g. unit tests of other code).
    ``MUSICRESTORE_TRACKING_FLUSH``: ``background`` (default), ``sync`` (flush before the
    stage exits; what tests of the tracking itself use) or ``manual`` (leave records spooled).
    ``MUSICRESTORE_TRACKING_SPOOL``: the spool folder (default ``.musicrestore/mlflow-spool``
    in the working directory; git- and DVC-ignored).
    ``MUSICRESTORE_RUN_GROUP``: force a group id; otherwise it comes from the ``dvc`` process
    that launched the stage (its pid and start time, found by walking up the process tree),
    which is the same for every stage of one invocation and different across invocations.
    ``MUSICRESTORE_TRACKING_ON_DOWN``: overrides ``tracking.on_server_down`` (below).

A server that is down. ``tracking.on_server_down`` in ``params.yaml`` (the file in the
working directory, which under DVC is the repository root; no stage declares the block, so
changing it re-runs nothing) says what happens when the tracking server does not answer:

    ``spool`` (default): the record waits in the spool and ``flush`` exits 0 saying how many
    wait; the next flush (any stage's, or ``python -m musicrestore.tracking flush``) sends it.
    ``local``: the record goes to the local store (``sqlite:///mlflow.db`` in the directory
    the stage ran in), tagged ``fallback_from`` with the server it missed, and ``flush`` says
    so; ``mlflow ui --backend-store-uri sqlite:///mlflow.db`` shows it.
    ``fail``: a stage asks the server's ``/health`` before it starts and stops with one line
    (exit 1, nothing written) when it does not answer; a record that still cannot be sent
    (the server went down during the stage) stays spooled and ``flush`` exits 1 with one line.

In every mode a record leaves the spool only once a store has accepted it. Unless the server
is down for a whole stage in ``fail`` mode, a stage never fails because of tracking.

Layout: :mod:`~musicrestore.tracking.settings` (environment, ``params.yaml``, store URIs),
:mod:`~musicrestore.tracking.groups` (run groups), :mod:`~musicrestore.tracking.records`
(:func:`stage_run`, the stage side), :mod:`~musicrestore.tracking.spool` (the folder and its
lock), :mod:`~musicrestore.tracking.flusher` (draining it), :mod:`~musicrestore.tracking.store`
(the MLflow side), :mod:`~musicrestore.tracking.server` (``/health``) and
:mod:`~musicrestore.tracking.cli` (``python -m musicrestore.tracking``).
"""

from .cli import main
from .flusher import Flushed, flush
from .groups import group_id
from .records import StageRun, flatten, stage_run
from .server import HEALTH_TIMEOUT_S, server_problem
from .settings import (
    DEFAULT_SPOOL,
    DEFAULT_URI,
    EXPERIMENT,
    FLUSHER_LINGER_S,
    ON_SERVER_DOWN,
    RECORD_VERSION,
    enabled,
    flush_mode,
    on_server_down,
    spool_dir,
    tracking_uri,
)
from .spool import pending

__all__ = [
    "DEFAULT_SPOOL",
    "DEFAULT_URI",
    "EXPERIMENT",
    "FLUSHER_LINGER_S",
    "HEALTH_TIMEOUT_S",
    "ON_SERVER_DOWN",
    "RECORD_VERSION",
    "Flushed",
    "StageRun",
    "enabled",
    "flatten",
    "flush",
    "flush_mode",
    "group_id",
    "main",
    "on_server_down",
    "pending",
    "server_problem",
    "spool_dir",
    "stage_run",
    "tracking_uri",
]
