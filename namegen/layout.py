"""The trained vector: every block a run trains, where it lies in one flat vector, which blocks are
products of others, which decay, how each starts, and its name in a checkpoint. One description
that the update, the compiled kernel, the checkpoint and the model's views all iterate.

Letters: V vocabulary, H hidden, K styles (name lists), D a style vector's size, E an embedding's.
The blocks, in vector order:

    Whh (H, H), bh (H,), Wxh (V, H), B (K, H), Why (H, V), by (V,)   the model: what sampling needs
    S (K, D), Wsh (D, H)                                             with styles: B = S Wsh
    E (V, E), Wih (E, H)                                             with an embedding: Wxh = E Wih

The model's blocks come first, so the model is a prefix of the trained vector, and W_in = [Whh; bh;
Wxh; B] and W_out = [Why; by] are each one contiguous stretch of it (see model.stacked_weights).
A product is rebuilt from its factors after every step and never trained itself; its gradient is
passed on to the factors (d left = d product rightᵀ, d right = leftᵀ d product) and then zeroed.
Weight decay shrinks every trained matrix and no bias: PyTorch's and nanoGPT's rule.

Adding a trained block is one entry in `Layout.__post_init__` (its shape, its initial values, and,
for a product, its factors; a size that turns it on, set from the run's options in state.layout_of,
and in `with_every_block`) plus, unless it is a product of a block the model has, its math in the
model's forward and backward passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

Views = dict[str, np.ndarray]


# Initial values, as the classic recipe and PyTorch start them: (rng, shape) -> array.
def small(rng, shape):
    """N(0, 0.01²): input and output weights."""
    return rng.standard_normal(shape) * 0.01


def recurrent(rng, shape):
    """N(0, 1/H): Whh's singular values start near 1, so the gradient neither dies nor blows up
    over the first few dozen steps."""
    return rng.standard_normal(shape) / np.sqrt(shape[0])


def standard(rng, shape):
    """N(0, 1): an embedding, or a style vector (PyTorch's nn.Embedding)."""
    return rng.standard_normal(shape)


def uniform_fan_in(rng, shape):
    """U(±1/sqrt(rows)): PyTorch's default for the layer after an embedding."""
    return rng.uniform(-1.0, 1.0, shape) / np.sqrt(shape[0])


@dataclass(frozen=True)
class Block:
    """One parameter block of the trained vector."""

    name: str
    shape: tuple[int, ...]
    start: int  # its first entry in the trained vector
    entry: str  # its name in a checkpoint
    init: Callable | None = None  # (rng, shape) -> its initial values; None: zeros
    of: tuple[str, str] | None = None  # a product: this block is of[0] @ of[1], rebuilt, not trained

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def decays(self) -> bool:
        """Weight decay's rule: every trained matrix, no bias, no product."""
        return len(self.shape) == 2 and self.of is None


# The order the initial values are drawn in, whatever the vector order: a model of one list draws
# Wxh, Whh and Why, so that it starts as it always did; style and embedding factors come after.
DRAW_ORDER = ("Wxh", "Whh", "Why", "S", "Wsh", "E", "Wih")
MODEL_BLOCKS = ("Whh", "bh", "Wxh", "B", "Why", "by")


@dataclass(frozen=True)
class Layout:
    """The blocks of a run's trained vector, from the sizes that decide them."""

    vocab_size: int
    hidden_size: int
    styles: int = 0  # K: name lists, each a style; 0 for a model of one list
    style_size: int = 0  # D
    embedding_size: int = 0  # with one, Wxh is trained as the product E Wih
    blocks: tuple[Block, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        V, H, K, D, E = self.vocab_size, self.hidden_size, self.styles, self.style_size, self.embedding_size
        specs = [  # name, shape, checkpoint entry, initial values, factors
            ("Whh", (H, H), "params/Whh", recurrent, None),
            ("bh", (H,), "params/bh", None, None),
            ("Wxh", (V, H), "params/Wxh", small, ("E", "Wih") if E else None),
            *([("B", (K, H), "params/B", None, ("S", "Wsh"))] if K else []),
            ("Why", (H, V), "params/Why", small, None),
            ("by", (V,), "params/by", None, None),
            *([("S", (K, D), "params/S", standard, None), ("Wsh", (D, H), "params/Wsh", uniform_fan_in, None)]
              if K else []),
            *([("E", (V, E), "factors/E", standard, None), ("Wih", (E, H), "factors/Wih", uniform_fan_in, None)]
              if E else []),
        ]
        blocks, start = [], 0
        for name, shape, entry, init, of in specs:
            blocks.append(Block(name, shape, start, entry, init, of))
            start += blocks[-1].size
        object.__setattr__(self, "blocks", tuple(blocks))

    @classmethod
    def with_every_block(cls) -> Layout:
        """A small layout holding every block there is (a checkpoint reads no other entries)."""
        return cls(2, 1, styles=2, style_size=1, embedding_size=1)

    def __getitem__(self, name: str) -> Block:
        return next(block for block in self.blocks if block.name == name)

    def __contains__(self, name: str) -> bool:
        return any(block.name == name for block in self.blocks)

    @property
    def size(self) -> int:
        """Entries of the trained vector."""
        return self.blocks[-1].end

    @property
    def model_size(self) -> int:
        """Entries of its prefix that the model samples with."""
        return self["by"].end

    @property
    def products(self) -> tuple[Block, ...]:
        return tuple(block for block in self.blocks if block.of)

    @property
    def decayed(self) -> np.ndarray:
        """(k, 2) [start, end) ranges of the entries weight decay shrinks, adjacent blocks merged."""
        ranges: list[list[int]] = []
        for block in self.blocks:
            if block.decays:
                if ranges and ranges[-1][1] == block.start:
                    ranges[-1][1] = block.end
                else:
                    ranges.append([block.start, block.end])
        return np.array(ranges, dtype=np.int64).reshape(-1, 2)

    def views(self, vector: np.ndarray) -> Views:
        """Named views into the trained vector (or its model prefix: then of the model's blocks
        only), and the stacked W_in = [Whh; bh; Wxh; B] and W_out = [Why; by]."""
        views = {block.name: vector[block.start : block.end].reshape(block.shape)
                 for block in self.blocks if block.end <= vector.size}
        H, V, K = self.hidden_size, self.vocab_size, self.styles
        rows = H + 1 + V + K
        views["W_in"] = vector[: rows * H].reshape(rows, H)
        views["W_out"] = vector[rows * H : rows * H + (H + 1) * V].reshape(H + 1, V)
        return views

    def initial(self, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
        """A fresh trained vector: each block's initial values drawn in DRAW_ORDER, biases zero,
        products built from their factors."""
        vector = np.zeros(self.size, dtype=dtype)
        views = self.views(vector)
        for name in DRAW_ORDER:
            if name in self and self[name].init is not None:
                views[name][...] = self[name].init(rng, self[name].shape)
        self.rebuild_(views)
        return vector

    def rebuild_(self, views: Views) -> None:
        """Each product from its factors, in place: after every step, since the factors moved."""
        for block in self.products:
            left, right = block.of
            np.dot(views[left], views[right], out=views[block.name])

    def pass_to_factors_(self, grads: Views, views: Views) -> None:
        """Each product's gradient to its factors (d left = d product rightᵀ, d right = leftᵀ d
        product), in place; the product's own gradient is then zeroed, so no step moves it."""
        for block in self.products:
            left, right = block.of
            np.dot(grads[block.name], views[right].T, out=grads[left])
            np.dot(views[left].T, grads[block.name], out=grads[right])
            grads[block.name][...] = 0.0

    def mismatched_product(self, views: Views) -> Block | None:
        """The first product that is not the product of its factors (to round-off), or None: a
        checkpoint that breaks one would sample one model and resume another."""
        with np.errstate(over="ignore", invalid="ignore"):
            for block in self.products:
                product = views[block.of[0]] @ views[block.of[1]]
                scale = max(1.0, float(np.abs(product).max(initial=0.0)))
                rtol, atol = (1e-9, 1e-12) if product.dtype == np.float64 else (1e-4, 1e-5)  # float32: 2^-23 = 1.2e-7
                if not np.allclose(views[block.name], product, rtol=rtol, atol=atol * scale):
                    return block
        return None
