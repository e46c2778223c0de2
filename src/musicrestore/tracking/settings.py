"""Where tracking records go and what happens when the store is down (the environment
variables and the ``tracking:`` block of ``params.yaml``; see :mod:`musicrestore.tracking`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

EXPERIMENT = "musicrestore"
DEFAULT_URI = "sqlite:///mlflow.db"
DEFAULT_SPOOL = Path(".musicrestore") / "mlflow-spool"
RECORD_VERSION = 1
#: How long an idle flusher waits for the next stage's record before it exits (s).
FLUSHER_LINGER_S = 30.0
#: ``tracking.on_server_down`` values (:mod:`musicrestore.tracking`).
ON_SERVER_DOWN = ("spool", "local", "fail")


def enabled() -> bool:
    return os.environ.get("MUSICRESTORE_TRACKING", "1") not in ("0", "false", "no", "")


def flush_mode() -> str:
    mode = os.environ.get("MUSICRESTORE_TRACKING_FLUSH", "background")
    return mode if mode in ("background", "sync", "manual") else "background"


def spool_dir() -> Path:
    return Path(os.environ.get("MUSICRESTORE_TRACKING_SPOOL") or DEFAULT_SPOOL).absolute()


def on_server_down(params: str | os.PathLike[str] = "params.yaml") -> str:
    """``MUSICRESTORE_TRACKING_ON_DOWN``, else ``tracking.on_server_down`` of ``params``
    (relative to the working directory), else ``spool``; anything else is a
    :class:`musicrestore.core.stage.StageError` naming the key."""
    where, value = "MUSICRESTORE_TRACKING_ON_DOWN", os.environ.get("MUSICRESTORE_TRACKING_ON_DOWN")
    if value is None:
        import yaml

        try:
            doc = yaml.safe_load(Path(params).read_text())
        except (OSError, yaml.YAMLError):  # a stage's own params loading reports it
            doc = None
        block = doc.get("tracking") if isinstance(doc, dict) else None
        where = f"{params}: tracking"
        if block is not None and not isinstance(block, dict):
            config_error(f"{where}: a mapping is needed, got {block!r}")
        if unknown := sorted(set(block or {}) - {"on_server_down"}):
            config_error(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        where, value = f"{where}.on_server_down", (block or {}).get("on_server_down", "spool")
    if value not in ON_SERVER_DOWN:
        config_error(f"{where}: {value!r} is not one of {', '.join(ON_SERVER_DOWN)}")
    return str(value)


def config_error(msg: str) -> NoReturn:
    """Raise ``msg`` as the one-line :class:`musicrestore.core.errors.StageError`."""
    from ..core.errors import StageError

    raise StageError(msg)


def tracking_uri() -> str:
    """The store the records go to; the default sqlite file is made absolute so a flusher
    started elsewhere writes the same database."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///") :]).absolute())
    return uri


def local_uri() -> str:
    """The local store a ``local``-mode record falls back to (:mod:`musicrestore.tracking`)."""
    return "sqlite:///" + str(Path("mlflow.db").absolute())
