"""Real-time factor of the community RoFormers and of the winner's 3-step chain on CPU
(docs/method.md#pretrained-roformers), offline, with random weights of the published sizes.

    python benchmarks/roformer_rtf.py                 # 20 s of 44.1 kHz stereo, one thread
    python benchmarks/roformer_rtf.py --seconds 60 --threads 2
    python benchmarks/roformer_rtf.py --smoke         # tiny models, 1 s: checks it runs

The models are written to a temporary ``pretrained/`` in ZFTurbo's layout (``.ckpt`` +
YAML) and loaded through the same loader as the real files, so the timed path is the
variant's: a BS-RoFormer separator at viperx's size (dim 512, depth 12, 62 bands), then two
Mel-RoFormers at the published vocal size (dim 384, depth ``--mel-depth``, 60 mel bands,
stereo, 44.1 kHz, STFT 2048/441, 8-s windows). The speed of a random-weight model is the
speed of the trained one (same shapes, same operations). Each step is timed alone
(:meth:`RoformerModel.stem`), then the chain through ``roformer_chain`` and the file runner
(:func:`musicrestore.variants.restore.restore_array`). RTF = compute time / audio time.
Run it alone on the machine: timings of concurrent jobs mean nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from musicrestore.separation import roformer as rf
from musicrestore.variants import build_context
from musicrestore.variants.restore import restore_array

#: viperx's ``freqs_per_bands`` (62 bands over 1025 bins).
BS_BANDS = [2] * 24 + [4] * 12 + [12] * 8 + [24] * 8 + [48] * 8 + [128, 129]


def bs_yaml(dim: int, depth: int, n_fft: int, bands: Sequence[int], sr: int, chunk: int) -> str:
    return f"""audio: {{chunk_size: {chunk}, sample_rate: {sr}}}
model:
  dim: {dim}
  depth: {depth}
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  linear_transformer_depth: 0
  freqs_per_bands: !!python/tuple {list(bands)}
  dim_head: 64
  heads: 8
  attn_dropout: 0.1
  ff_dropout: 0.1
  flash_attn: true
  dim_freqs_in: {n_fft // 2 + 1}
  stft_n_fft: {n_fft}
  stft_hop_length: {n_fft * 441 // 2048}
  stft_win_length: {n_fft}
  stft_normalized: false
  mask_estimator_depth: 2
training: {{instruments: [vocals, other], target_instrument: vocals}}
"""


def mel_yaml(
    dim: int, depth: int, n_fft: int, bands: int, sr: int, chunk: int, t: str, o: str
) -> str:
    return f"""audio: {{chunk_size: {chunk}, sample_rate: {sr}}}
model:
  dim: {dim}
  depth: {depth}
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  num_bands: {bands}
  dim_head: 64
  heads: 8
  attn_dropout: 0
  ff_dropout: 0
  flash_attn: True
  dim_freqs_in: {n_fft // 2 + 1}
  sample_rate: {sr}
  stft_n_fft: {n_fft}
  stft_hop_length: {n_fft * 441 // 2048}
  stft_win_length: {n_fft}
  stft_normalized: False
  mask_estimator_depth: 2
training: {{instruments: [{t}, {o}], target_instrument: {t}}}
"""


def write(folder: Path, name: str, text: str) -> dict[str, str]:
    (folder / f"{name}.yaml").write_text(text)
    net = rf.build_model(rf.read_config(folder / f"{name}.yaml"))
    torch.save({"state_dict": net.state_dict()}, folder / f"{name}.ckpt")
    return {"file": f"{name}.ckpt", "config": f"{name}.yaml"}


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="audio length (s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--mel-depth", type=int, default=12, help="Mel-RoFormer depth (KJ's: 6)")
    ap.add_argument("--smoke", action="store_true", help="tiny models and 1 s: a run check")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sr = 44100
    if args.smoke:
        seconds, n_fft, chunk = 1.0, 256, sr // 2
        bs = bs_yaml(16, 1, n_fft, [64, 65], sr, chunk)
        mel = [
            mel_yaml(16, 1, n_fft, 8, sr, chunk, t, o)
            for t, o in (("noreverb", "reverb"), ("dry", "other"))
        ]
    else:
        seconds, n_fft, chunk = args.seconds, 2048, 352800
        bs = bs_yaml(512, 12, n_fft, BS_BANDS, sr, chunk)
        mel = [
            mel_yaml(384, args.mel_depth, n_fft, 60, sr, chunk, t, o)
            for t, o in (("noreverb", "reverb"), ("dry", "other"))
        ]
    x = (0.1 * np.random.default_rng(0).standard_normal((2, int(seconds * sr)))).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        chain = [
            {**write(folder, "separate", bs), "stem": "vocals"},
            {**write(folder, "dereverb", mel[0]), "stem": "noreverb"},
            {**write(folder, "denoise", mel[1]), "stem": "dry"},
        ]
        print(f"{seconds:g} s of 44.1 kHz stereo, {torch.get_num_threads()} thread(s)")
        y = x
        for step in chain:
            model = rf.load_roformer(folder / step["file"], folder / step["config"])
            params = sum(p.numel() for p in model.net.parameters()) / 1e6
            t0 = time.perf_counter()
            y = model.stem(y, sr, step["stem"], context_s=1.0)
            rtf = (time.perf_counter() - t0) / seconds
            print(
                f"  {step['file']:<14} {model.config.kind.upper():>3}-RoFormer {params:6.1f} M params  RTF {rtf:7.3f}"
            )
        params_block = {"roformer_chain": {"dir": str(folder), "default": chain}}
        ctx = build_context("roformer_chain", params_block, target="Voc")
        restore_array("roformer_chain", x[:, : sr // 10], sr, ctx)  # load the models first
        t0 = time.perf_counter()
        restore_array("roformer_chain", x, sr, ctx)
        print(
            f"  chain (roformer_chain, file runner)            RTF {(time.perf_counter() - t0) / seconds:7.3f}"
        )


if __name__ == "__main__":
    main()
