"""Training and sampling throughput of namegen against a straightforward per-step numpy RNN.

Run from the repository root:  python benchmarks/bench.py   (--help for the options)
Every training figure is characters (time steps, end-of-name included) per second, the best of
--repeats runs interleaved, against the per-step baseline measured in the same run:
- in process: one epoch of the dinosaur training names, updates only;
- end to end: what a user gets from `namegen train`, the extra wall time of a 12-epoch over a
  2-epoch run (--val-fraction 0, checkpoints, previews and start-up included, so the difference
  is 10 epochs with everything an epoch costs), on a quiet machine and with one other CPU-bound
  process running (--busy runs both);
- the default `namegen train` (25 epochs) end to end, with the compiled path's first-run cost;
- the compiled per-name path against numpy for each feature (dropout, an embedding, several lists).
With --torch (PyTorch installed; it is never a dependency): namegen side by side with the same
training written for PyTorch (benchmarks/torch_rnn.py): see SIDE_BY_SIDE.
"""

from __future__ import annotations

import argparse
import contextlib
import json
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


# ------------------------------------------------------------------- compiled per feature

FEATURES = {  # name -> TrainConfig fields of a per-name run (hidden 50, SGD), and the lists it learns
    "per-name": ({}, ["dinos"]),
    "--dropout 0.3": ({"dropout": 0.3}, ["dinos"]),
    "--embedding-size 16": ({"embedding_size": 16}, ["dinos"]),
    "--data dinos firstnames": ({}, ["dinos", "firstnames"]),
    "all three, Adam, decay": ({"dropout": 0.3, "embedding_size": 16, "optimizer": "adam", "learning_rate": 0.003,
                                "weight_decay": 0.01}, ["dinos", "firstnames"]),
}


def bench_features(repeats: int) -> dict[str, dict[str, float]]:
    """chars/s of one epoch of each FEATURES run, on numpy and compiled, interleaved, best of `repeats`."""
    from namegen.data import read_name_lists
    from namegen.training import choose_engine

    runs = {}
    for name, (fields, lists) in FEATURES.items():
        data = read_name_lists([bundled_path("data", f"{stem}.txt") for stem in lists])
        config = TrainConfig(hidden_size=HIDDEN, epochs=1, **fields)
        chosen = choose_engine(config, "auto").engine
        figures = {"numpy": [], chosen: []}
        for _ in range(repeats):
            for engine in figures:
                state = new_state(config, data)
                marks = {}
                callbacks = Callbacks(on_epoch_start=lambda s, n: marks.setdefault("start", time.perf_counter()),
                                      on_step=lambda done, loss: marks.__setitem__("end", time.perf_counter()))
                train(state, None, callbacks, engine)
                figures[engine].append(train_chars(state) / (marks["end"] - marks["start"]))
        runs[name] = {engine: max(values) for engine, values in figures.items()}
    return runs


# ------------------------------------------------------------------- side by side with PyTorch
#
# Each recipe runs three ways, one after the other in each repeat (interleaved), every process pinned
# to one core: namegen in float64 (the default) and in float32, and benchmarks/torch_rnn.py in float32
# (what a PyTorch user trains in). Two figures each, best of the repeats: the seconds inside the
# training loop (updates only: namegen's from its callbacks, PyTorch's around its loop), and the wall
# time of the whole command as a user runs it (start-up, data, validation and a checkpoint every epoch).

BEST = {"hidden_size": 256, "embedding_size": 256, "dropout": 0.5, "optimizer": "adam", "learning_rate": 0.003,
        "batch_size": 16, "warmup": 0.05}
SIDE_BY_SIDE = {  # name -> (data: None for dinos, "names" for --names; TrainConfig fields)
    "default recipe (dinos, 25 epochs, per name)": (None, {}),
    "best recipe (dinos, 27 epochs)": (None, BEST | {"epochs": 27}),
    "best recipe, 1 epoch of names.txt": ("names", BEST | {"epochs": 1}),
}
SAMPLED = 100_000
BENCH = Path(__file__).resolve()


def cli_options(fields: dict) -> list[str]:
    """`--hidden-size 256 ...`: TrainConfig fields as the options of both commands."""
    return [text for key, value in fields.items() for text in (f"--{key.replace('_', '-')}", str(value))]


def pinned(cpu: int):
    return lambda: os.sched_setaffinity(0, {cpu})


def timed_json(command: list[str], cpu: int) -> tuple[dict, float]:
    """The JSON line a command prints last, and its wall time, the process pinned to `cpu`."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, preexec_fn=pinned(cpu))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def namegen_train(data: str | None, fields: dict, dtype: str, cpu: int) -> tuple[float, float, float]:
    """(seconds in the loop, wall seconds of `namegen train`, best validation loss); the loop in a
    process of its own (in_loop below), the wall time of the command a user types."""
    options = cli_options(fields | {"dtype": dtype}) + (["--data", data] if data else [])
    loop, _ = timed_json([sys.executable, str(BENCH), "in-loop", *options], cpu)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "namegen", "train", *options, "--out-dir", out], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned(cpu))
        wall = time.perf_counter() - start
    return loop["loop_seconds"], wall, loop["best_val"]


def torch_train(data: str | None, fields: dict, cpu: int) -> tuple[float, float, float]:
    options = cli_options(fields) + (["--data", data] if data else [])
    result, wall = timed_json([sys.executable, str(BENCH.parent / "torch_rnn.py"), "train", *options,
                               "--dtype", "float32"], cpu)
    return result["loop_seconds"], wall, result["best_val"]


def namegen_sample(checkpoint: Path, cpu: int, dtype: str = "auto") -> tuple[float, float]:
    loop, _ = timed_json([sys.executable, str(BENCH), "in-loop-sample", str(checkpoint), dtype], cpu)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "namegen", "sample", "-c", str(checkpoint), "-n", str(SAMPLED),
                    "--seed", "0", "--dtype", dtype], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   preexec_fn=pinned(cpu))
    return loop["loop_seconds"], time.perf_counter() - start


def torch_sample(checkpoint: Path, cpu: int) -> tuple[float, float]:
    result, wall = timed_json([sys.executable, str(BENCH.parent / "torch_rnn.py"), "sample", "--checkpoint",
                               str(checkpoint), "--count", str(SAMPLED), "--dtype", "float32"], cpu)
    return result["loop_seconds"], wall


def in_loop(argv: list[str]) -> None:
    """`bench.py in-loop --hidden-size 256 ...`: train as `namegen train` would (no checkpoint files)
    and print the seconds spent in updates (each epoch from its start to its last update) and the
    best validation loss, as one JSON line."""
    from namegen.data import read_name_lists

    fields = {}
    for key, value in zip(argv[::2], argv[1::2]):
        if key != "--data":
            name = key[2:].replace("-", "_")
            kind = type(getattr(TrainConfig(), name))
            fields[name] = kind(value) if kind is not bool else value == "True"
    data = [value for key, value in zip(argv[::2], argv[1::2]) if key == "--data"]
    state = new_state(TrainConfig(**fields), read_name_lists(data or None))
    spent, marks = [], {}

    def started(s, n):
        marks["start"] = time.perf_counter()

    def stepped(done, loss):
        marks["end"] = time.perf_counter()

    callbacks = Callbacks(on_epoch_start=started, on_step=stepped,
                          on_epoch_end=lambda s, record: spent.append(marks["end"] - marks["start"]))
    train(state, None, callbacks, "auto")
    print(json.dumps({"loop_seconds": sum(spent), "best_val": state.best_val_loss}))


def in_loop_sample(checkpoint: str, dtype: str = "auto") -> None:
    """`bench.py in-loop-sample CKPT [DTYPE]`: the seconds `namegen sample -n 100000` spends drawing."""
    model = load_model(checkpoint)
    start = time.perf_counter()
    names = sample(model, SampleConfig(count=SAMPLED, seed=0, dtype=dtype), np.random.default_rng(0))
    print(json.dumps({"loop_seconds": time.perf_counter() - start, "names": len(names)}))


def warm_up(cpu: int) -> None:
    """Fill numba's cache (a first compile takes 15-20 s), so that no timed run pays for it."""
    with tempfile.TemporaryDirectory() as out:
        for k, options in enumerate(([], ["--batch-size", "16"], ["--batch-size", "16", "--dtype", "float32"])):
            subprocess.run([sys.executable, "-m", "namegen", "train", "--epochs", "1", "--preview", "0", *options,
                            "--out-dir", f"{out}/{k}"], check=True, stdout=subprocess.DEVNULL, preexec_fn=pinned(cpu))
        subprocess.run([sys.executable, str(BENCH), "in-loop-sample", f"{out}/0/dinos.latest.npz"], check=True,
                       stdout=subprocess.DEVNULL, preexec_fn=pinned(cpu))


def side_by_side(names_path: str | None, repeats: int, cpu: int, parts: str) -> None:
    warm_up(cpu)
    ways = {"namegen float64": lambda data, fields: namegen_train(data, fields, "float64", cpu),
            "namegen float32": lambda data, fields: namegen_train(data, fields, "float32", cpu),
            "torch float32": lambda data, fields: torch_train(data, fields, cpu)}
    print(f"\nside by side with PyTorch {torch_version()} (1 thread), every process pinned to CPU {cpu}, "
          f"best of {repeats}, interleaved; seconds in the training loop / wall seconds of the command")
    for recipe, (data, fields) in SIDE_BY_SIDE.items() if parts in ("all", "train") else ():
        if data == "names":
            if names_path is None:
                print(f"  {recipe}: skipped (--names PATH: makemore's names.txt, "
                      "https://github.com/karpathy/makemore/blob/master/names.txt)")
                continue
            data = names_path
        figures = {way: [] for way in ways}
        for _ in range(repeats):
            for way, run in ways.items():
                figures[way].append(run(data, fields))
        print_side_by_side(recipe, {way: (min(f[0] for f in runs), min(f[1] for f in runs), runs[0][2])
                                    for way, runs in figures.items()})
    if parts not in ("all", "sample"):
        return
    with tempfile.TemporaryDirectory() as out:
        checkpoints = {}
        for dtype in ("float64", "float32"):  # hidden 256, 3 epochs of the best recipe on dinos
            subprocess.run([sys.executable, "-m", "namegen", "train", *cli_options(BEST | {"epochs": 3, "dtype": dtype}),
                            "--out-dir", f"{out}/{dtype}", "--preview", "0"], check=True, stdout=subprocess.DEVNULL)
            checkpoints[dtype] = Path(out) / dtype / "dinos.best.npz"
        # Each namegen way against PyTorch float32 on the same checkpoint: the same model, so the
        # same lengths of names to draw. namegen draws in float32 by default (--dtype auto) at this size.
        ways = {(dtype, who): (lambda who=who, dtype=dtype: torch_sample(checkpoints[dtype], cpu) if who == "torch"
                               else namegen_sample(checkpoints[dtype], cpu, who.split()[-1]))
                for dtype in checkpoints for who in ("namegen auto", "namegen float64", "torch float32")
                if not (dtype == "float32" and who == "namegen float64")}
        figures = {way: [] for way in ways}
        for _ in range(repeats):
            for way, run in ways.items():
                figures[way].append(run())
        for dtype in checkpoints:
            print_side_by_side(f"sampling {SAMPLED:,} names from a hidden-256 model trained in {dtype}", {
                who: (min(f[0] for f in figures[dtype, who]), min(f[1] for f in figures[dtype, who]), None)
                for model_dtype, who in ways if model_dtype == dtype})


def print_side_by_side(recipe: str, best: dict[str, tuple[float, float, float | None]]) -> None:
    torch_loop, torch_wall, _ = best["torch float32"]
    print(f"  {recipe}")
    for way, (loop, wall, val) in best.items():
        loss = f"   best val {val:.4f}" if val is not None else ""
        print(f"    {way:16s} loop {loop:7.2f}s ({torch_loop / loop:4.2f}x torch)   "
              f"wall {wall:7.2f}s ({torch_wall / wall:4.2f}x torch){loss}")


def torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (best is kept)")
    parser.add_argument("--busy", action="store_true", help="also measure end to end with another CPU-bound process")
    parser.add_argument("--skip-default-run", action="store_true", help="skip timing the default `namegen train`")
    parser.add_argument("--torch", action="store_true", help="only the side by side with PyTorch (installed apart)")
    parser.add_argument("--parts", choices=("all", "train", "sample"), default="all", help="of the side by side")
    parser.add_argument("--names", help="makemore's names.txt, for the side by side's names.txt recipe")
    parser.add_argument("--cpu", type=int, default=max(os.sched_getaffinity(0)), help="the core the side by side pins to")
    args = parser.parse_args()
    if args.torch:
        if torch_version() is None:
            raise SystemExit("--torch: PyTorch is not installed (pip install torch; it is never a dependency of namegen)")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
              f"{platform.python_version()}, numpy {np.__version__}; {load_average()}")
        side_by_side(args.names, args.repeats, args.cpu, args.parts)
        return
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
    features = bench_features(args.repeats)
    print(f"\ncompiled per-name runs against numpy, one epoch, hidden {HIDDEN} (chars/s, best of {args.repeats}):")
    for name, figures in features.items():
        compiled = figures.get("numba")
        print(f"  {name:28s} numpy {figures['numpy']:10,.0f}   " + (
            f"compiled {compiled:10,.0f}   {compiled / figures['numpy']:5.2f}x" if compiled else "not compiled"))
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
    if sys.argv[1:2] == ["in-loop"]:
        in_loop(sys.argv[2:])
    elif sys.argv[1:2] == ["in-loop-sample"]:
        in_loop_sample(*sys.argv[2:4])
    else:
        main()
