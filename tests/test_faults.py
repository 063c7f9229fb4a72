"""Faults: killed and interrupted runs, a full disk, and Ctrl-C, as a user meets them.

The kill and Ctrl-C tests run `python -m namegen` as a real subprocess on a tiny model.
"""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint
from namegen.data import read_names
from namegen.state import TrainConfig, new_state, resume_state
from namegen.training import train

from conftest import TINY, Forked, own_tqdm_locks


@pytest.fixture
def tiny(names_file):
    return names_file(TINY, "tiny.txt")


def start(*args):
    """namegen in a subprocess that takes Ctrl-C as a terminal's foreground command does: a shell
    starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT ignored, so a
    suite run in the background would otherwise wait in vain for `sample` to stop."""
    return subprocess.Popen([sys.executable, "-m", "namegen", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def modified(path: Path):
    return path.stat().st_mtime_ns if path.exists() else None


def wait_for(path: Path, timeout: float = 20.0, since=None):
    """Until `path` exists and was written after the `since` modification time."""
    deadline = time.monotonic() + timeout
    while modified(path) is None or modified(path) == since:
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.01)


def temporaries(directory: Path):
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.slow
@pytest.mark.slow
def test_a_forked_run_draws_its_bars_though_a_killed_sibling_held_the_write_lock(tiny, tmp_path):
    """The harness's own soundness. A child forked from here takes tqdm's write lock and dies
    holding it, as a run killed while it drew a bar does (the lock is a semaphore every fork
    shares); the next forked run still ends. This process's locks are fresh ones for the test."""
    from tqdm.std import TqdmDefaultWriteLock, tqdm

    saved = TqdmDefaultWriteLock.th_lock, TqdmDefaultWriteLock.__dict__.get("mp_lock"), tqdm.get_lock()
    own_tqdm_locks()
    try:
        holder = os.fork()
        if holder == 0:
            tqdm.get_lock().acquire()
            os._exit(0)  # still holding it
        os.waitpid(holder, 0)
        run = Forked("train", "--data", tiny, "--out-dir", tmp_path, "--epochs", 2, "--hidden-size", 4, "--preview", 0)
        assert run.wait(timeout=20) == 0
    finally:
        TqdmDefaultWriteLock.th_lock, TqdmDefaultWriteLock.mp_lock = saved[:2]
        tqdm.set_lock(saved[2])


def test_sigkill_at_random_moments_always_leaves_a_loadable_checkpoint(tiny, tmp_path):
    out = tmp_path / "ck"
    checkpoint = out / "tiny.latest.npz"
    rng = np.random.default_rng(0)
    loaded = []
    for _ in range(20):
        args = ["--resume", checkpoint] if checkpoint.exists() else ["--data", tiny, "--out-dir", out]
        before = modified(checkpoint)
        run = Forked("train", *args, "--epochs", 100_000, "--hidden-size", 4, "--preview", 0)
        wait_for(checkpoint, since=before)  # this run is saving epochs many times a second now
        time.sleep(rng.uniform(0.0, 0.4))
        run.kill()
        state = load_checkpoint(checkpoint)  # never torn: the old file or the new, both complete
        load_checkpoint(out / "tiny.best.npz")
        loaded.append(state.step)
    assert loaded == sorted(loaded) and loaded[-1] > loaded[0]  # each resume continued the last
    final = load_checkpoint(checkpoint)
    done = subprocess.run([sys.executable, "-m", "namegen", "train", "--resume", str(checkpoint),
                           "--epochs", str(final.epoch + 2), "--preview", "0"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(checkpoint).epoch == final.epoch + 2
    assert temporaries(out) == []  # stale ones from the killed runs were cleaned up too


@pytest.mark.slow
@pytest.mark.parametrize("signum, said", [(signal.SIGINT, "interrupted: saved"), (signal.SIGTERM, "stopped by SIGTERM: saved"),
                                          (signal.SIGHUP, "stopped by SIGHUP: saved")])
def test_ctrl_c_sigterm_and_sighup_save_say_where_exit_128_plus_the_signal_and_resume_exactly(tiny, tmp_path, signum, said):
    out = tmp_path / "ck"
    checkpoint = out / "tiny.latest.npz"
    proc = start("train", "--data", tiny, "--out-dir", out, "--epochs", 100_000, "--hidden-size", 4,
                 "--lr-schedule", "constant", "--seed", 1, "--preview", 0)
    wait_for(checkpoint)
    time.sleep(0.3)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum
    assert "stopping after the current step" in stderr  # acknowledged at once
    assert said in stderr and str(checkpoint) in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    saved = load_checkpoint(checkpoint)
    total = saved.epoch + 2
    resumed = resume_state(saved, {"epochs": total})
    train(resumed)
    straight = new_state(TrainConfig(hidden_size=4, epochs=total, lr_schedule="constant", seed=1), read_names(tiny))
    train(straight)
    np.testing.assert_array_equal(resumed.model.params, straight.model.params)
    assert resumed.step == straight.step


@pytest.mark.slow
def test_ctrl_c_in_any_other_command_says_interrupted_and_exits_130(trained_checkpoint):
    proc = start("sample", "-c", trained_checkpoint, "-n", 100_000_000, "--seed", 0)
    time.sleep(2.0)  # past start-up, drawing names
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and stderr.strip() == "interrupted"


def test_full_disk_stops_training_with_one_line_and_keeps_the_last_checkpoint(cli, tiny, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_until_full(fd):
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(".tiny.latest.npz."):  # a latest checkpoint's data
            calls["n"] += 1
        if calls["n"] > 1:  # the disk fills up as epoch 2 saves
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("namegen.files.os.fsync", fsync_until_full)
    result = cli("train", "--data", tiny, "--epochs", 5, "--hidden-size", 4, "--out-dir", tmp_path, "--preview", 0)
    result.fails_in_one_line(1, "No space left on device")
    assert "tiny.latest.npz" in result.stderr
    assert load_checkpoint(tmp_path / "tiny.latest.npz").epoch == 1
    assert temporaries(tmp_path) == []


@pytest.mark.slow
def test_a_second_run_on_the_same_files_is_refused_naming_the_first_and_a_dead_ones_lock_is_taken_over(tiny, tmp_path):
    out = tmp_path / "ck"
    first = start("train", "--data", tiny, "--out-dir", out, "--epochs", 100_000, "--hidden-size", 4, "--preview", 0)
    wait_for(out / "tiny.latest.npz")
    second = subprocess.run([sys.executable, "-m", "namegen", "train", "--data", str(tiny), "--out-dir", str(out),
                             "--epochs", "1", "--hidden-size", "4"], capture_output=True, text=True)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 1 and len(lines) == 1 and f"another namegen run (pid {first.pid})" in lines[0], second.stderr
    assert second.stdout == ""  # refused before it printed anything
    first.kill()
    first.wait()
    assert (out / "tiny.lock").read_text().strip() == str(first.pid)  # the dead run's lock is still there ...
    third = subprocess.run([sys.executable, "-m", "namegen", "train", "--data", str(tiny), "--out-dir", str(out),
                            "--epochs", "1", "--hidden-size", "4", "--preview", "0"], capture_output=True, text=True)
    assert third.returncode == 0, third.stderr  # ... and taken over


@pytest.mark.slow
def test_a_run_stopped_in_its_first_epoch_saves_where_it_was(names_file, tmp_path):
    """Before anything was saved, SIGTERM used to lose the whole first epoch."""
    rng = np.random.default_rng(0)
    names = ["".join(rng.choice(list("abcdefghij"), size=rng.integers(4, 12))) for _ in range(60_000)]
    data = names_file(names, "many.txt")  # an epoch of several seconds at hidden 64
    proc = start("train", "--data", data, "--out-dir", tmp_path, "--hidden-size", 64, "--preview", 0)
    wait_for(tmp_path / "many.lock")  # the run has started
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    saved = load_checkpoint(tmp_path / "many.latest.npz")
    assert saved.epoch == 0 and saved.position > 0


DOUBLE_CTRL_C = """
import os, signal, sys
import namegen.training as training
real = training.evaluate
def evaluate_while_ctrl_c_is_pressed_twice(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGINT)
    return real(*args, **kwargs)
training.evaluate = evaluate_while_ctrl_c_is_pressed_twice
from namegen.cli import main
sys.argv = ["namegen", "train"] + sys.argv[1:]
main()
"""


@pytest.mark.slow
def test_ctrl_c_twice_during_the_epochs_end_loses_nothing(tiny, tmp_path):
    proc = subprocess.run([sys.executable, "-c", DOUBLE_CTRL_C, "--data", str(tiny), "--out-dir", str(tmp_path),
                           "--epochs", "5", "--hidden-size", "4", "--preview", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert "Ctrl-C: stopping after the current step" in proc.stderr
    assert "Ctrl-C: already stopping" in proc.stderr
    saved = load_checkpoint(tmp_path / "tiny.latest.npz")
    assert saved.epoch == 1 and saved.position == 0  # the epoch whose end was interrupted, whole


INTERRUPTED_START = """
import builtins, sys
real_import = builtins.__import__
def ctrl_c_while_typer_loads(name, *args, **kwargs):
    if name == "typer":
        raise KeyboardInterrupt
    return real_import(name, *args, **kwargs)
builtins.__import__ = ctrl_c_while_typer_loads
sys.argv = ["namegen", "sample"]
from namegen.entry import main
main()
"""


def test_ctrl_c_while_namegen_starts_says_interrupted_not_a_traceback():
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_START], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130 and proc.stderr == "interrupted\n"
