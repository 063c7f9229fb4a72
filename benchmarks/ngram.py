"""Character n-gram baselines on namegen's own validation split, for the README's quality table.

An n-gram model predicts each character (and the end of the name) from the n - 1 before it,
padded with the boundary token, as namegen's RNN does from all of them. Two smoothings:
- add-k: k added to each count, chosen by 5-fold cross-validation on the training names alone;
- interpolated modified Kneser-Ney (Chen and Goodman, 1998), n = 2 to 7: three discounts per order
  (for counts of 1, 2 and 3 or more) estimated from the training counts' count-of-counts, lower
  orders on continuation counts (how many distinct characters precede a context), down to uniform.
The validation names are seen once, for the figure. Prints nats/char on validation, the RNN's unit.

    python benchmarks/ngram.py [--data FILE] [--seed 0] [--val-fraction 0.1]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from namegen.data import read_names  # noqa: E402
from namegen.state import TrainConfig, new_state  # noqa: E402

SMOOTHING = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def contexts_and_targets(encoded: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every prediction of every name as (context, target): the context is the n - 1 tokens
    before the target, boundary-padded, as one integer."""
    contexts, targets = [], []
    for ids in encoded:  # ids: boundary, the name's characters, boundary
        padded = np.concatenate([np.full(n - 2, ids[0]), ids])
        for t in range(n - 1, len(padded)):
            contexts.append(tuple(padded[t - n + 1 : t]))
            targets.append(padded[t])
    return contexts, np.array(targets)


def nats_per_char(train: list[np.ndarray], test: list[np.ndarray], n: int, k: float, vocab: int) -> float:
    counts: dict[tuple, np.ndarray] = {}
    for context, target in zip(*contexts_and_targets(train, n), strict=True):
        counts.setdefault(context, np.zeros(vocab))[target] += 1
    contexts, targets = contexts_and_targets(test, n)
    total = 0.0
    for context, target in zip(contexts, targets, strict=True):
        row = counts.get(context, np.zeros(vocab))
        total -= np.log((row[target] + k) / (row.sum() + k * vocab))
    return total / len(targets)


def chosen_smoothing(train: list[np.ndarray], n: int, vocab: int, folds: int = 5) -> float:
    parts = [train[i::folds] for i in range(folds)]
    def cv(k):
        return np.mean([nats_per_char([x for j, p in enumerate(parts) if j != i for x in p], parts[i], n, k, vocab)
                        for i in range(folds)])
    return min(SMOOTHING, key=cv)


BOUNDARY = "\0"  # no name holds a NUL (namegen refuses one), so it can pad and end names


class KneserNey:
    """Interpolated modified Kneser-Ney over characters, n-gram order n, fitted to `names`."""

    def __init__(self, names: list[str], n: int):
        self.n = n
        highest = defaultdict(Counter)  # context of n - 1 characters -> counts of the next one
        for name in names:
            padded = BOUNDARY * (n - 1) + name + BOUNDARY
            for t in range(n - 1, len(padded)):
                highest[padded[t - n + 1 : t]][padded[t]] += 1
        self.levels = {n - 1: highest}
        for k in range(n - 2, -1, -1):  # continuation counts: distinct characters before h' w
            lower = defaultdict(Counter)
            for context, following in self.levels[k + 1].items():
                for w in following:
                    lower[context[1:]][w] += 1
            self.levels[k] = lower
        self.symbols = len({w for following in highest.values() for w in following})
        self.discounts = {k: self.estimated_discounts(level) for k, level in self.levels.items()}
        self.summaries = {k: {h: self.summary(c) for h, c in level.items()} for k, level in self.levels.items()}

    @staticmethod
    def estimated_discounts(level) -> tuple[float, float, float]:
        """D1, D2, D3+ from the count-of-counts n1..n4 (Chen and Goodman's estimates), kept in [0, c]."""
        n = Counter(min(c, 5) for following in level.values() for c in following.values())
        n1, n2, n3, n4 = (max(n[i], 1) for i in (1, 2, 3, 4))
        y = n1 / (n1 + 2 * n2)
        return (min(max(1 - 2 * y * n2 / n1, 0.0), 1.0), min(max(2 - 3 * y * n3 / n2, 0.0), 2.0),
                min(max(3 - 4 * y * n4 / n3, 0.0), 3.0))

    @staticmethod
    def summary(following: Counter) -> tuple[int, int, int, int]:
        counts = following.values()
        return (sum(counts), sum(c == 1 for c in counts), sum(c == 2 for c in counts), sum(c >= 3 for c in counts))

    def probability(self, history: str, w: str) -> float:
        p = 1.0 / self.symbols
        for k in range(self.n):  # context lengths 0 .. n - 1, each interpolated with the one below
            context = history[len(history) - k :] if k else ""
            following = self.levels[k].get(context)
            if not following:
                continue  # an unseen context: the lower order's estimate stands
            total, n1, n2, n3 = self.summaries[k][context]
            d1, d2, d3 = self.discounts[k]
            c = following.get(w, 0)
            discount = 0.0 if c == 0 else d1 if c == 1 else d2 if c == 2 else d3
            p = max(c - discount, 0.0) / total + (d1 * n1 + d2 * n2 + d3 * n3) / total * p
        return p

    def nats_per_char(self, names: list[str]) -> float:
        total = tokens = 0
        for name in names:
            padded = BOUNDARY * (self.n - 1) + name + BOUNDARY
            for t in range(self.n - 1, len(padded)):
                total -= math.log(self.probability(padded[t - self.n + 1 : t], padded[t]))
                tokens += 1
        return total / tokens


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    args = parser.parse_args()
    state = new_state(TrainConfig(seed=args.seed, val_fraction=args.val_fraction, hidden_size=1),
                      read_names(args.data))
    encoded = state.model.encoded
    def with_boundaries(i):
        return encoded.seq[encoded.bounds[i] : encoded.bounds[i + 1] + 1]

    train = [with_boundaries(i) for i in state.train_idx]
    val = [with_boundaries(i) for i in state.val_idx]
    vocab = state.model.vocab.size
    print(f"{state.source}: {len(train)} train / {len(val)} validation names (seed {args.seed})")
    print(f"  uniform              {np.log(vocab):.4f} nats/char")
    for n, label in ((2, "bigram"), (3, "trigram"), (4, "4-gram")):
        k = chosen_smoothing(train, n, vocab)
        print(f"  {label:8s} (add-{k})  {nats_per_char(train, val, n, k, vocab):.4f} nats/char")
    names = state.model.names
    train_names, val_names = [names[i] for i in state.train_idx], [names[i] for i in state.val_idx]
    for n in range(2, 8):
        print(f"  {n}-gram, Kneser-Ney   {KneserNey(train_names, n).nats_per_char(val_names):.4f} nats/char")


if __name__ == "__main__":
    main()
