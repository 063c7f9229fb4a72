"""namegen tune: the successive-halving search, what it keeps, and how it reports."""

import itertools

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint
from namegen.data import read_names
from namegen.errors import OptionError
from namegen.tune import ROUND_SIZE, RUNG_EPOCHS, TuneCallbacks, parse_duration, reproduce_command, tune, tuned_path
from namegen.state import TrainConfig
from namegen.training import best_path


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("3m", 180), ("1h", 3600), ("2m30s", 150),
                                           ("1.5h", 5400), (" 3M ", 180), ("1h30m", 5400)])
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "3 minutes", "-5s", "0", "0s", "3d", "1e3", "9999h"])
def test_a_duration_that_is_not_one_is_refused(text):
    with pytest.raises(OptionError, match="budget"):
        parse_duration(text)


def small_draws():
    """Settings a tiny list trains in milliseconds, distinct in step size so that trials differ."""
    rates = itertools.cycle([0.001, 0.3, 0.03, 0.1, 0.003, 0.01, 0.05, 0.2, 0.02])
    embeddings = itertools.cycle([0, 3])

    def draw(rng):
        return {"hidden_size": int(rng.choice([4, 8])), "embedding_size": next(embeddings), "dropout": 0.0,
                "optimizer": "sgd", "batch_size": 1, "learning_rate": next(rates), "warmup": 0.0}
    return draw


def stop_after(ends: int, seen: list):
    """Callbacks that record each trial end and ask to stop after `ends` of them."""
    return TuneCallbacks(on_trial_end=lambda trial: seen.append((trial.number, trial.epochs, trial.best_val_loss)),
                         should_stop=lambda: len(seen) >= ends)


def test_each_rung_keeps_the_best_third_of_the_one_before(few_dinos, tmp_path):
    seen = []
    result = tune(few_dinos, TrainConfig(), 600, tmp_path, "few", stop_after(ROUND_SIZE + 3 + 1, seen),
                  engine="numpy", draw=small_draws())
    first, second, third = seen[:ROUND_SIZE], seen[ROUND_SIZE:ROUND_SIZE + 3], seen[ROUND_SIZE + 3:]
    assert {epochs for _, epochs, _ in first} == {RUNG_EPOCHS[0]}
    best_three = sorted(first, key=lambda row: row[2])[:3]
    assert sorted(number for number, _, _ in second) == sorted(number for number, _, _ in best_three)
    assert {epochs for _, epochs, _ in second} == {RUNG_EPOCHS[1]}
    assert third[0][0] == min(second, key=lambda row: row[2])[0] and third[0][1] == RUNG_EPOCHS[2]
    assert result.reason == "interrupted" and len(result.trials) == ROUND_SIZE


def test_the_best_trial_is_kept_as_a_normal_checkpoint_and_the_scratch_is_removed(few_dinos, tmp_path):
    seen = []
    result = tune(few_dinos, TrainConfig(), 600, tmp_path, "few", stop_after(ROUND_SIZE + 2, seen),
                  engine="numpy", draw=small_draws())
    assert result.best.best_val_loss == min(loss for _, _, loss in seen)
    assert result.checkpoint == tuned_path(tmp_path, "few")
    saved = load_checkpoint(best_path(result.checkpoint))
    assert saved.best_val_loss == result.best.best_val_loss
    assert saved.config.learning_rate == result.best.settings["learning_rate"]
    latest = load_checkpoint(result.checkpoint)
    np.testing.assert_array_equal(latest.model.params, result.best.state.model.params)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "few.tuned.best.npz", "few.tuned.latest.npz"]


def test_the_budget_ends_the_search(few_dinos, tmp_path):
    result = tune(few_dinos, TrainConfig(), 0.5, tmp_path, "few", engine="numpy", draw=small_draws())
    assert result.reason == "budget" and 0.5 <= result.seconds < 5
    assert result.best is not None  # a tiny list trains an epoch well within half a second


def test_every_trial_is_judged_on_the_same_validation_names(few_dinos, tmp_path):
    result = tune(few_dinos, TrainConfig(seed=3), 600, tmp_path, "few", stop_after(4, []), engine="numpy",
                  draw=small_draws())
    splits = {tuple(t.state.val_idx) for t in result.trials}
    assert len(splits) == 1


def test_tune_needs_validation_names(few_dinos, tmp_path):
    with pytest.raises(OptionError, match="val-fraction|val_fraction"):
        tune(few_dinos, TrainConfig(val_fraction=0), 10, tmp_path, "few")


def test_the_printed_command_trains_the_same_model_again(cli, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(["Anna", "Bertha", "Carla", "Dora", "Emma", "Frieda", "Greta", "Hanna", "Ida",
                                "Jutta", "Karla", "Lena", "Marta", "Nora", "Olga", "Paula", "Rosa", "Selma"]))
    seen = []
    result = tune(read_names(names), TrainConfig(), 600, tmp_path / "tuned", "names",
                  stop_after(ROUND_SIZE + 1, seen), engine="numpy", draw=small_draws())
    command = reproduce_command(str(names), result.best)
    assert command[:2] == ["namegen", "train"]
    again = cli("train", *command[2:], "--engine", "numpy", "--out-dir", tmp_path / "again", "--json")
    assert again.code == 0, again.stderr
    retrained = load_checkpoint(tmp_path / "again" / "names.best.npz")
    kept = load_checkpoint(best_path(result.checkpoint))
    np.testing.assert_array_equal(retrained.model.params, kept.model.params)


def test_the_cli_refuses_a_bad_budget_in_one_line(cli):
    cli("tune", "--budget", "soon").fails_in_one_line(2, "--budget")
    cli("tune", "--val-fraction", "0").fails_in_one_line(2, "--val-fraction")


def test_the_cli_reports_trials_and_json(cli, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"Name{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(60)))
    ran = cli("tune", "--data", names, "--budget", "2s", "--out-dir", tmp_path, "--engine", "numpy", "--json")
    assert ran.code == 0, ran.stderr
    payload = ran.json()
    losses = [row["best_val_loss"] for row in payload["trials"]]
    assert losses == sorted(losses) and payload["best"] == payload["trials"][0]
    assert payload["command"].startswith("namegen train --data")
    assert load_checkpoint(payload["best_checkpoint"]).best_val_loss == pytest.approx(losses[0])


def test_a_budget_too_short_for_one_epoch_is_one_line_and_writes_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("namegen.tune.run_trial", lambda *args: None)  # as if no trial got an epoch in
    cli("tune", "--budget", "0.1s", "--out-dir", tmp_path).fails_in_one_line(1, "--budget")
    assert not list(tmp_path.glob("*.npz"))
