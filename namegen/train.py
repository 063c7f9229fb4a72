"""The training loop: one name (or one padded batch) per update, checkpoints after every epoch.

It never prints: progress goes to callbacks, and a stop request is honoured between updates, so
an interrupted run is saved in a state that resumes exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .checkpoint import remove_stale_temporaries, save_checkpoint
from .data import Encoded, encode_names, pad_batch
from .errors import TrainingError
from .model import Params, forward, loss_and_grads, unflatten
from .optim import clip_
from .state import (LR_SCHEDULES, RESUMABLE_OPTIONS, TrainConfig, TrainState,  # noqa: F401 (re-exported)
                    new_epoch_stats, new_state, resume_state)


@dataclass
class Evaluation:
    nll: float  # total negative log-likelihood, nats
    chars: int  # predicted tokens: each name's characters plus its end token
    names: int

    @property
    def per_char(self) -> float:
        return self.nll / self.chars if self.chars else float("nan")

    @property
    def per_name(self) -> float:
        return self.nll / self.names if self.names else float("nan")

    @property
    def perplexity(self) -> float:
        return math.exp(self.per_char)


def name_nll(params: Params, encoded: Encoded, indices=None, chunk: int = 512) -> np.ndarray:
    """The NLL in nats of each name (all, or those at `indices`), computed in padded batches of similar length."""
    indices = np.arange(len(encoded)) if indices is None else np.asarray(indices)
    out = np.empty(len(indices))
    order = np.argsort(encoded.lengths[indices], kind="stable")
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        inputs, targets, mask = pad_batch([encoded.ids(i) for i in indices[rows]])
        out[rows], _ = forward(params, inputs, targets, mask)
    return out


def evaluate(params: Params, encoded: Encoded, indices=None) -> Evaluation:
    """Loss over the names (all, or those at `indices`)."""
    indices = np.arange(len(encoded)) if indices is None else np.asarray(indices)
    if not len(indices):
        return Evaluation(0.0, 0, 0)
    nll = name_nll(params, encoded, indices)
    return Evaluation(float(nll.sum()), int(encoded.lengths[indices].sum()) + len(indices), len(indices))


@dataclass
class Callbacks:
    """How the loop reports; every hook is optional."""

    on_epoch_start: Callable[[TrainState, int], None] = lambda state, names: None
    on_step: Callable[[int, float], None] = lambda names_done, running_loss: None
    on_epoch_end: Callable[[TrainState, dict], None] = lambda state, record: None
    on_checkpoint: Callable[[Path], None] = lambda path: None
    should_stop: Callable[[], bool] = lambda: False


@dataclass
class TrainResult:
    state: TrainState
    reason: str  # "finished", "interrupted" or "max-steps"


def learning_rate_at(config: TrainConfig, epoch: int, position: int, epoch_names: int) -> float:
    """The step size of the next update, from how far through the whole run it is.

    A constant step leaves per-name SGD bouncing around the minimum (validation loss wanders by
    +-0.03 nats/char between epochs); decaying it linearly to 0 lets the last epochs settle.
    """
    if config.lr_schedule == "constant":
        return config.learning_rate
    progress = (epoch + position / epoch_names) / config.epochs
    return config.learning_rate * max(0.0, 1.0 - progress)


def best_path(path: Path) -> Path:
    """checkpoints/dinos.npz -> checkpoints/dinos.best.npz"""
    return path.with_name(path.stem + ".best" + path.suffix)


def epoch_order(state: TrainState, lengths: np.ndarray) -> np.ndarray:
    """Shuffle the training names; with batches, bucket them by length and shuffle the batches."""
    order = state.rng.permutation(state.train_idx)
    B = state.config.batch_size
    if B == 1 or not state.config.bucket_by_length:
        return order
    # Sort within windows of 16 batches: batches hold similar lengths, yet stay random.
    window = 16 * B
    for start in range(0, len(order), window):
        part = order[start : start + window]
        order[start : start + window] = part[np.argsort(lengths[part], kind="stable")]
    batches = [order[i : i + B] for i in range(0, len(order), B)]
    return np.concatenate([batches[i] for i in state.rng.permutation(len(batches))])


def diverged(state: TrainState, loss: float, checkpoint: Path | None, saved_step: int | None) -> TrainingError:
    if checkpoint is None:
        kept = ""
    elif saved_step is None:
        kept = f"{checkpoint} was not touched by this run; " if checkpoint.exists() else "nothing was saved; "
    else:
        kept = f"{checkpoint} is unchanged, as saved at update {saved_step}; "
    return TrainingError(
        f"training diverged: the loss became {loss} at epoch {state.epoch + 1}, update {state.step}; "
        + kept + "try a smaller --learning-rate or a --clip"
    )


def train(state: TrainState, checkpoint: Path | None = None, callbacks: Callbacks | None = None) -> TrainResult:
    """Train until state.config.epochs are complete, a stop is requested, or max_steps is hit.

    checkpoint: where to save after every epoch (and on a stop); the best-by-validation
    checkpoint goes beside it (see best_path). None saves nothing.
    Raises TrainingError if the loss or gradient stops being finite; the checkpoints on disk
    are then those last saved. Temporary files left by killed runs are removed first.
    """
    if checkpoint is not None:
        remove_stale_temporaries(checkpoint)
        remove_stale_temporaries(best_path(checkpoint))
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is checked explicitly
        return _train(state, checkpoint, callbacks or Callbacks())


def _train(state: TrainState, checkpoint: Path | None, callbacks: Callbacks) -> TrainResult:
    config = state.config
    encoded = encode_names(state.vocab, state.names, state.source)
    lengths = encoded.lengths
    params = state.param_views
    grad_flat = np.empty_like(state.params)
    grads = unflatten(grad_flat, state.vocab.size, config.hidden_size)
    saved_step = None  # update count of the last checkpoint this run wrote

    def save() -> None:
        nonlocal saved_step
        if checkpoint is not None:
            save_checkpoint(checkpoint, state)
            saved_step = state.step
            callbacks.on_checkpoint(checkpoint)

    while state.epoch < config.epochs:
        if state.order is None:
            state.order, state.position, state.epoch_stats = epoch_order(state, lengths), 0, new_epoch_stats()
        epoch_stats = state.epoch_stats
        start_time = time.perf_counter()
        order, B = state.order, config.batch_size
        callbacks.on_epoch_start(state, len(order))
        while state.position < len(order):
            batch = order[state.position : state.position + B]
            if B == 1:
                inputs, targets = encoded.pair(batch[0])
                mask, chars = None, len(inputs)
            else:
                inputs, targets, mask = pad_batch([encoded.ids(i) for i in batch])
                chars = int(mask.sum())
            loss, _ = loss_and_grads(params, inputs, targets, mask, grads=grads)
            clip_stats = clip_(grad_flat, config.clip)
            if not (math.isfinite(loss) and math.isfinite(clip_stats.norm)):
                raise diverged(state, loss, checkpoint, saved_step)
            state.optimizer.learning_rate = learning_rate_at(config, state.epoch, state.position, len(order))
            state.optimizer.step(state.params, grad_flat)
            state.position += len(batch)
            state.step += 1
            epoch_stats["loss"] += loss * len(batch)
            epoch_stats["chars"] += chars
            epoch_stats["norm_sum"] += clip_stats.norm
            epoch_stats["norm_max"] = max(epoch_stats["norm_max"], clip_stats.norm)
            epoch_stats["clipped"] += clip_stats.clipped
            epoch_stats["updates"] += 1
            callbacks.on_step(state.position, epoch_stats["loss"] / epoch_stats["chars"])
            if callbacks.should_stop():
                save()
                return TrainResult(state, "interrupted")
            if config.max_steps and state.step >= config.max_steps:
                save()
                return TrainResult(state, "max-steps")

        record = epoch_record(state, encoded, epoch_stats, time.perf_counter() - start_time)
        if not (math.isfinite(record["train_loss"]) and np.all(np.isfinite(state.params))):
            raise diverged(state, record["train_loss"], checkpoint, saved_step)
        state.history.append(record)
        state.epoch += 1
        state.order, state.position, state.epoch_stats = None, 0, new_epoch_stats()
        improved = record["val_loss"] is not None and (
            state.best_val_loss is None or record["val_loss"] < state.best_val_loss)
        if improved:
            state.best_val_loss = record["val_loss"]
        save()
        if improved and checkpoint is not None:
            save_checkpoint(best_path(checkpoint), state)
        callbacks.on_epoch_end(state, record)
    return TrainResult(state, "finished")


def epoch_record(state: TrainState, encoded: Encoded, stats: dict, seconds: float) -> dict:
    """The history entry of one epoch: losses in nats/char and gradient statistics."""
    params = state.param_views
    val = evaluate(params, encoded, state.val_idx)
    return {
        "epoch": state.epoch + 1,
        "step": state.step,
        "train_loss": evaluate(params, encoded, state.train_idx).per_char,
        "val_loss": val.per_char if val.names else None,
        "running_loss": stats["loss"] / max(stats["chars"], 1),
        "grad_norm_mean": stats["norm_sum"] / max(stats["updates"], 1),
        "grad_norm_max": stats["norm_max"],
        "clip_fraction": stats["clipped"] / max(stats["updates"] * state.params.size, 1),
        "whh_sigma_max": float(np.linalg.norm(params["Whh"], 2)),
        "seconds": seconds,
    }
