"""makemore's train/test split of names.txt, rebuilt without PyTorch, and the baselines on it.

makemore (karpathy/makemore, makemore.py, create_datasets) splits its names with
`torch.manual_seed(3407); rp = torch.randperm(len(words))`: train = rp[:-1000], test = rp[-1000:].
On the CPU, for this n, torch.randperm is a Fisher-Yates shuffle driven by MT19937 seeded with 3407
(init_genrand): for i from 0 to n - 2, z = next_u32() % (n - i), swap r[i] and r[i + z]. numpy's
MT19937 with the same legacy seeding gives the same stream, so the split is rebuilt exactly; it is
checked by its first and last test names ("kalub", "jvion").

Prints the test nats/char (per predicted token, end of name included: 7,166 tokens) of interpolated
modified Kneser-Ney n-grams, n = 2 to 7, their discounts estimated on the training names alone, and,
with --train "OPTIONS", of `namegen train --data train.txt OPTIONS` evaluated once on the test names
(its validation names carved out of the training names by --val-fraction, as namegen always does;
with --val-fraction 0, trained on every training name, its last checkpoint is the one evaluated),
and with --tune "OPTIONS", of the model `namegen tune --data train.txt OPTIONS` keeps (chosen on its
validation names alone), with the command tune prints to train it again.

    python benchmarks/makemore_split.py [--names data/names.txt] [--out DIR] [--no-baselines]
        [--train "--hidden-size 256 ..."] [--tune "--budget 20m --jobs 2"]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ngram import KneserNey  # noqa: E402

FIRST_TEST, LAST_TEST = "kalub", "jvion"


def makemore_split(words: list[str], seed: int = 3407, test_size: int | None = None) -> tuple[list[str], list[str]]:
    """(train, test) as makemore makes them: test_set_size = min(1000, int(len(words) * 0.1))."""
    n = len(words)
    test_size = min(1000, int(n * 0.1)) if test_size is None else test_size
    generator = np.random.MT19937(0)
    generator._legacy_seeding(seed)  # init_genrand(seed), as torch.manual_seed seeds its CPU generator
    draws = generator.random_raw(n - 1)  # 32-bit outputs
    order = list(range(n))
    for i in range(n - 1):
        z = int(draws[i]) % (n - i)
        order[i], order[i + z] = order[i + z], order[i]
    return [words[i] for i in order[:-test_size]], [words[i] for i in order[-test_size:]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "names.txt")
    parser.add_argument("--out", type=Path, help="where to write train.txt and test.txt (default: a temporary folder)")
    parser.add_argument("--train", help="namegen train options to run and evaluate once on the test names")
    parser.add_argument("--tune", help="namegen tune options to run, its model evaluated once on the test names")
    parser.add_argument("--orders", default="2,3,4,5,6,7", help="Kneser-Ney orders to report")
    parser.add_argument("--no-baselines", action="store_true", help="skip the Kneser-Ney n-grams")
    args = parser.parse_args()
    words = [line.strip() for line in args.names.read_text(encoding="utf-8").splitlines() if line.strip()]
    train, test = makemore_split(words)
    assert (test[0], test[-1]) == (FIRST_TEST, LAST_TEST), f"not makemore's split: {test[0]} ... {test[-1]}"
    tokens = sum(len(w) + 1 for w in test)
    print(f"{args.names}: {len(words)} names, makemore's split: {len(train)} train, {len(test)} test "
          f"({test[0]} ... {test[-1]}), {tokens} test tokens")
    if not args.no_baselines:
        baselines(train, test, args.orders)
    if args.train or args.tune:
        with tempfile.TemporaryDirectory() as scratch:
            out = args.out or Path(scratch)
            out.mkdir(parents=True, exist_ok=True)
            (out / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
            (out / "test.txt").write_text("\n".join(test) + "\n", encoding="utf-8")
            if args.train:
                run_train(out, args.train)
            if args.tune:
                run_tune(out, args.tune)


def baselines(train: list[str], test: list[str], orders: str) -> None:
    """Kneser-Ney n-grams on the test names, the order chosen on validation names carved from the
    training names (a seeded 1,000): the test names are looked at once per order, for the figure,
    never to choose."""
    shuffled = [train[i] for i in np.random.default_rng(0).permutation(len(train))]
    fit, validation = shuffled[:-1000], shuffled[-1000:]
    orders = list(map(int, orders.split(",")))
    on_validation = {n: KneserNey(fit, n).nats_per_char(validation) for n in orders}
    chosen = min(on_validation, key=on_validation.get)
    for n in orders:
        figure = KneserNey(train, n).nats_per_char(test)
        mark = "   <- chosen on validation" if n == chosen else ""
        print(f"  {n}-gram, interpolated modified Kneser-Ney   {figure:.4f} nats/char on test "
              f"(validation {on_validation[n]:.4f}){mark}")


def on_test_names(checkpoint: Path, test: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "namegen", "evaluate", "-c", str(checkpoint), "--data", str(test),
                           "--json"], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)["results"][0]


def run_train(out: Path, options: str) -> None:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "namegen", "train", "--data", str(out / "train.txt"),
                           *shlex.split(options), "--out-dir", str(out), "--preview", "0", "--json"],
                          check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    run = json.loads(done.stdout)
    # --val-fraction 0: no validation names, so no best epoch; the last checkpoint is the model
    result = on_test_names(Path(run["best_checkpoint"] or run["checkpoint"]), out / "test.txt")
    validation = "no validation figure" if run["best_val_loss"] is None else f"validation {run['best_val_loss']:.4f}"
    print(f"  namegen train {options}: {result['nats_per_char']:.4f} nats/char on the test names "
          f"({result['chars']} tokens; {validation}; {seconds:.0f}s to train)")


def run_tune(out: Path, options: str) -> None:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "namegen", "tune", "--data", str(out / "train.txt"), *shlex.split(options),
                           "--out-dir", str(out / "tuned"), "--json"], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    payload = json.loads(done.stdout)
    best = payload["best"]
    result = on_test_names(Path(payload["checkpoint"]), out / "test.txt")
    print(f"  namegen tune {options}: {payload['trials_drawn']} settings, {payload['runs']} runs in {seconds:.0f}s "
          f"(rungs of {payload['rung_epochs']} epochs); winner: trial {best['trial']} at rung {best['rung']}, "
          f"validation {best['best_val_loss']:.4f}, {result['nats_per_char']:.4f} nats/char on the test names")
    print(f"    its command: {payload['command']}")
    (out / "tune.json").write_text(done.stdout)


if __name__ == "__main__":
    main()
