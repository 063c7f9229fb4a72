"""The vanilla RNN: parameters, forward pass and backpropagation through time, as pure functions.

Row-vector convention, letters fixed throughout: N names, T time steps, V vocabulary, H hidden.
    a_t = x_t Wxh + h_{t-1} Whh + bh,   h_t = tanh(a_t),   h_0 = 0 for every name
    z_t = h_t Why + by,   p_t = softmax(z_t),   loss = (1/N) sum_n sum_t mask_nt * -log p_nt[y_nt]
x_t is one-hot, so x_t Wxh is row ids[t] of Wxh: the code gathers rows instead of multiplying.
"""

from __future__ import annotations

import numpy as np

PARAM_NAMES = ("Wxh", "Whh", "bh", "Why", "by")

Params = dict[str, np.ndarray]


def param_shapes(vocab_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
    V, H = vocab_size, hidden_size
    return {"Wxh": (V, H), "Whh": (H, H), "bh": (H,), "Why": (H, V), "by": (V,)}


def num_params(vocab_size: int, hidden_size: int) -> int:
    return sum(int(np.prod(s)) for s in param_shapes(vocab_size, hidden_size).values())


def unflatten(flat: np.ndarray, vocab_size: int, hidden_size: int) -> Params:
    """Named views into one flat vector.

    Training keeps parameters and gradients each in one contiguous vector, so that clipping and an
    optimizer update are a single numpy call instead of one per parameter.
    """
    views, start = {}, 0
    for name, shape in param_shapes(vocab_size, hidden_size).items():
        size = int(np.prod(shape))
        views[name] = flat[start : start + size].reshape(shape)
        start += size
    assert start == flat.size, "flat vector does not match the parameter shapes"
    return views


def init_params(vocab_size: int, hidden_size: int, rng: np.random.Generator) -> np.ndarray:
    """Small random weights, zero biases, as one flat float64 vector (see `unflatten`).

    Input and output weights start at N(0, 0.01^2) as in the classic recipe; Whh starts at
    N(0, 1/H) so that its singular values sit near 1 and the gradient neither dies nor blows up
    over the first few dozen steps.
    """
    flat = np.zeros(num_params(vocab_size, hidden_size))
    p = unflatten(flat, vocab_size, hidden_size)
    p["Wxh"][:] = rng.standard_normal(p["Wxh"].shape) * 0.01
    p["Whh"][:] = rng.standard_normal(p["Whh"].shape) / np.sqrt(hidden_size)
    p["Why"][:] = rng.standard_normal(p["Why"].shape) * 0.01
    return flat


def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis (the vocabulary), stable for any finite logits."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """softmax over the last axis (the vocabulary), never over the batch or time axis."""
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def step(params: Params, h: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One time step for a batch: h (N, H), ids (N,) -> next h (N, H), logits (N, V)."""
    h = np.tanh(params["Wxh"][ids] + h @ params["Whh"] + params["bh"])
    return h, h @ params["Why"] + params["by"]


def _as_batch(a) -> np.ndarray:
    a = np.asarray(a)
    return a[None, :] if a.ndim == 1 else a


def forward(params: Params, inputs, targets, mask=None) -> tuple[np.ndarray, tuple]:
    """Loss of each name and a cache for `backward`.

    inputs, targets: (N, T) ids, or (T,) for one name; mask: (N, T) bool or None (all real steps).
    Returns nll (N,), the summed negative log-likelihood of each name in nats, and the cache.
    """
    inputs, targets = _as_batch(inputs), _as_batch(targets)
    N, T = inputs.shape
    Whh = params["Whh"]
    a = params["Wxh"][inputs.T]  # (T, N, H): the input term of every step, gathered at once
    a += params["bh"]
    hs = np.empty((T + 1, N, Whh.shape[0]))  # hs[t] is h_t; hs[0] = h_0
    hs[0] = 0.0  # every name starts from a zero state: nothing carries over between names
    for t in range(T):  # the recurrence is the only loop
        a_t = a[t]
        a_t += hs[t] @ Whh
        np.tanh(a_t, out=hs[t + 1])
    logp = log_softmax(hs[1:] @ params["Why"] + params["by"])  # (T, N, V)
    t_idx, n_idx = np.arange(T)[:, None], np.arange(N)[None, :]
    nll = -logp[t_idx, n_idx, targets.T]  # (T, N)
    if mask is not None:
        mask = _as_batch(mask)
        nll *= mask.T
    return nll.sum(axis=0), (inputs, targets, mask, hs, logp)


def backward(params: Params, cache: tuple, truncate: int | None = None, grads: Params | None = None) -> Params:
    """Gradients of the mean per-name loss, (1/N) sum_n nll_n, for every parameter.

    truncate: None for full backpropagation through time. An integer k cuts the gradient between
    h_{t-1} and h_t whenever t is a multiple of k (truncated BPTT in chunks of k); it exists to
    show why a truncated backward pass disagrees with finite differences, not for training.
    grads: optional arrays to write into (e.g. views of one flat vector); new ones otherwise.
    """
    inputs, targets, mask, hs, logp = cache
    T, N, V = logp.shape
    H = hs.shape[-1]
    if grads is None:
        grads = {name: np.empty_like(params[name]) for name in PARAM_NAMES}

    dz = np.exp(logp)  # (T, N, V): softmax, whose cross-entropy gradient is p - onehot(y)
    dz[np.arange(T)[:, None], np.arange(N)[None, :], targets.T] -= 1.0
    if mask is not None:
        dz *= mask.T[:, :, None]
    dz *= 1.0 / N
    np.matmul(hs[1:].reshape(T * N, H).T, dz.reshape(T * N, V), out=grads["Why"])
    np.sum(dz, axis=(0, 1), out=grads["by"])

    dh = dz @ params["Why"].T  # (T, N, H): dL/dh_t from the output at step t; grows below
    dtanh = 1.0 - hs[1:] ** 2  # (T, N, H)
    da = np.empty((T, N, H))  # dL/da_t, the gradient at each pre-activation
    WhhT = params["Whh"].T
    dh_prev = np.zeros((N, H))  # dL/dh_t arriving from step t+1 through Whh
    for t in range(T - 1, -1, -1):
        dh_t = dh[t]
        dh_t += dh_prev
        np.multiply(dh_t, dtanh[t], out=da[t])
        if truncate is not None and t % truncate == 0:
            dh_prev = np.zeros((N, H))
        else:
            dh_prev = da[t] @ WhhT

    flat_da = da.reshape(T * N, H)
    # dWhh pairs each step's da_t with the *previous hidden state* h_{t-1} = hs[t].
    np.matmul(hs[:-1].reshape(T * N, H).T, flat_da, out=grads["Whh"])
    np.sum(flat_da, axis=0, out=grads["bh"])
    grads["Wxh"][...] = 0.0
    np.add.at(grads["Wxh"], inputs.T.reshape(T * N), flat_da)  # scatter: dWxh row id += da
    return grads


def loss_and_grads(params: Params, inputs, targets, mask=None, truncate: int | None = None,
                   grads: Params | None = None) -> tuple[float, Params]:
    """Mean per-name loss (nats, summed over each name's steps) and its gradients.

    For one name (inputs and targets of shape (T,)) this is the name's total cross-entropy.
    """
    nll, cache = forward(params, inputs, targets, mask)
    return float(nll.mean()), backward(params, cache, truncate, grads)
