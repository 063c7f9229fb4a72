"""Where a run keeps its files: one naming rule for every run, the run's lock, and where a resumed
run saves. Every module that needs a run's file names asks here, so no two rules can disagree.

A run is named after its data: a run on data/dinos.txt saves checkpoints/dinos.latest.npz after
every epoch and checkpoints/dinos.best.npz whenever validation improves, and trains under the lock
checkpoints/dinos.lock. Several lists join their names with '+' (dinos+firstnames), and tune's
model is the run's name and '~tuned' (dinos~tuned.best.npz). The rule is injective: a '%', '+' or
'~' of a file's own name is written %25, %2B or %7E, so no data file is named like a list of
others or like a tuned model, and a name too long for a file system is cut and given a hash of the
whole (…%h<16 hex digits>), so cut names stay apart too.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import load_checkpoint
from .errors import CheckpointError, OptionName, TrainingError
from .files import Locked, NotALock, exclusive

LATEST, BEST, LOCK = ".latest.npz", ".best.npz", ".lock"
TUNED = "~tuned"  # the marker of a tuned model: dinos~tuned.best.npz
DEFAULT_STEM = "dinos"  # the bundled list's run name
MAX_RUN_NAME_BYTES = 160  # UTF-8 bytes: with a suffix and a temporary file's tag, well within 255
ESCAPES = {"%": "%25", "+": "%2B", "~": "%7E"}


def data_paths(data: str | Path | list | None) -> list[Path]:
    """The names files a run is given: none (the bundled list), one, or several."""
    return [] if data is None else [Path(data)] if isinstance(data, (str, Path)) else [Path(p) for p in data]


def run_name(paths: list[Path]) -> str:
    """The run's name for these data files (none: the bundled list), within MAX_RUN_NAME_BYTES."""
    stems = ["".join(ESCAPES.get(c, c) for c in path.stem) for path in paths] or [DEFAULT_STEM]
    return fitted("+".join(stems))


def fitted(name: str) -> str:
    """The name, or if it is too long for a file name, its start and a hash of the whole of it."""
    if len(name.encode()) <= MAX_RUN_NAME_BYTES:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    start = name.encode("utf-8", "surrogateescape")[: MAX_RUN_NAME_BYTES - 18].decode("utf-8", "ignore")
    return f"{start}%h{digest}"


def tuned_name(name: str) -> str:
    """The name of the model tune keeps for the run of this name."""
    return fitted(name + TUNED)


@dataclass(frozen=True)
class RunFiles:
    """The files of one run: its latest checkpoint, its best checkpoint and its lock."""

    directory: Path
    name: str

    @classmethod
    def for_data(cls, data: str | Path | list | None, out_dir: str | Path | None = None) -> RunFiles:
        """The files of a new run on `data` (see data_paths) in out_dir (default: checkpoints)."""
        return cls(Path(out_dir or "checkpoints"), run_name(data_paths(data)))

    @classmethod
    def of(cls, checkpoint: str | Path) -> RunFiles:
        """The run a checkpoint belongs to: x.latest.npz and x.best.npz to run x, and so does any
        other checkpoint x.npz (from an earlier namegen, the shipped model, or a copy)."""
        checkpoint = Path(checkpoint)
        for suffix in (LATEST, BEST):
            if checkpoint.name.endswith(suffix):
                return cls(checkpoint.parent, checkpoint.name.removesuffix(suffix))
        return cls(checkpoint.parent, checkpoint.stem)

    @property
    def latest(self) -> Path:
        return self.directory / (self.name + LATEST)

    @property
    def best(self) -> Path:
        return self.directory / (self.name + BEST)

    @property
    def lock(self) -> Path:
        return self.directory / (self.name + LOCK)

    def tuned(self) -> RunFiles:
        """Where tune keeps its model of this run's data."""
        return RunFiles(self.directory, tuned_name(self.name))

    def spare(self) -> RunFiles:
        """A run of this one's name and the first free number, ~2, ~3 ...: where a result goes that
        must not replace a better one."""
        number = 2
        while (candidate := RunFiles(self.directory, fitted(f"{self.name}~{number}"))).latest.exists() or \
                candidate.best.exists():
            number += 1
        return candidate


def best_path(checkpoint: str | Path) -> Path:
    """checkpoints/dinos.latest.npz -> checkpoints/dinos.best.npz"""
    return RunFiles.of(checkpoint).best


@contextlib.contextmanager
def exclusive_run(checkpoint: str | Path):
    """Hold the lock of the run `checkpoint` belongs to while the block runs: a second run saving
    to the same files is refused, and so is anything but namegen's own lock file where it goes."""
    lock = RunFiles.of(checkpoint).lock
    held = contextlib.ExitStack()
    try:
        held.enter_context(exclusive(lock))
    except Locked as e:
        who = f"another namegen run (pid {e.pid})" if e.pid else "another namegen run"
        raise TrainingError(f"{who} is saving to {checkpoint}; wait for it to end, or choose another place with ",
                            OptionName("out_dir")) from None
    except NotALock as e:
        raise CheckpointError(str(e)) from None
    except OSError as e:
        raise CheckpointError(f"cannot lock {lock}: {e.strerror or e}; make it writable, or choose another place "
                              "with ", OptionName("out_dir")) from None
    with held:
        yield


def resume_target(resume: Path, ahead_of: int) -> Path:
    """Where a resumed run saves its latest state: back to the checkpoint it resumes, unless that
    is a best checkpoint, which the run replaces only with a better model. Its latest state goes
    to the run's .latest.npz, which is refused if it is further along than `ahead_of` updates."""
    if not resume.name.endswith(BEST):
        return resume
    latest = RunFiles.of(resume).latest
    try:
        ahead = load_checkpoint(latest).step > ahead_of if latest.exists() else False
    except CheckpointError:  # a damaged latest checkpoint holds nothing to keep
        ahead = False
    if ahead:
        raise TrainingError(f"{resume} is the best checkpoint of a run whose latest, {latest}, is further along; "
                            f"resume {latest}, or copy {resume} to a new file and resume the copy to go on from the best")
    return latest
