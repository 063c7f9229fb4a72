"""A training run's configuration and state: everything a checkpoint must hold to resume it exactly.

Kept apart from the loop so that checkpoints can save and restore it without the loop. The
records that leave the loop (epoch statistics, history rows) are typed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .data import CASES, NameList, fingerprint, split_by_style, split_indices
from .errors import OptionError, OptionName, TrainingError, plural, shortened
from .layout import Layout
from .model import Model
from .optim import OPTIMIZERS, ClipStats, Optimizer, make_optimizer
from .options import check, check_values, option
from .vocab import Vocab

LR_SCHEDULES = ("linear", "cosine", "constant")
DTYPES = ("float64", "float32")
MAX_HIDDEN = 4096  # Whh alone is then 128 MiB; beyond that a vanilla RNN is the wrong tool


@dataclass(frozen=True)
class TrainConfig:
    """Every training hyperparameter, with its default, allowed values and help; the CLI reads them here."""

    hidden_size: int = option(50, "Units in the hidden state", at_least=1, at_most=MAX_HIDDEN)
    learning_rate: float = option(0.01, "Step size at the first update", above=0)
    lr_schedule: str = option("linear", "'linear' decays the step to 0 by the last update, 'cosine' along a half "
                                        "cosine; 'constant' keeps it", choices=LR_SCHEDULES)
    warmup: float = option(0.0, "Share of the run over which the step first rises from 0 (Adam likes a few "
                                "percent)", at_least=0, at_most=0.5)
    optimizer: str = option("sgd", "The update rule", choices=tuple(OPTIMIZERS))
    epochs: int = option(25, "Total passes over the training names; a resumed run stops at this total",
                         at_least=1)
    batch_size: int = option(1, "Names per update, padded and masked; the loss is the mean over them of each "
                                "name's sum. 0 takes every training name: one update an epoch", at_least=0)
    clip: float = option(5.0, "Clip each gradient entry to [-clip, clip]; 0 turns clipping off", at_least=0)
    clip_norm: float = option(0.0, "Scale the whole gradient down to this norm when it is longer, keeping its "
                                   "direction (before --clip); 0 turns it off", at_least=0)
    style_size: int = option(8, "With several --data lists: the size of the vector learned for each list's "
                                "style", at_least=1, at_most=MAX_HIDDEN)
    embedding_size: int = option(0, "Train the input weights as a product Wxh = E Wih, a vector of this size per "
                                    "character times an input layer (PyTorch's Embedding then RNN); the network is "
                                    "the same. 0 trains Wxh directly", at_least=0, at_most=MAX_HIDDEN)
    dropout: float = option(0.0, "Share of hidden units dropped, at each step of training, on the way to the "
                                 "output (never on the recurrent path, never when sampling)", at_least=0, below=1)
    weight_decay: float = option(0.0, "Decoupled weight decay (as AdamW): each update shrinks the weights, not "
                                      "the biases, by the step size times this", at_least=0)
    patience: int | None = option(None, "Stop once validation has not improved for this many epochs; the best "
                                        "checkpoint keeps the best model", at_least=1, default_text="never")
    val_fraction: float = option(0.1, "Share of names held out for validation; 0 turns it off",
                                 at_least=0, below=1)
    seed: int = option(0, "Seed of the one generator behind the split, initialisation and shuffling",
                       at_least=0)
    case: str = option("auto", "'lower' lower-cases names (capitalised on output if most were), 'keep' keeps "
                               "letter case, 'auto' lower-cases only where that restores the names", choices=CASES)
    bucket_by_length: bool = option(True, "With batches, group names of similar length to cut padding")
    eval_train: bool = option(False, "At each epoch's end, also measure the loss of every training name with "
                                     "the epoch's final parameters (a tenth of an epoch's time); without it the "
                                     "train loss is the mean over the epoch's updates")
    dtype: str = option("float64", "Number format of the weights, the training and the sampling: float32 halves "
                                   "the memory and speeds up batches; float64 is the reference (gradient checks "
                                   "always use it)", choices=DTYPES)
    max_steps: int | None = option(None, "Stop once the run has made this many updates in all, saving a "
                                         "resumable checkpoint; a resumed run does not keep the limit",
                                   at_least=1, default_text="no limit")

    def __post_init__(self):
        check(self)
        if self.weight_decay * self.learning_rate >= 1:  # the schedule never takes the step above learning_rate
            raise OptionError(OptionName("weight_decay"), f" {self.weight_decay:g} with ", OptionName("learning_rate"),
                              f" {self.learning_rate:g} multiplies each weight by 1 - {self.weight_decay:g} x "
                              f"{self.learning_rate:g} = {1 - self.weight_decay * self.learning_rate:g} at an update, "
                              "flipping or zeroing it; keep their product below 1")
        if self.patience is not None and self.val_fraction == 0:
            raise OptionError(OptionName("patience"), " needs validation names to watch; set ",
                              OptionName("val_fraction"), " above 0")


# Options a resumed run may change; the rest would silently make it a different run.
RESUMABLE_OPTIONS = ("learning_rate", "lr_schedule", "warmup", "epochs", "batch_size", "clip", "clip_norm", "bucket_by_length",
                     "max_steps", "eval_train", "patience")


@dataclass
class EpochStats:
    """Running sums over the updates of one epoch, turned into an EpochRecord at its end."""

    loss: float = 0.0  # sum over names of each name's loss, nats
    chars: int = 0  # predicted tokens: each name's characters plus its end token
    norm_sum: float = 0.0  # sum of the gradient norms before clipping
    norm_max: float = 0.0  # the largest of them
    clipped: int = 0  # gradient entries clipped
    updates: int = 0
    rescaled: int = 0  # updates whose whole gradient was scaled down (clip_norm)

    def add(self, loss: float, names: int, chars: int, clip: ClipStats) -> None:
        """Count one update: the mean loss of its `names` names, and its clipping statistics."""
        self.loss += loss * names
        self.chars += chars
        self.norm_sum += clip.norm
        self.norm_max = max(self.norm_max, clip.norm)
        self.clipped += clip.clipped
        self.rescaled += clip.rescaled
        self.updates += 1

    def add_each(self, losses: np.ndarray, chars: np.ndarray, norms: np.ndarray, clipped: np.ndarray,
                 rescaled: int = 0) -> None:
        """Count one update per name, as `add` would one by one (the compiled path's chunks).
        A cumulative sum adds in the same order as the loop, so the sums come out the same."""
        if len(losses):
            self.loss = float(np.add.accumulate(np.concatenate(([self.loss], losses)))[-1])
            self.norm_sum = float(np.add.accumulate(np.concatenate(([self.norm_sum], norms)))[-1])
            self.norm_max = max(self.norm_max, float(norms.max()))
            self.chars += int(chars.sum())
            self.clipped += int(clipped.sum())
            self.rescaled += rescaled
            self.updates += len(losses)

    @property
    def running_loss(self) -> float:
        """Nats per character over the updates so far."""
        return self.loss / max(self.chars, 1)


@dataclass
class EpochRecord:
    """One row of a run's history: the losses and gradient statistics of a completed epoch."""

    epoch: int  # 1 for the first epoch
    step: int  # updates applied by the end of the epoch
    train_loss: float | None  # nats/char over the training names with the final parameters; None unless eval_train
    val_loss: float | None  # the same over the validation names; None without validation
    running_loss: float  # nats/char over the epoch's own updates, as the parameters moved
    grad_norm_mean: float  # L2 norm of the whole gradient before clipping, mean over updates
    grad_norm_max: float
    clip_fraction: float  # share of gradient entries clipped, over every update of the epoch
    whh_sigma_max: float  # largest singular value of Whh at the end of the epoch
    seconds: float  # wall time since the previous record: the updates, the evaluation, and the previous
    # epoch's checkpoint writes and report, so that the epochs add up to the run
    rescale_fraction: float = 0.0  # share of updates whose whole gradient was scaled down (clip_norm)

    @property
    def finite(self) -> bool:
        """Whether every figure is a finite number (or absent): a checkpoint holds no other."""
        return all(value is None or math.isfinite(value) for value in vars(self).values())


@dataclass
class TrainState:
    """A training run: the model it trains and everything else needed to resume it exactly."""

    config: TrainConfig
    model: Model  # its params are the model's prefix of `weights`, a view
    source: str  # the data file the names came from
    train_idx: np.ndarray  # indices into model.names
    val_idx: np.ndarray
    optimizer: Optimizer
    rng: np.random.Generator  # drives shuffling; saved so a resumed run continues the sequence
    weights: np.ndarray  # the trained vector (see layout): the model's parameters, then its factors
    epoch: int = 0  # completed epochs
    position: int = 0  # names of the current epoch already trained on
    order: np.ndarray | None = None  # the current epoch's order of training indices
    step: int = 0  # updates applied
    history: list[EpochRecord] = field(default_factory=list)  # one record per completed epoch
    best_val_loss: float | None = None  # lowest validation loss (nats/char) seen at an epoch end
    epoch_stats: EpochStats = field(default_factory=EpochStats)  # the current epoch so far

    @property
    def layout(self) -> Layout:
        """Where each block of the trained vector lies."""
        return layout_of(self.config, self.model.vocab.size, len(self.model.styles), self.model.style_size)

    @property
    def trained_size(self) -> int:
        """Entries the optimizer moves: the whole trained vector."""
        return self.weights.size


def layout_of(config: TrainConfig, vocab_size: int, styles: int, style_size: int) -> Layout:
    """The layout of a run of `config` over a vocabulary of `vocab_size` and `styles` lists (each a
    vector of `style_size`): the one place a run's options become its blocks."""
    return Layout(vocab_size, config.hidden_size, styles, style_size if styles else 0, config.embedding_size)


def split_of(data: NameList, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices: the first draws of a run's generator (seeded by its seed), so
    a fresh default_rng(seed) gives the split of every run of that seed."""
    if data.styles:
        return split_by_style(data.style_of, val_fraction, rng)
    return split_indices(len(data.names), val_fraction, rng)


def new_state(config: TrainConfig, data: NameList) -> TrainState:
    """A fresh run: build the vocabulary, split the names, and initialise the trained vector."""
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = split_of(data, config.val_fraction, rng)
    vocab = Vocab.from_names(data.names)
    layout = layout_of(config, vocab.size, len(data.styles), config.style_size)
    weights = layout.initial(rng, config.dtype)  # drawn in float64 and rounded: the same start in either format
    model = Model(vocab, weights[: layout.model_size], config.hidden_size, data.keep_case, data.capitals, data.names,
                  data.styles, data.style_of, layout.style_size)
    optimizer = make_optimizer(config.optimizer, layout.size, config.learning_rate, config.dtype)
    return TrainState(config, model, data.source, train_idx, val_idx, optimizer, rng, weights)


def resume_state(state: TrainState, overrides: dict, data: NameList | None = None) -> TrainState:
    """Continue a saved run, changing only options that do not change what is being trained.

    overrides: option name -> value given by the user.
    data: if given, it must be the data the run was trained on.
    """
    check_values(TrainConfig, overrides)
    conflicts = [
        f"{k}={shortened(v)} (checkpoint has {getattr(state.config, k)!r})"
        for k, v in overrides.items()
        if k not in RESUMABLE_OPTIONS and v != getattr(state.config, k)
    ]
    if conflicts:
        raise TrainingError(
            "cannot resume with different " + ", ".join(conflicts)
            + "; these are fixed by the checkpoint: drop the options or start a new run"
        )
    given_fingerprint = fingerprint(data.names) if data is not None else state.model.fingerprint
    if given_fingerprint != state.model.fingerprint:
        raise TrainingError(
            f"{data.source} is not the data this checkpoint was trained on "
            f"(fingerprint {given_fingerprint} != {state.model.fingerprint}); resume without ",
            OptionName("data"), " to use the names saved in the checkpoint"
        )
    # max_steps bounds one invocation, not the run: a resumed run has no limit unless given one
    changes = {"max_steps": None} | {k: v for k, v in overrides.items() if k in RESUMABLE_OPTIONS}
    config = replace(state.config, **changes)
    if config.max_steps and state.step >= config.max_steps:
        raise TrainingError(
            f"the checkpoint is already at update {state.step}; ", OptionName("max_steps"),
            f" counts all updates of the run, so pass more than {state.step} (or leave it out)"
        )
    if state.epoch >= config.epochs:
        raise TrainingError(
            f"the checkpoint has already completed {plural(state.epoch, 'epoch')}; pass ",
            OptionName("epochs"), f" above {state.epoch} to train further"
        )
    state.config = config
    return state
