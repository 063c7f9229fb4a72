"""Durable files: write a whole file or nothing, clean up after writers that were killed, and lock
a file against a second writer.

Nothing here knows what a checkpoint is. A file is written to a temporary name beside its target,
flushed to disk and renamed over the target, so a crash at any moment leaves either the old file
or the new one, never a torn one. The temporary names carry the writer's pid, so the next writer
can tell the leftovers of a dead process from the work of a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_prefix(path: Path, pid: int | None = None) -> str:
    """Temporary files for `path` are '.<name>.<writer pid>.<random>.tmp' in the same directory."""
    return f".{path.name}.{os.getpid() if pid is None else pid}."


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


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


@contextlib.contextmanager
def exclusive(path: str | Path):
    """Hold an exclusive lock on `path` (created if needed) while the block runs; raise Locked if
    another process holds it.

    The lock is flock(2)'s: the operating system releases it when its holder ends, however it
    ends, so the lock of a killed process is simply taken over. The file stays behind: removing
    it could let two processes lock two different files of the same name.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held_by = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise Locked(int(held_by) if held_by.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
