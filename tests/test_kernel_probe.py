"""benchmarks/kernel_probe.py: a fingerprint of the kernels a machine runs, to compare two."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import musicrestore
from tests.helpers import REPO, load_script

probe = load_script("benchmarks/kernel_probe.py", "kernel_probe")


def _run(tmp_path: Path, name: str, *extra: str, env: dict[str, str] | None = None) -> dict:
    """The quick conv/NumPy fingerprint, in a fresh process (the caps are read at start)."""
    out = tmp_path / f"{name}.json"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "kernel_probe.py"),
        "--quick",
        "--out",
        str(out),
    ]
    subprocess.run(
        [*cmd, *extra], check=True, capture_output=True, env={**os.environ, **(env or {})}
    )
    return json.loads(out.read_text())


def test_the_fingerprint_is_the_same_twice_and_a_changed_probe_is_named(tmp_path: Path) -> None:
    first = probe.fingerprint(REPO / "params.yaml", quick=True, only="conv2d")
    again = probe.fingerprint(REPO / "params.yaml", quick=True, only="conv2d")
    assert first["hashes"] == again["hashes"]
    assert set(first["hashes"]) == {
        f"{op}.{kind}@{n}" for op in ("conv2d_3x3", "conv2d_strided") for kind in ("fwd", "bwd")
        for n in probe.THREADS
    }  # fmt: skip
    assert probe.compare(first, again) == []
    other = json.loads(json.dumps(first))
    other["hashes"]["conv2d_3x3.bwd@2"] = "0" * 16
    other["machine"]["versions"]["torch"] = "0.0"
    lines = probe.compare(first, other)
    assert len(lines) == 2
    assert lines[0].startswith("version torch: 0.0 there")
    assert lines[1].startswith("conv2d_3x3.bwd@2: 0000000000000000 there")
    path = tmp_path / "other.json"
    path.write_text(json.dumps(other))
    args = ["--quick", "--only", "conv2d", "--compare"]
    assert probe.main([*args, str(path)]) == 1
    path.write_text(json.dumps(first))
    assert probe.main([*args, str(path)]) == 0
    path.write_text("{}")
    assert probe.main([*args, str(path)]) == 1  # not a fingerprint: one line, exit 1


@pytest.mark.skipif(not musicrestore._has_avx2(), reason="the caps apply on x86-64 with AVX2 only")
def test_a_lower_instruction_set_shows_in_the_fingerprint(tmp_path: Path) -> None:
    """What the probe is for: another kernel choice gives other hashes. oneDNN made to take
    SSE4.1 instead of the capped AVX2 changes the convolutions, and only the ops oneDNN runs."""
    capped = _run(tmp_path, "capped", "--only", "conv2d_3x3")
    lower = _run(tmp_path, "lower", "--only", "conv2d_3x3", env={"ONEDNN_MAX_CPU_ISA": "SSE41"})
    assert capped["machine"]["caps"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert capped["hashes"]["conv2d_3x3.fwd@2"] != lower["hashes"]["conv2d_3x3.fwd@2"]
    assert probe.compare(capped, lower)
    numpy_only = _run(tmp_path, "np", "--only", "numpy", env={"ONEDNN_MAX_CPU_ISA": "SSE41"})
    assert numpy_only["hashes"] == {
        k: v for k, v in probe.fingerprint(REPO / "params.yaml", True, "numpy")["hashes"].items()
    }


def test_a_partial_run_compares_only_its_own_probes() -> None:
    full = probe.fingerprint(REPO / "params.yaml", quick=True, only="conv")
    part = probe.fingerprint(REPO / "params.yaml", quick=True, only="conv2d_3x3")
    assert probe.compare(part, full) == []  # the other file's extra probes are not differences
    assert probe.compare(full, part)  # but this run's probes missing there are


def test_a_network_built_from_another_configuration_is_named() -> None:
    """A network whose chosen preset differs is reported (its bytes cannot be compared);
    only the chosen configuration counts, so adding a preset keeps fingerprints comparable."""
    nets = probe.networks(REPO / "params.yaml")
    assert set(nets) == {f"model_{n}" for n in ("unet_mask", "wavenet", "uformer", "separator")}
    mine = {"machine": {"versions": {}}, "hashes": {}, "networks": nets}
    other = json.loads(json.dumps(mine))
    other["networks"]["model_uformer"] = "0" * 16
    assert probe.compare(mine, other) == [
        "model_uformer was built from another configuration there"
    ]


def test_time_gives_a_training_pass_of_every_network(capsys: pytest.CaptureFixture) -> None:
    """--time: what a kernel setting costs, per network (the MKL_CBWR switch was judged by it)."""
    assert probe.main(["--time", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == " ".join(f"{k}={os.environ.get(k)}" for k in sorted(musicrestore.CPU_CAPS))
    timed = {line.split()[0]: float(line.split()[1]) for line in lines[1:]}
    assert set(timed) == set(probe.networks(REPO / "params.yaml"))
    assert all(seconds > 0 for seconds in timed.values())
