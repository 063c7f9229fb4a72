"""The files a run keeps: one naming rule that never lets two runs share a file, names that fit
any file system, and a lock that refuses anything but its own lock file."""

import errno
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from namegen import runs
from namegen.checkpoint import load_checkpoint

from conftest import TINY


@pytest.fixture
def tiny(names_file):
    return names_file(TINY, "a.txt")


def train_tiny(cli, data, out, *more):
    return cli("train", *[arg for path in data for arg in ("--data", path)], "--out-dir", out, "--epochs", 1,
               "--hidden-size", 4, "--preview", 0, *more)


# ------------------------------------------------------------------------------------------- locks

@pytest.mark.parametrize("lock_of", ["train", "tune"])
def test_a_symlink_where_a_lock_goes_is_refused_and_its_target_is_untouched(cli, tiny, tmp_path, lock_of):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's own words\n")
    run = runs.RunFiles.for_data([tiny], out)
    lock = (run if lock_of == "train" else run.tuned()).lock
    lock.symlink_to(victim)
    args = ["tune", "--data", tiny, "--out-dir", out, "--budget", "2s"] if lock_of == "tune" else None
    result = cli(*args) if args else train_tiny(cli, [tiny], out)
    result.fails_in_one_line(1, "symbolic link")
    assert victim.read_text() == "the user's own words\n"
    assert lock.is_symlink() and not list(out.glob("*.npz"))


@pytest.mark.parametrize("make, said", [
    (lambda path: path.mkdir(), "is a directory"),
    (lambda path: os.mkfifo(path), "not a regular file"),
    (lambda path: path.write_text("notes I keep here\n"), "not a namegen lock file"),
    (lambda path: os.link(path.parent.parent / "victim.txt", path), "more than one name"),
])
def test_anything_but_a_lock_file_where_the_lock_goes_is_refused_in_one_line_and_kept(cli, tiny, tmp_path, make, said):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "victim.txt").write_text("12345\n")
    lock = runs.RunFiles.for_data([tiny], out).lock
    make(lock)
    before = lock.read_bytes() if lock.is_file() else None
    train_tiny(cli, [tiny], out).fails_in_one_line(1, said)
    assert (lock.read_bytes() if lock.is_file() else None) == before
    assert (tmp_path / "victim.txt").read_text() == "12345\n"


def test_a_lock_file_that_cannot_be_opened_is_one_line(cli, tiny, tmp_path, monkeypatch):
    """Read-only files and directories are simulated: the tests may run as root, whom permissions do not stop."""
    real_open = os.open

    def refuse_locks(path, flags, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("namegen.files.os.open", refuse_locks)
    result = train_tiny(cli, [tiny], tmp_path)
    result.fails_in_one_line(1, "Permission denied")
    assert "a.lock" in result.stderr


def test_a_lock_left_by_a_run_is_taken_over_and_holds_only_a_pid(cli, tiny, tmp_path):
    lock = runs.RunFiles.for_data([tiny], tmp_path).lock
    lock.write_text("999999999\n")  # what a killed run leaves
    assert train_tiny(cli, [tiny], tmp_path).code == 0
    assert lock.read_text().strip().isdigit()


# ------------------------------------------------------------------------------------------ naming

def test_a_data_file_named_like_a_tuned_run_never_shares_its_files(cli, tmp_path, names_file):
    a = names_file(TINY, "a.txt")
    a_tuned = names_file(TINY[::-1], "a~tuned.txt")
    dotted = names_file(TINY[:10], "a.tuned.txt")
    assert cli("tune", "--data", a, "--out-dir", tmp_path, "--budget", "1s").code == 0
    tuned = sorted(p.name for p in tmp_path.glob("*.npz"))
    before = {name: (tmp_path / name).read_bytes() for name in tuned}
    for data in (a_tuned, dotted):
        assert train_tiny(cli, [data], tmp_path).code == 0
    assert {name: (tmp_path / name).read_bytes() for name in tuned} == before


def test_several_lists_and_one_list_named_like_them_never_share_files(cli, tmp_path, names_file):
    a, b = names_file(TINY[:12], "a.txt"), names_file(TINY[12:], "b.txt")
    joined = names_file(TINY, "a+b.txt")
    assert train_tiny(cli, [a, b], tmp_path).code == 0
    styled = {p.name: p.read_bytes() for p in tmp_path.glob("*.npz")}
    assert train_tiny(cli, [joined], tmp_path).code == 0
    assert {name: (tmp_path / name).read_bytes() for name in styled} == styled
    assert len(list(tmp_path.glob("*.latest.npz"))) == 2


stems = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(stems, min_size=1, max_size=3), min_size=2, max_size=2, unique_by=tuple))
def test_the_naming_rule_is_injective(lists):
    """Different lists of data files, or the same lists trained and tuned, never name the same run."""
    first, second = ([Path(s + ".txt") for s in stems_] for stems_ in lists)
    if [p.stem for p in first] == [p.stem for p in second]:
        return  # two spellings of the same file names
    names = {runs.run_name(first), runs.run_name(second)}
    names |= {runs.tuned_name(name) for name in names}
    assert len(names) == 4


def test_runs_of_the_same_files_share_their_name():
    assert runs.run_name([Path("x/a.txt")]) == runs.run_name([Path("y/a.txt")]) == "a"
    assert runs.run_name([Path("a.txt"), Path("b.txt")]) == "a+b"


@pytest.mark.parametrize("stems", [["é" * 123], ["n" * 246], [f"list-{k:02d}-" + "x" * 40 for k in range(64)]])
def test_run_names_fit_any_file_system(cli, tmp_path, stems):
    paths = []
    for stem in stems:
        path = tmp_path / "data" / f"{stem}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(TINY), encoding="utf-8")
        paths.append(path)
    name = runs.run_name(paths)
    assert len(name.encode()) <= runs.MAX_RUN_NAME_BYTES
    result = train_tiny(cli, paths, tmp_path / "out")
    assert result.code == 0, result.stderr
    assert load_checkpoint(runs.RunFiles.for_data(paths, tmp_path / "out").latest).epoch == 1
    assert runs.run_name(paths[:-1] + [paths[-1].with_name("other.txt")]) != name  # the cut keeps names apart
