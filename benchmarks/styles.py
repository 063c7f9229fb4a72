"""How well one model keeps two name lists apart, and whether a blend of their styles lies between.

Trains a model of two lists (by default the bundled dinosaur names and first names), then reports:
- the loss of each style's validation names under its own style and under the other;
- the share of validation names that `score` assigns to their own list (the style of lowest loss);
- for samples drawn in each pure style and in a 50/50 blend, their mean loss under each style.

    python benchmarks/styles.py [--data A --data B] [--epochs 20] [--samples 2000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from namegen.data import bundled_path, read_name_lists  # noqa: E402
from namegen.evaluation import name_nll  # noqa: E402
from namegen.sampling import SampleConfig, sample  # noqa: E402
from namegen.state import TrainConfig, new_state  # noqa: E402
from namegen.training import train  # noqa: E402


def per_char(model, names: list[str], style: int) -> float:
    encoded = model.vocab.encode_names([model.clean(n) for n in names])
    return float(name_nll(model, encoded, styles=style).sum() / (encoded.lengths.sum() + len(names)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", type=Path)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    paths = args.data or [bundled_path("data", "dinos.txt"), bundled_path("data", "firstnames.txt")]
    config = TrainConfig(hidden_size=128, embedding_size=128, dropout=0.3, optimizer="adam", learning_rate=0.003,
                         batch_size=16, epochs=args.epochs, warmup=0.05)
    state = new_state(config, read_name_lists(paths))
    result = train(state)
    model = state.model
    a, b = model.styles
    print(f"{' + '.join(Path(p).name for p in paths)}: {len(state.train_idx)} train / {len(state.val_idx)} validation names, "
          f"{result.seconds:.1f}s ({result.engine})")
    val = state.val_idx
    encoded = model.encoded
    nll = np.array([name_nll(model, encoded, val, styles=k) for k in range(2)])  # (2, names)
    chars = encoded.lengths[val] + 1
    own = model.style_of[val]
    print("validation names, nats/char:")
    for k, style in enumerate(model.styles):
        mine = own == k
        print(f"  {style:>12}: as {a} {nll[0, mine].sum() / chars[mine].sum():.3f}, as {b} {nll[1, mine].sum() / chars[mine].sum():.3f}")
    assigned = np.argmin(nll, axis=0) == own
    print(f"score assigns {assigned.mean():.1%} of the validation names to their own list "
          f"({', '.join(f'{s} {assigned[own == k].mean():.1%}' for k, s in enumerate(model.styles))})")
    rng = np.random.default_rng(0)
    print(f"{args.samples} samples each, mean nats/char under each style:")
    for label, style in ((a, a), (f"{a}=0.5,{b}=0.5", f"{a}=0.5,{b}=0.5"), (b, b)):
        names = sample(model, SampleConfig(count=args.samples, style=style), rng)
        print(f"  {label:>24}: as {a} {per_char(model, names, 0):.3f}, as {b} {per_char(model, names, 1):.3f}")


if __name__ == "__main__":
    main()
