"""Look inside a trained RNN: how the gradient flows back through time, and why it vanishes or explodes.

In the row-vector convention h_i = tanh(h_{i-1} Whh + ...), the Jacobian of one step is
J_i = dh_i/dh_{i-1} = diag(1 - h_i^2) Whh^T, and the gradient reaching step k from the loss at
step t is dL_t/dh_k = dL_t/dh_t J_t J_{t-1} ... J_{k+1}. Each factor has norm at most
max|tanh'| * sigma_max(Whh) <= sigma_max(Whh), so the product shrinks or grows geometrically
with the distance t - k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import pad_batch
from .errors import OptionError, OptionName, fixed
from .model import PARAM_NAMES, Model, Params, forward, init_params, loss_and_grads, name_losses, unflatten
from .optim import clip_
from .options import check, option
from .threads import limited

TANH_DERIVATIVE_BOUND = 1.0  # max of tanh'(x) = 1 - tanh(x)^2, at x = 0
SIGMOID_DERIVATIVE_BOUND = 0.25  # max of s'(x) = s(x)(1 - s(x)), at x = 0
ACTIVATIONS = ("tanh", "sigmoid")


TRACE_STEPS = 1000  # a name is traced over its first 1000 steps: exact for every step traced, bounded work
PRODUCT_FLOATS = 2**24  # Jacobian products held at once (128 MB): starting steps are taken in chunks of this


def flow_from_states(upstream: np.ndarray, dtanh: np.ndarray, Whh: np.ndarray, max_distance: int,
                     with_products: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Norms of the gradient flowing back in time through one name, up to max_distance steps.

    upstream: (T, H), row t = dL_t/dh_t, the gradient of step t's loss at its own hidden state.
    dtanh: (T, H), row i = 1 - h_i^2, the tanh derivative at step i.
    Returns grad (T, M) with grad[t, m] = ||dL_t/dh_{t-m}||, M = min(T, max_distance + 1), and, if
    with_products, jac (T, M) with jac[t, m] = ||J_t ... J_{t-m+1}||_2 (the identity's 1 at m = 0);
    NaN where m > t. All starting steps t move back together: one matrix product per distance.
    """
    T, H = upstream.shape
    M = min(T, max_distance + 1)
    WhhT = Whh.T
    grad = np.full((T, M), np.nan)
    v = upstream.copy()  # row t: dL_t/dh_{t-m} for the current distance m
    grad[:, 0] = np.linalg.norm(v, axis=1)
    for m in range(1, M):
        # starting steps t = m..T-1 move from h_{t-m+1} to h_{t-m} through J_{t-m+1}
        v = (v[1:] * dtanh[1 : T - m + 1]) @ WhhT
        grad[m:, m] = np.linalg.norm(v, axis=1)
    if not with_products:
        return grad, None
    jac = np.full((T, M), np.nan)
    jac[:, 0] = 1.0
    chunk = max(1, PRODUCT_FLOATS // (H * H))
    for start in range(0, T, chunk):  # bounded memory: (chunk, H, H) products at a time
        steps = np.arange(start, min(T, start + chunk))
        prod = np.broadcast_to(np.eye(H), (len(steps), H, H)).copy()
        for m in range(1, M):
            steps, prod = steps[steps >= m], prod[steps >= m]  # only t >= m reach back m steps
            if not len(steps):
                break
            prod = prod @ (dtanh[steps - m + 1, :, None] * WhhT)  # P_t <- P_t J_{t-m+1}, J = diag(d) Whh^T
            jac[steps, m] = np.linalg.svd(prod, compute_uv=False)[:, 0]
    return grad, jac


def name_flow(params: Params, inputs, targets, max_distance: int, with_products: bool = True):
    """flow_from_states for one name under the model, over its first TRACE_STEPS steps (the
    gradient at a step depends on no later step, so each traced figure is exact): (grad, jac)."""
    _, cache = forward(params, inputs[:TRACE_STEPS], targets[:TRACE_STEPS])
    upstream = cache.logit_grads() @ params["Why"].T  # (T, H): dL_t/dh_t
    hs = cache.hidden[1:, 0]  # (T, H)
    return flow_from_states(upstream, 1.0 - hs * hs, params["Whh"], max_distance, with_products)


@dataclass(frozen=True)
class FlowConfig:
    """Which names to trace through time, and how far back."""

    count: int = option(64, "Names drawn from the data when none are given", at_least=1)
    max_distance: int = option(20, "Longest distance t - k to report", at_least=1)
    seed: int = option(0, "Seed for the names drawn", at_least=0)

    def __post_init__(self):
        check(self)


@dataclass
class Flow:
    distance: np.ndarray  # (M,) 0..M-1
    grad_norm: np.ndarray  # (M,) mean ||dL_t/dh_{t-m}|| over every name and step t >= m
    jacobian_norm: np.ndarray  # (M,) mean ||J_t ... J_{t-m+1}||_2 over the same pairs
    pairs: np.ndarray  # (M,) how many (name, t) pairs each mean is over

    @property
    def per_step_factor(self) -> float:
        """Geometric-mean change of the gradient norm per step of distance (from a log-linear fit)."""
        ok = (self.pairs >= 5) & (self.grad_norm > 0)
        if ok.sum() < 2:
            return float("nan")
        slope = np.polyfit(self.distance[ok], np.log(self.grad_norm[ok]), 1)[0]
        return float(np.exp(slope))

    @property
    def relative(self) -> np.ndarray:
        """(M,) grad_norm relative to distance 0 (NaN if no gradient reaches the last step at all)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.grad_norm / self.grad_norm[0]


def gradient_flow(model: Model, names: list[str], max_distance: int) -> Flow:
    """The flow through `model` over `names` (cleaned), averaged by distance up to max_distance."""
    encoded = model.vocab.encode_names(names)
    return mean_flow(model.param_views, (encoded.pair(i) for i in range(len(encoded))), max_distance)


def mean_flow(params: Params, pairs_of_ids, max_distance: int = 30, with_products: bool = True) -> Flow:
    """Average the flow of every name (inputs, targets pairs) by distance t - m."""
    M = max_distance + 1
    grad_sum, jac_sum, count = np.zeros(M), np.zeros(M), np.zeros(M, dtype=int)
    for inputs, targets in pairs_of_ids:
        grad, jac = name_flow(params, inputs, targets, max_distance, with_products)
        k = min(M, grad.shape[1])
        grad_sum[:k] += np.nansum(grad[:, :k], axis=0)
        if with_products:
            jac_sum[:k] += np.nansum(jac[:, :k], axis=0)
        count[:k] += np.sum(~np.isnan(grad[:, :k]), axis=0)
    seen = count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        grad_mean = np.where(seen, grad_sum / np.maximum(count, 1), np.nan)
        jac_mean = np.where(seen, jac_sum / np.maximum(count, 1), np.nan) if with_products else np.full(M, np.nan)
    return Flow(np.arange(M)[seen], grad_mean[seen], jac_mean[seen], count[seen])


@dataclass
class Spectrum:
    singular_values: np.ndarray  # of Whh, largest first
    spectral_radius: float  # max |eigenvalue| of Whh

    @property
    def sigma_max(self) -> float:
        return float(self.singular_values[0])


def whh_spectrum(Whh: np.ndarray) -> Spectrum:
    return Spectrum(np.linalg.svd(Whh, compute_uv=False), float(np.max(np.abs(np.linalg.eigvals(Whh)))))


def verdict(flow: Flow, spectrum: Spectrum) -> str:
    """A plain-language reading of the numbers."""
    factor = flow.per_step_factor
    bound = TANH_DERIVATIVE_BOUND * spectrum.sigma_max
    lines = []
    if spectrum.sigma_max < 1 / TANH_DERIVATIVE_BOUND:
        lines.append(f"σmax(Whh) = {fixed(spectrum.sigma_max, 2)} < 1: every step's Jacobian shrinks the gradient "
                     f"by at least that factor, so gradients must vanish geometrically with distance.")
    else:
        lines.append(f"σmax(Whh) = {fixed(spectrum.sigma_max, 2)} > 1 (spectral radius {fixed(spectrum.spectral_radius, 2)}): "
                     f"a step may amplify the gradient by up to {fixed(bound, 2)}x, so explosion is possible; "
                     f"whether it happens depends on tanh' = 1 - h² along the way.")
    if np.isfinite(factor):
        if factor < 1:
            at10 = factor ** 10
            lines.append(f"Measured: the gradient norm shrinks by {fixed(factor, 3)}x per step of distance "
                         f"(after 10 steps {100 * at10:.2g}% remains): vanishing. Letters far back "
                         f"barely influence learning, which is why long-range structure is hard for this model.")
        else:
            lines.append(f"Measured: the gradient norm grows by {fixed(factor, 3)}x per step of distance: exploding. "
                         f"Clipping keeps updates bounded.")
        one_step = flow.jacobian_norm[1] if len(flow.jacobian_norm) > 1 else float("nan")
        if np.isfinite(one_step) and one_step > 1 > factor:
            below = flow.distance[(flow.jacobian_norm < 1) & (flow.distance > 0)]
            where = f"; the product of Jacobians itself falls below 1 from distance {below[0]}" if len(below) else ""
            lines.append(f"A single step's Jacobian has mean norm {fixed(one_step, 2)} (under the bound {fixed(bound, 2)}, "
                         f"since tanh' < 1 wherever h is not 0), yet the gradient shrinks: it does not line up "
                         f"with the few directions that Whh stretches{where}.")
    return " ".join(lines)


@dataclass
class Diagnosis:
    names: list[str]  # the names traced, each over its first TRACE_STEPS steps at most
    flow: Flow
    spectrum: Spectrum
    verdict: str  # the numbers read in plain language


@limited
def diagnose(model: Model, config: FlowConfig, names: list[str] | None = None) -> Diagnosis:
    """How the gradient flows back through time in `model`, and whether it vanishes or explodes."""
    picked = model.chosen_names(names, config.count, config.seed)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged model's norms are infinite: so be it
        flow = gradient_flow(model, picked, config.max_distance)
        spectrum = whh_spectrum(model.param_views["Whh"])
        return Diagnosis(picked, flow, spectrum, verdict(flow, spectrum))


@dataclass
class DemoCase:
    sigma: float  # every singular value of Whh
    grad_norm: np.ndarray  # ||dL_T/dh_{T-m}|| for m = 0..T-1, from the last step's loss


def demo_params(sigma: float, hidden: int, rng: np.random.Generator) -> Params:
    """A model over the vocabulary {boundary, 'a'} whose Whh = sigma * Q, Q orthogonal.

    The input weights and biases are zero, so h stays at 0 where tanh' = 1 (its bound): every
    step's Jacobian is exactly sigma * Q^T and the gradient norm after m steps is sigma^m times
    the norm it started with.
    """
    flat = init_params(2, hidden, rng)
    params = unflatten(flat, 2, hidden)
    q, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    params["Whh"][:] = sigma * q
    params["Wxh"][:] = 0.0
    params["Why"][:] = rng.standard_normal((hidden, 2))
    return params


@dataclass
class ClippingDemo:
    """The full parameter gradient of the most exploding model, before and after element-wise
    clipping, and after norm clipping to the same threshold instead."""

    sigma: float
    norm_before: float
    norm_after: float
    max_before: float  # the largest entry
    max_after: float
    clipped_fraction: float  # share of entries clipped
    cosine: float  # between the clipped and the unclipped gradient
    clip: float  # every entry was clipped to [-clip, clip]
    norm_clipped_max: float  # the largest entry once the whole gradient is scaled to norm `clip`
    norm_clipped_cosine: float  # between that and the unclipped gradient: 1, the direction kept


@dataclass
class Demo:
    cases: list[DemoCase]  # one per sigma, in the order given
    clipping: ClippingDemo | None  # for tanh
    activation: str = "tanh"

    @property
    def derivative_bound(self) -> float:
        return SIGMOID_DERIVATIVE_BOUND if self.activation == "sigmoid" else TANH_DERIVATIVE_BOUND


DEMO_SIGMAS = {"tanh": (0.5, 0.9, 1.0, 1.1, 1.5), "sigmoid": (1.0, 2.0, 4.0, 4.4, 6.0)}


def sigmoid_demo(sigmas=DEMO_SIGMAS["sigmoid"], hidden: int = 32, length: int = 30, seed: int = 0) -> Demo:
    """The same models with a sigmoid hidden unit, held at its steepest point (pre-activation 0,
    so s = 0.5 and s' = 0.25, its bound): every step's Jacobian is exactly 0.25 Whh^T, and the
    gradient shrinks or grows as (0.25 sigma)^m, vanishing unless sigma > 4."""
    rng = np.random.default_rng(seed)
    cases = []
    for sigma in sigmas:
        Whh = demo_params(sigma, hidden, rng)["Whh"]
        upstream = np.zeros((length, hidden))
        upstream[-1] = rng.standard_normal(hidden)  # the last step's loss, at its own hidden state
        steepest = np.full((length, hidden), SIGMOID_DERIVATIVE_BOUND)
        grad, _ = flow_from_states(upstream, steepest, Whh, length, with_products=False)
        cases.append(DemoCase(sigma, grad[length - 1, :]))
    return Demo(cases, None, "sigmoid")


def demo(sigmas=DEMO_SIGMAS["tanh"], hidden: int = 32, length: int = 30, clip: float = 5.0, seed: int = 0) -> Demo:
    """Gradient norm against distance for Whh with chosen singular values, and what clipping does
    to the full gradient of the last (most exploding) model on the same sequence."""
    rng = np.random.default_rng(seed)
    inputs, targets = np.array([0] + [1] * (length - 1)), np.array([1] * (length - 1) + [0])
    cases = []
    for sigma in sigmas:
        params = demo_params(sigma, hidden, rng)
        grad, _ = name_flow(params, inputs, targets, max_distance=length, with_products=False)
        cases.append(DemoCase(sigma, grad[length - 1, :]))
    _, grads = loss_and_grads(params, inputs, targets)  # the real backward pass, as training uses it
    flat = np.concatenate([grads[name].ravel() for name in PARAM_NAMES])
    raw = flat.copy()
    stats = clip_(flat, clip)
    scaled = raw.copy()
    clip_(scaled, None, max_norm=clip)
    return Demo(cases, ClippingDemo(sigma=sigmas[-1], clip=clip, norm_before=stats.norm,
                                    norm_after=float(np.linalg.norm(flat)), max_before=float(np.abs(raw).max()),
                                    max_after=float(np.abs(flat).max()), clipped_fraction=stats.clipped / flat.size,
                                    cosine=cosine_of(raw, flat), norm_clipped_max=float(np.abs(scaled).max()),
                                    norm_clipped_cosine=cosine_of(raw, scaled)))


def cosine_of(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ------------------------------------------------------------------------- the loss surface

SURFACE_A = np.round(np.linspace(0.0, 2.0, 21), 10)  # scale of Wxh: columns
SURFACE_R = np.round(np.linspace(0.0, 3.0, 31), 10)  # scale of Whh: rows


@dataclass
class Surface:
    """The loss of a model on some names with its weights scaled: Wxh -> a Wxh, Whh -> r Whh."""

    a: np.ndarray  # Wxh scales, the columns
    r: np.ndarray  # Whh scales, the rows
    loss: np.ndarray  # (len(r), len(a)) nats per character; the trained model is a = r = 1
    grad_norm: np.ndarray  # (len(r),) norm of the whole gradient of the mean per-name loss, at a = 1
    names: int  # names the loss is measured on
    which: str  # which names: "validation" or "all"


def run_surface(state) -> Surface:
    """The loss surface of a run's model on its validation names, or on all its names if it has none."""
    if len(state.val_idx):
        return loss_surface(state.model, state.val_idx, "validation")
    return loss_surface(state.model, np.arange(len(state.model.names)), "training")


@limited
def loss_surface(model: Model, indices: np.ndarray, which: str, a=SURFACE_A, r=SURFACE_R) -> Surface:
    """The loss over the (a, r) grid and the gradient norm along r, on the names at `indices`
    (in one padded batch: a model's validation names, a few hundred, take well under a second a point)."""
    encoded = model.encoded
    inputs, targets, mask = pad_batch([encoded.ids(i) for i in indices])
    styles = model.style_of[indices] if model.styles else None  # each name in its own list's style
    chars = int(mask.sum())
    base = model.param_views
    flat = model.params.copy()
    params = unflatten(flat, model.vocab.size, model.hidden_size, len(model.styles), model.style_size)
    loss = np.empty((len(r), len(a)))
    grad_norm = np.empty(len(r))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for i, rs in enumerate(r):
            params["Whh"][:] = rs * base["Whh"]
            for j, scale in enumerate(a):
                params["Wxh"][:] = scale * base["Wxh"]
                loss[i, j] = float(name_losses(params, inputs, targets, mask, styles).sum()) / chars
            params["Wxh"][:] = base["Wxh"]
            _, grads = loss_and_grads(params, inputs, targets, mask, styles=styles)
            grad_norm[i] = float(np.sqrt(sum(np.sum(grads[name] ** 2) for name in grads)))
    return Surface(np.asarray(a), np.asarray(r), loss, grad_norm, len(indices), which)


# ---------------------------------------------------------------------------------- the demos

DEMOS = ("gradients", "counting")


@dataclass(frozen=True)
class DemoConfig:
    """Which demo `diagnose --demo` shows, and with which hidden unit."""

    name: str = option("gradients", "The demo: 'gradients', models with chosen singular values of Whh; 'counting', "
                                    "the linear counting RNN, its cost cliff and Rprop", choices=DEMOS)
    activation: str = option("tanh", "With --demo: the hidden unit, tanh or sigmoid (derivative at most 0.25)",
                             choices=ACTIVATIONS)

    def __post_init__(self):
        check(self)
        if self.name == "counting" and self.activation != "tanh":
            raise OptionError(OptionName("activation"), " does not apply to `diagnose --demo counting`: the counting RNN "
                              "is linear, with no hidden unit to choose")


def run_demo(config: DemoConfig):
    """The demo asked for: a Demo (gradients, tanh or sigmoid) or a counting.CountingDemo."""
    from .counting import counting_demo

    if config.name == "counting":
        return counting_demo()
    return sigmoid_demo() if config.activation == "sigmoid" else demo()
