"""The names a model finds most likely: an exact best-first search over its letters.

A name's probability only falls as letters are added, so the likeliest name still unseen is always
at the front of a queue ordered by probability: no beam width to choose, and no name missed.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from .errors import OptionError, OptionName, SamplingError, plural
from .model import Model, Rejection, exp_shifted, step
from .sampling import SampleConfig, Shape, prepared, rarest

EXPANDED_AT_ONCE = 256  # partial names given their next letter in one matrix step
MOST_EXTENDED = 50_000  # partial names extended by default before giving up: each keeps its hidden state
# (hidden size 256, float64: 100 MB), and on the shipped model 100,000 take about 1.3 s


@dataclass(frozen=True)
class Likely:
    """One of the likeliest names."""

    name: str  # as shown: capitalised where the data was
    cleaned: str  # as the model writes it
    nats: float  # -log p(name) under the model: its letters and its end, the prefix's included


def most_likely(model: Model, config: SampleConfig) -> list[Likely]:
    """The config.most_likely names the model finds likeliest, likeliest first, among the names that
    meet every constraint of config (prefix, lengths, suffix, contains, exclude, pattern, names
    already used, novel; unique by construction), under the model itself: no temperature, top-k or
    top-p. Exact: a partial name is taken off a queue ordered by its probability, given each next
    letter, and put back as its longer names; a whole name that reaches the front is likelier than
    any name not yet found. Partial names that cannot beat the n-th likeliest whole name met so far
    are dropped, and an excluded text stops a partial name at once (sampling.Banned).

    Raises SamplingError, holding the names found (each one exact), when config.max_tries partial
    names (default: 100 per name asked, at least MOST_EXTENDED) were extended first.
    """
    for name, unused in (("temperature", 1.0), ("top_k", 0), ("top_p", 1.0)):
        if getattr(config, name) != unused:
            raise OptionError(OptionName("most_likely"), " ranks names by the model's own probability; ",
                              OptionName(name), " does not apply")
    if model.styles and not config.style:
        raise OptionError(OptionName("most_likely"), " on a model of several lists needs ", OptionName("style"),
                          f" (one of {', '.join(model.styles)}, or a blend)")
    prefix, prefix_ids, max_length, shape, weights = prepared(model, config)
    search = Search(model.in_style(weights) if model.styles else model, config, shape, max_length)
    search.start(prefix_ids)
    budget = config.max_tries or max(MOST_EXTENDED, 100 * config.most_likely)
    while len(search.found) < config.most_likely and search.queue and search.expanded < budget:
        search.advance(budget - search.expanded)
    found = [Likely(model.display(cleaned), cleaned, nats) for cleaned, nats in search.found]
    if len(found) < config.most_likely:
        met = search.whole + sum(search.rejected.values())
        raise SamplingError(f"found only {len(found)} of the {config.most_likely} likeliest names",
                            *((": no other name meets the constraints",) if not search.queue else
                              (f" in {plural(search.expanded, 'partial name')} extended, which met "
                               f"{plural(met, 'whole name')}", *rarest(search.rejected))), found=found)
    return found


class Search:
    """The queue of a best-first search: entries (nats, order, node, letter), letter None for a whole
    name. A node is a partial name given its letters: its hidden state, parent and last letter."""

    def __init__(self, model: Model, config: SampleConfig, shape: Shape, max_length: int):
        self.model, self.config, self.shape, self.max_length = model, config, shape, max_length
        self.params = model.param_views
        self.queue: list[tuple] = []
        self.order = 0  # ties leave the queue in the order they came
        self.found: list[tuple[str, float]] = []  # (cleaned name, nats), likeliest first
        self.ends: list[float] = []  # min-heap of -nats of the best whole names met: a bound on the n-th
        self.hidden: list[np.ndarray] = []  # per node: h after its last letter, (H,)
        self.parent: list[int] = []
        self.letter: list[int] = []
        self.length: list[int] = []
        self.state: list[int] = []  # per node: its state in shape.banned
        self.expanded = 0
        self.whole = 0  # whole names met that meet the constraints
        self.rejected: dict = {}

    def push(self, nats: float, node: int, letter: int | None) -> None:
        heapq.heappush(self.queue, (nats, self.order, node, letter))
        self.order += 1

    def bound(self) -> float:
        """Nats above which a partial name cannot be among the names asked for."""
        return -self.ends[0] if len(self.ends) == self.config.most_likely else math.inf

    def start(self, prefix_ids: list[int]) -> None:
        """The root node: the start of name and the prefix read, the prefix's nats counted."""
        self.prefix_ids = prefix_ids
        h, logits = step(self.params, np.zeros((1, self.model.hidden_size)), np.zeros(1, dtype=np.intp))
        nats, state = 0.0, 0
        for letter in prefix_ids:
            nats -= float(log_softmax(logits)[0, letter])
            h, logits = step(self.params, h, np.array([letter]))
            if self.shape.banned:
                state = int(self.shape.banned.next[state, letter])
        self.add_nodes(h, [-1], [-1], [len(prefix_ids)], [state])
        self.children(0, nats, log_softmax(logits)[0])

    def add_nodes(self, h, parents, letters, lengths, states) -> int:
        first = len(self.hidden)
        self.hidden.extend(h)
        self.parent += parents
        self.letter += letters
        self.length += lengths
        self.state += states
        return first

    def cleaned(self, node: int) -> str:
        """The node's name: the prefix and the letters up to it."""
        ids = []
        while self.letter[node] >= 0:
            ids.append(self.letter[node])
            node = self.parent[node]
        return self.model.vocab.decode(self.prefix_ids + ids[::-1])

    def advance(self, allowed: int) -> None:
        """Hand out the whole names at the front; then give the next partial names (up to
        EXPANDED_AT_ONCE, and none behind a whole name) their next letter, in one step."""
        batch = []
        while self.queue and len(batch) < min(EXPANDED_AT_ONCE, allowed):
            nats, _, node, letter = self.queue[0]
            if letter is None:
                if batch:  # a partial name taken before it may still have a likelier name
                    break
                heapq.heappop(self.queue)
                self.found.append((self.cleaned(node), nats))
                if len(self.found) == self.config.most_likely:
                    return
                continue
            if nats >= self.bound():
                heapq.heappop(self.queue)  # the bound fell since it was queued
                continue
            batch.append(heapq.heappop(self.queue))
        if not batch:
            return
        nodes = [node for _, _, node, _ in batch]
        letters = np.array([letter for _, _, _, letter in batch])
        h, logits = step(self.params, np.array([self.hidden[node] for node in nodes]), letters)
        states = [int(self.shape.banned.next[self.state[node], letter]) if self.shape.banned else 0
                  for node, letter in zip(nodes, letters.tolist())]
        first = self.add_nodes(h, nodes, letters.tolist(), [self.length[node] + 1 for node in nodes], states)
        self.expanded += len(batch)
        log_p = log_softmax(logits)  # (len(batch), V), in one call for the batch
        for row, (nats, *_) in enumerate(batch):
            self.children(first + row, nats, log_p[row])

    def children(self, node: int, nats: float, log_p: np.ndarray) -> None:
        """Queue the node's whole name (if it meets the constraints) and its longer names (if they
        can still be among those asked for)."""
        length = self.length[node]
        if self.config.min_length <= length and length:
            end = nats - float(log_p[0])
            if end < self.bound():
                cleaned = self.cleaned(node)
                why = self.model.unlike_data(cleaned) or self.shape.misses(cleaned) or (
                    Rejection.KNOWN if self.config.novel and self.model.knows(cleaned) else None)
                if why:
                    self.rejected[why] = self.rejected.get(why, 0) + 1
                else:
                    self.whole += 1
                    self.push(end, node, None)
                    heapq.heappush(self.ends, -end)
                    if len(self.ends) > self.config.most_likely:
                        heapq.heappop(self.ends)
        if length == self.max_length:
            return
        bound, banned = self.bound(), self.shape.banned
        for letter in np.flatnonzero(nats - log_p[1:] < bound).tolist():
            letter += 1
            if not (banned and banned.dead[banned.next[self.state[node], letter]]):
                self.push(nats - float(log_p[letter]), node, letter)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the vocabulary, in float64, by the model's one stable softmax (exp_shifted)."""
    z = np.array(logits, dtype=np.float64)
    _, total = exp_shifted(z)  # shifts z so each row's largest entry is 0
    return z - np.log(total)
