"""The interactive restoration app, library layer: everything the Gradio page does, without
Gradio, so every function is testable on its own.

Seed 000 §3 ("Implementation notes aligned with the app") builds a Gradio app around its
stack, with tabs to generate, degrade, restore and compare; this is ours, on the pipeline's
own pieces (docs/method.md):

- **sources**: MusicGen through ``transformers`` (:func:`musicrestore.data.musicgen.generate_clips`,
  docs/method.md#musicgen-samples) when its weights are in the Hugging Face cache or a local
  folder; a clip of the pipeline's test sets under ``data/``; or an upload, which always goes
  through the one validated loader :func:`musicrestore.core.audio.load_audio` after the app's own
  size and duration caps;
- **degradation**: the MusicGen-like chain (docs/method.md#musicgen-like) or the MSR target
  ("production") and mixture chains (docs/method.md#msr-degradation), seeded, with every
  effect that fired recorded; the clean input is kept as the reference;
- **restoration**: any registered variant (:data:`musicrestore.variants.VARIANTS`) whose
  models exist, any length, mono or stereo, through :func:`musicrestore.variants.restore.restore_array`
  (chunked, docs/method.md#methods);
- **comparison**: the report's figures (:func:`musicrestore.report.figures.render_figures`:
  spectrograms, waveform overlays, difference signals, seed 000 §4) and the metrics of
  :mod:`musicrestore.evaluation.metrics`, per 10-s segment as in docs/method.md#evaluation.

Which variants can run is derived from the registry metadata (``needs_separator``,
``checkpoint``) and from what exists under ``models/``: on a fresh clone, before any
``dvc repro``, the DSP variants run and a note names the missing models and the command that
makes them (the stage of ``dvc.yaml`` that writes them). After a ``dvc repro`` the test sets
under ``data/`` can be loaded and each variant's headline scores (``reports/metrics.json``)
are shown beside it. Every error a user can cause is an :class:`AppError` (or another one-line
:data:`USER_ERRORS`), which the page shows as one line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..core import config
from ..core.audio import check_audio, load_audio, save_audio, set_channels
from ..core.config import ConfigError
from ..core.errors import USER_ERRORS, AudioError, StageError
from ..core.stage import format_error, load_params
from ..data.dataset import Example, read_manifest
from ..data.taxonomy import TARGETS, parse_target
from ..degrade import chains
from ..evaluation.evaluate import EvalConfig, segment_bounds
from ..variants import VARIANTS, Variant, VariantContext, VariantError, build_context, get_variant

log = logging.getLogger(__name__)

#: The ``app:`` params block (read with :func:`musicrestore.core.config.merge`; these are the
#: defaults when ``params.yaml`` has no such block).
APP_DEFAULTS: dict[str, Any] = {
    "max_upload_mb": 100.0,  # uploads above this are refused (also Gradio's max_file_size)
    "max_duration_s": 600.0,  # longer inputs are refused: restore holds the whole signal
    "concurrency_limit": 2,  # heavy requests (generate, degrade, restore, compare) at once
    "queue_max_size": 32,  # requests waiting beyond this are turned away ("queue full")
    "figure_s": 20.0,  # the Compare figures show this long a window (the loudest)
    "max_outputs": 6,  # restored outputs compared at once
}
APP_RULES: dict[str, Any] = {
    "positive": ("max_upload_mb", "max_duration_s", "figure_s"),
    "ranges": {
        "concurrency_limit": (1, None),
        "queue_max_size": (1, None),
        "max_outputs": (1, None),
    },
}

#: Where the pipeline writes what the app reads, relative to the project root.
MODELS = "models"
SEPARATOR = "models/separator"
DATA = "data"
METRICS_JSON = "reports/metrics.json"

#: Degradation chains offered (docs/method.md#degradations), name -> description.
CHAINS: dict[str, str] = {
    "musicgen_like": "MusicGen-like artifacts (seed 000 §3): resampling, quantization, soft "
    "clipping, multi-delay reverb, environmental noise, dither",
    "msr_production": "MSR target chain (seed 004 §4.2): EQ, resampling, compressor, "
    "distortion, reverb",
    "msr_mixture": "MSR mixture chain (seed 004 §4.2): limiter, resampling, MP3, Gaussian noise",
    "msr_full": "MSR target chain, then the mixture chain",
}

#: Roles of the session's fixed signals in Compare.
REFERENCE, INPUT = "reference", "input"

#: Restored outputs one session may keep (its files live until Reset or the session ends).
MAX_SESSION_OUTPUTS = 24

#: What the page suggests when MusicGen weights are missing.
MUSICGEN_DOWNLOAD = "huggingface-cli download {model}"


class AppError(StageError):
    """A request the app cannot serve; ``str()`` is one line saying why and what to do."""


def one_line(exc: BaseException) -> str:
    """The one line the page shows for ``exc``."""
    return format_error(exc)


#: Errors whose message is meant for the user as it is.
APP_USER_ERRORS: tuple[type[BaseException], ...] = (*USER_ERRORS, ConfigError, VariantError)


# ----------------------------------------------------------------------------- settings


def app_settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """``app:`` params over :data:`APP_DEFAULTS`: unknown keys, wrong types and values out of
    range are a one-line :class:`~musicrestore.core.config.ConfigError` naming ``app.<key>``."""
    out: dict[str, Any] = config.merge(APP_DEFAULTS, section, "app", **APP_RULES)
    return out


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a variant can run here, and if not what is missing and how to make it."""

    variant: Variant
    missing: tuple[str, ...] = ()  # project-relative paths (``models/separator``)
    commands: tuple[str, ...] = ()  # the ``dvc repro ...`` that makes each

    @property
    def available(self) -> bool:
        return not self.missing


class Project:
    """The pipeline's outputs the app reads, and its settings.

    Args:
        root: the project folder (``models/``, ``data/``, ``dvc.yaml``).
        params: the parsed ``params.yaml`` (``{}`` runs on every default).
    """

    def __init__(self, root: str | os.PathLike[str], params: Mapping[str, Any] | None = None):
        from ..variants.restore import restore_settings

        self.root = Path(root).resolve()
        self.params: dict[str, Any] = dict(params or {})
        self.settings = app_settings(self.params.get("app"))
        self.restore = restore_settings(self.params.get("restore"))
        self.eval = config.merge(EvalConfig, self.params.get("evaluate"), "evaluate")
        self.variants_params = config.as_mapping(self.params.get("variants"), "variants")
        self._separator: Any = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, params_path: str | os.PathLike[str] | None = None) -> Project:
        """The project of ``params_path`` (its folder is the root); without one, the current
        folder with ``params.yaml`` if there is one, else every default."""
        if params_path is not None:
            path = Path(params_path)
            return cls(path.resolve().parent, load_params(path))
        path = Path("params.yaml")
        return cls(Path.cwd(), load_params(path) if path.is_file() else {})

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS

    @property
    def separator_dir(self) -> Path:
        return self.root / SEPARATOR

    # ------------------------------------------------------------------- availability

    def availability(self) -> dict[str, Availability]:
        """Every registered variant, in registry order, with what it still needs."""
        out = {}
        for name, v in VARIANTS.items():
            missing: list[str] = []
            if v.needs_separator and not self.separator_dir.is_dir():
                missing.append(SEPARATOR)
            if v.checkpoint and not (self.models_dir / v.checkpoint).exists():
                missing.append(f"{MODELS}/{v.checkpoint}")
            commands = tuple(f"dvc repro {self.stage_for(path)}" for path in missing)
            out[name] = Availability(v, tuple(missing), commands)
        return out

    def available_variants(self) -> list[str]:
        return [name for name, a in self.availability().items() if a.available]

    def stage_for(self, out: str) -> str:
        """The DVC stage that writes ``out`` according to ``dvc.yaml`` (``foreach`` items
        expanded: ``train@unet_mask``); ``train_separator`` / ``train@<name>`` when the file
        does not say."""
        found = _stage_writing(self.root / "dvc.yaml", out, self.params)
        if found:
            return found
        if out == SEPARATOR:
            return "train_separator"
        return f"train@{Path(out).name}"

    def missing_note(self) -> str:
        """Markdown: which variants cannot run and the command that makes their models;
        empty when every variant can run."""
        lines = []
        by_path: dict[str, tuple[str, list[str]]] = {}
        for name, a in self.availability().items():
            for path, cmd in zip(a.missing, a.commands, strict=True):
                by_path.setdefault(path, (cmd, []))[1].append(name)
        for path, (cmd, names) in by_path.items():
            lines.append(
                f"- `{path}` is missing, so {', '.join(f'`{n}`' for n in names)} "
                f"cannot run: make it with `{cmd}`"
            )
        if not lines:
            return ""
        return "Variants whose models are missing cannot run yet:\n" + "\n".join(lines)

    # ------------------------------------------------------------------- contexts

    def separator(self) -> Any:
        """The pipeline's separator (``models/separator``), loaded once for every session."""
        from ..variants.restore import make_separator_factory, recorded_separator

        with self._lock:
            if self._separator is None:
                model = recorded_separator(self.separator_dir) or self.restore["separator_model"]
                factory = make_separator_factory(
                    model, repo=self.separator_dir, device=self.restore["device"]
                )
                self._separator = factory()
            return self._separator

    def context(
        self, variant: Variant, variants_section: Mapping[str, Any], target: str | None
    ) -> VariantContext:
        """A variant's context as the restore stage builds it (the one place the app does)."""
        from ..variants.restore import resolve_device

        return build_context(
            variant,
            variants_section,
            target=target,
            separator_factory=self.separator if variant.needs_separator else None,
            models_dir=self.models_dir,
            device=resolve_device(self.restore["device"]),
        )

    def variant_params(self, name: str) -> dict[str, dict[str, Any]]:
        """``{variants key: params}`` for every key ``name`` reads (its own first): the
        registered defaults merged with ``params.yaml``; what the page lets the user edit."""
        from ..variants.registry import resolve_params

        v = get_variant(name)
        own, shared = resolve_params(v, self.variants_params)
        return {v.params_key: own, **shared}

    def pipeline_scores(self, name: str) -> dict[str, dict[str, float]]:
        """The variant's headline numbers from the last report (``reports/metrics.json``:
        ``{"t1"|"t2"|"t3": {metric: mean}}``, docs/method.md#report); ``{}`` before one."""
        try:
            doc = json.loads((self.root / METRICS_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        entry = doc.get(name) if isinstance(doc, dict) else None
        return entry if isinstance(entry, dict) else {}

    def describe_variant(self, name: str) -> str:
        """Markdown: what the variant is, what it needs and, after a ``dvc repro``, its
        scores on the pipeline's test sets."""
        v = get_variant(name)
        a = self.availability()[name]
        needs = [x for x in ("separator" if v.needs_separator else "", v.checkpoint or "") if x]
        text = f"**{v.name}** ({v.output}): {v.description}"
        if needs:
            text += f" Uses: {', '.join(needs)}."
        if not a.available:
            text += f" Missing {', '.join(a.missing)}: run `{'`, `'.join(a.commands)}`."
        if v.output == "stem":
            text += " Pick a target group to restore that stem (T2), or the mixture."
        scores = self.pipeline_scores(name)
        if scores:
            parts = [
                f"{task.upper()} " + ", ".join(f"{m} {x:g}" for m, x in values.items())
                for task, values in sorted(scores.items())
                if isinstance(values, dict)
            ]
            text += f"\n\nPipeline scores (`{METRICS_JSON}`): " + "; ".join(parts) + "."
        return text

    # ------------------------------------------------------------------- test sets

    def clips(self) -> list[Clip]:
        """Every example of the pipeline's test sets under ``data/`` (T1, T2 per target, T3)."""
        from ..pipeline import MIX_TESTSETS, MSR_TEST

        folders: list[tuple[str, Path]] = [
            (name, self.root / rel) for name, (_, rel) in MIX_TESTSETS.items()
        ]
        msr = self.root / MSR_TEST
        if msr.is_dir():
            folders += [(f"msr_{p.name}", p) for p in sorted(msr.iterdir()) if p.is_dir()]
        out = []
        for name, folder in folders:
            try:
                examples = read_manifest(folder)
            except (FileNotFoundError, ValueError, TypeError, json.JSONDecodeError):
                continue
            out += [Clip(name, folder, ex) for ex in examples]
        return out

    def clips_note(self) -> str:
        if self.clips():
            return ""
        return (
            f"No test sets under `{DATA}/` yet: `dvc repro build_musicgen_like` (T1), "
            "`dvc repro build_msr` (T2) and `dvc repro fetch_musicgen` (T3) make them."
        )


@dataclasses.dataclass(frozen=True)
class Clip:
    """One example of a pipeline test set."""

    testset: str
    folder: Path
    example: Example

    @property
    def key(self) -> str:
        return f"{self.testset}/{self.example.id}"

    @property
    def label(self) -> str:
        ex = self.example
        what = f"{ex.task}, {ex.group}" if ex.task == "T2" else ex.task
        song = f", {ex.song}" if ex.song else ""
        return f"{self.key} ({what}{song}, {ex.duration_s:g} s)"


def _stage_writing(dvc_yaml: Path, out: str, params: Mapping[str, Any]) -> str | None:
    """The name of the stage of ``dvc_yaml`` whose ``outs`` hold ``out`` (``name@item`` for
    a ``foreach`` stage), the name of a ``foreach`` group whose items write below ``out``
    (``train_uformer`` for ``models/uformer``; ``dvc repro`` runs a whole group), or ``None``."""
    try:
        stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    for name, stage in stages.items():
        if not isinstance(stage, dict):
            continue
        if "foreach" not in stage:
            if out in _outs(stage):
                return str(name)
            continue
        items = stage["foreach"]
        if isinstance(items, str):  # ${msr.targets}: a list from params
            items = _param_ref(items, params)
        body = stage.get("do") or {}
        pairs = items.items() if isinstance(items, dict) else ((i, i) for i in items or [])
        below = False
        for key, item in pairs:
            outs = [_substitute(o, key, item) for o in _outs(body)]
            if out in outs:
                return f"{name}@{key}"
            below = below or any(o.startswith(out.rstrip("/") + "/") for o in outs)
        if below:
            return str(name)
    return None


def _outs(stage: Mapping[str, Any]) -> list[str]:
    return [next(iter(o)) if isinstance(o, dict) else str(o) for o in stage.get("outs") or []]


def _param_ref(text: str, params: Mapping[str, Any]) -> Any:
    match = re.fullmatch(r"\$\{\s*([\w.]+)\s*\}", text.strip())
    value: Any = params
    for part in match.group(1).split(".") if match else ["\0"]:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value or []


def _substitute(text: str, key: Any, item: Any) -> str:
    text = text.replace("${key}", str(key))
    if not isinstance(item, dict):
        return text.replace("${item}", str(item))
    return re.sub(r"\$\{item\.(\w+)\}", lambda m: str(item.get(m.group(1), m.group(0))), text)


# ----------------------------------------------------------------------------- sessions


@dataclasses.dataclass
class Output:
    """One restored signal of a session."""

    label: str
    path: Path
    variant: str
    target: str | None
    params: dict[str, Any]
    decisions: dict[str, Any]
    compute_s: float


@dataclasses.dataclass
class Session:
    """What one browser session has loaded and made; its audio lives in ``folder`` as
    float WAV (exact, and playable in browsers)."""

    folder: Path
    sr: int = 0
    origin: str = ""
    source: Path | None = None  # the clean signal Degrade starts from
    reference: Path | None = None  # what outputs are scored against (None: no reference)
    input: Path | None = None  # what Restore restores (degraded, or an uploaded input)
    effects: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    degrade_info: dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: dict[str, Output] = dataclasses.field(default_factory=dict)
    counter: int = 0

    def new_path(self, stem: str) -> Path:
        """A fresh file name in the session folder (a new name each time, so a browser never
        plays a stale cached copy)."""
        self.counter += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_") or "audio"
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{self.counter:03d}_{safe}.wav"

    def save(self, stem: str, wave: np.ndarray, sr: int) -> Path:
        return save_audio(self.new_path(stem), wave, sr, subtype="FLOAT")

    def describe(self) -> str:
        """One Markdown paragraph: what is loaded."""
        if self.input is None:
            return "Nothing loaded yet."
        wave_info = _info_of(self.input)
        parts = [f"**{self.origin}**: {wave_info}."]
        parts.append(
            "Reference kept for scoring."
            if self.reference is not None
            else "No reference: Compare shows the non-intrusive metrics only."
        )
        if self.effects:
            parts.append(f"Degraded with {', '.join(e['name'] for e in self.effects)}.")
        elif self.degrade_info:
            parts.append("Degraded, but no effect fired (the input equals the reference).")
        if self.outputs:
            parts.append(f"Restored: {', '.join(self.outputs)}.")
        return " ".join(parts)

    def comparable(self) -> list[str]:
        return list(self.outputs)


def _info_of(path: Path) -> str:
    sr, channels, frames = check_audio(path)
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels} ch")
    return f"{frames / sr:.2f} s, {sr} Hz, {layout}"


class Workspace:
    """The app's scratch folder: one sub-folder per session, all removed on close."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        import tempfile

        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="musicrestore-app-"))
        else:
            self.root = Path(root)
            self.root.mkdir(parents=True, exist_ok=True)

    def new_session(self) -> Session:
        return Session(self.root / uuid.uuid4().hex)

    def drop(self, session: Session | None) -> None:
        """Remove a session's files (Reset, or Gradio discarding the session)."""
        if isinstance(session, Session) and self.root in session.folder.parents:
            shutil.rmtree(session.folder, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _start(session: Session, origin: str) -> Session:
    """Empty ``session`` for a new source: its earlier files and outputs belong to another
    input."""
    shutil.rmtree(session.folder, ignore_errors=True)
    return Session(session.folder, origin=origin, counter=session.counter)


def _read(path: Path) -> tuple[np.ndarray, int]:
    return load_audio(path)


# ----------------------------------------------------------------------------- sources


def _too_long(name: str, seconds: float, project: Project) -> None:
    cap = float(project.settings["max_duration_s"])
    if seconds > cap:
        raise AppError(
            f"{name}: {seconds:.1f} s long; this app takes at most {cap:g} s "
            "(app.max_duration_s); cut it shorter first"
        )


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


def _set_source(
    session: Session,
    wave: np.ndarray,
    sr: int,
    origin: str,
    role: str = "clean",
    reference: np.ndarray | None = None,
) -> Session:
    session = _start(session, origin)
    session.sr = int(sr)
    saved = session.save("source" if role == "clean" else "input", wave, sr)
    session.input = saved
    if role == "clean":
        session.source = session.reference = saved
    elif reference is not None:  # a test example: degraded input plus its reference
        session.reference = session.source = session.save("reference", reference, sr)
    return session


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
    model = (model or "").strip() or str(block.get("model") or DEFAULT_MODEL)
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


# ----------------------------------------------------------------------------- degrade


def scaled_probabilities(probs: Mapping[str, float], strength: float) -> dict[str, float]:
    """Firing probabilities at ``strength`` in [0, 1]: 0 fires nothing, 0.5 keeps the
    configured probabilities (``params.yaml``, docs/method.md#degradations), 1 fires every
    effect that is enabled; linear in between. An effect configured off (probability 0,
    such as the MSR gain) stays off."""
    s = float(strength)
    if not 0.0 <= s <= 1.0:
        raise AppError(f"strength {strength!r}: must be between 0 and 1")
    out = {}
    for name, p in probs.items():
        p = float(p)
        if p <= 0.0:
            out[name] = 0.0
        elif s <= 0.5:
            out[name] = p * 2.0 * s
        else:
            out[name] = p + (1.0 - p) * (2.0 * s - 1.0)
    return out


def degrade_wave(
    wave: np.ndarray,
    sr: int,
    chain: str,
    strength: float,
    seed: int,
    params: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], dict[str, Any]]:
    """Degrade a clean ``(C, T)`` with one of :data:`CHAINS`, seeded.

    As the pipeline does (docs/method.md#degradations): the clean signal is first brought to
    the chain's working peak (-1 dBFS: ``target_peak_dbfs`` for the MSR target chain,
    ``mix_peak_dbfs`` for the mixture chain, the MusicGen-like crop's -1 dBFS), then the
    chain runs with ``default_rng(seed)``, then the clean and degraded signals are scaled
    together below ``max_peak``. The clean signal at that scale is the reference, so no
    level offset counts as degradation.

    Args:
        params: the whole ``params.yaml``; its ``musicgen_like.degrade`` / ``msr.degrade``
            blocks override the chain's defaults, as in the pipeline.

    Returns:
        ``(reference, degraded, effects, info)``.
    """
    from ..degrade.build import MUSICGEN_CLEAN_PEAK_DBFS

    if chain not in CHAINS:
        raise AppError(f"unknown chain {chain!r}; choose one of {', '.join(CHAINS)}")
    params = params or {}
    rng = np.random.default_rng(int(seed))
    if chain == "musicgen_like":
        block = config.as_mapping(params.get("musicgen_like"), "musicgen_like").get("degrade")
        cfg = chains.musicgen_config(block)
        cfg["chain"] = scaled_probabilities(cfg["chain"], strength)
        peak = MUSICGEN_CLEAN_PEAK_DBFS
        steps: list[tuple[tuple[str, ...], str, str]] = [
            (chains.MUSICGEN_CHAIN, "chain", "mixture")
        ]
    else:
        block = config.as_mapping(params.get("msr"), "msr").get("degrade")
        cfg = chains.msr_config(block)
        for key in ("target_chain", "mixture_chain"):
            cfg[key] = scaled_probabilities(cfg[key], strength)
        target: tuple[tuple[str, ...], str, str] = (chains.TARGET_CHAIN, "target_chain", "target")
        mixture: tuple[tuple[str, ...], str, str] = (
            chains.MIXTURE_CHAIN,
            "mixture_chain",
            "mixture",
        )
        steps = {
            "msr_production": [target],
            "msr_mixture": [mixture],
            "msr_full": [target, mixture],
        }[chain]
        peak = float(cfg["target_peak_dbfs" if steps[0] is target else "mix_peak_dbfs"])
    g_in = chains.peak_gain(wave, peak)
    clean = (wave.astype(np.float64) * g_in).astype(np.float32)
    degraded, effects = clean, []
    for order, key, stage in steps:
        # the pipeline's own chain runner: same either/or slots (EQ kind, quantizer kind)
        degraded, fired = chains._run_chain(order, cfg[key], degraded, sr, rng, stage, cfg)
        effects += fired
    g = chains.headroom_gain(clean, degraded, max_peak=float(cfg["max_peak"]))
    scale = lambda w: (w.astype(np.float64) * g).astype(np.float32)  # noqa: E731
    info = {
        "chain": chain,
        "strength": float(strength),
        "seed": int(seed),
        "input_gain_db": round(20 * math.log10(g_in), 3),
        "headroom_gain_db": round(20 * math.log10(g), 3),
        "probabilities": {key: cfg[key] for _, key, _ in steps},
    }
    return scale(clean), scale(degraded), effects, info


def degrade(project: Project, session: Session, chain: str, strength: float, seed: int) -> Session:
    """Degrade the session's clean source; the clean source (at the chain's level) becomes
    the reference and the degraded signal the input to restore."""
    if session.source is None:
        raise AppError(
            "load a clean source first (Generate tab: MusicGen, a test clip or an upload)"
        )
    wave, sr = _read(session.source)
    reference, degraded, effects, info = degrade_wave(
        wave, sr, chain, strength, seed, project.params
    )
    origin = session.origin.split(", degraded")[0]
    session = _start(session, f"{origin}, degraded ({chain})")
    session.sr = sr
    session.source = session.reference = session.save("reference", reference, sr)
    session.input = session.save(f"degraded_{chain}", degraded, sr)
    session.effects, session.degrade_info = effects, info
    return session


# ----------------------------------------------------------------------------- restore


def parse_params(text: str | None, variant: Variant) -> dict[str, Any]:
    """The Restore tab's JSON: ``{variants key: {param: value}}`` for keys ``variant``
    reads; empty text means the defaults. Checked by the registry's merge when the context
    is built (unknown keys, wrong types, values out of range: one line)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AppError(
            f"params of {variant.name}: not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise AppError(
            f"params of {variant.name}: expected a JSON object {{key: {{param: value}}}}"
        )
    if unknown := [k for k in value if k not in variant.reads]:
        raise AppError(
            f"params of {variant.name}: unknown key(s) {', '.join(map(str, unknown))}; it "
            f"reads {', '.join(variant.reads)}"
        )
    return value


def count_chunks(variant: Variant, n_samples: int, sr: int, settings: Mapping[str, Any]) -> int:
    """How many chunks :func:`musicrestore.variants.restore.restore_array` will run (progress)."""
    from ..variants.restore import plan_chunks

    if variant.whole_signal:
        return 1
    chunk = max(1, int(round((variant.chunk_s or settings["chunk_s"]) * sr)))
    return len(plan_chunks(n_samples, chunk, int(round(settings["overlap_s"] * sr))))


ProgressFn = Callable[[float, str], None]


def restore(
    project: Project,
    session: Session,
    name: str,
    params_text: str | None = None,
    target: str | None = None,
    progress: ProgressFn | None = None,
) -> tuple[Session, Output]:
    """Restore the session's input with variant ``name`` and keep the result as an output.

    Args:
        params_text: the variant's params as JSON (see :func:`parse_params`).
        target: T2 target group (``Voc``, ``Gtr_EG``, ...) for a ``stem`` variant; ``None``
            or empty restores the mixture.
        progress: ``progress(fraction, text)`` before each chunk.
    """
    from ..variants.restore import restore_array

    if session.input is None:
        raise AppError("nothing to restore yet: load or degrade a signal first")
    variant = get_variant(name)
    avail = project.availability()[name]
    if not avail.available:
        raise AppError(
            f"{name} needs {', '.join(avail.missing)}, which is missing: run "
            f"`{'`, `'.join(avail.commands)}` first"
        )
    if len(session.outputs) >= MAX_SESSION_OUTPUTS:
        raise AppError(
            f"this session holds {MAX_SESSION_OUTPUTS} outputs already; Reset to start over"
        )
    target = (target or "").strip() or None
    if target is not None:
        if variant.output != "stem":
            target = None  # a mixture variant ignores the target
        else:
            parse_target(target)
    edited = parse_params(params_text, variant)
    section = {**project.variants_params, **edited}
    ctx = project.context(variant, section, target)
    wave, sr = _read(session.input)
    chunking = {k: project.restore[k] for k in ("chunk_s", "overlap_s", "context_s")}
    total = count_chunks(variant, wave.shape[1], sr, chunking)

    def report(w: np.ndarray, sr_: int, c: VariantContext) -> np.ndarray:
        if progress is not None:
            progress(c.chunk_index / total, f"{name}: chunk {c.chunk_index + 1} of {total}")
        return variant.fn(w, sr_, c)

    start = time.perf_counter()
    out = restore_array(dataclasses.replace(variant, fn=report), wave, sr, ctx, **chunking)
    compute_s = time.perf_counter() - start
    if progress is not None:
        progress(1.0, f"{name}: done")
    label = name if target is None else f"{name} ({target})"
    base, k = label, 2
    while label in session.outputs:
        label, k = f"{base} #{k}", k + 1
    path = session.save(f"restored_{label}", out, sr)
    result = Output(
        label=label,
        path=path,
        variant=name,
        target=target,
        params={
            key: ctx.params if key == variant.params_key else ctx.shared[key]
            for key in variant.reads
        },
        decisions=_jsonable(ctx.decisions),
        compute_s=round(compute_s, 3),
    )
    session.outputs[label] = result
    return session, result


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: repr(o)))


# ----------------------------------------------------------------------------- compare


@dataclasses.dataclass
class Comparison:
    """What the Compare tab shows."""

    players: list[tuple[str, Path]]  # (role, audio file): reference, input, outputs
    figures: list[Path]  # spectrograms, waveform overlays, difference signals
    window: tuple[float, float]  # the figures' time window (s)
    table: list[dict[str, Any]]  # one row per signal: "signal" + metric labels
    downloads: list[Path]  # every audio file of the session


def metric_columns(has_reference: bool, names: Sequence[str] | None = None) -> list[str]:
    """Column headings of the metrics table: label and unit of each applicable metric."""
    from ..evaluation import metrics as M

    return [_heading(n) for n in M.applicable(has_reference, names)]


def _heading(name: str) -> str:
    from ..evaluation import metrics as M

    info = M.INFO[name]
    arrow = {True: " ↑", False: " ↓", None: ""}[info.higher_is_better]
    unit = f" ({info.unit})" if info.unit else ""
    return f"{info.label}{unit}{arrow}"


def score_signal(
    reference: np.ndarray | None, estimate: np.ndarray, sr: int, cfg: EvalConfig
) -> dict[str, float]:
    """Every applicable metric as the evaluate stage computes it (docs/method.md#evaluation):
    per ``segment_s`` segment, then the mean; segments whose reference is silent are left
    out of the intrusive means."""
    from ..evaluation import metrics as M

    names = M.applicable(reference is not None, cfg.metrics or None)
    sums: dict[str, list[float]] = {n: [] for n in names}
    for start, stop in segment_bounds(estimate.shape[1], sr, cfg.segment_s, cfg.min_segment_s):
        ref = None if reference is None else reference[:, start:stop]
        est = estimate[:, start:stop]
        silent = False
        if ref is not None:
            rms = float(np.sqrt(np.mean(np.square(ref, dtype=np.float64))))
            silent = 20 * math.log10(max(rms, 1e-12)) < cfg.silent_ref_dbfs
        row = M.score(None if silent else ref, est, sr, None)
        for n in names:
            if n in row:
                sums[n].append(row[n])
    return {n: float(np.mean(v)) if v else float("nan") for n, v in sums.items()}


def _matched(wave: np.ndarray, channels: int) -> np.ndarray:
    """A mono restorer's output against a stereo reference is compared as dual mono
    (docs/method.md#evaluation); the reverse downmixes."""
    return wave if wave.shape[0] == channels else set_channels(wave, channels)


def loudest_window(wave: np.ndarray, sr: int, length_s: float) -> tuple[int, int]:
    """``[start, stop)`` of the loudest ``length_s`` window on a 1-s grid (the whole signal
    when it is shorter), as the report picks its excerpts."""
    n = wave.shape[1]
    length = int(round(length_s * sr))
    if n <= length:
        return 0, n
    power = np.concatenate([[0.0], np.cumsum(np.mean(np.square(wave, dtype=np.float64), axis=0))])
    starts = np.arange(0, n - length + 1, sr)
    best = int(starts[int(np.argmax(power[starts + length] - power[starts]))])
    return best, best + length


def compare(
    project: Project,
    session: Session,
    labels: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> Comparison:
    """Players, figures and the metrics table of the reference, the input and the chosen
    outputs (all of them when ``labels`` is ``None``)."""
    from ..report.figures import render_figures

    if session.input is None:
        raise AppError("nothing to compare yet: load a signal and restore it first")
    chosen = list(session.outputs) if labels is None else [lb for lb in labels if lb]
    if unknown := [lb for lb in chosen if lb not in session.outputs]:
        raise AppError(f"no output called {', '.join(unknown)}; restore it first")
    cap = int(project.settings["max_outputs"])
    if len(chosen) > cap:
        raise AppError(f"choose at most {cap} outputs to compare (app.max_outputs)")
    files: list[tuple[str, Path]] = []
    if session.reference is not None and session.reference != session.input:
        files.append((REFERENCE, session.reference))
    files.append((INPUT, session.input))
    files += [(lb, session.outputs[lb].path) for lb in chosen]
    if len(files) < 2:
        raise AppError("nothing to compare yet: restore the input first (Restore tab)")
    waves = {role: _read(path)[0] for role, path in files}
    sr = session.sr
    channels = max(w.shape[0] for w in waves.values())
    waves = {role: _matched(w, channels) for role, w in waves.items()}
    reference = waves.get(REFERENCE)
    if session.reference is not None and session.reference == session.input:
        reference = waves[INPUT]  # a clean source restored as it is

    # figures: the reference as "clean", the input as "degraded" (seed 000 §4 roles)
    start, stop = loudest_window(waves[INPUT], sr, float(project.settings["figure_s"]))
    roles = {REFERENCE: "clean", INPUT: "degraded"}
    sources = [(roles.get(role, role), w[:, start:stop]) for role, w in waves.items()]
    anchor = "clean" if REFERENCE in waves else "degraded"
    if progress is not None:
        progress(0.05, "figures")
    prefix = session.folder / f"figures_{uuid.uuid4().hex[:8]}" / "compare"
    figures = render_figures(sources, sr, anchor, prefix, "compare", dpi=80)

    table = []
    scored = [(role, w) for role, w in waves.items() if role != REFERENCE]
    for k, (role, w) in enumerate(scored):
        if progress is not None:
            progress(0.1 + 0.9 * k / len(scored), f"metrics of {role}")
        values = score_signal(reference, w, sr, project.eval)
        row: dict[str, Any] = {"signal": role}
        row.update({_heading(n): round(v, 3) for n, v in values.items()})
        table.append(row)
    downloads = [path for _, path in files]
    return Comparison(files, figures, (start / sr, stop / sr), table, downloads)


def reset(workspace: Workspace, session: Session | None) -> Session:
    """Forget everything the session made; a fresh, empty session."""
    workspace.drop(session)
    return workspace.new_session()


def targets() -> list[str]:
    """T2 target groups a ``stem`` variant can restore (docs/method.md#targets)."""
    return list(TARGETS)


def message(exc: BaseException) -> str:
    """The one line shown in the page: the message of a user error, else the exception's
    type and first line (the traceback goes to the server log only)."""
    if isinstance(exc, APP_USER_ERRORS):
        return one_line(exc)
    text = str(exc).strip().splitlines()
    return f"internal error ({type(exc).__name__}: {text[0] if text else 'no message'})"
