"""Training curves and gradient flow as a PNG, with matplotlib (the optional extra namegen[plot]).

matplotlib is imported only here and only when a PNG is asked for; without it, PlotError says
how to install it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .diagnostics import Flow, Surface
from .errors import NamegenError
from .state import EpochRecord


class PlotError(NamegenError):
    """matplotlib is missing, or the picture could not be written."""


def write_png(path: str | Path, history: list[EpochRecord], flow: Flow, title: str) -> None:
    """Loss curves, clipping and gradient norms per epoch, and the gradient-flow curve, in one picture."""
    plt = _pyplot()
    epochs = [r.epoch for r in history]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    (loss_ax, clip_ax), (norm_ax, flow_ax) = axes
    loss_ax.plot(epochs, [r.running_loss for r in history], "o-", label="train (mean over the epoch's updates)")
    if any(r.train_loss is not None for r in history):
        loss_ax.plot(epochs, [math.nan if r.train_loss is None else r.train_loss for r in history], "^-", label="train (at the epoch's end)")
    if any(r.val_loss is not None for r in history):
        loss_ax.plot(epochs, [r.val_loss for r in history], "s-", label="validation")
    loss_ax.set(title="loss", xlabel="epoch", ylabel="nats / character")
    loss_ax.legend()
    clip_ax.plot(epochs, [100 * r.clip_fraction for r in history], "o-", color="tab:red")
    clip_ax.set(title="gradient entries clipped", xlabel="epoch", ylabel="% of entries")
    norm_ax.semilogy(epochs, [r.grad_norm_mean for r in history], "o-", label="mean")
    norm_ax.semilogy(epochs, [r.grad_norm_max for r in history], "^-", label="max")
    norm_ax.set(title="gradient norm before clipping", xlabel="epoch", ylabel="L2 norm")
    norm_ax.legend()
    flow_ax.semilogy(flow.distance, flow.grad_norm, "o-", label="mean ‖dL_t/dh_{t-m}‖")
    flow_ax.semilogy(flow.distance, flow.jacobian_norm, "^-", label="mean ‖J_t…J_{t-m+1}‖₂")
    flow_ax.set(title="gradient flow back through time", xlabel="distance m = t - k (steps)")
    flow_ax.legend()
    _save(fig, plt, path, title)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("writing a PNG needs matplotlib: pip install 'namegen[plot]' "
                        "(the curves can also be drawn in the terminal, without it)") from None
    return plt


def _save(fig, plt, path: str | Path, title: str) -> None:
    fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as e:
        raise PlotError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)


def write_surface_png(path: str | Path, surface: Surface, title: str) -> None:
    """The loss over (a, r) with the trained point marked, and the gradient norm along r."""
    plt = _pyplot()
    fig, (map_ax, cliff_ax) = plt.subplots(1, 2, figsize=(12, 5))
    image = map_ax.imshow(np.log10(surface.loss), origin="lower", aspect="auto", cmap="viridis",
                          extent=(surface.a[0], surface.a[-1], surface.r[0], surface.r[-1]))
    map_ax.contour(surface.a, surface.r, surface.loss, levels=12, colors="white", linewidths=0.5)
    map_ax.plot([1], [1], "r*", markersize=14, label="trained model (a = r = 1)")
    map_ax.set(title=f"loss on {surface.names} {surface.which} names", xlabel="a (Wxh → a·Wxh)",
               ylabel="r (Whh → r·Whh)")
    map_ax.legend(loc="upper right")
    fig.colorbar(image, ax=map_ax, label="log10 nats / character")
    j = int(np.argmin(np.abs(surface.a - 1)))
    cliff_ax.semilogy(surface.r, surface.grad_norm, "o-", color="tab:red", label="‖gradient‖ at a = 1")
    cliff_ax.set(title="along r at a = 1", xlabel="r (Whh → r·Whh)", ylabel="gradient norm (log)")
    loss_ax = cliff_ax.twinx()
    loss_ax.plot(surface.r, surface.loss[:, j], "s-", color="tab:blue", label="loss at a = 1")
    loss_ax.set_ylabel("nats / character")
    cliff_ax.axvline(1.0, color="gray", linestyle=":")
    lines = cliff_ax.get_legend_handles_labels(), loss_ax.get_legend_handles_labels()
    cliff_ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="upper left")
    _save(fig, plt, path, title)
