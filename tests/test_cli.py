"""The command line: what each command prints (text and --json), and how each class of error
reaches the user: one line on stderr and an exit code; a bug, a traceback."""

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint
from namegen.evaluation import Evaluation

from conftest import TINY, numba_cache_files


@pytest.fixture
def few_file(names_file, dinos):
    return names_file([n.capitalize() for n in dinos.names[::10]], "few.txt")


def test_train_writes_checkpoints_and_reports_each_epoch(cli, few_file, tmp_path):
    result = cli("train", "--data", few_file, "--epochs", 2, "--hidden-size", 8, "--out-dir", tmp_path / "ck")
    assert result.code == 0, result.stderr
    assert "epoch   1/2" in result.stdout and "epoch   2/2" in result.stdout and "val" in result.stdout
    assert "done: 2 epochs" in result.stdout
    state = load_checkpoint(tmp_path / "ck" / "few.latest.npz")
    assert state.epoch == 2 and state.config.hidden_size == 8
    assert (tmp_path / "ck" / "few.best.npz").exists()


def test_train_json_and_resume(cli, few_file, tmp_path):
    out = tmp_path / "ck"
    first = cli("train", "--data", few_file, "--epochs", 1, "--hidden-size", 8, "--out-dir", out, "--json")
    assert first.code == 0, first.stderr
    summary = first.json()
    assert summary["epochs"] == 1 and len(summary["history"]) == 1 and summary["reason"] == "finished"
    again = cli("train", "--resume", out / "few.latest.npz", "--epochs", 2, "--json")
    assert again.code == 0, again.stderr
    assert again.json()["epochs"] == 2


def test_an_option_left_out_on_resume_keeps_the_checkpoints_value_even_where_it_is_no_default(cli, few_file, tmp_path):
    cli("train", "--data", few_file, "--epochs", 1, "--hidden-size", 8, "--lr-schedule", "constant", "--out-dir", tmp_path)
    assert cli("train", "--resume", tmp_path / "few.latest.npz", "--epochs", 2).code == 0
    assert load_checkpoint(tmp_path / "few.latest.npz").config.lr_schedule == "constant"


def test_a_training_error_is_one_line_and_changes_nothing(cli, few_file, tmp_path):
    cli("train", "--data", few_file, "--epochs", 1, "--hidden-size", 8, "--out-dir", tmp_path)
    before = (tmp_path / "few.latest.npz").read_bytes()
    cli("train", "--resume", tmp_path / "few.latest.npz", "--epochs", 3, "--hidden-size", 9).fails_in_one_line(1, "hidden_size=9")
    assert (tmp_path / "few.latest.npz").read_bytes() == before


def test_a_data_error_is_one_line_and_writes_nothing(cli, names_file, tmp_path):
    path = names_file(b"Ok\n\xff\xfeBad\n")
    cli("train", "--data", path, "--out-dir", tmp_path / "ck").fails_in_one_line(1, "line 2 is not valid UTF-8")
    assert not (tmp_path / "ck").exists()


def test_an_option_the_data_makes_impossible_exits_with_2(cli, names_file, tmp_path):
    path = names_file(["Rex", "Zuul"])
    cli("train", "--data", path, "--val-fraction", "0.9", "--out-dir", tmp_path).fails_in_one_line(2, "leaves no training names")


IMPOSSIBLE = [  # (arguments, the flag the error line names)
    (["train", "--hidden-size", "0"], "--hidden-size"), (["train", "--hidden-size", "-3"], "--hidden-size"),
    (["train", "--hidden-size", "5000"], "--hidden-size"), (["train", "--learning-rate", "0"], "--learning-rate"),
    (["train", "--learning-rate", "-1"], "--learning-rate"), (["train", "--learning-rate", "nan"], "--learning-rate"),
    (["train", "--learning-rate", "inf"], "--learning-rate"), (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "-1"], "--epochs"), (["train", "--batch-size", "-1"], "--batch-size"),
    (["train", "--batch-size", "-1"], "--batch-size"), (["train", "--clip", "-1"], "--clip"),
    (["train", "--clip", "nan"], "--clip"), (["train", "--clip", "inf"], "--clip"),
    (["train", "--val-fraction", "-0.1"], "--val-fraction"), (["train", "--val-fraction", "1"], "--val-fraction"),
    (["train", "--val-fraction", "nan"], "--val-fraction"), (["train", "--seed", "-1"], "--seed"),
    (["train", "--max-steps", "0"], "--max-steps"), (["train", "--preview", "-1"], "--preview"),
    (["train", "--optimizer", "lbfgs"], "--optimizer"), (["train", "--optimizer", "rmsprop"], "--optimizer"),
    (["train", "--lr-schedule", "exponential"], "--lr-schedule"), (["train", "--epochs", "2.5"], "--epochs"),
    (["train", "--resume", "checkpoints/dinos.npz", "--out-dir", "elsewhere"], "--out-dir"),
    (["sample", "-n", "0"], "--count"), (["sample", "-n", "-5"], "--count"), (["sample", "--temperature", "0"], "--temperature"),
    (["sample", "--temperature", "-1"], "--temperature"), (["sample", "--temperature", "nan"], "--temperature"),
    (["sample", "--temperature", "inf"], "--temperature"), (["sample", "--top-k", "-1"], "--top-k"),
    (["sample", "--min-length", "0"], "--min-length"), (["sample", "--max-length", "0"], "--max-length"),
    (["sample", "--min-length", "8", "--max-length", "4"], "--min-length"), (["sample", "--seed", "-2"], "--seed"),
    (["sample", "--prefix", "abcdefgh", "--max-length", "3"], "--prefix"),
    (["gradcheck", "--threshold", "0"], "--threshold"), (["gradcheck", "--threshold", "nan"], "--threshold"),
    (["gradcheck", "--count", "0"], "--count"), (["gradcheck", "--truncate", "0"], "--truncate"),
    (["diagnose", "--count", "0"], "--count"), (["diagnose", "--max-distance", "0"], "--max-distance"),
    (["plot", "--count", "0"], "--count"),
    (["sample", "--max-length", str(10**30)], "--max-length"), (["train", "--preview", "100000000"], "--preview"),
    (["sample", "--json", "-n", "100000000"], "--count"),
]


@pytest.mark.parametrize("args, named", IMPOSSIBLE)
def test_impossible_option_values_are_one_line_naming_the_option_and_exit_2(cli, args, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    result.fails_in_one_line(2, named)
    assert not list(tmp_path.iterdir())  # nothing read, nothing written


def test_an_unknown_command_or_option_is_one_line_pointing_at_help(cli):
    cli("trian").fails_in_one_line(2, "No such command 'trian'")
    cli("sample", "--bogus").fails_in_one_line(2, "see namegen sample --help")


def test_a_bug_shows_its_traceback_and_exits_with_1(cli, names_file, tmp_path, monkeypatch):
    """Only errors a user can fix become one line; a ValueError from a broken computation is a bug."""

    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")

    monkeypatch.setattr("namegen.training.loss_and_grads", broken)
    result = cli("train", "--data", names_file(TINY), "--epochs", 1, "--hidden-size", 4, "--out-dir", tmp_path,
                 "--engine", "numpy")
    assert result.code == 1 and isinstance(result.exception, ValueError)
    assert "invalid option" not in result.stderr


def test_sample_prints_names_repeatably(cli, trained_checkpoint):
    first = cli("sample", "-c", trained_checkpoint, "-n", 7, "--seed", 3)
    assert first.code == 0, first.stderr
    names = first.stdout.split("\n")[:-1]
    assert len(names) == 7 and all(n and n[0].isupper() for n in names)
    assert cli("sample", "-c", trained_checkpoint, "-n", 7, "--seed", 3).stdout == first.stdout


def test_sample_json_marks_novel_names(cli, trained_checkpoint, trained_state):
    payload = cli("sample", "-c", trained_checkpoint, "-n", 20, "--seed", 1, "--json").json()
    assert len(payload["names"]) == 20
    assert all(item["novel"] == (not trained_state.model.knows(item["name"])) for item in payload["names"])


def test_sample_json_gives_each_names_nats_as_score_does_and_the_constraints_it_meets(cli, trained_checkpoint):
    payload = cli("sample", "-c", trained_checkpoint, "-n", 5, "--seed", 2, "--prefix", "st", "--exclude", "q",
                  "--temperature", 1.5, "--json").json()
    items = payload["names"]
    scored = cli("score", "-c", trained_checkpoint, *[item["name"] for item in items], "--json").json()["scores"]
    for item, same in zip(items, scored):  # the model's own probability, whatever the temperature drew it with
        assert item["nats"] == pytest.approx(same["nats"], rel=1e-12)
        assert item["nats_per_char"] == pytest.approx(same["nats_per_char"], rel=1e-12)
        assert item["meets"] == ["prefix", "exclude"] and item["name"].lower().startswith("st")
    assert payload["constraints"] == {"prefix": "st", "exclude": ["q"]}
    assert payload["draws"] == 5 + sum(payload["rejected"].values()) and payload["acceptance"] == 5 / payload["draws"]


def test_a_sampling_error_in_json_still_gives_the_names_found(cli, trained_checkpoint):
    result = cli("sample", "-c", trained_checkpoint, "-n", 40, "--novel", "--unique", "--max-length", 1, "--json")
    result.fails_in_one_line(1, "of 40 novel unique names")
    payload = json.loads(result.stdout)
    assert 0 < len(payload["names"]) < 40 and payload["acceptance"] < 1


def test_a_sampling_error_prints_what_it_found_then_one_error_line(cli, trained_checkpoint):
    result = cli("sample", "-c", trained_checkpoint, "-n", 40, "--novel", "--unique", "--max-length", 1)
    result.fails_in_one_line(1, "of 40 novel unique names")
    assert "relax --max-length" in result.stderr and "--max-tries" in result.stderr  # the rarest reason, as flags
    assert 0 < len(result.stdout.split()) < 40


@pytest.mark.parametrize("command", ["sample", "evaluate", "info", "score", "gradcheck", "diagnose", "plot"])
def test_a_damaged_checkpoint_is_one_error_line_in_every_command(cli, tmp_path, command):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    args = [command, bad] if command == "info" else [command, "-c", bad] + (["Rex"] if command == "score" else [])
    cli(*args).fails_in_one_line(1, "not a readable namegen checkpoint")


def test_evaluate_reports_train_and_validation(cli, trained_checkpoint, trained_state):
    result = cli("evaluate", "-c", trained_checkpoint, "--json")
    assert result.code == 0, result.stderr
    rows = {r["set"]: r for r in result.json()["results"]}
    assert rows["validation"]["nats_per_char"] == pytest.approx(trained_state.history[-1].val_loss)
    assert rows["train"]["names"] == len(trained_state.train_idx)
    text = cli("evaluate", "-c", trained_checkpoint)
    assert "perplexity" in text.stdout and "validation" in text.stdout


def test_score_reports_each_name_in_text_and_json(cli, trained_checkpoint):
    real, junk = cli("score", "-c", trained_checkpoint, "Stegosaurus", "Qxqxqxq", "--json").json()["scores"]
    assert (real["name"], real["known"], junk["name"], junk["known"]) == ("Stegosaurus", True, "Qxqxqxq", False)
    assert set(real) == {"name", "nats", "nats_per_char", "perplexity", "known", "unknown_letters"}
    text = cli("score", "-c", trained_checkpoint, "Stegosaurus")
    assert "Stegosaurus" in text.stdout and "yes" in text.stdout


def test_info_shows_configuration_and_history(cli, trained_checkpoint):
    result = cli("info", trained_checkpoint)
    assert result.code == 0, result.stderr
    assert "hidden 24" in result.stdout and "2 of 2 epochs" in result.stdout and "history" in result.stdout
    payload = cli("info", trained_checkpoint, "--json").json()
    assert payload["config"]["hidden_size"] == 24 and len(payload["history"]) == 2


def test_version_and_help(cli):
    assert cli("--version").stdout.startswith("namegen ")
    assert "train" in cli("--help").stdout


@pytest.mark.parametrize("command, shown", [
    ("plot", "Write a PNG here (needs namegen[plot])."),
    ("sample", "[default: (twice the longest training name, at least 20)]"),
    ("train", "Clip each gradient entry to [-clip, clip]"),
    ("score", "Usage: namegen score [OPTIONS] NAME..."),
    ("gradcheck", "[NAME...]"),
])
def test_help_shows_its_text_whole(cli, command, shown):
    assert shown in " ".join(cli(command, "--help").stdout.split())  # as one line, however it was wrapped


@pytest.mark.parametrize("command", ["train", "sample", "score", "gradcheck", "diagnose", "plot", "info", "evaluate"])
def test_help_shows_no_value_for_a_flag_and_no_python_types(cli, command):
    text = " ".join(cli(command, "--help").stdout.split())
    assert "<bool>" not in text and "list[" not in text and "{" not in text
    for flag_ in ("--json", "--novel", "--unique", "--demo", "--help"):
        assert f"{flag_} <" not in text


def test_python_dash_m_namegen_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "namegen", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("namegen ")


def test_text_from_a_checkpoint_cannot_drive_the_terminal(cli, tmp_path):
    """A checkpoint may be hostile: escape sequences in its source, vocabulary or names are shown, not run."""
    from namegen.checkpoint import save_checkpoint
    from namegen.data import NameList
    from namegen.state import TrainConfig, new_state

    names = ["rex\x1b[2j", "z\u202euul", "ab\x1b[2j"] * 4
    state = new_state(TrainConfig(hidden_size=4, val_fraction=0), NameList(names, (), "evil\x1b]0;pwned\x07.txt"))
    save_checkpoint(tmp_path / "evil.npz", state)
    for args in (["info", tmp_path / "evil.npz"], ["sample", "-c", tmp_path / "evil.npz", "-n", 20, "--seed", 0],
                 ["score", "-c", tmp_path / "evil.npz", "ab\x1b[2j"]):
        result = cli(*args)
        assert result.code == 0, result.stderr
        assert not set("\x1b\x07\u202e") & set(result.stdout), (args, result.stdout)
    assert "\\x1b" in cli("info", tmp_path / "evil.npz").stdout


@pytest.fixture(scope="module")
def diverged_checkpoint(few_dinos, tmp_path_factory):
    """A model trained at a step of 1e200: finite, but its loss is near 1e200 nats per letter."""
    from namegen.checkpoint import save_checkpoint
    from namegen.state import TrainConfig, new_state
    from namegen.training import train

    state = new_state(TrainConfig(hidden_size=4, epochs=2, learning_rate=1e200), few_dinos)
    train(state)
    path = tmp_path_factory.mktemp("diverged") / "diverged.npz"
    save_checkpoint(path, state)
    return path


def strict_json(text):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))


@pytest.mark.parametrize("args", [["evaluate"], ["score", "Rex"], ["info"], ["diagnose", "--count", 4]])
def test_any_finite_model_is_evaluated_and_its_json_is_valid(cli, diverged_checkpoint, args):
    path = ["-c", diverged_checkpoint] if args[0] != "info" else [diverged_checkpoint]
    result = cli(args[0], *path, *args[1:], "--json")
    assert result.code == 0, result.stderr
    strict_json(result.stdout)
    text = cli(args[0], *path, *args[1:])
    assert text.code == 0 and "e+" in text.stdout or args[0] == "diagnose"


def test_a_perplexity_beyond_a_float_is_null_in_json(cli, diverged_checkpoint):
    rows = strict_json(cli("evaluate", "-c", diverged_checkpoint, "--json").stdout)["results"]
    assert rows[0]["nats_per_char"] > 1e100 and rows[0]["perplexity"] is None


@pytest.mark.slow
def test_a_huge_count_streams_names_as_they_are_drawn():
    proc = subprocess.Popen([sys.executable, "-m", "namegen", "sample", "-n", "100000000", "--seed", "0"],
                            stdout=subprocess.PIPE)
    received, deadline = b"", time.monotonic() + 30
    try:
        while received.count(b"\n") < 2000:  # before, nothing came for hours, as all were held to the end
            assert time.monotonic() < deadline, "no 2000 names in 30 s"
            if select.select([proc.stdout], [], [], 1.0)[0]:
                received += os.read(proc.stdout.fileno(), 65536)
    finally:
        proc.kill()
        proc.wait()
    assert all(name.strip() for name in received.decode().splitlines()[:2000])


@pytest.mark.parametrize("command, advice", [("sample", "a smaller --count or --max-length"), ("info", "")])
def test_running_out_of_memory_gives_advice_that_fits_the_command(cli, trained_checkpoint, monkeypatch, command, advice):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("namegen.terminal.load_checkpoint", no_memory)
    monkeypatch.setattr("namegen.terminal.load_model", no_memory)
    args = [command, trained_checkpoint] if command == "info" else [command, "-c", trained_checkpoint]
    result = cli(*args)
    result.fails_in_one_line(1, "not enough memory for this request" + (f"; ask for less: {advice}" if advice else ""))
    assert "--hidden-size" not in result.stderr


def test_a_directory_where_a_checkpoint_goes_is_named_before_training(cli, names_file, tmp_path):
    (tmp_path / "ck" / "tiny.best.npz").mkdir(parents=True)
    result = cli("train", "--data", names_file(TINY, "tiny.txt"), "--out-dir", tmp_path / "ck", "--hidden-size", 4)
    result.fails_in_one_line(1, "tiny.best.npz is a directory where the run would save a checkpoint")
    assert "free some space" not in result.stderr and "epoch" not in result.stdout


@pytest.mark.slow
def test_a_terminal_that_shows_only_ascii_gets_every_line(names_file, tmp_path):
    path = names_file(["Zoë", "Ἀχιλλεύς", "José", "Łukasz"] * 3, "accents.txt")
    result = subprocess.run([sys.executable, "-m", "namegen", "train", "--data", str(path), "--epochs", "2",
                             "--hidden-size", "4", "--out-dir", str(tmp_path), "--val-fraction", "0"],
                            capture_output=True, text=True, env=dict(os.environ, PYTHONIOENCODING="ascii"))
    assert result.returncode == 0, result.stderr
    assert "epoch   2/2" in result.stdout and "\\u03c3max(Whh)" in result.stdout  # σ, escaped


@pytest.mark.slow
def test_a_long_history_is_shown_in_bounded_lines(cli, few_dinos, tmp_path):
    from dataclasses import replace

    from namegen.checkpoint import save_checkpoint
    from namegen.state import EpochRecord, TrainConfig, new_state

    state = new_state(TrainConfig(hidden_size=4, epochs=20_000), few_dinos)
    record = EpochRecord(1, 10, 3.0, 3.1, 3.0, 1.0, 2.0, 0.0, 1.0, 0.1)
    state.history = [replace(record, epoch=i + 1) for i in range(20_000)]
    state.epoch = 20_000
    save_checkpoint(tmp_path / "long.npz", state)
    text = cli("info", tmp_path / "long.npz")
    assert text.code == 0, text.stderr
    assert len(text.stdout.splitlines()) < 40 and "the first and last 10 of 20000 epochs" in " ".join(text.stdout.split())
    assert len(cli("info", tmp_path / "long.npz", "--json").json()["history"]) == 20_000
    assert len(cli("plot", "-c", tmp_path / "long.npz", "--count", 2).stdout.splitlines()) < 30


def test_sample_json_counts_the_draws_it_did_not_keep(cli, trained_checkpoint):
    payload = cli("sample", "-c", trained_checkpoint, "-n", 30, "--novel", "--max-length", 6, "--seed", 2, "--json").json()
    assert len(payload["names"]) == 30 and payload["rejected"]["too_long"] > 0


# ----------------------------------------------------------------------------- the model you mean

POKEMON = ["Bulbasaur", "Ivysaur", "Venusaur", "Charmander", "Charmeleon", "Charizard", "Squirtle", "Wartortle",
           "Blastoise", "Caterpie", "Metapod", "Butterfree", "Weedle", "Kakuna", "Beedrill", "Pidgey", "Pidgeotto",
           "Pidgeot", "Rattata", "Raticate", "Spearow", "Fearow", "Ekans", "Arbok", "Pikachu", "Raichu"]


@pytest.mark.parametrize("command", ["sample", "evaluate", "score", "info", "diagnose", "plot"])
def test_after_training_here_every_command_uses_that_model_and_says_so(cli, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pokemon.txt").write_text("\n".join(POKEMON), encoding="utf-8")
    trained = cli("train", "--data", "pokemon.txt", "--epochs", 2, "--hidden-size", 8, "--preview", 0)
    assert "sample from it: namegen sample -c checkpoints/pokemon.best.npz" in trained.stdout
    args = {"score": ["Pikachu"], "diagnose": ["--count", 3], "plot": ["--count", 3]}.get(command, [])
    result = cli(command, *args)
    assert result.code == 0, result.stderr
    assert result.stderr == "using checkpoints/pokemon.best.npz: the best model of the last run started here\n"
    if command == "sample":
        assert set("".join(result.stdout.split()).lower()) <= set("".join(POKEMON).lower())


def test_where_no_run_was_started_the_shipped_model_is_used_and_named(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("sample", "-n", 3, "--seed", 0)
    assert result.code == 0 and result.stderr.startswith("using ") and "dinosaur model shipped with namegen" in result.stderr
    assert cli("sample", "-n", 3, "--seed", 0, "--json").stderr == ""  # JSON says it in its payload


def test_a_run_without_validation_points_at_its_latest_model(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pokemon.txt").write_text("\n".join(POKEMON), encoding="utf-8")
    trained = cli("train", "--data", "pokemon.txt", "--epochs", 1, "--hidden-size", 8, "--val-fraction", 0)
    assert "(no best: no validation names)" in trained.stdout
    assert "sample from it: namegen sample -c checkpoints/pokemon.latest.npz" in trained.stdout
    assert "the latest model of the last run started here" in cli("sample", "-n", 2).stderr


def test_one_epoch_and_one_name_are_not_plural(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pokemon.txt").write_text("\n".join(POKEMON), encoding="utf-8")
    trained = cli("train", "--data", "pokemon.txt", "--epochs", 1, "--hidden-size", 8, "--preview", 0)
    assert "done: 1 epoch, " in trained.stdout
    assert "gradient flow over 1 name\n" in cli("diagnose", "Pikachu").stdout


def warm_numba_cache(clone: Path) -> None:
    """Give the clone the numba cache of this checkout (beside fast.py), and its fast.py this one's
    modification time, which numba's cache checks: its first run loads the kernel rather than
    compiling it (15-20 s)."""
    import shutil

    from namegen import fast

    files = numba_cache_files()
    source = Path(fast.__file__)
    if source.read_bytes() != (clone / "namegen" / "fast.py").read_bytes():
        return  # an edit not committed yet: the cache is of other code, and the clone compiles its own
    (clone / "namegen" / "__pycache__").mkdir(exist_ok=True)
    for f in files:
        shutil.copy2(f, clone / "namegen" / "__pycache__" / f.name)
    os.utime(clone / "namegen" / "fast.py", ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns))


@pytest.mark.slow
def test_the_readme_first_command_leaves_a_fresh_clone_clean(tmp_path):
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    env = dict(os.environ)
    warm_numba_cache(clone)
    done = subprocess.run([sys.executable, "-m", "namegen", "train", "--epochs", "1", "--preview", "0"], cwd=clone,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    sampled = subprocess.run([sys.executable, "-m", "namegen", "sample", "-n", "3"], cwd=clone, capture_output=True,
                             text=True, env=env)
    assert sampled.returncode == 0 and "checkpoints/dinos.best.npz" in sampled.stderr
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == ""
    assert any((clone / "namegen" / "__pycache__").glob("fast.train_names-*.nbi"))  # numba's cache, ignored


@pytest.mark.parametrize("command, whole", [
    ("info", ["σmax(Whh)", "clipped %", "|g| mean"]),
    ("diagnose", ["mean ‖dL_t/dh_{t-m}‖", "mean ‖J_t…J_{t-m+1}‖₂", "relative to m=0"]),
    ("evaluate", ["perplexity"]), ("score", ["in the data"]), ("gradcheck", ["max relative error"]),
])
def test_output_piped_at_80_columns_is_never_cut(cli, trained_checkpoint, tmp_path, monkeypatch, command, whole):
    deep = tmp_path / "a-rather-long-directory-name" / "and-another-level" / "dinosaurs-trained-overnight.npz"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(trained_checkpoint.read_bytes())
    monkeypatch.setenv("COLUMNS", "80")
    args = {"info": [deep], "diagnose": ["-c", deep, "--count", 4], "score": ["-c", deep, "Stegosaurus"],
            "gradcheck": ["-c", deep, "--count", 1]}.get(command, ["-c", deep])
    result = cli(command, *args)
    assert result.code == 0, result.stderr
    for text in whole + ([str(deep)] if command != "gradcheck" else []):
        assert text in result.stdout, (text, result.stdout)


def test_messages_say_what_is_true(cli, trained_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = cli("train", "--resume", "nope.npz")
    missing.fails_in_one_line(1, "nope.npz: no such checkpoint")
    assert "--checkpoint" not in missing.stderr  # train has no such option
    cli("score", "-c", trained_checkpoint, "").fails_in_one_line(1, "every name must have at least one non-space character")
    cli("score", "-c", trained_checkpoint, "Rex", "\u200b\u00a0").fails_in_one_line(1, "every name must have at least one")
    (tmp_path / "names.txt").write_text("Rex\nZuul\n")
    cli("sample", "-c", "names.txt").fails_in_one_line(1, "not an .npz archive")


def test_an_early_stop_says_why_and_points_at_the_best_model(cli, names_file, tmp_path, monkeypatch):
    scripted = iter([3.0, 2.0, 2.5, 1.0])
    monkeypatch.setattr("namegen.training.evaluate", lambda model, encoded, indices: Evaluation(next(scripted), 1, 1))
    ran = cli("train", "--data", names_file(TINY), "--epochs", 4, "--hidden-size", 4, "--patience", 1,
              "--out-dir", tmp_path)
    assert ran.code == 0
    assert "stopped early (validation had not improved for 1 epoch): 3 epochs" in ran.stdout
    assert f"namegen sample -c {tmp_path / 'names.best.npz'}" in ran.stdout


# ------------------------------------------------------------------ what reaches the terminal

CONTROL = set("\x1b\x07\u202e")


def test_markup_in_a_path_is_shown_as_written(cli, trained_checkpoint, tmp_path):
    odd = tmp_path / "m" / "[" / "x].npz"
    red = tmp_path / "[red]x[bold].npz"
    odd.parent.mkdir(parents=True)
    for path in (odd, red):
        path.write_bytes(trained_checkpoint.read_bytes())
        for args in (["score", "Rex", "-c", path], ["evaluate", "-c", path], ["info", path]):
            ran = cli(*args)
            assert ran.code == 0, (args, ran.stderr)
            assert str(path) in " ".join(ran.stdout.split()), (args, ran.stdout)


def test_style_names_from_a_checkpoint_cannot_drive_the_terminal(cli, tmp_path):
    from namegen.checkpoint import save_checkpoint
    from namegen.data import NameList
    from namegen.state import TrainConfig, new_state

    names = [n.lower() for n in TINY]
    data = NameList(names, ("start",), "two", styles=("ok\x1b[2J", "b\u202eq"), style_of=np.repeat([0, 1], [12, 12]))
    save_checkpoint(tmp_path / "styled.npz", new_state(TrainConfig(hidden_size=4), data))
    evaluated = cli("evaluate", "-c", tmp_path / "styled.npz")
    assert evaluated.code == 0 and not CONTROL & set(evaluated.stdout) and "\\x1b" in evaluated.stdout
    refused = cli("sample", "-c", tmp_path / "styled.npz", "--style", "orcs")
    refused.fails_in_one_line(2, "orcs")
    assert not CONTROL & set(refused.stderr)
    for args in (["info", tmp_path / "styled.npz"], ["score", "-c", tmp_path / "styled.npz", "Rex"]):
        ran = cli(*args)
        assert ran.code == 0 and not CONTROL & set(ran.stdout + ran.stderr), args


@pytest.mark.parametrize("command", ["train", "tune"])
def test_a_data_file_name_cannot_drive_the_terminal_and_printed_commands_run_as_shown(cli, tmp_path, command):
    evil = tmp_path / "evil\x1b[2J\u202etxt.exe.txt"
    evil.write_text("\n".join(TINY))
    args = ["--budget", "1s"] if command == "tune" else ["--epochs", 1, "--hidden-size", 4]
    ran = cli(command, "--data", evil, "--out-dir", tmp_path / "out", *args)
    assert ran.code == 0, ran.stderr
    assert not CONTROL & set(ran.stdout + ran.stderr)
    line = next(line for line in ran.stdout.splitlines() if line.startswith("sample from it:"))
    assert "$'" in line and "\\x1b" in line and "\\u202e" in line
    word = line.split("-c ", 1)[1]
    shown = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True, text=True).stdout
    assert Path(shown).exists()  # the command as shown names the very file


@pytest.mark.slow
def test_a_reader_that_stops_reading_ends_the_command_quietly(trained_checkpoint):
    script = (f"{sys.executable} -m namegen sample -c {trained_checkpoint} -n 100000 | head -1; "
              'echo "status ${PIPESTATUS[0]}" >&2')
    ran = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert ran.stdout.count("\n") == 1
    assert ran.stderr == "status 141\n"  # 128 + SIGPIPE, as `yes | head -1` ends, and nothing else said


def test_the_surface_of_a_diverged_model_says_what_it_cannot_measure(cli, trained_checkpoint, damaged):
    """Weights of 1e158: every logit is computable, but the gradient's squared norm overflows."""
    path = damaged(trained_checkpoint, lambda arrays: {"params/Why": arrays["params/Why"] * 1e160})
    ran = cli("diagnose", "--surface", "-c", path)
    assert ran.code == 0, ran.stderr
    assert "cannot be measured" in ran.stdout and "nanx" not in ran.stdout


def test_score_scores_every_name_it_can_and_names_the_letters_of_the_others(cli, trained_checkpoint):
    ran = cli("score", "-c", trained_checkpoint, "Stegosaurus", "Zzk9x", "Éowyn!", "--json")
    assert ran.code == 0, ran.stderr
    real, digit, accent = ran.json()["scores"]
    assert real["nats"] > 0 and real["unknown_letters"] == ""
    assert digit["nats"] is None and digit["unknown_letters"] == "9"
    assert accent["nats"] is None and accent["unknown_letters"] == "é!"
    text = cli("score", "-c", trained_checkpoint, "Stegosaurus", "Zzk9x")
    assert text.code == 0 and "uses '9', which the model never saw" in " ".join(text.stdout.split())


def test_huge_figures_are_shown_in_exponent_form(cli, few_dinos, tmp_path):
    from namegen.checkpoint import save_checkpoint
    from namegen.state import EpochRecord, TrainConfig, new_state
    from namegen.views import epoch_line

    state = new_state(TrainConfig(hidden_size=4, epochs=2), few_dinos)
    record = EpochRecord(1, 10, None, 3.1, 3.0, 2.5e300, 9.9e300, 0.0, 3.8e300, 0.1)
    state.history, state.epoch = [record], 1
    save_checkpoint(tmp_path / "huge.npz", state)
    shown = cli("info", tmp_path / "huge.npz").stdout + epoch_line(state, record, [])
    assert "σmax(Whh) 3.8e+300" in shown and shown.count("3.8e+300") == 2  # the epoch line, the history table
    assert re.search(r"\d{25}", shown) is None  # never 300 digits
