"""The listening page ``html/index.html``: the tables, the figures and HTML5 audio players.

For a few examples per test set it writes 16-bit excerpts of clean, degraded and every
variant beside the page (WAV or FLAC; PCM, so the bytes depend on the samples only) and
copies that example's figures next to them, so the folder is self-contained.
"""

from __future__ import annotations

import html
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.audio import fit_length, load_audio, save_audio, set_channels
from ..data.dataset import Example, read_manifest
from ..evaluation import metrics as M
from .collect import (
    Collected,
    Evaluation,
    ReportConfig,
    order_variants,
    restored_file,
    safe_name,
)
from .figures import render_figures
from .markdown import digits, fmt, heading, method_line, table_data, testset_caption

log = logging.getLogger(__name__)


@dataclass
class ExampleMedia:
    """What the HTML page shows for one example."""

    testset: str
    example: Example
    audio: list[tuple[str, str]]  # (role, path relative to the html folder)
    figures: list[str]  # paths relative to the html folder
    scores: dict[str, dict[str, float]]  # role -> metrics of this clip's first segment
    start_s: float


def pick_examples(testset_dir: Path, n: int) -> list[Example]:
    """The first ``n`` examples of the manifest: a stable choice across runs."""
    return read_manifest(testset_dir)[:n]


def excerpt_window(wave: np.ndarray, sr: int, excerpt_s: float) -> tuple[int, int]:
    """``(start, stop)`` of the loudest ``excerpt_s`` window (1-s grid) of ``(C, T)``: the part
    where restoration is audible, not a silent intro."""
    n = min(wave.shape[-1], int(round(excerpt_s * sr)))
    energy = np.square(wave.astype(np.float64)).sum(axis=0)
    cumsum = np.concatenate([[0.0], np.cumsum(energy)])
    starts = np.arange(0, wave.shape[-1] - n + 1, sr) if wave.shape[-1] > n else np.array([0])
    best = int(starts[np.argmax(cumsum[starts + n] - cumsum[starts])])
    return best, best + n


def build_example_media(
    testset: str,
    testset_dir: Path,
    example: Example,
    evals: Mapping[str, Evaluation],
    restored_root: Path | None,
    figures_dir: Path,
    html_dir: Path,
    config: ReportConfig,
) -> ExampleMedia:
    """Write one example's figures and audio excerpts; return what the page links."""
    sr = example.sr
    sources: list[tuple[str, np.ndarray]] = []
    degraded, _ = load_audio(testset_dir / example.mixture)
    if example.target:
        clean, _ = load_audio(testset_dir / example.target)
        sources.append(("clean", set_channels(clean, degraded.shape[0])))
    sources.append(("degraded", degraded))
    for variant in order_variants(list(evals), config.baseline):
        path = restored_file(evals[variant], example.id, restored_root)
        if not path.is_file():
            log.warning("%s: missing, left out of the report page", path)
            continue
        wave, _ = load_audio(path)
        wave = fit_length(set_channels(wave, degraded.shape[0]), degraded.shape[-1])
        sources.append((variant, wave))
    start, stop = excerpt_window(sources[0][1], sr, config.excerpt_s)
    sources = [(role, w[:, start:stop]) for role, w in sources]

    stem = safe_name(example.id)
    prefix = figures_dir / safe_name(testset) / stem
    anchor = "clean" if example.target else "degraded"
    figs = render_figures(
        sources, sr, anchor, prefix, f"{testset} / {example.id}", config.figure_dpi, start / sr
    )
    fig_rel = []
    for fig in figs:
        dest = html_dir / "figures" / safe_name(testset) / fig.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fig, dest)
        fig_rel.append(dest.relative_to(html_dir).as_posix())
    audio_rel = []
    for role, wave in sources:
        name = f"{safe_name(role)}.{config.audio_format}"
        dest = html_dir / "audio" / safe_name(testset) / stem / name
        # 16-bit for size; clipping here only affects the preview, never the scores.
        save_audio(dest, np.clip(wave, -1.0, 1.0), sr, subtype="PCM_16")
        audio_rel.append((role, dest.relative_to(html_dir).as_posix()))
    scores = {}
    for variant, ev in evals.items():
        for row in ev.rows:
            if row.get("clip") == example.id and row.get("segment") == 0:
                scores[variant] = {k: v for k, v in row.items() if k in M.INFO and v is not None}
    return ExampleMedia(testset, example, audio_rel, fig_rel, scores, start / sr)


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}
.note{background:#fff3cd;border:1px solid #e0c36a;padding:.6em 1em;border-radius:4px}
table.metrics{border-collapse:collapse;font-size:13px;margin:.5em 0 1em}
table.metrics td,table.metrics th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
table.metrics td:first-child,table.metrics th:first-child{text-align:left}
.example{border-top:1px solid #ddd;margin-top:1.5em;padding-top:.5em}
.players td{padding:2px 8px;vertical-align:middle;font-size:13px}
img{max-width:100%;display:block;margin:.5em 0}
.media-error{color:#b00;font-weight:bold}
"""

# Marks every <img>/<audio> as data-media="ok"/"error" once it has loaded (or failed) and
# writes the tally into #media-check: a broken link is visible on the page, and the tests
# read the same marks from a headless browser.
_MEDIA_CHECK_JS = """
(function () {
  var pending = 0, ok = 0, bad = 0;
  function done(el, good) {
    if (el.dataset.media) return;
    el.dataset.media = good ? "ok" : "error";
    if (good) { ok++; } else {
      bad++;
      var span = document.createElement("span");
      span.className = "media-error";
      span.textContent = "cannot load " + (el.getAttribute("src") || "");
      el.insertAdjacentElement("afterend", span);
    }
    pending--;
    var box = document.getElementById("media-check");
    box.textContent = JSON.stringify({ok: ok, error: bad, pending: pending});
    if (pending === 0) { document.body.dataset.mediaCheck = bad ? "error" : "ok"; }
  }
  window.addEventListener("load", function () {
    var imgs = document.querySelectorAll("img"), auds = document.querySelectorAll("audio");
    pending = imgs.length + auds.length;
    if (pending === 0) { document.body.dataset.mediaCheck = "ok"; }
    imgs.forEach(function (img) { done(img, img.complete && img.naturalWidth > 0); });
    auds.forEach(function (a) {
      if (a.error) { done(a, false); return; }
      if (a.readyState >= 1) { done(a, true); return; }
      a.addEventListener("loadedmetadata", function () { done(a, true); });
      a.addEventListener("error", function () { done(a, false); });
      a.load();
    });
  });
})();
"""


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(
    collected: Collected,
    media: Sequence[ExampleMedia],
    config: ReportConfig,
    note: str,
) -> str:
    """The whole ``index.html``: data note, per-test-set tables, then each example's
    players and figures."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>musicrestore: restoration report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Restoration report</h1>",
        f'<p class="note"><b>Data:</b> {esc(note)}</p>',
        f"<p>{esc(method_line(collected, config))}</p>",
        '<p>Media check: <span id="media-check">not run</span></p>',
    ]
    for testset, evals in collected.items():
        header, values, deltas = table_data(evals, config)
        parts += [
            f'<h2 id="{esc(safe_name(testset))}">{esc(testset)}</h2>',
            f"<p>{esc(testset_caption(evals))}</p>",
            html_table(header, values),
        ]
        if config.baseline in evals:
            parts += [
                f"<p>Δ vs <code>{esc(config.baseline)}</code>:</p>",
                html_table(header, deltas),
            ]
        for item in (m for m in media if m.testset == testset):
            ex = item.example
            fired = ", ".join(ex.effect_names()) or "none recorded"
            parts.append(
                f'<div class="example"><h3>{esc(ex.id)}</h3>'
                f"<p>song {esc(ex.song)}; group {esc(ex.group)}; excerpt from {item.start_s:.1f} s; "
                f"degradations: {esc(fired)}</p>"
            )
            names = [n for n in M.ALL_METRICS if any(n in s for s in item.scores.values())][:4]
            head = "".join(f"<th>{esc(heading(n))}</th>" for n in names)
            parts.append(f'<table class="players"><tr><th>source</th><th>listen</th>{head}</tr>')
            for role, rel in item.audio:
                cells = "".join(
                    f"<td>{fmt(item.scores.get(role, {}).get(n), digits(n))}</td>" for n in names
                )
                parts.append(
                    f"<tr><td>{esc(role)}</td>"
                    f'<td><audio controls preload="metadata" src="{esc(rel)}"></audio></td>{cells}</tr>'
                )
            parts.append("</table>")
            parts += [
                f'<img src="{esc(rel)}" alt="{esc(ex.id)} {esc(Path(rel).stem)}">'
                for rel in item.figures
            ]
            parts.append("</div>")
    parts += [f"<script>{_MEDIA_CHECK_JS}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"
