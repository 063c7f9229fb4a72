"""Check backpropagation against central finite differences in float64.

The numerical gradient uses only the forward pass, so it is an independent witness: a backward
pass that is wrong, or silently truncated, disagrees with it.
"""

from __future__ import annotations

import numpy as np

from .model import PARAM_NAMES, Params, backward, forward


def mean_loss(params: Params, inputs, targets, mask=None) -> float:
    nll, _ = forward(params, inputs, targets, mask)
    return float(nll.mean())


def numerical_grads(params: Params, inputs, targets, mask=None, eps: float = 1e-5) -> Params:
    """d(mean loss)/d(parameter) by (L(p + eps) - L(p - eps)) / 2 eps, one entry at a time."""
    grads = {}
    for name in PARAM_NAMES:
        p = params[name]
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            plus = mean_loss(params, inputs, targets, mask)
            p[i] = old - eps
            minus = mean_loss(params, inputs, targets, mask)
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
                    eps: float = 1e-5, resolution: float = RESOLUTION, backward_fn=backward) -> dict[str, float]:
    """Max relative error between backprop and finite differences, per parameter.

    truncate: check a truncated backward pass instead. backward_fn: the backward pass to check
    (the tests hand in deliberately broken ones).
    """
    _, cache = forward(params, inputs, targets, mask)
    analytic = backward_fn(params, cache, truncate=truncate)
    numeric = numerical_grads(params, inputs, targets, mask, eps)
    return {name: relative_error(analytic[name], numeric[name], resolution) for name in PARAM_NAMES}
