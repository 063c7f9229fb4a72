"""`namegen tune`: search for good training options within a wall-time budget.

The search is successive halving (Jamieson and Talwalkar 2016) over random settings, in rounds.
Every trial plans the same RUNG_EPOCHS[-1] epochs, so that its step size decays on the same
schedule whenever it is stopped. A round draws 9 settings and trains each for RUNG_EPOCHS[0]
epochs; the best third goes on to RUNG_EPOCHS[1] epochs, and the best of those to the end. Most
of the time goes to the settings that look best early, and a bad setting costs a few epochs.
Rounds repeat until the budget is spent; the trial running when it runs out stops there, and its
epochs so far count.

Every trial trains on the same split (the same seed) and is judged by its best validation loss.
Trials save to a scratch directory of this search's own beside the output, and only the live
ones and the best so far keep their files and their state: memory and disk stay bounded however
many trials a budget allows. The winner's best checkpoint is moved into place at the end (a rename:
no space needed, so a full disk keeps it too), and replaces the tuned model there only if it is
better on the same validation names; otherwise it is saved beside it (see runs.RunFiles.spare).
"""

from __future__ import annotations

import glob
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path

import numpy as np

from .checkpoint import check_checkpoint_dir, load_checkpoint
from .data import NameList, read_names
from .errors import CheckpointError, NamegenError, OptionError, OptionName, TrainingError, shortened
from .files import fsync_directory, process_alive
from .runs import LATEST, RunFiles, best_path, exclusive_run
from .state import TrainConfig, TrainState, new_state
from .training import Callbacks, train

RUNG_EPOCHS = (3, 9, 27)  # each rung trains the best third of the one before for three times the epochs
ROUND_SIZE = 9  # settings drawn per round: 9 -> 3 -> 1
LEADERS = 100  # trials a result ranks, best first; it counts the others

# What a trial draws. Per-name SGD is the default recipe; Adam gets a short warm-up; dropout is
# what lets a larger hidden state help instead of memorising the names. No batches of 64: in 27
# epochs of dinos.txt they make ~600 updates, and in a 3-minute search none passed the first rung.
HIDDEN_SIZES = (64, 128, 256)
DROPOUTS = (0.0, 0.2, 0.3, 0.5)
UPDATES = (("sgd", 1), ("adam", 1), ("adam", 8), ("adam", 16), ("adam", 32))  # (optimizer, batch size)
EMBEDDED = 0.5  # the share of trials that learn Wxh as a product E Wih, E as wide as the hidden state
LEARNING_RATES = {("sgd", 1): (0.003, 0.03), ("adam", 1): (0.0003, 0.003), "adam": (0.001, 0.01)}  # log-uniform

DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?")


def parse_duration(text: str) -> float:
    """Seconds in '90', '90s', '3m', '1h', '2m30s' or '1.5h'."""
    match = DURATION.fullmatch(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise OptionError(OptionName("budget"), f" must be a duration such as 90s, 3m or 1h30m, not {shortened(text)}")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 0 < total <= 7 * 24 * 3600:
        raise OptionError(OptionName("budget"), f" must be above 0 and at most a week, not {shortened(text)}")
    return total


def duration_text(seconds: float) -> str:
    """90 -> '1m30s', 5 -> '5s', 3600 -> '1h': a budget as people write it, unit included."""
    whole = round(seconds)
    if whole < 60 or abs(seconds - whole) > 1e-9:
        return f"{seconds:g}s"
    hours, rest = divmod(whole, 3600)
    minutes, rest = divmod(rest, 60)
    return "".join(f"{value}{unit}" for value, unit in ((hours, "h"), (minutes, "m"), (rest, "s")) if value)


@dataclass(frozen=True)
class Setting:
    """What a trial draws: the TrainConfig fields it changes."""

    hidden_size: int
    embedding_size: int
    dropout: float
    optimizer: str
    batch_size: int
    learning_rate: float
    warmup: float

    def options(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def draw_setting(rng: np.random.Generator) -> Setting:
    """One random setting."""
    optimizer, batch_size = UPDATES[rng.integers(len(UPDATES))]
    low, high = LEARNING_RATES.get((optimizer, batch_size), LEARNING_RATES.get(optimizer))
    learning_rate = float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.2g}")
    hidden_size = int(rng.choice(HIDDEN_SIZES))
    return Setting(hidden_size=hidden_size, embedding_size=hidden_size if rng.random() < EMBEDDED else 0,
                   dropout=float(rng.choice(DROPOUTS)), optimizer=optimizer, batch_size=batch_size,
                   learning_rate=learning_rate, warmup=0.05 if optimizer == "adam" else 0.0)


@dataclass(eq=False)
class Trial:
    """One setting being tried. Its state and files are dropped once it is out of the search and
    not the best so far; what it reached stays."""

    number: int  # from 1, in the order drawn
    setting: Setting
    checkpoint: Path  # its .latest.npz in the scratch directory
    state: TrainState | None
    planned_epochs: int
    epochs: int = 0  # completed
    best_val_loss: float = math.inf
    seconds: float = 0.0
    diverged: bool = False  # stopped by divergence: its best checkpoint stands, it trains no further

    def reached(self) -> None:
        """Note what its state has reached, so that it outlives the state."""
        self.epochs = self.state.epoch
        self.best_val_loss = math.inf if self.state.best_val_loss is None else self.state.best_val_loss


class TuneEnd(str, Enum):
    """Why a search ended."""

    BUDGET = "budget"
    INTERRUPTED = "interrupted"
    WRITE_FAILED = "write-failed"  # a trial could not save (a full disk): the best finished trial is kept


@dataclass
class Kept:
    """The tuned model that was already in place and stays, because this search did not beat it."""

    checkpoint: Path
    best_val_loss: float | None  # None: it cannot be compared (other validation names, or unreadable)
    why: str


@dataclass
class TuneResult:
    leaders: list[Trial]  # the best trials, best first (at most LEADERS)
    trials: int  # trials drawn in all
    best: Trial | None
    reason: TuneEnd
    seconds: float
    checkpoint: Path | None  # where the winner's best checkpoint was saved
    kept: Kept | None = None  # set when the winner did not replace the tuned model in place
    problem: NamegenError | None = None  # with WRITE_FAILED: what failed


@dataclass
class TuneCallbacks:
    """How tune reports; every hook is optional. on_tick: a time.perf_counter() reading, at every
    update; should_stop: a user's request to stop."""

    on_trial_end: Callable[[Trial], None] = lambda trial: None
    on_tick: Callable[[float], None] = lambda now: None
    should_stop: Callable[[], bool] = lambda: False


def check_judged(base: TrainConfig) -> None:
    """Refuse options without validation names: tune judges each trial on them."""
    if base.val_fraction == 0:
        raise OptionError(OptionName("val_fraction"), " must be above 0: tune judges each trial on validation names")


def tune(data: NameList, base: TrainConfig, budget: float, files: RunFiles, callbacks: TuneCallbacks | None = None,
         engine: str = "auto", draw: Callable[[np.random.Generator], Setting] = draw_setting) -> TuneResult:
    """Successive halving within `budget` seconds (see the module's text).

    base: the options every trial shares (seed, split, case, clip...); its epochs are replaced by
    RUNG_EPOCHS[-1] and the drawn settings. files: where the tuned model goes (files.best; see
    RunFiles.tuned); the search holds files.lock while it runs.
    """
    check_judged(base)
    files.directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with exclusive_run(files.latest):
        remove_stale_scratch(files)
        scratch = Path(tempfile.mkdtemp(dir=files.directory, prefix=f".{files.name}.{os.getpid()}.", suffix=".trials"))
        try:
            search = _Search(data, base, scratch, callbacks or TuneCallbacks(), engine, draw)
            reason = search.run(started + budget)
            saved, kept = keep_winner(search.best, files) if search.best else (None, None)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return TuneResult(search.ranked(), search.drawn, search.best, reason, time.perf_counter() - started, saved, kept,
                      search.problem)


SCRATCH = re.compile(r"\.(\d+)\.[^.]+\.trials")  # .<run name>.<pid>.<random>.trials, after the run name


def remove_stale_scratch(files: RunFiles) -> None:
    """Delete the scratch directories of searches for this model whose process is gone (killed).
    Only real directories of that name are removed: a file or a symbolic link is never touched."""
    for path in files.directory.glob(f".{glob.escape(files.name)}.*.trials"):
        match = SCRATCH.fullmatch(path.name[len(files.name) + 1 :])
        if match and path.is_dir() and not path.is_symlink() and not process_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


class _Search:
    """The trials of one search: the live ones of the current round, the best so far, and the
    leaders' figures."""

    def __init__(self, data, base, scratch, callbacks, engine, draw):
        self.data, self.base, self.scratch, self.callbacks, self.engine, self.draw = \
            data, base, scratch, callbacks, engine, draw
        self.rng = np.random.default_rng(base.seed)
        self.drawn = 0
        self.best: Trial | None = None
        self.leaders: dict[int, Trial] = {}
        self.problem: NamegenError | None = None

    def stopping(self, deadline: float) -> bool:
        return time.perf_counter() >= deadline or self.callbacks.should_stop()

    def run(self, deadline: float) -> TuneEnd:
        try:
            while not self.stopping(deadline):
                round_ = [self.new_trial(self.draw(self.rng)) for _ in range(ROUND_SIZE)]
                for rung, epochs in enumerate(RUNG_EPOCHS):
                    if rung:
                        ranked = sorted((t for t in round_ if t.epochs and not t.diverged), key=lambda t: t.best_val_loss)
                        for trial in ranked[max(1, len(round_) // 3):] + [t for t in round_ if t not in ranked]:
                            self.retire(trial)
                        round_ = ranked[: max(1, len(round_) // 3)]
                    for trial in round_:
                        if self.stopping(deadline):
                            break
                        self.run_trial(trial, epochs, deadline)
                for trial in round_:
                    self.retire(trial)
        except CheckpointError as e:  # a trial could not save: the search stops, the best finished trial stands
            self.problem = e
            return TuneEnd.WRITE_FAILED
        return TuneEnd.INTERRUPTED if self.callbacks.should_stop() else TuneEnd.BUDGET

    def new_trial(self, setting: Setting) -> Trial:
        self.drawn += 1
        config = replace(self.base, epochs=RUNG_EPOCHS[-1], **setting.options())
        return Trial(self.drawn, setting, self.scratch / f"trial-{self.drawn}{LATEST}", new_state(config, self.data),
                     RUNG_EPOCHS[-1])

    def run_trial(self, trial: Trial, epochs: int, deadline: float) -> None:
        """Train `trial` on to `epochs` epochs (of its planned RUNG_EPOCHS[-1]), or until the deadline
        or a stop request."""
        state = trial.state

        def stop() -> bool:
            now = time.perf_counter()
            self.callbacks.on_tick(now)
            return state.epoch >= epochs or now >= deadline or self.callbacks.should_stop()

        started = time.perf_counter()
        try:
            train(state, trial.checkpoint, Callbacks(should_stop=stop), self.engine)
        except TrainingError:  # diverged: the epochs it saved stand, and it trains no further
            trial.diverged = True
        finally:
            trial.seconds += time.perf_counter() - started
        trial.reached()
        if trial.epochs:
            if trial.best_val_loss < (self.best.best_val_loss if self.best else math.inf) and \
                    best_path(trial.checkpoint).exists():
                previous, self.best = self.best, trial
                if previous is not None and previous.state is None:
                    self.remove_files(previous)
            self.leaders[trial.number] = trial
            if len(self.leaders) > LEADERS:  # the worst goes, never the best (ties included)
                worst = max((t for t in self.leaders.values() if t is not self.best), key=lambda t: t.best_val_loss)
                del self.leaders[worst.number]
        self.callbacks.on_trial_end(trial)

    def retire(self, trial: Trial) -> None:
        """A trial out of the search: its state goes, and its files too unless it is the best so far."""
        if trial is not self.best and trial.state is not None:
            self.remove_files(trial)
        if trial is not self.best:
            trial.state = None

    def remove_files(self, trial: Trial) -> None:
        run = RunFiles.of(trial.checkpoint)
        for path in (run.latest, run.best, run.lock):
            path.unlink(missing_ok=True)

    def ranked(self) -> list[Trial]:
        return sorted(self.leaders.values(), key=lambda t: (t.best_val_loss, t.number))


def keep_winner(best: Trial, files: RunFiles) -> tuple[Path, Kept | None]:
    """Move the winner's best checkpoint to files.best, or, where a model already there is better on
    the same validation names or cannot be compared with it, beside it (files.spare()): the
    checkpoint saved, and the model kept in place, if any. A rename, so a full disk keeps it too."""
    kept = None
    if files.best.exists():
        kept = compare(files.best, best)
    target = files.spare().best if kept else files.best
    os.replace(best_path(best.checkpoint), target)
    fsync_directory(target.parent)
    return target, kept


def compare(existing: Path, winner: Trial) -> Kept | None:
    """None if `winner` is better than the tuned model at `existing`, on the same validation names;
    else what stays and why."""
    try:
        there = load_checkpoint(existing)
    except CheckpointError as e:
        return Kept(existing, None, f"it cannot be read ({str(e)[:160]}), so it is left as it is")
    state = winner.state
    same = (there.model.fingerprint == state.model.fingerprint and np.array_equal(there.val_idx, state.val_idx)
            and there.model.case == state.model.case)
    if not same or there.best_val_loss is None:
        return Kept(existing, None, "it was judged on other validation names, so the two cannot be compared")
    if there.best_val_loss <= winner.best_val_loss:
        return Kept(existing, there.best_val_loss, "it is better on the same validation names")
    return None


@dataclass
class Search:
    """A search ready to run: its names, the options its trials share, where it keeps its model."""

    names: NameList
    base: TrainConfig
    files: RunFiles
    budget: float  # seconds

    @classmethod
    def prepare(cls, data: str | Path | None, budget: str, out_dir: str | Path | None = None, **options) -> Search:
        """Read the names and check everything that can be checked before a trial starts: the budget,
        the options, the output directory and the lock (so a refusal comes before numba loads)."""
        seconds, base = parse_duration(budget), TrainConfig(**options)
        check_judged(base)  # before any file is touched
        names = read_names(data, base.case)
        files = RunFiles.for_data(data, out_dir).tuned()
        check_checkpoint_dir(files.directory)
        with exclusive_run(files.latest):
            pass
        return cls(names, base, files, seconds)

    def run(self, callbacks: TuneCallbacks | None = None, engine: str = "auto") -> TuneResult:
        """The search (see tune); a TrainingError if no trial finished an epoch and nobody asked it
        to stop, the write failure if that was what ended it."""
        result = tune(self.names, self.base, self.budget, self.files, callbacks, engine)
        if result.best is None and result.reason is not TuneEnd.INTERRUPTED:
            raise result.problem or TrainingError(f"no trial finished an epoch in {result.seconds:.0f}s; give tune a "
                                                  "longer ", OptionName("budget"))
        return result


def reproduce_command(data: str | None, trial: Trial) -> list[str]:
    """The `namegen train` arguments that train the trial's model again (to its last update)."""
    config, defaults = trial.state.config, TrainConfig()
    args = ["namegen", "train"] + (["--data", data] if data else [])
    for name in ("hidden_size", "embedding_size", "optimizer", "learning_rate", "batch_size", "dropout", "warmup", "epochs",
                 "val_fraction", "seed", "case", "clip", "weight_decay", "dtype"):
        value = getattr(config, name)
        if name in ("epochs", "seed") or value != getattr(defaults, name):
            args += ["--" + name.replace("_", "-"), str(value)]
    if trial.state.epoch < config.epochs:
        args += ["--max-steps", str(trial.state.step)]
    return args
