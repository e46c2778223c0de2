"""Where a session's signal comes from (docs/method.md):

- **MusicGen** through ``transformers`` (:func:`musicrestore.data.musicgen.generate_clips`,
  docs/method.md#musicgen-samples) when its weights are in the Hugging Face cache or a local
  folder (:func:`musicgen_problem` says how to get them otherwise); the clip is the clean
  source;
- **a clip of the pipeline's test sets** under ``data/`` (:meth:`.Project.clips`): its
  degraded mixture is the input, its clean target the reference;
- **an upload**, which always goes through the one validated loader
  :func:`musicrestore.core.audio.load_audio` after the app's own size and duration caps.

Every load starts the session over (:meth:`.Session.restart`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from ..core import config
from ..core.audio import check_audio, load_audio
from ..core.errors import AudioError, quote
from ..core.paths import UnsafePathError, inside, plain_name
from .errors import AppError
from .project import Project
from .session import Session

#: What the page suggests when MusicGen weights are missing.
MUSICGEN_DOWNLOAD = "huggingface-cli download {model}"


def _too_long(name: str, seconds: float, project: Project) -> None:
    cap = float(project.settings["max_duration_s"])
    if seconds > cap:
        raise AppError(
            f"{name}: {seconds:.1f} s long; this app takes at most {cap:g} s "
            "(app.max_duration_s); cut it shorter first"
        )


def _set_source(
    session: Session,
    wave: np.ndarray,
    sr: int,
    origin: str,
    role: str = "clean",
    reference: np.ndarray | None = None,
) -> Session:
    session = session.restart(origin)
    session.sr = int(sr)
    saved = session.save("source" if role == "clean" else "input", wave, sr)
    session.input = saved
    if role == "clean":
        session.source = session.reference = saved
    elif reference is not None:  # a test example: degraded input plus its reference
        session.reference = session.source = session.save("reference", reference, sr)
    return session


def load_upload(
    project: Project, session: Session, path: str | os.PathLike[str], role: str = "clean"
) -> Session:
    """An uploaded file as the session's source.

    The app's caps come first (size, then the duration the header declares, before anything
    is decoded), then :func:`musicrestore.core.audio.load_audio` validates and decodes it (not
    audio, truncated, more than two channels, NaN samples: one line each). Messages name the
    file by its own name, not by Gradio's upload path.

    Args:
        role: ``"clean"`` (a clean source to degrade; it becomes the reference) or
            ``"degraded"`` (an input to restore as it is, without reference).
    """
    if role not in ("clean", "degraded"):
        raise AppError(f"unknown role {role!r}; choose clean or degraded")
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise AppError(f"{name}: the upload did not arrive; upload it again")
    cap_mb = float(project.settings["max_upload_mb"])
    size_mb = path.stat().st_size / 2**20
    if size_mb > cap_mb:
        raise AppError(
            f"{name}: {size_mb:.1f} MB; this app takes uploads up to {cap_mb:g} MB "
            "(app.max_upload_mb)"
        )
    try:
        sr, _, frames = check_audio(path)
        _too_long(name, frames / sr, project)
        wave, sr = load_audio(path)
    except AudioError as exc:  # name the user's file, not Gradio's copy of it
        raise AudioError(name, exc.problem.replace(str(path), name)) from None
    return _set_source(session, wave, sr, f"upload {name}", role)


def load_clip(project: Project, session: Session, key: str) -> Session:
    """A test-set example: its degraded mixture is the input and its clean target (T1: the
    clean mix, T2: the target stem) the reference and the source Degrade would start from;
    T3 clips have no reference."""
    clips = {c.key: c for c in project.clips()}
    if key not in clips:
        raise AppError(f"no test-set clip {key!r}; pick one from the list")
    clip = clips[key]
    ex = clip.example
    mixture, sr = load_audio(clip.folder / ex.mixture)
    _too_long(key, mixture.shape[1] / sr, project)
    reference = None
    if ex.target:
        reference, ref_sr = load_audio(clip.folder / ex.target)
        if ref_sr != sr or reference.shape[1] != mixture.shape[1]:
            raise AppError(f"{key}: reference and mixture differ in rate or length")
    session = _set_source(session, mixture, sr, f"test clip {key}", "degraded", reference=reference)
    session.effects = list(ex.effects)
    if ex.effects:
        session.degrade_info = {"chain": "test set", "seed": ex.seed}
    return session


def musicgen_problem(model: str, cache_dir: str | None = None) -> str | None:
    """``None`` when MusicGen ``model`` (a hub id or a local folder) can load without the
    network, else the one line that says how to get it."""
    if not model.strip():
        return "give a MusicGen model: a Hugging Face id (facebook/musicgen-small) or a folder"
    folder = Path(model).expanduser()
    if folder.is_dir():
        return None if (folder / "config.json").is_file() else f"{model}: no config.json there"
    looks_local = model.startswith((".", "/", "~")) or model.count("/") != 1
    if not looks_local:
        try:
            from huggingface_hub import try_to_load_from_cache

            found = try_to_load_from_cache(model, "config.json", cache_dir=cache_dir)
        except Exception:  # a malformed id: not in the cache either way
            found = None
        if isinstance(found, str):
            return None
    return (
        f"MusicGen weights {model!r} are not here: run `{MUSICGEN_DOWNLOAD.format(model=model)}` "
        "on a machine with network and copy its Hugging Face cache (HF_HOME) here, or give "
        "a local model folder"
    )


def requested_model(project: Project, model: str, configured: str) -> str:
    """The MusicGen model a request names, checked before it becomes a path.

    The configured one (``musicgen.generate.model``: the operator's, any folder) is taken as
    it is; anything else a page sends is a Hugging Face id (``namespace/name``, both plain
    names) or a folder inside the project (:func:`musicrestore.core.paths.inside`, symbolic
    links resolved; given relative to it, or in full), never ``~`` or a path out of it."""
    if model == configured:
        return model
    where = "MusicGen model"
    outside = f"{where}: {quote(model)} is not inside the project ({project.root})"
    if model.startswith("~"):
        raise UnsafePathError(outside)
    if os.path.isabs(model):  # a folder of the project given in full: judged relative to it
        model = os.path.relpath(model, project.root)
        if model == ".." or model.startswith("../"):
            raise UnsafePathError(outside)
    parts = model.split("/")
    if len(parts) == 2 and not (project.root / model).is_dir():
        try:
            return "/".join(plain_name(p, where) for p in parts)  # a Hugging Face id
        except UnsafePathError:
            pass  # judged as a folder below
    return str(inside(project.root, model, where))


def generate(
    project: Project,
    session: Session,
    prompt: str,
    duration_s: float,
    seed: int,
    model: str | None = None,
) -> Session:
    """A MusicGen clip (transformers) from ``prompt`` as the session's clean source."""
    from ..data.musicgen import DEFAULT_MODEL, generate_clips

    block = config.as_mapping(
        config.as_mapping(project.params.get("musicgen"), "musicgen").get("generate"),
        "musicgen.generate",
    )
    configured = str(block.get("model") or DEFAULT_MODEL)
    model = requested_model(project, (model or "").strip() or configured, configured)
    cache_dir = block.get("cache_dir")
    if problem := musicgen_problem(model, cache_dir):
        raise AppError(problem)
    if not prompt.strip():
        raise AppError("write a text prompt for MusicGen first")
    if not float(duration_s) > 0:  # also NaN
        raise AppError("the duration must be more than 0 s")
    _too_long("the clip", float(duration_s), project)
    out_dir = session.folder / f"musicgen_{uuid.uuid4().hex[:8]}"
    try:
        examples = generate_clips(
            out_dir,
            prompts=[prompt.strip()],
            model=model,
            duration_s=float(duration_s),
            seed=int(seed),
            sampling=block.get("sampling"),
            device=str(block.get("device") or "auto"),
            cache_dir=cache_dir,
            progress=False,
        )
        wave, sr = load_audio(out_dir / examples[0].mixture)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return _set_source(session, wave, sr, f"MusicGen ({Path(model).name}): {prompt.strip()!r}")
