"""The one checker of names read from data (musicrestore.core.paths): every hostile name is
refused in one line, every ordinary one passes unchanged.

Property-based (hypothesis): each ``@given`` test draws :data:`EXAMPLES` examples per run,
derandomized (the same examples on every machine) and without an example database (only
hypothesis' own caches, in the git-ignored ``.hypothesis/``)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from musicrestore.core.paths import NAME_MAX, UnsafePathError, inside, plain_name

#: Examples hypothesis draws per ``@given`` test (5 of them: 2,000 per run in all, plus the
#: explicit ``@example`` cases).
EXAMPLES = 400
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

#: What real names are made of: ids (``msr_Voc_test_00012``), songs (``Artist|Song``), files.
ORDINARY_CHARS = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-|. ,()&'+=#@")
    + ["é", "ß", "音"]
)
ordinary_names = st.text(ORDINARY_CHARS, min_size=1, max_size=60).filter(
    lambda s: not s.startswith(".")
)
#: Parts a hostile path is built from: traversal, separators of other systems, control
#: characters, the home folder, and the symbolic links of the :func:`tree` fixture.
HOSTILE_PARTS = st.sampled_from(
    ["..", ".", "", "~", "\\", "..\\..", "a\0b", "\n", "C:", "link_out", "link_in", "inner"]
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``base/`` with ``inner/``, ``link_in -> inner`` and ``link_out -> ../outside``."""
    root = tmp_path_factory.mktemp("paths")
    base, outside = root / "base", root / "outside"
    (base / "inner").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.wav").write_bytes(b"x")
    (base / "link_in").symlink_to(base / "inner")
    (base / "link_out").symlink_to(outside)
    (base / "file_out.wav").symlink_to(outside / "secret.wav")
    return SimpleNamespace(base=base, outside=outside)


def _within(path: Path, folder: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real != top and os.path.commonpath([real, top]) == top


def _refused(fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(UnsafePathError) as exc:
        fn(*args)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("where: "), msg
    return msg


# --------------------------------------------------------------------------- plain_name


@SETTINGS
@given(ordinary_names)
def test_ordinary_names_pass_unchanged(name: str) -> None:
    assert plain_name(name, "where") == name
    assert plain_name(name, "where", room=len(".wav")) == name


@SETTINGS
@given(
    st.one_of(
        st.sampled_from(["", ".", ".."]),
        st.tuples(st.text(max_size=20), st.sampled_from("/\\"), st.text(max_size=20)).map("".join),
        st.tuples(st.text(max_size=20), st.characters(max_codepoint=31), st.text(max_size=20)).map(
            "".join
        ),
        st.text(max_size=20).map(lambda s: "." + s),  # hidden
        st.text(ORDINARY_CHARS, min_size=NAME_MAX + 1, max_size=NAME_MAX + 300),  # too long
        st.sampled_from(["/etc/passwd", "../escaped", "a/../../b", "C:\\x", "\ud800"]),
        st.integers() | st.none() | st.lists(st.text(max_size=3), max_size=2),  # not a name
    )
)
@example("x" * (NAME_MAX - 3))  # fits alone, not with ".wav"
def test_hostile_names_are_refused_in_one_line(name: object) -> None:
    _refused(plain_name, name, "where", len(".wav"))


# ------------------------------------------------------------------------------- inside


@SETTINGS
@given(st.lists(ordinary_names, min_size=1, max_size=4).map("/".join))
def test_ordinary_relative_paths_pass_unchanged(tree: SimpleNamespace, rel: str) -> None:
    assert inside(tree.base, rel, "where") == tree.base / rel
    assert inside(tree.base, f"inner/{rel}", "where") == tree.base / "inner" / rel
    assert inside(tree.base, f"link_in/{rel}", "where") == tree.base / "link_in" / rel


@SETTINGS
@given(st.lists(st.one_of(HOSTILE_PARTS, ordinary_names), min_size=1, max_size=6).map("/".join))
@example("..")
@example("a/../../b")
@example("link_out/secret.wav")
@example("file_out.wav")
@example("inner/../link_out")
@example("link_in/../../outside/secret.wav")
def test_a_path_that_is_accepted_stays_inside(tree: SimpleNamespace, rel: str) -> None:
    """Whatever the parts, an accepted path resolves below the folder (never to it, never
    outside it), holds no NUL, backslash or control character, and is what was joined."""
    try:
        got = inside(tree.base, rel, "where")
    except UnsafePathError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("where: ")
        return
    assert got == tree.base / rel
    assert _within(got, tree.base), rel
    assert not any(c in rel for c in "\\\0\n") and not os.path.isabs(rel)


@SETTINGS
@given(
    st.one_of(
        # lexically out: more ".." than folders before them
        st.lists(ordinary_names, max_size=3).map(lambda p: "/".join([*p, *[".."] * (len(p) + 1)])),
        st.lists(ordinary_names, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)),
        st.lists(ordinary_names, min_size=1, max_size=3).map(lambda p: "link_out/" + "/".join(p)),
        st.lists(ordinary_names, max_size=2).map(
            lambda p: "/".join(["inner", *p, *[".."] * (len(p) + 2)])
        ),
        st.tuples(ordinary_names, st.sampled_from("\\\0\n\r\x7f"), ordinary_names).map("".join),
        st.text(ORDINARY_CHARS, min_size=NAME_MAX + 1, max_size=NAME_MAX + 100).map(
            lambda s: "a" + s
        ),
        st.sampled_from(["", ".", "./", "inner/..", "link_in/..", "file_out.wav", "link_out"]),
    )
)
def test_paths_that_leave_the_folder_are_refused(tree: SimpleNamespace, rel: str) -> None:
    _refused(inside, tree.base, rel, "where")


def test_messages_name_where_the_name_was_read(tree: SimpleNamespace) -> None:
    msg = _refused(plain_name, "../escaped", "where")
    assert "'../escaped'" in msg and "plain file name" in msg
    msg = _refused(inside, tree.base, "link_out/secret.wav", "where")
    assert "symbolic link" in msg and str(tree.outside / "secret.wav") in msg
    msg = _refused(inside, tree.base, "x" * 10_000, "where")
    assert len(msg) < 300  # a huge name is quoted cut short


# ------------------------------------------------------------------ entry points, end to end
#
# Each reads a name from data that once became a path unchecked; each now stops with one
# line naming where it read it, before anything is opened or written.

REPO = Path(__file__).parents[1]
HOSTILE_EXAMPLES = [
    ({"id": "../escaped"}, "id: '../escaped'"),
    ({"id": "/tmp/abs"}, "id: '/tmp/abs'"),
    ({"id": ".hidden"}, "is hidden"),
    ({"mixture": "../outside.wav"}, "mixture: '../outside.wav' leaves"),
    ({"mixture": "/etc/passwd"}, "is absolute"),
    ({"target": "link/secret.wav"}, "through a symbolic link"),
    ({"meta": {"background": "../../bg.wav"}}, "meta.background"),
]


def hostile_dataset(folder: Path, override: dict[str, object]) -> Path:
    """A one-example dataset whose manifest line has ``override`` (a 0.25-s 16-kHz mixture),
    beside a file outside it and a symbolic link out of it."""
    import json

    import numpy as np

    from musicrestore.core.audio import save_audio

    wave = 0.1 * np.sin(np.arange(4000, dtype=np.float32) / 7)[None]
    save_audio(folder / "a.wav", wave, 16000)
    save_audio(folder.parent / "outside.wav", wave, 16000)
    (folder.parent / "secret").mkdir(exist_ok=True)
    save_audio(folder.parent / "secret" / "secret.wav", wave, 16000)
    (folder / "link").symlink_to(folder.parent / "secret")
    line = {
        "id": "ok",
        "task": "T1",
        "mixture": "a.wav",
        "target": None,
        "sr": 16000,
        "duration_s": 0.25,
        **override,
    }
    (folder / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    return folder


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def _load_script(name: str):  # type: ignore[no-untyped-def]
    from tests.helpers import load_script

    return load_script(f"stages/{name}.py", f"stage_{name}")


@pytest.mark.parametrize("override,words", HOSTILE_EXAMPLES, ids=lambda v: str(v)[:24])
def test_every_manifest_reader_refuses_a_hostile_manifest(
    tmp_path: Path, override: dict[str, object], words: str
) -> None:
    """read_manifest checks once; the restorer, the scorer, the report and the training
    data all read through it."""
    from musicrestore.core.errors import ManifestError
    from musicrestore.data.dataset import read_manifest
    from musicrestore.evaluation.evaluate import EvalConfig, score_testset
    from musicrestore.train.data import data_hash
    from musicrestore.variants import build_context
    from musicrestore.variants.restore import restore_dataset

    ds = hostile_dataset(tmp_path / "ds", override)
    before = _files(tmp_path)
    calls = [
        lambda: read_manifest(ds),
        lambda: restore_dataset(
            "identity", ds, tmp_path / "out", build_context("identity"), progress=False
        ),
        lambda: score_testset(ds, tmp_path, EvalConfig(), progress=False),
        lambda: data_hash([ds]),
    ]
    for call in calls:
        with pytest.raises(ManifestError) as exc:
            call()
        msg = str(exc.value)
        assert "\n" not in msg and f"{ds / 'manifest.jsonl'}:1: " in msg and words in msg, msg
    assert _files(tmp_path) == before  # nothing written, inside OUT or outside it


def test_the_restore_stage_refuses_hostile_manifests_and_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stage = _load_script("restore")
    monkeypatch.chdir(tmp_path)
    ds = hostile_dataset(tmp_path / "ds", {"id": "../escaped"})
    (tmp_path / "params.yaml").write_text("{}\n")
    before = _files(tmp_path)
    for testset, words in [
        (f"t={ds}", "manifest.jsonl:1: id: '../escaped'"),
        (f"../up={ds}", "--testset NAME: '../up'"),
    ]:
        argv = ["--variant", "identity", "--testset", testset, "--out", "out", "--no-progress"]
        with pytest.raises(SystemExit) as exc:
            stage.main(argv)
        assert exc.value.code == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err, err
    assert _files(tmp_path) == before


def test_splits_files_hold_plain_song_names(tmp_path: Path) -> None:
    from musicrestore.data.taxonomy import read_splits

    (tmp_path / "Voc_train.txt").write_text("A|Song\n../../etc|x\n")
    (tmp_path / "Voc_test.txt").write_text("B|Song\n")
    with pytest.raises(UnsafePathError) as exc:
        read_splits(tmp_path)
    assert str(exc.value).startswith(f"{tmp_path / 'Voc_train.txt'}:2: '../../etc|x' ")
    (tmp_path / "Voc_train.txt").write_text("A|Song\n")
    assert read_splits(tmp_path) == {"Voc": (["A|Song"], ["B|Song"])}


def test_msr_targets_are_plain_names(tmp_path: Path) -> None:
    from musicrestore.data.testsets import resolve

    assert resolve([], str(tmp_path), ["Voc"]) == {"msr_Voc": tmp_path / "Voc"}
    for bad in ("../Voc", "/abs", ""):
        with pytest.raises(UnsafePathError, match="msr.targets"):
            resolve([], str(tmp_path), [bad])


def test_the_app_skips_hostile_clips_and_refuses_model_paths(tmp_path: Path) -> None:
    """A test set whose manifest is hostile is left out of the page's clips; a MusicGen model
    a request names is a Hugging Face id or a folder inside the project."""
    from musicrestore.app.project import Project
    from musicrestore.app.sources import requested_model

    hostile_dataset(tmp_path / "data" / "musicgen_like" / "test", {"id": "../escaped"})
    project = Project(tmp_path, {})
    assert project.clips() == []
    (tmp_path / "models" / "mg").mkdir(parents=True)
    assert requested_model(project, "facebook/musicgen-small", "x") == "facebook/musicgen-small"
    assert requested_model(project, "models/mg", "x") == str(project.root / "models" / "mg")
    full = str(project.root / "models" / "mg")
    assert requested_model(project, full, "x") == full
    assert requested_model(project, "/anywhere/configured", "/anywhere/configured")
    for bad in ("/etc", "~/models", "../elsewhere", "models/../../x", "models/mg/../../.."):
        with pytest.raises(UnsafePathError) as exc:
            requested_model(project, bad, "x")
        assert "\n" not in str(exc.value) and "MusicGen model" in str(exc.value)


def test_a_spooled_record_names_only_its_own_files(tmp_path: Path) -> None:
    """The flusher removes ``<record_id>.files``: a record whose id is a path is refused
    before MLflow is even asked."""
    from musicrestore.tracking.store import send

    (tmp_path / "victim").mkdir()
    spool = tmp_path / "spool"
    spool.mkdir()
    for record_id in ("../victim", "other-1"):
        with pytest.raises(UnsafePathError):
            send(spool / "123-4.json", {"record_id": record_id}, "file:///nowhere")
    assert (tmp_path / "victim").is_dir()


def test_report_paths_take_plain_ids(tmp_path: Path) -> None:
    from musicrestore.report.collect import Evaluation, restored_file

    ev = Evaluation("v", "t", {}, [])
    assert restored_file(ev, "clip_01", tmp_path) == tmp_path / "v" / "t" / "clip_01.wav"
    with pytest.raises(UnsafePathError):
        restored_file(ev, "../../x", tmp_path)
