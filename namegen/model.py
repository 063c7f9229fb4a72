"""The vanilla RNN: a Model (vocabulary, parameters, how names look), and its forward pass and
backpropagation through time as pure functions.

Row-vector convention, letters fixed throughout: N names, T time steps, V vocabulary, H hidden.
    a_t = x_t Wxh + h_{t-1} Whh + bh,   h_t = tanh(a_t),   h_{-1} = 0 for every name
    z_t = h_t Why + by,   p_t = softmax(z_t),   loss = (1/N) sum_n sum_t mask_nt * -log p_nt[y_nt]
With dropout (training only) the output sees (h_t * keep_t) instead of h_t, keep_t being 0 for a
dropped unit and 1/(1 - p) for a kept one; the recurrence always sees h_t itself.
Each step's input row u_t = [h_{t-1}, 1, onehot(x_t)] is multiplied by W_in = [Whh; bh; Wxh],
so a step is two numpy calls forward and three backward (see stacked_weights for why).

Read benchmarks/baseline.py first: the same algorithm written step by step, the way the classic
course code is. It is the reference these functions are tested against (tests/test_speed_paths.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np

from .data import capitalised, clean_name, clean_prefix, fingerprint, parse_names
from .layout import Layout
from .rules import Rejection, Rules
from .vocab import Encoded, Vocab

PARAM_NAMES = ("Wxh", "Whh", "bh", "Why", "by")

Params = dict[str, np.ndarray]


def unflatten(flat: np.ndarray, vocab_size: int, hidden_size: int, styles: int = 0, style_size: int = 0,
              embedding_size: int = 0) -> Params:
    """Named views into one flat vector (a model's parameters, or a run's whole trained vector; see
    layout.Layout), plus the stacked views W_in and W_out.

    Training keeps parameters and gradients each in one contiguous vector, so that clipping and an
    optimizer update are a single numpy call, and so that W_in = [Whh; bh; Wxh] and
    W_out = [Why; by] (see stacked_weights) are views rather than copies made for every name.
    """
    layout = Layout(vocab_size, hidden_size, styles, style_size, embedding_size)
    assert flat.size in (layout.size, layout.model_size), "flat vector does not match the parameter shapes"
    return layout.views(flat)


@dataclass
class Model:
    """A network and what it needs to read and write names: the vocabulary, the parameters, case
    handling, and the names it knows.

    Sampling, scoring, evaluation and diagnostics take a Model; the run that trains one (optimizer,
    random generator, position, history) is a TrainState holding it.
    """

    vocab: Vocab
    params: np.ndarray  # flat float64 parameter vector, trained in place; see unflatten
    hidden_size: int  # H
    keep_case: bool  # names are cleaned without lower-casing (data.parse_names decided so)
    capitals: tuple[str, ...]  # where names are shown with capitals, as the data had them (see data.capital_contexts)
    names: list[str]  # the cleaned names it was trained on (train and validation), in file order
    styles: tuple[str, ...] = ()  # one per name list it learned (see the styles section); () for one list
    style_of: np.ndarray | None = None  # (len(names),) the style of each name, with styles
    style_size: int = 0  # D, the size of a style vector
    saved_rules: Rules | None = None  # the rules its checkpoint holds (None: learned from names, see rules)

    @property
    def param_views(self) -> Params:
        return unflatten(self.params, self.vocab.size, self.hidden_size, len(self.styles), self.style_size)

    def float64(self) -> Model:
        """This model with float64 parameters (itself if they are): what gradient checks compute in."""
        if self.params.dtype == np.float64:
            return self
        return replace(self, params=self.params.astype(np.float64))

    @cached_property
    def fingerprint(self) -> str:
        """A short hash of its names (see data.fingerprint), computed once: the names never change."""
        return fingerprint(self.names)

    @property
    def style_shares(self) -> np.ndarray:
        """Each style's share of the names (K,), for a model of several lists."""
        return np.bincount(self.style_of, minlength=len(self.styles)) / len(self.style_of)

    def in_style(self, weights=None) -> Model:
        """This model with a style's term folded into bh: a model of one list that reads and writes
        names in that style (weights over the styles; by default style_shares). The tools made for
        one list's gradient flow (diagnose, plot) look at a model of several this way."""
        if not self.styles:
            return self
        p = self.param_views
        weights = self.style_shares if weights is None else weights
        flat = np.concatenate([p["Whh"].ravel(), p["bh"] + blend_term(p, weights), p["Wxh"].ravel(), p["Why"].ravel(),
                               p["by"]])
        return Model(self.vocab, flat, self.hidden_size, self.keep_case, self.capitals, self.names,
                     saved_rules=self.saved_rules)

    @cached_property
    def longest_name(self) -> int:
        """Characters in its longest name, counted once (every epoch's preview asks)."""
        return max(len(name) for name in self.names)

    @cached_property
    def encoded(self) -> Encoded:
        """Its names as ids, encoded once: training, evaluation and diagnostics index into this."""
        return self.vocab.encode_names(self.names)

    def clean(self, name: str) -> str:
        """A name as typed or displayed, cleaned the way the data was (see data.clean_name)."""
        return clean_name(name, self.keep_case)

    def clean_prefix(self, prefix: str) -> str:
        """The beginning of a name, cleaned the way the data was (see data.clean_prefix). A model that
        keeps case takes a first letter typed in lower case as a capital where its names begin with
        that letter only as one ("gal" asks for "Gal..." of a list with Galadriel and no "gal...")."""
        cleaned = clean_prefix(prefix, self.keep_case)
        first = cleaned[:1]
        if self.keep_case and first.islower() and first not in self._first_letters and len(first.upper()) == 1 \
                and first.upper() in self._first_letters:
            return first.upper() + cleaned[1:]
        return cleaned

    @cached_property
    def _first_letters(self) -> frozenset[str]:
        return frozenset(name[0] for name in self.names)

    @property
    def case(self) -> str:
        """How names are cleaned for this model: "keep" or "lower" (see data.parse_names)."""
        return "keep" if self.keep_case else "lower"

    def display(self, name: str) -> str:
        """A cleaned name as it should be shown: with capitals where the data had them (see data.capitalised)."""
        return capitalised(name, self.capitals) if self.capitals else name

    @property
    def capitalize(self) -> bool:
        """Whether names are shown with capitals the model does not write."""
        return bool(self.capitals)

    def knows(self, name: str) -> bool:
        """Whether a name (as typed or as displayed) is one of its names, after cleaning."""
        return self.clean(name) in self._known

    @cached_property
    def _known(self) -> set[str]:
        return set(self.names)

    def unlike_data(self, name: str) -> Rejection | None:
        """Why a drawn name could never be a line of the model's data, or None: NOT_CLEAN if
        cleaning would change it (white space at an end or doubled), else the first of its rules it
        breaks (see rules.Rules)."""
        if self.clean(name) != name:
            return Rejection.NOT_CLEAN
        return self.rules.broken_by(name)

    @cached_property
    def rules(self) -> Rules:
        """What every line of its data keeps: as saved, or learned from its names."""
        return self.saved_rules or Rules.of(self.names)

    def chosen_names(self, given: list[str] | None, count: int, seed: int) -> list[str]:
        """The given names cleaned like the data, or else `count` distinct names of its own drawn
        with `seed`: the names that gradient checks and diagnostics trace."""
        if given:
            return parse_names("\n".join(given), "the names given", self.case).names
        known = sorted(self._known)
        picks = np.random.default_rng(seed).choice(len(known), size=min(count, len(known)), replace=False)
        return [known[i] for i in sorted(picks)]


def init_params(vocab_size: int, hidden_size: int, rng: np.random.Generator, styles: int = 0,
                style_size: int = 0) -> np.ndarray:
    """A fresh model's trained vector (see layout.Layout.initial: small random weights, zero biases)."""
    return Layout(vocab_size, hidden_size, styles, style_size).initial(rng)


def random_params(vocab_size: int, hidden_size: int, rng: np.random.Generator, scale: float = 0.5) -> np.ndarray:
    """Initial weights plus N(0, scale^2) noise on every entry, biases included: an untrained
    model in which every gradient path matters, for gradient checks."""
    flat = init_params(vocab_size, hidden_size, rng)
    flat += rng.standard_normal(flat.size) * scale
    return flat


# Two weights may be trained as products (see layout.Layout): with an embedding size E, Wxh = E Wih,
# a vector per character times an input layer, which is what PyTorch's nn.Embedding followed by
# nn.RNN computes; with several name lists, B = S Wsh. Either way the network is the same vanilla
# RNN, and sampling, evaluation and the model's parameters use the product itself.
#
# A model of several name lists learns one style vector s_k (size D) per list, and the hidden
# update of every step of a name of style k gains s_k Wsh:
#     h_t = tanh(x_t Wxh + h_{t-1} Whh + s_k Wsh + bh)
# It is still a vanilla RNN: s_k Wsh is a per-name constant, B[k] of B = S Wsh, held with the other
# input weights in W_in and fed by a one-hot of the style (see forward). A blend of styles with
# weights w is the vector w S, whose term is w B.

def blend_term(params: Params, weights: np.ndarray) -> np.ndarray:
    """The hidden update's style term for style weights w (K,): (w S) Wsh = w B, (H,)."""
    return np.asarray(weights, dtype=params["B"].dtype) @ params["B"]


COMPUTABLE = 1e300  # bounds below this leave room for the rounding of the sums they bound


def computable(params: Params) -> bool:
    """Whether every hidden pre-activation and every logit the model can produce is a finite
    number, so that its probabilities can be computed for any name: since |h| <= 1,
    |a_j| <= max_x |Wxh[x, j]| + sum_i |Whh[i, j]| + |bh_j| (+ max_k |B[k, j]|) and
    |z_v| <= sum_j |Why[j, v]| + |by_v|. A diverged model can have finite weights (1e308) whose
    sums are not: its softmax would be NaN. Bounds, not a forward pass: a few microseconds."""
    with np.errstate(over="ignore", invalid="ignore"):
        a = np.abs(params["Wxh"]).max(axis=0) + np.abs(params["Whh"]).sum(axis=0) + np.abs(params["bh"])
        if "B" in params:
            a = a + np.abs(params["B"]).max(axis=0)
        z = np.abs(params["Why"]).sum(axis=0) + np.abs(params["by"])
        return bool(np.all(a < COMPUTABLE) and np.all(z < COMPUTABLE))


def exp_shifted(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one stable softmax: shift z in place so each row's largest entry is 0, then return
    exp(z) and its row sums. softmax = exp / sums and log softmax = z - log(sums), over the last
    axis (the vocabulary), never the batch or time axis; finite for any finite logits.

    Calls the ufunc reductions directly: np.max/np.sum add microseconds of Python per call,
    which is most of the cost at this size.
    """
    z -= np.maximum.reduce(z, axis=-1, keepdims=True)
    exp_z = np.exp(z)
    return exp_z, np.add.reduce(exp_z, axis=-1, keepdims=True)


def softmax(z: np.ndarray) -> np.ndarray:
    """softmax over the last axis (the vocabulary); z itself is left as it was."""
    exp_z, total = exp_shifted(np.array(z, dtype=float))
    return exp_z / total


def step(params: Params, h: np.ndarray, ids: np.ndarray, bias=None) -> tuple[np.ndarray, np.ndarray]:
    """One time step for a batch: h (N, H), ids (N,) -> next h (N, H), logits (N, V).
    bias: the style term s Wsh (H,), added to bh, for a model with styles."""
    h = np.tanh(params["Wxh"][ids] + h @ params["Whh"] + (params["bh"] if bias is None else params["bh"] + bias))
    return h, h @ params["Why"] + params["by"]


def _as_batch(a) -> np.ndarray:
    a = np.asarray(a)
    return a[None, :] if a.ndim == 1 else a


class Cache(NamedTuple):
    """What backward needs from forward."""

    mask: np.ndarray | None  # (N, T)
    keep: np.ndarray | None  # (T, N, H) dropout factors on the way to the output, or None
    out_rows: np.ndarray  # (T*N, H+1) rows [h_t * keep_t, 1] that fed the output
    u: np.ndarray  # (T+1, N, H+1+V+K): step inputs [h_{t-1}, 1, onehot(x_t), onehot(style)]
    exp_z: np.ndarray  # (T*N, V) exp of each step's shifted logits, rows in (t, n) order
    total: np.ndarray  # (T*N, 1) their sums: softmax = exp_z / total
    picked: np.ndarray  # (T*N,) flat indices of the target entries in probs

    @property
    def hidden(self) -> np.ndarray:
        """(T+1, N, H): h_{-1} = 0, then the hidden state after each step."""
        return self.u[:, :, : self.out_rows.shape[1] - 1]

    @property
    def probs(self) -> np.ndarray:
        """(T*N, V) softmax of each step's logits."""
        return self.exp_z / self.total

    def logit_grads(self) -> np.ndarray:
        """(T*N, V) d(-log p_t[y_t])/dz_t = p_t - onehot(y_t) for every step, unmasked: a new array."""
        dz = self.probs
        dz.reshape(-1)[self.picked] -= 1.0
        return dz


def stacked_weights(params: Params) -> tuple[np.ndarray, np.ndarray]:
    """W_in = [Whh; bh; Wxh] (H+1+V, H) and W_out = [Why; by] (H+1, V).

    With the input row u_t = [h_{t-1}, 1, onehot(x_t)], one step is h_t = tanh(u_t W_in) and the
    output is z_t = [h_t, 1] W_out: one matrix product each, and after the loop one product
    gives dWhh, dbh and dWxh together. This is the whole speed trick: at H = 50 the cost is
    Python overhead per numpy call, not arithmetic. Views from `unflatten` are used as they are.
    """
    if "W_in" in params:
        return params["W_in"], params["W_out"]
    W_in = np.concatenate((params["Whh"], params["bh"][None, :], params["Wxh"]) + ((params["B"],) if "B" in params else ()))
    W_out = np.concatenate((params["Why"], params["by"][None, :]))
    return W_in, W_out


def forward(params: Params, inputs, targets, mask=None, keep=None, styles=None, tanh=np.tanh) -> tuple[np.ndarray, Cache]:
    """Loss of each name and a cache for `backward`.

    inputs, targets: (N, T) ids, or (T,) for one name; mask: (N, T) bool or None (all real steps).
    keep: dropout factors (T, N, H), or (T, H) for one name, on the hidden-to-output path; None
    for none (evaluation and sampling never drop).
    styles: (N,) the style of each name, or an int for one name, for a model with styles (its
    params hold B); None for one without.
    tanh(x, out): np.tanh, or fast.tanh (the same to 3 ulp, vectorised for float64) on the compiled path.
    Returns nll (N,), the summed negative log-likelihood of each name in nats, and the cache.
    """
    inputs, targets = _as_batch(inputs), _as_batch(targets)
    N, T = inputs.shape
    H, V = params["Whh"].shape[0], params["Why"].shape[1]
    W_in, W_out = stacked_weights(params)
    K = W_in.shape[0]
    rows = np.arange(T * N)  # one row per (t, n), time-major
    # u[t] = [h_{t-1}, 1, onehot(x_t), onehot(style)] (T+1, N, K); the loop fills in h, row T holds h_{T-1}.
    u = np.zeros((T + 1, N, K), dtype=W_in.dtype)
    u[:, :, H] = 1.0
    u.reshape((T + 1) * N, K)[rows, H + 1 + inputs.T.ravel()] = 1.0
    if K > H + 1 + V:  # the style's row of W_in, B[style] = s Wsh, joins every step of the name
        u[:, np.arange(N), H + 1 + V + np.broadcast_to(np.asarray(styles), (N,))] = 1.0
    # h_{-1} = u[0, :, :H] = 0: every name starts from a zero state, nothing carries over.
    dot = np.dot
    steps = u[:, 0] if N == 1 else u  # one name: 1-D rows make each call a little cheaper
    for u_t, h_t in zip(steps[:-1], steps[1:, ..., :H]):  # the recurrence is the only loop
        tanh(dot(u_t, W_in), h_t)
    # Every step's output at once, a stable softmax over the vocabulary axis.
    out_rows = u[1:, :, : H + 1].reshape(T * N, H + 1)  # rows [h_t, 1]
    if keep is not None:
        out_rows = out_rows.copy()
        out_rows[:, :H] *= np.asarray(keep).reshape(T * N, H)
    z = dot(out_rows, W_out)  # (T*N, V)
    exp_z, total = exp_shifted(z)  # z is now shifted: log p = z - log(total)
    picked = rows * exp_z.shape[1] + targets.T.ravel()  # flat index of each step's target
    nll = (np.log(total[:, 0]) - z.take(picked)).reshape(T, N)  # -log p_t[y_t], (T, N)
    if mask is not None:
        mask = _as_batch(mask)
        nll *= mask.T
    keep = None if keep is None else np.asarray(keep).reshape(T, N, H)
    return np.add.reduce(nll, axis=0), Cache(mask, keep, out_rows, u, exp_z, total, picked)


def dropout_factors(rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype="float64") -> np.ndarray:
    """Inverted dropout: 0 with probability p, else 1/(1 - p), so the expected output is unchanged
    and evaluation needs no rescaling. One uniform draw per unit and step, in order, so a chunk
    of names drawn at once gets the numbers the names would get one by one; in the weights' dtype."""
    return ((rng.random(shape) >= p) / (1.0 - p)).astype(dtype, copy=False)


def name_losses(params: Params, inputs, targets, mask=None, styles=None) -> np.ndarray:
    """forward's nll (N,) without what backward needs, for evaluation: each step's input rows are
    gathered from Wxh instead of multiplied in as one-hot rows, which costs the vocabulary size
    (hundreds for a list of city names) in every product."""
    inputs, targets = _as_batch(inputs), _as_batch(targets)
    N, T = inputs.shape
    Whh, Why = params["Whh"], params["Why"]
    V = Why.shape[1]
    hs = params["Wxh"][inputs.T]  # (T, N, H): x_t Wxh for every step, then overwritten by h_t
    hs += params["bh"]
    if "B" in params:  # each name's style term, s Wsh, at every step
        hs += params["B"][np.broadcast_to(np.asarray(styles), (N,))]
    dot, tanh = np.dot, np.tanh
    tanh(hs[0], out=hs[0])  # h_{-1} = 0: every name starts from a zero state
    for t in range(1, T):
        hs[t] += dot(hs[t - 1], Whh)
        tanh(hs[t], out=hs[t])
    z = dot(hs.reshape(T * N, -1), Why)
    z += params["by"]
    exp_z, total = exp_shifted(z)
    nll = (np.log(total[:, 0]) - z.take(np.arange(T * N) * V + targets.T.ravel())).reshape(T, N)
    if mask is not None:
        nll *= _as_batch(mask).T
    return np.add.reduce(nll, axis=0)


def backward(params: Params, cache: Cache, truncate: int | None = None, grads: Params | None = None) -> Params:
    """Gradients of the mean per-name loss, (1/N) sum_n nll_n, for every parameter.

    truncate: None for full backpropagation through time. An integer k cuts the gradient between
    h_{t-1} and h_t whenever t is a multiple of k (truncated BPTT in chunks of k); it exists to
    show why a truncated backward pass disagrees with finite differences, not for training.
    grads: optional arrays to write into (e.g. views of one flat vector); new ones otherwise.
    """
    u, mask = cache.u, cache.mask
    T = u.shape[0] - 1
    N = u.shape[1]
    H = params["Whh"].shape[0]
    if grads is None:
        grads = {name: np.empty_like(params[name]) for name in PARAM_NAMES + (("B",) if "B" in params else ())}

    dz = cache.logit_grads()  # (T*N, V)
    if mask is not None:
        dz *= mask.T.reshape(T * N, 1)
    if N > 1:
        dz *= 1.0 / N
    h1 = cache.out_rows  # rows [h_t * keep_t, 1]
    if "W_out" in grads:
        np.matmul(h1.T, dz, out=grads["W_out"])
    else:
        dW_out = h1.T @ dz  # (H+1, V): dWhy and dby
        grads["Why"][...], grads["by"][...] = dW_out[:H], dW_out[H]

    hs = u[1:, :, :H]  # (T, N, H)
    dtanh = 1.0 - hs * hs  # (T, N, H)
    da = np.dot(dz, params["Why"].T).reshape(T, N, H)  # dL/dh_t from the output at step t ...
    if cache.keep is not None:
        da *= cache.keep  # (through the units dropout kept) ...
    da *= dtanh  # ... times tanh' is that step's share of dL/da_t; the loop adds the rest
    WhhT, dot = params["Whh"].T, np.dot
    # Walking back from t = T-1 to 1: da_t is complete, so send it to step t-1 through Whh.
    steps, dtanh_steps = (da[:, 0], dtanh[:, 0]) if N == 1 else (da, dtanh)
    for t, da_t, da_prev, dtanh_prev in zip(range(T - 1, 0, -1), steps[:0:-1], steps[-2::-1], dtanh_steps[-2::-1]):
        if truncate is None or t % truncate:
            da_prev += dot(da_t, WhhT) * dtanh_prev

    # dWhh, dbh and dWxh (and dB) in one product: u_t = [h_{t-1}, 1, onehot(x_t), onehot(style)]
    # pairs each da_t with the *previous* hidden state, the constant 1, the input that fed step t
    # (and the name's style).
    u_in, da = u[:-1].reshape(T * N, -1).T, da.reshape(T * N, H)
    if "W_in" in grads:
        np.matmul(u_in, da, out=grads["W_in"])
    else:
        dW_in = u_in @ da  # (H+1+V+K, H)
        V = params["Wxh"].shape[0]
        grads["Whh"][...], grads["bh"][...], grads["Wxh"][...] = dW_in[:H], dW_in[H], dW_in[H + 1 : H + 1 + V]
        if "B" in grads:
            grads["B"][...] = dW_in[H + 1 + V :]
    return grads


def loss_and_grads(params: Params, inputs, targets, mask=None, truncate: int | None = None,
                   grads: Params | None = None, keep=None, styles=None, tanh=np.tanh) -> tuple[float, Params]:
    """Mean per-name loss (nats, summed over each name's steps) and its gradients.

    For one name (inputs and targets of shape (T,)) this is the name's total cross-entropy.
    keep, styles, tanh: as for forward. With styles, the gradient of B is what the style vectors and
    Wsh get through B = S Wsh (see factor_grads_); S and Wsh themselves are not written.
    """
    nll, cache = forward(params, inputs, targets, mask, keep, styles, tanh)
    return float(np.add.reduce(nll)) / len(nll), backward(params, cache, truncate, grads)
