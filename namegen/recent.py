"""The runs started in each directory, so that every command uses the model just trained there.

`namegen train` and `namegen tune` record where their run saves; without a checkpoint named, the
other commands use the best model of the last run started in the current directory (its best
checkpoint, else its latest), unless an earlier run there is better on the same validation names:
then that one, and the line that names the model says why. Where no run was recorded, the model
shipped with namegen. The record is one small JSON file in the user's state directory (see
state_directory), so nothing is added to the user's own folders.

The file is shared by every namegen the user runs, and may be damaged or hostile like any file:
it is read only up to MAX_BYTES, every record is checked and a bad one skipped, and it is updated
under a lock, so that runs started at once in many directories are all recorded.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .checkpoint import read_summary
from .data import bundled_path
from .files import Locked, NotALock, atomic_write, exclusive
from .runs import RunFiles

MAX_DIRECTORIES = 256  # directories remembered; those of the oldest runs are forgotten first
RUNS_PER_DIRECTORY = 8  # runs remembered in each, newest first: the ones a default is chosen among
MAX_BYTES = 2**20  # the file is read up to this size; a larger one is not ours, and is read as empty
MAX_PATH = 4096  # characters in a recorded path
LOCK_WAIT = 5.0  # seconds a run waits for another namegen to finish updating the file


def state_directory() -> Path:
    """namegen's folder in the user's state directory: $XDG_STATE_HOME/namegen where that is an
    absolute path (the XDG specification ignores a relative one), else the platform's own place
    for it (platformdirs): ~/.local/state/namegen on Linux, ~/Library/Application Support/namegen on
    macOS, %LOCALAPPDATA%\\namegen on Windows."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "namegen"
    if sys.platform in ("win32", "darwin"):
        import platformdirs

        return Path(platformdirs.user_state_dir("namegen", appauthor=False))
    return Path.home() / ".local" / "state" / "namegen"


def state_file() -> Path:
    return state_directory() / "runs.json"


@dataclass(frozen=True)
class Record:
    checkpoint: Path  # the run's .latest.npz, absolute
    started: float  # time.time() when it started


def _record(value) -> Record | None:
    """A record as the file holds it, or None if it is not a well-formed one."""
    if not isinstance(value, dict):
        return None
    checkpoint, started = value.get("checkpoint"), value.get("started")
    if not (isinstance(checkpoint, str) and 0 < len(checkpoint) <= MAX_PATH and "\0" not in checkpoint
            and os.path.isabs(checkpoint) and Path(checkpoint).name):
        return None
    if isinstance(started, bool) or not isinstance(started, (int, float)) or not math.isfinite(started):
        return None
    return Record(Path(checkpoint), float(started))


def _read() -> dict[str, list[Record]]:
    """Directory -> its runs, newest first: the well-formed records of the file. A missing,
    unreadable, oversized or foreign file, or a bad record, counts as nothing."""
    try:
        with open(state_file(), "rb") as f:
            raw = f.read(MAX_BYTES + 1)
        runs = json.loads(raw.decode("utf-8"))["runs"] if len(raw) <= MAX_BYTES else {}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return {}
    if not isinstance(runs, dict):
        return {}
    table = {}
    for directory, entries in list(runs.items())[: 4 * MAX_DIRECTORIES]:
        entries = [entries] if isinstance(entries, dict) else entries  # a file of namegen 0.1: one run each
        if isinstance(directory, str) and os.path.isabs(directory) and isinstance(entries, list):
            records = [r for r in map(_record, entries[:RUNS_PER_DIRECTORY]) if r is not None]
            if records:
                table[directory] = sorted(records, key=lambda r: r.started, reverse=True)
    return table


def record_run(checkpoint: str | Path) -> str | None:
    """Remember the run that saves to `checkpoint` as the last run started in this directory.
    None if it was recorded; else why not, in words (the run goes on all the same)."""
    here = str(Path.cwd().resolve())
    new = Record(Path(checkpoint).resolve(), time.time())
    try:
        state_directory().mkdir(parents=True, exist_ok=True)
        with exclusive(state_directory() / "runs.lock", wait=LOCK_WAIT):
            table = _read()
            same = RunFiles.of(new.checkpoint)
            table[here] = [new] + [r for r in table.get(here, []) if RunFiles.of(r.checkpoint) != same]
            table[here] = table[here][:RUNS_PER_DIRECTORY]
            kept = sorted(table.items(), key=lambda item: item[1][0].started)[-MAX_DIRECTORIES:]
            content = {"runs": {d: [{"checkpoint": str(r.checkpoint), "started": r.started} for r in records]
                                for d, records in kept}}
            atomic_write(state_file(), json.dumps(content, indent=1).encode("utf-8"))
    except Locked:
        return f"another namegen held {state_directory() / 'runs.lock'} for over {LOCK_WAIT:g}s"
    except NotALock as e:
        return str(e)
    except OSError as e:
        return f"{state_directory()}: {e.strerror or e}"
    return None


class Choice(NamedTuple):
    """The checkpoint a command uses when none is named, and in words which one it is and why."""

    path: Path
    which: str


SHIPPED = "the dinosaur model shipped with namegen"


def default_checkpoint() -> Choice:
    """The best model of the last run started here that still has one, unless an earlier run here
    is better on the same validation names; where no run was recorded, the shipped model."""
    records = _read().get(str(Path.cwd().resolve()), [])
    shipped = bundled_path("checkpoints", "dinos.npz")
    if not records:
        return Choice(_relative(shipped), f"{SHIPPED}; no run started here has saved one")
    saved = [(record, path) for record in records if (path := _saved(record)) is not None]
    if not saved:
        return Choice(_relative(shipped), f"{SHIPPED}; the last run started here saved to "
                                          f"{_relative(records[0].checkpoint)}, which is no longer there")
    (record, path), gone = saved[0], saved[0][0] is not records[0]
    kind = "best" if path == RunFiles.of(record.checkpoint).best else "latest"
    which = f"the {kind} model of the last run started here" + (
        f" that still has one ({_relative(records[0].checkpoint)} is no longer there)" if gone else "")
    better = _better(path, [p for _, p in saved[1:]])
    if better is None:
        return Choice(_relative(path), which)
    there, loss, ours = better
    return Choice(_relative(there), f"an earlier run here is better on the same validation names ({loss:.4f} "
                                    f"nats/char against {ours:.4f} for {_relative(path)}, {which}); name that one with -c")


def _saved(record: Record) -> Path | None:
    """The run's best checkpoint, else its latest, if either is a file. A run without validation
    names (--val-fraction 0, as tune's every-name command) has no best: a best file beside its
    latest is an earlier run's, and its model is its latest."""
    run = RunFiles.of(record.checkpoint)
    if (summary := read_summary(run.latest)) is not None and summary.val_fraction == 0:
        return run.latest
    return next((p for p in (run.best, run.latest) if p.is_file()), None)


def _better(path: Path, others: list[Path]) -> tuple[Path, float, float] | None:
    """The best of `others` if it beats `path` on the same validation names: (it, its loss, path's)."""
    ours = read_summary(path)
    if ours is None or ours.best_val_loss is None:
        return None
    rivals = [(s.best_val_loss, p) for p in others if (s := read_summary(p)) is not None and s.comparable(ours)]
    if not rivals:
        return None
    loss, there = min(rivals)
    return (there, loss, ours.best_val_loss) if loss < ours.best_val_loss else None


def _relative(path: Path) -> Path:
    """The path as a user here would type it: relative to this directory when it lies below it."""
    here = Path.cwd().resolve()
    resolved = path.resolve()
    return resolved.relative_to(here) if resolved.is_relative_to(here) else path
