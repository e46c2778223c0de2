"""The diagnostic figures of one example (matplotlib, Agg).

Log-magnitude spectrograms, waveform overlays and difference signals of clean / degraded /
every variant: the visual comparison of seed 000 §4 ("waveform overlays, difference signals,
and log-magnitude spectrograms"), see docs/method.md#report. PNGs carry no software version
or date, so an unchanged input gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import atomic_path
from ..evaluation import metrics as M

#: PNG text chunks matplotlib would add (``Software: Matplotlib version ...``): none, so the
#: bytes depend on the pixels only.
PNG_METADATA: dict[str, Any] = {"Software": None}


def spectrogram_db(wave: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """Power spectrogram of the channel mean in dB, ``(F, N)``."""
    power = M.power_spectrogram(wave.mean(axis=0, keepdims=True), n_fft, hop)[0]  # (F, N)
    return 10.0 * np.log10(power + 1e-10)


def render_figures(
    sources: Sequence[tuple[str, np.ndarray]],
    sr: int,
    anchor: str,
    out_prefix: Path,
    title: str,
    dpi: int = 80,
    start_s: float = 0.0,
) -> list[Path]:
    """Spectrogram grid, waveform overlays and difference signals of one example.

    Args:
        sources: ``[(role, wave (C, T))]``: ``clean`` (if any), ``degraded``, then variants.
        anchor: role the overlays and differences compare against (``clean``, or
            ``degraded`` for T3, where the difference is what the restorer changed).
        out_prefix: figures are ``<prefix>_spec.png``, ``_wave.png``, ``_diff.png``.
        start_s: where the excerpt starts in its file: the time axis shows the file's own
            time (an excerpt 260-280 s is labelled 260-280, not 0-20).

    Returns:
        The three PNG paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    mono = {role: wave.mean(axis=0) for role, wave in sources}
    time_s = start_s + np.arange(next(iter(mono.values())).shape[-1]) / sr

    # log-magnitude spectrograms on one colour scale (80 dB range), so floors compare
    specs = [(role, spectrogram_db(wave)) for role, wave in sources]
    vmax = max(float(s.max()) for _, s in specs)
    # constrained layout keeps the title, the panel labels and the x label inside the
    # figure at any number of panels; the fixed 0.9 in is the room for title and x label
    fig, axes = plt.subplots(
        len(specs),
        1,
        figsize=(8, 0.9 + 1.5 * len(specs)),
        sharex=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, (role, spec) in zip(axes[:, 0], specs, strict=True):
        im = ax.imshow(
            spec,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=vmax - 80,
            vmax=vmax,
            extent=(time_s[0], time_s[-1], 0, sr / 2000),
        )
        ax.set_ylabel("kHz")
        ax.set_title(role, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes[:, 0].tolist(), label="dB", shrink=0.8)
    fig.suptitle(f"{title}: log-magnitude spectrograms", fontsize=10)
    paths.append(_save(fig, out_prefix.with_name(out_prefix.name + "_spec.png"), dpi))

    # waveform overlays and differences against the anchor, one panel per other source
    others = [(role, w) for role, w in mono.items() if role != anchor]
    ref = mono[anchor]
    for kind in ("wave", "diff"):
        fig, axes = plt.subplots(
            len(others),
            1,
            figsize=(8, 0.9 + 1.3 * len(others)),
            sharex=True,
            squeeze=False,
            layout="constrained",
        )
        limit = max(float(np.max(np.abs(w - ref if kind == "diff" else w))) for _, w in others)
        limit = max(limit, float(np.max(np.abs(ref))) if kind == "wave" else limit, 1e-6)
        for ax, (role, w) in zip(axes[:, 0], others, strict=True):
            if kind == "wave":
                # the anchor is drawn last, thin and dark, so what a restorer added shows
                ax.plot(time_s, w, color="C0", lw=0.6, label=role)
                ax.plot(time_s, ref, color="k", lw=0.3, alpha=0.6, label=anchor)
                ax.legend(loc="upper right", fontsize=7)
            else:
                ax.plot(time_s, w - ref, color="C3", lw=0.5)
            ax.set_ylim(-limit * 1.05, limit * 1.05)
            ax.set_title(role if kind == "wave" else f"{role} − {anchor}", fontsize=9, loc="left")
        axes[-1, 0].set_xlabel("time (s)")
        what = (
            f"waveform overlay on {anchor}" if kind == "wave" else f"difference signal vs {anchor}"
        )
        fig.suptitle(f"{title}: {what}", fontsize=10)
        paths.append(_save(fig, out_prefix.with_name(f"{out_prefix.name}_{kind}.png"), dpi))
    return paths


def _save(fig: Any, path: Path, dpi: int) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=PNG_METADATA)
    plt.close(fig)
    return path
