"""The state of a training run: its configuration and everything a checkpoint must hold.

Kept apart from the loop so that checkpoints can save and restore it without the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from .data import NameList, clean_name, fingerprint, split_indices
from .errors import TrainingError
from .model import Params, init_params, unflatten
from .optim import OPTIMIZERS, Optimizer, make_optimizer
from .vocab import Vocab


LR_SCHEDULES = ("linear", "constant")
MAX_HIDDEN = 4096  # Whh alone is then 128 MiB; beyond that a vanilla RNN is the wrong tool


@dataclass(frozen=True)
class TrainConfig:
    """Every training hyperparameter; the CLI's defaults come from here."""

    hidden_size: int = 50  # H, units in the recurrent state
    learning_rate: float = 0.01  # step size of the optimizer at the first update
    lr_schedule: str = "linear"  # "linear": decay to 0 by the last update; "constant": never change
    optimizer: str = "sgd"  # one of OPTIMIZERS: sgd, adam, adagrad
    epochs: int = 25  # total passes over the training names (a resumed run stops at this total)
    batch_size: int = 1  # names per update; the loss is the mean over them of each name's sum
    clip: float = 5.0  # clip every gradient entry to [-clip, clip]; 0 turns clipping off
    val_fraction: float = 0.1  # share of names held out for validation; 0 turns it off
    seed: int = 0  # seeds the one generator behind the split, initialisation and shuffling
    keep_case: bool = False  # keep letter case instead of lower-casing every name
    bucket_by_length: bool = True  # batch_size > 1: group names of similar length to cut padding
    max_steps: int = 0  # stop once the run has made this many updates (0: no limit; not kept on resume)

    def validate(self) -> None:
        """Raise ValueError naming the first impossible value."""
        checks = [
            (1 <= self.hidden_size <= MAX_HIDDEN, f"hidden_size must be between 1 and {MAX_HIDDEN}"),
            (math.isfinite(self.learning_rate) and self.learning_rate > 0, "learning_rate must be a positive number"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (math.isfinite(self.clip) and self.clip >= 0, "clip must be 0 (off) or a positive number"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.max_steps >= 0, "max_steps must be 0 (no limit) or positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# Options a resumed run may change; the rest would silently make it a different run.
RESUMABLE_OPTIONS = ("learning_rate", "lr_schedule", "epochs", "batch_size", "clip", "bucket_by_length", "max_steps")


@dataclass
class TrainState:
    """Everything a checkpoint holds: enough to sample, evaluate, or resume exactly."""

    config: TrainConfig
    vocab: Vocab
    names: list[str]  # all cleaned names, train and validation, in file order
    capitalize: bool  # capitalise sampled names, as the data was
    source: str  # the data file the names came from
    train_idx: np.ndarray  # indices into names
    val_idx: np.ndarray
    params: np.ndarray  # flat parameter vector; see model.unflatten
    optimizer: Optimizer
    rng: np.random.Generator  # drives shuffling; saved so a resumed run continues the sequence
    epoch: int = 0  # completed epochs
    position: int = 0  # names of the current epoch already trained on
    order: np.ndarray | None = None  # the current epoch's order of training indices
    step: int = 0  # updates applied
    history: list[dict] = field(default_factory=list)  # one record per completed epoch
    best_val_loss: float | None = None  # lowest validation loss (nats/char) seen at an epoch end
    epoch_stats: dict = field(default_factory=lambda: new_epoch_stats())  # the current epoch so far

    @property
    def param_views(self) -> Params:
        return unflatten(self.params, self.vocab.size, self.config.hidden_size)

    @cached_property
    def data_fingerprint(self) -> str:
        """Hashes every name: computed once, since a run's names never change."""
        return fingerprint(self.names)

    def knows(self, name: str) -> bool:
        """Whether a name (as typed or as displayed) is in the training list, after cleaning."""
        return clean_name(name, self.config.keep_case) in self._known

    @cached_property
    def _known(self) -> set[str]:
        return set(self.names)


def new_state(config: TrainConfig, data: NameList) -> TrainState:
    """A fresh run: build the vocabulary, split the names, and initialise the parameters."""
    config.validate()
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = split_indices(len(data.names), config.val_fraction, rng)
    vocab = Vocab.from_names(data.names)
    params = init_params(vocab.size, config.hidden_size, rng)
    optimizer = make_optimizer(config.optimizer, params.size, config.learning_rate)
    return TrainState(config, vocab, data.names, data.capitalize, data.source,
                      train_idx, val_idx, params, optimizer, rng)


def resume_state(state: TrainState, overrides: dict, data: NameList | None = None) -> TrainState:
    """Continue a saved run, changing only options that do not change what is being trained.

    overrides: option name -> value given by the user (None values are ignored).
    data: if given, it must be the data the run was trained on.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    conflicts = [
        f"{k}={v!r} (checkpoint has {getattr(state.config, k)!r})"
        for k, v in given.items()
        if k not in RESUMABLE_OPTIONS and v != getattr(state.config, k)
    ]
    if conflicts:
        raise TrainingError(
            "cannot resume with different " + ", ".join(conflicts)
            + "; these are fixed by the checkpoint: drop the options or start a new run"
        )
    given_fingerprint = fingerprint(data.names) if data is not None else state.data_fingerprint
    if given_fingerprint != state.data_fingerprint:
        raise TrainingError(
            f"{data.source} is not the data this checkpoint was trained on "
            f"(fingerprint {given_fingerprint} != {state.data_fingerprint}); "
            "resume without --data to use the names saved in the checkpoint"
        )
    # max_steps bounds one invocation, not the run: a resumed run has no limit unless given one
    config = replace(state.config, **({"max_steps": 0} | {k: v for k, v in given.items() if k in RESUMABLE_OPTIONS}))
    config.validate()
    if config.max_steps and state.step >= config.max_steps:
        raise TrainingError(
            f"the checkpoint is already at update {state.step}; --max-steps counts all updates of "
            f"the run, so pass more than {state.step} (or leave it out)"
        )
    if state.epoch >= config.epochs:
        raise TrainingError(
            f"the checkpoint has already completed {state.epoch} of {config.epochs} epochs; "
            f"pass --epochs N with N > {state.epoch} to train further"
        )
    state.config = config
    return state


def new_epoch_stats() -> dict:
    """Running sums over the updates of one epoch, turned into a history record at its end."""
    return {"loss": 0.0, "chars": 0, "norm_sum": 0.0, "norm_max": 0.0, "clipped": 0, "updates": 0}
