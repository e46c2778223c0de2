"""Load test of the app: N concurrent sessions through ``gradio_client``, against a real
server process on 127.0.0.1.

    python benchmarks/bench_app.py                       # 10 sessions x 90 s stereo, dsp_direct
    python benchmarks/bench_app.py --sessions 4 --seconds 30 --variant preclean

Starts ``python -m musicrestore app`` on a free port with a throw-away project (its
``app:`` block sized for the clips) and its scratch folder under a temporary ``TMPDIR``;
then every session, each in its own thread and its own client (its own Gradio session):
uploads a stereo 44.1-kHz clip (PCM 16), restores it with ``--variant`` and compares.
Then every client closes (the tab closes: Gradio's ``unload``), and the benchmark waits out
the workspace's grace period.

Prints one row per session (upload, restore and compare latency in seconds), the
completions and errors, the size of one clip's player preview, the server's resident memory (its process and children: idle
before, peak while serving, after the sessions closed) and the session files left on disk.
Nothing here asserts a figure: a busy machine changes them; run it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clip(path: Path, seconds: float, seed: int) -> Path:
    """Decaying partials on a random melody, stereo, 44.1 kHz, PCM 16."""
    import soundfile as sf

    sr = 44100
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    notes = 220 * 2 ** (rng.integers(0, 12, size=int(seconds * 4) + 1) / 12)
    f0 = notes[(t * 4).astype(int)]
    mono = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3)) * np.exp(
        -6 * (t % 0.25)
    )
    noisy = mono + 0.01 * rng.standard_normal(mono.shape)
    sf.write(path, np.stack([noisy, noisy], axis=1).astype(np.float32), sr, subtype="PCM_16")
    return path


def _rss(pid: int) -> int:
    """Resident memory of the process and its children (bytes)."""
    import psutil

    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a child that ended meanwhile
            total += child.memory_info().rss
    return total


#: What lives in the server's TMPDIR: the app's session folders, and Gradio's copies of the
#: files it served (its own cache, emptied by ``delete_cache`` after an hour).
SCRATCH = {"sessions": "musicrestore-app-*", "gradio cache": "gradio"}


def _du(folder: Path, pattern: str) -> int:
    return sum(
        p.stat().st_size for top in folder.glob(pattern) for p in top.rglob("*") if p.is_file()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="concurrent sessions")
    parser.add_argument("--seconds", type=float, default=90.0, help="clip length (s)")
    parser.add_argument("--variant", default="dsp_direct", help="variant each session runs")
    parser.add_argument(
        "--grace", type=float, default=60.0, help="wait after closing (s): unload + 30-s grace"
    )
    args = parser.parse_args(argv)

    import yaml
    from gradio_client import Client, handle_file

    work = Path(tempfile.mkdtemp(prefix="bench-app-"))
    scratch = work / "tmp"
    scratch.mkdir()
    params = {"app": {"max_upload_mb": 200, "max_duration_s": max(600.0, args.seconds)}}
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "musicrestore", "app", "--params", str(work / "params.yaml")]
    server = subprocess.Popen(
        [*cmd, "--port", str(port)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    try:
        line = server.stdout.readline() if server.stdout else ""
        if "musicrestore app:" not in line:
            print(f"error: the app did not start: {line.strip()}", file=sys.stderr)
            return 1
        url = f"http://127.0.0.1:{port}/"
        clips = [_clip(work / f"clip{k}.wav", args.seconds, k) for k in range(args.sessions)]
        from musicrestore.app.session import write_preview

        t0 = time.perf_counter()
        write_preview(clips[0], work / "preview.ogg")
        encode_s = time.perf_counter() - t0
        float_wav = args.seconds * 44100 * 2 * 4  # what a player got before: float WAV
        preview_line = (
            f"player preview of one clip: Ogg {(work / 'preview.ogg').stat().st_size / 2**20:.2f}"
            f" MiB against {float_wav / 2**20:.1f} MiB of float WAV, encoded in {encode_s:.1f} s"
        )
        time.sleep(2.0)
        idle = _rss(server.pid)
        peak = idle
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.wait(0.1):
                peak = max(peak, _rss(server.pid))

        rows: list[tuple[int, float, float, float]] = []
        errors: list[str] = []
        clients: list[Client] = []

        def session(k: int) -> None:
            try:
                c = Client(url, verbose=False)
                clients.append(c)
                t0 = time.perf_counter()
                c.predict(handle_file(clips[k]), "clean", api_name="/upload")
                t1 = time.perf_counter()
                c.predict(args.variant, "", "(mixture)", api_name="/restore")
                t2 = time.perf_counter()
                c.predict([args.variant], False, api_name="/compare")
                t3 = time.perf_counter()
                rows.append((k, t1 - t0, t2 - t1, t3 - t2))
            except Exception as exc:  # noqa: BLE001 (reported in the table)
                errors.append(f"session {k}: {type(exc).__name__}: {str(exc)[:120]}")

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        start = time.perf_counter()
        threads = [threading.Thread(target=session, args=(k,)) for k in range(args.sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        served = _rss(server.pid)
        disk_open = {k: _du(scratch, pattern) for k, pattern in SCRATCH.items()}
        for c in clients:
            c.close()  # the tab closes: the server's unload frees its sessions
        time.sleep(args.grace)
        done.set()
        after = _rss(server.pid)
        disk_after = {k: _du(scratch, pattern) for k, pattern in SCRATCH.items()}

        print(
            f"{args.sessions} sessions x {args.seconds:g} s stereo 44.1 kHz, {args.variant}, "
            f"one server on {os.cpu_count()} cores"
        )
        print("| session | upload s | restore s | compare s |")
        print("|---|---|---|---|")
        for k, up, rest, comp in sorted(rows):
            print(f"| {k} | {up:.1f} | {rest:.1f} | {comp:.1f} |")
        if rows:
            restores = sorted(r[2] for r in rows)
            print(
                f"\nrestore latency: median {restores[len(restores) // 2]:.1f} s, "
                f"max {restores[-1]:.1f} s; wall {wall:.1f} s"
            )
        print(f"completed {len(rows)} of {args.sessions}; errors {len(errors)}")
        print(preview_line)
        for e in errors:
            print(f"  {e}")
        mib = 2**20
        print(
            f"server RSS: idle {idle / mib:.0f} MiB, peak {peak / mib:.0f} MiB, "
            f"after the sessions {served / mib:.0f} MiB, "
            f"{args.grace:g} s after their tabs closed {after / mib:.0f} MiB"
        )
        for k in SCRATCH:
            print(
                f"{k}: {disk_open[k] / mib:.0f} MiB on disk with the tabs open, "
                f"{disk_after[k] / mib:.1f} MiB after they closed"
            )
        return 0 if not errors else 1
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
