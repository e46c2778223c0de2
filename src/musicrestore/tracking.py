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
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

log = logging.getLogger(__name__)

EXPERIMENT = "musicrestore"
DEFAULT_URI = "sqlite:///mlflow.db"
DEFAULT_SPOOL = Path(".musicrestore") / "mlflow-spool"
RECORD_VERSION = 1
#: How long an idle flusher waits for the next stage's record before it exits (s).
FLUSHER_LINGER_S = 30.0
#: ``tracking.on_server_down`` values (module doc).
ON_SERVER_DOWN = ("spool", "local", "fail")
#: How long a ``/health`` request may take before the server counts as down (s).
HEALTH_TIMEOUT_S = 5.0


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
            _config_error(f"{where}: a mapping is needed, got {block!r}")
        if unknown := sorted(set(block or {}) - {"on_server_down"}):
            _config_error(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        where, value = f"{where}.on_server_down", (block or {}).get("on_server_down", "spool")
    if value not in ON_SERVER_DOWN:
        _config_error(f"{where}: {value!r} is not one of {', '.join(ON_SERVER_DOWN)}")
    return str(value)


def _config_error(msg: str) -> NoReturn:
    from .core.errors import StageError

    raise StageError(msg)


def server_problem(uri: str) -> str | None:
    """Why the tracking server at ``uri`` cannot be reached, or ``None`` when it answers
    (or is not a server: a sqlite/file store). One ``GET /health`` with
    :data:`HEALTH_TIMEOUT_S`; MLflow's own client retries for minutes before it gives up."""
    if not uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    scheme, _, rest = _server(uri).partition("://")
    host, _, path = rest.rpartition("@")[2].partition("/")
    url = f"{scheme}://{host}/{path}".rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:  # it answered: a proxy or auth in front of it
        return None if exc.code < 500 else f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def tracking_uri() -> str:
    """The store the records go to; the default sqlite file is made absolute so a flusher
    started elsewhere writes the same database."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///") :]).absolute())
    return uri


def _start_stamp(proc: Any) -> int:
    """A process's start, fixed for its lifetime: on Linux the clock ticks after boot from
    ``/proc/<pid>/stat``. psutil's ``create_time()`` adds a boot time it re-derives from
    the wall clock on every call, so on a machine whose clock is adjusted while a long
    ``dvc repro`` runs, the stages of one run got three different group ids."""
    try:
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return int(proc.create_time())


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
                return f"dvc-{proc.pid}-{_start_stamp(proc)}"
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


def _local_uri() -> str:
    """The local store a ``local``-mode record falls back to (module doc)."""
    return "sqlite:///" + str(Path("mlflow.db").absolute())


def _now_ms() -> int:
    return int(time.time() * 1000)


def _link_tree(src: Path, dest: Path) -> None:
    """Hard-link ``src`` (file or folder) at ``dest``; copy across filesystems. A hard link
    keeps the bytes the stage produced even when a later run replaces the output."""
    if src.is_dir():
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            _link_tree(path, dest / path.relative_to(src))
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


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
        now = _now_ms()
        for key, value in flatten(metrics).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
                name = key.replace("|", "_").replace("@", "_")
                self.record["metrics"].append([name, float(value), step or 0, now])

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        if self.record is None or self.files is None or not Path(path).exists():
            return
        src = Path(path)
        rel = Path(artifact_path or "") / src.name if src.is_file() else Path(artifact_path or "")
        _link_tree(src, self.files / "files" / rel)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if self.record is not None:
            self.record["tags"].update({k: str(v) for k, v in tags.items()})


def _write_record(spool: Path, record_id: str, record: Mapping[str, Any]) -> None:
    tmp = spool / f".{record_id}.json.tmp"
    tmp.write_text(json.dumps(record, sort_keys=True))
    os.replace(tmp, spool / f"{record_id}.json")


@contextlib.contextmanager
def stage_run(stage: str, params: Mapping[str, Any] | None = None) -> Iterator[StageRun]:
    """Record one stage run (see the module docstring); sent to MLflow after the stage.

    Recording must never cost a result: a spool that cannot be written is a warning.
    """
    if not enabled():
        yield StageRun(None)
        return
    mode, uri = on_server_down(), tracking_uri()
    if mode == "fail" and (problem := server_problem(uri)):
        _config_error(
            f"MLflow server {_server(uri)} does not answer ({_short(problem)}); "
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
        "local_uri": _local_uri(),
        "start_ms": _now_ms(),
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
        record["end_ms"] = _now_ms()
        try:
            _write_record(spool, record_id, record)
        except OSError as exc:
            log.warning("MLflow record of %s not written: %s", stage, exc)
        else:
            _dispatch(spool)


# ------------------------------------------------------------------------------ flushing


def pending(spool: Path | None = None) -> list[Path]:
    """Records waiting in the spool, oldest first."""
    spool = spool or spool_dir()
    return sorted(spool.glob("*.json")) if spool.is_dir() else []


@contextlib.contextmanager
def _lock(spool: Path, block: bool) -> Iterator[bool]:
    spool.mkdir(parents=True, exist_ok=True)
    with open(spool / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _dispatch(spool: Path) -> None:
    mode = flush_mode()
    if mode == "sync":
        flush(spool, block=True)
    elif mode == "background":
        with _lock(spool, block=False) as free:
            if not free:  # a flusher is running; it picks this record up before it exits
                return
        subprocess.Popen(
            [sys.executable, "-m", "musicrestore.tracking", "flush", "--background"],
            env={**os.environ, "MUSICRESTORE_TRACKING_SPOOL": str(spool)},
            start_new_session=True,  # survives the stage, is not killed by its Ctrl-C
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )


def flush(
    spool: Path | None = None, block: bool = True, linger_s: float = 0.0, mode: str | None = None
) -> int:
    """Send every spooled record to MLflow; returns how many a store accepted.

    Holds the spool's lock so only one flusher runs; without ``block`` it returns 0 at once
    when another flusher holds it. With ``linger_s`` it waits that long for new records
    before returning. A record goes to its own server, or in ``local`` mode to the local
    store when the server does not take it (``mode`` overrides each record's own
    ``tracking.on_server_down``); one that no store takes stays in the spool (its error is
    appended to ``flush.log`` there) and flushing stops, so nothing is lost or reordered.
    """
    return _flush(spool or spool_dir(), block, linger_s, mode).sent


@dataclasses.dataclass
class Flushed:
    """What one :func:`_flush` did."""

    sent: int = 0  #: records a store accepted, the local fallbacks included
    local: int = 0  #: records sent to the local store because their server did not take them
    #: (server, error, local store) of the last local fallback
    missed: tuple[str, str, str] | None = None
    #: (server, error, mode) of the record that no store took and that stopped the flush
    failed: tuple[str, str, str] | None = None


def _server(uri: str) -> str:
    """``uri`` without a password (``http://user:secret@host`` -> ``http://user@host``)."""
    scheme, sep, rest = uri.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        userinfo, _, host = rest.partition("@")
        return f"{scheme}://{userinfo.split(':', 1)[0]}@{host}"
    return uri


def _short(msg: str, width: int = 200) -> str:
    """``msg`` cut in the middle: MLflow's errors name the request first, the cause last."""
    return msg if len(msg) <= width else f"{msg[: width // 2]} ... {msg[-(width // 2) :]}"


def _flush(spool: Path, block: bool, linger_s: float, mode: str | None = None) -> Flushed:
    """:func:`flush`, with what it did."""
    done = Flushed()
    problems: dict[str, str | None] = {}  # server -> why it is down, asked once per flush

    def stop(path: Path, uri: str, msg: str, record_mode: str) -> Flushed:
        with open(spool / "flush.log", "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {path.name}: {msg}\n")
        log.warning("MLflow: %s stays in %s (%s)", path.name, spool, msg)
        done.failed = (_server(uri), msg, record_mode)
        return done

    while True:
        with _lock(spool, block) as held:
            if not held:
                return done
            idle_since = time.monotonic()
            while True:
                records = pending(spool)
                if not records:
                    if time.monotonic() - idle_since >= linger_s:
                        break
                    time.sleep(0.5)
                    continue
                for path in records:
                    try:
                        record = json.loads(path.read_text())
                        uri = str(record["tracking_uri"])
                    except (OSError, ValueError, KeyError, TypeError) as exc:
                        return stop(
                            path, tracking_uri(), f"unreadable record: {exc}", mode or "spool"
                        )
                    record_mode = mode or str(record.get("on_server_down", "spool"))
                    if uri not in problems:
                        problems[uri] = server_problem(uri)
                    try:
                        if problems[uri]:
                            raise ConnectionError(f"no answer from {uri}: {problems[uri]}")
                        _send(path, record, uri)
                    except Exception as exc:
                        msg = " ".join(str(exc).split())[:500]
                        local = str(record.get("local_uri") or "")
                        if record_mode != "local" or not local or local == uri:
                            return stop(path, uri, msg, record_mode)
                        try:
                            _send(path, record, local, {"fallback_from": _server(uri)})
                        except Exception as exc2:
                            return stop(path, uri, f"{msg}; local store {local}: {exc2}", "local")
                        done.local += 1
                        done.missed = (_server(uri), msg, local)
                    done.sent += 1
                idle_since = time.monotonic()
        # A stage may have spooled a record after the last look but before the lock was
        # released (it then saw the lock taken and started no flusher): look once more.
        if not pending(spool):
            return done


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


def _send(
    path: Path, record: Mapping[str, Any], uri: str, extra_tags: Mapping[str, str] | None = None
) -> None:
    """One record -> one MLflow run in the store at ``uri`` (re-sent whole if an earlier
    attempt broke off); the record leaves the spool once the run is complete."""
    from mlflow.entities import Metric, Param

    client = _client(uri)
    exp_id = _experiment_id(client)
    record_id = record["record_id"]
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


def main(argv: list[str] | None = None) -> int:
    """``python -m musicrestore.tracking flush|status``."""
    parser = argparse.ArgumentParser(prog="python -m musicrestore.tracking")
    parser.add_argument("command", choices=["flush", "status"])
    parser.add_argument(
        "--background",
        action="store_true",
        help="what a stage starts: skip if a flusher runs, linger for the next records",
    )
    parser.add_argument(
        "--on-server-down",
        choices=ON_SERVER_DOWN,
        help="for every record, instead of the tracking.on_server_down each was made with "
        "(e.g. local: put records waiting for a server that is gone into mlflow.db)",
    )
    args = parser.parse_args(argv)
    spool = spool_dir()
    if args.command == "status":
        print(f"{len(pending(spool))} record(s) waiting in {spool}")
        return 0
    if args.background:
        flush(spool, block=False, linger_s=FLUSHER_LINGER_S, mode=args.on_server_down)
        return 0
    log.setLevel(logging.ERROR)  # the one line below says what the per-record warning would
    done = _flush(spool, block=True, linger_s=0.0, mode=args.on_server_down)
    left = len(pending(spool))
    head = f"sent {done.sent} record(s) to MLflow"
    if done.missed is not None:
        server, msg, local = done.missed
        head += (
            f" ({done.local} to the local store {local}: {server} did not take them: {_short(msg)})"
        )
    if done.failed is None:
        print(f"{head}; {left} waiting in {spool}")
        return 0
    server, msg, mode = done.failed
    if mode != "spool":
        print(
            f"error: MLflow server {server} did not take {left} record(s) ({_short(msg)}); "
            f"they stay in {spool} (tracking.on_server_down: {mode})",
            file=sys.stderr,
        )
        return 1
    print(
        f"{head}; {left} stay in {spool}: {server} did not take them "
        f"({_short(msg)}); run this again when it is back"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
