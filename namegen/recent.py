"""The last run started in each directory, so that every command uses the model just trained there.

`namegen train` records where its run saves; without a checkpoint named, the other commands use
that run's best checkpoint (else its latest), else the model shipped with namegen. The record is
one small JSON file in the user's state directory ($XDG_STATE_HOME, by default ~/.local/state),
keyed by directory, so nothing is added to the user's own folders.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .data import bundled_path
from .files import atomic_write
from .training import best_path

MAX_RECORDS = 256  # directories remembered; the oldest are forgotten first


def state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "namegen" / "runs.json"


def _records() -> dict[str, dict]:
    """Directory -> {"checkpoint", "started"}; an unreadable or foreign file counts as empty."""
    try:
        records = json.loads(state_file().read_text(encoding="utf-8"))["runs"]
        return {d: r for d, r in records.items() if isinstance(r.get("checkpoint"), str)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def record_run(checkpoint: str | Path) -> None:
    """Remember `checkpoint` (a run's .latest.npz) as the last run started in this directory.
    A convenience: if the state directory cannot be written, nothing is remembered."""
    records = _records()
    records[str(Path.cwd().resolve())] = {"checkpoint": str(Path(checkpoint).resolve()), "started": time.time()}
    kept = dict(sorted(records.items(), key=lambda item: item[1].get("started", 0))[-MAX_RECORDS:])
    try:
        state_file().parent.mkdir(parents=True, exist_ok=True)
        atomic_write(state_file(), json.dumps({"runs": kept}, indent=1).encode("utf-8"))
    except OSError:
        pass


def default_checkpoint() -> tuple[Path, str]:
    """The checkpoint a command uses when none is named, and in words which one it is."""
    record = _records().get(str(Path.cwd().resolve()))
    if record is not None:
        latest = Path(record["checkpoint"])
        if best_path(latest).exists():
            return _relative(best_path(latest)), "the best model of the last run started here"
        if latest.exists():
            return _relative(latest), "the latest model of the last run started here"
    shipped = bundled_path("checkpoints", "dinos.npz")
    return _relative(shipped), "the dinosaur model shipped with namegen; no run started here has saved one"


def _relative(path: Path) -> Path:
    """The path as a user here would type it: relative to this directory when it lies below it."""
    here = Path.cwd().resolve()
    return path.resolve().relative_to(here) if path.resolve().is_relative_to(here) else path
