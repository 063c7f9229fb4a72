"""Durable files: write a whole file or nothing, clean up after writers that were killed, and lock
a file against a second writer.

Nothing here knows what a checkpoint is. A file is written to a temporary name beside its target,
flushed to disk and renamed over the target, so a crash at any moment leaves either the old file
or the new one, never a torn one. The temporary names carry the writer's pid, so the next writer
can tell the leftovers of a dead process from the work of a live one.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import stat
import sys
import tempfile
import time
from pathlib import Path

try:  # POSIX: flock(2)
    import fcntl
except ImportError:
    fcntl = None
try:  # Windows: LockFile
    import msvcrt
except ImportError:
    msvcrt = None

TEMP_SUFFIX = ".tmp"


def temp_prefix(path: Path, pid: int | None = None) -> str:
    """Temporary files for `path` are '.<name>.<writer pid>.<random>.tmp' in the same directory."""
    return f".{path.name}.{os.getpid() if pid is None else pid}."


def process_alive(pid: int) -> bool:
    """Whether a process of this pid runs (when in doubt, yes: its files are then left alone)."""
    if sys.platform == "win32":  # os.kill(pid, 0) would send Ctrl-C there: ask for the process instead
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process: alive; a pid too large to ask about
        return True
    return True


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.GetLastError() == 5  # access denied: it exists; anything else: it does not
    try:
        code = ctypes.c_ulong()
        return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete temporary files of `path` whose writer is gone (a killed run); return them.

    A temporary file is only ever renamed into place once complete, so a stale one is never a
    file anyone needs; those of live writers are left alone.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def probe_writable(directory: str | Path) -> None:
    """Create `directory` if needed and write a file there; raise OSError if that fails."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".namegen-probe.", delete=True):
        pass


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, content: bytes) -> None:
    """Write content to path so that readers see the old file or the new one, never a mix.

    Raises OSError (disk full, no permission); the old file and no temporary file are left then.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it 0600; this is a normal file
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)  # make the rename itself durable


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable where the platform can: POSIX syncs a directory opened
    for reading; Windows cannot open one, and its file systems keep their own journal of renames."""
    if sys.platform == "win32":
        return
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_link(source: str | Path, path: str | Path) -> bool:
    """Make `path` a second name of the complete file `source`, atomically (readers see the old
    file or the new one), writing no data: a hard link under a temporary name, renamed into place.
    The two stay independent as long as `source` is only ever replaced by a rename, as
    atomic_write does. False, and nothing changed, where the file system has no hard links."""
    source, path = Path(source), Path(path)
    tmp = path.with_name(f"{temp_prefix(path)}{os.urandom(4).hex()}{TEMP_SUFFIX}")
    try:
        os.link(source, tmp)
    except OSError:
        return False
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return True


class Locked(Exception):
    """Another process holds the lock; pid is what it wrote into the lock file, if readable."""

    def __init__(self, pid: int | None):
        super().__init__(pid)
        self.pid = pid


class NotALock(Exception):
    """What stands where a lock file goes is not one namegen may use (a symbolic link, a directory,
    a FIFO, a file of someone else's, a second name of another file); the message says which."""


# A lock file holds the pid of its holder and nothing else: anything more was not written by namegen.
LOCK_CONTENT = re.compile(rb"\d{0,20}\n?")
LOCK_BYTE = 2**20  # the byte Windows locks: beyond the pid, which stays readable to a second process


def _lock_flags() -> int:
    """Open flags of a lock file: read-write, created if missing; never through a symbolic link, never
    waiting on a FIFO, never inherited by a child process. Flags a platform lacks are left out."""
    flags = os.O_RDWR | os.O_CREAT
    for name in ("O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC", "O_BINARY", "O_NOINHERIT"):
        flags |= getattr(os, name, 0)
    return flags


def _open_lock(path: Path) -> int:
    """The lock file open for reading and writing, refused (NotALock) unless it is a regular file of
    one name holding a pid or nothing; OSError if it cannot be opened or created."""
    if path.is_symlink():  # where O_NOFOLLOW does not exist, and for a clearer message where it does
        raise NotALock(f"{path} is a symbolic link where namegen keeps a lock file; remove it")
    try:
        fd = os.open(path, _lock_flags(), 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotALock(f"{path} is a symbolic link where namegen keeps a lock file; remove it") from None
        if e.errno == errno.EISDIR or path.is_dir():
            raise NotALock(f"{path} is a directory where namegen keeps a lock file; move it") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotALock(f"{path} is not a regular file (a FIFO, a socket or a device) where namegen keeps a "
                           "lock file; remove it")
        if info.st_nlink > 1:
            raise NotALock(f"{path} has more than one name (a hard link to another file) where namegen keeps a lock "
                           "file; remove it")
        if info.st_size > 32 or not LOCK_CONTENT.fullmatch(_read_start(fd, 32)):
            raise NotALock(f"{path} is not a namegen lock file (it holds something other than a pid); move it")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_start(fd: int, size: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, size)


if fcntl is not None:
    def _try_lock(fd: int) -> bool:
        """Take the lock without waiting: flock(2), released by the OS when its holder ends, however it ends."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True
elif msvcrt is not None:
    def _try_lock(fd: int) -> bool:
        """Take the lock without waiting: one byte locked with msvcrt.locking (LockFile), released by
        Windows when the file is closed or its holder ends."""
        os.lseek(fd, LOCK_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    def _try_lock(fd: int) -> bool:
        raise OSError(errno.ENOSYS, "this platform has no file locking namegen knows")


@contextlib.contextmanager
def exclusive(path: str | Path, wait: float = 0.0):
    """Hold an exclusive lock on `path` (created if needed) while the block runs; raise Locked if
    another process holds it for longer than `wait` seconds, NotALock if what stands at `path` is not
    a lock file (nothing is written to it then), OSError if it cannot be opened or created.

    The OS releases the lock when its holder ends, however it ends, so the lock of a killed
    process is simply taken over. The file stays behind: removing it could let two processes lock
    two different files of the same name. It holds the holder's pid, for the message of the next.
    """
    path = Path(path)
    fd = _open_lock(path)
    try:
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                held_by = _read_start(fd, 32).decode("ascii", "replace").strip()
                raise Locked(int(held_by) if held_by.isdigit() else None)
            time.sleep(0.01)
        os.ftruncate(fd, 0)  # a pid or nothing (checked above): namegen's own file
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock
