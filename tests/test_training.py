"""Training: it learns, resumes exactly, stops cleanly on divergence, clips as promised, and
starts or resumes a run with the checkpoint where the user expects it."""

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint, save_checkpoint
from namegen.data import NameList, parse_names
from namegen.errors import CheckpointError, OptionError, TrainingError
from namegen.evaluation import Evaluation, evaluate
from namegen.layout import Layout
from namegen.optim import clip_, decay_
from namegen.state import TrainConfig, new_state, resume_state
from namegen.training import Callbacks, best_path, learning_rate_at, preview_names, start_run, train

from conftest import TINY, assert_resumes_exactly


def test_training_lowers_validation_loss_on_dinos(dinos, trained_state):
    fresh = new_state(trained_state.config, dinos)
    before = evaluate(fresh.model, fresh.model.encoded, fresh.val_idx).per_char
    after = trained_state.history[-1].val_loss
    assert before > 3.2  # about log(27): the untrained model is guessing
    assert after < 2.2 and after < before - 1.0


def run(state, stop_after=None, checkpoint=None, engine="auto"):
    """Train, optionally asking to stop after `stop_after` requests (made after every update on
    the numpy path, every chunk of names on the compiled one)."""
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return stop_after is not None and calls["n"] >= stop_after

    return train(state, checkpoint, Callbacks(should_stop=should_stop), engine)


@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("adam", 1), ("adagrad", 4)])
def test_n_epochs_then_resume_for_n_more_equals_2n_in_one_go(few_dinos, tmp_path, optimizer, batch_size, engine):
    config = TrainConfig(hidden_size=8, epochs=4, optimizer=optimizer, batch_size=batch_size,
                         lr_schedule="constant", seed=5)  # the same steps whether planned for 2 epochs or 4
    assert_resumes_exactly(config, few_dinos, tmp_path, first_epochs=2, engine=engine)


@pytest.mark.parametrize("batch_size", [1, 5])
def test_a_run_stopped_mid_epoch_resumes_exactly(few_dinos, tmp_path, batch_size, engine):
    config = TrainConfig(hidden_size=8, epochs=2, batch_size=batch_size, optimizer="adam", seed=9, dropout=0.2,
                         weight_decay=0.01)  # dropout draws from the run's generator: it must resume too
    stopped, resumed = assert_resumes_exactly(config, few_dinos, tmp_path, stop_after=3, engine=engine)
    assert stopped.position > 0 and stopped.epoch == 0


FEATURES = {"plain": {}, "factors": {"embedding_size": 3}, "styles": {"styles": True},
            "dropout and decay": {"dropout": 0.3, "weight_decay": 0.05},
            "all": {"embedding_size": 3, "styles": True, "dropout": 0.3, "weight_decay": 0.05, "clip_norm": 1.0}}


@pytest.mark.parametrize("feature", FEATURES)
@pytest.mark.parametrize("optimizer, learning_rate", [("sgd", 0.05), ("adam", 0.01), ("adagrad", 0.05), ("rprop", 0.001)])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_every_optimizer_and_feature_resumes_mid_epoch_exactly(tmp_path, feature, optimizer, learning_rate, batch_size,
                                                               engine):
    options = dict(FEATURES[feature])
    names = parse_names("\n".join(TINY), "tiny.txt")
    if options.pop("styles", False):
        names = replace(names, styles=("a", "b"), style_of=np.repeat([0, 1], [12, 12]))
    config = TrainConfig(hidden_size=6, style_size=2, epochs=2, optimizer=optimizer, learning_rate=learning_rate,
                         batch_size=batch_size, seed=3, **options)
    stopped, _ = assert_resumes_exactly(config, names, tmp_path, stop_after=2, engine=engine,
                                        data_for_resume=names if names.styles else None)
    assert stopped.epoch == 0 and 0 < stopped.position < len(stopped.train_idx)


def test_factored_input_weights_are_what_trains_and_wxh_stays_their_product(few_dinos):
    state = new_state(TrainConfig(hidden_size=8, embedding_size=5, epochs=1, optimizer="adam"), few_dinos)
    f = state.layout.views(state.weights)
    before = np.concatenate([f["E"].ravel(), f["Wih"].ravel()])
    run(state)
    assert not np.array_equal(np.concatenate([f["E"].ravel(), f["Wih"].ravel()]), before)
    np.testing.assert_allclose(state.model.param_views["Wxh"], f["E"] @ f["Wih"], rtol=0, atol=1e-12)
    assert state.optimizer.state["m"].size == state.weights.size == state.model.params.size + f["E"].size + f["Wih"].size


def test_max_steps_stops_with_a_resumable_checkpoint(few_dinos, tmp_path, engine):
    state = new_state(TrainConfig(hidden_size=8, epochs=3, max_steps=30), few_dinos)
    result = train(state, tmp_path / "m.npz", engine=engine)
    assert result.reason == "max-steps" and state.step == 30
    assert load_checkpoint(tmp_path / "m.npz").step == 30
    resumed = resume_state(load_checkpoint(tmp_path / "m.npz"), {})  # the limit is not inherited
    assert train(resumed).reason == "finished" and resumed.epoch == 3
    with pytest.raises(TrainingError, match="already at update 30"):
        resume_state(load_checkpoint(tmp_path / "m.npz"), {"max_steps": 30})
    limited = resume_state(load_checkpoint(tmp_path / "m.npz"), {"max_steps": 45})
    assert train(limited).reason == "max-steps" and limited.step == 45


def test_a_step_limit_on_an_epochs_last_update_records_that_epoch(few_dinos, tmp_path, engine):
    """So that `--max-steps` of a whole number of epochs gives the same best model as those epochs."""
    state = new_state(TrainConfig(hidden_size=8, epochs=3), few_dinos)
    state.config = replace(state.config, max_steps=2 * len(state.train_idx))
    result = train(state, tmp_path / "e.npz", engine=engine)
    assert result.reason == "max-steps" and state.epoch == 2 and len(state.history) == 2
    best = min(state.history, key=lambda record: record.val_loss)
    assert load_checkpoint(best_path(tmp_path / "e.npz")).step == best.step


def test_checkpoints_are_written_every_epoch_with_a_best_copy(few_dinos, tmp_path):
    saved = []
    state = new_state(TrainConfig(hidden_size=8, epochs=2), few_dinos)
    train(state, tmp_path / "r.npz", Callbacks(on_checkpoint=saved.append))
    assert saved == [tmp_path / "r.npz"] * 2
    best = load_checkpoint(best_path(tmp_path / "r.npz"))
    assert best.best_val_loss == min(r.val_loss for r in state.history)


def test_divergence_stops_with_one_line_naming_where_and_keeps_the_last_good_checkpoint(few_dinos, tmp_path):
    path = tmp_path / "d.npz"
    state = new_state(TrainConfig(hidden_size=8, epochs=1, clip=0), few_dinos)
    train(state, path)
    before = path.read_bytes()
    doomed = resume_state(load_checkpoint(path), {"epochs": 3, "learning_rate": 1e305})
    with pytest.raises(TrainingError, match=r"diverged.*epoch 2, update \d+.*was not touched by this run") as caught:
        train(doomed, path)
    assert "\n" not in str(caught.value)
    assert path.read_bytes() == before


def test_a_huge_but_finite_loss_trains_on_and_its_previews_do_not_stop_it(few_dinos):
    """At lr 1e200 the loss stays finite but the model never ends a name; training still finishes."""
    state = new_state(TrainConfig(hidden_size=4, epochs=2, learning_rate=1e200), few_dinos)
    assert train(state).reason == "finished" and state.epoch == 2
    previews = preview_names(state, 3)
    assert previews and previews[-1] == "(no other name ended)"


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_size": 9, "epochs": 5}, "hidden_size=9"),
    ({"optimizer": "adam", "epochs": 5}, "optimizer='adam'"),
    ({"case": "keep", "epochs": 3}, "case='keep'"),
    ({"val_fraction": 0.3, "epochs": 3}, "val_fraction=0.3"),
    ({"epochs": 1}, "already completed 1 epoch;"),
])
def test_resume_refuses_options_that_would_make_a_different_run(few_dinos, tmp_path, overrides, message):
    state = new_state(TrainConfig(hidden_size=8, epochs=1), few_dinos)
    train(state, tmp_path / "c.npz")
    with pytest.raises(TrainingError, match=message):
        resume_state(load_checkpoint(tmp_path / "c.npz"), overrides)


def test_resume_refuses_different_data(few_dinos, tmp_path):
    state = new_state(TrainConfig(hidden_size=8, epochs=1), few_dinos)
    save_checkpoint(tmp_path / "c.npz", state)
    other = NameList(few_dinos.names[1:], ("start",), "other.txt")
    with pytest.raises(TrainingError, match="not the data this checkpoint was trained on"):
        resume_state(load_checkpoint(tmp_path / "c.npz"), {"epochs": 2}, other)


def test_clipping_bounds_every_entry_and_counts_what_it_clipped():
    grad = np.array([-12.0, -5.0, 0.5, 4.9, 5.0, 7.0])
    stats = clip_(grad, 5.0)
    assert grad.tolist() == [-5.0, -5.0, 0.5, 4.9, 5.0, 5.0]
    assert stats.clipped == 2
    assert stats.norm == pytest.approx(np.sqrt(144 + 25 + 0.25 + 4.9**2 + 25 + 49))


def test_norm_clipping_keeps_the_direction_exactly_and_element_clipping_turns_it(rng):
    grad = rng.standard_normal(500) * 10
    grad[7] = 400.0  # one exploding entry, as in `diagnose --demo`
    original = grad.copy()
    stats = clip_(grad, None, max_norm=5.0)
    assert stats.rescaled and stats.norm == pytest.approx(np.linalg.norm(original))
    assert np.linalg.norm(grad) == pytest.approx(5.0, rel=1e-12)
    assert grad @ original / (np.linalg.norm(grad) * np.linalg.norm(original)) == pytest.approx(1.0, abs=1e-15)
    entries = original.copy()
    clip_(entries, 5.0)
    assert entries @ original / (np.linalg.norm(entries) * np.linalg.norm(original)) < 0.99


def test_norm_clipping_leaves_a_short_gradient_alone_and_runs_before_entry_clipping():
    short = np.array([3.0, -4.0])
    assert not clip_(short, None, max_norm=5.0).rescaled and short.tolist() == [3.0, -4.0]
    both = np.array([30.0, -40.0, 0.0])  # norm 50: rescaled to norm 10 (6, -8, 0), then entries to 7
    stats = clip_(both, 7.0, max_norm=10.0)
    assert stats.rescaled and stats.clipped == 1 and both.tolist() == pytest.approx([6.0, -7.0, 0.0])


def test_clipping_off_leaves_the_gradient_untouched():
    grad = np.array([-1e6, 3.0, 1e9])
    stats = clip_(grad, 0)
    assert grad.tolist() == [-1e6, 3.0, 1e9] and stats.clipped == 0


def test_history_records_gradient_statistics(trained_state):
    record = trained_state.history[-1]
    assert record.grad_norm_max >= record.grad_norm_mean > 0
    assert 0 <= record.clip_fraction <= 1
    assert record.whh_sigma_max == pytest.approx(np.linalg.norm(trained_state.model.param_views["Whh"], 2))


# ------------------------------------------------------------------------------- starting a run

def test_a_new_run_saves_under_the_data_files_name(names_file, tmp_path):
    run_ = start_run(names_file(TINY, "tiny.txt"), out_dir=tmp_path / "ck", hidden_size=4)
    assert run_.checkpoint == tmp_path / "ck" / "tiny.latest.npz" and run_.best_checkpoint == tmp_path / "ck" / "tiny.best.npz"
    assert run_.state.config == TrainConfig(hidden_size=4) and not run_.resumed
    assert (tmp_path / "ck").is_dir()  # checked for writing before any work


def test_a_run_on_the_bundled_names_saves_as_dinos_and_names_its_source_portably(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_ = start_run(epochs=1)
    assert run_.checkpoint == Path("checkpoints") / "dinos.latest.npz"
    assert run_.state.source == "dinos.txt (bundled with namegen)"


def test_a_resumed_run_writes_back_to_its_checkpoint_and_checks_the_data(names_file, tmp_path):
    first = start_run(names_file(TINY, "tiny.txt"), out_dir=tmp_path, hidden_size=4, epochs=1)
    train(first.state, first.checkpoint)
    resumed = start_run(resume=first.checkpoint, epochs=3, data=names_file(TINY, "tiny.txt"))
    assert resumed.resumed and resumed.checkpoint == first.checkpoint and resumed.state.config.epochs == 3
    other = names_file(TINY[:-1] + ["Zuniceratops"], "other.txt")
    with pytest.raises(TrainingError, match="not the data this checkpoint was trained on"):
        start_run(resume=first.checkpoint, epochs=3, data=other)
    assert load_checkpoint(first.checkpoint).epoch == 1


def test_resume_with_an_out_dir_or_an_impossible_value_is_refused_before_any_file_is_read(tmp_path):
    with pytest.raises(OptionError, match="drop out_dir or resume"):
        start_run(resume=tmp_path / "none.npz", out_dir=tmp_path)
    with pytest.raises(OptionError, match="epochs must be at least 1"):
        start_run(resume=tmp_path / "none.npz", epochs=0)


@pytest.mark.parametrize("where", ["/proc/namegen-cannot-write-here", "a-file/sub"])
def test_an_unwritable_checkpoint_directory_is_refused_before_training(names_file, tmp_path, where, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(CheckpointError, match="cannot write checkpoints to"):
        start_run(names_file(TINY), out_dir=where)


# ------------------------------------------------------------------------- the files of a run

def test_runs_on_a_txt_and_a_best_txt_never_share_a_file(names_file, tmp_path):
    runs = [start_run(names_file(TINY, name), out_dir=tmp_path, hidden_size=4, epochs=1) for name in ("a.txt", "a.best.txt")]
    files = [path for r in runs for path in (r.checkpoint, r.best_checkpoint)]
    assert len(set(files)) == 4
    for r in runs:
        train(r.state, r.checkpoint)
    assert [load_checkpoint(r.best_checkpoint).source for r in runs] == [str(tmp_path / "a.txt"), str(tmp_path / "a.best.txt")]


def worse_run(names_file, few_dinos, tmp_path):
    """A run whose second epoch, at a step far too large, is worse than its first: best = epoch 1."""
    first = start_run(names_file(few_dinos.names, "few.txt"), out_dir=tmp_path, epochs=1, hidden_size=8)
    train(first.state, first.checkpoint)
    worse = start_run(resume=first.checkpoint, epochs=2, learning_rate=5.0, lr_schedule="constant")
    train(worse.state, worse.checkpoint)
    assert worse.state.history[1].val_loss > worse.state.best_val_loss
    return first.checkpoint, first.best_checkpoint


def test_resuming_a_best_checkpoint_behind_its_latest_is_refused_with_a_way_forward(names_file, few_dinos, tmp_path):
    latest, best = worse_run(names_file, few_dinos, tmp_path)
    before = best.read_bytes(), latest.read_bytes()
    with pytest.raises(TrainingError, match="further along; resume .*or copy .* and resume the copy"):
        start_run(resume=best, epochs=3)
    assert (best.read_bytes(), latest.read_bytes()) == before


def test_a_resumed_best_checkpoint_is_only_ever_replaced_by_a_better_model(names_file, few_dinos, tmp_path):
    latest, best = worse_run(names_file, few_dinos, tmp_path)
    latest.unlink()  # nothing further along to protect: the run goes on from its best
    kept = load_checkpoint(best).best_val_loss
    again = start_run(resume=best, epochs=3, learning_rate=5.0, lr_schedule="constant")
    assert again.checkpoint == latest and again.best_checkpoint == best
    train(again.state, again.checkpoint)
    assert again.state.history[-1].val_loss > kept  # this epoch was worse, so ...
    assert load_checkpoint(best).best_val_loss == kept  # ... the best file still holds the best
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [best.name, latest.name]


def test_a_run_holds_a_lock_that_a_second_writer_cannot_take(names_file, tmp_path):
    first = start_run(names_file(TINY, "tiny.txt"), out_dir=tmp_path, hidden_size=4, epochs=1)
    from namegen.training import exclusive_run

    with exclusive_run(first.checkpoint):
        with pytest.raises(TrainingError, match=rf"another namegen run \(pid {os.getpid()}\) is saving to"):
            start_run(names_file(TINY, "tiny.txt"), out_dir=tmp_path, hidden_size=4, epochs=1)
        with pytest.raises(TrainingError, match="another namegen run"):
            train(first.state, first.checkpoint)
    assert train(first.state, first.checkpoint).reason == "finished"  # released: the next run takes it


def test_patience_stops_when_validation_stops_improving_and_the_best_checkpoint_keeps_the_best(
        few_dinos, tmp_path, monkeypatch):
    scripted = iter([3.0, 2.0, 2.5, 2.1, 1.0, 0.5])  # validation per epoch: best at epoch 2, then two worse

    def scripted_evaluate(model, encoded, indices):
        return Evaluation(next(scripted) * 10, 10, 1)

    monkeypatch.setattr("namegen.training.evaluate", scripted_evaluate)
    state = new_state(TrainConfig(hidden_size=4, epochs=6, patience=2), few_dinos)
    result = train(state, tmp_path / "p.latest.npz")
    assert result.reason == "early-stopped" and state.epoch == 4
    assert load_checkpoint(tmp_path / "p.best.npz").epoch == 2 and state.best_val_loss == 2.0


def test_patience_needs_validation():
    with pytest.raises(OptionError, match="val_fraction"):
        TrainConfig(patience=3, val_fraction=0)


def test_weight_decay_shrinks_every_trained_matrix_and_no_bias_and_no_product():
    """One rule: the factors E, Wih, S and Wsh decay; Wxh and B, rebuilt from them, do not; nor do biases."""
    for embedding_size, decayed in ((0, {"Whh", "Wxh", "Why", "S", "Wsh"}), (3, {"Whh", "Why", "S", "Wsh", "E", "Wih"})):
        layout = Layout(11, 4, styles=2, style_size=2, embedding_size=embedding_size)
        weights = layout.initial(np.random.default_rng(0)) + 1.0
        before = layout.views(weights.copy())
        decay_(weights, layout.decayed, 0.05)
        views = layout.views(weights)
        for block in layout.blocks:
            factor = 0.95 if block.name in decayed else 1.0
            np.testing.assert_array_equal(views[block.name], before[block.name] * factor, err_msg=block.name)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_every_schedule_warms_up_then_decays_to_its_end(schedule):
    config = TrainConfig(epochs=10, learning_rate=0.2, lr_schedule=schedule, warmup=0.1)
    rates = learning_rate_at(config, 0, np.arange(0, 1000, 10), 100)  # 10 epochs of 100 names, every 10th
    assert rates[0] == 0 and rates[10] == pytest.approx(0.2 * {"linear": 0.9, "cosine": 0.9755282581, "constant": 1}[schedule])
    assert np.all(np.diff(rates[:10]) > 0)  # rising during the warm-up
    if schedule != "constant":
        assert np.all(np.diff(rates[10:]) < 0) and rates[-1] < 0.01


# ------------------------------------------------------------------------------------- divergence

def test_a_validation_loss_that_is_not_finite_is_divergence_caught_before_anything_is_written(
        cli, names_file, tmp_path):
    data = names_file(TINY, "a.txt")
    assert cli("train", "--data", data, "--out-dir", tmp_path / "good", "--epochs", 2, "--hidden-size", 8,
               "--preview", 0).code == 0
    latest, best = tmp_path / "good" / "a.latest.npz", tmp_path / "good" / "a.best.npz"
    before = latest.read_bytes(), best.read_bytes()
    cli("train", "--resume", latest, "--batch-size", 0, "--learning-rate", "1e308", "--epochs", 5,
        "--preview", 0).fails_in_one_line(1, "diverged")
    assert (latest.read_bytes(), best.read_bytes()) == before
    cli("train", "--data", data, "--out-dir", tmp_path / "fresh", "--batch-size", 0, "--learning-rate", "1e308",
        "--hidden-size", 8, "--preview", 0).fails_in_one_line(1, "diverged")
    for path in (tmp_path / "fresh").glob("*.npz"):
        load_checkpoint(path)  # whatever was saved loads


def test_a_step_times_weight_decay_of_one_or_more_is_refused(cli):
    with pytest.raises(OptionError, match="weight_decay"):
        TrainConfig(weight_decay=0.5, learning_rate=2.0)
    TrainConfig(weight_decay=0.5, learning_rate=1.9)
    cli("train", "--weight-decay", 2, "--learning-rate", 1).fails_in_one_line(2, "--weight-decay")


def test_a_resumed_run_cannot_raise_its_step_past_the_decay_bound(few_dinos, tmp_path):
    state = new_state(TrainConfig(hidden_size=4, epochs=1, weight_decay=0.5), few_dinos)
    train(state, tmp_path / "d.latest.npz")
    with pytest.raises(OptionError, match="weight_decay"):
        resume_state(load_checkpoint(tmp_path / "d.latest.npz"), {"epochs": 2, "learning_rate": 3.0})


def test_a_finished_run_resumed_with_fewer_epochs_says_how_many_it_did(cli, names_file, tmp_path):
    data = names_file(TINY, "a.txt")
    cli("train", "--data", data, "--out-dir", tmp_path, "--epochs", 2, "--hidden-size", 4, "--preview", 0)
    ran = cli("train", "--resume", tmp_path / "a.latest.npz", "--epochs", 1)
    ran.fails_in_one_line(1, "has already completed 2 epochs; pass --epochs above 2")
    assert "of 1" not in ran.stderr


def test_resuming_in_a_directory_that_cannot_be_written_gives_advice_resume_can_take(cli, names_file, tmp_path,
                                                                                      monkeypatch):
    data = names_file(TINY, "a.txt")
    cli("train", "--data", data, "--out-dir", tmp_path, "--epochs", 1, "--hidden-size", 4, "--preview", 0)

    def cannot_write(directory):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("namegen.checkpoint.probe_writable", cannot_write)
    ran = cli("train", "--resume", tmp_path / "a.latest.npz", "--epochs", 2)
    ran.fails_in_one_line(1, "Permission denied")
    assert "--out-dir" not in ran.stderr and "copy" in ran.stderr
