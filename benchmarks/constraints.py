"""What constrained sampling costs a user: `namegen sample` end to end with each constraint, on a
model of a list that is not dinos.txt.

Trains the README's best recipe (hidden 256) on a list (by default data/firstnames.txt, 2,330 first
names), unless --checkpoint is given, then runs each of the README's examples as a user would, as
a command, and prints its wall time (best of --repeats, the process start included, with Python's
bytecode cached as an installed package has it: PYTHONDONTWRITEBYTECODE is dropped), the share of
draws kept and the draws made (from the same command with --json), and the first names. Last, it
draws 2,000 names and checks that none breaks a rule every line of the data keeps.

    python benchmarks/constraints.py [--data data/cities.txt] [--epochs 20] [--checkpoint CKPT]
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from namegen.checkpoint import load_model  # noqa: E402
from namegen.data import bundled_path  # noqa: E402
from namegen.sampling import SampleConfig, sample  # noqa: E402

BEST = ["--hidden-size", "256", "--embedding-size", "256", "--dropout", "0.5", "--optimizer", "adam",
        "--learning-rate", "0.003", "--batch-size", "16", "--warmup", "0.05"]
EXAMPLES = [  # what a user asks for; USED stands for a file of names already used
    ["-n", "20", "--suffix", "iel", "--novel", "--unique"],
    ["-n", "20", "--pattern", "gal.*|.*iel", "--novel"],
    ["-n", "20", "--contains", "th", "--contains", "an"],
    ["-n", "20", "--exclude", "e", "--exclude", "a"],
    ["-n", "20", "--exclude-names", "USED", "--novel"],
    ["-n", "20", "--top-p", "0.9", "--min-length", "6"],
    ["-n", "10", "--similar-to", "Gabriel", "--novel"],
    ["--most-likely", "10", "--novel"],
    # an ending the first-names model gives 1 draw in 100,000 (3 of 300,000 names drawn with seed 11):
    ["-n", "5", "--suffix", "myr"],  # the default budget (100,000 draws) ends it, with what it found
    ["-n", "1", "--suffix", "myr", "--max-tries", "1000000"],  # one such name
    ["-n", "20", "--suffix", "qz"],  # an ending it never gives
]


def run(checkpoint: Path, args: list[str], repeats: int) -> tuple[float, dict | None, str]:
    """Best wall time of the command, its --json answer (None if it printed none), and its error line."""
    command = [sys.executable, "-m", "namegen", "sample", "-c", str(checkpoint), "--seed", "1", *args]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed: bytecode cached
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        best = min(best, time.perf_counter() - start)
    done = subprocess.run(command + ["--json"], capture_output=True, text=True, env=env)
    try:
        payload = json.loads(done.stdout)
    except json.JSONDecodeError:
        payload = None
    return best, payload, done.stderr.strip().splitlines()[-1] if done.returncode else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=bundled_path("data", "firstnames.txt"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--checkpoint", type=Path, help="a model to use instead of training one")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        checkpoint = args.checkpoint
        if checkpoint is None:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "namegen", "train", "--data", str(args.data), *BEST,
                            "--epochs", str(args.epochs), "--out-dir", out, "--preview", "0", "--seed", "0"],
                           check=True, stdout=subprocess.DEVNULL)
            checkpoint = Path(out) / f"{args.data.stem}.best.npz"
            print(f"trained {' '.join(BEST)} --epochs {args.epochs} on {args.data} in {time.perf_counter() - start:.0f}s")
        model = load_model(checkpoint)
        used = Path(out) / "used.txt"
        used.write_text("\n".join(model.names[::4]) + "\n", encoding="utf-8")
        print(f"{checkpoint}: hidden {model.hidden_size}, {len(model.names)} names; used.txt: {len(model.names[::4])} of them")
        print(f"{'sample ...':48s} {'wall':>7s} {'kept':>8s} {'draws':>9s}  first names, or the error")
        for example in EXAMPLES:
            example = [str(used) if a == "USED" else a for a in example]
            wall, payload, error = run(checkpoint, example, args.repeats)
            names = [n["name"] for n in payload["names"]] if payload else []
            kept = payload.get("acceptance") if payload else None
            draws = payload.get("draws") if payload else None
            shown = " ".join(a if " " not in a and "|" not in a else repr(a) for a in example).replace(str(used), "used.txt")
            print(f"{shown:48s} {wall:6.2f}s {'' if kept is None else f'{kept:8.2%}':>8s} "
                  f"{'' if draws is None else f'{draws:,}':>9s}  {', '.join(names[:5]) or error}")
        rejected = Counter()
        names = sample(model, SampleConfig(count=2000, seed=2), rejected=rejected)
        broken = [n for n in names if model.unlike_data(model.clean(n))]
        print(f"2,000 names drawn: {len(broken)} break a rule of the data {model.rules}; draws turned away: "
              f"{dict(sorted((k.value, v) for k, v in rejected.items()))}")


if __name__ == "__main__":
    main()
