"""The command line, through typer's CliRunner: output, --json, error lines and exit codes."""

import json

import pytest
from typer.testing import CliRunner

from namegen.checkpoint import load_checkpoint
from namegen.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, pattern):
    """The run failed with exactly one stderr line that mentions `pattern`."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert pattern in lines[0], lines[0]
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture
def names_file(tmp_path, dinos):
    path = tmp_path / "few.txt"
    path.write_text("\n".join(n.capitalize() for n in dinos.names[::10]), encoding="utf-8")
    return path


def test_train_writes_checkpoints_and_reports_each_epoch(names_file, tmp_path):
    result = invoke("train", "--data", names_file, "--epochs", 2, "--hidden-size", 8, "--out-dir", tmp_path / "ck")
    assert result.exit_code == 0, result.stderr
    assert "epoch   1/2" in result.stdout and "epoch   2/2" in result.stdout and "val" in result.stdout
    assert "done: 2 epochs" in result.stdout
    state = load_checkpoint(tmp_path / "ck" / "few.npz")
    assert state.epoch == 2 and state.config.hidden_size == 8
    assert (tmp_path / "ck" / "few.best.npz").exists()


def test_train_json_and_resume(names_file, tmp_path):
    out = tmp_path / "ck"
    first = invoke("train", "--data", names_file, "--epochs", 1, "--hidden-size", 8, "--out-dir", out, "--json")
    assert first.exit_code == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["epochs"] == 1 and len(summary["history"]) == 1 and summary["reason"] == "finished"
    again = invoke("train", "--resume", out / "few.npz", "--epochs", 2, "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["epochs"] == 2


def test_resume_with_a_conflicting_option_is_one_error_line(names_file, tmp_path):
    invoke("train", "--data", names_file, "--epochs", 1, "--hidden-size", 8, "--out-dir", tmp_path)
    before = (tmp_path / "few.npz").read_bytes()
    result = invoke("train", "--resume", tmp_path / "few.npz", "--epochs", 3, "--hidden-size", 9)
    assert result.exit_code == 1
    one_error_line(result, "hidden_size=9")
    assert (tmp_path / "few.npz").read_bytes() == before


@pytest.mark.parametrize("content, pattern", [
    (None, "no such file"), (b"", "no names found"), (b"\n \n", "no names found"),
    (b"Ok\n\xff\xfeBad\n", "line 2 is not valid UTF-8"),
])
def test_train_bad_data_is_one_error_line(tmp_path, content, pattern):
    path = tmp_path / "names.txt"
    if content is not None:
        path.write_bytes(content)
    result = invoke("train", "--data", path, "--out-dir", tmp_path / "ck")
    assert result.exit_code == 1
    one_error_line(result, pattern)
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("option, value", [
    ("--learning-rate", 0), ("--learning-rate", "nan"), ("--learning-rate", "inf"), ("--hidden-size", 0),
    ("--epochs", -1), ("--clip", -1), ("--val-fraction", 1), ("--batch-size", 0), ("--optimizer", "rmsprop"),
])
def test_impossible_train_options_exit_with_2(option, value, tmp_path):
    result = invoke("train", option, value, "--out-dir", tmp_path)
    assert result.exit_code == 2 and option in result.stderr
    assert not list(tmp_path.iterdir())


def test_sample_prints_names_repeatably(trained_checkpoint):
    first = invoke("sample", "-c", trained_checkpoint, "-n", 7, "--seed", 3)
    assert first.exit_code == 0, first.stderr
    names = first.stdout.split("\n")[:-1]
    assert len(names) == 7 and all(n and n[0].isupper() for n in names)
    assert invoke("sample", "-c", trained_checkpoint, "-n", 7, "--seed", 3).stdout == first.stdout


def test_sample_json_marks_novel_names(trained_checkpoint, trained_state):
    result = invoke("sample", "-c", trained_checkpoint, "-n", 20, "--seed", 1, "--json")
    payload = json.loads(result.stdout)
    assert len(payload["names"]) == 20
    assert all(item["novel"] == (not trained_state.knows(item["name"])) for item in payload["names"])


@pytest.mark.parametrize("args, code, pattern", [
    (["--temperature", 0], 2, "--temperature"),
    (["-n", 0], 2, "--count"),
    (["--min-length", 9, "--max-length", 3], 2, "--min-length"),
    (["--top-k", -1], 2, "--top-k"),
])
def test_impossible_sample_options_exit_with_2(trained_checkpoint, args, code, pattern):
    result = invoke("sample", "-c", trained_checkpoint, *args)
    assert result.exit_code == code and pattern in result.stderr


def test_unknown_prefix_letter_is_one_error_line(trained_checkpoint):
    result = invoke("sample", "-c", trained_checkpoint, "--prefix", "x9")
    assert result.exit_code == 1
    one_error_line(result, "never saw")


def test_unmeetable_request_prints_what_it_found_then_fails(trained_checkpoint):
    result = invoke("sample", "-c", trained_checkpoint, "-n", 40, "--novel", "--unique", "--max-length", 2)
    assert result.exit_code == 1
    one_error_line(result, "of 40 novel unique names")
    assert 0 < len(result.stdout.split()) < 40


@pytest.mark.parametrize("command", ["sample", "evaluate", "info", "score", "gradcheck", "diagnose", "plot"])
def test_damaged_checkpoint_is_one_error_line_in_every_command(tmp_path, command):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    args = [command, bad] if command == "info" else [command, "-c", bad] + (["Rex"] if command == "score" else [])
    result = invoke(*args)
    assert result.exit_code == 1
    one_error_line(result, "not a readable namegen checkpoint")


def test_evaluate_reports_train_and_validation(trained_checkpoint, trained_state):
    result = invoke("evaluate", "-c", trained_checkpoint, "--json")
    assert result.exit_code == 0, result.stderr
    rows = {r["set"]: r for r in json.loads(result.stdout)["results"]}
    assert rows["validation"]["nats_per_char"] == pytest.approx(trained_state.history[-1]["val_loss"])
    assert rows["train"]["names"] == len(trained_state.train_idx)
    text = invoke("evaluate", "-c", trained_checkpoint)
    assert "perplexity" in text.stdout and "validation" in text.stdout


def test_evaluate_on_a_file_with_unseen_letters_is_one_error_line(trained_checkpoint, tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("Rex\nZoë\n", encoding="utf-8")
    result = invoke("evaluate", "-c", trained_checkpoint, "--data", path)
    assert result.exit_code == 1
    one_error_line(result, "never saw")


def test_score_ranks_a_real_name_above_gibberish(trained_checkpoint):
    result = invoke("score", "-c", trained_checkpoint, "Stegosaurus", "Qxqxqxq", "--json")
    assert result.exit_code == 0, result.stderr
    real, junk = json.loads(result.stdout)["scores"]
    assert real["known"] and not junk["known"]
    assert real["nats_per_char"] < junk["nats_per_char"]


def test_info_shows_configuration_and_history(trained_checkpoint):
    result = invoke("info", trained_checkpoint)
    assert result.exit_code == 0, result.stderr
    assert "hidden 24" in result.stdout and "2 of 2 epochs" in result.stdout and "history" in result.stdout
    payload = json.loads(invoke("info", trained_checkpoint, "--json").stdout)
    assert payload["config"]["hidden_size"] == 24 and len(payload["history"]) == 2


def test_version_and_help():
    assert invoke("--version").stdout.startswith("namegen ")
    assert "train" in invoke("--help").stdout


def test_python_dash_m_namegen_runs_the_cli():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "namegen", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("namegen ")
