"""The interactive restoration app (seed 000 §3, "Implementation notes aligned with the app"):
the library layer, every tab through ``gradio_client`` against a running app, a real
browser (Debian's chromium driven by Playwright), eight concurrent clients, bad uploads and
the ``python -m musicrestore app`` command.

The app under test serves a project folder made here: a ``params.yaml`` with a small ``app:``
block, one T1 test set under ``data/`` and no ``models/`` (a fresh clone: DSP variants
only). Screenshots of every tab go to ``tests/artifacts/``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import yaml

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError as ClientAppError  # noqa: E402

from musicrestore.app import (  # noqa: E402
    APP_DEFAULTS,
    AppError,
    Project,
    Workspace,
    app_settings,
    comparison,
    degradation,
    restoration,
    sources,
)
from musicrestore.app.session import reset  # noqa: E402
from musicrestore.app.ui import build_app, launch_kwargs  # noqa: E402
from musicrestore.core.audio import save_audio  # noqa: E402
from musicrestore.core.config import ConfigError  # noqa: E402
from musicrestore.data.dataset import Example, write_manifest  # noqa: E402
from musicrestore.variants import VARIANTS, Variant  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
APP_PARAMS = {"max_upload_mb": 1, "max_duration_s": 20, "concurrency_limit": 2}
CLIP_KEY = "musicgen_like/ml_000"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _music(sr: int, seconds: float, channels: int, seed: int = 0) -> np.ndarray:
    """Three decaying partials per note, four notes a second: something to degrade."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    env = np.exp(-6 * (t % 0.25))
    f0 = 220 * 2 ** (rng.integers(0, 12, size=int(seconds * 4) + 1)[(t * 4).astype(int)] / 12)
    mono = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in (1, 2, 3)) * env
    return np.repeat(mono[None], channels, axis=0).astype(np.float32)


def _make_project(root: Path) -> Path:
    """A project folder as a fresh clone after the T1 test set was built: params.yaml and
    ``data/musicgen_like/test`` with one example, no ``models/``."""
    (root / "params.yaml").write_text(yaml.safe_dump({"app": APP_PARAMS}))
    folder = root / "data" / "musicgen_like" / "test"
    sr = 16000
    clean = _music(sr, 3.0, 1, seed=1)
    noisy = clean + 0.02 * np.random.default_rng(2).standard_normal(clean.shape).astype(np.float32)
    save_audio(folder / "ml_000_mixture.flac", noisy, sr)
    save_audio(folder / "ml_000_target.flac", clean, sr)
    effect = {"name": "gaussian_noise", "stage": "mixture", "params": {"std": 0.02}}
    write_manifest(
        folder,
        [
            Example(
                id="ml_000",
                task="T1",
                mixture="ml_000_mixture.flac",
                target="ml_000_target.flac",
                sr=sr,
                duration_s=3.0,
                song="A|B",
                effects=[effect],
            )
        ],
    )
    return root


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Good and bad uploads."""
    d = tmp_path_factory.mktemp("uploads")
    good = d / "song.wav"
    save_audio(good, _music(44100, 3.0, 2), 44100, subtype="PCM_16")
    text = d / "notes.txt"
    text.write_text("not audio at all\n")
    fake = d / "fake.wav"  # text content under an audio name
    fake.write_text("RIFF? no, just text\n" * 20)
    truncated = d / "truncated.wav"
    save_audio(truncated, _music(44100, 2.0, 2), 44100, subtype="PCM_16")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    six = d / "six.wav"
    sf.write(six, np.zeros((8000, 6), np.float32), 8000, subtype="PCM_16")
    big = d / "big.wav"  # 2.1 MB > app.max_upload_mb = 1
    save_audio(big, _music(44100, 6.0, 2), 44100, subtype="FLOAT")
    long = d / "long.wav"  # 25 s > app.max_duration_s = 20, but only 400 kB
    save_audio(long, _music(8000, 25.0, 1), 8000, subtype="PCM_16")
    return SimpleNamespace(
        good=good, text=text, fake=fake, truncated=truncated, six=six, big=big, long=long
    )


@contextlib.contextmanager
def _serving(root: Path, workspace: Workspace) -> Iterator[SimpleNamespace]:
    """The app of the project at ``root`` on 127.0.0.1, a free port; closed at the end."""
    project = Project.load(root / "params.yaml")
    demo = build_app(project, workspace)
    _, url, _ = demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=_free_port(),
        **launch_kwargs(project, workspace),
    )
    try:
        yield SimpleNamespace(url=url, project=project, workspace=workspace, root=root)
    finally:
        demo.close(verbose=False)
        workspace.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The app on 127.0.0.1, a free port, serving a fresh project; closed at the end."""
    root = _make_project(tmp_path_factory.mktemp("project"))
    workspace = Workspace(tmp_path_factory.mktemp("workspace"), grace_s=1.0)
    with _serving(root, workspace) as served:
        yield served


def _client(app: SimpleNamespace) -> Client:
    return Client(app.url, verbose=False)


@functools.cache
def _stage(out: str, targets: tuple[str, ...] = ()) -> str:
    """The ``dvc repro`` target the pipeline names for ``out``: what the app's notes say."""
    from musicrestore import pipeline

    stage = pipeline.stage_writing(out, list(targets))
    assert stage, f"the pipeline names no stage that writes {out}"
    return stage


def _v(output: Any) -> Any:
    """An output's value as the client receives it: an update (``gr.update``) arrives as a
    dict with its ``value``; a plain value as it is."""
    return output["value"] if isinstance(output, dict) and "__type__" in output else output


def _error(call) -> str:  # type: ignore[no-untyped-def]
    """The message the page shows for a request that fails (a gr.Error)."""
    with pytest.raises(ClientAppError) as exc:
        call()
    text = str(exc.value)
    assert "Traceback" not in text and "\n" not in text.strip()
    return text


# ----------------------------------------------------------------------------- library


def test_app_params_block_defaults_and_errors() -> None:
    assert app_settings(None) == APP_DEFAULTS
    assert app_settings({"max_upload_mb": "2"})["max_upload_mb"] == 2.0
    for bad, key in [
        ({"max_upload_mb": 0}, "app.max_upload_mb"),
        ({"concurrency_limit": 0}, "app.concurrency_limit"),
        ({"queue_max_size": "many"}, "app.queue_max_size"),
        ({"max_uploads": 3}, "unknown key"),
    ]:
        with pytest.raises(ConfigError, match=key) as exc:
            app_settings(bad)
        assert "\n" not in str(exc.value)


def test_availability_follows_the_registry_and_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variant runs when it needs nothing or its separator / checkpoint folder exists;
    the note names the stage the pipeline says makes a missing model (a checkpoint the
    pipeline does not train: ``train-<name>``)."""
    from musicrestore import pipeline

    monkeypatch.setitem(
        VARIANTS,
        "fake_learned",
        Variant(
            name="fake_learned",
            fn=lambda w, sr, ctx: w.copy(),
            description="a learned stand-in",
            params_key="fake_learned",
            checkpoint="fake_ckpt",
        ),
    )
    project = Project(tmp_path, {})
    avail = project.availability()
    for name, v in VARIANTS.items():
        needs = v.needs_separator or v.checkpoint or v.pretrained  # pretrained: none offline
        assert avail[name].available == (not needs), name
    assert "fake_learned" not in project.available_variants()
    assert {"identity", "dsp_direct"} <= set(project.available_variants())
    note = project.missing_note()
    separator = _stage("models/separator")
    assert pipeline.stage_writing("models/fake_ckpt", []) is None
    assert f"`dvc repro {separator}`" in note and "`dvc repro train-fake_ckpt`" in note
    assert avail["fake_learned"].commands == ("dvc repro train-fake_ckpt",)
    assert f"run `dvc repro {separator}`" in project.describe_variant("demucs")
    assert "Scores on the pipeline's test sets" not in project.describe_variant("dsp_direct")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text(
        json.dumps({"dsp_direct": {"t1": {"si_sdr": 1.5}, "t3": {"p25_level_db": -60.0}}})
    )
    described = project.describe_variant("dsp_direct")
    assert "T1 SI-SDR 1.50 dB; T3 P25 level -60.00 dB." in described
    assert "from `reports/metrics.json` (written by the last `dvc repro`" in described

    for v in VARIANTS.values():  # every checkpoint folder, and the separator's
        if v.checkpoint:
            (tmp_path / "models" / v.checkpoint).mkdir(parents=True, exist_ok=True)
    (tmp_path / "models" / "separator").mkdir()
    downloaded = {n for n, v in VARIANTS.items() if v.pretrained}  # no checkpoints offline
    assert set(project.available_variants()) == set(VARIANTS) - downloaded
    for name in downloaded:
        assert any("pretrained" in c for c in project.availability()[name].commands)


def test_missing_models_are_named_by_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which stage makes a missing model is the pipeline's answer
    (``pipeline.stage_writing`` over the project's ``msr.targets``), for every model a
    registered variant needs; ``train_separator`` / ``train-<name>`` only where it names
    none."""
    from musicrestore import pipeline

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    targets = tuple(params["msr"]["targets"])
    project = Project(tmp_path, params)  # a fresh clone: every model missing
    for name, a in project.availability().items():
        for path, cmd in zip(a.missing, a.commands, strict=True):
            if a.variant.pretrained:  # downloaded, not made: the download command
                assert cmd.startswith(("curl ", "hf download ")) or "configured" in cmd
                continue
            assert cmd == f"dvc repro {_stage(path, targets)}", (name, path)

    seen: list[tuple[str, list[str]]] = []

    def stage_writing(out: str, targets: list[str]) -> str | None:
        seen.append((out, list(targets)))
        return {"models/uformer": "uformer-all"}.get(out)

    monkeypatch.setattr(pipeline, "stage_writing", stage_writing, raising=False)
    project = Project(tmp_path, {"msr": {"targets": ["Voc", "Bass"]}})
    assert project.stage_for("models/uformer") == "uformer-all"
    assert seen == [("models/uformer", ["Voc", "Bass"])]
    assert project.stage_for("models/separator") == "train_separator"
    assert project.stage_for("models/wavenet") == "train-wavenet"
    assert project.clips_note() == (
        "No test sets under `data/` yet: `dvc repro build_musicgen_like` (T1), "
        "`dvc repro build_msr` (T2) and `dvc repro fetch_musicgen` (T3) make them."
    )


def test_a_per_group_model_offers_exactly_its_trained_groups(tmp_path: Path) -> None:
    """uformer has one model per msr.targets group: the app offers the groups trained
    here, no "(mixture)", and names the command for the others; a group outside
    msr.targets says to add it there (never a CLI flag)."""
    from musicrestore.app.ui import _target_choices

    (tmp_path / "models" / "uformer" / "Voc").mkdir(parents=True)
    (tmp_path / "models" / "uformer" / "Voc" / "config.json").write_text("{}")
    (tmp_path / "models" / "uformer" / "Bass").mkdir()  # a folder without a model
    project = Project(tmp_path, {"msr": {"targets": ["Voc", "Bass", "Gtr"]}})
    have, todo = project.stem_targets("uformer")
    assert have == ["Voc"]
    assert todo == {g: f"dvc repro {_stage(f'models/uformer/{g}', ('Voc', 'Bass', 'Gtr'))}"
                    for g in ("Bass", "Gtr")}  # fmt: skip
    assert todo["Bass"] == "dvc repro train-uformer@Bass"
    assert _target_choices(project, "uformer") == (["Voc"], "Voc")
    assert _target_choices(project, "demucs")[0][0] == "(mixture)"
    text = project.describe_variant("uformer")
    assert "Trained for Voc" in text and "Bass (`dvc repro train-uformer@Bass`)" in text
    session = Workspace(tmp_path / "ws").new_session()
    session.input = tmp_path / "x.wav"
    save_audio(session.input, _music(16000, 1.0, 1), 16000)
    for target, says in [
        (
            None,
            "uformer restores one stem group with that group's model: pick a target group (Voc)",
        ),
        ("Bass", "uformer has no model for Bass here: run `dvc repro train-uformer@Bass`"),
        ("Gtr_AG", "uformer has no model for Gtr_AG here: add it to msr.targets in params"),
    ]:
        with pytest.raises(AppError) as exc:
            restoration.restore(project, session, "uformer", None, target)
        assert str(exc.value).startswith(says) and "--target" not in str(exc.value)


def test_reset_stops_a_running_job_and_never_removes_a_file_it_still_uses(
    tmp_path: Path,
) -> None:
    """The Reset race: a request holds its session (``Workspace.job``); Reset asks it to
    stop, waits until it has, and the files go only after the grace period (Gradio copies
    a returned file after the handler returns); a result for a reset session is refused."""
    import time

    workspace = Workspace(tmp_path / "ws", grace_s=0.5)
    session = workspace.new_session("tab1")
    kept = session.save("input", _music(8000, 0.5, 1), 8000)
    started, stopped = threading.Event(), []

    def job() -> None:
        try:
            with workspace.job(session) as check:
                started.set()
                for _ in range(200):  # a restore's chunks: check between them
                    time.sleep(0.01)
                    check()
        except AppError as exc:
            stopped.append(str(exc))

    worker = threading.Thread(target=job)
    worker.start()
    assert started.wait(5)
    fresh = reset(workspace, session, "tab1")  # returns once the job has stopped
    worker.join(5)
    assert not worker.is_alive()
    assert stopped == ["stopped: the session was reset (its result is discarded)"]
    assert kept.is_file()  # still there for Gradio to copy
    assert workspace.gone(session) == "reset" and workspace.gone(fresh) is None
    with pytest.raises(AppError, match="reset"), workspace.job(session):
        pass  # a request that queued behind Reset never works in the old session
    deadline = time.monotonic() + 10
    while kept.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kept.exists()  # gone after the grace period
    assert fresh.folder.parent == session.folder.parent  # the same tab


def test_closed_tabs_and_the_disk_cap_free_the_workspace(tmp_path: Path) -> None:
    """Gradio's unload (a closed tab) removes that tab's sessions at once (after the
    grace period), not after its one-hour state lifetime; the disk cap forgets the oldest
    idle sessions first and never the session of the request that just ran."""
    import os
    import time

    workspace = Workspace(tmp_path / "ws", max_bytes=300_000, grace_s=0.0)
    sessions = []
    for k in range(4):  # 4 sessions of ~128 kB each, oldest first
        s = workspace.new_session(f"tab{k}")
        path = s.save("input", _music(16000, 2.0, 1, seed=k), 16000)
        os.utime(path, (1000.0 + k, 1000.0 + k))
        sessions.append(s)
    dropped = workspace.enforce_cap(keep=sessions[0])
    assert dropped == [sessions[1].folder, sessions[2].folder]  # oldest idle first
    assert workspace.gone(sessions[0]) is None and workspace.gone(sessions[3]) is None
    with pytest.raises(AppError, match="app.max_workspace_mb"), workspace.job(sessions[1]):
        pass
    assert workspace.drop_owner("tab3") == 1
    assert workspace.gone(sessions[3]) == "closed"
    deadline = time.monotonic() + 10
    while any(s.folder.exists() for s in sessions[1:]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [s.folder.exists() for s in sessions] == [True, False, False, False]


def test_players_get_a_compressed_preview_never_above_full_scale(tmp_path: Path) -> None:
    """The browser gets Ogg Vorbis (a fraction of the float WAV, which stays for download);
    a signal above 0 dBFS is scaled to full scale and the label says so."""
    session = Workspace(tmp_path / "ws").new_session()
    loud = session.save("loud", 4.0 * _music(44100, 5.0, 2), 44100)  # peaks near +12 dB
    preview, note = session.preview(loud)
    wave, sr = sf.read(preview, always_2d=True)
    assert sr == 44100 and wave.shape == (5 * 44100, 2)
    assert 0.8 < np.max(np.abs(wave)) <= 1.0  # to -1 dBFS: the codec's overshoot stays below 0
    assert preview.stat().st_size < loud.stat().st_size / 5
    assert note.startswith(" (peaks at +1") and "dBFS" in note
    assert session.preview(loud) == (preview, note)  # made once
    quiet = session.save("quiet", 0.5 * _music(44100, 1.0, 1), 44100)
    assert session.preview(quiet)[1] == ""


def test_the_metrics_table_fits_and_says_where_a_metric_is_undefined(tmp_path: Path) -> None:
    """A 0.1-s clip: STOI and loudness are "n/a (too short)", not 0 and -70 LUFS as if
    measured; the default table keeps the headline columns, "all metrics" every one."""
    project = Project(tmp_path, {})
    session = Workspace(tmp_path / "ws").new_session()
    clean = _music(16000, 0.1, 1)
    session.sr = 16000
    session.reference = session.save("reference", clean, 16000)
    session.input = session.save("input", clean + 0.01, 16000)
    session, _ = restoration.restore(project, session, "identity")
    rows = comparison.compare(project, session).table
    cells = {k: v for k, v in rows[0].items() if k.startswith(("STOI", "ΔLoudness", "Loudness"))}
    assert cells and set(cells.values()) == {comparison.TOO_SHORT}, cells
    short = comparison.table_view(rows, every=False)
    assert set(short[0]) < set(rows[0]) and "signal" in short[0]
    assert not any(k.startswith(("Loudness", "True peak")) for k in short[0])
    assert comparison.table_view(rows, every=True) == rows


def test_port_taken_and_help_speak_the_commands_terms(capsys: pytest.CaptureFixture) -> None:
    from musicrestore.app import server

    assert "--port N" in server.port_taken(7860) and "GRADIO" not in server.port_taken(7860)
    with pytest.raises(SystemExit):
        server.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "compare the outputs." in help_text  # the description ends its sentence


def test_strength_scales_probabilities_and_degrading_is_seeded() -> None:
    probs = {"a": 0.5, "b": 0.75, "off": 0.0}
    assert degradation.scaled_probabilities(probs, 0.0) == {"a": 0.0, "b": 0.0, "off": 0.0}
    assert degradation.scaled_probabilities(probs, 0.5) == probs
    assert degradation.scaled_probabilities(probs, 1.0) == {"a": 1.0, "b": 1.0, "off": 0.0}
    with pytest.raises(AppError, match="between 0 and 1"):
        degradation.scaled_probabilities(probs, 1.5)
    wave = _music(16000, 1.0, 2)
    for chain in degradation.CHAINS:
        ref, deg, effects, info = degradation.degrade_wave(wave, 16000, chain, 1.0, seed=3)
        again = degradation.degrade_wave(wave, 16000, chain, 1.0, seed=3)
        assert deg.shape == ref.shape == wave.shape and np.array_equal(deg, again[1])
        assert effects and effects == again[2] and info["chain"] == chain
        assert max(np.abs(ref).max(), np.abs(deg).max()) <= 0.999 + 1e-6
        # the reference is the clean input at the chain's level, nothing else
        assert np.allclose(ref / np.abs(ref).max(), wave / np.abs(wave).max(), atol=1e-5)
    _, deg, effects, _ = degradation.degrade_wave(wave, 16000, "musicgen_like", 0.0, seed=3)
    assert effects == [] and np.allclose(deg / np.abs(deg).max(), wave / np.abs(wave).max())


def test_separating_variant_restores_a_stem_once_the_separator_exists(tmp_path: Path) -> None:
    """With ``models/separator`` written as train_separator does, a separating "stem"
    variant runs on a target group; any length goes through restore_array."""
    from musicrestore import separation

    separation.export_repo(
        separation.tiny_htdemucs(seed=0),
        tmp_path / "models" / "separator",
        "trained",
        formats=("safetensors",),
    )
    project = Project(tmp_path, {})
    assert "demucs" in project.available_variants()
    workspace = Workspace(tmp_path / "ws")
    path = tmp_path / "mix.wav"
    save_audio(path, _music(44100, 1.5, 2), 44100)
    session = sources.load_upload(project, workspace.new_session(), path, "degraded")
    steps: list[str] = []
    session, out = restoration.restore(
        project, session, "demucs", "", "Voc", progress=lambda f, t: steps.append(t)
    )
    assert out.label == "demucs (Voc)" and out.target == "Voc"
    assert sf.info(str(out.path)).frames == sf.info(str(path)).frames
    assert steps[-1] == "demucs: done"
    result = comparison.compare(project, session, [out.label])
    assert [row["signal"] for row in result.table] == ["input", "demucs (Voc)"]
    assert all("SI-SDR" not in key for key in result.table[0])  # no reference: non-intrusive


def test_long_inputs_are_chunked_with_progress(tmp_path: Path) -> None:
    project = Project(tmp_path, {"restore": {"chunk_s": 1.0, "overlap_s": 0.25}})
    path = tmp_path / "long.wav"
    save_audio(path, _music(8000, 4.5, 1), 8000)
    session = sources.load_upload(project, Workspace(tmp_path / "ws").new_session(), path)
    steps: list[float] = []
    session, out = restoration.restore(
        project, session, "preclean", None, None, progress=lambda f, t: steps.append(f)
    )
    assert (
        len(steps)
        == restoration.count_chunks(VARIANTS["preclean"], 36000, 8000, project.restore) + 1
    )
    assert len(steps) > 3 and steps == sorted(steps) and steps[-1] == 1.0
    assert sf.info(str(out.path)).frames == 36000


# ----------------------------------------------------------------------------- the app


def test_every_tab_through_the_client(app: SimpleNamespace, files: SimpleNamespace) -> None:
    from .test_musicgen import _tiny_musicgen

    c = _client(app)
    # Generate: MusicGen missing, then a local (tiny, random-init) model folder
    msg = _error(
        lambda: c.predict("a prompt", 1.0, 0, "facebook/musicgen-small", api_name="/generate")
    )
    assert "huggingface-cli download facebook/musicgen-small" in msg
    tiny = _tiny_musicgen(app.root / "tiny_musicgen")
    status, source, *_ = c.predict("gentle grooves", 1.0, 0, str(tiny), api_name="/generate")
    assert status.startswith("**MusicGen (tiny_musicgen)") and "32000 Hz, mono" in status
    assert sf.info(_v(source)).samplerate == 32000

    # Generate: a test-set clip (degraded input + its reference)
    status, source, degraded, reference, effects, _ = c.predict(CLIP_KEY, api_name="/load_clip")
    assert f"test clip {CLIP_KEY}" in status and "Reference kept" in status
    assert degraded and reference and json.loads(effects)["effects"][0]["name"] == "gaussian_noise"

    # Generate: an upload, then Degrade it
    status, *_ = c.predict(handle_file(files.good), "clean", api_name="/upload")
    assert "upload song.wav" in status and "44100 Hz, stereo" in status
    status, source, degraded, reference, effects, _ = c.predict(
        "msr_mixture", 1.0, 7, api_name="/degrade"
    )
    fx = json.loads(effects)
    assert [e["name"] for e in fx["effects"]] == ["limiter", "resample", "mp3", "gaussian_noise"]
    assert fx["degradation"]["seed"] == 7 and "degraded (msr_mixture)" in status
    assert sf.info(_v(degraded)).frames == sf.info(_v(reference)).frames == 3 * 44100

    # Restore: params prefilled per variant; target group only for "stem" variants
    params, target, _ = c.predict("demucs_dsp", api_name="/variant_params")
    assert list(json.loads(params)) == ["demucs_dsp", "dsp_direct"]
    assert target["visible"] is (VARIANTS["demucs_dsp"].output == "stem")
    _, target, _ = c.predict("dsp_direct", api_name="/variant_params")
    assert target["visible"] is False
    msg = _error(lambda: c.predict("demucs", "", "Voc", api_name="/restore"))
    assert "models/separator" in msg and f"dvc repro {_stage('models/separator')}" in msg
    msg = _error(lambda: c.predict("dsp_direct", "{oops", "(mixture)", api_name="/restore"))
    assert "not valid JSON" in msg
    msg = _error(
        lambda: c.predict(
            "dsp_direct", '{"dsp_direct": {"nr_n_fft": -1}}', "(mixture)", api_name="/restore"
        )
    )
    assert "variants.dsp_direct.nr_n_fft" in msg
    msg = _error(  # the issue's +200 dB gain: refused in one line, never played at 1e9
        lambda: c.predict(
            "dsp_direct", '{"dsp_direct": {"gain_db": 200}}', "(mixture)", api_name="/restore"
        )
    )
    assert "variants.dsp_direct.gain_db: got 200.0; expected a gain in dB in [-60, 24]" in msg
    edited = json.loads(c.predict("dsp_direct", api_name="/variant_params")[0])
    edited["dsp_direct"]["gain_db"] = 0.0
    for name, text in [("dsp_direct", json.dumps(edited)), ("identity", "")]:
        *_, restored, info, decisions = c.predict(name, text, "(mixture)", api_name="/restore")
        assert sf.info(_v(restored)).frames == 3 * 44100 and name in info
        assert _v(restored).endswith(".preview.ogg")  # the browser gets the preview
        json.loads(decisions)

    # Compare: players, figures, metrics against the reference, downloads
    *slots, table, spec, overlay, diff, downloads, window = c.predict(
        ["dsp_direct", "identity"], api_name="/compare"
    )
    shown = [s["label"] for s in slots if s.get("visible")]
    assert shown == ["reference", "input", "dsp_direct", "identity"]
    table = _v(table)
    assert table["headers"][:2] == ["signal", "SI-SDR (dB) ↑"]
    rows = {r[0]: dict(zip(table["headers"], r, strict=True)) for r in table["data"]}
    assert set(rows) == {"input", "dsp_direct", "identity"}
    assert rows["identity"]["SI-SDR (dB) ↑"] == rows["input"]["SI-SDR (dB) ↑"]
    for png in (spec, overlay, diff):
        assert Path(_v(png)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(downloads) == 4 and "loudest window" in window

    # Reset
    status, *_ = c.predict(api_name="/reset")
    assert status == "Nothing loaded yet."
    assert "nothing to compare" in _error(lambda: c.predict([], api_name="/compare"))
    assert "restore" in _error(lambda: c.predict("identity", "", "(mixture)", api_name="/restore"))


def test_reset_during_a_restore_through_the_server(tmp_path: Path) -> None:
    """The issue's race through a real server: Reset a second into a long restore. The
    restore stops at its next chunk with one line (no FileNotFoundError, no wasted run to
    the end), Reset answers with an empty session, and the same tab then works as new."""
    from gradio_client.utils import Status

    (tmp_path / "project").mkdir()
    root = _make_project(tmp_path / "project")
    params = {"app": APP_PARAMS, "restore": {"chunk_s": 0.25, "overlap_s": 0.05, "context_s": 0.1}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    workspace = Workspace(tmp_path / "ws", grace_s=1.0)
    with _serving(root, workspace) as served:
        long = tmp_path / "long.wav"  # 19 s: about 95 chunks of preclean
        save_audio(long, _music(16000, 19.0, 1), 16000, subtype="PCM_16")
        c = _client(served)
        c.predict(handle_file(long), "degraded", api_name="/upload")
        job = c.submit("preclean", "", "(mixture)", api_name="/restore")
        deadline = time.monotonic() + 60
        while job.status().code != Status.PROGRESS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.status().code == Status.PROGRESS, job.status()
        started = time.monotonic()
        status, *_ = c.predict(api_name="/reset")
        waited = time.monotonic() - started
        assert status == "Nothing loaded yet."
        with pytest.raises(ClientAppError) as exc:
            job.result(timeout=60)
        assert "stopped: the session was reset" in str(exc.value)
        assert "FileNotFoundError" not in str(exc.value)
        print(f"\nReset during a restore: answered in {waited:.2f} s")
        folders = [p for p in workspace.root.glob("*/*") if p.is_dir()]
        assert folders  # the old session's files wait out the grace period ...
        deadline = time.monotonic() + 10
        while any(p.exists() for p in folders) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(p.exists() for p in folders)  # ... then they are gone
        status, *_ = c.predict(handle_file(long), "degraded", api_name="/upload")
        assert "upload long.wav" in status  # the tab goes on with a fresh session


def test_bad_uploads_say_why_and_the_app_keeps_serving(
    app: SimpleNamespace, files: SimpleNamespace
) -> None:
    c = _client(app)
    cases = [
        (files.text, "notes.txt: not a readable audio file"),
        (files.fake, "fake.wav: not a readable audio file"),
        (files.truncated, "truncated.wav: truncated file"),
        (files.six, "six.wav: 6 channels; only mono or stereo is supported"),
        (files.long, "long.wav: 25.0 s long; this app takes at most 20 s"),
    ]
    for path, expected in cases:
        msg = _error(lambda p=path: c.predict(handle_file(p), "clean", api_name="/upload"))
        assert expected in msg, msg
        assert "/tmp" not in msg and "gradio" not in msg  # the user's file name, not a path
        status, *_ = c.predict(handle_file(files.good), "clean", api_name="/upload")
        assert "upload song.wav" in status
    # over the size cap: Gradio refuses it before it reaches the app ...
    with pytest.raises(ValueError, match="maximum file size"):
        c.predict(handle_file(files.big), "clean", api_name="/upload")
    status, *_ = c.predict(handle_file(files.good), "degraded", api_name="/upload")
    assert "No reference" in status
    # ... and the app's own check says the same where a larger Gradio cap let it through
    with pytest.raises(AppError, match=r"big.wav: 2.0 MB; this app takes uploads up to 1 MB"):
        sources.load_upload(app.project, app.workspace.new_session(), files.big)
    with pytest.raises(AppError, match="x.wav: the upload did not arrive"):
        sources.load_upload(app.project, app.workspace.new_session(), files.good.with_name("x.wav"))


def test_eight_concurrent_clients(app: SimpleNamespace, files: SimpleNamespace) -> None:
    """Eight clients upload 3 s of stereo and restore it (dsp_direct) at once: every one
    finishes without error through the queue (app.concurrency_limit at a time)."""
    import psutil

    proc = psutil.Process()
    peak = proc.memory_info().rss
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, proc.memory_info().rss)

    results: list[str] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            c = _client(app)
            c.predict(handle_file(files.good), "clean", api_name="/upload")
            *_, restored, info, _ = c.predict("dsp_direct", "", "(mixture)", api_name="/restore")
            assert sf.info(_v(restored)).frames == 3 * 44100
            results.append(info)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    rss0 = proc.memory_info().rss
    start = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    wall = time.perf_counter() - start
    done.set()
    print(
        f"\nload test: 8 clients x 3 s stereo, dsp_direct: wall {wall:.1f} s, "
        f"peak RSS {peak / 2**20:.0f} MiB (+{(peak - rss0) / 2**20:.0f} MiB over idle)"
    )
    assert not errors, errors
    assert len(results) == 8


def test_browser_upload_degrade_restore_compare(
    app: SimpleNamespace, files: SimpleNamespace
) -> None:
    """A real browser: upload, degrade, restore with two variants, compare (players,
    figures, metrics table), a bad upload's message; a screenshot of every tab."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)

    def upload(page, path: Path) -> None:  # type: ignore[no-untyped-def]
        clear = page.locator("#upload-file").get_by_label("Clear")
        if clear.count():
            clear.click()
        page.locator("#upload-file input[type=file]").set_input_files(str(path))
        page.locator("#upload-file").get_by_text(path.stem).first.wait_for()

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(app.url)
            status = page.locator("#session-status")
            status.get_by_text("Nothing loaded yet.").wait_for()
            missing = page.locator("#missing-models").inner_text()
            assert f"dvc repro {_stage('models/separator')}" in missing

            # Generate: a broken upload shows its one line; then a good one loads
            upload(page, files.truncated)
            page.get_by_role("button", name="Load upload").click()
            page.get_by_text("truncated.wav: truncated file").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "app_bad_upload.png"), full_page=True)
            page.get_by_test_id("toast-close").first.click()
            upload(page, files.good)
            page.get_by_role("button", name="Load upload").click()
            status.get_by_text("upload song.wav").wait_for()
            page.screenshot(path=str(ARTIFACTS / "app_generate.png"), full_page=True)

            page.get_by_role("tab", name="Degrade").click()
            page.get_by_role("button", name="Degrade", exact=True).click()
            status.get_by_text("degraded (musicgen_like)").wait_for()
            assert '"effects"' in page.locator("body").inner_text()
            page.screenshot(path=str(ARTIFACTS / "app_degrade.png"), full_page=True)

            page.get_by_role("tab", name="Restore").click()
            for name in ("dsp_direct", "identity"):
                page.locator("#variant input").click()
                page.get_by_role("option", name=name, exact=True).click()
                page.get_by_text(f'"{name}"').first.wait_for()  # its params are shown
                page.get_by_role("button", name="Restore", exact=True).click()
                page.get_by_text(f"{name}: restored in").wait_for()
            status.get_by_text("Restored: dsp_direct, identity").wait_for()
            page.screenshot(path=str(ARTIFACTS / "app_restore.png"), full_page=True)

            page.get_by_role("tab", name="Compare").click()
            page.get_by_role("button", name="Compare", exact=True).click()
            table = page.locator("#metrics-table")
            table.get_by_text("SI-SDR (dB)").first.wait_for()
            table.get_by_text("identity").first.wait_for()
            figures = page.locator("img[src*='compare_']")
            figures.nth(2).wait_for()
            assert figures.count() == 3
            assert all(
                figures.nth(i).evaluate("img => img.complete && img.naturalWidth > 100")
                for i in range(3)
            )
            for label in ("reference", "input", "dsp_direct", "identity"):
                page.get_by_test_id("block-label").get_by_text(label, exact=True).first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "app_compare.png"), full_page=True)

            page.get_by_role("tab", name="Reset").click()
            page.get_by_role("button", name="Reset session").click()
            status.get_by_text("Nothing loaded yet.").wait_for()
            page.screenshot(path=str(ARTIFACTS / "app_reset.png"), full_page=True)

            # a closed tab frees its files (Gradio's unload), not an hour later
            before = set(app.workspace.root.glob("*/*"))
            page.get_by_role("tab", name="Generate").click()
            upload(page, files.good)
            page.get_by_role("button", name="Load upload").click()
            status.get_by_text("upload song.wav").wait_for()
            mine = set(app.workspace.root.glob("*/*")) - before  # this tab's new session
            assert len(mine) == 1
            page.close()
            deadline = time.monotonic() + 30
            while any(p.exists() for p in mine) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not any(p.exists() for p in mine)
        finally:
            browser.close()
    for tab in ("bad_upload", "generate", "degrade", "restore", "compare", "reset"):
        assert (ARTIFACTS / f"app_{tab}.png").stat().st_size > 10_000


def test_module_command_serves_on_localhost(tmp_path: Path) -> None:
    """``python -m musicrestore app --params P --port N`` prints its URL, serves the page,
    and stops on SIGTERM; a bad ``app:`` block is one line and exit 1."""
    root = _make_project(tmp_path)
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "musicrestore", "app", "--params", str(root / "params.yaml")]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith(f"musicrestore app: http://127.0.0.1:{port}"), line
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0

    (root / "params.yaml").write_text(yaml.safe_dump({"app": {"concurrency_limit": 0}}))
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "error: app.concurrency_limit: got 0; expected an integer >= 1"
    ]
