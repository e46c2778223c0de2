from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from musicrestore.core.errors import StageError
from musicrestore.data.taxonomy import GROUPS, TARGETS, LayoutError
from musicrestore.separation import (
    SOURCES,
    DemucsSeparator,
    SeparationError,
    Separator,
    canonical_safetensors,
    export_repo,
    load_separator,
    target_source,
    tiny_htdemucs,
    tiny_separator,
)
from tests.conftest import tone

SR = 44100
# demucs' tiny random init warns about zero-element and single-value std layers.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # The CI machine has 2 cores shared by parallel jobs: one intra-op thread is 2-3x faster
    # than two fighting over them. Restored afterwards, so nothing leaks into other tests.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class LinearSplit(torch.nn.Module):
    """A stand-in network whose 'stems' are fixed fractions of its input: what the wrapper
    does around the network (normalising, chunking, shifting, resampling, channels) must
    then give back exactly those fractions of the input."""

    def __init__(self, fractions: list[float], segment: float = 0.5) -> None:
        super().__init__()
        self.register_buffer("w", torch.tensor(fractions).view(1, -1, 1, 1))
        self.sources = list(SOURCES)
        self.samplerate = SR
        self.audio_channels = 2
        self.segment = segment

    def forward(self, mix: torch.Tensor) -> torch.Tensor:  # (B, C, T) -> (B, S, C, T)
        return mix[:, None] * self.w


def test_separate_shapes_stereo_and_mono() -> None:
    sep = tiny_separator(0)
    assert isinstance(sep, Separator) and sep.sources == list(SOURCES) and sep.samplerate == SR
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((2, int(2.5 * SR)))).astype(np.float32)  # > 1 segment
    out = sep.separate(stereo, SR)
    assert list(out) == list(SOURCES)
    for stem in out.values():
        assert stem.shape == stereo.shape and stem.dtype == np.float32 and np.isfinite(stem).all()
    mono = tone(220.0, 1.3, 32000, channels=1)
    out = sep.separate(mono, 32000)
    assert all(stem.shape == mono.shape for stem in out.values())


def test_separate_wrapper_is_exact_for_a_linear_network() -> None:
    fractions = [0.1, 0.2, 0.3, 0.4]
    rng = np.random.default_rng(1)
    wave = (0.2 * rng.standard_normal((2, int(1.7 * SR)))).astype(np.float32)
    wave[1] *= 0.5
    sep = DemucsSeparator(LinearSplit(fractions), shifts=1, overlap=0.25)
    out = sep.separate(wave, SR)  # 1.7 s in 0.5-s chunks, one random shift
    for name, frac in zip(SOURCES, fractions, strict=True):
        np.testing.assert_allclose(out[name], frac * wave, atol=1e-5)
    np.testing.assert_allclose(sum(out.values()), wave, atol=1e-5)
    mono = wave[:1]
    out = sep.separate(mono, SR)  # upmixed to 2 channels and averaged back
    np.testing.assert_allclose(out["vocals"], 0.4 * mono, atol=1e-5)
    low = tone(440.0, 1.0, 16000, channels=2)  # resampled to 44.1 kHz and back
    out = sep.separate(low, 16000)
    assert out["other"].shape == low.shape
    core = slice(800, -800)  # the band-limited round trip is exact away from the edges
    np.testing.assert_allclose(out["other"][:, core], 0.3 * low[:, core], atol=2e-3)


def test_shifts_are_seeded_and_leave_global_random_alone() -> None:
    sep = DemucsSeparator(tiny_htdemucs(0), shifts=2, seed=3)
    wave = (0.1 * np.random.default_rng(2).standard_normal((2, SR))).astype(np.float32)
    random.seed(123)
    before = random.random()
    random.seed(123)
    first = sep.separate(wave, SR)
    assert random.random() == before  # the seeded shifts did not consume the global stream
    second = sep.separate(wave, SR)
    for name in SOURCES:
        assert np.array_equal(first[name], second[name])


def test_segment_longer_than_training_is_refused() -> None:
    with pytest.raises(ValueError, match="training segment"):
        DemucsSeparator(tiny_htdemucs(0, segment_s=2.0), segment_s=3.0)


def test_target_source_covers_every_target() -> None:
    expected = {"Voc": "vocals", "Rhy": "drums", "Bass": "bass"}
    for target in (*TARGETS, *GROUPS, "Voc_LV", "Rhy_PERC", "Kbs_PN"):
        group = target.partition("_")[0]
        assert target_source(target) == expected.get(group, "other"), target
    six = ["drums", "bass", "other", "vocals", "guitar", "piano"]
    assert target_source("Gtr_EG", six) == "guitar" and target_source("Kbs", six) == "piano"
    assert target_source("Synth", six) == "other"
    with pytest.raises(SeparationError, match="MiscRoom"):
        target_source("MiscRoom")
    with pytest.raises(LayoutError):
        target_source("Drums")


def test_exported_safetensors_bytes_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """The writer serialises its metadata map in a per-map random order; three keys give six
    orders, so eight exports agreeing by chance is a 1-in-280,000 event."""
    model = tiny_htdemucs(2)
    blobs = set()
    for i in range(8):
        export_repo(
            model, tmp_path / str(i), "sep", training_args={"steps": 1}, formats=("safetensors",)
        )
        (file,) = (tmp_path / str(i)).glob("*.safetensors")
        blobs.add(file.read_bytes())
    assert len(blobs) == 1


def test_canonical_safetensors_sorts_metadata_and_still_loads(tmp_path: Path) -> None:
    import struct

    from safetensors import safe_open
    from safetensors.torch import save

    blob = save({"b": torch.arange(3.0), "a": torch.ones(2, 2)}, metadata={"z": "1", "y": "2"})
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8 : 8 + size])
    header["__metadata__"] = {"z": "1", "y": "2"}  # force the unsorted order
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    shuffled = struct.pack("<Q", len(text)) + text + blob[8 + size :]
    canon = canonical_safetensors(shuffled)
    assert canon == canonical_safetensors(blob)
    size = struct.unpack("<Q", canon[:8])[0]
    assert size % 8 == 0
    assert list(json.loads(canon[8 : 8 + size])["__metadata__"]) == ["y", "z"]
    (tmp_path / "f.safetensors").write_bytes(canon)
    with safe_open(str(tmp_path / "f.safetensors"), framework="pt") as fh:
        assert fh.metadata() == {"y": "2", "z": "1"}
        torch.testing.assert_close(fh.get_tensor("b"), torch.arange(3.0))
        torch.testing.assert_close(fh.get_tensor("a"), torch.ones(2, 2))


def _reference_output(model: torch.nn.Module, wave: np.ndarray) -> dict[str, np.ndarray]:
    return DemucsSeparator(model, shifts=0).separate(wave, SR)


def test_local_repo_roundtrip_both_formats(tmp_path: Path) -> None:
    model = tiny_htdemucs(5)
    wave = tone(330.0, 1.0, SR)
    expected = _reference_output(model, wave)
    bag = export_repo(model, tmp_path / "repo", "mysep", training_args={"steps": 1})
    assert bag.name == "mysep.yaml"
    files = sorted(p.name for p in (tmp_path / "repo").iterdir())
    sig = files[0].split("-")[0].split(".")[0]
    assert len(files) == 3 and f"{sig}.safetensors" in files
    # Same model, same files: the signature is a content hash.
    again = export_repo(model, tmp_path / "again", "mysep", training_args={"steps": 1})
    assert again.read_text() == bag.read_text()

    sep = load_separator("mysep", repo=tmp_path / "repo", shifts=0)  # safetensors, no pickle
    got = sep.separate(wave, SR)
    for name in SOURCES:
        np.testing.assert_array_equal(got[name], expected[name])

    from demucs.pretrained import get_model

    (tmp_path / "repo" / f"{sig}.safetensors").unlink()  # leave demucs' own .th package
    direct = get_model("mysep", repo=tmp_path / "repo")
    via_th = load_separator("mysep", repo=tmp_path / "repo", shifts=0)
    assert type(direct).__name__ == "BagOfModels"
    np.testing.assert_array_equal(via_th.separate(wave, SR)["vocals"], expected["vocals"])


def test_hf_cache_layout_loads_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """demucs 4.1 resolves ``htdemucs`` to ``adefossez/HTDemucs`` files ``htdemucs.yaml`` and
    ``<sig>.safetensors``; an offline HF cache with that layout must be enough."""
    import huggingface_hub.constants as hf_constants

    commit = "a" * 40
    repo_dir = tmp_path / "hub" / "models--adefossez--HTDemucs"
    export_repo(
        tiny_htdemucs(7), repo_dir / "snapshots" / commit, "htdemucs", formats=("safetensors",)
    )
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    # huggingface_hub reads HF_HOME / HF_HUB_OFFLINE at import; patch what it looks up per call.
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    sep = load_separator("htdemucs", shifts=0)
    wave = tone(110.0, 0.5, SR)
    np.testing.assert_array_equal(
        sep.separate(wave, SR)["bass"], _reference_output(tiny_htdemucs(7), wave)["bass"]
    )
    with pytest.raises(SeparationError, match=r"'htdemucs_ft'.*adefossez/HTDemucs-ft.*trained"):
        load_separator("htdemucs_ft")


def test_missing_models_fail_with_one_line(tmp_path: Path) -> None:
    export_repo(tiny_htdemucs(0), tmp_path, "trained", formats=("safetensors",))
    with pytest.raises(SeparationError) as err:
        load_separator("htdemucs", repo=tmp_path)
    msg = str(err.value)
    assert "'htdemucs'" in msg and "trained.yaml" in msg and "\n" not in msg
    with pytest.raises(SeparationError, match="does not exist"):
        load_separator("trained", repo=tmp_path / "nowhere")
    with pytest.raises(SeparationError, match="needs repo"):
        load_separator("trained")
    (tmp_path / "bad.yaml").write_text("models: [deadbeef]\n")
    (tmp_path / "deadbeef.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SeparationError, match="deadbeef.safetensors"):
        load_separator("bad", repo=tmp_path)


# ---------------------------------------------------------- nothing the loaders read runs code


def _demucs_package(net: torch.nn.Module, **training_args: object) -> dict[str, object]:
    """A package as demucs' own training writes it (``demucs.states.serialize_model``:
    the model class, its constructor arguments, a half-precision state)."""
    from demucs.states import serialize_model
    from omegaconf import OmegaConf

    return serialize_model(net, OmegaConf.create(dict(training_args)))


def _one_line(err: pytest.ExceptionInfo[BaseException], *words: str) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    for word in words:
        assert word in msg, (word, msg)
    return msg


def test_a_demucs_package_loads_with_the_allowlist(tmp_path: Path) -> None:
    """What demucs' training writes (``save_with_checksum``, a ``Fraction`` segment as the
    pretrained HTDemucs have) loads with ``weights_only`` and the allowlist, as the same
    model demucs' own pickle loading gives."""
    from fractions import Fraction

    from demucs.states import load_model, save_with_checksum

    repo = tmp_path / "repo"
    repo.mkdir()
    net = tiny_htdemucs(3, segment_s=Fraction(2))
    save_with_checksum(_demucs_package(net, lr=3e-4), repo / "c0ffee00.th")
    (repo / "pkg.yaml").write_text("models: [c0ffee00]\n")
    (th,) = repo.glob("c0ffee00-*.th")
    reference = load_model(th)  # demucs' own torch.load(weights_only=False)
    for name in ("pkg", "c0ffee00"):  # the bag, and the bare signature
        loaded = load_separator(name, repo=repo, shifts=0).model
        model = loaded.models[0] if name == "pkg" else loaded
        assert type(model) is type(reference) and model.segment == Fraction(2)
        for key, value in reference.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key
    data = bytearray(th.read_bytes())
    data[-30] ^= 0xFF  # one byte changed: the checksum says so
    th.write_bytes(bytes(data))
    with pytest.raises(SeparationError) as err:
        load_separator("pkg", repo=repo)
    _one_line(err, th.name, "checksum")


@pytest.mark.parametrize("where", ["klass", "state", "bare pickle", "os.system"])
def test_a_hostile_package_runs_no_code(tmp_path: Path, where: str) -> None:
    """A ``.th`` in a ``--separator-repo`` folder whose pickle runs code when unpickled:
    refused in one line naming the file, and the code never runs."""
    import pickle

    from tests.helpers import MarkerPayload, SystemPayload

    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(MarkerPayload(marker)))  # the payload is live
    assert marker.exists()
    marker.unlink()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "evil.yaml").write_text("models: [e1]\n")
    package = _demucs_package(tiny_htdemucs(0))
    if where == "klass":
        torch.save({**package, "klass": MarkerPayload(marker)}, repo / "e1.th")
    elif where == "state":
        torch.save({**package, "state": {"w": MarkerPayload(marker)}}, repo / "e1.th")
    elif where == "bare pickle":
        (repo / "e1.th").write_bytes(pickle.dumps({"klass": MarkerPayload(marker)}))
    else:
        torch.save({**package, "kwargs": {"x": SystemPayload(marker)}}, repo / "e1.th")
    for name in ("evil", "e1"):
        with pytest.raises(SeparationError) as err:
            load_separator(name, repo=repo)
        _one_line(err, str(repo / "e1.th"), "refused", "--trust-pickle")
        assert not marker.exists()


def test_trust_pickle_loads_a_package_outside_the_allowlist(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A benign package that pickles something beyond the allowlist (a NumPy scalar in its
    training arguments): refused by default, loaded with ``trust_pickle`` and a warning."""
    repo = tmp_path / "repo"
    repo.mkdir()
    net = tiny_htdemucs(4)
    torch.save(_demucs_package(net) | {"training_args": {"lr": np.float64(3e-4)}}, repo / "n1.th")
    (repo / "np.yaml").write_text("models: [n1]\n")
    with pytest.raises(SeparationError) as err:
        load_separator("np", repo=repo)
    _one_line(err, "n1.th", "numpy", "--trust-pickle")
    with caplog.at_level("WARNING"):
        sep = load_separator("np", repo=repo, trust_pickle=True, shifts=0)
    assert any(
        "trust_pickle" in r.getMessage() and "n1.th" in r.getMessage() for r in caplog.records
    )
    for key, value in net.state_dict().items():
        torch.testing.assert_close(sep.model.models[0].state_dict()[key], value.half().float())


def test_the_hub_caches_go_through_the_same_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The legacy torch hub cache (``.th`` files of demucs < 4.1) is read by the same
    weights-only loader, and a bag in the Hugging Face cache may only name plain
    signatures."""
    import hashlib
    import pickle

    import demucs.pretrained
    import huggingface_hub.constants as hf_constants

    from tests.helpers import MarkerPayload

    marker = tmp_path / "marker"
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    # torch hub: a bag whose one file is a payload with a matching checksum in its name
    payload = pickle.dumps({"klass": MarkerPayload(marker)})
    check = hashlib.sha256(payload).hexdigest()[:8]
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "files.txt").write_text(f"root: x/\ne1-{check}.th\n")
    (remote / "oldbag.yaml").write_text("models: [e1]\n")
    monkeypatch.setattr(demucs.pretrained, "REMOTE_ROOT", remote)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torchhub"))
    (tmp_path / "torchhub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "torchhub" / "checkpoints" / f"e1-{check}.th").write_bytes(payload)
    with pytest.raises(SeparationError) as err:
        load_separator("oldbag")
    _one_line(err, f"e1-{check}.th", "refused")
    assert not marker.exists()
    # Hugging Face cache: a bag naming a signature outside its snapshot
    commit = "b" * 40
    repo_dir = tmp_path / "hub" / "models--adefossez--HTDemucs"
    (repo_dir / "snapshots" / commit).mkdir(parents=True)
    (repo_dir / "snapshots" / commit / "htdemucs.yaml").write_text("models: ['../../x']\n")
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    with pytest.raises(StageError) as err:
        load_separator("htdemucs")
    _one_line(err, "htdemucs.yaml", "models[0]", "'../../x'")


@pytest.mark.parametrize("name", ["../x", "a/../../x", ".hidden", "x\0y", "a\\b"])
def test_separator_names_are_plain_names(tmp_path: Path, name: str) -> None:
    """A model name or a bag's signature is a file name in the repo folder, never a path."""
    export_repo(tiny_htdemucs(0), tmp_path / "repo", "trained", formats=("safetensors",))
    (tmp_path / "x.yaml").write_text("models: [deadbeef]\n")  # what "../x" would reach
    with pytest.raises(StageError) as err:
        load_separator(name, repo=tmp_path / "repo")
    _one_line(err, "separator model")
    (tmp_path / "repo" / "bag.yaml").write_text(f"models: [{json.dumps(name)}]\n")
    with pytest.raises(StageError) as err:
        load_separator("bag", repo=tmp_path / "repo")
    _one_line(err, "bag.yaml", "models[0]")
