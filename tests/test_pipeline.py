"""Smoke test of the whole pipeline: ``dvc repro`` on the tiny profile in a copy of the repo.

The copy holds what git would commit (tracked and untracked-but-not-ignored files), so the
test sees exactly what a clean clone sees. It checks that every stage ran (every registered
variant included), that the outputs follow the dataset contract, that ``metrics.json`` is
the short headline, that MLflow grouped the stage runs, that a second ``dvc repro`` has
nothing to do, that forced re-runs reproduce restore, evaluate and report byte for byte,
that an override of every params block marks exactly the stages that read it, that every
cached output survives a push to and a pull from a directory, an SSH and an S3 remote, and
that queued experiments run two at a time and show up in ``dvc exp show``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            deep_merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def copy_repo(dest: Path) -> Path:
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = ROOT / rel
        # dvc.lock records the default profile's run; the tiny profile starts without it
        if (
            src.is_file()
            and rel != "dvc.lock"
            and not rel.startswith(("data/", "models/", "reports/"))
        ):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    tiny = yaml.safe_load((ROOT / "profiles" / "tiny.yaml").read_text())
    (dest / "params.yaml").write_text(yaml.safe_dump(deep_merge(base, tiny), sort_keys=False))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def run_dvc(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "dvc"), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, (
        f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def repro(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    env = dict(os.environ)
    env.update(
        PATH=f"{BIN}{os.pathsep}{env['PATH']}",
        MUSICRESTORE_TRACKING="1",
        MUSICRESTORE_TRACKING_FLUSH="manual",  # sent below by an explicit flush
        MLFLOW_TRACKING_URI=f"sqlite:///{repo}/mlflow.db",
        HF_HUB_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
    )
    env.pop("MUSICRESTORE_RUN_GROUP", None)
    out = run_dvc(repo, "repro", env=env).stdout
    flush = subprocess.run(
        [sys.executable, "-m", "musicrestore.tracking", "flush"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert flush.returncode == 0, flush.stdout + flush.stderr
    return repo, env, out


def test_every_stage_ran(repro: tuple[Path, dict[str, str], str]) -> None:
    from musicrestore.variants import VARIANTS

    repo, env, _ = repro
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    stages = set(lock["stages"])
    declared = run_dvc(repo, "stage", "list", "--names-only", env=env).stdout.split()
    assert stages == set(declared)
    targets = yaml.safe_load((repo / "params.yaml").read_text())["msr"]["targets"]
    for name, v in VARIANTS.items():
        restores = [f"restore-{name}@{g}" for g in targets] if v.per_target else [f"restore-{name}"]
        assert {*restores, f"evaluate@{name}"} <= stages


def test_restored_outputs_follow_the_manifests(repro: tuple[Path, dict[str, str], str]) -> None:
    from musicrestore.core.audio import audio_info
    from musicrestore.data.dataset import read_manifest
    from musicrestore.variants import VARIANTS

    repo, _, _ = repro
    sets = {
        "musicgen_like": ("T1", repo / "data/musicgen_like/test"),
        "musicgen": ("T3", repo / "data/musicgen"),
        "msr_Voc": ("T2", repo / "data/msr/test/Voc"),
    }
    for name, variant in VARIANTS.items():
        if variant.pretrained:  # offline, no checkpoints: skipped, and the report says so
            skipped = json.loads((repo / "data/restored" / name / "skipped.json").read_text())
            assert skipped["reason"] == "checkpoints not present" and skipped["missing"]
            assert (repo / "reports/eval" / name / "skipped.json").is_file()
            assert (
                f"`{name}` (checkpoints not present)" in (repo / "reports/summary.md").read_text()
            )
            continue
        for testset, (task, folder) in sets.items():
            out = repo / "data/restored" / name / testset
            if task not in variant.tasks:
                assert not out.exists()
                continue
            examples = read_manifest(folder)
            assert examples
            decisions = json.loads((out / "decisions.json").read_text())
            assert set(decisions) == {ex.id for ex in examples}
            for ex in examples:
                sr, _, frames = audio_info(out / f"{ex.id}.wav")
                assert sr == ex.sr
                assert abs(frames / sr - ex.duration_s) < 1e-3
            assert not (out / "timing.json").exists()  # wall-clock lives outside the outputs
        from musicrestore.report.readme import read_timing

        timing = read_timing(repo / "reports/timing")[name]  # per group: reports/timing/<v>/
        assert timing["rtf"] >= 0


def test_metrics_json_is_a_short_headline(repro: tuple[Path, dict[str, str], str]) -> None:
    from musicrestore.variants import VARIANTS

    repo, _, _ = repro
    doc = json.loads((repo / "reports" / "metrics.json").read_text())
    ran = {name: v for name, v in VARIANTS.items() if not v.pretrained}  # offline: skipped
    assert set(doc) == set(ran)

    def leaves(node: object) -> list[object]:
        if isinstance(node, dict):
            return [x for v in node.values() for x in leaves(v)]
        return [node]

    values = leaves(doc)
    assert all(isinstance(v, int | float) or v is None for v in values)  # no prose
    assert len(values) <= 10 * len(ran)
    for name, variant in ran.items():
        for task in ("T1", "T2"):
            if task in variant.tasks:
                assert isinstance(doc[name][task.lower()]["si_sdr"], float)
            else:
                assert task.lower() not in doc[name]


def test_dataset_outputs(repro: tuple[Path, dict[str, str], str]) -> None:
    repo, _, _ = repro
    summary = json.loads((repo / "reports" / "dataset.json").read_text())
    assert summary["songs"] >= 3
    assert len(list((repo / "data" / "splits").glob("*_test.txt"))) >= 2


def test_mlflow_groups_one_repro(repro: tuple[Path, dict[str, str], str]) -> None:
    from mlflow.tracking import MlflowClient

    repo, _, _ = repro
    client = MlflowClient(tracking_uri=f"sqlite:///{repo}/mlflow.db")
    exp = client.get_experiment_by_name("musicrestore")
    runs = client.search_runs([exp.experiment_id])
    groups = {r.data.tags["group_id"] for r in runs}
    assert len(groups) == 1  # one dvc repro, one group
    stage_runs = [r for r in runs if r.data.tags.get("role") == "stage"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {r.data.tags["stage"] for r in stage_runs} >= {"fetch_rawstems", "index_rawstems"}
    assert len(stage_runs) >= len(lock["stages"])


def test_second_repro_is_a_noop(repro: tuple[Path, dict[str, str], str]) -> None:
    repo, env, _ = repro
    out = run_dvc(repo, "repro", env=env).stdout
    assert "didn't change, skipping" in out or "up to date" in out
    assert "Running stage" not in out
    status = run_dvc(repo, "status", "--json", env=env).stdout
    assert json.loads(status) == {}


def test_forced_reruns_reproduce_every_output_byte_for_byte(
    repro: tuple[Path, dict[str, str], str],
) -> None:
    """restore, evaluate and report run again on unchanged inputs: DVC finds every output
    hash equal to the one in dvc.lock (wall-clock timings live outside the outputs)."""
    repo, env, _ = repro
    before = (repo / "dvc.lock").read_text()
    for stage in ("restore-demucs_snmf", "evaluate@demucs_snmf", "report"):
        run_dvc(repo, "repro", "--force", "--single-item", stage, env=env)
    lock_before = yaml.safe_load(before)["stages"]
    lock_after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]

    def outs(lock: dict, stage: str) -> dict[str, str]:
        return {o["path"]: o.get("md5") for o in lock[stage]["outs"] if "timing" not in o["path"]}

    for stage in ("restore-demucs_snmf", "evaluate@demucs_snmf", "report"):
        assert outs(lock_after, stage) == outs(lock_before, stage), stage
    assert json.loads(run_dvc(repo, "status", "--json", env=env).stdout) == {}


def test_a_stage_killed_midway_leaves_no_complete_output_and_the_next_repro_recovers(
    repro: tuple[Path, dict[str, str], str],
) -> None:
    """SIGKILL to the whole ``dvc repro`` while the stage writes: the output path is not
    there (only a hidden temp folder), DVC reports the stage as changed, and the next
    ``dvc repro`` recovers the recorded bytes (DVC's run-cache restores them, or the stage
    runs); the stage's next run removes the killed run's temp folder."""
    import signal
    import time

    repo, env, _ = repro
    stage, out = "restore-demucs_snmf", repo / "data" / "restored" / "demucs_snmf"
    locked = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]["outs"]
    proc = subprocess.Popen(
        [str(BIN / "dvc"), "repro", "--force", "--single-item", stage],
        cwd=repo, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not any(
        p.suffix == ".wav" for t in out.parent.glob(".demucs_snmf.*.tmp") for p in t.rglob("*")
    ):
        assert proc.poll() is None, "the stage finished before it could be killed"
        assert time.monotonic() < deadline, "the stage never started writing"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert list(out.parent.glob(".demucs_snmf.*.tmp"))  # hidden, and never the output
    assert stage in json.loads(run_dvc(repo, "status", "--json", env=env).stdout)
    recovered = run_dvc(repo, "repro", env=env).stdout  # runs it, or restores its run-cache
    assert f"'{stage}' didn't change" not in recovered and out.is_dir()
    after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]["outs"]

    def hashes(outs: list[dict]) -> dict[str, str]:  # timings are not outputs' content
        return {o["path"]: o.get("md5") for o in outs if "timing" not in o["path"]}

    assert hashes(after) == hashes(locked)
    assert json.loads(run_dvc(repo, "status", "--json", env=env).stdout) == {}
    run_dvc(repo, "repro", "--force", "--single-item", stage, env=env)  # the stage itself runs
    assert not list(out.parent.glob(".demucs_snmf.*.tmp"))  # and removes the killed run's folder
    run_dvc(repo, "repro", env=env)  # its new timing file re-runs report: leave all up to date


def _first_leaf(block: str, value: object) -> tuple[str, object] | None:
    """The first number, bool or string under ``block`` (depth first, in file order)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            if (found := _first_leaf(f"{block}.{key}", sub)) is not None:
                return found
        return None
    return (block, value) if isinstance(value, int | float | str) else None


def _readers(repo: Path, key: str) -> set[str]:
    """Stages whose declared params (dvc.yaml) cover ``key`` or lie below it."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return {
            stage.addressing
            for stage in dvc_repo.index.stages
            for dep in stage.deps
            if isinstance(dep, ParamsDependency)
            for declared in dep.params
            if key == declared or key.startswith(f"{declared}.") or declared.startswith(f"{key}.")
        }


def test_an_override_of_every_params_block_marks_exactly_its_readers(
    repro: tuple[Path, dict[str, str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``dvc exp run -S KEY=VALUE`` does first, for one leaf of every top-level params
    block: DVC's own override parser edits params.yaml, then ``dvc status`` names exactly the
    stages that declare the key (and no others; downstream stages follow once outputs
    change). ``app``, ``tracking`` and ``compute`` (where the work runs) are declared by no
    stage; every other block by some."""
    from dvc.repo import Repo
    from dvc.utils.hydra import apply_overrides

    from musicrestore.variants import VARIANTS

    repo, env, _ = repro
    monkeypatch.chdir(repo)  # DVC's API names stages relative to the working directory
    params = repo / "params.yaml"
    original = params.read_text()
    doc = yaml.safe_load(original)
    seen: dict[str, set[str]] = {}
    try:
        for block in doc:
            found = _first_leaf(block, doc[block])
            assert found is not None, block
            key, value = found
            new = (not value) if isinstance(value, bool) else (
                value + 1 if isinstance(value, int | float) else f"{value}x"
            )  # fmt: skip
            apply_overrides(params, [f"{key}={json.dumps(new)}"])
            assert yaml.safe_load(params.read_text()) != doc, key
            with Repo(str(repo)) as dvc_repo:
                changed = set(dvc_repo.status())
            params.write_text(original)
            assert changed == _readers(repo, key), key
            seen[block] = changed
    finally:
        params.write_text(original)
    assert seen["app"] == seen["tracking"] == seen["compute"] == set()
    assert all(seen[b] for b in doc if b not in ("app", "tracking", "compute")), seen
    assert seen["report"] == {"report"}
    # the registry's reads and dvc.yaml agree for a params block borrowed by other variants
    apply_overrides(params, ["variants.dsp_direct.gain_db=0.0"])
    try:
        with Repo(str(repo)) as dvc_repo:
            changed = set(dvc_repo.status())
    finally:
        params.write_text(original)
    readers = {f"restore-{n}" for n, v in VARIANTS.items() if "dsp_direct" in v.reads}
    assert readers == {"restore-dsp_direct", "restore-demucs_dsp", "restore-adaptive"}
    assert changed == readers
    assert json.loads(run_dvc(repo, "status", "--json", env=env).stdout) == {}


# ------------------------------------------------------------------------ shared remotes


def cached_outputs(repo: Path) -> list[str]:
    """Every output DVC caches (and therefore pushes): uncached metrics stay in git."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        return sorted({o.def_path for o in dvc_repo.index.outs if o.use_cache})


def snapshot(repo: Path, paths: list[str]) -> dict[str, str]:
    """``{relative file path: sha256}`` of every file under ``paths``."""
    import hashlib

    files: dict[str, str] = {}
    for rel in paths:
        top = repo / rel
        for path in [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()):
            files[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def tree_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


class SFTPServer:
    """An asyncssh SFTP server on 127.0.0.1 (a free port), serving ``root`` as ``/``, with
    public-key login (any user name); it runs its own event loop in a background thread."""

    def __init__(self, root: Path, host_key: object, authorized_keys: Path) -> None:
        import asyncio
        import threading

        self.root, self.host_key, self.authorized_keys = root, host_key, authorized_keys
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.acceptor: object = None
        self.port = 0
        self.error: BaseException | None = None

    def _serve(self) -> None:
        import asyncio

        import asyncssh

        asyncio.set_event_loop(self.loop)
        chroot = str(self.root).encode()
        try:
            self.acceptor = self.loop.run_until_complete(
                asyncssh.listen(
                    "127.0.0.1",
                    0,
                    server_host_keys=[self.host_key],
                    authorized_client_keys=str(self.authorized_keys),
                    sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=chroot),
                    allow_scp=False,
                )
            )
            self.port = self.acceptor.get_port()  # type: ignore[attr-defined]
        except BaseException as exc:  # reported by start()
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> SFTPServer:
        self.thread.start()
        assert self.ready.wait(30), "the SFTP server did not start"
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        import asyncio

        if self.acceptor is not None:

            async def close() -> None:
                self.acceptor.close()  # type: ignore[attr-defined]
                await self.acceptor.wait_closed()  # type: ignore[attr-defined]

            asyncio.run_coroutine_threadsafe(close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def ssh_remote(base: Path) -> tuple[SFTPServer, dict[str, str], list[list[str]]]:
    """Start an SFTP server; returns it, the environment DVC needs (a ``HOME`` whose
    ``~/.ssh/known_hosts`` trusts the server's generated host key, as a teammate's would)
    and the ``dvc remote`` commands that configure the remote ``ssh``."""
    import asyncssh

    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    home, served = base / "home", base / "sftp-root"
    (home / ".ssh").mkdir(parents=True)
    served.mkdir()
    keyfile = home / ".ssh" / "id_team"
    client_key.write_private_key(str(keyfile))
    keyfile.chmod(0o600)
    authorized = base / "authorized_keys"
    authorized.write_bytes(client_key.export_public_key())
    server = SFTPServer(served, host_key, authorized).start()
    host_pub = host_key.export_public_key().decode().split()
    (home / ".ssh" / "known_hosts").write_text(
        f"[127.0.0.1]:{server.port} {host_pub[0]} {host_pub[1]}\n"
    )
    commands = [
        ["remote", "add", "--local", "ssh", "ssh://127.0.0.1/team-cache"],
        ["remote", "modify", "--local", "ssh", "port", str(server.port)],
        ["remote", "modify", "--local", "ssh", "user", "teammate"],
        ["remote", "modify", "--local", "ssh", "keyfile", str(keyfile)],
        ["remote", "modify", "--local", "ssh", "allow_agent", "false"],
    ]
    return server, {"HOME": str(home)}, commands


def s3_remote() -> tuple[object, Callable[[], tuple[int, int]], list[list[str]]] | None:
    """A moto S3 server on 127.0.0.1, a function counting what the bucket holds (objects,
    bytes) and the commands for the remote ``s3``; ``None`` where moto or dvc-s3 is not
    installed (requirements-dev.txt pins both)."""
    try:
        import boto3
        import dvc_s3  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError:
        return None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **creds)
    client.create_bucket(Bucket="team")

    def stored() -> tuple[int, int]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket="team")
        sizes = [obj["Size"] for page in pages for obj in page.get("Contents", [])]
        return len(sizes), sum(sizes)

    commands = [
        ["remote", "add", "--local", "s3", "s3://team/musicrestore"],
        ["remote", "modify", "--local", "s3", "endpointurl", endpoint],
        ["remote", "modify", "--local", "s3", "region", "us-east-1"],
        ["remote", "modify", "--local", "s3", "access_key_id", "testing"],
        ["remote", "modify", "--local", "s3", "secret_access_key", "testing"],
    ]
    return server, stored, commands


def test_every_output_round_trips_through_shared_remotes(
    repro: tuple[Path, dict[str, str], str], tmp_path: Path
) -> None:
    """``dvc push`` to a directory, an SSH (SFTP) and, where moto is installed, an S3
    remote; then, per remote, the cache and every cached output are deleted and
    ``dvc pull`` brings back every file byte for byte, with nothing left to run."""
    import time

    repo, env, _ = repro
    outs = cached_outputs(repo)
    assert {"data/rawstems", "data/musicgen_like", "reports/plots"} <= set(outs)
    before = snapshot(repo, outs)
    local_dir = tmp_path / "dir-remote"
    sftp, ssh_env, ssh_cmds = ssh_remote(tmp_path / "ssh")
    s3 = s3_remote()
    remotes: dict[str, tuple[dict[str, str], Callable[[], tuple[int, int]]]] = {
        "dir": ({}, lambda: tree_size(local_dir)),
        "ssh": (ssh_env, lambda: tree_size(sftp.root / "team-cache")),
    }
    commands = [["remote", "add", "--local", "dir", str(local_dir)], *ssh_cmds]
    if s3 is not None:
        remotes["s3"] = ({}, s3[1])
        commands += s3[2]
    report = [f"{len(before)} files in {len(outs)} cached outputs"]
    try:
        for cmd in commands:
            run_dvc(repo, *cmd, env=env)
        for name, (extra, stored) in remotes.items():
            t0 = time.monotonic()
            run_dvc(repo, "push", "-r", name, env={**env, **extra})
            push_s = time.monotonic() - t0
            n, nbytes = stored()
            assert n > 0, name
            report.append(f"{name}: push {push_s:.1f} s, {n} objects, {nbytes / 1e6:.1f} MB stored")
        for name, (extra, _) in remotes.items():
            shutil.rmtree(repo / ".dvc" / "cache")
            for rel in outs:
                path = repo / rel
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            t0 = time.monotonic()
            run_dvc(repo, "pull", "-r", name, env={**env, **extra})
            pull_s = time.monotonic() - t0
            assert snapshot(repo, outs) == before, name
            assert json.loads(run_dvc(repo, "status", "--json", env=env).stdout) == {}, name
            report.append(f"{name}: pull {pull_s:.1f} s, every file identical, dvc status empty")
    finally:
        sftp.stop()
        if s3 is not None:
            s3[0].stop()  # type: ignore[attr-defined]
    if s3 is None:
        report.append("s3: skipped (moto / dvc-s3 not installed)")
    print("\n" + "\n".join(report))


def test_queued_experiments_run_in_parallel_and_dvc_exp_show_lists_them(
    repro: tuple[Path, dict[str, str], str],
) -> None:
    """``dvc exp run --queue`` twice, ``dvc queue start -j 2``: both experiments succeed,
    each re-runs only the stage that reads its changed param (the report), takes every
    other result from the cache, and ``dvc exp show`` lists its param and the headline
    metrics; the workspace is left as it was."""
    import csv
    import io
    import re
    import time

    repo, env, _ = repro
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)  # the baseline, as a team would
    subprocess.run([*git, "commit", "-qm", "baseline"], cwd=repo, check=True)
    params_before = (repo / "params.yaml").read_bytes()
    exps = {"dpi60": "report.figure_dpi=60", "excerpt3": "report.excerpt_s=3.0"}
    for name, override in exps.items():
        run_dvc(repo, "exp", "run", "--queue", "-n", name, "-S", override, env=env)
    began = time.monotonic()
    # Not run_dvc: dvc_task forks each worker through multiprocessing, and the fork keeps
    # `queue start`'s stdout and stderr open until that worker exits; with pipes, reading them
    # to EOF would wait for the whole queue (CI once waited there past run_dvc's 900 s). A
    # file returns as soon as `queue start` does, and the loop below owns the time limit.
    start_log = repo / ".dvc" / "tmp" / "queue-start.log"
    with open(start_log, "w") as log:
        start = subprocess.run([str(BIN / "dvc"), "queue", "start", "-j", "2"], cwd=repo,
                               env=env, stdout=log, stderr=subprocess.STDOUT, timeout=120)  # fmt: skip
    assert start.returncode == 0, start_log.read_text()
    while re.search(
        r"\b(Queued|Running)\b", status := run_dvc(repo, "queue", "status", env=env).stdout
    ):
        if time.monotonic() - began > 600:
            workers = sorted((repo / ".dvc/tmp/exps/celery").glob("*.out"))
            logs = "\n".join(f"--- {w.name}\n{w.read_text()[-3000:]}" for w in workers)
            subprocess.run([str(BIN / "dvc"), "queue", "stop", "--kill"], cwd=repo, env=env,
                           capture_output=True, timeout=120)  # fmt: skip
            pytest.fail(f"the queue did not finish in 10 minutes:\n{status}\n{logs}")
        time.sleep(2)
    took = time.monotonic() - began
    # the idle workers exit on their own within 10 s; a stop makes sure none outlives the test
    subprocess.run([str(BIN / "dvc"), "queue", "stop"], cwd=repo, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)  # fmt: skip
    status = run_dvc(repo, "queue", "status", env=env).stdout
    for name in exps:
        assert re.search(rf"{name}\s.*Success", status), status
        log = run_dvc(repo, "queue", "logs", name, env=env).stdout
        assert re.findall(r"Running stage '([^']+)'", log) == ["report"], log[-3000:]

    table = run_dvc(repo, "exp", "show", "--csv", env=env).stdout
    rows = {r["Experiment"]: r for r in csv.DictReader(io.StringIO(table)) if r["Experiment"]}
    assert set(exps) <= set(rows), table[:2000]
    headline = json.loads((repo / "reports" / "metrics.json").read_text())
    variant = sorted(headline)[0]
    task = sorted(headline[variant])[0]
    metric = sorted(headline[variant][task])[0]
    column, value = f"{variant}.{task}.{metric}", headline[variant][task][metric]
    for name, override in exps.items():
        key, setting = override.split("=")
        assert float(rows[name][key]) == float(setting), (name, key)
        # the report's layout params change no number: the metrics are the baseline's
        assert float(rows[name][column]) == pytest.approx(value), name
    assert (repo / "params.yaml").read_bytes() == params_before
    assert json.loads(run_dvc(repo, "status", "--json", env=env).stdout) == {}
    print(f"\nqueue of {len(exps)} experiments with -j 2: {took:.0f} s")


@pytest.mark.slow
def test_a_second_clone_reproduces_every_output_byte_for_byte(
    repro: tuple[Path, dict[str, str], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Same params, same bytes in another clone: every dataset, model (trained on the CPU),
    restoration, evaluation and metrics file of the tiny run hashes the same in dvc.lock."""
    repo, env, _ = repro
    other = copy_repo(tmp_path_factory.mktemp("clone2"))
    env2 = {**env, "MUSICRESTORE_TRACKING": "0"}
    run_dvc(other, "repro", env=env2)

    def outs(root: Path) -> dict[str, str]:
        lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
        return {
            o["path"]: o.get("md5")
            for stage in lock.values()
            for o in stage.get("outs", [])
            if "timing" not in o["path"]
        }

    first, second = outs(repo), outs(other)
    assert len(first) > 35  # every stage's outputs, 39 on the tiny profile
    assert {p for p in first if first[p] != second.get(p)} == set()


def test_two_dask_workers_reproduce_every_per_example_stage_byte_for_byte(
    repro: tuple[Path, dict[str, str], str],
) -> None:
    """The tiny profile runs in the stage process (compute.workers: 1); the builders,
    separate, a DSP, a separating and a learned restore and an evaluation run again on a real
    LocalCluster of 2 worker processes and write the bytes dvc.lock holds. compute is no DVC
    param: the pipeline stays up to date."""
    repo, env, _ = repro
    params_path = repo / "params.yaml"
    before_params = params_path.read_text()
    lock_before = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    stages = ["build_msr@Voc", "build_musicgen_like", "separate", "restore-dsp_direct",
              "restore-demucs_dsp", "restore-unet_mask", "evaluate@demucs_dsp"]  # fmt: skip
    params = yaml.safe_load(before_params)
    params["compute"].update(workers=2, cluster_start_s=0)  # the cluster before any task
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        for stage in stages:
            run_dvc(repo, "repro", "--force", "--single-item", stage, env=env)
        assert json.loads(run_dvc(repo, "status", "--json", env=env).stdout) == {}
    finally:
        params_path.write_text(before_params)
    lock_after = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    for stage in stages:
        outs = [o for o in lock_after[stage]["outs"] if "timing" not in o["path"]]
        old = {o["path"]: o["md5"] for o in lock_before[stage]["outs"]}
        assert {o["path"]: o["md5"] for o in outs} == {o["path"]: old[o["path"]] for o in outs}
