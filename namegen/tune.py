"""`namegen tune`: search for good training options within a wall-time budget.

The search is successive halving (Jamieson and Talwalkar 2016) over random settings, in rounds.
Every trial plans the same RUNG_EPOCHS[-1] epochs, so that its step size decays on the same
schedule whenever it is stopped. A round draws 9 settings and trains each for RUNG_EPOCHS[0]
epochs; the best third goes on to RUNG_EPOCHS[1] epochs, and the best of those to the end. Most
of the time goes to the settings that look best early, and a bad setting costs a few epochs.
Rounds repeat until the budget is spent; the trial running when it runs out stops there, and its
epochs so far count.

Every trial trains on the same split (the same seed) and is judged by its best validation loss.
Trials save to a scratch directory beside the output; the winner's checkpoints are copied into
place at the end and the scratch deleted, so an interrupted search keeps its best model too.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data import NameList
from .errors import OptionError, OptionName
from .files import atomic_write
from .state import TrainConfig, TrainState, new_state
from .training import LATEST, Callbacks, best_path, exclusive_run, train

RUNG_EPOCHS = (3, 9, 27)  # each rung trains the best third of the one before for three times the epochs
ROUND_SIZE = 9  # settings drawn per round: 9 -> 3 -> 1
TUNED = ".tuned"  # dinos.txt -> dinos.tuned.latest.npz and dinos.tuned.best.npz

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
        raise OptionError(OptionName("budget"), f" must be a duration such as 90s, 3m or 1h30m, not {text!r}")
    hours, minutes, seconds = (float(part or 0) for part in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 0 < total <= 7 * 24 * 3600:
        raise OptionError(OptionName("budget"), f" must be above 0 and at most a week, not {text!r}")
    return total


def draw_settings(rng: np.random.Generator) -> dict:
    """One random setting: the TrainConfig fields a trial changes."""
    optimizer, batch_size = UPDATES[rng.integers(len(UPDATES))]
    low, high = LEARNING_RATES.get((optimizer, batch_size), LEARNING_RATES.get(optimizer))
    learning_rate = float(f"{math.exp(rng.uniform(math.log(low), math.log(high))):.2g}")
    hidden_size = int(rng.choice(HIDDEN_SIZES))
    return {"hidden_size": hidden_size, "embedding_size": hidden_size if rng.random() < EMBEDDED else 0,
            "dropout": float(rng.choice(DROPOUTS)), "optimizer": optimizer, "batch_size": batch_size,
            "learning_rate": learning_rate, "warmup": 0.05 if optimizer == "adam" else 0.0}


@dataclass
class Trial:
    number: int  # from 1, in the order drawn
    settings: dict
    state: TrainState
    checkpoint: Path  # its .latest.npz in the scratch directory
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return self.state.epoch

    @property
    def best_val_loss(self) -> float:
        best = self.state.best_val_loss
        return math.inf if best is None else best


@dataclass
class TuneResult:
    trials: list[Trial]
    best: Trial | None
    reason: str  # "budget" or "interrupted"
    seconds: float
    checkpoint: Path | None  # the winner's .latest.npz, copied into place; its best beside it


@dataclass
class TuneCallbacks:
    """How tune reports; every hook is optional. on_tick: a time.perf_counter() reading, at every
    update; should_stop: a user's request to stop."""

    on_trial_end: Callable[[Trial], None] = lambda trial: None
    on_tick: Callable[[float], None] = lambda now: None
    should_stop: Callable[[], bool] = lambda: False


def tuned_path(out_dir: Path, data_stem: str) -> Path:
    return out_dir / f"{data_stem}{TUNED}{LATEST}"


def tune(data: NameList, base: TrainConfig, budget: float, out_dir: Path, data_stem: str,
         callbacks: TuneCallbacks | None = None, engine: str = "auto",
         draw: Callable[[np.random.Generator], dict] = draw_settings) -> TuneResult:
    """Successive halving within `budget` seconds (see the module's text).

    base: the options every trial shares (seed, split, case, clip...); its epochs are replaced by
    RUNG_EPOCHS[-1] and the drawn settings. Writes the best trial's checkpoints as
    <out_dir>/<data_stem>.tuned.latest.npz and .best.npz.
    """
    if base.val_fraction == 0:
        raise OptionError(OptionName("val_fraction"), " must be above 0: tune judges each trial on validation names")
    callbacks = callbacks or TuneCallbacks()
    final = tuned_path(out_dir, data_stem)
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = out_dir / f".{data_stem}{TUNED}.trials"
    rng = np.random.default_rng(base.seed)
    started = time.perf_counter()
    deadline = started + budget
    trials: list[Trial] = []
    with exclusive_run(final):
        shutil.rmtree(scratch, ignore_errors=True)  # a killed search's leftovers
        scratch.mkdir()
        try:
            while time.perf_counter() < deadline and not callbacks.should_stop():
                round_ = [new_trial(len(trials) + k + 1, draw(rng), base, data, scratch) for k in range(ROUND_SIZE)]
                trials += round_
                for rung, epochs in enumerate(RUNG_EPOCHS):
                    if rung:
                        round_ = sorted(round_, key=lambda t: t.best_val_loss)[: max(1, len(round_) // 3)]
                    for trial in round_:
                        if time.perf_counter() >= deadline or callbacks.should_stop():
                            break
                        run_trial(trial, epochs, deadline, callbacks, engine)
            best = min((t for t in trials if t.state.history), key=lambda t: t.best_val_loss, default=None)
            checkpoint = keep_winner(best, final) if best else None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    reason = "interrupted" if callbacks.should_stop() else "budget"
    return TuneResult(trials, best, reason, time.perf_counter() - started, checkpoint)


def new_trial(number: int, settings: dict, base: TrainConfig, data: NameList, scratch: Path) -> Trial:
    config = replace(base, epochs=RUNG_EPOCHS[-1], **settings)
    return Trial(number, settings, new_state(config, data), scratch / f"trial-{number}{LATEST}")


def run_trial(trial: Trial, epochs: int, deadline: float, callbacks: TuneCallbacks, engine: str) -> None:
    """Train `trial` on to `epochs` epochs (of its planned RUNG_EPOCHS[-1]), or until the deadline
    or a stop request."""
    state = trial.state

    def stop() -> bool:
        now = time.perf_counter()
        callbacks.on_tick(now)
        return state.epoch >= epochs or now >= deadline or callbacks.should_stop()

    started = time.perf_counter()
    train(state, trial.checkpoint, Callbacks(should_stop=stop), engine)
    trial.seconds += time.perf_counter() - started
    callbacks.on_trial_end(trial)


def keep_winner(best: Trial, final: Path) -> Path:
    """Copy the winning trial's checkpoints to `final` and its best path, replacing earlier ones."""
    atomic_write(final, best.checkpoint.read_bytes())
    if best_path(best.checkpoint).exists():
        atomic_write(best_path(final), best_path(best.checkpoint).read_bytes())
    else:
        best_path(final).unlink(missing_ok=True)  # a best from an earlier search would not belong to this model
    return final


def reproduce_command(data: str | None, trial: Trial) -> list[str]:
    """The `namegen train` arguments that train the trial's model again (to its last update)."""
    config, defaults = trial.state.config, TrainConfig()
    args = ["namegen", "train"] + (["--data", data] if data else [])
    for name in ("hidden_size", "embedding_size", "optimizer", "learning_rate", "batch_size", "dropout", "warmup", "epochs",
                 "val_fraction", "seed", "case", "clip", "weight_decay"):
        value = getattr(config, name)
        if name in ("epochs", "seed") or value != getattr(defaults, name):
            args += ["--" + name.replace("_", "-"), str(value)]
    if trial.state.epoch < config.epochs:
        args += ["--max-steps", str(trial.state.step)]
    return args


