"""Training and sampling throughput of namegen against a straightforward per-step numpy RNN.

Run from the repository root:  python benchmarks/bench.py   (--help for the options)
Every training figure is characters (time steps, end-of-name included) per second, the best of
--repeats runs interleaved, against the per-step baseline measured in the same run:
- in process: one epoch of the dinosaur training names, updates only;
- end to end: what a user gets from `namegen train`, the extra wall time of a 12-epoch over a
  2-epoch run (--val-fraction 0, checkpoints, previews and start-up included, so the difference
  is 10 epochs with everything an epoch costs), on a quiet machine and with one other CPU-bound
  process running (--busy runs both);
- the default `namegen train` (25 epochs) end to end, with the compiled path's first-run cost.
PyTorch is measured only if it happens to be installed; it is not a dependency.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline  # noqa: E402

from namegen import fast  # noqa: E402
from namegen.checkpoint import load_model  # noqa: E402
from namegen.data import bundled_path, default_data_path, read_names  # noqa: E402
from namegen.model import PARAM_NAMES  # noqa: E402
from namegen.sampling import SampleConfig, sample  # noqa: E402
from namegen.state import TrainConfig, new_state  # noqa: E402
from namegen.training import Callbacks, preview_names, train  # noqa: E402

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


def bench_namegen(batch_size: int, bucket: bool = True, engine: str = "numpy") -> float:
    """chars/s of namegen's training loop over one epoch (updates only, not the epoch-end evaluation)."""
    state = fresh_state(batch_size, bucket)
    marks = {}
    callbacks = Callbacks(on_epoch_start=lambda s, n: marks.setdefault("start", time.perf_counter()),
                          on_step=lambda done, loss: marks.__setitem__("end", time.perf_counter()))
    train(state, None, callbacks, engine)
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


# ------------------------------------------------------------------------------- end to end

def cli_seconds(*args: str, env: dict | None = None) -> float:
    """Wall time of one `namegen ...` command in a fresh process, checkpoints in a new directory."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "namegen", *args, "--out-dir", out], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return time.perf_counter() - start


# name -> extra options of `namegen train`
SETUPS = {"numpy per-name": ["--engine", "numpy"], "numpy batch 32": ["--engine", "numpy", "--batch-size", "32"],
          "compiled per-name": ["--engine", "numba"]}


def end_to_end_times(options: list[str]) -> tuple[float, float]:
    """Wall times of a 2-epoch and a 12-epoch `namegen train --val-fraction 0`."""
    short, long = (cli_seconds("train", "--val-fraction", "0", "--epochs", str(n), *options) for n in (2, 12))
    return short, long


@contextlib.contextmanager
def busy_process():
    """One other CPU-bound process on the machine while the block runs."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def bench_end_to_end(setups: dict, repeats: int) -> dict[str, float]:
    """End-to-end rate of each setup, interleaved with the in-process baseline: 10 epochs' chars
    over (best 12-epoch wall time - best 2-epoch wall time). The best of each time, not the best
    of the differences, which noise in a single pair would inflate."""
    names = read_names(default_data_path()).names
    chars = sum(len(name) + 1 for name in names)  # --val-fraction 0: every name trains
    baseline, times = [], {name: [] for name in setups}
    for _ in range(repeats):
        baseline.append(bench_baseline(fresh_state()))
        for name, options in setups.items():
            times[name].append(end_to_end_times(options))
    rates = {name: 10 * chars / (min(t[1] for t in pairs) - min(t[0] for t in pairs)) for name, pairs in times.items()}
    return {"baseline": max(baseline)} | rates


def print_rates(title: str, best: dict[str, float]) -> None:
    print(f"\n{title}")
    for name, figure in best.items():
        print(f"  {name:28s} {figure:12,.0f}   {figure / best['baseline']:6.2f}x baseline")


def bench_default_cli(engines: list[str], repeats: int) -> dict[str, float]:
    """Best wall time of the default `namegen train` (25 epochs on dinos) per engine, interleaved."""
    times = {engine: [] for engine in engines}
    for _ in range(repeats):
        for engine in engines:
            times[engine].append(cli_seconds("train", "--engine", engine))
    return {engine: min(figures) for engine, figures in times.items()}


def bench_cold_compile() -> tuple[float, float]:
    """The default `namegen train` with an empty numba cache (it compiles), then with the cache it left."""
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"NUMBA_CACHE_DIR": cache}
        return cli_seconds("train", "--engine", "numba", env=env), cli_seconds("train", "--engine", "numba", env=env)


def bench_epoch_overhead(engine: str) -> float:
    """Share of an epoch's time, in a default run with checkpoints and 3 previews, not spent on updates."""
    state = new_state(TrainConfig(epochs=5), read_names(default_data_path()))
    marks = {"updates": 0.0}

    def started(s, n):
        marks["start"] = time.perf_counter()

    def stepped(done, loss):
        marks["end"] = time.perf_counter()

    def ended(s, record):
        marks["updates"] += marks["end"] - marks["start"]
        preview_names(s, 3)  # what the CLI's epoch line adds

    with tempfile.TemporaryDirectory() as out:
        train(state, Path(out) / "dinos.latest.npz", Callbacks(started, stepped, ended), engine)
    total = sum(record.seconds for record in state.history)
    return 1 - marks["updates"] / total


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (best is kept)")
    parser.add_argument("--busy", action="store_true", help="also measure end to end with another CPU-bound process")
    parser.add_argument("--skip-default-run", action="store_true", help="skip timing the default `namegen train`")
    args = parser.parse_args()
    engines = ["numpy", "numba"] if fast.available() else ["numpy"]
    setups = {name: options for name, options in SETUPS.items() if "numba" not in options or fast.available()}

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, numpy {np.__version__}" + ("" if fast.available() else ", numba not installed"))
    print(load_average())
    state = fresh_state()
    print(f"data: {len(state.train_idx)} training names, {train_chars(state)} chars per epoch, hidden {HIDDEN}")
    runs = {"baseline": [], "per-name": [], "batch 32": [], "batch 32, no bucketing": [], "torch batch 32": []}
    if fast.available():
        runs["compiled per-name"] = []
        bench_namegen(1, engine="numba")  # load the compiled kernel before timing it
    for _ in range(args.repeats):  # interleaved, so a slow moment of the machine hits every entry alike
        runs["baseline"].append(bench_baseline(fresh_state()))
        runs["per-name"].append(bench_namegen(1))
        runs["batch 32"].append(bench_namegen(32))
        runs["batch 32, no bucketing"].append(bench_namegen(32, bucket=False))
        if fast.available():
            runs["compiled per-name"].append(bench_namegen(1, engine="numba"))
        torch_figure = bench_torch(fresh_state(), 32)
        if torch_figure is not None:
            runs["torch batch 32"].append(torch_figure)
    best = {name: max(figures) for name, figures in runs.items() if figures}
    print_rates(f"in process: training updates (chars/s, best of {args.repeats})", best)
    if "torch batch 32" in best:
        print(f"  namegen batch 32 / torch batch 32: {best['batch 32'] / best['torch batch 32']:.2f}x")
    else:
        print("  (PyTorch not installed: no torch figure)")

    quiet = bench_end_to_end(setups, args.repeats)
    print_rates(f"end to end: namegen train, best 12-epoch minus best 2-epoch wall time of {args.repeats}, --val-fraction 0 (chars/s; "
                f"{load_average()})", quiet)
    if args.busy:
        with busy_process():
            busy = bench_end_to_end(setups, args.repeats)
            print_rates(f"the same with one other CPU-bound process running ({load_average()})", busy)
        print("  busy / quiet, each against its own baseline: " + ", ".join(
            f"{name} {(busy[name] / busy['baseline']) / (quiet[name] / quiet['baseline']):.2f}"
            for name in setups))

    print("\nshare of an epoch not spent on updates (5 default epochs, checkpoints and 3 previews): " + ", ".join(
        f"{engine} {100 * bench_epoch_overhead(engine):.1f}%" for engine in engines))
    seconds, rate = bench_sampling(10_000)
    print(f"\nsampling 10,000 names (shipped checkpoint): {seconds:.3f}s, {rate:,.0f} names/s")
    if not args.skip_default_run:
        walls = bench_default_cli(engines, args.repeats)
        print(f"default `namegen train` (25 epochs on dinos, per-name SGD), wall time best of {args.repeats}: "
              + ", ".join(f"{engine} {seconds:.2f}s" for engine, seconds in walls.items()))
        if fast.available():
            cold, warm = bench_cold_compile()
            print(f"  compiled path with an empty numba cache: {cold:.2f}s (it compiles), then {warm:.2f}s")


if __name__ == "__main__":
    main()
