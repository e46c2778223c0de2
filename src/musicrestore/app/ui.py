"""The Gradio page of the restoration app: layout and event wiring only.

Every handler calls one function of the app's library modules (:mod:`.sources`,
:mod:`.degradation`, :mod:`.restoration`, :mod:`.comparison`, :mod:`.session`) and turns
what it returns into component values; every exception becomes a one-line ``gr.Error`` in the page (the
traceback of an unexpected one goes to the server log), so a bad upload or a missing model
never shows a stack trace and the app keeps serving. Tabs after seed 000 §3 ("Implementation
notes aligned with the app"): Generate, Degrade, Restore, Compare, Reset. Heavy events share
one queue slot pool (``app.concurrency_limit``); the queue holds at most
``app.queue_max_size`` waiting requests.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from ..data.musicgen import DEFAULT_MODEL, DEFAULT_PROMPTS
from ..variants import get_variant
from . import comparison, degradation, restoration, sources
from .errors import APP_USER_ERRORS, AppError, message
from .project import Project
from .session import Session, Workspace, reset

log = logging.getLogger(__name__)

#: Label of the target dropdown's "no target" entry (T1/T3: restore the mixture).
NO_TARGET = "(mixture)"
#: Events that run models or read audio share this concurrency group.
WORK = "work"


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn``; any exception becomes a one-line ``gr.Error`` (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            if not isinstance(exc, APP_USER_ERRORS):
                log.exception("app request failed")
            raise gr.Error(message(exc), print_exception=False) from None

    return wrapper


def _path(p: Path | None) -> str | None:
    return str(p) if p is not None else None


def _views(session: Session, project: Project) -> tuple[Any, ...]:
    """Values of the components that show the session (status, players, effects, the
    outputs Compare can choose)."""
    degraded = session.input if session.input != session.source else None
    effects = json.dumps(
        {"degradation": session.degrade_info, "effects": session.effects}, indent=2
    )
    outputs = session.comparable()
    cap = int(project.settings["max_outputs"])
    return (
        session.describe(),
        _path(session.source or session.input),
        _path(degraded),
        _path(session.reference),
        effects if (session.effects or session.degrade_info) else "",
        gr.update(choices=outputs, value=outputs[-cap:]),
    )


def _variant_view(project: Project, name: str) -> tuple[Any, ...]:
    """Params JSON, target dropdown and a few lines about the variant."""
    v = get_variant(name)
    params = json.dumps(project.variant_params(name), indent=2)
    target = gr.update(visible=v.output == "stem", value=NO_TARGET)
    return params, target, project.describe_variant(name)


def _variant_choices(project: Project) -> list[tuple[str, str]]:
    """Every registered variant; one whose models are missing says which (restoring with
    it then names the command that makes them)."""
    return [
        (name if a.available else f"{name} (missing {', '.join(a.missing)})", name)
        for name, a in project.availability().items()
    ]


def build_app(project: Project, workspace: Workspace) -> gr.Blocks:
    """The page, with its queue configured; launch it with :func:`launch_kwargs`."""
    settings = project.settings
    available = project.available_variants()
    default_variant = "dsp_direct" if "dsp_direct" in available else available[0]
    clips = project.clips()
    gen_block = (project.params.get("musicgen") or {}).get("generate") or {}
    gen_model = str(gen_block.get("model") or DEFAULT_MODEL)
    max_players = 2 + int(settings["max_outputs"])

    with gr.Blocks(
        title="musicrestore", analytics_enabled=False, delete_cache=(1800, 3600)
    ) as demo:
        session = gr.State(None, delete_callback=workspace.drop)
        gr.Markdown(
            "# musicrestore: restore degraded music\n"
            "Load a clean source (Generate), degrade it (Degrade), restore it with any "
            "available variant (Restore) and compare the outputs (Compare). "
            "Methods and metrics: `docs/method.md`."
        )
        missing = project.missing_note()
        missing_md = gr.Markdown(missing, visible=bool(missing), elem_id="missing-models")
        status = gr.Markdown("Nothing loaded yet.", elem_id="session-status")

        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                gr.Markdown(
                    "Three ways to a source: MusicGen (text to music), a clip of the "
                    "pipeline's test sets, or an upload (mono or stereo; at most "
                    f"{settings['max_upload_mb']:g} MB and {settings['max_duration_s']:g} s)."
                )
                with gr.Row():
                    with gr.Column():
                        gr.Markdown("### MusicGen")
                        prompt = gr.Textbox(DEFAULT_PROMPTS[0], label="Prompt", lines=2)
                        with gr.Row():
                            duration = gr.Slider(
                                1,
                                max(1.0, min(30.0, float(settings["max_duration_s"]))),
                                value=5,
                                step=0.5,
                                label="Duration (s)",
                            )
                            gen_seed = gr.Number(0, label="Seed", precision=0)
                        model = gr.Textbox(
                            gen_model,
                            label="Model: Hugging Face id (from the cache) or a folder inside the project",
                        )
                        problem = sources.musicgen_problem(gen_model, gen_block.get("cache_dir"))
                        gr.Markdown(problem or "", visible=bool(problem))
                        gen_btn = gr.Button("Generate", variant="primary")
                    with gr.Column():
                        gr.Markdown("### Test-set clip")
                        clip = gr.Dropdown(
                            [(c.label, c.key) for c in clips],
                            value=clips[0].key if clips else None,
                            label="Clip (degraded input + its reference)",
                        )
                        note = project.clips_note()
                        gr.Markdown(note, visible=bool(note))
                        clip_btn = gr.Button("Load clip")
                    with gr.Column():
                        gr.Markdown("### Upload")
                        upload = gr.File(
                            label="Audio file (WAV, FLAC, OGG, MP3)", elem_id="upload-file"
                        )
                        role = gr.Radio(
                            [
                                ("clean: degrade it next, keep it as reference", "clean"),
                                ("degraded: restore it as it is, no reference", "degraded"),
                            ],
                            value="clean",
                            label="Use the file as",
                        )
                        upload_btn = gr.Button("Load upload")
                source_player = gr.Audio(
                    label="Loaded source", type="filepath", interactive=False, buttons=["download"]
                )

            with gr.Tab("Degrade", id="degrade"):
                with gr.Row():
                    chain = gr.Radio(
                        [(f"{k}: {d}", k) for k, d in degradation.CHAINS.items()],
                        value="musicgen_like",
                        label="Chain (docs/method.md#degradations)",
                    )
                with gr.Row():
                    strength = gr.Slider(
                        0,
                        1,
                        value=0.5,
                        step=0.05,
                        label="Strength: 0 no effect, 0.5 the pipeline's probabilities, "
                        "1 every effect",
                    )
                    deg_seed = gr.Number(0, label="Seed", precision=0)
                deg_btn = gr.Button("Degrade", variant="primary")
                with gr.Row():
                    degraded_player = gr.Audio(
                        label="Degraded (the input to restore)",
                        type="filepath",
                        interactive=False,
                        buttons=["download"],
                    )
                    reference_player = gr.Audio(
                        label="Reference (the clean input)",
                        type="filepath",
                        interactive=False,
                        buttons=["download"],
                    )
                effects = gr.Code(
                    "", language="json", label="Recorded effects", interactive=False, max_lines=30
                )

            with gr.Tab("Restore", id="restore"):
                with gr.Row():
                    variant = gr.Dropdown(
                        _variant_choices(project),
                        value=default_variant,
                        label="Variant (those whose models are missing say so)",
                        elem_id="variant",
                    )
                    target = gr.Dropdown(
                        [NO_TARGET, *restoration.targets()],
                        value=NO_TARGET,
                        label="T2 target group",
                        visible=get_variant(default_variant).output == "stem",
                    )
                params0, _, info0 = _variant_view(project, default_variant)
                variant_info = gr.Markdown(info0)
                params = gr.Code(
                    params0,
                    language="json",
                    label="Params (JSON: {variants key: {param: value}}, prefilled with the defaults)",
                    interactive=True,
                )
                restore_btn = gr.Button("Restore", variant="primary")
                restored_player = gr.Audio(
                    label="Restored", type="filepath", interactive=False, buttons=["download"]
                )
                restore_info = gr.Markdown("")
                decisions = gr.Code("", language="json", label="Decisions", interactive=False)

            with gr.Tab("Compare", id="compare"):
                chosen = gr.CheckboxGroup([], label="Outputs to compare")
                cmp_btn = gr.Button("Compare", variant="primary")
                window = gr.Markdown("")
                with gr.Row():
                    players = [
                        gr.Audio(
                            type="filepath",
                            interactive=False,
                            buttons=["download"],
                            visible=False,
                            min_width=220,
                        )
                        for _ in range(max_players)
                    ]
                table = gr.Dataframe(label="Metrics", interactive=False, elem_id="metrics-table")
                spec = gr.Image(
                    label="Spectrograms",
                    type="filepath",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                )
                overlay = gr.Image(
                    label="Waveform overlays",
                    type="filepath",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                )
                diff = gr.Image(
                    label="Difference signals",
                    type="filepath",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                )
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)

            with gr.Tab("Reset", id="reset"):
                gr.Markdown("Forget the loaded source, its degradation and every output.")
                reset_btn = gr.Button("Reset session", variant="stop")

        views = [status, source_player, degraded_player, reference_player, effects, chosen]

        def _session(s: Session | None) -> Session:
            return s if isinstance(s, Session) else workspace.new_session()

        @_guarded
        def on_generate(p: str, d: float, seed: float, m: str, s: Session | None) -> Any:
            s = sources.generate(project, _session(s), p, float(d), int(seed or 0), m)
            return (s, *_views(s, project))

        @_guarded
        def on_clip(key: str | None, s: Session | None) -> Any:
            if not key:
                raise AppError("pick a clip first")
            s = sources.load_clip(project, _session(s), key)
            return (s, *_views(s, project))

        @_guarded
        def on_upload(f: str | None, r: str, s: Session | None) -> Any:
            if not f:
                raise AppError("choose a file to upload first")
            s = sources.load_upload(project, _session(s), f, r or "clean")
            return (s, *_views(s, project))

        @_guarded
        def on_degrade(c: str, st: float, seed: float, s: Session | None) -> Any:
            s = degradation.degrade(project, _session(s), c, float(st), int(seed or 0))
            return (s, *_views(s, project))

        @_guarded
        def on_variant(name: str) -> Any:
            return _variant_view(project, name)

        @_guarded
        def on_restore(
            name: str,
            text: str,
            tgt: str | None,
            s: Session | None,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's injection idiom)
        ) -> Any:
            s, out = restoration.restore(
                project,
                _session(s),
                name,
                text,
                None if tgt in (None, NO_TARGET) else tgt,
                progress=lambda f, t: progress(f, desc=t),
            )
            info = f"**{out.label}**: restored in {out.compute_s:.2f} s."
            return (
                s,
                *_views(s, project),
                str(out.path),
                info,
                json.dumps(out.decisions, indent=2),
            )

        @_guarded
        def on_compare(
            labels: list[str] | None,
            s: Session | None,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> Any:
            s = _session(s)
            result = comparison.compare(
                project,
                s,
                labels or [],
                progress=lambda f, t: progress(f, desc=t),
            )
            slots = [
                gr.update(value=str(path), label=role, visible=True)
                for role, path in result.players
            ]
            slots += [gr.update(value=None, visible=False)] * (max_players - len(slots))
            import pandas as pd

            frame = pd.DataFrame(result.table)
            start, stop = result.window
            text = f"Figures show {start:.1f}-{stop:.1f} s (the loudest window of the input)."
            if s.reference is None:
                text += " No reference: only the non-intrusive metrics apply."
            figs = [str(p) for p in result.figures]
            return (*slots, frame, *figs, [str(p) for p in result.downloads], text)

        @_guarded
        def on_reset(s: Session | None) -> Any:
            s = reset(workspace, s)
            slots = [gr.update(value=None, visible=False)] * max_players
            return (
                s,
                *_views(s, project),
                None,
                "",
                "",
                *slots,
                None,
                None,
                None,
                None,
                None,
                "",
            )

        def on_load() -> Any:
            # models trained while the app runs show up on the next page load
            note = project.missing_note()
            return gr.update(value=note, visible=bool(note)), gr.update(
                choices=_variant_choices(project)
            )

        demo.load(on_load, None, [missing_md, variant], concurrency_limit=None, api_name=False)
        work: dict[str, Any] = {
            "concurrency_id": WORK,
            "concurrency_limit": int(settings["concurrency_limit"]),
        }
        gen_btn.click(
            on_generate,
            [prompt, duration, gen_seed, model, session],
            [session, *views],
            api_name="generate",
            **work,
        )
        clip_btn.click(on_clip, [clip, session], [session, *views], api_name="load_clip", **work)
        upload_btn.click(
            on_upload, [upload, role, session], [session, *views], api_name="upload", **work
        )
        deg_btn.click(
            on_degrade,
            [chain, strength, deg_seed, session],
            [session, *views],
            api_name="degrade",
            **work,
        )
        variant.change(
            on_variant,
            [variant],
            [params, target, variant_info],
            api_name="variant_params",
            concurrency_limit=None,
        )
        restore_btn.click(
            on_restore,
            [variant, params, target, session],
            [session, *views, restored_player, restore_info, decisions],
            api_name="restore",
            **work,
        )
        cmp_btn.click(
            on_compare,
            [chosen, session],
            [*players, table, spec, overlay, diff, downloads, window],
            api_name="compare",
            **work,
        )
        reset_btn.click(
            on_reset,
            [session],
            [
                session,
                *views,
                restored_player,
                restore_info,
                decisions,
                *players,
                table,
                spec,
                overlay,
                diff,
                downloads,
                window,
            ],
            api_name="reset",
            concurrency_limit=None,
        )
    demo.queue(
        max_size=int(settings["queue_max_size"]),
        default_concurrency_limit=int(settings["concurrency_limit"]),
    )
    return demo


def launch_kwargs(project: Project, workspace: Workspace) -> dict[str, Any]:
    """``Blocks.launch`` keywords the app needs besides host and port: Gradio's own upload
    cap (``app.max_upload_mb``, refused before the file reaches the app), the session
    folder as an allowed path, no server-side rendering, no footer links."""
    return {
        "max_file_size": int(float(project.settings["max_upload_mb"]) * 2**20),
        "allowed_paths": [str(workspace.root)],
        "ssr_mode": False,
        "show_error": True,
        "quiet": True,
        "footer_links": [],
    }
