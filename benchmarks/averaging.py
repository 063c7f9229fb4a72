"""What weight averaging would be worth: a run of `namegen train`'s options, measured with and
without an exponential moving average of its parameters.

namegen has no averaging option. Before one is built, this measures it from outside the engine: the
run trains as `namegen train` would (the same options, seed and validation names), and after every
update an average of the model's parameters moves towards them, avg += (1 - decay) (params - avg).
At each epoch's end both are measured on the validation names. Prints one line per epoch.

    python benchmarks/averaging.py --data train.txt --decay 0.999 -- --hidden-size 512 ...
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from namegen.evaluation import evaluate  # noqa: E402
from namegen.state import TrainConfig  # noqa: E402
from namegen.training import Callbacks, start_run, train  # noqa: E402


def options_of(args: list[str]) -> dict:
    """`namegen train` options as TrainConfig fields: --hidden-size 512 -> hidden_size=512."""
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    options, words = {}, list(args)
    while words:
        name = words.pop(0).removeprefix("--").replace("-", "_")
        kind = types[name]
        options[name] = int(words.pop(0)) if "int" in str(kind) else float(words.pop(0)) if "float" in str(kind) \
            else words.pop(0)
    return options


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--decay", type=float, default=0.999, help="the average's decay per update")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="namegen train options, after --")
    args = parser.parse_args()
    options = options_of([word for word in args.options if word != "--"])
    run = start_run(args.data, **options)
    state = run.state
    average = state.model.params.astype(np.float64)

    def moved(names_done, running_loss):
        average[:] += (1 - args.decay) * (state.model.params - average)

    def measured(state, record):
        averaged = dataclasses.replace(state.model, params=average.astype(state.model.params.dtype))
        val = evaluate(averaged, state.model.encoded, state.val_idx).per_char
        print(f"epoch {record.epoch:>3}  val {record.val_loss:.4f}  averaged {val:.4f}  ({record.seconds:.0f}s)",
              flush=True)

    print(f"{args.data}: {shlex.join(args.options)}; average decay {args.decay} per update", flush=True)
    train(state, None, Callbacks(on_step=moved, on_epoch_end=measured))


if __name__ == "__main__":
    main()
