"""The compiled per-name path: forward pass, BPTT, clipping and the optimizer step of one name fused
into one numba kernel, run over many names per call.

One name per update is sequential by nature, and at hidden 50 the numpy path spends its time
on the ~25 numpy calls each name costs, not on arithmetic. Here a name costs no Python at all.
The kernel is the numpy path written as loops. The compiler may reorder sums (fastmath's
"reassoc", which lets it vectorise them; 1.7x here) and fuse multiply-adds, so the two paths
agree to round-off, not bit for bit (tests/test_fast.py: 1e-10 after an epoch), and the numpy
code in model.py and optim.py stays the reference.

numba is an optional extra (`pip install 'namegen[fast]'`); `available()` says whether it is
installed. Compiled code is cached on disk (numba's cache=True, beside this file or in the user's
cache directory), so only the first run after an install or upgrade pays for compiling; a cache
that cannot be used costs a compile per run, never the run (see load).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

from . import threads
from .optim import Optimizer

OPTIMIZER_KINDS = {"sgd": 0, "adam": 1, "adagrad": 2}


def available() -> bool:
    """Whether numba is installed, without importing it (importing takes a tenth of a second)."""
    return importlib.util.find_spec("numba") is not None


def uncovered(batch_size: int, optimizer: str, embedding_size: int = 0, styles: int = 0) -> str | None:
    """Why the kernel cannot run these options, or None if it can."""
    if batch_size != 1:
        return "it trains one name per update"
    if embedding_size:
        return "it trains Wxh itself, not as a product (--embedding-size)"
    if styles:
        return "it learns one name list, not styles"
    if optimizer not in OPTIMIZER_KINDS:
        return f"it has no {optimizer} optimizer"
    return None


FASTMATH = {"reassoc", "contract"}  # vectorised sums and fused multiply-adds; no unsafe shortcuts
_kernel = None  # the compiled train_names, once load() has built it
_problem: str | None = None  # what load() ran into, said once per process


# The one signature compiled: the arguments as train_on passes them.
SIGNATURE = ("int64(int64[::1], float64[::1], int64, int64, int32[::1], int64[::1], float64[::1], float64, float64, int64, "
             "float64[::1], float64[::1], int64, float64, float64, float64, float64[:, ::1], float64, int64[:, ::1], "
             "float64[::1], float64[::1], int64[::1])")


def kernel():
    """The compiled train_names, compiled (or loaded from the cache) on first use; see load()."""
    if _kernel is None:
        load()
    if _kernel is None:
        raise RuntimeError("the compiled kernel could not be built: see fast.load()")
    return _kernel


def load() -> str | None:
    """Compile train_names (or load it from numba's cache); None if that went as it should, else
    what went wrong, in words. An unusable cache (no writable place for it, a truncated or empty
    file, a directory where a file goes: numba raises on each) costs a compile without the cache,
    never the run; if even that fails, kernel() is unavailable and the run trains on numpy."""
    global _kernel, _problem
    if _kernel is not None or _problem is not None:
        return _problem
    import numba

    def compiled(cache: bool):
        return numba.njit(SIGNATURE, cache=cache, nogil=True, fastmath=FASTMATH)(train_names)

    try:
        _kernel = compiled(cache=True)
    except Exception as e:  # numba raises RuntimeError, UnpicklingError, EOFError, OSError ... for a bad cache
        cause = f"{type(e).__name__}: {str(e)[:120]}"
        try:
            _kernel = compiled(cache=False)
            _problem = f"numba's cache is unusable ({cause}); compiled without it, which every run pays for again"
        except Exception as again:
            _problem = f"numba could not compile the kernel ({type(again).__name__}: {str(again)[:120]}); trained on numpy"
    threads.rescan()  # numba loads SciPy, when it is installed, and with it another BLAS to limit
    return _problem


def usable() -> bool:
    """Whether the compiled kernel is there to train with (after load())."""
    return _kernel is not None


def train_on(names: np.ndarray, params: np.ndarray, hidden_size: int, vocab_size: int, seq: np.ndarray,
             bounds: np.ndarray, learning_rates: np.ndarray, clip: float, optimizer: Optimizer,
             keep: np.ndarray | None = None, weight_decay: float = 0.0, clip_norm: float = 0.0,
             decayed: np.ndarray | None = None):
    """Train on `names` (indices into seq/bounds, one update each, in order) in place.

    keep: dropout factors (see model.dropout_factors), one row per step of the names in order
    (a name of length L takes L + 1 rows), or None. weight_decay, decayed: as optim.decay_ (the
    ranges of layout.Layout.decayed; none given, none decay).
    clip_norm, clip: as optim.clip_ (the norm first, then each entry).

    Returns (updates, losses, norms, clipped): the updates applied, and for each name given the
    loss (nats, the name's sum), the gradient norm before clipping and the entries clipped. The
    kernel stops at the first name whose loss or gradient is not finite, without applying it:
    that name's figures are at index `updates`.
    """
    n = len(names)
    losses, norms, clipped = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    state = optimizer.state
    first = state.get("m", state.get("sum_sq", np.zeros(0)))
    second = state.get("v", np.zeros(0))
    beta1, beta2, eps = (getattr(optimizer, key, 0.0) for key in ("beta1", "beta2", "eps"))
    done = kernel()(np.ascontiguousarray(names, dtype=np.int64), params, hidden_size, vocab_size,
                    np.ascontiguousarray(seq, dtype=np.int32), np.ascontiguousarray(bounds, dtype=np.int64),
                    np.array(learning_rates, dtype=np.float64), float(clip), float(clip_norm),
                    OPTIMIZER_KINDS[optimizer.name], first, second, optimizer.steps, float(beta1),
                    float(beta2), float(eps), np.zeros((0, hidden_size)) if keep is None else keep,
                    float(weight_decay), np.zeros((0, 2), dtype=np.int64) if decayed is None else decayed,
                    losses, norms, clipped)
    optimizer.steps += done
    return done, losses, norms, clipped


def train_names(names, params, H, V, seq, bounds, lrs, clip, clip_norm, kind, first, second, steps, beta1, beta2, eps,
                keep, weight_decay, decayed, losses, norms, clipped):
    """The kernel (compiled by `kernel()`; plain Python, and very slow, without it).

    params: the flat vector of model.unflatten: Whh (H, H), bh (H,), Wxh (V, H), Why (H, V), by (V,).
    kind: 0 SGD, 1 Adam (first = m, second = v), 2 Adagrad (first = sum of squares).
    steps: the optimizer's updates before this call (Adam's bias correction counts from it).
    keep: dropout factors, one row per step of the names in order; no rows for no dropout.
    """
    P = params.size
    o_bh, o_xh = H * H, H * H + H
    o_hy = o_xh + V * H
    o_by = o_hy + H * V
    Whh = params[:o_bh].reshape((H, H))
    bh = params[o_bh:o_xh]
    Wxh = params[o_xh:o_hy].reshape((V, H))
    Why = params[o_hy:o_by].reshape((H, V))
    by = params[o_by:]
    grad = np.zeros(P)
    gWhh = grad[:o_bh].reshape((H, H))
    gbh = grad[o_bh:o_xh]
    gWxh = grad[o_xh:o_hy].reshape((V, H))
    gWhy = grad[o_hy:o_by].reshape((H, V))
    gby = grad[o_by:]

    longest = 0
    for k in range(names.size):
        longest = max(longest, bounds[names[k] + 1] - bounds[names[k]])
    hs = np.zeros((longest + 1, H))  # hs[t + 1] = h_t; hs[0] = h_{-1} = 0
    dz = np.empty((longest, V))  # p_t - onehot(y_t)
    a = np.empty(H)
    da = np.empty(H)
    dnext = np.empty(H)  # dL/dh_{t-1} through Whh, sent back from step t

    dropout = keep.shape[0] > 0
    row = 0  # the keep row of this name's first step
    for k in range(names.size):
        start = bounds[names[k]]
        T = bounds[names[k] + 1] - start  # steps: the start token and each character as input
        loss = 0.0
        # Forward: h_t = tanh(x_t Wxh + h_{t-1} Whh + bh), p_t = softmax(h_t Why + by).
        for t in range(T):
            x = seq[start + t]
            for j in range(H):
                a[j] = Wxh[x, j] + bh[j]
            for i in range(0, H - H % 4, 4):  # four rows of Whh at once: a[] makes a quarter of the trips to memory
                h0, h1, h2, h3 = hs[t, i], hs[t, i + 1], hs[t, i + 2], hs[t, i + 3]
                for j in range(H):
                    a[j] += h0 * Whh[i, j] + h1 * Whh[i + 1, j] + h2 * Whh[i + 2, j] + h3 * Whh[i + 3, j]
            for i in range(H - H % 4, H):
                h = hs[t, i]
                for j in range(H):
                    a[j] += h * Whh[i, j]
            for j in range(H):  # tanh(a) as -e / (e + 2), e = expm1(-2|a|), signed: 3 ulp, twice libm tanh's speed
                e = math.expm1(-2.0 * abs(a[j]))
                hs[t + 1, j] = math.copysign(-e / (e + 2.0), a[j])
            z = dz[t]
            for v in range(V):
                z[v] = by[v]
            for j in range(0, H - H % 4, 4):  # four rows of Why at once, as for Whh; h * keep: the output's view
                if dropout:
                    h0, h1 = hs[t + 1, j] * keep[row + t, j], hs[t + 1, j + 1] * keep[row + t, j + 1]
                    h2, h3 = hs[t + 1, j + 2] * keep[row + t, j + 2], hs[t + 1, j + 3] * keep[row + t, j + 3]
                else:
                    h0, h1, h2, h3 = hs[t + 1, j], hs[t + 1, j + 1], hs[t + 1, j + 2], hs[t + 1, j + 3]
                for v in range(V):
                    z[v] += h0 * Why[j, v] + h1 * Why[j + 1, v] + h2 * Why[j + 2, v] + h3 * Why[j + 3, v]
            for j in range(H - H % 4, H):
                h = hs[t + 1, j] * keep[row + t, j] if dropout else hs[t + 1, j]
                for v in range(V):
                    z[v] += h * Why[j, v]
            top = z[0]
            for v in range(1, V):
                top = max(top, z[v])
            y = seq[start + t + 1]
            target = z[y] - top
            total = 0.0
            for v in range(V):
                z[v] = np.exp(z[v] - top)
                total += z[v]
            loss += np.log(total) - target  # -log p_t[y_t], with the logits shifted by their largest
            for v in range(V):
                z[v] /= total
            z[y] -= 1.0

        # Backward through time, from the last step to the first.
        grad[:] = 0.0
        dnext[:] = 0.0
        for t in range(T - 1, -1, -1):
            for j in range(H):
                h = hs[t + 1, j]
                factor = keep[row + t, j] if dropout else 1.0
                hk = h * factor
                s = 0.0
                for v in range(V):
                    gWhy[j, v] += hk * dz[t, v]
                    s += Why[j, v] * dz[t, v]
                da[j] = (s * factor + dnext[j]) * (1.0 - h * h)
            for v in range(V):
                gby[v] += dz[t, v]
            x = seq[start + t]
            for j in range(H):
                gbh[j] += da[j]
                gWxh[x, j] += da[j]
            for i in range(H):
                h = hs[t, i]  # the *previous* hidden state pairs with da_t in dWhh
                s = 0.0
                for j in range(H):
                    gWhh[i, j] += h * da[j]
                    s += Whh[i, j] * da[j]
                dnext[i] = s

        row += T
        square = 0.0
        for p in range(P):
            square += grad[p] * grad[p]
        norm = np.sqrt(square)
        losses[k], norms[k] = loss, norm
        if not (np.isfinite(loss) and np.isfinite(norm)):
            return k
        longest = norm
        if clip_norm > 0.0 and norm > clip_norm:  # the whole gradient scaled down: its direction kept
            scale = clip_norm / norm
            for p in range(P):
                grad[p] *= scale
            longest = clip_norm
        if clip > 0.0 and longest > clip:
            count = 0
            for p in range(P):
                if grad[p] > clip:
                    grad[p] = clip
                    count += 1
                elif grad[p] < -clip:
                    grad[p] = -clip
                    count += 1
            clipped[k] = count

        lr = lrs[k]
        if weight_decay > 0.0:  # decoupled: the weights shrink, then the optimizer steps (optim.decay_)
            shrink = 1.0 - lr * weight_decay
            for r in range(decayed.shape[0]):
                for p in range(decayed[r, 0], decayed[r, 1]):
                    params[p] *= shrink
        if kind == 0:
            for p in range(P):
                params[p] -= grad[p] * lr
        elif kind == 1:
            steps += 1
            step_size = lr * np.sqrt(1.0 - beta2 ** float(steps)) / (1.0 - beta1 ** float(steps))
            for p in range(P):
                g = grad[p]
                first[p] = first[p] * beta1 + (1.0 - beta1) * g
                second[p] = second[p] * beta2 + (1.0 - beta2) * g * g
                params[p] -= step_size * first[p] / (np.sqrt(second[p]) + eps)
        else:
            for p in range(P):
                g = grad[p]
                first[p] += g * g
                params[p] -= lr * g / (np.sqrt(first[p]) + eps)
    return names.size
