"""Faults: killed and interrupted runs, full or unwritable disks, divergence, mismatched resumes.

The kill and Ctrl-C tests run `python -m namegen train` as a real subprocess on a tiny model.
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
from typer.testing import CliRunner

from namegen.checkpoint import load_checkpoint, remove_stale_temporaries
from namegen.cli import app
from namegen.data import read_names
from namegen.state import TrainConfig, new_state, resume_state
from namegen.train import train

runner = CliRunner()
TINY = ["Abelisaurus", "Brachiosaurus", "Ceratops", "Diplodocus", "Edmontosaurus", "Fukuiraptor",
        "Gallimimus", "Herrerasaurus", "Iguanodon", "Juravenator", "Kentrosaurus", "Lambeosaurus",
        "Maiasaura", "Nodosaurus", "Oviraptor", "Pachycephalosaurus", "Quaesitosaurus", "Rugops",
        "Stegosaurus", "Troodon", "Utahraptor", "Velociraptor", "Wuerhosaurus", "Xenotarsosaurus"]


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("\n".join(TINY), encoding="utf-8")
    return path


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "namegen", "train", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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


def test_sigkill_at_random_moments_always_leaves_a_loadable_checkpoint(tiny, tmp_path):
    out = tmp_path / "ck"
    checkpoint = out / "tiny.npz"
    rng = np.random.default_rng(0)
    loaded = []
    for _ in range(10):
        args = ["--resume", checkpoint] if checkpoint.exists() else ["--data", tiny, "--out-dir", out]
        before = modified(checkpoint)
        proc = start(*args, "--epochs", 100_000, "--hidden-size", 4, "--preview", 0)
        wait_for(checkpoint, since=before)  # this run is saving epochs many times a second now
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.wait()
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


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "c.npz"
    dead = tmp_path / ".c.npz.999999999.abc.tmp"  # above any pid_max: no such process
    live = tmp_path / f".c.npz.{os.getpid()}.def.tmp"
    other = tmp_path / ".d.npz.999999999.abc.tmp"  # another checkpoint's: not ours to touch
    for p in (dead, live, other):
        p.write_bytes(b"partial")
    assert remove_stale_temporaries(target) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def test_ctrl_c_saves_says_where_exits_130_and_resumes_exactly(tiny, tmp_path):
    out = tmp_path / "ck"
    checkpoint = out / "tiny.npz"
    proc = start("--data", tiny, "--out-dir", out, "--epochs", 100_000, "--hidden-size", 4,
                 "--lr-schedule", "constant", "--seed", 1, "--preview", 0)
    wait_for(checkpoint)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted: saved" in stderr and str(checkpoint) in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    saved = load_checkpoint(checkpoint)
    total = saved.epoch + 2
    resumed = resume_state(saved, {"epochs": total})
    train(resumed)
    straight = new_state(TrainConfig(hidden_size=4, epochs=total, lr_schedule="constant", seed=1), read_names(tiny))
    train(straight)
    np.testing.assert_array_equal(resumed.params, straight.params)
    assert resumed.step == straight.step


def test_full_disk_stops_training_with_one_line_and_keeps_the_last_checkpoint(tiny, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_until_full(fd):
        calls["n"] += 1
        if calls["n"] > 4:  # epoch 1 writes the checkpoint and the best one (file + directory each)
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("namegen.checkpoint.os.fsync", fsync_until_full)
    result = runner.invoke(app, ["train", "--data", str(tiny), "--epochs", "5", "--hidden-size", "4",
                                 "--out-dir", str(tmp_path), "--preview", "0"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "tiny.npz" in lines[0]
    assert load_checkpoint(tmp_path / "tiny.npz").epoch == 1
    assert temporaries(tmp_path) == []


@pytest.mark.parametrize("where", ["/proc/namegen-cannot-write-here", "a-file/sub"])
def test_unwritable_checkpoint_directory_fails_before_training(tiny, tmp_path, where, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("not a directory")
    result = runner.invoke(app, ["train", "--data", str(tiny), "--out-dir", where])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot write checkpoints to") and "epoch" not in result.stdout


def test_divergence_names_epoch_and_update_and_leaves_the_checkpoint_alone(tiny, tmp_path):
    args = ["train", "--data", str(tiny), "--epochs", "1", "--hidden-size", "4", "--out-dir", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    before = (tmp_path / "tiny.npz").read_bytes()
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "tiny.npz"), "--epochs", "4",
                                 "--learning-rate", "1e308"])  # one clipped step of 5 overflows
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "diverged" in line and "epoch 2" in line and "update" in line and "not touched" in line
    assert "\n" not in line
    assert (tmp_path / "tiny.npz").read_bytes() == before


def test_resume_with_other_data_or_architecture_is_refused(tiny, tmp_path):
    assert runner.invoke(app, ["train", "--data", str(tiny), "--epochs", "1", "--hidden-size", "4",
                               "--out-dir", str(tmp_path)]).exit_code == 0
    other = tmp_path / "other.txt"
    other.write_text("\n".join(TINY[:-1] + ["Zuniceratops"]), encoding="utf-8")
    checkpoint = str(tmp_path / "tiny.npz")
    cases = [(["--data", str(other)], "not the data this checkpoint was trained on"),
             (["--hidden-size", "8"], "hidden_size=8"),
             (["--keep-case"], "keep_case=True"),
             (["--val-fraction", "0.3"], "val_fraction=0.3")]
    for extra, message in cases:
        result = runner.invoke(app, ["train", "--resume", checkpoint, "--epochs", "3", *extra])
        assert result.exit_code == 1 and message in result.stderr, (extra, result.stderr)
    assert load_checkpoint(tmp_path / "tiny.npz").epoch == 1


def test_a_huge_but_finite_loss_does_not_crash_the_epoch_preview(tiny, tmp_path):
    """At lr 1e200 the loss stays finite but the model never ends a name; training still finishes."""
    result = runner.invoke(app, ["train", "--data", str(tiny), "--epochs", "2", "--hidden-size", "4",
                                 "--out-dir", str(tmp_path), "--learning-rate", "1e200"])
    assert result.exit_code == 0, result.stderr
    assert "epoch   2/2" in result.stdout and "done: 2 epochs" in result.stdout
