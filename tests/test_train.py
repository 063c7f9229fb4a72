"""Training: it learns, resumes exactly, stops cleanly on divergence, and clips as promised."""

from dataclasses import replace

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint, save_checkpoint
from namegen.data import NameList, encode_names
from namegen.errors import TrainingError
from namegen.optim import clip_
from namegen.train import Callbacks, TrainConfig, best_path, evaluate, new_state, resume_state, train


@pytest.fixture(scope="module")
def few_dinos(dinos):
    return NameList(dinos.names[::8], True, "few-dinos.txt")  # 192 names: quick to train


def test_training_lowers_validation_loss_on_dinos(dinos, trained_state):
    fresh = new_state(trained_state.config, dinos)
    before = evaluate(fresh.param_views, encode_names(fresh.vocab, fresh.names), fresh.val_idx).per_char
    after = trained_state.history[-1]["val_loss"]
    assert before > 3.2  # about log(27): the untrained model is guessing
    assert after < 2.2 and after < before - 1.0


def without_timing(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def run(state, stop_after=None, checkpoint=None):
    """Train, optionally asking to stop after `stop_after` updates."""
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] >= stop_after

    return train(state, checkpoint, Callbacks(should_stop=should_stop))


@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("adam", 1), ("adagrad", 4)])
def test_n_epochs_then_resume_for_n_more_equals_2n_in_one_go(few_dinos, tmp_path, optimizer, batch_size):
    config = TrainConfig(hidden_size=8, epochs=2, optimizer=optimizer, batch_size=batch_size,
                         lr_schedule="constant", seed=5)
    first = new_state(config, few_dinos)
    run(first, checkpoint=tmp_path / "a.npz")
    resumed = resume_state(load_checkpoint(tmp_path / "a.npz"), {"epochs": 4})
    run(resumed)
    straight = new_state(replace(config, epochs=4), few_dinos)
    run(straight)
    np.testing.assert_array_equal(resumed.params, straight.params)
    assert without_timing(resumed.history) == without_timing(straight.history)


@pytest.mark.parametrize("batch_size", [1, 5])
def test_a_run_stopped_mid_epoch_resumes_exactly(few_dinos, tmp_path, batch_size):
    config = TrainConfig(hidden_size=8, epochs=2, batch_size=batch_size, optimizer="adam", seed=9)
    stopped = new_state(config, few_dinos)
    result = run(stopped, stop_after=20, checkpoint=tmp_path / "s.npz")
    assert result.reason == "interrupted" and stopped.position > 0 and stopped.epoch == 0
    resumed = resume_state(load_checkpoint(tmp_path / "s.npz"), {})
    assert resumed.position == stopped.position
    run(resumed)
    straight = new_state(config, few_dinos)
    run(straight)
    np.testing.assert_array_equal(resumed.params, straight.params)
    assert without_timing(resumed.history) == without_timing(straight.history)


def test_max_steps_stops_with_a_resumable_checkpoint(few_dinos, tmp_path):
    state = new_state(TrainConfig(hidden_size=8, epochs=3, max_steps=30), few_dinos)
    result = train(state, tmp_path / "m.npz")
    assert result.reason == "max-steps" and state.step == 30
    assert load_checkpoint(tmp_path / "m.npz").step == 30
    resumed = resume_state(load_checkpoint(tmp_path / "m.npz"), {})  # the limit is not inherited
    assert train(resumed).reason == "finished" and resumed.epoch == 3
    with pytest.raises(TrainingError, match="already at update 30"):
        resume_state(load_checkpoint(tmp_path / "m.npz"), {"max_steps": 30})
    limited = resume_state(load_checkpoint(tmp_path / "m.npz"), {"max_steps": 45})
    assert train(limited).reason == "max-steps" and limited.step == 45


def test_checkpoints_are_written_every_epoch_with_a_best_copy(few_dinos, tmp_path):
    saved = []
    state = new_state(TrainConfig(hidden_size=8, epochs=2), few_dinos)
    train(state, tmp_path / "r.npz", Callbacks(on_checkpoint=saved.append))
    assert saved == [tmp_path / "r.npz"] * 2
    best = load_checkpoint(best_path(tmp_path / "r.npz"))
    assert best.best_val_loss == min(r["val_loss"] for r in state.history)


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(few_dinos, tmp_path):
    path = tmp_path / "d.npz"
    state = new_state(TrainConfig(hidden_size=8, epochs=1, clip=0), few_dinos)
    train(state, path)
    before = path.read_bytes()
    doomed = resume_state(load_checkpoint(path), {"epochs": 3, "learning_rate": 1e305})
    with pytest.raises(TrainingError, match=r"diverged.*epoch \d, update \d+.*was not touched by this run"):
        train(doomed, path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_size": 9, "epochs": 5}, "hidden_size=9"),
    ({"optimizer": "adam", "epochs": 5}, "optimizer='adam'"),
    ({"epochs": 1}, "already completed 1 of 1 epochs"),
])
def test_resume_refuses_options_that_would_make_a_different_run(few_dinos, tmp_path, overrides, message):
    state = new_state(TrainConfig(hidden_size=8, epochs=1), few_dinos)
    train(state, tmp_path / "c.npz")
    with pytest.raises(TrainingError, match=message):
        resume_state(load_checkpoint(tmp_path / "c.npz"), overrides)


def test_resume_refuses_different_data(few_dinos, tmp_path):
    state = new_state(TrainConfig(hidden_size=8, epochs=1), few_dinos)
    save_checkpoint(tmp_path / "c.npz", state)
    other = NameList(few_dinos.names[1:], True, "other.txt")
    with pytest.raises(TrainingError, match="not the data this checkpoint was trained on"):
        resume_state(load_checkpoint(tmp_path / "c.npz"), {"epochs": 2}, other)


def test_clipping_bounds_every_entry_and_counts_what_it_clipped():
    grad = np.array([-12.0, -5.0, 0.5, 4.9, 5.0, 7.0])
    stats = clip_(grad, 5.0)
    assert grad.tolist() == [-5.0, -5.0, 0.5, 4.9, 5.0, 5.0]
    assert stats.clipped == 2
    assert stats.norm == pytest.approx(np.sqrt(144 + 25 + 0.25 + 4.9**2 + 25 + 49))


def test_clipping_off_leaves_the_gradient_untouched():
    grad = np.array([-1e6, 3.0, 1e9])
    stats = clip_(grad, 0)
    assert grad.tolist() == [-1e6, 3.0, 1e9] and stats.clipped == 0


def test_history_records_gradient_statistics(trained_state):
    record = trained_state.history[-1]
    assert record["grad_norm_max"] >= record["grad_norm_mean"] > 0
    assert 0 <= record["clip_fraction"] <= 1
    assert record["whh_sigma_max"] == pytest.approx(np.linalg.norm(trained_state.param_views["Whh"], 2))
