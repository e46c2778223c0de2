"""Fingerprint of the numerical kernels this machine runs, to compare with another machine's.

    python benchmarks/kernel_probe.py                          # print the fingerprint
    python benchmarks/kernel_probe.py --out probe.json         # and keep it
    python benchmarks/kernel_probe.py --compare reports/kernel_probe/amd-epyc-avx512.json
    MKL_CBWR=AUTO python benchmarks/kernel_probe.py --time 5   # what a setting costs

``dvc repro`` followed by ``python -m musicrestore pipeline --compare-lock`` says after
45 minutes which *stages* another machine did not reproduce. This script says in seconds
(15 s on a 2-core EPYC) which *kernels* are the cause. Every kind of operation in the
pipeline's networks and DSP runs on seeded inputs. The torch ops run forward and backward:
- the convolutions of each shape the networks use (dilated, 1x1, strided, transposed);
- linear layers, batched matmul and attention;
- the norms and activations, an LSTM, and STFT/iSTFT;
- whole networks: the four trained models built from their ``params.yaml`` presets.
NumPy and SciPy run their own kernels: ufuncs, BLAS, FFT, sosfilt, and julius resampling
through :func:`musicrestore.core.audio.resample`.
Each probe runs at 1 thread (how the Dask workers restore) and at 2 threads (how the
training stages run on a 2-core machine), and its output bytes are hashed.
Two machines whose fingerprints agree run the same kernels for these ops. The ops whose
hashes differ are where to look (docs/method.md#reproducibility).

``--compare`` exits 1 when anything differs. It lists the probes whose bytes differ, the
library versions that differ, and any network built from another configuration (another
preset) there. The fingerprint records the CPU model and instruction-set flags,
the library versions and the kernel caps in force. It is not a DVC output: nothing
downstream reads it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import musicrestore  # before NumPy and torch (imported inside the probes): the kernel caps

ROOT = Path(__file__).resolve().parents[1]
THREADS = (1, 2)
FORMAT = "musicrestore.kernel_probe/1"


def _hash(arrays: list[Any]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(a.detach().contiguous().numpy().tobytes() if hasattr(a, "detach") else a.tobytes())
    return h.hexdigest()[:16]


@contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _flat(out: Any) -> list[Any]:
    """The tensors of a module's output (nested tuples, as an LSTM's)."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _fwd_bwd(module: Any, *inputs: Any) -> dict[str, str]:
    """Forward in inference mode, then forward + backward in train mode (loss: mean square of
    the outputs); hashes of the output and of every gradient."""
    import torch

    module.eval()
    with torch.inference_mode():
        outs = _flat(module(*inputs))
    module.train()
    leaves = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    module.zero_grad(set_to_none=True)
    sum(o.float().square().mean() for o in _flat(module(*leaves))).backward()
    grads = [x.grad for x in leaves if x.grad is not None]
    grads += [p.grad for p in module.parameters() if p.grad is not None]
    return {"fwd": _hash(outs), "bwd": _hash(grads)}


def _op(fn: Callable[..., Any]) -> Callable[[], Any]:
    """A builder of a parameterless module that runs ``fn`` (so :func:`_fwd_bwd` takes plain
    ops as it takes layers)."""
    import torch

    class Op(torch.nn.Module):
        def forward(self, *xs: Any) -> Any:
            return fn(*xs)

    return Op


def torch_probes(quick: bool) -> dict[str, Callable[[], dict[str, str]]]:
    """Name -> probe; each seeds its own module and input."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    t = 4000 if quick else 32000  # samples per example

    def seeded(build: Callable[[], Any], *shape_sets: tuple[int, ...]) -> Callable[[], dict]:
        def probe() -> dict[str, str]:
            gen = torch.Generator().manual_seed(0)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                module = build()
            inputs = [torch.randn(*s, generator=gen) * 0.1 for s in shape_sets]
            return _fwd_bwd(module, *inputs)

        return probe

    return {
        "conv1d_dilated": seeded(lambda: nn.Conv1d(32, 32, 2, dilation=8), (4, 32, t)),
        "conv1d_1x1": seeded(lambda: nn.Conv1d(32, 64, 1), (4, 32, t)),
        "conv1d_k8_s4": seeded(lambda: nn.Conv1d(2, 48, 8, stride=4), (2, 2, t)),
        "conv_transpose1d_k8_s4": seeded(
            lambda: nn.ConvTranspose1d(48, 2, 8, stride=4), (2, 48, t // 4)
        ),
        "conv2d_3x3": seeded(lambda: nn.Conv2d(16, 16, 3, padding=1), (2, 16, 128, t // 256)),
        "conv2d_strided": seeded(
            lambda: nn.Conv2d(16, 32, 3, stride=2, padding=1), (2, 16, 128, t // 256)
        ),
        "conv_transpose2d": seeded(
            lambda: nn.ConvTranspose2d(32, 16, 2, stride=2), (2, 32, 64, t // 512)
        ),
        "linear": seeded(lambda: nn.Linear(128, 256), (8, t // 64, 128)),
        "matmul_batched": seeded(_op(lambda a, b: a @ b), (2, 4, 256, 32), (2, 4, 32, 256)),
        "sdpa": seeded(
            _op(lambda q, k, v: F.scaled_dot_product_attention(q, k, v)),
            (2, 4, 256, 32),
            (2, 4, 256, 32),
            (2, 4, 256, 32),
        ),  # fmt: skip
        "layer_norm": seeded(lambda: nn.LayerNorm(128), (8, t // 64, 128)),
        "rms_norm": seeded(lambda: nn.RMSNorm(128), (8, t // 64, 128)),
        "group_norm": seeded(lambda: nn.GroupNorm(4, 32), (2, 32, t)),
        "batch_norm": seeded(lambda: nn.BatchNorm1d(32), (4, 32, t)),
        "gelu": seeded(lambda: nn.GELU(), (4, 32, t)),
        "glu": seeded(lambda: nn.GLU(dim=1), (4, 32, t)),
        "tanh_sigmoid": seeded(_op(lambda x: torch.tanh(x) * torch.sigmoid(x)), (4, 32, t)),
        "lstm": seeded(lambda: nn.LSTM(64, 64, batch_first=True), (2, t // 64, 64)),
        "stft_istft": seeded(
            _op(
                lambda x: torch.istft(
                    torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True),
                    1024,
                    256,
                    window=torch.hann_window(1024),
                    length=x.shape[-1],
                )
            ),
            (2, t),
        ),  # fmt: skip
    }


def networks(params_path: Path) -> dict[str, str]:
    """Network probe -> a hash of the configuration it is built from (the chosen preset's
    ``params_hash``, the separator's training block): two fingerprints compare a network's
    bytes only where these agree, so an added preset or a changed comment does not count."""
    from dataclasses import asdict

    from musicrestore.core.stage import load_params
    from musicrestore.train import recipe
    from musicrestore.train import separator as sep

    params = load_params(str(params_path))
    out = {
        f"model_{n}": recipe.spec_from_params(params, n).params_hash
        for n in ("unet_mask", "wavenet", "uformer")
    }
    config = sep.config_from_params((params.get("separate") or {}).get("train"))
    text = json.dumps(asdict(config), sort_keys=True, default=str)
    out["model_separator"] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return out


def network_builders(params_path: Path) -> dict[str, Callable[[int], tuple[Any, Any]]]:
    """``model_<name>`` -> a builder of (the network of ``params.yaml``'s preset, built as the
    training stages build it with its seeded init; seeded audio of ``batch`` 2-second clips)."""
    import torch

    from musicrestore.core.stage import load_params
    from musicrestore.train import recipe
    from musicrestore.train import separator as sep

    params = load_params(str(params_path))
    seconds = 2.0

    def audio(batch: int, channels: int, sr: int) -> Any:
        gen = torch.Generator().manual_seed(0)
        return torch.randn(batch, channels, int(sr * seconds), generator=gen) * 0.1

    def net(name: str) -> Callable[[int], tuple[Any, Any]]:
        def build(batch: int) -> tuple[Any, Any]:
            spec = recipe.spec_from_params(params, name)
            channels = int(spec.arch.get("audio_channels", 1))
            return recipe.build_net(spec), audio(batch, channels, spec.data.sr or 44100)

        return build

    def separator(batch: int) -> tuple[Any, Any]:
        config = sep.config_from_params((params.get("separate") or {}).get("train"))
        return sep.build_model(config), audio(batch, 2, config.sr)

    out = {f"model_{n}": net(n) for n in ("unet_mask", "wavenet", "uformer")}
    out["model_separator"] = separator
    return out


def model_probes(params_path: Path) -> dict[str, Callable[[], dict[str, str]]]:
    """The networks of ``params.yaml``'s presets (:func:`network_builders`), one clip each."""

    def probe(build: Callable[[int], tuple[Any, Any]]) -> Callable[[], dict[str, str]]:
        return lambda: _fwd_bwd(*build(1))

    return {name: probe(build) for name, build in network_builders(params_path).items()}


def time_networks(params_path: Path, passes: int, batch: int = 2) -> dict[str, float]:
    """Median seconds of a training pass (forward, mean-square loss, backward) of each
    network on ``batch`` 2-second clips, after one warm-up pass, at torch's thread count:
    what a kernel setting (e.g. ``MKL_CBWR``) costs in training."""
    import time

    out = {}
    for name, build in network_builders(params_path).items():
        module, x = build(batch)
        module.train()
        seconds = []
        for _ in range(passes + 1):
            begin = time.perf_counter()
            module.zero_grad(set_to_none=True)
            sum(o.float().square().mean() for o in _flat(module(x))).backward()
            seconds.append(time.perf_counter() - begin)
        out[name] = sorted(seconds[1:])[len(seconds[1:]) // 2]
    return out


def numpy_probes(quick: bool) -> dict[str, Callable[[], dict[str, str]]]:
    import numpy as np
    from scipy import fft, signal

    from musicrestore.core.audio import resample

    n = 4000 if quick else 44100

    def data() -> np.ndarray:
        return np.random.default_rng(0).standard_normal((2, n)).astype(np.float32) * 0.3

    def ufuncs() -> dict[str, str]:
        x = data()
        return {"fwd": _hash([np.tanh(x), np.exp(x), np.sin(x), np.log1p(np.abs(x))])}

    def blas() -> dict[str, str]:
        a = np.random.default_rng(0).standard_normal((513, 256))
        return {"fwd": _hash([a @ a.T, a.astype(np.float32).T @ a.astype(np.float32)])}

    def scipy_dsp() -> dict[str, str]:
        x = data().astype(np.float64)
        sos = signal.iirfilter(
            8, 2000.0, btype="lowpass", ftype="ellip", rp=1, rs=40, output="sos", fs=44100
        )
        return {"fwd": _hash([signal.sosfilt(sos, x, axis=-1), np.abs(fft.rfft(x, axis=-1))])}

    def julius() -> dict[str, str]:
        return {"fwd": _hash([resample(data(), 44100, 32000)])}

    return {
        "numpy_ufuncs": ufuncs,
        "blas_matmul": blas,
        "scipy_sosfilt_fft": scipy_dsp,
        "julius_resample": julius,
    }


def machine() -> dict[str, Any]:
    """CPU model, its SIMD flags, library versions and the caps in force."""
    import numpy
    import scipy
    import torch

    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "simd": sorted(f for f in flags if f.startswith(("avx", "fma", "sse4"))),
        "cpu_count": os.cpu_count(),
        "versions": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "scipy": scipy.__version__,
            "torch": torch.__version__,
        },
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "caps": {k: os.environ.get(k) for k in musicrestore.CPU_CAPS},
        "caps_effective": musicrestore.caps_effective(),
    }


def fingerprint(params_path: Path, quick: bool = False, only: str | None = None) -> dict[str, Any]:
    probes: dict[str, Callable[[], dict[str, str]]] = {}
    probes.update(torch_probes(quick))
    probes.update(numpy_probes(quick))
    if not quick:
        probes.update(model_probes(params_path))
    if only:
        probes = {k: v for k, v in probes.items() if only in k}
    hashes: dict[str, dict[str, str]] = {}
    for name, probe in probes.items():
        for n in THREADS:
            with _threads(n):
                for kind, digest in probe().items():
                    hashes[f"{name}.{kind}@{n}"] = digest
    return {
        "format": FORMAT,
        "quick": quick,
        "networks": {} if quick else networks(params_path),
        "machine": machine(),
        "hashes": hashes,
    }


def compare(mine: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Lines naming every probe of ``mine`` whose hash differs from (or is absent in)
    ``other``, the library versions that differ, and networks built from other configurations."""
    lines = []
    if mine.get("quick") != other.get("quick"):
        lines.append("the two fingerprints were taken with different --quick settings")
    there = other.get("networks", {})
    lines += [
        f"{name} was built from another configuration there"
        for name, digest in mine.get("networks", {}).items()
        if there.get(name, digest) != digest
    ]
    va, vb = mine["machine"]["versions"], other["machine"].get("versions", {})
    lines += [f"version {k}: {vb.get(k)} there, {v} here" for k, v in va.items() if vb.get(k) != v]
    a, b = mine["hashes"], other["hashes"]
    for key in sorted(a):  # probes only the other file has (this run took --only) are skipped
        if a[key] != b.get(key):
            lines.append(f"{key}: {b.get(key, 'absent')} there, {a[key]} here")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--out", type=Path, help="write the fingerprint (JSON) here")
    parser.add_argument("--compare", type=Path, help="another machine's fingerprint (JSON)")
    parser.add_argument("--quick", action="store_true", help="small inputs, no whole networks")
    parser.add_argument("--only", help="run only the probes whose name contains this")
    parser.add_argument(
        "--time", type=int, metavar="N", help="instead: median seconds of N training passes"
    )
    args = parser.parse_args(argv)
    if args.time:
        print(" ".join(f"{k}={os.environ.get(k)}" for k in sorted(musicrestore.CPU_CAPS)))
        for name, sec in time_networks(args.params, args.time).items():
            print(f"{name:<20} {sec:.3f} s")
        return 0
    other = None
    if args.compare is not None:
        try:
            other = json.loads(args.compare.read_text())
            if other.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
        except (OSError, ValueError) as exc:
            print(f"error: {args.compare}: {exc}", file=sys.stderr)
            return 1
    doc = fingerprint(args.params, quick=args.quick, only=args.only)
    m = doc["machine"]
    caps = "in force" if m["caps_effective"] else "NOT in force"
    print(f"{m['cpu']}: {m['torch_cpu_capability']} kernels in torch, kernel caps {caps}")
    for key, digest in doc["hashes"].items():
        print(f"{key:<40} {digest}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    if other is None:
        return 0
    lines = compare(doc, other)
    print(f"\nagainst {args.compare} ({other['machine'].get('cpu')}):")
    print("\n".join(lines) if lines else "every probe gives the same bytes")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
