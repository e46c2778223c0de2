"""The project the app serves: its ``app:`` settings and what the pipeline wrote that the
app reads (docs/method.md).

- **settings**: the ``app:`` params block over :data:`APP_DEFAULTS` (:func:`app_settings`),
  with the ``restore:``, ``evaluate:`` and ``variants:`` blocks the app shares with the
  pipeline's stages;
- **availability**: which registered variants (:data:`musicrestore.variants.VARIANTS`) can run
  here, derived from the registry metadata (``needs_separator``, ``checkpoint``) and from
  what exists under ``models/``; a missing model is named with the ``dvc repro`` target that
  makes it, as the pipeline that generates ``dvc.yaml`` says
  (:func:`musicrestore.pipeline.stage_writing`);
- **contexts**: the shared separator and each variant's context, built as the restore stage
  builds them;
- **test sets and scores**: the clips of the pipeline's test sets under ``data/`` and each
  variant's headline scores (``reports/metrics.json``, docs/method.md#report).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import config
from ..core.config import load_json
from ..core.errors import StageError
from ..core.stage import load_params
from ..data.dataset import Example, read_manifest
from ..evaluation.evaluate import eval_config
from ..variants import VARIANTS, Variant, VariantContext, build_context, get_variant
from ..variants.pretrained import missing_checkpoints

#: The ``app:`` params block (read with :func:`musicrestore.core.config.merge`; these are the
#: defaults when ``params.yaml`` has no such block).
APP_DEFAULTS: dict[str, Any] = {
    "max_upload_mb": 100.0,  # uploads above this are refused (also Gradio's max_file_size)
    "max_duration_s": 600.0,  # longer inputs are refused: restore holds the whole signal
    "concurrency_limit": 2,  # heavy requests (generate, degrade, restore, compare) at once
    "queue_max_size": 32,  # requests waiting beyond this are turned away ("queue full")
    "figure_s": 20.0,  # the Compare figures show this long a window (the loudest)
    "max_outputs": 6,  # restored outputs compared at once
    "max_workspace_mb": 4096.0,  # session files on disk; the oldest idle sessions go first
}
APP_RULES: dict[str, Any] = {
    "positive": ("max_upload_mb", "max_duration_s", "figure_s", "max_workspace_mb"),
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
#: The stages that make each task's test set, when the pipeline names none.
TESTSET_STAGES = {"T1": "build_musicgen_like", "T2": "build_msr", "T3": "fetch_musicgen"}


def app_settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """``app:`` params over :data:`APP_DEFAULTS`: unknown keys, wrong types and values out of
    range are a one-line :class:`~musicrestore.core.config.ConfigError` naming ``app.<key>``."""
    out: dict[str, Any] = config.merge(APP_DEFAULTS, section, "app", **APP_RULES)
    return out


def _score(metric: str, value: Any) -> str:
    """``SI-SDR 7.75 dB``: a headline number with the metric's label and unit."""
    from ..evaluation.metrics import INFO

    info = INFO.get(metric)
    if info is None or not isinstance(value, int | float):
        return f"{metric} {value}"
    return f"{info.label} {value:.2f}{' ' + info.unit if info.unit else ''}"


@dataclasses.dataclass(frozen=True)
class Availability:
    """Whether a variant can run here, and if not what is missing and how to make it."""

    variant: Variant
    missing: tuple[str, ...] = ()  # project-relative paths (``models/separator``)
    commands: tuple[str, ...] = ()  # the ``dvc repro ...`` that makes each

    @property
    def available(self) -> bool:
        return not self.missing


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


class Project:
    """The pipeline's outputs the app reads, and its settings.

    Args:
        root: the project folder (``models/``, ``data/``, ``reports/``).
        params: the parsed ``params.yaml`` (``{}`` runs on every default).
    """

    def __init__(self, root: str | os.PathLike[str], params: Mapping[str, Any] | None = None):
        from ..variants.restore import restore_settings

        self.root = Path(root).resolve()
        self.params: dict[str, Any] = dict(params or {})
        self.settings = app_settings(self.params.get("app"))
        self.restore = restore_settings(self.params.get("restore"))
        self.eval = eval_config(self.params.get("evaluate"))
        self.variants_params = config.as_mapping(self.params.get("variants"), "variants")
        self._separator: Any = None
        self._writers: dict[str, str | None] = {}
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
            commands = [f"dvc repro {self.stage_for(path)}" for path in missing]
            if v.pretrained:  # downloaded by the user: each line names a file and its command
                for line in missing_checkpoints(name, self.variants_params):
                    what, _, how = line.partition(": ")
                    missing.append(what)
                    commands.append(how)
            out[name] = Availability(v, tuple(missing), tuple(commands))
        return out

    def available_variants(self) -> list[str]:
        return [name for name, a in self.availability().items() if a.available]

    def stem_targets(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The T2 groups variant ``name`` can restore here, and the groups it cannot yet
        with the command that would make each. A variant with one model per group (the
        U-Former) has exactly the groups of ``msr.targets`` whose model folder holds a
        ``config.json``; the others need ``dvc repro train-<model>@<group>``. A separating
        variant maps any group of the taxonomy onto the separator's sources."""
        from ..data.taxonomy import TARGETS

        v = get_variant(name)
        if v.output != "stem":
            return [], {}
        if not (v.per_target and v.checkpoint):
            return list(TARGETS), {}
        folder = self.models_dir / v.checkpoint
        have = [g for g in self.msr_targets() if (folder / g / "config.json").is_file()]
        todo = {
            g: f"dvc repro {self.stage_for(f'{MODELS}/{v.checkpoint}/{g}')}"
            for g in self.msr_targets()
            if g not in have
        }
        return have, todo

    def msr_targets(self) -> list[str]:
        """``msr.targets`` of the params: the T2 groups the per-target stages iterate."""
        msr = self.params.get("msr")
        targets = msr.get("targets") if isinstance(msr, Mapping) else None
        return [str(t) for t in targets] if isinstance(targets, list | tuple) else []

    def stage_for(self, out: str) -> str:
        """The ``dvc repro`` target that makes ``out`` (``models/unet_mask``): the stage that
        writes it, or for a folder several stages write below (``models/uformer``) a target
        covering all of them, as the pipeline generates ``dvc.yaml``
        (:func:`musicrestore.pipeline.stage_writing`, over this project's ``msr.targets``);
        ``train_separator`` / ``train-<name>`` when the pipeline names none."""
        if found := self._writer(out):
            return found
        if out == SEPARATOR:
            return "train_separator"
        return f"train-{Path(out).name}"

    def _writer(self, out: str) -> str | None:
        """:func:`musicrestore.pipeline.stage_writing`, asked once per path (the pipeline is
        code: its answer cannot change while the app runs)."""
        from ..pipeline import stage_writing

        if out not in self._writers:
            self._writers[out] = stage_writing(out, self.msr_targets())
        return self._writers[out]

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

    # ------------------------------------------------------------------- scores

    def pipeline_scores(self, name: str) -> dict[str, dict[str, float]]:
        """The variant's headline numbers from the last report (``reports/metrics.json``:
        ``{"t1"|"t2"|"t3": {metric: mean}}``, docs/method.md#report); ``{}`` before one."""
        try:
            doc = load_json(self.root / METRICS_JSON, "report metrics")
        except (OSError, StageError):
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
        have, todo = self.stem_targets(name)
        if v.output == "stem" and v.per_target:
            if a.available:
                text += f" Trained for {', '.join(have) or 'no group yet'}: pick one of them."
            if todo:
                text += " Not trained: " + ", ".join(f"{g} (`{c}`)" for g, c in todo.items())
                text += "."
        elif v.output == "stem":
            text += " Pick a target group to restore that stem (T2), or the mixture."
        scores = self.pipeline_scores(name)
        if scores:
            parts = [
                f"{task.upper()} " + ", ".join(_score(m, x) for m, x in values.items())
                for task, values in sorted(scores.items())
                if isinstance(values, dict)
            ]
            text += (
                f"\n\nScores on the pipeline's test sets, from `{METRICS_JSON}` (written by "
                "the last `dvc repro` of this project, on the machine that ran it; a fresh "
                "clone shows the committed run): " + "; ".join(parts) + "."
            )
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
        """Markdown: the ``dvc repro`` targets that make the test sets (the stages that
        write their folders, :meth:`stage_for`); empty once there is a clip."""
        from ..pipeline import MIX_TESTSETS, MSR_TEST

        if self.clips():
            return ""
        folders = {task: rel for task, rel in MIX_TESTSETS.values()} | {"T2": MSR_TEST}
        made = [
            f"`dvc repro {self._writer(folders[task]) or fallback}` ({task})"
            for task, fallback in TESTSET_STAGES.items()
            if task in folders
        ]
        return f"No test sets under `{DATA}/` yet: {', '.join(made[:-1])} and {made[-1]} make them."
