"""The runs namegen remembers: which model a command uses when none is named, and a registry that
no damaged file, crowd of runs or unwritable directory can turn into a traceback or a wrong answer."""

import json
import multiprocessing
import os
import time
import tracemalloc
from pathlib import Path

import pytest

from namegen import recent
from namegen.recent import default_checkpoint, record_run, state_directory, state_file

from conftest import TINY


@pytest.fixture
def state(tmp_path, monkeypatch):
    """A state directory of this test's own, and a working directory with a names file."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "names.txt").write_text("\n".join(TINY))
    monkeypatch.chdir(work)
    return work


def write_registry(runs):
    state_file().parent.mkdir(parents=True, exist_ok=True)
    state_file().write_text(json.dumps({"runs": runs}))


def train(cli, *more):
    return cli("train", "--data", "names.txt", "--epochs", 2, "--hidden-size", 4, "--preview", 0, *more)


@pytest.mark.parametrize("record", [{"checkpoint": "/x/a.latest.npz", "started": "2024-01-01"},
                                    {"checkpoint": "", "started": 1.0}, {"checkpoint": "/", "started": 1.0},
                                    {"checkpoint": 7, "started": 1.0}, {"started": float("nan")}, "text", None,
                                    {"checkpoint": "relative.npz", "started": 1.0},
                                    {"checkpoint": "/x/a.npz", "started": True}])
def test_a_bad_record_is_skipped_by_every_command(cli, state, record):
    write_registry({str(state): [record], "/elsewhere": record})
    assert "dinosaur model shipped with namegen" in cli("sample", "-n", 1).stderr
    assert train(cli).code == 0
    assert "checkpoints/names.best.npz" in cli("sample", "-n", 1).stderr


def test_a_registry_too_large_to_be_ours_is_read_as_empty_in_bounded_memory(state):
    state_file().parent.mkdir(parents=True, exist_ok=True)
    with open(state_file(), "w") as f:
        f.write('{"runs": {"' + "x" * (recent.MAX_BYTES + 10) + '": []}}')
    tracemalloc.start()
    choice = default_checkpoint()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert "no run started here" in choice.which and peak < 4 * recent.MAX_BYTES


def _record_from(directory):
    os.chdir(directory)
    return record_run(Path(directory) / "run.latest.npz")


def test_runs_started_at_once_in_many_directories_are_all_recorded(state, tmp_path):
    directories = [tmp_path / f"d{k}" for k in range(16)]
    for directory in directories:
        directory.mkdir()
    with multiprocessing.get_context("fork").Pool(16) as pool:
        assert pool.map(_record_from, directories) == [None] * 16
    table = recent._read()
    assert all(str(directory.resolve()) in table for directory in directories)


def test_a_run_that_cannot_be_recorded_says_so_in_one_line_and_trains(cli, state, tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the state directory would go")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    ran = train(cli)
    assert ran.code == 0 and (state / "checkpoints" / "names.best.npz").exists()
    notes = [line for line in ran.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "could not be recorded" in notes[0] and "-c" in notes[0]


def test_a_relative_state_home_is_ignored_as_the_xdg_specification_says(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert state_directory() == tmp_path / ".local" / "state" / "namegen"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "abs"))
    assert state_directory() == tmp_path / "abs" / "namegen"


def test_a_recorded_run_whose_files_were_deleted_is_named_as_such(cli, state):
    assert train(cli).code == 0
    for path in (state / "checkpoints").glob("*.npz"):
        path.unlink()
    said = cli("sample", "-n", 1).stderr
    assert "checkpoints/names.latest.npz, which is no longer there" in said
    assert "no run started here" not in said


def test_an_earlier_better_model_on_the_same_names_stays_the_default_and_the_line_says_why(cli, state):
    assert train(cli, "--learning-rate", 0.05, "--epochs", 4).code == 0
    good = state / "checkpoints" / "names.best.npz"
    assert train(cli, "--learning-rate", 0.0001, "--out-dir", "worse").code == 0
    said = cli("sample", "-n", 1).stderr
    assert said.startswith("using checkpoints/names.best.npz: an earlier run here is better on the same validation")
    assert "worse/names.best.npz" in said and len(said.splitlines()) == 1
    assert train(cli, "--learning-rate", 0.0001, "--out-dir", "other", "--seed", 7).code == 0
    assert "using other/names.best.npz: the best model of the last run started here\n" == cli("sample", "-n", 1).stderr
    assert good.exists()


def test_a_run_on_every_name_is_the_default_not_the_best_an_earlier_run_left_beside_it(cli, state):
    assert train(cli).code == 0
    earlier = (state / "checkpoints" / "names.best.npz").read_bytes()
    assert train(cli, "--val-fraction", 0).code == 0  # the same files: it saves names.latest.npz only
    assert (state / "checkpoints" / "names.best.npz").read_bytes() == earlier  # the earlier best stays
    said = cli("sample", "-n", 1).stderr
    assert said == "using checkpoints/names.latest.npz: the latest model of the last run started here\n"


def test_registry_of_an_earlier_namegen_is_read(cli, state):
    assert train(cli).code == 0
    latest = str(state / "checkpoints" / "names.latest.npz")
    write_registry({str(state): {"checkpoint": latest, "started": time.time()}})  # one record per directory, 0.1
    assert "checkpoints/names.best.npz: the best model" in cli("sample", "-n", 1).stderr


def test_tune_records_its_model_beside_a_bad_record(cli, state):
    write_registry({str(state): [{"checkpoint": "/x/a.latest.npz", "started": "2024-01-01"}]})
    ran = cli("tune", "--data", "names.txt", "--budget", "1s", "--engine", "numpy")
    assert ran.code == 0, ran.stderr
    assert "names~tuned.best.npz" in cli("sample", "-n", 1).stderr
