"""namegen tune: the asynchronous successive-halving search, its jobs, what it keeps, and how it reports."""

import errno
import itertools
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint
from namegen.data import read_names
from namegen.errors import OptionError
from namegen.runs import RunFiles
from namegen.state import TrainConfig, split_of
from namegen.tune import (BATCHES, DROPOUTS, EMBEDDINGS, ETA, HIDDEN_SIZES, WEIGHT_DECAYS, Reached, Setting, Space,
                          Trial, TuneCallbacks, TuneEnd, _Search, all_names_command, bracket_weights, duration_text,
                          parse_duration, reproduce_command, rung_epochs, tune)

ROUND_SIZE = 9  # runs after which a first-rung setting has been promoted to the second rung and on
QUICK = (1, 3, 9, 27)  # rungs for the tests' short lists, instead of their own 3, 9, 27, 81 epochs

from conftest import TINY, Forked


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("3m", 180), ("1h", 3600), ("2m30s", 150),
                                           ("1.5h", 5400), (" 3M ", 180), ("1h30m", 5400)])
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "3 minutes", "-5s", "0", "0s", "3d", "1e3", "9999h"])
def test_a_duration_that_is_not_one_is_refused(text):
    with pytest.raises(OptionError, match="budget"):
        parse_duration(text)


def small_draws(rates=(0.001, 0.3, 0.03, 0.1, 0.003, 0.01, 0.05, 0.2, 0.02)):
    """Settings a tiny list trains in milliseconds, distinct in step size so that trials differ."""
    rates = itertools.cycle(rates)
    embeddings = itertools.cycle([0, 3])

    def draw(rng):
        return Setting(hidden_size=int(rng.choice([4, 8])), embedding_size=next(embeddings), dropout=0.0,
                       weight_decay=0.0, optimizer="sgd", batch_size=1, learning_rate=next(rates), warmup=0.0)
    return draw


def files_in(directory: Path, name="few") -> RunFiles:
    return RunFiles(directory, name).tuned()


def stop_after(ends: int, seen: list):
    """Callbacks that record each trial end and ask to stop after `ends` of them."""
    return TuneCallbacks(on_trial_end=lambda trial: seen.append((trial.number, trial.epochs, trial.best_val_loss)),
                         should_stop=lambda: len(seen) >= ends)


def asha_order(ends: list, rungs: int) -> list:
    """The (setting, rung) each run should have had, replayed from the runs' results and brackets:
    after each result, the next run is the most advanced promotion due (a setting in the best third
    of its bracket's results at a rung, by loss then number, not yet promoted), or else a new
    setting at its bracket's first rung."""
    results, promoted, bracket_of, order, drawn = [{} for _ in range(rungs)], set(), {}, [], 0
    for number, rung, loss, bracket in ends:
        for below in reversed(range(rungs - 1)):
            due = []
            for b in range(below + 1):
                done = {n: x for n, x in results[below].items() if bracket_of[n] == b}
                due = [n for n in sorted(done, key=lambda n: (done[n], n))[: len(done) // ETA]
                       if (n, below) not in promoted]
                if due:
                    break
            if due:
                promoted.add((due[0], below))
                order.append((due[0], below + 1))
                break
        else:
            drawn += 1
            order.append((drawn, next(b for n, _, _, b in ends if n == drawn)))
        bracket_of[number] = bracket
        results[rung][number] = loss
    return order


def test_each_rung_promotes_the_best_third_of_its_brackets_runs_before(few_dinos, tmp_path):
    seen = []
    callbacks = TuneCallbacks(on_trial_end=lambda t: seen.append((t.number, t.rung, t.best_val_loss, t.epochs,
                                                                  t.bracket)),
                              should_stop=lambda: len(seen) >= 24)
    rungs = (1, 2, 3, 4)  # epochs: the order is what is checked, and short upper rungs keep it quick
    result = tune(few_dinos, TrainConfig(), 600, files_in(tmp_path), callbacks, engine="numpy", draw=small_draws(),
                  rungs=rungs)
    assert [(n, r) for n, r, *_ in seen] == asha_order([(n, r, loss, b) for n, r, loss, _, b in seen], len(rungs))
    assert {r for _, r, _, _, b in seen if b == 0} >= {0, 1, 2}  # promotions to two rungs happened
    assert {b for *_, b in seen} == {0, 1, 2}  # settings started at each rung but the last
    assert all(epochs == rungs[r] for _, r, _, epochs, _ in seen[:-1])  # each a complete run of its rung's epochs
    assert result.reason == TuneEnd.INTERRUPTED and result.runs == 24


def test_without_brackets_every_setting_starts_at_the_first_rung(few_dinos, tmp_path):
    seen = []
    callbacks = TuneCallbacks(on_trial_end=lambda t: seen.append((t.number, t.rung, t.best_val_loss, t.bracket)),
                              should_stop=lambda: len(seen) >= 12)
    tune(few_dinos, TrainConfig(), 600, files_in(tmp_path), callbacks, engine="numpy", draw=small_draws(),
         rungs=QUICK, brackets=(1,))
    assert [(n, r) for n, r, _, _ in seen] == asha_order(seen, len(QUICK))
    assert {b for *_, b in seen} == {0} and {r for _, r, _, _ in seen} >= {0, 1}


def test_brackets_follow_hyperband():
    assert bracket_weights(4) == (27, 12, 6)  # Hyperband's n for s = 3, 2, 1 (ETA 3); its s = 0, the last rung alone, left out
    assert bracket_weights(3) == (9, 5) and bracket_weights(1) == (1,)


def test_the_first_rung_is_a_training_budget_that_scales_with_the_list():
    assert rung_epochs(1383) == (3, 9, 27, 81)  # dinos.txt: 4,000 names seen is about three epochs
    assert rung_epochs(2097) == (2, 6, 18, 54)
    assert rung_epochs(29_481) == rung_epochs(100_000) == (1, 3, 9, 27)  # names.txt and longer: one epoch
    assert rung_epochs(20) == (3, 9, 27, 81)  # never hundreds of epochs of a short list at the first rung


def test_the_space_widens_with_the_list():
    dinos, names = Space.of(18_000, 3 * 1383), Space.of(205_000, 29_481)  # training characters, first-rung names
    assert dinos.hidden_sizes == (64, 128, 256) and dinos.batch_sizes == (1, 8, 16, 32)  # 64: 65 updates
    assert names.hidden_sizes == (128, 256, 512, 1024) and names.batch_sizes == (1, 8, 16, 32, 64)
    assert Space.of(10, 30) == Space((64,), (1,))
    rng = np.random.default_rng(0)
    assert Space.of(10, 30).draw(rng).batch_size == 1
    drawn = [names.draw(rng) for _ in range(400)]
    assert {s.hidden_size for s in drawn} == {128, 256, 512, 1024}
    assert all(s.embedding_size <= s.hidden_size for s in drawn)
    assert all(s.batch_size > 1 for s in drawn if s.hidden_size > 256)  # no per-name updates of a wide model
    assert {s.weight_decay for s in drawn} == {0.0, 0.01, 0.1} and min(s.dropout for s in drawn) == 0.0


def test_the_best_trial_is_kept_as_a_normal_checkpoint_and_the_scratch_is_removed(few_dinos, tmp_path):
    seen = []
    result = tune(few_dinos, TrainConfig(), 600, files_in(tmp_path), stop_after(ROUND_SIZE + 2, seen),
                  engine="numpy", draw=small_draws(), rungs=QUICK)
    assert result.best.best_val_loss == min(loss for _, _, loss in seen)
    assert result.checkpoint == files_in(tmp_path).best and result.kept is None
    saved = load_checkpoint(result.checkpoint)
    assert saved.best_val_loss == result.best.best_val_loss
    assert saved.config.learning_rate == result.best.setting.learning_rate
    assert saved.config.epochs == result.best.planned_epochs
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["few~tuned.best.npz"]


def test_the_budget_ends_the_search(few_dinos, tmp_path):
    result = tune(few_dinos, TrainConfig(), 0.5, files_in(tmp_path), engine="numpy", draw=small_draws())
    assert result.reason == TuneEnd.BUDGET and 0.5 <= result.seconds < 5
    assert result.best is not None  # a tiny list trains an epoch well within half a second


def test_every_trial_is_judged_on_the_same_validation_names(few_dinos, tmp_path, monkeypatch):
    import namegen.tune

    splits, real_new_state = [], namegen.tune.new_state

    def recorded(config, data):
        state = real_new_state(config, data)
        splits.append(tuple(state.val_idx))
        return state

    monkeypatch.setattr("namegen.tune.new_state", recorded)
    result = tune(few_dinos, TrainConfig(seed=3), 600, files_in(tmp_path), stop_after(4, []), engine="numpy",
                  draw=small_draws(), rungs=QUICK)
    _, searched = split_of(few_dinos, 0.1, np.random.default_rng(3))  # the split the search sized its rungs on
    assert len(splits) == result.runs >= 4 and set(splits) == {tuple(searched)}  # each run's is that one


def test_tune_needs_validation_names(few_dinos, tmp_path):
    with pytest.raises(OptionError, match="val-fraction|val_fraction"):
        tune(few_dinos, TrainConfig(val_fraction=0), 10, files_in(tmp_path))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_printed_command_trains_the_same_model_again(cli, tmp_path, dtype):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(["Anna", "Bertha", "Carla", "Dora", "Emma", "Frieda", "Greta", "Hanna", "Ida",
                                "Jutta", "Karla", "Lena", "Marta", "Nora", "Olga", "Paula", "Rosa", "Selma"]))
    seen = []
    result = tune(read_names(names), TrainConfig(dtype=dtype), 600, files_in(tmp_path / "tuned", "names"),
                  stop_after(ROUND_SIZE + 1, seen), engine="numpy", draw=small_draws())
    command = reproduce_command(str(names), result.best)
    assert command[:2] == ["namegen", "train"]
    again = cli("train", *command[2:], "--engine", "numpy", "--out-dir", tmp_path / "again", "--json")
    assert again.code == 0, again.stderr
    retrained = load_checkpoint(tmp_path / "again" / "names.best.npz")
    kept = load_checkpoint(result.checkpoint)
    np.testing.assert_array_equal(retrained.model.params, kept.model.params)
    assert retrained.model.params.dtype == dtype


def test_the_cli_refuses_a_bad_budget_in_one_line_before_touching_a_file(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli("tune", "--budget", "soon").fails_in_one_line(2, "--budget")
    cli("tune", "--val-fraction", "0").fails_in_one_line(2, "--val-fraction")
    assert list(tmp_path.iterdir()) == []  # no checkpoints directory, no lock


def test_the_cli_reports_trials_and_json(cli, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"Name{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(60)))
    ran = cli("tune", "--data", names, "--budget", "2s", "--out-dir", tmp_path, "--engine", "numpy", "--json",
              "--jobs", "1")
    assert ran.code == 0, ran.stderr
    payload = ran.json()
    losses = [row["best_val_loss"] for row in payload["trials"]]
    assert losses == sorted(losses) and payload["best"] == payload["trials"][0]
    assert payload["command"].startswith("namegen train --data")
    best, rungs = payload["best"], payload["rung_epochs"]
    assert f"--epochs {rungs[best['rung'] - 1]}" in payload["command"] or not best["complete"]
    if best["rung"] < len(rungs):  # the same setting, for the next rung's epochs, to the end
        assert payload["longer_command"] == payload["command"].split(" --max-steps")[0].replace(
            f"--epochs {rungs[best['rung'] - 1]}", f"--epochs {rungs[best['rung']]}")
    assert load_checkpoint(payload["checkpoint"]).best_val_loss == pytest.approx(losses[0])


def test_a_budget_too_short_for_one_epoch_is_one_line_and_writes_nothing(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("namegen.tune.train_trial", lambda *args: Reached(0, 0, 0, float("inf"), 0.0))  # no epoch in
    cli("tune", "--budget", "0.1s", "--out-dir", tmp_path, "--jobs", "1").fails_in_one_line(1, "--budget")
    assert not list(tmp_path.glob("*.npz"))


# ------------------------------------------------------------------------------ what a search keeps

def search(names, directory, rates, ends, seed=0):
    return tune(names, TrainConfig(seed=seed), 600, files_in(directory), stop_after(ends, []), engine="numpy",
                draw=small_draws(rates), rungs=QUICK)


def test_a_search_that_does_not_beat_the_tuned_model_leaves_it_in_place_and_saves_beside_it(few_dinos, tmp_path):
    good = search(few_dinos, tmp_path, (0.05, 0.03), 4)
    before = good.checkpoint.read_bytes()
    worse = search(few_dinos, tmp_path, (0.0001,), 2)  # Ctrl-C after two trials of a hopeless step size
    assert worse.best.best_val_loss > good.best.best_val_loss
    assert good.checkpoint.read_bytes() == before
    assert worse.kept.checkpoint == good.checkpoint and worse.kept.best_val_loss == good.best.best_val_loss
    assert worse.checkpoint == tmp_path / "few~tuned~2.best.npz"
    assert load_checkpoint(worse.checkpoint).best_val_loss == worse.best.best_val_loss
    again = search(few_dinos, tmp_path, (0.0001,), 1)
    assert again.checkpoint == tmp_path / "few~tuned~3.best.npz"  # nothing is ever overwritten by a worse one


def test_a_better_search_replaces_the_tuned_model(few_dinos, tmp_path):
    worse = search(few_dinos, tmp_path, (0.0001,), 2)
    better = search(few_dinos, tmp_path, (0.05, 0.03), 4)
    assert better.kept is None and better.checkpoint == worse.checkpoint
    assert load_checkpoint(better.checkpoint).best_val_loss == better.best.best_val_loss < worse.best.best_val_loss


def test_a_search_on_other_validation_names_never_replaces_the_tuned_model(few_dinos, tmp_path):
    first = search(few_dinos, tmp_path, (0.0001,), 2, seed=0)
    other = search(few_dinos, tmp_path, (0.05,), 2, seed=1)  # better by its own names, but other names
    assert other.kept.checkpoint == first.checkpoint and other.kept.best_val_loss is None
    assert "other validation names" in other.kept.why and other.checkpoint.name == "few~tuned~2.best.npz"


def test_a_full_disk_keeps_the_best_finished_trial(few_dinos, tmp_path, monkeypatch):
    real_fsync = os.fsync

    def full_from_trial_3(fd):
        if ".trial-3." in os.readlink(f"/proc/self/fd/{fd}"):  # the disk fills as trial 3 saves
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("namegen.files.os.fsync", full_from_trial_3)
    result = search(few_dinos, tmp_path, (0.05, 0.03, 0.01), 100)
    assert result.reason == TuneEnd.WRITE_FAILED and "No space left on device" in str(result.problem)
    assert result.best.number in (1, 2) and result.checkpoint == files_in(tmp_path).best
    assert load_checkpoint(result.checkpoint).best_val_loss == result.best.best_val_loss
    assert not list(tmp_path.glob(".*.trials"))  # the scratch is gone all the same


def test_a_full_disk_during_tune_is_one_line_after_the_summary(cli, names_file, tmp_path, monkeypatch):
    real_fsync = os.fsync
    draw = small_draws((0.05, 0.03, 0.01))
    monkeypatch.setattr("namegen.tune.Space.draw", lambda space, rng: draw(rng))

    def full_from_trial_2(fd):
        if ".trial-2." in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("namegen.files.os.fsync", full_from_trial_2)
    ran = cli("tune", "--data", names_file(TINY, "tiny.txt"), "--budget", "1m", "--out-dir", tmp_path, "--engine", "numpy",
              "--jobs", "1")
    ran.fails_in_one_line(1, "No space left on device")
    assert "trial 1" in ran.stdout and load_checkpoint(tmp_path / "tiny~tuned.best.npz").epoch >= 1


def test_scratch_directories_of_killed_searches_are_removed_and_nothing_else(few_dinos, tmp_path):
    dead = 999_999_999
    stale = tmp_path / f".few~tuned.{dead}.abc.trials"
    stale.mkdir()
    (stale / "trial-1.latest.npz").write_bytes(b"left by a killed search")
    live = tmp_path / f".few~tuned.{os.getpid()}.abc.trials"
    live.mkdir()
    a_file = tmp_path / f".few~tuned.{dead}.def.trials"
    a_file.write_text("mine")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine too")
    a_link = tmp_path / f".few~tuned.{dead}.ghi.trials"
    a_link.symlink_to(elsewhere)
    result = search(few_dinos, tmp_path, (0.05,), 1)
    assert result.best is not None
    assert not stale.exists() and live.is_dir()
    assert a_file.read_text() == "mine" and a_link.is_symlink() and (elsewhere / "keep.txt").read_text() == "mine too"


def test_only_running_trials_and_the_best_keep_their_files(few_dinos, tmp_path, monkeypatch):
    monkeypatch.setattr("namegen.tune.LEADERS", 5)
    files_seen = []

    def count_files(trial):
        files_seen.append(sorted(p.name for p in tmp_path.glob(".*.trials/*")))

    callbacks = TuneCallbacks(on_trial_end=count_files, should_stop=lambda: len(files_seen) >= 2 * ROUND_SIZE)
    result = tune(few_dinos, TrainConfig(), 600, files_in(tmp_path), callbacks, engine="numpy", draw=small_draws(),
                  rungs=QUICK)
    assert all(len(names) == 1 and names[0].endswith(".best.npz") for names in files_seen)  # the best so far's only
    assert len(result.leaders) == 5 and [t.best_val_loss for t in result.leaders] == sorted(
        t.best_val_loss for t in result.leaders)
    assert result.leaders[0] is result.best


def one_step_apart(a: Setting, b: Setting) -> bool:
    changed = [f for f in a.options() if getattr(a, f) != getattr(b, f)]
    if changed == ["learning_rate"]:
        return any(abs(b.learning_rate / (a.learning_rate * factor) - 1) < 0.05 for factor in (1.5, 1 / 1.5))
    lists = {"hidden_size": HIDDEN_SIZES, "embedding_size": EMBEDDINGS, "dropout": DROPOUTS,
             "weight_decay": WEIGHT_DECAYS, "batch_size": BATCHES}
    return len(changed) == 1 and abs(lists[changed[0]].index(getattr(a, changed[0]))
                                     - lists[changed[0]].index(getattr(b, changed[0]))) == 1


def test_a_step_from_a_setting_moves_one_choice_to_a_neighbouring_value():
    rng = np.random.default_rng(1)
    for space in (Space.of(18_000, 3 * 1383), Space.of(205_000, 29_481)):
        for _ in range(300):
            setting = space.draw(rng)
            near = space.near(setting, rng)
            assert one_step_apart(setting, near), (setting, near)
            assert near.embedding_size <= near.hidden_size and near.hidden_size in space.hidden_sizes
            assert near.batch_size in space.batch_sizes and (near.batch_size == 1) == (setting.batch_size == 1)
            assert near.batch_size > 1 or near.hidden_size <= 256  # no per-name updates of a wide model


def test_a_third_of_new_settings_are_a_step_from_the_best_run(dinos, tmp_path):
    search = _Search(dinos, TrainConfig(), tmp_path, TuneCallbacks(), "numpy", None, QUICK, (1,))
    search.finish(search.next_trial(), Reached(3, 30, 30, 2.0, 1.0, complete=True))
    best = search.best = search.new_trial(1, 0)  # as if its files had been saved
    drawn = [search.next_trial().setting for _ in range(18)]
    near = sum(one_step_apart(best.setting, setting) for setting in drawn)
    assert 2 <= near <= 10  # about NEAR_BEST of them (3 of these 18 draw near; it has only seven neighbours here)
    assert len(set(drawn)) == len(drawn)  # none drawn twice


def test_runs_that_would_be_cut_off_by_the_deadline_are_not_started(few_dinos, tmp_path):
    search = _Search(few_dinos, TrainConfig(), tmp_path, TuneCallbacks(), "numpy", small_draws(), QUICK, (1,))
    for loss in (1.0, 2.0, 3.0):  # three first-rung runs of 10 s each: the first is due for promotion
        search.finish(search.next_trial(), Reached(1, 10, 10, loss, 10.0, complete=True))
    search.deadline = time.time() + 20  # its next run, three times the epochs, would take about 30 s
    late = [search.next_trial() for _ in range(2)]
    assert [(t.number, t.rung) for t in late] == [(4, 0), (5, 0)]  # new settings instead, at the first rung
    search.deadline = time.time() + 60
    promoted = search.next_trial()
    assert (promoted.number, promoted.rung) == (1, 1)
    search.brackets = (0, 0, 1)  # every new setting drawn to start at the third rung: about 90 s
    assert search.next_trial().rung == 1  # started at the second instead, which can end in 60 s
    search.deadline = time.time() + 100
    assert search.next_trial().rung == 2


def test_the_all_names_command_trains_the_winner_on_every_name(cli, tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("\n".join(["Anna", "Bertha", "Carla", "Dora", "Emma", "Frieda", "Greta", "Hanna", "Ida", "Jutta"]))
    setting = Setting(hidden_size=8, embedding_size=0, dropout=0.0, weight_decay=0.0, optimizer="sgd", batch_size=1,
                      learning_rate=0.01, warmup=0.0)
    config = replace(TrainConfig(patience=2), epochs=3, **setting.options())
    ended = Trial(1, 0, setting, config, tmp_path / "x.latest.npz", steps=27, best_step=27, complete=True)
    command = all_names_command(str(names), ended)
    assert command[command.index("--val-fraction") + 1] == "0.0" and command[command.index("--epochs") + 1] == "3"
    again = cli("train", *command[2:], "--engine", "numpy", "--out-dir", tmp_path / "every", "--json")
    assert again.code == 0, again.stderr
    trained = load_checkpoint(tmp_path / "every" / "names.latest.npz")
    assert trained.step == 3 * 10 and trained.config.val_fraction == 0  # all ten names, three epochs
    assert all_names_command(str(names), replace(ended, best_step=18)) is None  # its best epoch was not its last
    assert all_names_command(str(names), replace(ended, complete=False)) is None  # cut off
    assert all_names_command(str(names), replace(ended, diverged=True)) is None


def test_two_jobs_train_the_same_runs_as_one(few_dinos, tmp_path):
    def ends(jobs, count):
        seen = {}
        callbacks = TuneCallbacks(on_trial_end=lambda t: seen.update({(t.setting, t.rung): (t.best_val_loss, t.epochs)}),
                                  should_stop=lambda: len(seen) >= count)
        result = tune(few_dinos, TrainConfig(), 600, files_in(tmp_path / str(jobs)), callbacks, engine="numpy",
                      jobs=jobs, rungs=QUICK)  # the list's own space: real settings, drawn by number
        return seen, result

    alone, _ = ends(1, 6)
    together, result = ends(2, 8)
    assert result.jobs == 2
    common = [key for key in alone if key in together and together[key][1] == alone[key][1]]
    assert len(common) >= 4  # complete runs of the same setting at the same rung, whichever process ran them
    assert all(together[key] == alone[key] for key in common)  # the same loss to the last bit


@pytest.mark.parametrize("seconds, text", [(5, "5s"), (90, "1m30s"), (180, "3m"), (5400, "1h30m"), (0.5, "0.5s")])
def test_a_budget_is_shown_with_its_unit(seconds, text):
    assert duration_text(seconds) == text


# ------------------------------------------------------------------------- tune as users meet it

def start(*args, cwd=None):
    import signal
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "namegen", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_sigkill_at_random_moments_never_costs_the_tuned_model_or_leaves_an_unloadable_file(names_file, tmp_path):
    data = names_file(TINY, "tiny.txt")
    out = tmp_path / "out"
    assert Forked("tune", "--data", data, "--budget", "1s", "--out-dir", out, "--engine", "numpy", "--jobs", "1").wait() == 0
    tuned = out / "tiny~tuned.best.npz"
    best = load_checkpoint(tuned).best_val_loss
    rng = np.random.default_rng(0)
    kills = 0
    while kills < 12:
        budget = float(rng.choice([0.1, 0.3, 0.5]))
        run = Forked("tune", "--data", data, "--budget", f"{budget}s", "--out-dir", out, "--engine", "numpy", "--jobs", "1")
        # Any moment of the search, or (every other run) the moments around its end, when the winner moves into place.
        time.sleep(rng.uniform(0.0, budget + 0.15) if kills % 2 else rng.uniform(budget - 0.02, budget + 0.06))
        kills += run.poll() is None
        run.kill()
        now = load_checkpoint(tuned).best_val_loss
        assert now <= best  # the tuned model of before, or a better one
        best = now
        for path in out.glob("*.npz"):
            load_checkpoint(path)  # never a file namegen refuses
    assert Forked("tune", "--data", data, "--budget", "0.2s", "--out-dir", out, "--engine", "numpy", "--jobs", "1").wait() == 0
    assert len(list(out.glob(".*.trials"))) == 0  # the killed searches' scratch is cleaned up by the next


@pytest.mark.slow
def test_ctrl_c_before_any_trial_finished_an_epoch_says_interrupted(names_file, tmp_path):
    import signal

    rng = np.random.default_rng(0)
    names = ["".join(rng.choice(list("abcdefghij"), size=rng.integers(4, 12))) for _ in range(40_000)]
    proc = start("tune", "--data", names_file(names, "many.txt"), "--budget", "1h", "--out-dir", tmp_path,
                 "--engine", "numpy")
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob(".*.trials")):  # the search has begun its first trial
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted before any trial finished an epoch; nothing was saved" in stderr
    assert "--budget" not in stderr and not list(tmp_path.glob("*.npz"))


def test_a_budget_bounds_the_search_whatever_the_list(cli, names_file, tmp_path):
    rng = np.random.default_rng(1)
    names = ["".join(rng.choice(list("abcdefghij"), size=rng.integers(4, 12))) for _ in range(20_000)]
    started = time.perf_counter()
    ran = cli("tune", "--data", names_file(names, "many.txt"), "--budget", "1s", "--out-dir", tmp_path,
              "--engine", "numpy")
    assert time.perf_counter() - started < 6  # one trial's epoch here takes far longer than the budget
    ran.fails_in_one_line(1, "no trial finished an epoch in 1s; give tune a longer --budget")


def test_a_long_data_file_name_is_tuned_under_a_name_that_fits(cli, tmp_path):
    data = tmp_path / ("n" * 246 + ".txt")
    data.write_text("\n".join(TINY))
    ran = cli("tune", "--data", data, "--budget", "1s", "--out-dir", tmp_path / "out", "--engine", "numpy", "--jobs", "1")
    assert ran.code == 0, ran.stderr
    assert all(len(p.name.encode()) < 200 for p in (tmp_path / "out").iterdir())


def descendants(pid: int) -> set[int]:
    """The processes below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_workers_of_a_killed_search_stop_too(names_file, tmp_path):
    rng = np.random.default_rng(2)
    names = ["".join(rng.choice(list("abcdefghij"), size=rng.integers(4, 12))) for _ in range(20_000)]
    run = start("tune", "--data", names_file(names, "many.txt"), "--budget", "1h", "--out-dir", tmp_path,
                "--engine", "numpy", "--jobs", "2")
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob(".*.trials/*.lock"))) < 2:  # both workers are training
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)
    below = descendants(run.pid)
    assert len(below) >= 2
    run.kill()
    run.wait()
    deadline = time.monotonic() + 20
    while any(running(pid) for pid in below):
        assert time.monotonic() < deadline, "a worker outlived its search"
        time.sleep(0.1)


def test_ctrl_c_in_a_terminal_stops_every_job_and_keeps_the_best(names_file, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    run = subprocess.Popen([sys.executable, "-m", "namegen", "tune", "--data", names_file(TINY * 8, "tiny.txt"),
                            "--budget", "1h", "--out-dir", tmp_path, "--engine", "numpy", "--jobs", "2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    ended = 0
    while ended < 4:  # runs have ended in both processes
        line = run.stdout.readline()
        assert line, run.stderr.read()
        ended += line.startswith("trial")
    os.killpg(run.pid, signal.SIGINT)  # as the terminal sends it: to the search and its workers
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted: best validation" in stdout
    assert load_checkpoint(tmp_path / "tiny~tuned.best.npz").epoch >= 1
    assert not list(tmp_path.glob(".*.trials"))


def test_several_lists_are_tuned_as_styles_and_the_command_names_them_all(cli, tmp_path):
    a, b = tmp_path / "sea.txt", tmp_path / "hill.txt"
    a.write_text("\n".join(f"mar{c}{d}" for c in "aeiou" for d in "nlst"))
    b.write_text("\n".join(f"{c}{d}berg" for c in "kgt" for d in "aeiou"))
    ran = cli("tune", "--data", a, "--data", b, "--budget", "2s", "--out-dir", tmp_path / "out", "--engine", "numpy",
              "--jobs", "1", "--json")
    assert ran.code == 0, ran.stderr
    payload = ran.json()
    assert load_checkpoint(payload["checkpoint"]).model.styles == ("sea", "hill")
    assert payload["checkpoint"].endswith("sea+hill~tuned.best.npz")
    assert f"--data {a} --data {b}" in payload["command"]
