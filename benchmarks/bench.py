"""Training and sampling throughput of namegen against a straightforward per-step numpy RNN.

Run from the repository root:  python benchmarks/bench.py
Every training figure is characters (time steps, end-of-name included) per second over one epoch
of the dinosaur training names, the best of --repeats runs interleaved, all in this process.
PyTorch is measured only if it happens to be installed; it is not a dependency.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline  # noqa: E402

from namegen.checkpoint import load_model  # noqa: E402
from namegen.data import bundled_path, default_data_path, read_names  # noqa: E402
from namegen.model import PARAM_NAMES  # noqa: E402
from namegen.sampling import SampleConfig, sample  # noqa: E402
from namegen.state import TrainConfig, new_state  # noqa: E402
from namegen.training import Callbacks, train  # noqa: E402

HIDDEN = 50


def fresh_state(batch_size: int = 1, bucket: bool = True, epochs: int = 1):
    config = TrainConfig(hidden_size=HIDDEN, batch_size=batch_size, bucket_by_length=bucket, epochs=epochs)
    return new_state(config, read_names(default_data_path()))


def train_chars(state) -> int:
    return sum(len(state.model.names[i]) + 1 for i in state.train_idx)


def bench_baseline(state) -> float:
    """chars/s of the per-step implementation: one name per update, clip 5, SGD 0.01."""
    params = {name: state.model.param_views[name].copy() for name in PARAM_NAMES}
    pairs = [state.model.vocab.inputs_and_targets(state.model.names[i]) for i in state.rng.permutation(state.train_idx)]
    start = time.perf_counter()
    for inputs, targets in pairs:
        _, grads = baseline.loss_and_grads(params, inputs, targets)
        baseline.sgd_update(params, grads, 0.01, 5.0)
    return train_chars(state) / (time.perf_counter() - start)


def bench_namegen(batch_size: int, bucket: bool = True) -> float:
    """chars/s of namegen's training loop over one epoch (updates only, not the epoch-end evaluation)."""
    state = fresh_state(batch_size, bucket)
    marks = {}
    callbacks = Callbacks(on_epoch_start=lambda s, n: marks.setdefault("start", time.perf_counter()),
                          on_step=lambda done, loss: marks.__setitem__("end", time.perf_counter()))
    train(state, None, callbacks)
    return train_chars(state) / (marks["end"] - marks["start"])


def bench_torch(state, batch_size: int) -> float | None:
    """chars/s of a single-threaded PyTorch nn.RNN + Linear trained the same way on padded batches."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    torch.manual_seed(0)
    V = state.model.vocab.size
    rnn = torch.nn.RNN(V, HIDDEN, nonlinearity="tanh", batch_first=True).double()
    out = torch.nn.Linear(HIDDEN, V).double()
    params = list(rnn.parameters()) + list(out.parameters())
    opt = torch.optim.SGD(params, lr=0.01)
    eye = torch.eye(V, dtype=torch.float64)
    order = state.rng.permutation(state.train_idx)
    batches = []
    for i in range(0, len(order), batch_size):
        pairs = [state.model.vocab.inputs_and_targets(state.model.names[j]) for j in order[i : i + batch_size]]
        T = max(len(x) for x, _ in pairs)
        x = torch.zeros(len(pairs), T, dtype=torch.long)
        y = torch.zeros(len(pairs), T, dtype=torch.long)
        m = torch.zeros(len(pairs), T, dtype=torch.float64)
        for r, (xi, yi) in enumerate(pairs):
            x[r, : len(xi)], y[r, : len(yi)], m[r, : len(xi)] = torch.from_numpy(xi), torch.from_numpy(yi), 1
        batches.append((eye[x], y, m))
    start = time.perf_counter()
    for x, y, m in batches:
        h, _ = rnn(x)
        logits = out(h)
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1), reduction="none")
        loss = (nll * m.reshape(-1)).sum() / x.shape[0]
        opt.zero_grad()
        loss.backward()
        for p in params:
            p.grad.clamp_(-5, 5)
        opt.step()
    return train_chars(state) / (time.perf_counter() - start)


def bench_sampling(count: int) -> tuple[float, float]:
    """Seconds and names/s to sample `count` names from the shipped dinosaur checkpoint."""
    model = load_model(bundled_path("checkpoints", "dinos.npz"))
    start = time.perf_counter()
    names = sample(model, SampleConfig(count=count), np.random.default_rng(0))
    seconds = time.perf_counter() - start
    return seconds, len(names) / seconds


def bench_default_run() -> tuple[float, float]:
    """Wall time of a full default training run (library call, no checkpoints) and its final val loss."""
    state = new_state(TrainConfig(), read_names(default_data_path()))
    start = time.perf_counter()
    train(state)
    return time.perf_counter() - start, state.history[-1].val_loss


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (best is kept)")
    parser.add_argument("--skip-default-run", action="store_true", help="skip timing a full default training run")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}")
    state = fresh_state()
    print(f"data: {len(state.train_idx)} training names, {train_chars(state)} chars per epoch, hidden {HIDDEN}")
    runs = {"baseline": [], "per-name": [], "batch 32": [], "batch 32, no bucketing": [], "torch batch 32": []}
    for _ in range(args.repeats):  # interleaved, so a slow moment of the machine hits every entry alike
        runs["baseline"].append(bench_baseline(fresh_state()))
        runs["per-name"].append(bench_namegen(1))
        runs["batch 32"].append(bench_namegen(32))
        runs["batch 32, no bucketing"].append(bench_namegen(32, bucket=False))
        torch_figure = bench_torch(fresh_state(), 32)
        if torch_figure is not None:
            runs["torch batch 32"].append(torch_figure)
    best = {name: max(figures) for name, figures in runs.items() if figures}
    print("\ntraining throughput (chars/s, best of %d)" % args.repeats)
    for name, figure in best.items():
        print(f"  {name:28s} {figure:12,.0f}   {figure / best['baseline']:6.2f}x baseline")
    if "torch batch 32" in best:
        print(f"  namegen batch 32 / torch batch 32: {best['batch 32'] / best['torch batch 32']:.2f}x")
    else:
        print("  (PyTorch not installed: no torch figure)")
    seconds, rate = bench_sampling(10_000)
    print(f"\nsampling 10,000 names (shipped checkpoint): {seconds:.3f}s, {rate:,.0f} names/s")
    if not args.skip_default_run:
        seconds, val = bench_default_run()
        print(f"default training run (25 epochs, per-name SGD, library call): {seconds:.1f}s, final val loss {val:.3f}")


if __name__ == "__main__":
    main()
