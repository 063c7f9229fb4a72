"""Character n-gram baselines on namegen's own validation split, for the README's quality table.

An n-gram model predicts each character (and the end of the name) from the n - 1 before it,
padded with the boundary token, as namegen's RNN does from all of them. Counts are smoothed by
adding k to each; k is chosen by 5-fold cross-validation on the training names alone, so the
validation names are seen once, for the figure. Prints nats/char on validation, the RNN's unit.

    python benchmarks/ngram.py [--data FILE] [--seed 0] [--val-fraction 0.1]
"""

from __future__ import annotations

import argparse
import sys
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


if __name__ == "__main__":
    main()
