"""The linear counting RNN: the textbook case of exploding and vanishing gradients, and of Rprop.

One input and one state, no nonlinearity: s_k = s_{k-1} w_rec + x_k w_x, s_0 = 0, and the network
should output s_n = x_1 + ... + x_n, the count of ones in a binary sequence. The answer is
w_rec = w_x = 1. The gradient reaching step k is dC/ds_n * w_rec^(n-k): it vanishes for
|w_rec| < 1 and explodes for |w_rec| > 1, so the cost surface over (w_x, w_rec) is flat on one
side and a cliff on the other, where gradient descent is thrown far away. Rprop uses only the
sign of the gradient and finds (1, 1) all the same (Riedmiller and Braun 1993).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .optim import make_optimizer


@dataclass(frozen=True)
class CountingData:
    x: np.ndarray  # (N, n) binary inputs
    t: np.ndarray  # (N,) targets: the number of ones in each sequence


def counting_data(sequences: int = 20, length: int = 10, rng: np.random.Generator | None = None) -> CountingData:
    rng = rng or np.random.default_rng(0)
    x = rng.integers(0, 2, size=(sequences, length)).astype(float)
    return CountingData(x, x.sum(axis=1))


def states(data: CountingData, w_x: float, w_rec: float) -> np.ndarray:
    """(N, n + 1) states s_0 .. s_n of every sequence."""
    N, n = data.x.shape
    s = np.zeros((N, n + 1))
    for k in range(n):
        s[:, k + 1] = s[:, k] * w_rec + data.x[:, k] * w_x
    return s


def cost(data: CountingData, w_x: float, w_rec: float) -> float:
    """Mean squared error of the final state against the count."""
    return float(np.mean((states(data, w_x, w_rec)[:, -1] - data.t) ** 2))


def state_gradients(data: CountingData, w_x: float, w_rec: float) -> np.ndarray:
    """(N, n) dC/ds_k for k = 1..n, by backpropagation through time: dC/ds_{k-1} = dC/ds_k * w_rec."""
    s = states(data, w_x, w_rec)
    N, n = data.x.shape
    grads = np.zeros((N, n))
    grads[:, -1] = 2 * (s[:, -1] - data.t) / N
    for k in range(n - 1, 0, -1):
        grads[:, k - 1] = grads[:, k] * w_rec
    return grads


def gradient(data: CountingData, w_x: float, w_rec: float) -> np.ndarray:
    """[dC/dw_x, dC/dw_rec]: each step adds x_k dC/ds_k and s_{k-1} dC/ds_k."""
    s = states(data, w_x, w_rec)
    g = state_gradients(data, w_x, w_rec)
    return np.array([float(np.sum(g * data.x)), float(np.sum(g * s[:, :-1]))])


@dataclass
class CountingDemo:
    data: CountingData
    w_x: np.ndarray  # grid axes of the cost surface
    w_rec: np.ndarray
    surface: np.ndarray  # (len(w_rec), len(w_x)) cost
    points: list[tuple[float, float]]  # (w_x, w_rec) where the gradient over time is shown
    over_time: list[np.ndarray]  # for each point, mean |dC/ds_k| for k = 1..n
    path: np.ndarray  # (iterations + 1, 2) Rprop's (w_x, w_rec), from the start
    costs: np.ndarray  # the cost along the path
    first_step: float  # Rprop's initial step, for both weights


def counting_demo(start: tuple[float, float] = (-1.5, 2.0), iterations: int = 500, seed: int = 0,
                  first_step: float = 0.001) -> CountingDemo:
    """The data, the cost surface, the gradient over time at a few points, and full-batch Rprop
    from `start` (the classic picture starts it beyond the cliff)."""
    data = counting_data(rng=np.random.default_rng(seed))
    w_x, w_rec = np.linspace(-3, 3, 61), np.linspace(-3, 3, 61)
    surface = np.array([[cost(data, a, r) for a in w_x] for r in w_rec])
    points = [(0.5, 0.5), (0.5, 1.0), (0.5, 1.5)]  # off the answer, so that the gradient is not 0
    over_time = [np.abs(state_gradients(data, a, r)).mean(axis=0) for a, r in points]
    rprop = make_optimizer("rprop", 2, first_step)
    w = np.array(start, dtype=float)
    path, costs = [w.copy()], [cost(data, *w)]
    for _ in range(iterations):
        rprop.step(w, gradient(data, *w))
        path.append(w.copy())
        costs.append(cost(data, *w))
    return CountingDemo(data, w_x, w_rec, surface, points, over_time, np.array(path), np.array(costs), first_step)
