"""Element-wise gradient clipping and the optimizers (SGD, Adam, Adagrad) on flat vectors.

Parameters and gradients live in one flat vector each, so every update is a few numpy calls
whatever the number of parameter matrices; optimizer state is plain arrays, saved in checkpoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

@dataclass
class ClipStats:
    norm: float  # L2 norm of the whole gradient before clipping
    clipped: int  # number of entries that were outside [-clip, clip]
    rescaled: bool = False  # whether the whole gradient was scaled down to max_norm


def clip_(grad: np.ndarray, clip: float | None, max_norm: float | None = None,
          scratch: np.ndarray | None = None) -> ClipStats:
    """Clip the gradient in place: first, with max_norm, scale the whole vector down to that norm
    when it is longer (Pascanu et al. 2013: the direction is kept); then clip every entry to
    [-clip, clip], which turns the direction. None or 0 turns either off. scratch: a bool array of
    grad's size for counting the entries clipped, so that the update allocates nothing."""
    norm = float(np.sqrt(np.dot(grad, grad)))
    rescaled = bool(max_norm) and norm > max_norm
    if rescaled:
        grad *= max_norm / norm
    longest = min(norm, max_norm) if rescaled else norm
    if not clip or longest <= clip:  # no entry can be larger than the norm
        return ClipStats(norm, 0, rescaled)
    if max(np.maximum.reduce(grad), -np.minimum.reduce(grad)) <= clip:  # the usual case: nothing to clip or count
        return ClipStats(norm, 0, rescaled)
    outside = np.empty(grad.shape, dtype=bool) if scratch is None else scratch
    clipped = int(np.count_nonzero(np.greater(grad, clip, out=outside)))
    clipped += int(np.count_nonzero(np.less(grad, -clip, out=outside)))
    np.clip(grad, -clip, clip, out=grad)
    return ClipStats(norm, clipped, rescaled)


def decay_(weights: np.ndarray, ranges: np.ndarray, amount: float) -> None:
    """Decoupled weight decay (Loshchilov and Hutter's AdamW), in place: the entries of the trained
    vector in `ranges` (layout.Layout.decayed: which ones is the layout's rule) times (1 - amount),
    amount = step size x decay, before the optimizer's own step."""
    shrink = 1.0 - amount
    for start, end in ranges:
        weights[start:end] *= shrink


class Optimizer:
    """Updates a flat parameter vector in place from a flat gradient of the same size, with no
    allocation: every temporary lives in scratch arrays made at the first step (not saved)."""

    name = ""
    state_names: tuple[str, ...] = ()
    scratch_kinds: tuple[type, ...] = ()  # the scratch arrays (of the vector's size) the update needs: float or bool

    def __init__(self, size: int, learning_rate: float, dtype="float64"):
        self.learning_rate = learning_rate
        self.steps = 0  # updates applied so far (Adam's bias correction needs it)
        self.state = {key: np.zeros(size, dtype=dtype) for key in self.state_names}
        self.scratch: list[np.ndarray] = []

    def step(self, params: np.ndarray, grad: np.ndarray) -> None:
        """Update params in place; grad is used as scratch space (it is recomputed every update)."""
        self.steps += 1
        if len(self.scratch) != len(self.scratch_kinds) or (self.scratch and self.scratch[0].shape != params.shape):
            self.scratch = [np.empty_like(params, dtype=params.dtype if kind is float else kind)
                            for kind in self.scratch_kinds]
        self._update(params, grad)

    def _update(self, params: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def state_problem(self) -> str | None:
        """What is impossible in the state (as a checkpoint may hold it), or None: only the
        optimizers whose state has bounds say anything."""
        return None


class SGD(Optimizer):
    name = "sgd"

    def _update(self, params, grad):
        grad *= self.learning_rate
        params -= grad


class Adam(Optimizer):
    name = "adam"
    state_names = ("m", "v")
    scratch_kinds = (float,)
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def _update(self, params, grad):
        m, v, (denominator,) = self.state["m"], self.state["v"], self.scratch
        v *= self.beta2
        np.multiply(grad, 1 - self.beta2, out=denominator)  # (1 - beta2) g g, in the reference's order
        denominator *= grad
        v += denominator
        m *= self.beta1
        grad *= 1 - self.beta1
        m += grad
        step_size = self.learning_rate * math.sqrt(1 - self.beta2**self.steps) / (1 - self.beta1**self.steps)
        np.sqrt(v, out=denominator)
        denominator += self.eps
        np.multiply(m, step_size, out=grad)
        grad /= denominator
        params -= grad

    def state_problem(self):
        return "optimizer/v holds a negative mean square" if np.any(self.state["v"] < 0) else None


class Adagrad(Optimizer):
    name = "adagrad"
    state_names = ("sum_sq",)
    scratch_kinds = (float,)
    eps = 1e-8

    def _update(self, params, grad):
        sum_sq, (denominator,) = self.state["sum_sq"], self.scratch
        np.multiply(grad, grad, out=denominator)
        sum_sq += denominator
        np.sqrt(sum_sq, out=denominator)
        denominator += self.eps
        grad *= self.learning_rate
        grad /= denominator
        params -= grad

    def state_problem(self):
        return "optimizer/sum_sq holds a negative sum of squares" if np.any(self.state["sum_sq"] < 0) else None


class Rprop(Optimizer):
    """Resilient backpropagation, iRprop- (Riedmiller and Braun 1993; Igel and Huesken 2000).

    Each parameter moves by its own step, against the *sign* of its gradient only, so an exploding
    gradient cannot throw a weight further than its step. A step grows by INCREASE while its
    gradient keeps its sign and shrinks by DECREASE when the sign flips; after a flip the entry
    does not move and forgets its gradient, so the next update only grows or moves. The steps
    start at the learning rate and stay within [MIN_STEP, MAX_STEP], the paper's bounds, the first
    included (as torch.optim.Rprop clamps it). Meant for full-batch training (--batch-size 0):
    with mini-batches the signs flip with the batch, not with the loss surface. The learning-rate
    schedule does not apply.
    """

    name = "rprop"
    state_names = ("step", "previous")
    scratch_kinds = (float, bool)
    INCREASE, DECREASE = 1.2, 0.5
    MIN_STEP, MAX_STEP = 1e-6, 50.0

    def __init__(self, size: int, learning_rate: float, dtype="float64"):
        super().__init__(size, learning_rate, dtype)
        self.state["step"][:] = min(max(learning_rate, self.MIN_STEP), self.MAX_STEP)

    def _update(self, params, grad):
        step, previous, (factor, flags) = self.state["step"], self.state["previous"], self.scratch
        np.multiply(grad, previous, out=previous)  # the agreement of this gradient's sign with the last's
        factor.fill(1.0)
        np.copyto(factor, self.INCREASE, where=np.greater(previous, 0, out=flags))
        np.copyto(factor, self.DECREASE, where=np.less(previous, 0, out=flags))
        np.copyto(grad, 0.0, where=flags)  # a flipped entry holds still and forgets its gradient
        step *= factor  # the steps start inside the bounds and only the changed ones can leave them
        np.clip(step, self.MIN_STEP, self.MAX_STEP, out=step)
        np.sign(grad, out=factor)
        factor *= step
        params -= factor
        previous[:] = grad

    def state_problem(self):
        step = self.state["step"]
        if np.any(step < self.MIN_STEP) or np.any(step > self.MAX_STEP):
            return f"optimizer/step holds steps outside [{self.MIN_STEP:g}, {self.MAX_STEP:g}]"
        return None


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, Adam, Adagrad, Rprop)}


def make_optimizer(name: str, size: int, learning_rate: float, dtype="float64") -> Optimizer:
    """A fresh optimizer for `size` parameters of `dtype`; `name` is a key of OPTIMIZERS."""
    return OPTIMIZERS[name](size, learning_rate, dtype)
