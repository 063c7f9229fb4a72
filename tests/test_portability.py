"""namegen where its users are: Windows and macOS as well as Linux. CI runs on Linux, so the test
simulates what differs: no fcntl module (Windows has msvcrt's LockFile instead), no SIGHUP, and
hard links refused (FAT drives, some network shares). A POSIX-only call slipping back in fails here."""

import subprocess
import sys
import time

import pytest

from namegen.checkpoint import load_checkpoint

from conftest import TINY

# What the simulated platform lacks. msvcrt.locking is played by POSIX record locks (lockf), taken
# before `import fcntl` is made to fail; subprocess is imported first, since it takes any module
# named msvcrt for Windows.
PLATFORM = '''
import errno, os, signal, subprocess, sys, types
import fcntl as _posix
sys.modules["fcntl"] = None
del signal.SIGHUP

def no_hard_links(*args, **kwargs):
    raise OSError(errno.EPERM, "Operation not permitted")

os.link = no_hard_links
msvcrt = types.ModuleType("msvcrt")
msvcrt.LK_UNLCK, msvcrt.LK_LOCK, msvcrt.LK_NBLCK = 0, 1, 2

def locking(fd, mode, nbytes):
    at = os.lseek(fd, 0, os.SEEK_CUR)
    if mode == msvcrt.LK_UNLCK:
        return _posix.lockf(fd, _posix.LOCK_UN, nbytes, at, 0)
    try:
        _posix.lockf(fd, _posix.LOCK_EX | _posix.LOCK_NB, nbytes, at, 0)
    except OSError:
        raise PermissionError(errno.EACCES, "Permission denied") from None

msvcrt.locking = locking
sys.modules["msvcrt"] = msvcrt
'''
NAMEGEN = PLATFORM + '''
sys.argv = ["namegen"] + sys.argv[1:]
from namegen.entry import main
main()
'''
HOLD_LOCK = PLATFORM + '''
import time
from namegen.files import exclusive, fcntl
assert fcntl is None
with exclusive(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
'''


def namegen(*args, cwd):
    return subprocess.run([sys.executable, "-c", NAMEGEN, *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.slow
def test_train_resume_sample_and_tune_run_without_fcntl_sighup_or_hard_links(tmp_path):
    (tmp_path / "names.txt").write_text("\n".join(TINY))
    steps = [("train", "--data", "names.txt", "--epochs", 2, "--hidden-size", 4, "--preview", 0, "--engine", "numpy"),
             ("train", "--resume", "checkpoints/names.latest.npz", "--epochs", 3, "--preview", 0, "--engine", "numpy"),
             ("sample", "-n", 3, "--seed", 1),
             ("tune", "--data", "names.txt", "--budget", "1s", "--engine", "numpy")]
    for args in steps:
        ran = namegen(*args, cwd=tmp_path)
        assert ran.returncode == 0 and "Traceback" not in ran.stderr, (args, ran.stderr)
    assert load_checkpoint(tmp_path / "checkpoints" / "names.latest.npz").epoch == 3
    best = load_checkpoint(tmp_path / "checkpoints" / "names.best.npz")  # written again, not linked
    assert best.best_val_loss is not None and load_checkpoint(tmp_path / "checkpoints" / "names~tuned.best.npz")


@pytest.mark.slow
def test_a_second_run_is_refused_with_the_windows_lock(tmp_path):
    (tmp_path / "names.txt").write_text("\n".join(TINY))
    lock = tmp_path / "checkpoints" / "names.lock"
    lock.parent.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        ran = namegen("train", "--data", "names.txt", "--epochs", 1, "--hidden-size", 4, cwd=tmp_path)
        assert ran.returncode == 1 and f"another namegen run (pid {holder.pid})" in ran.stderr, ran.stderr
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert namegen("train", "--data", "names.txt", "--epochs", 1, "--hidden-size", 4, "--preview", 0,
                   cwd=tmp_path).returncode == 0  # the dead holder's lock is taken over
