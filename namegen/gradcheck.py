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


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / (|a| + |b|) over entries, with both near zero counted as agreeing."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-8), initial=0.0))


def check_gradients(params: Params, inputs, targets, mask=None, truncate: int | None = None,
                    eps: float = 1e-5) -> dict[str, float]:
    """Max relative error between backprop (optionally truncated) and finite differences, per parameter."""
    _, cache = forward(params, inputs, targets, mask)
    analytic = backward(params, cache, truncate=truncate)
    numeric = numerical_grads(params, inputs, targets, mask, eps)
    return {name: relative_error(analytic[name], numeric[name]) for name in PARAM_NAMES}
