"""Invent names from a trained model: many names in parallel, one matrix step per time step.

Sampling draws from its own numpy Generator, so the same seed always gives the same names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import clean_name
from .errors import SamplingError
from .model import Params, softmax, step
from .state import TrainState
from .vocab import BOUNDARY, Vocab


@dataclass(frozen=True)
class SampleConfig:
    """Every sampling option; the CLI's defaults come from here."""

    count: int = 10  # how many names to return
    temperature: float = 1.0  # divides the logits: below 1 is safer, above 1 wilder
    top_k: int = 0  # draw each character from the k likeliest only (0: from all)
    prefix: str = ""  # every name starts with these letters
    min_length: int = 1  # shortest name, in characters (the end token is held back until then)
    max_length: int = 0  # longest name; longer draws are rejected (0: see default_max_length)
    novel: bool = False  # only names that are not in the training list
    unique: bool = False  # never the same name twice
    max_tries: int = 0  # names drawn before giving up on the filters (0: 100 per name asked, at least 10,000)

    def validate(self) -> None:
        checks = [
            (self.count >= 1, "count must be at least 1"),
            (math.isfinite(self.temperature) and self.temperature > 0, "temperature must be a positive number"),
            (self.top_k >= 0, "top_k must be 0 (off) or positive"),
            (self.min_length >= 1, "min_length must be at least 1"),
            (self.max_length >= 0, "max_length must be 0 (automatic) or positive"),
            (not self.max_length or self.min_length <= self.max_length, "min_length must not exceed max_length"),
            (not self.max_length or len(self.prefix) <= self.max_length, "the prefix is longer than max_length"),
            (self.max_tries >= 0, "max_tries must be 0 (automatic) or positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def generate(params: Params, n: int, rng: np.random.Generator, *, temperature: float = 1.0,
             top_k: int = 0, prefix_ids=(), min_length: int = 1, max_length: int = 20) -> list[list[int] | None]:
    """Draw n names at once; each is a list of ids, or None if it ran past max_length.

    Rows that end are dropped from the batch, so each step costs in proportion to the names
    still growing.
    """
    V, H = params["Why"].shape[1], params["Whh"].shape[0]
    prefix_ids = list(prefix_ids)
    h = np.zeros((n, H))
    h, logits = step(params, h, np.full(n, BOUNDARY))
    for c in prefix_ids:
        h, logits = step(params, h, np.full(n, c))
    out: list[list[int] | None] = [None] * n
    rows = np.arange(n)  # the names still growing
    drawn = np.empty((n, max(max_length - len(prefix_ids), 0)), dtype=np.int64)
    for length in range(len(prefix_ids), max_length + 1):
        # subtract the max first: any temperature > 0, however small or large, stays finite
        z = (logits - np.maximum.reduce(logits, axis=1, keepdims=True)) / temperature
        if length < min_length:
            z[:, BOUNDARY] = -np.inf
        if 0 < top_k < V:
            kth = np.partition(z, V - top_k, axis=1)[:, V - top_k, None]
            z[z < kth] = -np.inf
        cdf = np.cumsum(softmax(z), axis=1)
        u = rng.random((len(rows), 1)) * cdf[:, -1:]  # scaled so rounding never picks a zero-p id
        ids = (cdf <= u).sum(axis=1)
        ended = ids == BOUNDARY
        for row in rows[ended]:
            out[row] = prefix_ids + drawn[row, : length - len(prefix_ids)].tolist()
        if length == max_length:
            break  # the rest ran too long: they stay None
        rows, ids, h = rows[~ended], ids[~ended], h[~ended]
        if not len(rows):
            break
        drawn[rows, length - len(prefix_ids)] = ids
        h, logits = step(params, h, ids)
    return out


def display(name: str, capitalize: bool) -> str:
    return name[:1].upper() + name[1:] if capitalize else name


def prefix_ids(vocab: Vocab, prefix: str) -> list[int]:
    missing = vocab.unknown(prefix)
    if missing:
        raise SamplingError(
            f"the prefix {prefix!r} uses {''.join(missing)!r}, which the model never saw; "
            f"it knows {''.join(c for c in vocab.chars if c.isprintable() and not c.isspace())!r}"
        )
    return vocab.encode(prefix).tolist()


DEFAULT_MAX_LENGTH_CAP = 1000  # a default, not a limit: --max-length may ask for more
DRAW_BUFFER = 4_000_000  # ids held at once while drawing (32 MB): bounds the names per batch


def default_max_length(state: TrainState) -> int:
    """Twice the longest training name, at least 20, at most DEFAULT_MAX_LENGTH_CAP."""
    return min(DEFAULT_MAX_LENGTH_CAP, max(20, 2 * max(len(name) for name in state.names)))


def sample(state: TrainState, config: SampleConfig, rng: np.random.Generator) -> list[str]:
    """Names that meet every option in config, displayed as the data was (capitalised or not).

    Raises SamplingError, holding the names found so far, if max_tries draws do not suffice.
    """
    config.validate()
    prefix = clean_name(config.prefix, state.config.keep_case) if config.prefix else ""
    ids = prefix_ids(state.vocab, prefix)
    max_length = config.max_length or max(default_max_length(state), len(prefix))
    budget = config.max_tries or max(10_000, 100 * config.count)
    params = state.param_views
    found: list[str] = []
    taken: set[str] = set()
    tries = 0
    while len(found) < config.count and tries < budget:
        batch = min(budget - tries, max(64, 2 * (config.count - len(found))), max(1, DRAW_BUFFER // max_length))
        for drawn in generate(params, batch, rng, temperature=config.temperature, top_k=config.top_k,
                              prefix_ids=ids, min_length=config.min_length, max_length=max_length):
            tries += 1
            if drawn is None:
                continue
            name = state.vocab.decode(drawn)
            if (config.novel and state.knows(name)) or (config.unique and name in taken):
                continue
            found.append(name)
            taken.add(name)
            if len(found) == config.count:
                break
    shown = [display(name, state.capitalize) for name in found]
    if len(found) < config.count:
        wanted = " ".join(w for w, on in (("novel", config.novel), ("unique", config.unique)) if on)
        raise SamplingError(
            f"found only {len(found)} of {config.count} {wanted + ' ' if wanted else ''}names in "
            f"{tries} draws; ask for fewer, or relax --novel/--unique/--prefix/length limits",
            found=shown,
        )
    return shown
