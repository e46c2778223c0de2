"""RawStems taxonomy, layout parsing and the per-group train/test split.

Source: Zang et al., "Music Source Restoration" (seed 004, §3). RawStems holds 578 songs of
unprocessed stems laid out as::

    <root>/<Artist>|<Song>/<Group>/<SubGroup>/*.{flac,wav,mp3}

with 8 first-level groups (plus ``MiscRoom`` room microphones) and 17 second-level codes.
Groups without sub-groups (``Synth``, ``Bass``, ``Misc``, ``MiscRoom``) keep their files one
level deeper under a folder of the same name or directly under the group; both parse.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.audio import AUDIO_SUFFIXES
from ..core.errors import LayoutError
from ..core.paths import UnsafePathError, plain_name

#: First-level group -> its second-level codes (seed 004, Table 1).
TAXONOMY: dict[str, tuple[str, ...]] = {
    "Voc": ("LV", "BV", "GV"),
    "Rhy": ("DK", "PERC"),
    "Gtr": ("AG", "EG"),
    "Kbs": ("PN", "EP", "MTR", "OR"),
    "Orch": ("STR", "BR", "WW"),
    "Synth": (),
    "Bass": (),
    "Misc": (),
    "MiscRoom": (),
}
GROUPS: tuple[str, ...] = ("Voc", "Rhy", "Gtr", "Kbs", "Orch", "Synth", "Bass", "Misc")
"""The 8 first-level groups; ``MiscRoom`` is parsed but is never a restoration target."""

#: Targets that get their own restoration model (docs/method.md#targets: 7 groups without Misc,
#: plus the two guitar sub-groups). A target is ``Group`` or ``Group_SubGroup``.
TARGETS: tuple[str, ...] = ("Voc", "Rhy", "Gtr", "Kbs", "Orch", "Synth", "Bass", "Gtr_AG", "Gtr_EG")

SONG_SEP = "|"


@dataclass(frozen=True)
class Stem:
    """One stem file. ``path`` is relative to the dataset root."""

    song: str  # "Artist|Song"
    group: str  # "Voc"
    subgroup: str  # "LV", or the group name for groups without sub-groups
    path: str

    @property
    def target(self) -> str:
        return self.group if self.subgroup == self.group else f"{self.group}_{self.subgroup}"


@dataclass
class Song:
    name: str  # "Artist|Song"
    stems: list[Stem] = field(default_factory=list)

    @property
    def groups(self) -> set[str]:
        return {s.group for s in self.stems}

    def stems_of(self, target: str) -> list[Stem]:
        """Stems that belong to ``target`` (``"Gtr"`` or ``"Gtr_EG"``)."""
        group, _, sub = target.partition("_")
        return [s for s in self.stems if s.group == group and (not sub or s.subgroup == sub)]


def parse_target(target: str) -> tuple[str, str | None]:
    """``"Gtr_EG"`` -> ``("Gtr", "EG")``; ``"Voc"`` -> ``("Voc", None)``; validates both."""
    group, _, sub = target.partition("_")
    if group not in TAXONOMY:
        raise LayoutError(f"unknown stem group {group!r}; expected one of {', '.join(TAXONOMY)}")
    if sub and sub not in TAXONOMY[group]:
        raise LayoutError(
            f"unknown sub-group {sub!r} of {group}; expected one of {TAXONOMY[group]}"
        )
    return group, sub or None


def stem_from_relpath(relpath: str | os.PathLike[str]) -> Stem:
    """Parse ``Artist|Song/Group/SubGroup/file.flac`` (or ``Artist|Song/Group/file.flac``)."""
    parts = Path(relpath).parts
    if len(parts) < 3:
        raise LayoutError(f"{relpath}: expected <Artist>|<Song>/<Group>/[<SubGroup>/]<file>")
    song, group = parts[0], parts[1]
    try:  # a folder listing's name: one component, but still a plain name (no control chars)
        plain_name(song, f"{relpath}: song folder")
    except UnsafePathError as exc:
        raise LayoutError(str(exc)) from None
    if SONG_SEP not in song:
        raise LayoutError(f"{relpath}: song folder {song!r} is not '<Artist>|<Song>'")
    if group not in TAXONOMY:
        raise LayoutError(
            f"{relpath}: unknown group {group!r}; expected one of {', '.join(TAXONOMY)}"
        )
    if len(parts) == 3:
        subgroup = group
    else:
        subgroup = parts[2]
        if TAXONOMY[group] and subgroup not in TAXONOMY[group]:
            raise LayoutError(f"{relpath}: unknown sub-group {subgroup!r} of {group}")
        if not TAXONOMY[group]:
            subgroup = group
    return Stem(song=song, group=group, subgroup=subgroup, path=Path(relpath).as_posix())


def scan(root: str | os.PathLike[str], strict: bool = False) -> list[Song]:
    """Walk a RawStems-layout folder and return its songs, sorted by name.

    Files that do not fit the layout are skipped, or raise :class:`LayoutError` when
    ``strict``. Folders and files starting with ``.`` are ignored (temporary downloads).
    """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"{root}: dataset folder does not exist")
    songs: dict[str, Song] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in AUDIO_SUFFIXES:
                continue
            rel = Path(dirpath, name).relative_to(root)
            try:
                stem = stem_from_relpath(rel)
            except LayoutError:
                if strict:
                    raise
                continue
            songs.setdefault(stem.song, Song(stem.song)).stems.append(stem)
    return [songs[k] for k in sorted(songs)]


def test_count(n_songs: int, min_songs: int = 10, fraction: float = 0.1) -> int:
    """Songs that go to test: ``min_songs`` or ``fraction`` of them, whichever is larger,
    never all of them (at least one song stays for training when there are two or more)."""
    if n_songs <= 1:
        return n_songs
    return min(max(min_songs, int(round(fraction * n_songs))), n_songs - 1)


def song_rank(song: str, seed: int) -> str:
    """Seeded, stable sort key of a song: a hash, so adding songs never reorders the others."""
    return hashlib.sha256(f"{seed}:{song}".encode()).hexdigest()


def split_group(
    songs: list[Song], target: str, seed: int, min_songs: int = 10, fraction: float = 0.1
) -> tuple[list[str], list[str]]:
    """Seeded per-target split (seed 004 §3): ``(train, test)`` song names, each sorted.

    Only songs that contain the target take part. Every target ranks songs by the same seeded
    hash and sends its first ``test_count`` songs to test, so the test sets of different
    groups overlap as much as they can: the union of test songs (used where a song-level
    split is needed, e.g. the separator and the MusicGen-like set) stays small, and no
    song trains one model while testing another with the same audio.
    """
    names = sorted((s.name for s in songs if s.stems_of(target)), key=lambda n: song_rank(n, seed))
    n_test = test_count(len(names), min_songs, fraction)
    return sorted(names[n_test:]), sorted(names[:n_test])


def split_songs(
    songs: list[Song],
    targets: tuple[str, ...] | list[str],
    seed: int,
    min_songs: int = 10,
    fraction: float = 0.1,
) -> dict[str, tuple[list[str], list[str]]]:
    """:func:`split_group` for every target that has at least one song."""
    out = {}
    for target in targets:
        train, test = split_group(songs, target, seed, min_songs, fraction)
        if train or test:
            out[target] = (train, test)
    return out


def test_songs(splits: dict[str, tuple[list[str], list[str]]]) -> set[str]:
    """Songs in any target's test list: held out from every song-level training set."""
    return {song for _, test in splits.values() for song in test}


def write_splits(
    folder: str | os.PathLike[str], splits: dict[str, tuple[list[str], list[str]]]
) -> None:
    """Write ``{Target}_{train,test}.txt`` (one ``Artist|Song`` a line) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for target, (train, test) in splits.items():
        for part, names in (("train", train), ("test", test)):
            (folder / f"{target}_{part}.txt").write_text("".join(f"{n}\n" for n in names))


def read_splits(folder: str | os.PathLike[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Read what :func:`write_splits` wrote: ``{target: (train_songs, test_songs)}``.

    Every song is a song folder's name (``Artist|Song``): a plain file name, checked here
    (:func:`musicrestore.core.paths.plain_name`) before any reader joins it to a path; one
    that is not is one line naming the file and line."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LayoutError(f"{folder}: splits folder does not exist (run the fetch_rawstems stage)")
    out: dict[str, tuple[list[str], list[str]]] = {}
    for path in sorted(folder.glob("*_train.txt")):
        target = path.name[: -len("_train.txt")]
        test_path = folder / f"{target}_test.txt"
        out[target] = (_read_songs(path), _read_songs(test_path) if test_path.exists() else [])
    return out


def _read_songs(path: Path) -> list[str]:
    """The non-blank lines of a splits file, each a plain song folder name."""
    lines = path.read_text().splitlines()
    return [plain_name(ln, f"{path}:{i}") for i, ln in enumerate(lines, 1) if ln.strip()]


# Names starting with "test" would be collected by pytest wherever a test module imports them.
test_count.__test__ = False  # type: ignore[attr-defined]
test_songs.__test__ = False  # type: ignore[attr-defined]
