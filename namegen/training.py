"""Train a model: start or resume a run, then one name (or one padded batch) per update, with
checkpoints after every epoch. With numba installed, one name per update runs in a compiled kernel
and a batch update between numpy's matrix products runs a compiled tanh and optimizer step (see
fast.py); the numpy path otherwise. Both give the same model to round-off.

It never prints: progress goes to callbacks, and a stop request is honoured between updates, so
an interrupted run is saved in a state that resumes exactly.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from . import fast, threads
from .checkpoint import check_checkpoint_dir, load_checkpoint, save_checkpoint, save_checkpoint_copy
from .data import pad_batch, read_name_lists
from .errors import CheckpointError, OptionError, OptionName, SamplingError, TrainingError
from .evaluation import evaluate
from .files import remove_stale_temporaries
from .model import computable, dropout_factors, loss_and_grads
from .optim import clip_, decay_
from .options import check, check_values, option
from .runs import RunFiles, best_path, data_paths, exclusive_run, resume_target
from .sampling import SampleConfig, sample
from .state import EpochRecord, EpochStats, TrainConfig, TrainState, new_state, resume_state

# ------------------------------------------------------------------------------ starting a run

@dataclass
class Run:
    """A run ready to train: its state and where it saves."""

    state: TrainState
    checkpoint: Path  # the latest state, after every epoch
    resumed: bool

    @property
    def best_checkpoint(self) -> Path:
        """The state with the lowest validation loss so far."""
        return best_path(self.checkpoint)


def start_run(data: str | Path | list | None = None, *, out_dir: str | Path | None = None,
              resume: str | Path | None = None, **options) -> Run:
    """A new run on the names in `data` (None: the bundled dinosaur names; several files: a style
    each, see data.read_name_lists) that saves to <out_dir>/<data name>.latest.npz and .best.npz;
    or, with `resume`, the run saved there.

    options: TrainConfig fields to set. On resume, only those that do not change what is being
    trained may differ from the checkpoint (see resume_state), and `data`, if given, must hold
    the names the run was trained on. Before it returns, the checkpoint directory is checked for
    writing and the run's lock for another run, so nothing trains that could not be saved.
    """
    if resume is None:
        config = TrainConfig(**options)
        state = new_state(config, read_name_lists(data_paths(data), config.case))
        checkpoint = RunFiles.for_data(data, out_dir).latest
    else:
        if out_dir is not None:
            raise OptionError("a resumed run writes back to its checkpoint; drop ", OptionName("out_dir"),
                              " or ", OptionName("resume"))
        check_values(TrainConfig, options)  # resume_state checks them too; this reports them before any file is read
        saved = load_checkpoint(resume)
        names = read_name_lists(data_paths(data), saved.config.case) if data is not None else None
        state, checkpoint = resume_state(saved, options, names), resume_target(Path(resume), saved.step)
    check_checkpoint_dir(checkpoint.parent, resuming=resume is not None)
    for target in (checkpoint, best_path(checkpoint)):
        if target.is_dir():
            raise CheckpointError(f"{target} is a directory where the run would save a checkpoint; move it, "
                                  "or choose another place with ", OptionName("out_dir"))
    with exclusive_run(checkpoint):
        pass
    return Run(state, checkpoint, resumed=resume is not None)


# ------------------------------------------------------------------------- how a run computes

ENGINES = ("auto", "numpy", "numba")


@dataclass(frozen=True)
class Speed:
    """How a run computes, never what: neither option changes the model beyond round-off."""

    engine: str = option("auto", "'numba' trains compiled (pip install 'namegen[fast]'): one name per update "
                                 "in one kernel, batches with a compiled tanh and optimizer step; 'numpy' on the "
                                 "reference path; 'auto' takes numba when it is installed and covers the run",
                         choices=ENGINES)
    threads: int = option(1, "Threads for numpy's matrix products; more pays only for large models "
                             "(hidden several hundred) on an otherwise idle machine", at_least=1)

    def __post_init__(self):
        check(self)


class EngineChoice(NamedTuple):
    """The path that trains a run, and what a user may want to know about the choice."""

    engine: str  # "numba" or "numpy"
    note: str | None  # why numba, installed or asked for, does not train this run (not covered, or broken)
    problem: str | None = None  # what went wrong loading the compiled kernel: worth saying even unasked


def choose_engine(config: TrainConfig, wanted: str = "auto") -> EngineChoice:
    """The path that trains this run: "numba" when it is installed (or asked for), covers the
    run's options (see fast.uncovered) and compiles (see fast.load), else "numpy"."""
    Speed(engine=wanted)  # an unknown engine is an OptionError
    if wanted == "numpy":
        return EngineChoice("numpy", None)
    if not fast.available():
        if wanted == "numba":
            raise OptionError(OptionName("engine"), " numba needs numba installed: pip install 'namegen[fast]' "
                              "(or leave out ", OptionName("engine"), ")")
        return EngineChoice("numpy", None)
    why = fast.uncovered(config.batch_size, config.dtype)
    if why:
        return EngineChoice("numpy", f"training on the numpy path: the compiled one does not cover this run ({why})")
    use = "kernel" if config.batch_size == 1 else "batches"  # batches: helpers between numpy's products
    problem = fast.load(use)
    return EngineChoice("numba" if fast.usable(use) else "numpy", problem, problem)


# ---------------------------------------------------------------------------------- the loop

@dataclass
class Callbacks:
    """How the loop reports; every hook is optional."""

    on_epoch_start: Callable[[TrainState, int], None] = lambda state, names: None
    on_step: Callable[[int, float], None] = lambda names_done, running_loss: None
    on_epoch_end: Callable[[TrainState, EpochRecord], None] = lambda state, record: None
    on_checkpoint: Callable[[Path], None] = lambda path: None
    should_stop: Callable[[], bool] = lambda: False


class StopReason(str, Enum):
    """Why a call of train() returned (a str, so JSON and comparisons read it as its value)."""

    FINISHED = "finished"  # every planned epoch is done
    INTERRUPTED = "interrupted"  # a stop was requested (Ctrl-C, a signal, tune's budget)
    MAX_STEPS = "max-steps"  # config.max_steps updates are done
    EARLY_STOPPED = "early-stopped"  # validation stopped improving (config.patience)


@dataclass
class TrainResult:
    state: TrainState
    reason: StopReason
    seconds: float  # wall time of this call
    engine: str  # the path that trained: "numba" or "numpy"


def learning_rate_at(config: TrainConfig, epoch: int, position, epoch_names: int):
    """The step size of the next update, from how far through the whole run it is; for an array
    of positions, an array of step sizes (the compiled path takes a chunk's at once).

    A constant step leaves per-name SGD bouncing around the minimum (validation loss wanders by
    +-0.03 nats/char between epochs); decaying it linearly to 0 lets the last epochs settle.
    Adam's early steps rest on few gradients: a warm-up (config.warmup, a share of the run)
    multiplies the step by progress / warmup until then.
    """
    progress = (epoch + position / epoch_names) / config.epochs
    if config.lr_schedule == "constant":
        factor = 1.0
    elif config.lr_schedule == "cosine":
        factor = 0.5 * (1.0 + np.cos(np.pi * np.minimum(progress, 1.0)))
    else:
        factor = np.maximum(0.0, 1.0 - progress)
    if config.warmup:
        factor = factor * np.minimum(1.0, progress / config.warmup)
    return config.learning_rate * factor


def epoch_order(state: TrainState, lengths: np.ndarray) -> np.ndarray:
    """Shuffle the training names; with batches, bucket them by length and shuffle the batches."""
    order = state.rng.permutation(state.train_idx)
    B = state.config.batch_size
    if B in (0, 1) or not state.config.bucket_by_length:  # 0: one batch of every name
        return order
    # Sort within windows of 16 batches: batches hold similar lengths, yet stay random.
    window = 16 * B
    for start in range(0, len(order), window):
        part = order[start : start + window]
        order[start : start + window] = part[np.argsort(lengths[part], kind="stable")]
    batches = [order[i : i + B] for i in range(0, len(order), B)]
    shuffled = [batches[i] for i in state.rng.permutation(len(batches))]
    # The short batch (if the names do not divide into B) goes last: the loop takes B names at a time,
    # so one in the middle would shift every later batch across two windows of lengths.
    return np.concatenate(sorted(shuffled, key=lambda batch: len(batch) < B))


def train(state: TrainState, checkpoint: str | Path | None = None, callbacks: Callbacks | None = None,
          engine: str = "auto") -> TrainResult:
    """Train until state.config.epochs are complete, a stop is requested, or max_steps is hit.

    checkpoint: where to save after every epoch (and on a stop); the best-by-validation
    checkpoint goes beside it (see best_path), and the run holds its lock (see exclusive_run)
    while it trains. None saves nothing.
    engine: "auto", "numpy" or "numba" (see choose_engine; the result says which trained).
    Raises TrainingError if the loss or gradient stops being finite; the checkpoints on disk
    are then those last saved. Temporary files left by killed runs are removed first.
    """
    checkpoint = None if checkpoint is None else Path(checkpoint)
    # Choosing loads numba's kernel before the thread limit below, so the limit covers the BLAS numba loads too.
    engine = choose_engine(state.config, engine).engine
    with contextlib.nullcontext() if checkpoint is None else exclusive_run(checkpoint):
        if checkpoint is not None:
            remove_stale_temporaries(checkpoint)
            remove_stale_temporaries(best_path(checkpoint))
        started = time.perf_counter()
        with threads.applied(), np.errstate(over="ignore", invalid="ignore"):  # divergence is checked explicitly
            reason = _Loop(state, checkpoint, callbacks or Callbacks(), engine == "numba").run()
    return TrainResult(state, reason, time.perf_counter() - started, engine)


# Names per call of the compiled kernel: about 10 ms of work, so a stop request or the progress
# bar waits no longer than that, and the Python between calls costs about 2% of the time.
COMPILED_CHUNK = 256


class _Loop:
    """One call of train(): the state it advances, and the scratch space and bookkeeping that a
    checkpoint does not need."""

    def __init__(self, state: TrainState, checkpoint: Path | None, callbacks: Callbacks, compiled: bool):
        self.state, self.checkpoint, self.callbacks = state, checkpoint, callbacks
        per_name = state.config.batch_size == 1
        self.advance = self.update_compiled if compiled and per_name else self.update
        self.compiled = compiled  # for batches: numpy's products, the compiled tanh and optimizer step
        self.names = state.model.encoded
        self.layout = state.layout  # what the optimizer moves: the whole trained vector, one call for each step
        self.params = self.layout.views(state.weights)
        self.grad = np.empty_like(state.weights)  # flat gradient, rewritten by every update
        self.grads = self.layout.views(self.grad)
        self.outside = np.empty(state.weights.size, dtype=bool)  # clip_'s scratch: the update allocates nothing
        self.saved_step: int | None = None  # update count of the last checkpoint this call wrote
        self.since = time.perf_counter()  # when the last epoch record was made (or this call began)

    def run(self) -> StopReason:
        """Epochs until done; the reason it stopped."""
        state, config = self.state, self.state.config
        while state.epoch < config.epochs:
            if state.order is None:
                state.order, state.position, state.epoch_stats = epoch_order(state, self.names.lengths), 0, EpochStats()
            self.callbacks.on_epoch_start(state, len(state.order))
            while state.position < len(state.order):
                self.advance()
                if self.callbacks.should_stop():
                    return self.save_and_stop(StopReason.INTERRUPTED)
                if config.max_steps and state.step >= config.max_steps and state.position < len(state.order):
                    return self.save_and_stop(StopReason.MAX_STEPS)
            self.end_epoch()  # a limit that falls on the epoch's last update lets the epoch be recorded first
            if config.max_steps and state.step >= config.max_steps and state.epoch < config.epochs:
                return StopReason.MAX_STEPS
            if self.callbacks.should_stop() and state.epoch < config.epochs:
                return StopReason.INTERRUPTED  # asked while the epoch ended: it is saved, and no update is owed
            if config.patience and epochs_without_improvement(state) >= config.patience and state.epoch < config.epochs:
                return StopReason.EARLY_STOPPED
        return StopReason.FINISHED

    def update(self) -> None:
        """One update: the loss and gradient of the next name (or batch), clipped, then applied."""
        state, config = self.state, self.state.config
        batch = state.order[state.position : state.position + (config.batch_size or len(state.order))]
        if config.batch_size == 1:
            inputs, targets = self.names.pair(batch[0])
            mask, chars, shape = None, len(inputs), (len(inputs), state.model.hidden_size)
        else:
            inputs, targets, mask = pad_batch([self.names.ids(i) for i in batch])
            chars, shape = int(mask.sum()), (inputs.shape[1], len(batch), state.model.hidden_size)
        keep = dropout_factors(state.rng, shape, config.dropout, config.dtype) if config.dropout else None
        styles = state.model.style_of[batch] if state.model.styles else None
        loss, _ = loss_and_grads(self.params, inputs, targets, mask, grads=self.grads, keep=keep, styles=styles,
                                 tanh=fast.tanh if self.compiled else np.tanh)
        self.layout.pass_to_factors_(self.grads, self.params)
        clipping = clip_(self.grad, config.clip, config.clip_norm, self.outside)
        if not (math.isfinite(loss) and math.isfinite(clipping.norm)):
            raise self.diverged(f"the loss became {loss}")
        state.optimizer.learning_rate = learning_rate_at(config, state.epoch, state.position, len(state.order))
        if self.compiled:
            fast.optimizer_step(state.weights, self.grad, state.optimizer, self.layout.decayed, config.weight_decay)
        else:
            if config.weight_decay:
                decay_(state.weights, self.layout.decayed, state.optimizer.learning_rate * config.weight_decay)
            state.optimizer.step(state.weights, self.grad)
        self.layout.rebuild_(self.params)
        state.position += len(batch)
        state.step += 1
        state.epoch_stats.add(loss, len(batch), chars, clipping)
        self.callbacks.on_step(state.position, state.epoch_stats.running_loss)

    def update_compiled(self) -> None:
        """Updates on the next COMPILED_CHUNK names (fewer at the end of the epoch or before
        max_steps) in one call of the compiled kernel: the same updates as `update`, one name each."""
        state, config, model = self.state, self.state.config, self.state.model
        end = min(len(state.order), state.position + COMPILED_CHUNK)
        if config.max_steps:
            end = min(end, state.position + config.max_steps - state.step)
        names = state.order[state.position : end]
        rates = np.broadcast_to(learning_rate_at(config, state.epoch, np.arange(state.position, end), len(state.order)),
                                names.shape)  # constant: one figure
        keep = None
        if config.dropout:  # the draws the numpy path makes name by name, made for the chunk at once
            steps = int((self.names.lengths[names] + 1).sum())
            keep = dropout_factors(state.rng, (steps, model.hidden_size), config.dropout)
        done, losses, norms, clipped = fast.train_on(
            names, state.weights, self.layout, self.names.seq, self.names.bounds, rates, state.optimizer, clip=config.clip,
            clip_norm=config.clip_norm, weight_decay=config.weight_decay, keep=keep, style_of=model.style_of)
        rescaled = int(np.count_nonzero(norms[:done] > config.clip_norm)) if config.clip_norm else 0
        state.epoch_stats.add_each(losses[:done], self.names.lengths[names[:done]] + 1, norms[:done], clipped[:done],
                                   rescaled)
        state.position += done
        state.step += done
        if done:
            state.optimizer.learning_rate = float(rates[done - 1])
        if done < len(names):
            raise self.diverged(f"the loss became {float(losses[done])}")
        self.callbacks.on_step(state.position, state.epoch_stats.running_loss)

    def end_epoch(self) -> None:
        """Record the epoch, keep the best model, save, and report."""
        state = self.state
        record = epoch_record(state, self.since)
        if not math.isfinite(record.running_loss):
            raise self.diverged(f"the loss became {record.running_loss}")
        if not (np.all(np.isfinite(state.model.params)) and computable(state.model.param_views)):
            raise self.diverged("the weights grew too large for probabilities to be computed")
        if not record.finite:  # checked before anything is written: a checkpoint holds finite figures only
            raise self.diverged(f"the validation loss became {record.val_loss}" if record.val_loss is not None
                                and not math.isfinite(record.val_loss) else "an epoch's figures stopped being finite")
        self.since = time.perf_counter()
        state.history.append(record)
        state.epoch += 1
        state.order, state.position, state.epoch_stats = None, 0, EpochStats()
        improved = record.val_loss is not None and (state.best_val_loss is None or record.val_loss < state.best_val_loss)
        if improved:
            state.best_val_loss = record.val_loss
        content = self.save()
        if improved and content is not None:  # the same state: serialised once, written once where it can be
            save_checkpoint_copy(best_path(self.checkpoint), self.checkpoint, content)
        self.callbacks.on_epoch_end(state, record)

    def save(self) -> bytes | None:
        """Save the latest checkpoint, if the run has one; its content."""
        if self.checkpoint is None:
            return None
        content = save_checkpoint(self.checkpoint, self.state)
        self.saved_step = self.state.step
        self.callbacks.on_checkpoint(self.checkpoint)
        return content

    def save_and_stop(self, reason: StopReason) -> StopReason:
        self.save()
        return reason

    def diverged(self, what: str) -> TrainingError:
        state, checkpoint = self.state, self.checkpoint
        if checkpoint is None:
            kept = ""
        elif self.saved_step is None:
            kept = f"{checkpoint} was not touched by this run; " if checkpoint.exists() else "nothing was saved; "
        else:
            kept = f"{checkpoint} is unchanged, as saved at update {self.saved_step}; "
        return TrainingError(f"training diverged: {what} at epoch {state.epoch + 1}, update "
                             f"{state.step}; {kept}try a smaller ", OptionName("learning_rate"), " or a ",
                             OptionName("clip"))


def epochs_without_improvement(state: TrainState) -> int:
    """Epochs since the one with the lowest validation loss (0 if the last epoch is the best)."""
    losses = [record.val_loss for record in state.history]
    if not losses or losses[-1] is None:
        return 0
    return len(losses) - 1 - int(np.argmin(losses))


def epoch_record(state: TrainState, since: float) -> EpochRecord:
    """The history entry of the epoch just trained: losses in nats/char, gradient statistics, and
    the time since `since` (a time.perf_counter() reading), its own evaluation included.

    The training loss is the mean over the epoch's own updates (running_loss), as makemore and
    char-rnn report it; re-evaluating every training name with the final parameters (train_loss)
    costs a tenth of an epoch, so it is done only with config.eval_train.
    """
    model, stats = state.model, state.epoch_stats
    val = evaluate(model, model.encoded, state.val_idx)
    train_loss = evaluate(model, model.encoded, state.train_idx).per_char if state.config.eval_train else None
    whh_sigma_max = float(np.linalg.norm(model.param_views["Whh"], 2))
    return EpochRecord(
        epoch=state.epoch + 1,
        step=state.step,
        train_loss=train_loss,
        val_loss=val.per_char if val.names else None,
        running_loss=stats.running_loss,
        grad_norm_mean=stats.norm_sum / max(stats.updates, 1),
        grad_norm_max=stats.norm_max,
        clip_fraction=stats.clipped / max(stats.updates * state.trained_size, 1),
        rescale_fraction=stats.rescaled / max(stats.updates, 1),
        whh_sigma_max=whh_sigma_max,
        seconds=time.perf_counter() - since,
    )


def preview_names(state: TrainState, count: int) -> list[str]:
    """A few names from the model as it stands, for an epoch's progress line; never the training
    generator, so previews do not change the run. A model this early (or this broken) may not end
    its names: it gives what it found."""
    if not count:
        return []
    rng = np.random.default_rng([state.config.seed, state.epoch])
    try:
        return sample(state.model, SampleConfig(count=count, max_tries=100 * count), rng)
    except SamplingError as e:
        return e.found + ["(no other name ended)"]
