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
from .session import CAPPED, STOPPED, Session, Workspace, reset

log = logging.getLogger(__name__)

#: Label of the target dropdown's "no target" entry (T1/T3: restore the mixture).
NO_TARGET = "(mixture)"
#: Compare's players per row of its grid.
PLAYERS_PER_ROW = 4
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


#: Labels of the players that show the session (the note of a scaled preview is added).
SOURCE, DEGRADED, REFERENCE, RESTORED = (
    "Loaded source",
    "Degraded (the input to restore)",
    "Reference (the clean input)",
    "Restored",
)


def _player(session: Session, path: Path | None, label: str, **more: Any) -> Any:
    """A player's update: the session file's compressed preview (never above 0 dBFS
    unannounced: :meth:`.Session.preview`), labelled; the full-resolution file is in
    Compare's downloads."""
    if path is None:
        return gr.update(value=None, label=label, **more)
    preview, note = session.preview(path)
    return gr.update(value=str(preview), label=label + note, **more)


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
        _player(session, session.source or session.input, SOURCE),
        _player(session, degraded, DEGRADED),
        _player(session, session.reference, REFERENCE),
        effects if (session.effects or session.degrade_info) else "",
        gr.update(choices=outputs, value=outputs[-cap:]),
    )


def _target_choices(project: Project, name: str) -> tuple[list[str], str | None]:
    """The target dropdown of variant ``name``: the groups it can restore here, plus "the
    mixture" unless it has one model per group (then only its trained groups)."""
    v = get_variant(name)
    groups = restoration.targets(project, name)
    if v.per_target:
        return groups, (groups[0] if groups else None)
    return [NO_TARGET, *groups], NO_TARGET


def _variant_view(project: Project, name: str) -> tuple[Any, ...]:
    """Params JSON, target dropdown and a few lines about the variant."""
    v = get_variant(name)
    params = json.dumps(project.variant_params(name), indent=2)
    choices, value = _target_choices(project, name)
    target = gr.update(visible=v.output == "stem", choices=choices, value=value)
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
                    label=SOURCE, type="filepath", interactive=False, buttons=["download"]
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
                        label=DEGRADED,
                        type="filepath",
                        interactive=False,
                        buttons=["download"],
                    )
                    reference_player = gr.Audio(
                        label=REFERENCE,
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
                    target_choices, target_value = _target_choices(project, default_variant)
                    target = gr.Dropdown(
                        target_choices,
                        value=target_value,
                        label="T2 target group",
                        allow_custom_value=True,  # checked by the restore, in its own words
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
                    label=RESTORED, type="filepath", interactive=False, buttons=["download"]
                )
                restore_info = gr.Markdown("")
                decisions = gr.Code("", language="json", label="Decisions", interactive=False)

            with gr.Tab("Compare", id="compare"):
                chosen = gr.CheckboxGroup([], label="Outputs to compare")
                cmp_btn = gr.Button("Compare", variant="primary")
                window = gr.Markdown("")
                # a grid of PLAYERS_PER_ROW equal columns that stay when a player is hidden,
                # so players keep one width and line up (no lone player at full width)
                players = []
                for first in range(0, max_players, PLAYERS_PER_ROW):
                    with gr.Row(equal_height=True):
                        for k in range(first, first + PLAYERS_PER_ROW):
                            with gr.Column(scale=1, min_width=200):
                                if k < max_players:
                                    players.append(
                                        gr.Audio(
                                            type="filepath",
                                            interactive=False,
                                            buttons=["download"],
                                            visible=False,
                                        )
                                    )
                every_metric = gr.Checkbox(False, label="All metrics (loudness, peak, SNRs)")
                table = gr.Dataframe(
                    label="Metrics", interactive=False, elem_id="metrics-table", visible=False
                )
                spec = gr.Image(
                    label="Spectrograms",
                    type="filepath",
                    interactive=False,
                    visible=False,
                    buttons=["download", "fullscreen"],
                )
                overlay = gr.Image(
                    label="Waveform overlays",
                    type="filepath",
                    interactive=False,
                    visible=False,
                    buttons=["download", "fullscreen"],
                )
                diff = gr.Image(
                    label="Difference signals",
                    type="filepath",
                    interactive=False,
                    visible=False,
                    buttons=["download", "fullscreen"],
                )
                downloads = gr.File(label="Downloads", file_count="multiple", interactive=False)

            with gr.Tab("Reset", id="reset"):
                gr.Markdown("Forget the loaded source, its degradation and every output.")
                reset_btn = gr.Button("Reset session", variant="stop")

        views = [status, source_player, degraded_player, reference_player, effects, chosen]

        def _session(s: Session | None, request: gr.Request | None, fresh: bool) -> Session:
            """The request's session: a new one for a new tab, or after Reset or a closed
            tab; a session the disk cap removed is an error unless the request loads a new
            source (``fresh``)."""
            owner = getattr(request, "session_hash", None)
            if not isinstance(s, Session):
                return workspace.new_session(owner)
            why = workspace.gone(s)
            if why is None:
                return s
            if why == CAPPED and not fresh:
                raise AppError(STOPPED[CAPPED])
            return workspace.new_session(owner)

        def _work(
            s: Session | None,
            request: gr.Request | None,
            fn: Callable[..., Any],
            progress: gr.Progress | None = None,
            fresh: bool = False,
        ) -> Any:
            """Run ``fn(session, report)`` holding the session (Reset waits for it, or
            stops it between chunks: ``report`` raises then); a result for a session that
            was reset meanwhile is discarded; then the disk cap is applied."""
            session = _session(s, request, fresh)
            with workspace.job(session) as check:

                def report(fraction: float, text: str) -> None:
                    check()
                    if progress is not None:
                        progress(fraction, desc=text)

                result = fn(session, report)
                check()
            workspace.enforce_cap(keep=session)
            return result

        @_guarded
        def on_generate(
            p: str, d: float, seed: float, m: str, s: Session | None, request: gr.Request
        ) -> Any:
            def run(s: Session, _: Any) -> Any:
                s = sources.generate(project, s, p, float(d), int(seed or 0), m)
                return (s, *_views(s, project))

            return _work(s, request, run, fresh=True)

        @_guarded
        def on_clip(key: str | None, s: Session | None, request: gr.Request) -> Any:
            if not key:
                raise AppError("pick a clip first")

            def run(s: Session, _: Any) -> Any:
                s = sources.load_clip(project, s, key)
                return (s, *_views(s, project))

            return _work(s, request, run, fresh=True)

        @_guarded
        def on_upload(f: str | None, r: str, s: Session | None, request: gr.Request) -> Any:
            if not f:
                raise AppError("choose a file to upload first")

            def run(s: Session, _: Any) -> Any:
                s = sources.load_upload(project, s, f, r or "clean")
                return (s, *_views(s, project))

            return _work(s, request, run, fresh=True)

        @_guarded
        def on_degrade(
            c: str,
            st: float,
            seed: float,
            s: Session | None,
            request: gr.Request,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's injection idiom)
        ) -> Any:
            def run(s: Session, report: Any) -> Any:
                s = degradation.degrade(project, s, c, float(st), int(seed or 0), report)
                return (s, *_views(s, project))

            return _work(s, request, run, progress)

        @_guarded
        def on_variant(name: str) -> Any:
            return _variant_view(project, name)

        @_guarded
        def on_restore(
            name: str,
            text: str,
            tgt: str | None,
            s: Session | None,
            request: gr.Request,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's injection idiom)
        ) -> Any:
            def run(s: Session, report: Any) -> Any:
                s, out = restoration.restore(
                    project,
                    s,
                    name,
                    text,
                    None if tgt in (None, NO_TARGET) else tgt,
                    progress=report,
                )
                info = f"**{out.label}**: restored in {out.compute_s:.2f} s."
                return (
                    s,
                    *_views(s, project),
                    _player(s, out.path, RESTORED),
                    info,
                    json.dumps(out.decisions, indent=2),
                )

            return _work(s, request, run, progress)

        @_guarded
        def on_compare(
            labels: list[str] | None,
            every: bool,
            s: Session | None,
            request: gr.Request,
            progress: gr.Progress = gr.Progress(),  # noqa: B008
        ) -> Any:
            def run(s: Session, report: Any) -> Any:
                return s, comparison.compare(project, s, labels or [], progress=report)

            s, result = _work(s, request, run, progress)
            slots = [_player(s, path, role, visible=True) for role, path in result.players]
            slots += [gr.update(value=None, visible=False)] * (max_players - len(slots))
            import pandas as pd

            s.table = result.table
            frame = gr.update(
                value=pd.DataFrame(comparison.table_view(result.table, every)), visible=True
            )
            start, stop = result.window
            text = f"Figures show {start:.1f}-{stop:.1f} s (the loudest window of the input)."
            if s.reference is None:
                text += " No reference: only the non-intrusive metrics apply."
            figs = [gr.update(value=str(p), visible=True) for p in result.figures]
            return (*slots, frame, *figs, [str(p) for p in result.downloads], text)

        @_guarded
        def on_reset(s: Session | None, request: gr.Request) -> Any:
            # stops the session's running request between chunks (or waits for a step
            # without chunks) before its files are forgotten
            s = reset(workspace, s, getattr(request, "session_hash", None))
            slots = [gr.update(value=None, visible=False)] * max_players
            return (
                s,
                *_views(s, project),
                None,
                "",
                "",
                *slots,
                *[gr.update(value=None, visible=False)] * 4,  # table and figures
                None,
                "",
            )

        def on_load() -> Any:
            # models trained while the app runs show up on the next page load
            note = project.missing_note()
            return gr.update(value=note, visible=bool(note)), gr.update(
                choices=_variant_choices(project)
            )

        def on_every_metric(every: bool, s: Session | None) -> Any:
            import pandas as pd

            rows = s.table if isinstance(s, Session) else []
            if not rows:
                return gr.update()
            return gr.update(value=pd.DataFrame(comparison.table_view(rows, every)))

        def on_unload(request: gr.Request) -> None:
            # the tab is closed: its sessions' files go now, not after Gradio's state TTL
            workspace.drop_owner(getattr(request, "session_hash", None) or "")

        demo.load(on_load, None, [missing_md, variant], concurrency_limit=None, api_name=False)
        demo.unload(on_unload)
        every_metric.change(
            on_every_metric,
            [every_metric, session],
            [table],
            concurrency_limit=None,
            api_name="metric_columns",
        )
        work: dict[str, Any] = {
            "concurrency_id": WORK,
            "concurrency_limit": int(settings["concurrency_limit"]),
            # one progress display per action, and an error shown once, in the status line
            # (not as a red pill over every output, which keeps its previous value)
            "show_progress_on": [status],
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
            [chosen, every_metric, session],
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
