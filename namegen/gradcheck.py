"""Check backpropagation against central finite differences in float64.

The numerical gradient uses only the forward pass, so it is an independent witness: a backward
pass that is wrong, or silently truncated, disagrees with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .data import read_names
from .model import PARAM_NAMES, Model, Params, backward, forward, random_params
from .options import check, option
from .threads import limited
from .vocab import Vocab


def mean_loss(params: Params, inputs, targets, mask=None, keep=None, styles=None) -> float:
    nll, _ = forward(params, inputs, targets, mask, keep, styles)
    return float(nll.mean())


def checked_names(params: Params) -> tuple[str, ...]:
    """The parameters backward computes: with styles, B (S and Wsh get theirs through it)."""
    return PARAM_NAMES + (("B",) if "B" in params else ())


Entries = dict[str, np.ndarray]  # parameter -> flat indices of the entries to check


def numerical_grads(params: Params, inputs, targets, mask=None, eps: float = 1e-5, keep=None, styles=None,
                    entries: Entries | None = None, on_entry=lambda: None) -> Params:
    """d(mean loss)/d(parameter) by (L(p + eps) - L(p - eps)) / 2 eps, one entry at a time: every
    entry, or those in `entries` (the others are NaN). on_entry() is called after each."""
    grads = {}
    for name in checked_names(params):
        p = params[name]
        g = np.full(p.shape, np.nan)
        for i in (range(p.size) if entries is None else entries[name]):
            index = np.unravel_index(i, p.shape)
            old = p[index]
            p[index] = old + eps
            plus = mean_loss(params, inputs, targets, mask, keep, styles)
            p[index] = old - eps
            minus = mean_loss(params, inputs, targets, mask, keep, styles)
            p[index] = old
            g[index] = (plus - minus) / (2 * eps)
            on_entry()
        grads[name] = g
    return grads


RESOLUTION = 1e-3  # entries this much smaller than a parameter's largest are judged at that scale
ROUNDING = 4 * np.finfo(float).eps  # the rounding of a loss, per step and per nat of it (measured: below 1)


def rounding_noise(loss: float, steps: int, eps: float) -> float:
    """How far a central difference can stray from the derivative by rounding alone: the two losses
    it subtracts, each a sum over `steps` steps of about |loss| nats, are each computed to within
    about ROUNDING x steps x |loss|, and their difference is divided by 2 eps. At hidden 256 on a
    trained model (loss 20 nats, 14 steps, eps 1e-5) that is 2.5e-8, above the 1e-9 seen."""
    return ROUNDING * steps * max(1.0, abs(loss)) / eps


def relative_error(a: np.ndarray, b: np.ndarray, resolution: float = RESOLUTION, floor: float = 1e-8) -> float:
    """max over entries of |a - b| / (|a| + |b|), the denominator floored at RESOLUTION x the largest
    and at `floor`. NaN entries (not checked) are left out.

    Central differences carry a rounding error (see rounding_noise); on an entry far smaller than
    the largest that is a large *relative* error although both gradients agree to many digits.
    The floors judge such entries against their parameter's scale and against the rounding of the
    finite differences themselves; a wrong backward pass errs far above both and is still caught.
    resolution=0 and the default floor give the strict element-wise error, for small well-scaled models.
    """
    checked = ~np.isnan(b)
    a, b = a[checked], b[checked]
    magnitude = np.abs(a) + np.abs(b)
    floor = max(resolution * float(np.max(magnitude, initial=0.0)), floor, 1e-8)
    return float(np.max(np.abs(a - b) / np.maximum(magnitude, floor), initial=0.0))


def check_gradients(params: Params, inputs, targets, mask=None, truncate: int | None = None,
                    eps: float = 1e-5, resolution: float = RESOLUTION, backward_fn=None, keep=None,
                    styles=None, threshold: float | None = None, entries: Entries | None = None,
                    on_entry=lambda: None) -> dict[str, float]:
    """Max relative error between backprop and finite differences, per parameter.

    truncate: check a truncated backward pass instead. backward_fn: the backward pass to check
    (default: model.backward; the tests hand in deliberately broken ones). keep: a fixed dropout mask (see forward).
    styles: each name's style, for a model with styles. entries: check only these (see
    sampled_entries). threshold: the relative error the caller will accept; with it, an entry is
    judged relatively only where that threshold is above the rounding of finite differences
    (rounding_noise): below, its disagreement is weighed against that rounding.
    """
    nll, cache = forward(params, inputs, targets, mask, keep, styles)
    analytic = (backward_fn or backward)(params, cache, truncate=truncate)
    numeric = numerical_grads(params, inputs, targets, mask, eps, keep, styles, entries, on_entry)
    floor = 1e-8
    if threshold is not None:
        floor = rounding_noise(float(nll.mean()), np.asarray(inputs).shape[-1], eps) / threshold
    return {name: relative_error(analytic[name], numeric[name], resolution, floor) for name in checked_names(params)}


def sampled_entries(params: Params, most: int, rng: np.random.Generator) -> Entries:
    """For each checked parameter, every entry if it has at most `most`, else `most` of them drawn
    at random: a backward pass that is wrong is wrong in a pattern, which a sample meets."""
    return {name: (np.arange(params[name].size) if params[name].size <= most
                   else np.sort(rng.choice(params[name].size, size=most, replace=False)))
            for name in checked_names(params)}


@dataclass(frozen=True)
class GradcheckConfig:
    """The options of a gradient check over names, with their defaults, bounds and help."""

    count: int = option(3, "Names drawn from the data when none are given", at_least=1)
    entries: int = option(2000, "Entries checked in each parameter: all of a smaller one, a random sample (drawn "
                                "with --seed) of a larger one", at_least=1)
    truncate: int | None = option(None, "Check a backward pass truncated every K steps, to see why truncation "
                                        "is wrong", at_least=1, default_text="full BPTT")
    threshold: float = option(1e-6, "Largest relative error that passes", above=0)
    seed: int = option(0, "Seed for the random model and the names drawn", at_least=0)

    def __post_init__(self):
        check(self)


@dataclass
class GradientCheck:
    names: list[str]  # the names checked
    max_error: dict[str, float]  # parameter -> largest relative error over every name
    config: GradcheckConfig

    @property
    def worst(self) -> float:
        return max(self.max_error.values())

    @property
    def passed(self) -> bool:
        return self.worst <= self.config.threshold

    def ok(self, name: str) -> bool:
        return self.max_error[name] <= self.config.threshold


@limited
def gradient_check(model: Model, config: GradcheckConfig, names: list[str] | None = None,
                   on_progress: Callable[[int, int], None] = lambda done, total: None) -> GradientCheck:
    """Backpropagation against finite differences, clipping off, on the given names (cleaned like
    the data) or config.count names of the model's own, drawn with config.seed; at most
    config.entries entries of each parameter (see sampled_entries). on_progress(done, total) counts
    the entries checked, for a long check's progress bar."""
    picked = model.chosen_names(names, config.count, config.seed)
    encoded = model.vocab.encode_names(picked)
    params = model.float64().param_views  # a float32 model is checked in float64: differences need the digits
    entries = sampled_entries(params, config.entries, np.random.default_rng(config.seed))
    total, done = len(encoded) * sum(len(e) for e in entries.values()), 0

    def count():
        nonlocal done
        done += 1
        if done % 64 == 0 or done == total:
            on_progress(done, total)

    worst = {name: 0.0 for name in checked_names(params)}
    own_style = dict(zip(model.names, model.style_of)) if model.styles else {}
    for i in range(len(encoded)):  # a model of several lists: each name in its own list's style (else the first)
        style = own_style.get(picked[i], 0) if model.styles else None
        for name, error in check_gradients(params, *encoded.pair(i), truncate=config.truncate, styles=style,
                                           threshold=config.threshold, entries=entries, on_entry=count).items():
            worst[name] = max(worst[name], error)
    return GradientCheck(picked, worst, config)


def random_model(seed: int, hidden_size: int = 8) -> Model:
    """A small untrained model over the bundled names, its weights large enough that every
    gradient path matters (see model.random_params)."""
    data = read_names()
    vocab = Vocab.from_names(data.names)
    params = random_params(vocab.size, hidden_size, np.random.default_rng(seed))
    return Model(vocab, params, hidden_size, False, data.capitals, data.names)
