"""Check backpropagation against central finite differences in float64.

The numerical gradient uses only the forward pass, so it is an independent witness: a backward
pass that is wrong, or silently truncated, disagrees with it.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def numerical_grads(params: Params, inputs, targets, mask=None, eps: float = 1e-5, keep=None, styles=None) -> Params:
    """d(mean loss)/d(parameter) by (L(p + eps) - L(p - eps)) / 2 eps, one entry at a time."""
    grads = {}
    for name in checked_names(params):
        p = params[name]
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            plus = mean_loss(params, inputs, targets, mask, keep, styles)
            p[i] = old - eps
            minus = mean_loss(params, inputs, targets, mask, keep, styles)
            p[i] = old
            g[i] = (plus - minus) / (2 * eps)
        grads[name] = g
    return grads


RESOLUTION = 1e-3  # entries this much smaller than a parameter's largest are judged at that scale


def relative_error(a: np.ndarray, b: np.ndarray, resolution: float = RESOLUTION) -> float:
    """max over entries of |a - b| / (|a| + |b|), the denominator floored at RESOLUTION x the largest.

    Central differences carry a rounding error of about 1e-16 |L| / eps (about 1e-9 for a
    name's loss of 40 nats); on an entry 1e5 times smaller than the largest that is a large
    *relative* error although both gradients agree to nine digits. The floor judges such entries
    against their parameter's scale; a wrong backward pass errs at that scale and is still caught.
    resolution=0 gives the strict element-wise error (floor 1e-8), for small well-scaled models.
    """
    magnitude = np.abs(a) + np.abs(b)
    floor = max(resolution * float(np.max(magnitude, initial=0.0)), 1e-8)
    return float(np.max(np.abs(a - b) / np.maximum(magnitude, floor), initial=0.0))


def check_gradients(params: Params, inputs, targets, mask=None, truncate: int | None = None,
                    eps: float = 1e-5, resolution: float = RESOLUTION, backward_fn=backward, keep=None,
                    styles=None) -> dict[str, float]:
    """Max relative error between backprop and finite differences, per parameter.

    truncate: check a truncated backward pass instead. backward_fn: the backward pass to check
    (the tests hand in deliberately broken ones). keep: a fixed dropout mask (see forward).
    styles: each name's style, for a model with styles.
    """
    _, cache = forward(params, inputs, targets, mask, keep, styles)
    analytic = backward_fn(params, cache, truncate=truncate)
    numeric = numerical_grads(params, inputs, targets, mask, eps, keep, styles)
    return {name: relative_error(analytic[name], numeric[name], resolution) for name in checked_names(params)}


@dataclass(frozen=True)
class GradcheckConfig:
    """The options of a gradient check over names, with their defaults, bounds and help."""

    count: int = option(3, "Names drawn from the data when none are given", at_least=1)
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
def gradient_check(model: Model, config: GradcheckConfig, names: list[str] | None = None) -> GradientCheck:
    """Backpropagation against finite differences, clipping off, on the given names (cleaned like
    the data) or config.count names of the model's own, drawn with config.seed."""
    picked = model.chosen_names(names, config.count, config.seed)
    encoded = model.vocab.encode_names(picked)
    params = model.param_views
    worst = {name: 0.0 for name in checked_names(params)}
    own_style = dict(zip(model.names, model.style_of)) if model.styles else {}
    for i in range(len(encoded)):  # a model of several lists: each name in its own list's style (else the first)
        style = own_style.get(picked[i], 0) if model.styles else None
        for name, error in check_gradients(params, *encoded.pair(i), truncate=config.truncate, styles=style).items():
            worst[name] = max(worst[name], error)
    return GradientCheck(picked, worst, config)


def random_model(seed: int, hidden_size: int = 8) -> Model:
    """A small untrained model over the bundled names, its weights large enough that every
    gradient path matters (see model.random_params)."""
    data = read_names()
    vocab = Vocab.from_names(data.names)
    params = random_params(vocab.size, hidden_size, np.random.default_rng(seed))
    return Model(vocab, params, hidden_size, False, data.capitalize, data.names)
