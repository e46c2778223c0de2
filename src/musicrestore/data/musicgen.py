"""MusicGen samples: the T3 test set (no reference), from one of three sources.

See docs/method.md#musicgen-samples.

- ``generate``: text-to-music with MusicGen (Copet et al., 2023), the generator whose
  artifacts seeds 000 and 001 restore. Runs through ``transformers``'
  ``MusicgenForConditionalGeneration`` (``facebook/musicgen-*`` weights from the Hugging
  Face cache, or a local model folder); ``audiocraft`` is an optional backend where it
  imports (it cannot be installed beside this stack: it pins torch 2.1). Clips are mono
  at the model's rate (32 kHz), seeded with ``torch.manual_seed``.
- ``local``: a folder of clips generated elsewhere (any format libsndfile reads),
  resampled to 32 kHz mono; a ``<clip>.txt`` beside a clip is taken as its prompt.
- ``simulated`` (the offline default): 10-s excerpts of the test songs' full mixes passed
  through the MusicGen-like artifact chain (seed 000 §3,
  :func:`musicrestore.degrade.examples.make_musicgen_example`). They are NOT MusicGen output:
  ids start with ``sim_`` and ``meta["simulated"]`` is true, so no report can mistake them.

Every source writes the dataset contract (:mod:`musicrestore.data.dataset`): ``<id>.wav`` plus
``manifest.jsonl`` (task ``T3``, target ``None``) and ``prompts.jsonl`` (one line per clip:
id, prompt or origin, source).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.audio import load_audio, save_audio, validate_wave
from ..core.errors import StageError
from .dataset import Example, write_manifest

log = logging.getLogger(__name__)

SOURCES = ("generate", "local", "simulated")
#: MusicGen's output rate (EnCodec 32 kHz); ``local`` and ``simulated`` clips use it too.
MUSICGEN_SR = 32_000
DEFAULT_MODEL = "facebook/musicgen-small"
#: Seed 001 §3 generated its test sample from the first prompt; the others cover the
#: genres MusicGen demos use, so the set is not one timbre.
DEFAULT_PROMPTS: tuple[str, ...] = (
    "Earthy tones, environmentally conscious, ukulele-infused, harmonic, breezy, easygoing, "
    "organic instrumentation, gentle grooves.",
    "Lo-fi hip hop beat with warm Rhodes piano, vinyl crackle and a mellow bass line.",
    "Upbeat acoustic folk with strummed guitar, hand claps and a whistled melody.",
    "Cinematic orchestral piece with soaring strings, french horns and timpani.",
    "80s synth-pop with punchy drums, analog bass and bright arpeggiated synthesizers.",
    "Smooth jazz trio, upright bass, brushed drums and a soft piano solo.",
)
#: Sampling settings of audiocraft's MusicGen defaults, as ``generate()`` keywords.
DEFAULT_SAMPLING: dict[str, Any] = {
    "do_sample": True,
    "top_k": 250,
    "temperature": 1.0,
    "guidance_scale": 3.0,  # classifier-free guidance (audiocraft's cfg_coef)
}
PROMPTS_FILE = "prompts.jsonl"


def fetch_musicgen(
    source: str,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    duration_s: float = 10.0,
    generate: Mapping[str, Any] | None = None,
    local: Mapping[str, Any] | None = None,
    simulated: Mapping[str, Any] | None = None,
    rawstems: str | os.PathLike[str] | None = None,
    splits: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> list[Example]:
    """Write the T3 set from ``source`` into ``out_dir`` (the ``musicgen:`` params block).

    Args:
        source: ``generate`` | ``local`` | ``simulated``.
        out_dir: an empty (temporary) folder; the caller makes it atomic.
        seed: seeds generation (``torch.manual_seed``) and the simulated excerpts.
        duration_s: clip length for ``generate`` and ``simulated`` (``local`` keeps its own).
        generate: keywords of :func:`generate_clips` (``model``, ``prompts``, ...).
        local: keywords of :func:`import_local` (``folder`` is required).
        simulated: keywords of :func:`simulate_clips` (``clips_per_song``, ``chain``, ...).
        rawstems, splits: RawStems-layout root and its splits folder (``simulated`` only).

    Returns:
        The examples written to ``out_dir/manifest.jsonl``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if source == "generate":
        opts = _options(generate_clips, generate, "generate")
        examples = generate_clips(
            out_dir, seed=seed, duration_s=duration_s, progress=progress, **opts
        )
    elif source == "local":
        opts = _options(import_local, local, "local")
        if not opts.get("folder"):
            raise StageError("musicgen.source is 'local' but musicgen.local.folder is not set")
        examples = import_local(out_dir, **opts)
    elif source == "simulated":
        if rawstems is None or splits is None:
            raise StageError("musicgen.source 'simulated' needs the rawstems and splits folders")
        opts = _options(simulate_clips, simulated, "simulated")
        examples = simulate_clips(
            out_dir, rawstems, splits, seed=seed, duration_s=duration_s, progress=progress, **opts
        )
    else:
        raise StageError(
            f"unknown musicgen.source {source!r}; expected one of {', '.join(SOURCES)}"
        )
    write_manifest(out_dir, examples)
    _write_prompts(out_dir, examples)
    return examples


#: Arguments the stage passes itself; the params blocks may not set them.
_FIXED = {"out_dir", "rawstems", "splits", "seed", "duration_s", "progress"}


def _prompts_problem(value: Any) -> str | None:
    ok = isinstance(value, list | tuple) and value and all(isinstance(p, str) for p in value)
    return None if ok else "a non-empty list of prompts (strings)"


#: Bounds of the ``musicgen.<source>`` blocks (keyword arguments of the source functions).
_RULES: dict[str, Any] = {
    "ranges": {
        "clips_per_prompt": (1, None),
        "clips_per_song": (1, None),
        "batch_size": (1, None),
        "max_clips": (0, None),
    },
    "choices": {"backend": ("transformers", "audiocraft")},
    "checks": {"prompts": _prompts_problem},
}

#: Bounds of ``musicgen.generate.sampling`` (``generate()`` keywords; others pass through).
_SAMPLING_RULES: dict[str, Any] = {
    "ranges": {"sampling.top_k": (0, None), "sampling.guidance_scale": (0.0, None)},
    "positive": ("sampling.temperature",),
    "open_keys": ("sampling",),
}


def _options(func: Any, block: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """A source's params block as keywords of ``func``, through
    :func:`musicrestore.core.config.merge_kwargs`: unknown keys, wrong types and bad values fail
    in one line naming ``musicgen.<name>.<key>``."""
    from ..core.config import device_problem, merge_kwargs, optional_str_problem

    checks = {
        **_RULES["checks"],
        "device": device_problem,
        **{key: optional_str_problem for key in ("cache_dir", "folder", "model")},  # or null
    }
    rules = {**_RULES, "checks": checks}
    return merge_kwargs(func, block, f"musicgen.{name}", skip=_FIXED, **rules)


#: The ``musicgen`` block: the source, what every source shares, and one block per source
#: (each checked against its function's keywords by :func:`musicgen_settings`).
MUSICGEN_DEFAULTS: dict[str, Any] = {
    "source": "simulated",
    "seed": 0,
    "duration_s": 10.0,
    "simulated": {},
    "generate": {},
    "local": {},
}


def musicgen_settings(block: Mapping[str, Any] | None, where: str = "musicgen") -> dict[str, Any]:
    """The ``musicgen`` block through :func:`musicrestore.core.config.merge`, every source's
    block included (as keywords of :func:`simulate_clips`, :func:`generate_clips` and
    :func:`import_local`; ``simulated.chain`` against
    :func:`musicrestore.degrade.chains.musicgen_config`; ``generate.sampling``'s known keys
    typed): an unknown key, a wrong type or a value out of range is a one-line
    :class:`~musicrestore.core.config.ConfigError` naming ``musicgen.<key>``. Returns the
    block with each source's keywords converted (only the keys given)."""
    from ..core.config import SEED_RANGE, ConfigError, merge
    from ..degrade.chains import musicgen_config

    settings: dict[str, Any] = merge(
        MUSICGEN_DEFAULTS,
        block,
        where,
        ranges={"seed": SEED_RANGE},
        positive=("duration_s",),
        choices={"source": SOURCES},
        open_keys=("simulated", "generate", "local"),
    )
    for name, func in (
        ("simulated", simulate_clips),
        ("generate", generate_clips),
        ("local", import_local),
    ):
        settings[name] = _options(func, settings[name], name)
    if settings["source"] == "local" and not settings["local"].get("folder"):
        raise ConfigError(
            f"{where}.local.folder: not set; the local source needs a folder of clips"
        )
    if (sampling := settings["generate"].get("sampling")) is not None:
        merge(
            {"sampling": DEFAULT_SAMPLING},
            {"sampling": sampling},
            f"{where}.generate",
            **_SAMPLING_RULES,
        )
    try:
        musicgen_config(settings["simulated"].get("chain"))
    except ConfigError as exc:  # the chain names its block "degrade"
        raise ConfigError(f"{where}.simulated.chain{str(exc).removeprefix('degrade')}") from None
    return settings


def _write_prompts(out_dir: Path, examples: Sequence[Example]) -> None:
    lines = []
    for ex in examples:
        row = {"id": ex.id, "source": ex.meta["source"]}
        for key in ("prompt", "origin"):
            if ex.meta.get(key) is not None:
                row[key] = ex.meta[key]
        lines.append(json.dumps(row, sort_keys=True))
    (out_dir / PROMPTS_FILE).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# ---------------------------------------------------------------------------- generate


def generate_clips(
    out_dir: str | os.PathLike[str],
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    model: str = DEFAULT_MODEL,
    duration_s: float = 10.0,
    clips_per_prompt: int = 1,
    seed: int = 0,
    sampling: Mapping[str, Any] | None = None,
    batch_size: int = 4,
    backend: str = "transformers",
    device: str = "auto",
    cache_dir: str | None = None,
    progress: bool = True,
) -> list[Example]:
    """Generate ``clips_per_prompt`` clips per prompt with MusicGen; write ``gen_NNN.wav``.

    Args:
        out_dir: where the clips go.
        prompts: text descriptions (seed 001's prompt first by default).
        model: Hugging Face model id (loaded from the HF cache; downloaded only when the hub
            is reachable and ``HF_HUB_OFFLINE`` is unset) or a local model folder.
        duration_s: clip length; MusicGen makes ``frame_rate`` (50) tokens a second.
        clips_per_prompt: samples drawn per prompt.
        seed: batch ``b`` runs after ``torch.manual_seed(seed + b)``.
        sampling: ``generate()`` keywords (defaults: :data:`DEFAULT_SAMPLING`).
        batch_size: prompts generated together.
        backend: ``transformers`` or ``audiocraft`` (only where it imports).
        device: ``cpu``, ``cuda`` or ``auto``.
        cache_dir: Hugging Face cache folder (default: the HF default, ``HF_HOME``).
        progress: show a progress bar.

    Returns:
        One :class:`Example` per clip (task T3, no target), ``meta`` with prompt and model.
    """
    import torch
    from tqdm import tqdm

    if isinstance(prompts, str):  # one prompt written as a string rather than a list
        prompts = [prompts]
    if not prompts:
        raise StageError("musicgen.generate.prompts is empty")
    if clips_per_prompt < 1 or batch_size < 1:
        raise StageError("musicgen.generate.clips_per_prompt and batch_size must be >= 1")
    out_dir = Path(out_dir)
    settings = {**DEFAULT_SAMPLING, **dict(sampling or {})}
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    generator: _TransformersMusicGen | _AudiocraftMusicGen
    if backend == "transformers":
        generator = _TransformersMusicGen(model, device, cache_dir)
    elif backend == "audiocraft":
        generator = _AudiocraftMusicGen(model, device)
    else:
        raise StageError(
            f"unknown musicgen.generate.backend {backend!r}; use transformers or audiocraft"
        )

    jobs = [p for p in prompts for _ in range(clips_per_prompt)]
    examples: list[Example] = []
    batches = [jobs[i : i + batch_size] for i in range(0, len(jobs), batch_size)]
    for b, batch in enumerate(tqdm(batches, desc="musicgen", unit="batch", disable=not progress)):
        torch.manual_seed(seed + b)
        waves, sr = generator(batch, duration_s, settings)  # (B, T) at sr
        for text, wave in zip(batch, waves, strict=True):
            ex_id = f"gen_{len(examples):03d}"
            wave = validate_wave(wave[None, :], sr, f"{model} output for {text!r}")
            save_audio(out_dir / f"{ex_id}.wav", wave, sr)
            examples.append(
                Example(
                    id=ex_id,
                    task="T3",
                    mixture=f"{ex_id}.wav",
                    target=None,
                    sr=sr,
                    duration_s=round(wave.shape[-1] / sr, 4),
                    song=text,
                    seed=seed + b,
                    meta={
                        "source": "generate",
                        "simulated": False,
                        "prompt": text,
                        "model": model,
                        "backend": backend,
                        "sampling": settings,
                    },
                )
            )
    return examples


class _TransformersMusicGen:
    """MusicGen through ``transformers``: processor for the text, EnCodec for the audio."""

    def __init__(self, model_id: str, device: str, cache_dir: str | None = None) -> None:
        from transformers import AutoProcessor, MusicgenForConditionalGeneration

        self.processor = _from_pretrained(AutoProcessor, model_id, cache_dir)
        self.model = _from_pretrained(MusicgenForConditionalGeneration, model_id, cache_dir)
        self.model.to(device).eval()
        self.device = device
        self.sr = int(self.model.config.audio_encoder.sampling_rate)
        self.frame_rate = int(self.model.config.audio_encoder.frame_rate)
        self.delay = int(self.model.config.decoder.num_codebooks) - 1
        self.max_tokens = int(self.model.config.decoder.max_position_embeddings)

    def __call__(
        self, prompts: list[str], duration_s: float, sampling: Mapping[str, Any]
    ) -> tuple[np.ndarray, int]:
        import torch

        inputs = self.processor(text=list(prompts), padding=True, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        # The codebook delay pattern costs (num_codebooks - 1) frames of every generation.
        n_tokens = max(1, math.ceil(duration_s * self.frame_rate)) + self.delay
        if n_tokens > self.max_tokens:
            raise StageError(
                f"musicgen.duration_s {duration_s} needs {n_tokens} tokens; this model "
                f"generates at most {self.max_tokens} ({self.max_tokens / self.frame_rate:.0f} s)"
            )
        with torch.no_grad():
            audio = self.model.generate(**inputs, max_new_tokens=n_tokens, **sampling)
        audio = audio[:, 0, : int(round(duration_s * self.sr))]  # (B, T): mono
        return audio.float().cpu().numpy(), self.sr


def _hub_offline() -> bool:
    import huggingface_hub.constants

    env = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return env or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def _from_pretrained(cls: Any, model_id: str, cache_dir: str | None) -> Any:
    """Load from a local folder or the HF cache first (no network); download only when the
    hub may be used; every failure becomes one line that says what to do."""
    if Path(model_id).is_dir():
        try:
            return cls.from_pretrained(model_id)
        except (OSError, ValueError) as exc:
            raise StageError(
                f"{model_id}: not a loadable MusicGen folder ({_first_line(exc)})"
            ) from None
    try:
        return cls.from_pretrained(model_id, cache_dir=cache_dir, local_files_only=True)
    except (OSError, ValueError) as exc:
        cached_error = exc
    hint = (
        f"download it where the hub is reachable (`huggingface-cli download {model_id}`) and "
        "copy the Hugging Face cache (HF_HOME) here, point musicgen.generate.model at a local "
        "model folder, or use musicgen.source: simulated"
    )
    if _hub_offline():
        raise StageError(
            f"MusicGen model {model_id!r} is not in the Hugging Face cache and HF_HUB_OFFLINE "
            f"is set ({_first_line(cached_error)}); {hint}"
        )
    try:
        return cls.from_pretrained(model_id, cache_dir=cache_dir)
    except (OSError, ValueError) as exc:
        raise StageError(
            f"MusicGen model {model_id!r} is not cached and could not be downloaded "
            f"({_first_line(exc)}); {hint}"
        ) from None


class _AudiocraftMusicGen:
    """MusicGen through audiocraft (``MusicGen.get_pretrained``), where it imports."""

    def __init__(self, model_id: str, device: str) -> None:
        try:
            from audiocraft.models import MusicGen  # type: ignore[import-not-found]
        except ImportError as exc:
            raise StageError(
                f"musicgen.generate.backend 'audiocraft' needs the audiocraft package, which "
                f"does not import here ({_first_line(exc)}); audiocraft 1.3 pins torch==2.1.0 "
                "and cannot be installed beside this stack: use backend: transformers"
            ) from None
        self.model = MusicGen.get_pretrained(model_id, device=device)
        self.sr = int(self.model.sample_rate)

    def __call__(
        self, prompts: list[str], duration_s: float, sampling: Mapping[str, Any]
    ) -> tuple[np.ndarray, int]:
        self.model.set_generation_params(
            duration=duration_s,
            use_sampling=bool(sampling.get("do_sample", True)),
            top_k=int(sampling.get("top_k", 250)),
            top_p=float(sampling.get("top_p", 0.0)),
            temperature=float(sampling.get("temperature", 1.0)),
            cfg_coef=float(sampling.get("guidance_scale", 3.0)),
        )
        audio = self.model.generate(list(prompts))  # (B, 1, T)
        return audio[:, 0].float().cpu().numpy(), self.sr


# ---------------------------------------------------------------------------- local


def import_local(
    out_dir: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    max_clips: int | None = None,
    model: str | None = None,
) -> list[Example]:
    """Copy a folder of generated clips in as ``local_NNN.wav`` (32 kHz mono).

    Args:
        out_dir: where the clips go.
        folder: clips in any format libsndfile reads, searched recursively, sorted by path.
            ``<clip>.txt`` beside a clip holds its prompt.
        max_clips: keep the first this many (``None``: all).
        model: what generated them, recorded in ``meta`` when known.

    Raises:
        AudioError: a clip that is not readable audio (one line naming the file).
    """
    from ..core.audio import list_audio

    folder = Path(folder)
    if not folder.is_dir():
        raise StageError(f"{folder}: musicgen.local.folder does not exist")
    clips = list_audio(folder)[:max_clips]
    if not clips:
        raise StageError(f"{folder}: no audio clips (.wav, .flac, .ogg, .mp3) found")
    out_dir = Path(out_dir)
    examples = []
    for i, path in enumerate(clips):
        ex_id = f"local_{i:03d}"
        wave, sr = load_audio(path, sr=MUSICGEN_SR, channels=1)
        save_audio(out_dir / f"{ex_id}.wav", wave, sr)
        sidecar = path.with_suffix(".txt")
        prompt = sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else None
        origin = path.relative_to(folder).as_posix()
        examples.append(
            Example(
                id=ex_id,
                task="T3",
                mixture=f"{ex_id}.wav",
                target=None,
                sr=sr,
                duration_s=round(wave.shape[-1] / sr, 4),
                song=prompt or origin,
                meta={
                    "source": "local",
                    "simulated": False,
                    "origin": origin,
                    "prompt": prompt,
                    "model": model,
                },
            )
        )
    return examples


# ---------------------------------------------------------------------------- simulated


def simulate_clips(
    out_dir: str | os.PathLike[str],
    rawstems: str | os.PathLike[str],
    splits: str | os.PathLike[str],
    clips_per_song: int = 1,
    max_clips: int | None = None,
    duration_s: float = 10.0,
    seed: int = 0,
    chain: Mapping[str, Any] | None = None,
    keep_clean: bool = True,
    progress: bool = True,
) -> list[Example]:
    """Simulated MusicGen samples: test-song excerpts through the MusicGen-like chain.

    Only songs in some target's test split are used (no song any model trains on). Each
    clip is a mono 32 kHz excerpt of a song's full mix, cropped where the song is active,
    peak-normalised and degraded by :func:`musicrestore.degrade.examples.make_musicgen_example`
    (seed 000 §3 artifacts). The clean excerpt is kept as ``clean/<id>.wav`` and named in
    ``meta["reference"]``; T3 is scored without it, but it lets a report check how much the
    non-intrusive metrics agree with an intrusive one.

    Args:
        out_dir: where the clips go (``sim_NNN.wav``).
        rawstems: RawStems-layout root (the embedded build by default).
        splits: its ``{Target}_{train,test}.txt`` folder.
        clips_per_song: excerpts drawn per test song.
        max_clips: cap on the number of clips (``None``: every test song).
        duration_s: excerpt length.
        seed: clip ``k`` is drawn with seed ``(seed, k)``.
        chain: overrides of :data:`musicrestore.degrade.chains.MUSICGEN_DEFAULTS`.
        keep_clean: write the clean excerpts under ``clean/``.
        progress: show a progress bar.
    """
    from tqdm import tqdm

    from ..degrade.examples import make_musicgen_example
    from .stems import is_stand_in, load_mix
    from .taxonomy import read_splits, scan, test_songs

    songs = {s.name: s for s in scan(rawstems)}
    held_out = sorted(test_songs(read_splits(splits)) & songs.keys())
    if not held_out:
        raise StageError(f"{splits}: no test-split song of {rawstems} found (run fetch_rawstems)")
    jobs = [(name, j) for name in held_out for j in range(clips_per_song)][:max_clips]
    out_dir = Path(out_dir)
    examples = []
    mix_cache: dict[str, np.ndarray] = {}
    for k, (name, j) in enumerate(tqdm(jobs, desc="simulated musicgen", disable=not progress)):
        if name not in mix_cache:
            mix_cache.clear()  # jobs are grouped by song: keep one mix in memory
            mix_cache[name] = load_mix(rawstems, songs[name], MUSICGEN_SR, channels=1)
        clip_seed = int(np.random.default_rng([seed, k]).integers(2**31))
        clean, degraded, effects, meta = make_musicgen_example(
            mix_cache[name], MUSICGEN_SR, clip_seed, chain, length_s=duration_s
        )
        ex_id = f"sim_{k:03d}"
        save_audio(out_dir / f"{ex_id}.wav", degraded, MUSICGEN_SR)
        if keep_clean:
            save_audio(out_dir / "clean" / f"{ex_id}.wav", clean, MUSICGEN_SR)
        examples.append(
            Example(
                id=ex_id,
                task="T3",
                mixture=f"{ex_id}.wav",
                target=None,
                sr=MUSICGEN_SR,
                duration_s=round(degraded.shape[-1] / MUSICGEN_SR, 4),
                song=name,
                effects=effects,
                seed=clip_seed,
                meta={
                    "source": "simulated",
                    "simulated": True,
                    "embedded": is_stand_in(rawstems),
                    "origin": f"{name} @ {meta['offset_s']:.2f} s",
                    "excerpt": j,
                    "reference": f"clean/{ex_id}.wav" if keep_clean else None,
                    "note": "NOT MusicGen output: a test-song excerpt through the "
                    "MusicGen-like artifact chain (seed 000 §3)",
                    **meta,
                },
            )
        )
    return examples


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
