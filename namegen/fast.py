"""The compiled per-name path: forward pass, BPTT, the products' gradients, clipping, decay and the
optimizer step of one name fused into one numba kernel, run over many names per call.

One name per update is sequential by nature, and at hidden 50 the numpy path spends its time
on the ~25 numpy calls each name costs, not on arithmetic. Here a name costs no Python at all.
The kernel is the numpy update (training._Loop.update) written as loops over the same trained
vector, described by the same layout.Layout: it takes the blocks' offsets and the products'
(Wxh = E Wih, B = S Wsh) from it, so it covers every per-name run: styles, factors, dropout,
decay, both clips and every optimizer. What it does not cover is refused in one place, `uncovered`,
and tests/test_fast.py checks that every option of TrainConfig is one or the other.

The compiler may reorder sums (fastmath's "reassoc", which lets it vectorise them; 1.7x here) and
fuse multiply-adds, so the two paths agree to round-off, not bit for bit (tests/test_fast.py: 1e-10
after an epoch), and the numpy code in model.py, layout.py and optim.py stays the reference.

A product's rows are rebuilt from its factors when a name first needs them after a step, not all of
them after every step: a name of 10 letters reads 10 rows of Wxh and one of B, and a vocabulary can
have hundreds (cities.txt: 246). Every row is rebuilt at the end of each call.

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
from .layout import Layout
from .optim import Optimizer, Rprop

# How the kernel runs each option of TrainConfig: passed to it ("kernel"), handled by the Python
# around it the same way for both paths ("loop"), or refused (`uncovered` says why). A test fails
# if an option is added to TrainConfig and not to this table.
OPTIONS = {
    "hidden_size": "kernel", "style_size": "kernel", "embedding_size": "kernel", "optimizer": "kernel",
    "clip": "kernel", "clip_norm": "kernel", "dropout": "kernel", "weight_decay": "kernel",
    "learning_rate": "loop", "lr_schedule": "loop", "warmup": "loop",  # the step size of each name is given
    "epochs": "loop", "patience": "loop", "val_fraction": "loop", "seed": "loop", "case": "loop",
    "eval_train": "loop", "max_steps": "loop", "bucket_by_length": "loop",
    "batch_size": "kernel", "dtype": "refused per name unless float64",
}
OPTIMIZER_KINDS = {"sgd": 0, "adam": 1, "adagrad": 2, "rprop": 3}


def available() -> bool:
    """Whether numba is installed, without importing it (importing takes a tenth of a second)."""
    return importlib.util.find_spec("numba") is not None


def uncovered(batch_size: int, dtype: str = "float64") -> str | None:
    """Why the compiled path cannot run these options, or None if it can: the one place it refuses.
    One name per update runs in the kernel; batches run numpy's matrix products with the compiled
    tanh and optimizer step between them (see USES)."""
    if batch_size == 1 and dtype != "float64":
        return "its per-name kernel computes in float64"
    return None


FASTMATH = {"reassoc", "contract"}  # vectorised sums and fused multiply-adds; no unsafe shortcuts
# error_model "numpy": a division by zero gives inf or NaN rather than raising, so the compiler need not
# test every divisor, which would keep a loop from vectorising (Adam's step: 4x). No divisor here can be 0.
JIT = dict(nogil=True, fastmath=FASTMATH, error_model="numpy")
_kernel = None  # the compiled train_names, once load() has built it
_compiled: set[str] = set()  # the helpers load() has compiled
_problem: str | None = None  # what load() ran into, said once per process

# The one signature compiled: the arguments as train_on passes them.
SIGNATURE = ("int64(int64[::1], float64[::1], int64[::1], int64[:, ::1], int64[:, ::1], int64[::1], int32[::1], "
             "int64[::1], float64[::1], float64[::1], int64, float64[::1], float64[::1], int64, float64[:, ::1], "
             "float64[::1], float64[::1], int64[::1])")

# shape: the sizes and the model's blocks' offsets in the trained vector (from the layout)
H_, V_, WHH, BH, WXH, B_, WHY, BY = range(8)
# hyper: the figures the update uses
CLIP, CLIP_NORM, DECAY, BETA1, BETA2, EPS, INCREASE, DECREASE, MIN_STEP, MAX_STEP = range(10)


def kernel():
    """The compiled train_names, compiled (or loaded from the cache) on first use; see load()."""
    if _kernel is None:
        load()
    if _kernel is None:
        raise RuntimeError("the compiled kernel could not be built: see fast.load()")
    return _kernel


def load(use: str = "kernel") -> str | None:
    """Compile what `use` needs (see USES: "kernel", the per-name train_names and its helpers;
    "batches" or "sampling", the elementwise helpers they call), or load it from numba's cache;
    None if that went as it should, else what went wrong, in words. An unusable cache (no
    writable place for it, a truncated or empty file, a directory where a file goes: numba raises
    on each) costs a compile without the cache, never the run; if even that fails, nothing compiled
    is used and the run trains on numpy."""
    global _kernel, _problem
    wanted, kernel = USES[use], use == "kernel"
    if _problem is not None or (set(wanted) <= _compiled and (_kernel is not None or not kernel)):
        return _problem
    import numba

    def compiled(cache: bool):
        for name in wanted:  # compiled first, so that the kernel's calls find compiled functions
            if name not in _compiled:  # with signatures: now, where a failure can be caught
                signatures = [SIGNATURES[name]] if name in SIGNATURES else []
                options = JIT if name not in EXACT else {key: value for key, value in JIT.items() if key != "fastmath"}
                globals()[name] = numba.njit(*signatures, cache=cache, **options)(PYTHON[name])
                _compiled.add(name)
        return numba.njit(SIGNATURE, cache=cache, **JIT)(train_names) if kernel else None

    try:
        built = compiled(cache=True)
    except Exception as e:  # numba raises RuntimeError, UnpicklingError, EOFError, OSError ... for a bad cache
        cause = f"{type(e).__name__}: {str(e)[:120]}"
        # What compiled before the failure stays; the rest, and the helpers that compile only when the
        # kernel calls them (their cache files may be the bad ones), compile again without the cache.
        _compiled.intersection_update(SIGNATURES)
        try:
            built = compiled(cache=False)
            _problem = f"numba's cache is unusable ({cause}); compiled without it, which every run pays for again"
        except Exception as again:
            globals().update(PYTHON)  # nothing half compiled is called
            _compiled.clear()
            built = None
            _problem = f"numba could not compile the kernel ({type(again).__name__}: {str(again)[:120]}); trained on numpy"
    if kernel:
        _kernel = built
    threads.rescan()  # numba loads SciPy, when it is installed, and with it another BLAS to limit
    return _problem


def usable(use: str = "kernel") -> bool:
    """Whether what `use` needs (see USES) is compiled and there to use, after load(use)."""
    return set(USES[use]) <= _compiled and (_kernel is not None or use != "kernel")


def layout_arrays(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """The layout as the kernel reads it: `shape` (see H_ ... BY; B_ is -1 without styles) and the
    products, one row each: [its start, its left factor's, its right factor's, m, d, n] for an
    (m, n) product of an (m, d) and a (d, n) factor."""
    shape = np.array([layout.hidden_size, layout.vocab_size] + [
        layout[name].start if name in layout else -1 for name in ("Whh", "bh", "Wxh", "B", "Why", "by")], dtype=np.int64)
    products = np.array([[block.start, layout[block.of[0]].start, layout[block.of[1]].start, block.shape[0],
                          layout[block.of[0]].shape[1], block.shape[1]] for block in layout.products],
                        dtype=np.int64).reshape(-1, 6)
    return shape, products


def hyper_of(optimizer: Optimizer, clip: float = 0.0, clip_norm: float = 0.0, weight_decay: float = 0.0) -> np.ndarray:
    """The figures the update uses, as the kernel reads them (see CLIP ... MAX_STEP)."""
    return np.array([clip, clip_norm, weight_decay, getattr(optimizer, "beta1", 0.0), getattr(optimizer, "beta2", 0.0),
                     getattr(optimizer, "eps", 0.0), Rprop.INCREASE, Rprop.DECREASE, Rprop.MIN_STEP, Rprop.MAX_STEP],
                    dtype=np.float64)


def train_on(names: np.ndarray, weights: np.ndarray, layout: Layout, seq: np.ndarray, bounds: np.ndarray,
             learning_rates: np.ndarray, optimizer: Optimizer, *, clip: float = 0.0, clip_norm: float = 0.0,
             weight_decay: float = 0.0, keep: np.ndarray | None = None, style_of: np.ndarray | None = None):
    """Train on `names` (indices into seq/bounds, one update each, in order) in place.

    weights: the trained vector of `layout`. keep: dropout factors (see model.dropout_factors), one
    row per step of the names in order (a name of length L takes L + 1 rows), or None.
    style_of: the style of every name of seq (a model of several lists), or None.
    clip_norm, clip: as optim.clip_ (the norm first, then each entry); weight_decay as optim.decay_.

    Returns (updates, losses, norms, clipped): the updates applied, and for each name given the
    loss (nats, the name's sum), the gradient norm before clipping and the entries clipped. The
    kernel stops at the first name whose loss or gradient is not finite, without applying it:
    that name's figures are at index `updates`.
    """
    n = len(names)
    losses, norms, clipped = np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    state = [optimizer.state[key] for key in optimizer.state_names] + [np.zeros(0)] * 2
    hyper = hyper_of(optimizer, clip, clip_norm, weight_decay)
    shape, products = layout_arrays(layout)
    done = kernel()(np.ascontiguousarray(names, dtype=np.int64), weights, shape, products, layout.decayed,
                    np.zeros(0, dtype=np.int64) if style_of is None else np.ascontiguousarray(style_of, dtype=np.int64),
                    np.ascontiguousarray(seq, dtype=np.int32), np.ascontiguousarray(bounds, dtype=np.int64),
                    np.array(learning_rates, dtype=np.float64), hyper, OPTIMIZER_KINDS[optimizer.name], state[0],
                    state[1], optimizer.steps, np.zeros((0, layout.hidden_size)) if keep is None else keep,
                    losses, norms, clipped)
    optimizer.steps += done
    return done, losses, norms, clipped


def train_names(names, W, shape, products, decayed, style_of, seq, bounds, lrs, hyper, kind, first, second, steps,
                keep, losses, norms, clipped):
    """The kernel (compiled by `kernel()`; plain Python, and very slow, without it): for each name,
    the product rows it reads, forward, backward, the products' gradients to their factors, the
    clips, decay and the optimizer's step, as training._Loop.update does them.

    W: the trained vector; shape, products: its layout (see layout_arrays); decayed: the ranges
    weight decay shrinks. kind: 0 SGD, 1 Adam (first = m, second = v), 2 Adagrad (first = sum of
    squares), 3 Rprop (first = steps, second = the previous gradient). steps: the optimizer's
    updates before this call (Adam's bias correction counts from it). keep: dropout factors, one row
    per step of the names in order; no rows for no dropout.
    """
    H, V = shape[H_], shape[V_]
    grad = np.zeros(W.size)
    longest = 0
    for k in range(names.size):
        longest = max(longest, bounds[names[k] + 1] - bounds[names[k]])
    hs = np.zeros((longest + 1, H))  # hs[t + 1] = h_t; hs[0] = h_{-1} = 0
    dz = np.empty((longest, V))  # p_t - onehot(y_t)
    rows = 1
    for p in range(products.shape[0]):
        rows = max(rows, products[p, 3])
    built = np.zeros((products.shape[0], rows), dtype=np.int64)  # the update count each product row was built at
    used = np.zeros((products.shape[0], rows), dtype=np.bool_)  # the rows a name reads
    version = np.int64(1)  # rows built at another count are stale (int64 typed: one compiled version of each helper)
    row = 0  # the keep row of this name's first step
    done = names.size
    for k in range(names.size):
        start = bounds[names[k]]
        T = bounds[names[k] + 1] - start  # steps: the start token and each character as input
        style = style_of[names[k]] if shape[B_] >= 0 else 0
        _read_rows(W, products, built, used, version, shape, seq[start:start + T], style)
        loss = _forward(W, shape, seq[start:start + T + 1], style, keep[row:row + T], hs, dz)
        _backward(W, grad, shape, seq[start:start + T], style, keep[row:row + T], hs, dz)
        _to_factors(W, grad, products, used)
        row += T
        norm = math.sqrt(_squares(grad))
        losses[k], norms[k] = loss, norm
        if not (np.isfinite(loss) and np.isfinite(norm)):
            done = k
            break
        clipped[k] = _clip(grad, norm, hyper[CLIP], hyper[CLIP_NORM])
        if kind == 1:
            steps += 1
        _step(W, grad, decayed, lrs[k], hyper, kind, first, second, steps)
        version += 1  # the factors moved: every product row is stale
    for p in range(products.shape[0]):  # every row built again: the vector whole for the caller
        for r in range(products[p, 3]):
            _build_row(W, products, built, p, r, version)
    return done


def _build_row(W, products, built, p, r, version):
    """Row r of product p from its factors, unless it was built since they last moved."""
    o_p, o_l, o_r, d, n = products[p, 0], products[p, 1], products[p, 2], products[p, 4], products[p, 5]
    if built[p, r] != version:
        out = W[o_p + r * n:o_p + (r + 1) * n]
        out[:] = 0.0
        for q in range(d):  # row by row of the right factor: contiguous, so it vectorises
            left = W[o_l + r * d + q]
            right = W[o_r + q * n:o_r + (q + 1) * n]
            for j in range(n):
                out[j] += left * right[j]
        built[p, r] = version


def _read_rows(W, products, built, used, version, shape, inputs, style):
    """The product rows a name reads, built from the factors as they are now: its style's row of B,
    its letters' rows of Wxh, every row of any other product. `used` marks them, for the gradient."""
    used[:, :] = False
    for p in range(products.shape[0]):
        if products[p, 0] == shape[B_]:
            used[p, style] = True
            _build_row(W, products, built, p, style, version)
        elif products[p, 0] == shape[WXH]:
            for x in inputs:
                used[p, x] = True
                _build_row(W, products, built, p, np.int64(x), version)
        else:  # a product of any other block: all of it
            for r in range(products[p, 3]):
                used[p, r] = True
                _build_row(W, products, built, p, np.int64(r), version)


def _views(W, shape):
    """The model's blocks of a vector (the weights, or their gradient) as 2-D views: loops over them
    vectorise. B is a row of zeros without styles."""
    H, V = shape[H_], shape[V_]
    o_hh, o_bh, o_xh, o_b, o_hy, o_by = shape[WHH], shape[BH], shape[WXH], shape[B_], shape[WHY], shape[BY]
    K = (o_hy - o_b) // H if o_b >= 0 else 1
    B = W[o_b:o_b + K * H].reshape((K, H)) if o_b >= 0 else np.zeros((1, H))
    return (W[o_hh:o_bh].reshape((H, H)), W[o_bh:o_xh], W[o_xh:o_xh + V * H].reshape((V, H)), B,
            W[o_hy:o_by].reshape((H, V)), W[o_by:o_by + V])


def _forward(W, shape, ids, style, keep, hs, dz):
    """One name's forward pass: h_t = tanh(x_t Wxh + h_{t-1} Whh + B[style] + bh), p_t =
    softmax((h_t * keep_t) Why + by). Leaves h_t in hs[t + 1] and p_t - onehot(y_t) in dz[t];
    returns the name's loss, sum_t -log p_t[y_t]. ids: the name's T inputs and then its last target."""
    Whh, bh, Wxh, B, Why, by = _views(W, shape)
    H, V = shape[H_], shape[V_]
    T = ids.size - 1
    dropout = keep.shape[0] > 0
    a = np.empty(H)
    loss = 0.0
    for t in range(T):
        x = ids[t]
        for j in range(H):
            a[j] = Wxh[x, j] + bh[j] + B[style, j]
        for i in range(0, H - H % 4, 4):  # four rows of Whh at once: a[] makes a quarter of the trips to memory
            h0, h1, h2, h3 = hs[t, i], hs[t, i + 1], hs[t, i + 2], hs[t, i + 3]
            for j in range(H):
                a[j] += h0 * Whh[i, j] + h1 * Whh[i + 1, j] + h2 * Whh[i + 2, j] + h3 * Whh[i + 3, j]
        for i in range(H - H % 4, H):
            for j in range(H):
                a[j] += hs[t, i] * Whh[i, j]
        _tanh(a, hs[t + 1])  # the one compiled tanh: 3 ulp, vectorised
        z = dz[t]
        z[:] = by
        for j in range(0, H - H % 4, 4):  # four rows of Why at once, as for Whh; h * keep: the output's view
            h0, h1, h2, h3 = hs[t + 1, j], hs[t + 1, j + 1], hs[t + 1, j + 2], hs[t + 1, j + 3]
            if dropout:
                h0, h1, h2, h3 = h0 * keep[t, j], h1 * keep[t, j + 1], h2 * keep[t, j + 2], h3 * keep[t, j + 3]
            for v in range(V):
                z[v] += h0 * Why[j, v] + h1 * Why[j + 1, v] + h2 * Why[j + 2, v] + h3 * Why[j + 3, v]
        for j in range(H - H % 4, H):
            h = hs[t + 1, j] * keep[t, j] if dropout else hs[t + 1, j]
            for v in range(V):
                z[v] += h * Why[j, v]
        top = z.max()
        y = ids[t + 1]
        target = z[y] - top
        total = 0.0
        for v in range(V):
            z[v] = np.exp(z[v] - top)
            total += z[v]
        loss += np.log(total) - target  # -log p_t[y_t], with the logits shifted by their largest
        z /= total
        z[y] -= 1.0
    return loss


def _backward(W, grad, shape, inputs, style, keep, hs, dz):
    """Backpropagation through time for one name, from the last step to the first, into grad
    (zeroed first). dWhh pairs each da_t with the *previous* hidden state."""
    Whh, bh, Wxh, B, Why, by = _views(W, shape)
    gWhh, gbh, gWxh, gB, gWhy, gby = _views(grad, shape)
    H, V = shape[H_], shape[V_]
    dropout = keep.shape[0] > 0
    da = np.empty(H)
    dnext = np.zeros(H)  # dL/dh_{t-1} through Whh, sent back from step t
    grad[:] = 0.0
    for t in range(inputs.size - 1, -1, -1):
        for j in range(H):
            h = hs[t + 1, j]
            factor = keep[t, j] if dropout else 1.0
            hk = h * factor
            s = 0.0
            for v in range(V):
                gWhy[j, v] += hk * dz[t, v]
                s += Why[j, v] * dz[t, v]
            da[j] = (s * factor + dnext[j]) * (1.0 - h * h)
        gby += dz[t]
        x = inputs[t]
        for j in range(H):
            gbh[j] += da[j]
            gWxh[x, j] += da[j]
            gB[style, j] += da[j]  # no styles: a row of zeros nobody reads
        for i in range(H):
            h = hs[t, i]
            s = 0.0
            for j in range(H):
                gWhh[i, j] += h * da[j]
                s += Whh[i, j] * da[j]
            dnext[i] = s


def _to_factors(W, grad, products, used):
    """Each product's gradient to its factors, row by row where the name reached it (d left = d
    product rightᵀ, d right += leftᵀ d product); the product's own gradient then zeroed."""
    for p in range(products.shape[0]):
        o_p, o_l, o_r, m, d, n = products[p, 0], products[p, 1], products[p, 2], products[p, 3], products[p, 4], products[p, 5]
        for r in range(m):
            if not used[p, r]:
                continue
            g = grad[o_p + r * n:o_p + (r + 1) * n]
            for q in range(d):
                left = W[o_l + r * d + q]
                right = W[o_r + q * n:o_r + (q + 1) * n]
                d_right = grad[o_r + q * n:o_r + (q + 1) * n]
                s = 0.0
                for j in range(n):
                    s += g[j] * right[j]
                    d_right[j] += left * g[j]
                grad[o_l + r * d + q] += s
            g[:] = 0.0


def _squares(x):
    """The sum of x's squares, as a loop: numba's np.dot calls SciPy's BLAS, and without SciPy
    installed the kernel would not compile (every run would fall back to numpy)."""
    total = 0.0
    for i in range(x.size):
        total += x[i] * x[i]
    return total


def _clip(grad, norm, clip, clip_norm):
    """As optim.clip_: the whole gradient scaled down to clip_norm when longer, then each entry to
    [-clip, clip]. Returns the entries clipped."""
    longest = norm
    if clip_norm > 0.0 and norm > clip_norm:  # the whole gradient scaled down: its direction kept
        grad *= clip_norm / norm
        longest = clip_norm
    count = 0
    if clip > 0.0 and longest > clip:
        for p in range(grad.size):
            if grad[p] > clip:
                grad[p] = clip
                count += 1
            elif grad[p] < -clip:
                grad[p] = -clip
                count += 1
    return count


def _step(W, grad, decayed, lr, hyper, kind, first, second, steps):
    """Decoupled weight decay over `decayed`, then the optimizer's step (optim.SGD, Adam, Adagrad,
    Rprop; steps: Adam's count, this step included)."""
    if hyper[DECAY] > 0.0:
        shrink = 1.0 - lr * hyper[DECAY]
        for r in range(decayed.shape[0]):
            W[decayed[r, 0]:decayed[r, 1]] *= shrink
    if kind == 0:
        for p in range(W.size):
            W[p] -= grad[p] * lr
    elif kind == 1:
        beta1, beta2, eps = hyper[BETA1], hyper[BETA2], hyper[EPS]
        step_size = lr * np.sqrt(1.0 - beta2 ** float(steps)) / (1.0 - beta1 ** float(steps))
        for p in range(W.size):
            g = grad[p]
            first[p] = first[p] * beta1 + (1.0 - beta1) * g
            second[p] = second[p] * beta2 + (1.0 - beta2) * g * g
            W[p] -= step_size * first[p] / (np.sqrt(second[p]) + eps)
    elif kind == 2:
        for p in range(W.size):
            g = grad[p]
            first[p] += g * g
            W[p] -= lr * g / (np.sqrt(first[p]) + hyper[EPS])
    else:  # Rprop: each entry moves by its own step, by the sign of its gradient only
        for p in range(W.size):
            g = grad[p]
            agreement = g * second[p]
            if agreement > 0.0:
                first[p] = min(first[p] * hyper[INCREASE], hyper[MAX_STEP])
            elif agreement < 0.0:
                first[p] = max(first[p] * hyper[DECREASE], hyper[MIN_STEP])
                g = 0.0
            if g > 0.0:
                W[p] -= first[p]
            elif g < 0.0:
                W[p] += first[p]
            second[p] = g


# ------------------------------------------------------------------ elementwise: batches and sampling
#
# Between BLAS's matrix products, a batch update of the numpy path makes elementwise passes: tanh at
# every step, the optimizer's step over the whole trained vector. numpy computes a float64 tanh with the
# C library's scalar function where the machine has no AVX-512 (20 ns an entry here: as long as the step's
# matrix product at hidden 256), and Adam in twelve passes over the vector. The loops below do each in
# one vectorised pass; with numba, the batch path and large samplings use them (training._Loop,
# sampling.ended_rows), and the per-name kernel uses _tanh too. float32 keeps numpy's tanh, which is vectorised already.

LN2_HI, LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 in two parts: k ln 2 is exact
INV_LN2 = 1.44269504088896338700e+00


def _tanh(x, out):
    """out = tanh(x), entry by entry (contiguous, not overlapping), within 3 ulp of the C library's: the
    one compiled tanh, of the kernel's forward pass, the batches' and sampling's
    (tests/test_fast.py): -e / (e + 2) with e = expm1(-2|x|) and x's sign; expm1 by its
    Taylor series to r^14 after taking out k ln 2 (|r| <= ln 2 / 2), 2^k made from its bits, so
    that the loop has no call and vectorises. |x| beyond 20 counts as 20 (tanh is 1 to the last bit
    from 19.1 on); NaN stays NaN."""
    bits = out.view(np.int64)
    for i in range(x.size):
        v = x[i]
        y = -2.0 * abs(v)
        if y < -40.0:
            y = -40.0
        k = math.floor(y * INV_LN2 + 0.5)
        r = (y - k * LN2_HI) - k * LN2_LO
        p = 1.0 / 87178291200.0
        p = p * r + 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        expm1_r = r + r * r * p
        bits[i] = (np.int64(k) + 1023) << 52  # 2^k, k in [-58, 0]
        two_k = out[i]
        e = two_k * expm1_r + (two_k - 1.0)  # expm1(y) = 2^k expm1(r) + (2^k - 1)
        out[i] = math.copysign(-e / (e + 2.0), v)


def _input_tanh(product, kept, table, ids, bias, out):
    """out[r] = tanh(product[kept[r], :H] + table[ids[r]] + bias[r]) (bias of one row: that row for
    all): a sampling step's hidden state from the rows of h Whh that go on, each name's letter's row
    of Wxh and bh (plus its style's term)."""
    H = out.shape[1]
    total = np.empty(H)
    shared = bias.shape[0] == 1
    for r in range(out.shape[0]):
        a, row, b = product[kept[r]], table[ids[r]], bias[0] if shared else bias[r]
        for j in range(H):
            total[j] = (a[j] + row[j]) + b[j]
        _tanh(total, out[r])


def _draw(product, H, by, u, no_end, ids):
    """sampling.draw at temperature 1 over every letter, row by row, reading the logits from the
    columns H: of product plus by: the same sums in the same order (compiled without fastmath), so
    the same ids as numpy's."""
    V = by.shape[0]
    z = np.empty(V)
    for r in range(product.shape[0]):
        largest = -np.inf
        for j in range(V):
            z[j] = product[r, H + j] + by[j]
            if no_end and j == 0:
                z[j] = -np.inf
            if z[j] > largest:
                largest = z[j]
        total = 0.0
        for j in range(V):
            z[j] = math.exp(z[j] - largest)
            total += z[j]
        target = u[r] * total
        cdf, count = 0.0, 0
        for j in range(V):
            cdf += z[j]
            if cdf <= target:
                count += 1
        ids[r] = count


def tanh(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = tanh(x), compiled for float64 (see _tanh; load("batches") or load("sampling") first); out may be any view
    of x's shape, a strided one included."""
    if x.dtype != np.float64:
        return np.tanh(x, out=out)
    x = np.ascontiguousarray(x)
    if out.flags.c_contiguous and not np.may_share_memory(x, out):
        _tanh(x.reshape(-1), out.reshape(-1))
    else:
        result = np.empty_like(x)
        _tanh(x.reshape(-1), result.reshape(-1))
        np.copyto(out, result)
    return out


def input_tanh(product: np.ndarray, kept: np.ndarray, table: np.ndarray, ids: np.ndarray,
                bias: np.ndarray) -> np.ndarray:
    """tanh(product[kept, :H] + table[ids] + bias) in one pass (see _input_tanh); bias (H,) or (len(ids), H)."""
    out = np.empty((len(ids), table.shape[1]))
    _input_tanh(product, np.ascontiguousarray(kept, dtype=np.int64), table, np.ascontiguousarray(ids, dtype=np.int64),
                np.atleast_2d(bias), out)
    return out


def draw(product: np.ndarray, H: int, by: np.ndarray, u: np.ndarray, no_end: bool) -> np.ndarray:
    """sampling.draw(product[:, H:] + by, u, no_end) compiled, for temperature 1 and every letter (see _draw)."""
    ids = np.empty(product.shape[0], dtype=np.int64)
    _draw(product, H, by, u, no_end, ids)
    return ids


def optimizer_step(weights: np.ndarray, grad: np.ndarray, optimizer: Optimizer, decayed: np.ndarray,
                   weight_decay: float) -> None:
    """optim.decay_ and then optimizer.step in one compiled pass over the vector (see _step): the
    numpy update's last two calls. grad is left as it was."""
    optimizer.steps += 1
    state = [optimizer.state[key] for key in optimizer.state_names] + [np.zeros(0, dtype=weights.dtype)] * 2
    _step(weights, grad, decayed, float(optimizer.learning_rate), hyper_of(optimizer, weight_decay=weight_decay),
          OPTIMIZER_KINDS[optimizer.name], state[0], state[1], optimizer.steps)


USES = {  # what each use compiles (or loads from the cache: about 0.15 s a signature), callees first
    "kernel": ("_tanh", "_step", "_build_row", "_read_rows", "_views", "_forward", "_backward", "_to_factors", "_squares",
               "_clip"),
    "batches": ("_tanh", "_step"),  # between numpy's matrix products: training._Loop
    "sampling": ("_tanh", "_input_tanh", "_draw"),  # sampling.ended_rows
}
HELPERS = tuple(dict.fromkeys(name for names in USES.values() for name in names))
PYTHON = {name: globals()[name] for name in HELPERS}
EXACT = {"_draw"}  # compiled without fastmath: its sums are numpy's, in numpy's order  # the helpers as written, before load() compiles them
_STEP = "void({0}[::1], {0}[::1], int64[:, ::1], float64, float64[::1], int64, {0}[::1], {0}[::1], int64)"
SIGNATURES = {  # compiled when loaded (the rest when the kernel first calls them)
    "_tanh": ["void(float64[::1], float64[::1])"],
    "_input_tanh": ["void(float64[:, ::1], int64[::1], float64[:, ::1], int64[::1], float64[:, ::1], float64[:, ::1])"],
    "_draw": ["void(float64[:, ::1], int64, float64[::1], float64[::1], boolean, int64[::1])"],
    "_step": [_STEP.format("float64"), _STEP.format("float32")],
}
