"""`namegen tune`: search for good training options within a wall-time budget.

The search is asynchronous successive halving (ASHA: Li et al. 2020, "A System for Massively
Parallel Hyperparameter Tuning") over random settings. A setting is first trained for the
shortest training budget, the first rung; one that ranks in the best third of the settings its
rung has finished is promoted, and trained for three times that budget; and so on to the last
rung. Whenever a job slot is free it takes the most advanced promotion due, or else a new setting:
slots never wait for a rung to fill, as they would in synchronous successive halving, so both
cores stay busy and a wall-time budget always has something useful to run. Most of the time goes
to the settings that look best, and a bad one costs a short run.

Short runs favour what learns fast (little dropout, a large step) over what ends best, so not every
setting starts at the first rung: as in Hyperband (Li et al. 2018), run asynchronously as the ASHA
paper suggests, some start at the second or third (see bracket_weights) and compete for promotion
only with the settings that started where they did.

Rungs are training budgets, in names seen, so that they scale with the list: the first rung is
FIRST_RUNG_NAMES names (a whole number of epochs from one to three: three epochs of dinos.txt, one
of names.txt), and each later one three times the one before (see rung_epochs). Each rung is a
complete run of its length, its step size decaying to the end of that run, so that every result is
a model that a `namegen train` command reproduces, and settings are compared as the runs a user
would make. The search space scales too (see Space): hidden sizes up to the one whose recurrent
matrix holds about eight weights per training character (256 for 1,500 dinosaur names, 1024 for
30,000 first names).

Every run trains on the same split (the same seed) and is judged by its best validation loss. A
third of the new settings are drawn one step from the best run's (see Space.near), the rest
anywhere in the space. A run depends on its setting, its rung, the seed and one BLAS thread only:
the same run gives the same model whether it ran alone (`jobs` 1, in this process) or beside
others (in worker processes). Runs save to a scratch directory of this search's
own beside the output, and only the running ones and the best so far keep their files: memory and
disk stay bounded however many runs a budget allows. The winner's best checkpoint is moved into
place at the end (a rename: no space needed, so a full disk keeps it too), and replaces the tuned
model there only if it is better on the same validation names; otherwise it is saved beside it
(see runs.RunFiles.spare).
"""

from __future__ import annotations

import glob
import math
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, fields, replace
from enum import Enum
from pathlib import Path

import numpy as np

from .checkpoint import check_checkpoint_dir, load_checkpoint
from .data import NameList, read_name_lists
from .errors import CheckpointError, NamegenError, OptionError, OptionName, TrainingError, shortened
from .files import fsync_directory, process_alive
from .runs import LATEST, RunFiles, best_path, data_paths, exclusive_run
from .state import TrainConfig, new_state, split_of
from .threads import blas_threads
from .training import Callbacks, StopReason, train

ETA = 3  # each rung keeps the best third of the one before, for three times the training
RUNGS = 4  # rungs of 1, 3, 9 and 27 times the first's budget
FIRST_RUNG_NAMES = 4_000  # names seen in a first-rung run: a few seconds of a hidden-256 model, whatever the list
MOST_FIRST_EPOCHS = 3  # ... but no more epochs than this: a list of 20 names is not trained for 200
NEAR_BEST = 1 / 3  # the share of new settings drawn one step from the best run's, once there is one
LEADERS = 100  # runs a result ranks, best first; it counts the others

# What a setting draws. Per-name SGD was the best recipe of dinos.txt; Adam gets a short warm-up.
# Dropout is what lets a larger hidden state help instead of memorising the names, and weight decay
# and lower dropout what suits a list of tens of thousands (makemore's names.txt, README).
HIDDEN_SIZES = (64, 128, 256, 512, 1024)
WEIGHTS_PER_CHARACTER = 8  # the widest hidden size drawn has about this many Whh weights per training character
WIDTHS = 4  # the widest this many sizes that the list allows
EMBEDDINGS = (0, 64, 128, 256)  # 0: Wxh trained directly; else the size of a character's vector (at most the hidden size)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.5)
WEIGHT_DECAYS = (0.0, 0.01, 0.1)
BATCHES = (1, 8, 16, 32, 64)  # names per update
FEWEST_FIRST_UPDATES = 100  # batches so large that a first-rung run makes fewer updates are not drawn
PER_NAME_WIDEST = 256  # one name per update is for the compiled kernel's sizes; wider models take batches
LEARNING_RATES = {("sgd", 1): (0.003, 0.03), ("adam", 1): (0.0003, 0.003), "adam": (0.0005, 0.01)}  # log-uniform

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


def rung_epochs(train_names: int) -> tuple[int, ...]:
    """The epochs of a run at each rung, for a list of this many training names: 3, 9, 27 and 81
    for dinos.txt's 1,383 (and any shorter list), 1, 3, 9 and 27 for names.txt's 29,481.

    A first rung of nine epochs of dinos.txt (12,000 names) was tried: its 3-minute search drew half
    the settings (21 against 43) and kept the same winner, to the last digit."""
    first = min(MOST_FIRST_EPOCHS, max(1, round(FIRST_RUNG_NAMES / max(train_names, 1))))
    return tuple(first * ETA**rung for rung in range(RUNGS))


def bracket_weights(rungs: int) -> tuple[float, ...]:
    """How often a new setting starts at each rung: Hyperband's brackets (Li et al. 2018), whose
    settings, for ETA 3 and four rungs, are 27 started at the first rung, 12 at the second and 6 at
    the third, each bracket costing about the same training. Hyperband's last bracket, runs of the
    last rung alone, is left out: it stops nothing early, and its runs are the longest (27 epochs of
    names.txt take longer than a 20-minute budget)."""
    top = rungs - 1
    return tuple(math.ceil(rungs / (top - start + 1) * ETA ** (top - start)) for start in range(max(top, 1)))


def default_jobs() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Setting:
    """What a search draws: the TrainConfig fields it changes."""

    hidden_size: int
    embedding_size: int
    dropout: float
    weight_decay: float
    optimizer: str
    batch_size: int
    learning_rate: float
    warmup: float

    def options(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Space:
    """The settings a list's search draws from: hidden sizes that suit its size (see the module's
    text), and batches small enough for a first-rung run to make FEWEST_FIRST_UPDATES updates (a
    run with fewer is judged on too few steps to say anything)."""

    hidden_sizes: tuple[int, ...]
    batch_sizes: tuple[int, ...] = BATCHES

    @classmethod
    def of(cls, training_characters: int, first_rung_names: int) -> Space:
        """The space of a list whose training names hold this many characters (end tokens included),
        and of which a first-rung run sees `first_rung_names`."""
        allowed = [h for h in HIDDEN_SIZES if h * h <= WEIGHTS_PER_CHARACTER * training_characters]
        batches = [b for b in BATCHES if b == 1 or b * FEWEST_FIRST_UPDATES <= first_rung_names]
        return cls(tuple(allowed[-WIDTHS:]) or HIDDEN_SIZES[:1], tuple(batches))

    def draw(self, rng: np.random.Generator) -> Setting:
        """One random setting."""
        hidden_size = int(rng.choice(self.hidden_sizes))
        batches = [b for b in self.batch_sizes if b > 1 or hidden_size <= PER_NAME_WIDEST] or [min(self.batch_sizes)]
        batch_size = int(rng.choice(batches))
        optimizer = str(rng.choice(["sgd", "adam"])) if batch_size == 1 else "adam"
        low, high = LEARNING_RATES.get((optimizer, batch_size), LEARNING_RATES.get(optimizer))
        learning_rate = float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.2g}")
        return Setting(hidden_size=hidden_size,
                       embedding_size=int(rng.choice([e for e in EMBEDDINGS if e <= hidden_size])),
                       dropout=float(rng.choice(DROPOUTS)), weight_decay=float(rng.choice(WEIGHT_DECAYS)),
                       optimizer=optimizer, batch_size=batch_size, learning_rate=learning_rate,
                       warmup=0.05 if optimizer == "adam" else 0.0)

    def near(self, setting: Setting, rng: np.random.Generator) -> Setting:
        """A setting one step from this one: one choice moved to a neighbouring value (a hidden size,
        an embedding, a dropout, a decay or a batch), or the step size times or divided by 1.5."""
        steps = {"hidden_size": self.hidden_sizes, "embedding_size": EMBEDDINGS, "dropout": DROPOUTS,
                 "weight_decay": WEIGHT_DECAYS, "batch_size": self.batch_sizes}
        for _ in range(20):
            field = str(rng.choice([*steps, "learning_rate"]))
            if field == "learning_rate":
                factor = 1.5 if rng.random() < 0.5 else 1 / 1.5
                return replace(setting, learning_rate=float(f"{setting.learning_rate * factor:.2g}"))
            values = steps[field]
            here = getattr(setting, field)
            if here not in values:
                continue
            at = values.index(here) + int(rng.choice([-1, 1]))
            if not 0 <= at < len(values):
                continue
            moved = replace(setting, **{field: values[at]})
            if moved.embedding_size <= moved.hidden_size and (moved.batch_size > 1) == (setting.batch_size > 1) \
                    and (moved.batch_size > 1 or moved.hidden_size <= PER_NAME_WIDEST):
                return moved
        return setting


@dataclass(eq=False)
class Trial:
    """One run of the search: a setting trained for the epochs of one rung. Its files are dropped
    once it has ended, unless it is the best so far; what it reached stays."""

    number: int  # its setting's, from 1 in the order drawn
    rung: int  # from 0
    setting: Setting
    config: TrainConfig  # what it trains: the options every run shares, the setting, the rung's epochs
    checkpoint: Path  # its .latest.npz in the scratch directory
    bracket: int = 0  # the rung its setting started at
    epochs: int = 0  # completed
    steps: int = 0  # updates made
    best_step: int = 0  # updates made by the end of its best epoch
    best_val_loss: float = math.inf
    seconds: float = 0.0
    diverged: bool = False  # stopped by divergence: its best checkpoint stands
    complete: bool = False  # trained to its last epoch (or stopped early by patience), not cut off

    @property
    def planned_epochs(self) -> int:
        return self.config.epochs


@dataclass(frozen=True)
class Reached:
    """What a run reached, sent back from the process that trained it."""

    epochs: int
    steps: int
    best_step: int
    best_val_loss: float
    seconds: float
    diverged: bool = False
    complete: bool = False
    problem: str | None = None  # its checkpoint could not be saved: why


def train_trial(config: TrainConfig, checkpoint: Path, data: NameList, deadline: float, engine: str,
                should_stop: Callable[[], bool]) -> Reached:
    """Train a run of `config` from its start, saving to `checkpoint`, until it is complete, the
    deadline (a time.time() reading) or a stop request."""
    state = new_state(config, data)
    started = time.perf_counter()
    diverged, complete, problem = False, False, None
    try:
        result = train(state, checkpoint, Callbacks(should_stop=lambda: time.time() >= deadline or should_stop()),
                       engine)
        complete = result.reason in (StopReason.FINISHED, StopReason.EARLY_STOPPED)
    except TrainingError:  # diverged: the epochs it saved stand
        diverged = True
    except CheckpointError as e:  # a full disk: the search stops
        problem = str(e)
    losses = [math.inf if record.val_loss is None else record.val_loss for record in state.history]
    best_step = state.history[int(np.argmin(losses))].step if losses else 0
    return Reached(state.epoch, state.step, best_step, min(losses, default=math.inf), time.perf_counter() - started,
                   diverged, complete, problem)


# A worker process's part of the search: set once by its initializer.
_worker: dict = {}


def _start_worker(data: NameList, engine: str, threads: int, stop) -> None:
    # Ctrl-C (or a closed terminal, or a kill of the process group) reaches the search too, which
    # stops its workers through `stop` and keeps what they saved.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    _worker.update(data=data, engine=engine, threads=threads, stop=stop)
    threading.Thread(target=_end_with_parent, args=(os.getppid(),), daemon=True).start()


def _end_with_parent(parent: int) -> None:
    """A worker whose parent (the search's process) has changed was orphaned by a killed search: it
    ends at once, whether training or waiting for a run. Its scratch files go with the next search."""
    while os.getppid() == parent:
        time.sleep(0.25)
    os._exit(1)


def _train_in_worker(config: TrainConfig, checkpoint: Path, deadline: float) -> Reached:
    w = _worker
    with blas_threads(w["threads"]):
        return train_trial(config, checkpoint, w["data"], deadline, w["engine"],
                           w["stop"].is_set)


class TuneEnd(str, Enum):
    """Why a search ended."""

    BUDGET = "budget"
    INTERRUPTED = "interrupted"
    WRITE_FAILED = "write-failed"  # a run could not save (a full disk), or a worker died: the best finished run is kept


@dataclass
class Kept:
    """The tuned model that was already in place and stays, because this search did not beat it."""

    checkpoint: Path
    best_val_loss: float | None  # None: it cannot be compared (other validation names, or unreadable)
    why: str


@dataclass
class TuneResult:
    leaders: list[Trial]  # the best runs, best first (at most LEADERS)
    trials: int  # settings drawn in all
    runs: int  # runs started in all
    best: Trial | None
    reason: TuneEnd
    seconds: float
    checkpoint: Path | None  # where the winner's best checkpoint was saved
    rungs: tuple[int, ...] = ()  # the epochs of each rung
    jobs: int = 1
    kept: Kept | None = None  # set when the winner did not replace the tuned model in place
    problem: NamegenError | None = None  # with WRITE_FAILED: what failed


@dataclass
class TuneCallbacks:
    """How tune reports; every hook is optional. on_tick: a time.perf_counter() reading, at every
    update (with one job) or a few times a second; should_stop: a user's request to stop."""

    on_trial_end: Callable[[Trial], None] = lambda trial: None
    on_tick: Callable[[float], None] = lambda now: None
    should_stop: Callable[[], bool] = lambda: False


def check_judged(base: TrainConfig) -> None:
    """Refuse options without validation names: tune judges each run on them."""
    if base.val_fraction == 0:
        raise OptionError(OptionName("val_fraction"), " must be above 0: tune judges each run on validation names")


MAX_JOBS = 256


def check_jobs(jobs: int) -> None:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise OptionError(OptionName("jobs"), f" must be a whole number from 1 to {MAX_JOBS}, not {shortened(str(jobs))}")


def tune(data: NameList, base: TrainConfig, budget: float, files: RunFiles, callbacks: TuneCallbacks | None = None,
         engine: str = "auto", draw: Callable[[np.random.Generator], Setting] | None = None, jobs: int = 1,
         threads: int = 1, rungs: tuple[int, ...] | None = None,
         brackets: tuple[float, ...] | None = None) -> TuneResult:
    """Asynchronous successive halving within `budget` seconds (see the module's text), `jobs` runs
    at a time (1: in this process; more: in worker processes, each with `threads` BLAS threads).

    base: the options every run shares (seed, split, case, dtype, clip...); its epochs are replaced
    by the rung's and its other fields by the drawn settings. draw: a setting from a generator
    (default: the list's Space). rungs: the epochs of a run at each rung (default: rung_epochs).
    brackets: how often a new setting starts at each rung (default: bracket_weights; (1,): always
    at the first, plain ASHA).
    files: where the tuned model goes (files.best; see RunFiles.tuned); the search holds files.lock
    while it runs.
    """
    check_judged(base)
    check_jobs(jobs)
    files.directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with exclusive_run(files.latest):
        remove_stale_scratch(files)
        scratch = Path(tempfile.mkdtemp(dir=files.directory, prefix=f".{files.name}.{os.getpid()}.", suffix=".trials"))
        try:
            search = _Search(data, base, scratch, callbacks or TuneCallbacks(), engine, draw, rungs, brackets)
            reason = search.run(time.time() + budget - (time.perf_counter() - started), jobs, threads)
            saved, kept = keep_winner(search.best, files) if search.best else (None, None)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return TuneResult(search.ranked(), search.drawn, search.started, search.best, reason,
                      time.perf_counter() - started, saved, search.rungs, jobs, kept, search.problem)


SCRATCH = re.compile(r"\.(\d+)\.[^.]+\.trials")  # .<run name>.<pid>.<random>.trials, after the run name


def remove_stale_scratch(files: RunFiles) -> None:
    """Delete the scratch directories of searches for this model whose process is gone (killed).
    Only real directories of that name are removed: a file or a symbolic link is never touched."""
    for path in files.directory.glob(f".{glob.escape(files.name)}.*.trials"):
        match = SCRATCH.fullmatch(path.name[len(files.name) + 1 :])
        if match and path.is_dir() and not path.is_symlink() and not process_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


class _Search:
    """The runs of one search: the rungs' results, the settings promoted, the best run so far, and
    the leaders' figures."""

    def __init__(self, data, base, scratch, callbacks, engine, draw, rungs, brackets):
        self.data, self.base, self.scratch, self.callbacks, self.engine = data, base, scratch, callbacks, engine
        names, characters = training_size(data, base)
        self.rungs = rungs or rung_epochs(names)
        space = Space.of(characters, names * self.rungs[0])
        self.draw, self.near = (draw, None) if draw else (space.draw, space.near)
        self.results: list[dict[int, float]] = [{} for _ in self.rungs]  # setting number -> best val, complete runs
        self.promoted: list[set[int]] = [set() for _ in self.rungs]  # the numbers each rung has sent on
        self.brackets = brackets or bracket_weights(len(self.rungs))  # how often a setting starts at each rung
        self.bracket_of: dict[int, int] = {}  # setting number -> the rung it started at
        self.took: dict[tuple[int, int], float] = {}  # (setting number, rung) -> seconds, complete runs
        self.deadline = math.inf  # a time.time() reading, once running
        self.settings: dict[int, Setting] = {}
        self.drawn = self.started = 0
        self.best: Trial | None = None
        self.leaders: dict[tuple[int, int], Trial] = {}
        self.problem: NamegenError | None = None

    def stopping(self, deadline: float) -> bool:
        return time.time() >= deadline or self.callbacks.should_stop() or self.problem is not None

    def run(self, deadline: float, jobs: int, threads: int) -> TuneEnd:
        """Runs until the deadline (a time.time() reading), a stop request or a write failure: one at
        a time in this process, and with more jobs, jobs - 1 at a time in worker processes beside it
        (so that a search starts training at once, while the workers start)."""
        self.deadline = deadline
        workers = _Workers(self, jobs - 1, threads, deadline) if jobs > 1 else None
        try:
            while not self.stopping(deadline):
                if workers:
                    workers.dispatch()
                trial = self.next_trial()
                self.finish(trial, train_trial(trial.config, trial.checkpoint, self.data, deadline, self.engine,
                                               lambda: self.ticked_stop(workers)))
            if workers:
                workers.finish_all()
        finally:
            if workers:
                workers.close()
        if self.problem is not None:
            return TuneEnd.WRITE_FAILED
        return TuneEnd.INTERRUPTED if self.callbacks.should_stop() else TuneEnd.BUDGET

    def ticked_stop(self, workers: _Workers | None) -> bool:
        """The stop check of a run in this process, at every update: it reports the time and, every
        DISPATCH_EVERY seconds, collects the workers' runs and gives them new ones."""
        now = time.perf_counter()
        self.callbacks.on_tick(now)
        if workers and now >= workers.checked + DISPATCH_EVERY:
            workers.dispatch()
        return self.callbacks.should_stop() or self.problem is not None

    def next_trial(self) -> Trial:
        """The most advanced promotion due (ASHA, within each bracket), or else a new setting at its
        bracket's first rung."""
        for rung in reversed(range(len(self.rungs) - 1)):
            for bracket in range(min(rung + 1, len(self.brackets))):
                done = {n: loss for n, loss in self.results[rung].items() if self.bracket_of[n] == bracket}
                for number in sorted(done, key=lambda n: (done[n], n))[: len(done) // ETA]:
                    if number not in self.promoted[rung] and math.isfinite(done[number]) and \
                            self.ends_in_time(self.took[number, rung] * self.rungs[rung + 1] / self.rungs[rung]):
                        self.promoted[rung].add(number)
                        return self.new_trial(number, rung + 1)
        self.drawn += 1
        self.settings[self.drawn] = self.new_setting(np.random.default_rng([self.base.seed, self.drawn]))
        chances = np.array(self.brackets, dtype=float) / sum(self.brackets)
        bracket = int(np.random.default_rng([self.base.seed, self.drawn, 1]).choice(len(chances), p=chances))
        first_runs = [seconds for (_, rung), seconds in self.took.items() if rung == 0]
        while bracket and first_runs and not self.ends_in_time(
                float(np.median(first_runs)) * self.rungs[bracket] / self.rungs[0]):
            bracket -= 1  # a typical run that long would be cut off: a shorter one has a chance
        self.bracket_of[self.drawn] = bracket
        return self.new_trial(self.drawn, bracket)

    def new_setting(self, rng: np.random.Generator) -> Setting:
        """A random setting from the space or, NEAR_BEST of the time once a run has ended, one step
        from the best run's (see Space.near), unless that one has been drawn already."""
        if self.near is not None and self.best is not None and rng.random() < NEAR_BEST:
            near = self.near(self.best.setting, rng)
            if near not in self.settings.values():
                return near
        return self.draw(rng)

    def ends_in_time(self, seconds: float) -> bool:
        """Whether a run expected to take this long would end before the deadline. A run the deadline
        cuts off is judged on an undecayed step, and rarely ranks: its time is better spent on runs
        that can end. (Runs take about as long as their epochs: a promotion is expected to take its
        run at the rung below times ETA.)"""
        return time.time() + seconds <= self.deadline

    def new_trial(self, number: int, rung: int) -> Trial:
        self.started += 1
        setting = self.settings[number]
        config = replace(self.base, epochs=self.rungs[rung], **setting.options())
        return Trial(number, rung, setting, config, self.scratch / f"trial-{number}.rung-{rung + 1}{LATEST}",
                     self.bracket_of[number])

    def finish(self, trial: Trial, reached: Reached) -> None:
        """Note what a run reached; keep its files if it is the best so far."""
        trial.epochs, trial.steps, trial.best_step, trial.best_val_loss, trial.seconds = \
            reached.epochs, reached.steps, reached.best_step, reached.best_val_loss, reached.seconds
        trial.diverged, trial.complete = reached.diverged, reached.complete
        if reached.problem is not None and self.problem is None:
            self.problem = CheckpointError(reached.problem)
        if trial.complete:
            self.results[trial.rung][trial.number] = math.inf if trial.diverged else trial.best_val_loss
            self.took[trial.number, trial.rung] = trial.seconds
        if trial.epochs and trial.best_val_loss < (self.best.best_val_loss if self.best else math.inf) and \
                best_path(trial.checkpoint).exists():
            previous, self.best = self.best, trial
            if previous is not None:
                self.remove_files(previous)
        self.remove_files(trial, keep_best=trial is self.best)
        if trial.epochs:
            self.leaders[trial.number, trial.rung] = trial
            if len(self.leaders) > LEADERS:  # the worst goes, never the best (ties included)
                worst = max((t for t in self.leaders.values() if t is not self.best), key=lambda t: t.best_val_loss)
                del self.leaders[worst.number, worst.rung]
        self.callbacks.on_trial_end(trial)

    def remove_files(self, trial: Trial, keep_best: bool = False) -> None:
        run = RunFiles.of(trial.checkpoint)
        for path in (run.latest, run.lock) if keep_best else (run.latest, run.best, run.lock):
            path.unlink(missing_ok=True)

    def ranked(self) -> list[Trial]:
        return sorted(self.leaders.values(), key=lambda t: (t.best_val_loss, t.number, t.rung))


DISPATCH_EVERY = 0.05  # seconds between looks at the workers from a run in this process


class _Workers:
    """The worker processes of a search and the runs they are training."""

    def __init__(self, search: _Search, count: int, threads: int, deadline: float):
        self.search, self.count, self.deadline = search, count, deadline
        context = multiprocessing.get_context("spawn")  # a fork server would outlive a killed search
        self.stop = context.Event()
        self.pool = ProcessPoolExecutor(count, mp_context=context, initializer=_start_worker,
                                        initargs=(search.data, search.engine, threads, self.stop))
        self.running: dict[Future, Trial] = {}
        self.checked = time.perf_counter()

    def dispatch(self) -> None:
        """Note the runs the workers have ended, and give idle workers new ones."""
        self.checked = time.perf_counter()
        search = self.search
        for future in [f for f in self.running if f.done()]:
            search.finish(self.running.pop(future), self.reached(future))
        if search.stopping(self.deadline):
            self.stop.set()
        while len(self.running) < self.count and not search.stopping(self.deadline):
            trial = search.next_trial()
            self.running[self.pool.submit(_train_in_worker, trial.config, trial.checkpoint, self.deadline)] = trial

    def finish_all(self) -> None:
        """Wait for the workers' runs to stop (each does at its next update), noting what they reached."""
        self.stop.set()
        while self.running:
            wait(self.running, timeout=0.1, return_when=FIRST_COMPLETED)
            self.search.callbacks.on_tick(time.perf_counter())
            self.dispatch()

    @staticmethod
    def reached(future: Future) -> Reached:
        try:
            return future.result()
        except Exception as e:  # the worker died (killed, out of memory): what it saved is lost
            return Reached(0, 0, 0, math.inf, 0.0, problem=f"a worker process stopped ({type(e).__name__}: {e})")

    def close(self) -> None:
        self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def training_size(data: NameList, base: TrainConfig) -> tuple[int, int]:
    """The training names of the split every run shares, and their characters (end tokens included)."""
    train_idx, _ = split_of(data, base.val_fraction, np.random.default_rng(base.seed))
    return len(train_idx), sum(len(data.names[i]) + 1 for i in train_idx)


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
    won = load_checkpoint(best_path(winner.checkpoint))
    same = (there.model.fingerprint == won.model.fingerprint and np.array_equal(there.val_idx, won.val_idx)
            and there.model.case == won.model.case)
    if not same or there.best_val_loss is None:
        return Kept(existing, None, "it was judged on other validation names, so the two cannot be compared")
    if there.best_val_loss <= winner.best_val_loss:
        return Kept(existing, there.best_val_loss, "it is better on the same validation names")
    return None


@dataclass
class Search:
    """A search ready to run: its names, the options its runs share, where it keeps its model."""

    names: NameList
    base: TrainConfig
    files: RunFiles
    budget: float  # seconds

    @classmethod
    def prepare(cls, data: str | Path | list | None, budget: str, out_dir: str | Path | None = None,
                **options) -> Search:
        """Read the names and check everything that can be checked before a run starts: the budget,
        the options, the output directory and the lock (so a refusal comes before numba loads)."""
        seconds, base = parse_duration(budget), TrainConfig(**options)
        check_judged(base)  # before any file is touched
        names = read_name_lists(data_paths(data), base.case)
        files = RunFiles.for_data(data, out_dir).tuned()
        check_checkpoint_dir(files.directory)
        with exclusive_run(files.latest):
            pass
        return cls(names, base, files, seconds)

    @property
    def rungs(self) -> tuple[int, ...]:
        """The epochs of a run at each rung."""
        return rung_epochs(training_size(self.names, self.base)[0])

    def run(self, callbacks: TuneCallbacks | None = None, engine: str = "auto", jobs: int = 1,
            threads: int = 1) -> TuneResult:
        """The search (see tune); a TrainingError if no run finished an epoch and nobody asked it
        to stop, the write failure if that was what ended it."""
        result = tune(self.names, self.base, self.budget, self.files, callbacks, engine, jobs=jobs, threads=threads)
        if result.best is None and result.reason is not TuneEnd.INTERRUPTED:
            raise result.problem or TrainingError(f"no trial finished an epoch in {duration_text(self.budget)}; give "
                                                  "tune a longer ", OptionName("budget"))
        return result


def longer_command(data: str | Path | list | None, trial: Trial, rungs: tuple[int, ...]) -> list[str] | None:
    """The `namegen train` arguments that train the run's setting for the next rung's epochs, where
    the search ended before it got there; None at the last rung."""
    if trial.rung + 1 >= len(rungs):
        return None
    longer = replace(trial, config=replace(trial.config, epochs=rungs[trial.rung + 1]), complete=True, diverged=False)
    return reproduce_command(data, longer)


def all_names_command(data: str | Path | list | None, trial: Trial) -> list[str] | None:
    """The `namegen train` arguments that train the run's setting for its epochs on every name, its
    validation names too: more to learn from, the usual last step once a search has chosen (see the
    README's names.txt figures). Offered for a complete run whose best epoch was its last only: with
    no validation names, nothing can pick an earlier one."""
    if not trial.complete or trial.diverged or trial.best_step != trial.steps:
        return None
    every = replace(trial, config=replace(trial.config, val_fraction=0.0, patience=None))
    return reproduce_command(data, every)


def reproduce_command(data: str | Path | list | None, trial: Trial) -> list[str]:
    """The `namegen train` arguments that train the run's model again (to its last update)."""
    config, defaults = trial.config, TrainConfig()
    args = ["namegen", "train"]
    for path in data_paths(data):
        args += ["--data", str(path)]
    for name in ("hidden_size", "embedding_size", "optimizer", "learning_rate", "batch_size", "dropout", "weight_decay",
                 "warmup", "epochs", "val_fraction", "seed", "case", "clip", "dtype"):
        value = getattr(config, name)
        if name in ("epochs", "seed") or value != getattr(defaults, name):
            args += ["--" + name.replace("_", "-"), str(value)]
    if trial.diverged:  # its best checkpoint, saved before it diverged
        args += ["--max-steps", str(trial.best_step)]
    elif not trial.complete:  # cut off by the end of the search
        args += ["--max-steps", str(trial.steps)]
    return args
