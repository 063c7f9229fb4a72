"""The straightforward per-step numpy RNN that namegen is measured (and tested) against.

The same algorithm as namegen's default mode: one name per update, one-hot inputs, softmax and
cross-entropy at every step, BPTT over the whole name, element-wise clipping, plain SGD. It is
written the way the classic course code is, with every operation inside the per-step loops.
"""

import numpy as np


def loss_and_grads(params, inputs, targets):
    """One name: inputs, targets (T,) ids -> (loss, grads), looping over steps for everything."""
    Wxh, Whh, bh, Why, by = (params[k] for k in ("Wxh", "Whh", "bh", "Why", "by"))
    V, H = Wxh.shape
    xs, hs, ps = {}, {-1: np.zeros(H)}, {}
    loss = 0.0
    for t in range(len(inputs)):
        xs[t] = np.zeros(V)
        xs[t][inputs[t]] = 1.0
        hs[t] = np.tanh(xs[t] @ Wxh + hs[t - 1] @ Whh + bh)
        z = hs[t] @ Why + by
        e = np.exp(z - np.max(z))
        ps[t] = e / np.sum(e)
        loss -= np.log(ps[t][targets[t]])
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    dh_next = np.zeros(H)
    for t in reversed(range(len(inputs))):
        dz = np.copy(ps[t])
        dz[targets[t]] -= 1.0
        grads["Why"] += np.outer(hs[t], dz)
        grads["by"] += dz
        dh = dz @ Why.T + dh_next
        da = (1.0 - hs[t] * hs[t]) * dh
        grads["bh"] += da
        grads["Wxh"] += np.outer(xs[t], da)
        grads["Whh"] += np.outer(hs[t - 1], da)
        dh_next = da @ Whh.T
    return loss, grads


def sgd_update(params, grads, learning_rate, clip):
    for name in params:
        np.clip(grads[name], -clip, clip, out=grads[name])
        params[name] -= learning_rate * grads[name]
