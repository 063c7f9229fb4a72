"""Invent names from a model: many names in parallel, one matrix step per time step.

Sampling draws from its own numpy Generator, so the same seed always gives the same names.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .data import read_names
from .errors import DataError, OptionError, OptionName, SamplingError, plural, shortened
from . import fast
from .model import Model, Params, Rejection, blend_term, exp_shifted
from .options import check, option
from .threads import limited
from .vocab import BOUNDARY, Vocab

MAX_LENGTH = 100_000  # letters in a name, at most: one draw's ids must fit in memory with others
MOST_LIKELY = 10_000  # names --most-likely finds, at most: each keeps partial names and their hidden states
SIMILAR_TO_LENGTH = 1000  # letters of --similar-to's name, at most: its distance to each name costs their product


@dataclass(frozen=True)
class SampleConfig:
    """Every sampling option, with its default, allowed values and help; the CLI reads them here."""

    count: int = option(10, "How many names", at_least=1)
    temperature: float = option(1.0, "Below 1: safer names; above 1: wilder", above=0)
    top_k: int = option(0, "Draw each letter from the k likeliest only; 0: from all", at_least=0)
    top_p: float = option(1.0, "Draw each letter from the fewest likeliest letters whose probabilities (after "
                               "--temperature and --top-k) add up to at least p (nucleus sampling); 1: from all",
                          above=0, at_most=1)
    prefix: str = option("", "Every name starts with these letters")
    suffix: str = option("", "Every name ends with these letters (case as --prefix)")
    contains: tuple[str, ...] = option((), "Every name contains this text (given again: each of them)",
                                       default_text="none")
    exclude: tuple[str, ...] = option((), "No name contains this text, a letter or more (given again: any of them)",
                                      default_text="none")
    exclude_names: str = option("", "A file of names already used, one per line (UTF-8): none of them is printed; "
                                    "compared after cleaning, as --novel compares")
    pattern: str = option("", "Every name matches this regular expression in full (Python's re; without regard to "
                              "case where the model writes names in lower case), e.g. '.*th.*' or 'gal.*|.*iel'")
    min_length: int = option(1, "Shortest name, in letters; the end of name is held back until then",
                             at_least=1, at_most=MAX_LENGTH)
    max_length: int | None = option(None, "Longest name, in letters; longer draws are rejected", at_least=1,
                                    at_most=MAX_LENGTH, default_text="twice the longest training name, at least 20")
    novel: bool = option(False, "Only names that are not in the training list")
    unique: bool = option(False, "Never the same name twice")
    style: str = option("", "For a model of several lists: the style to sample in, by name ('elves'), or a blend "
                            "('elves=0.7,dwarves=0.3'); without it each name takes one list's style, as often as "
                            "that list's names", default_text="each list's in turn")
    similar_to: str = option("", "The names closest to this one (Damerau-Levenshtein distance on letters, case aside), "
                                 "closest first, among 100 names drawn per name asked (at least 2,000); needs "
                                 "pip install 'namegen[similar]'")
    most_likely: int = option(0, "Instead of drawing names: the N names the model finds likeliest, likeliest first, each "
                                 "with its log-probability (an exact search, with the constraints above; not with "
                                 "--temperature, --top-k or --top-p; --count does not apply)", at_least=0,
                              at_most=MOST_LIKELY)
    max_tries: int | None = option(None, "Names drawn before giving up on the filters (with --most-likely: partial "
                                         "names extended)", at_least=1, default_text="100 per name asked, at least 100,000 (with --most-likely: 50,000)")
    seed: int | None = option(None, "Seed for repeatable names", at_least=0, default_text="fresh each run")
    dtype: str = option("auto", "Numbers to draw in: float32 is about twice as fast at hidden size 256, the same "
                                "distribution to about 7 digits but other names for a seed; auto: float32 for a model "
                                "trained in it, or once count (or the draws so far) x hidden size x longest name reaches "
                                "1 million",
                        choices=("auto", "float64", "float32"))

    @property
    def constraints(self) -> dict:
        """The constraints asked for, by option: what every name printed meets."""
        asked = {name: getattr(self, name) for name in ("prefix", "suffix", "contains", "exclude", "exclude_names",
                                                         "pattern", "max_length", "novel", "unique")}
        asked["min_length"] = self.min_length if self.min_length > 1 else None
        return {name: value for name, value in asked.items() if value}

    def __post_init__(self):
        for name in ("contains", "exclude"):  # a list from Python or JSON is the same request
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        check(self)
        if self.max_length is not None and self.min_length > self.max_length:
            raise OptionError(OptionName("min_length"), f" {self.min_length} is greater than ",
                              OptionName("max_length"), f" {self.max_length}")
        for name in ("prefix", "suffix"):
            if self.max_length is not None and len(getattr(self, name)) > self.max_length:
                raise OptionError(OptionName(name), f" {shortened(getattr(self, name))} is longer than ",
                                  OptionName("max_length"), f" {self.max_length}")
        if len(self.similar_to) > SIMILAR_TO_LENGTH:
            raise OptionError(OptionName("similar_to"), f" is {len(self.similar_to):,} characters long; give a name of "
                              f"at most {SIMILAR_TO_LENGTH:,}")
        if self.most_likely and self.similar_to:
            raise OptionError(OptionName("most_likely"), " and ", OptionName("similar_to"), " are two ways to choose "
                              "names: give one")
        try:
            re.compile(self.pattern)
        except re.error as e:
            raise OptionError(OptionName("pattern"), f" {shortened(self.pattern)} is not a regular expression: {e}") from None


@limited
def generate(params: Params, n: int, rng: np.random.Generator, *, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, prefix_ids=(), min_length: int = 1, max_length: int = 20,
             bias=None, compiled: bool = False) -> list[list[int] | None]:
    """Draw n names at once; each is a list of ids, or None if it ran past max_length (see
    ended_rows for the options)."""
    out: list[list[int] | None] = [None] * n
    prefix_ids = list(prefix_ids)
    for rows, drawn, _ in ended_rows(params, n, rng, temperature=temperature, top_k=top_k, top_p=top_p,
                                     prefix_ids=prefix_ids, min_length=min_length, max_length=max_length, bias=bias,
                                     compiled=compiled):
        for row, ids in zip(rows.tolist(), drawn.tolist()):
            out[row] = prefix_ids + ids
    return out


class Banned:
    """The texts no name may hold, as an Aho-Corasick automaton over letter ids: each growing name
    carries one state, which one table lookup a letter advances, so a draw is stopped at the letter
    that completes a banned text, whatever the number of texts."""

    def __init__(self, texts: list[list[int]], vocab_size: int):
        children: list[dict[int, int]] = [{}]  # the trie of the texts: state -> {id: next state}
        done = [False]  # a text ends at this state
        for text in texts:
            state = 0
            for c in text:
                if c not in children[state]:
                    children.append({})
                    done.append(False)
                    children[state][c] = len(children) - 1
                state = children[state][c]
            done[state] = True
        self.next = np.zeros((len(children), vocab_size), dtype=np.intp)  # (S, V): the state after a letter
        fallback = [0] * len(children)  # the longest proper suffix of a state's text that is a state too
        queue = deque(children[0].values())
        self.next[0, list(children[0])] = list(children[0].values())
        while queue:  # breadth first: a state's fallback is shallower, so complete already
            state = queue.popleft()
            done[state] = done[state] or done[fallback[state]]  # "ab" banned: "cab" ends in it
            self.next[state] = self.next[fallback[state]]
            for c, child in children[state].items():
                fallback[child] = self.next[fallback[state], c] if state else 0
                self.next[state, c] = child
                queue.append(child)
        self.dead = np.array(done)  # (S,) the letters so far hold a banned text

    @classmethod
    def of(cls, vocab: Vocab, texts) -> Banned | None:
        """The automaton of `texts` (None if there are none); a text with a letter the model never
        writes can never appear, and is left out."""
        ids = [vocab.encode(text, "a banned text").tolist() for text in texts if text and not vocab.unknown(text)]
        return cls(ids, vocab.size) if ids else None


def ended_rows(params: Params, n: int, rng: np.random.Generator, *, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, prefix_ids=(), min_length: int = 1, max_length: int = 20, bias=None,
               banned: Banned | None = None, compiled: bool = False
               ) -> Iterator[tuple[np.ndarray, np.ndarray, Rejection | None]]:
    """Draw n names at once, and at each step yield the rows (of 0..n-1) whose names ended there,
    with their letters after the prefix, (len(rows), letters), and None; and the rows stopped there
    because their letters hold a text of `banned`, with their letters and Rejection.EXCLUDED.
    Rows never yielded ran past max_length.

    h_t feeds both the output and the next step, so each step is one matrix product, h_t [Whh | Why],
    and rows that end are dropped, so a step costs in proportion to the names still growing.
    bias: a model with styles' style term (see model.blend_term), (H,) for all names or (n, H),
    one per name. compiled: see next_product, and (at temperature 1 with every letter allowed: no
    top-k, no top-p) the draw with numba (fast.draw; float64): the same draws as numpy's.
    """
    H, V = params["Whh"].shape[0], params["Why"].shape[1]
    W = np.concatenate((params["Whh"], params["Why"]), axis=1)  # (H, H + V)
    prefix_ids = list(prefix_ids)
    P = len(prefix_ids)
    bh = params["bh"] if bias is None else params["bh"] + bias  # (H,) or (n, H)
    per_row = np.ndim(bh) == 2
    rows = np.arange(n)  # the names still growing
    state = np.zeros(n, dtype=np.intp)  # each one's state in banned
    product = np.zeros((n, H + V), dtype=W.dtype)  # h_{-1} [Whh | Why], h_{-1} = 0
    for token in (BOUNDARY, *prefix_ids):
        product = next_product(product, rows, np.full(n, token), bh, params["Wxh"], W, compiled)
        if banned and token != BOUNDARY:
            state = banned.next[state, token]
    drawn = np.empty((n, max(max_length - P, 0)), dtype=np.int64)
    simple = compiled and temperature == 1.0 and not 0 < top_k < V and top_p == 1.0
    for length in range(P, max_length + 1):  # letters so far
        u = rng.random(len(rows))
        if simple:
            ids = fast.draw(product, H, params["by"], u, length < min_length)
        else:
            ids = draw(product[:, H:] + params["by"], u, length < min_length, top_k, temperature, top_p)
        ended = ids == BOUNDARY
        if ended.any():
            yield rows[ended], drawn[rows[ended], : length - P], None
        if length == max_length:
            break  # the rest ran too long
        drawn[rows[~ended], length - P] = ids[~ended]
        if banned:
            state = banned.next[state, ids]
            stopped = banned.dead[state] & ~ended
            if stopped.any():
                yield rows[stopped], drawn[rows[stopped], : length - P + 1], Rejection.EXCLUDED
                ended |= stopped
        kept = np.flatnonzero(~ended)  # their rows in product
        rows, ids, state = rows[kept], ids[kept], state[kept]
        bh = bh[kept] if per_row else bh
        if not len(rows):
            break
        product = next_product(product, kept, ids, bh, params["Wxh"], W, compiled)


def next_product(product: np.ndarray, kept: np.ndarray, ids: np.ndarray, bh: np.ndarray, Wxh: np.ndarray,
                 W: np.ndarray, compiled: bool) -> np.ndarray:
    """h_t [Whh | Why] from the rows `kept` of h_{t-1} [Whh | Why]: h_t = tanh(h_{t-1} Whh + Wxh[ids] + bh).
    compiled: the letters' rows, the biases and tanh in one pass with numba (fast.input_tanh;
    float64): the same products as numpy's, tanh within 3 ulp."""
    if compiled:
        return np.dot(fast.input_tanh(product, kept, Wxh, ids, bh), W)
    H = W.shape[0]
    return np.dot(np.tanh(product[kept, :H] + Wxh[ids] + bh), W)


def draw(logits: np.ndarray, u: np.ndarray, no_end: bool, top_k: int = 0, temperature: float = 1.0,
         top_p: float = 1.0) -> np.ndarray:
    """One letter id per row of logits (changed in place), drawn from softmax(logits / temperature)
    over the top_k likeliest (0: all), then over the fewest likeliest whose probabilities add up to
    top_p (1: all), with the row's uniform u in [0, 1): the first id whose cumulative weight exceeds
    u times the row's total. no_end: the end of name is not allowed."""
    V = logits.shape[1]
    z = logits
    if no_end:
        z[:, BOUNDARY] = -np.inf
    if 0 < top_k < V:
        kth = np.partition(z, V - top_k, axis=1)[:, V - top_k, None]
        z[z < kth] = -np.inf
    if temperature != 1.0:
        # Only now subtract the largest logit left: every entry is then 0 or below, so dividing by
        # any temperature > 0, however small, leaves the largest at 0 and the row a distribution.
        z -= np.maximum.reduce(z, axis=1, keepdims=True)
        with np.errstate(over="ignore"):  # below 0 over a tiny temperature: -inf, probability exactly 0
            z /= temperature
    exp_z, total = exp_shifted(z)  # unnormalised: u below is drawn on the row's own total
    if top_p < 1.0:
        keep_nucleus_(exp_z, total, top_p)
    cdf = np.cumsum(exp_z, axis=1)
    scaled = u[:, None] * cdf[:, -1:]  # scaled so rounding never picks a zero-p id
    return (cdf <= scaled).sum(axis=1)


def keep_nucleus_(weights: np.ndarray, total: np.ndarray, top_p: float) -> None:
    """Zero, in place, every weight of a row but the fewest largest whose sum reaches top_p of the
    row's total: an entry stays if the weights larger than it (ties: those before it) sum to less."""
    order = np.argsort(-weights, axis=1, kind="stable")
    ranked = np.take_along_axis(weights, order, axis=1)
    before = np.cumsum(ranked, axis=1) - ranked
    dropped = np.empty_like(ranked, dtype=bool)
    np.put_along_axis(dropped, order, before >= top_p * total, axis=1)
    weights[dropped] = 0.0


# Tanh entries (names x hidden size x letters) from which float64 loads numba's helpers, when installed:
# loading them takes about 0.9 s (and 150 MB) and saves about 17 ns an entry of float64 (numpy's tanh is
# scalar here, float32's vectorised).
COMPILED_FROM = 60_000_000
# And from which --dtype auto draws in float32 (at hidden size 256, 350 names of 11 letters): half the
# time of float64's products and tanh, worth it from a few hundredths of a second.
FLOAT32_FROM = 1_000_000


def entries(model: Model, count: int) -> int:
    """The tanh entries of drawing `count` names of the model's longest length."""
    return count * model.hidden_size * model.longest_name


def number_format(model: Model, config: SampleConfig, drawn: int = 0) -> np.dtype:
    """What to draw in: --dtype, or with auto, float32 for a model trained in it, or for a request of
    FLOAT32_FROM entries or more, or once the `drawn` names so far make that many (twice the speed of
    float64's products and tanh and half their memory, the same distribution to about 7 digits, but
    other names for a seed), else float64."""
    if config.dtype != "auto":
        return np.dtype(config.dtype)
    large_enough = model.params.dtype == np.float32 or entries(model, max(config.count, drawn)) >= FLOAT32_FROM
    return np.dtype(np.float32 if large_enough else np.float64)


def compiled_for(model: Model, count: int, dtype=np.float64) -> bool:
    """Whether drawing `count` names from `model` in `dtype` is worth the compiled step (see COMPILED_FROM)."""
    if dtype != np.float64 or entries(model, count) < COMPILED_FROM:
        return False
    return fast.available() and (fast.load("sampling"), fast.usable("sampling"))[1]


FEWEST_TRIES = 100_000  # draws allowed by default, however few names are asked: a shape 1 draw in 500 has
# (an ending of three letters) gives 20 names in 10,000 draws on average, and often needs twice as many
DEFAULT_MAX_LENGTH_CAP = 1000  # a default, not a limit: max_length may ask for more
DRAW_BUFFER = 4_000_000  # ids held at once while drawing (32 MB): bounds the names per batch
FIRST_BATCH = 1024  # names drawn in the first batch; each next one twice as many, up to DRAW_BUFFER's bound
MOST_AT_ONCE = 8192  # and at most this many: beyond, a step's arrays leave the cache (hidden 256, float64:
# 90,000 names at once make the matrix products 1.5x slower than 8,192)


def default_max_length(model: Model) -> int:
    """Twice the longest training name, at least 20, at most DEFAULT_MAX_LENGTH_CAP."""
    return min(DEFAULT_MAX_LENGTH_CAP, max(20, 2 * model.longest_name))


def sample(model: Model, config: SampleConfig, rng: np.random.Generator | None = None,
           rejected: Counter | None = None) -> list[str]:
    """Names that meet every option in config, displayed as the data was (capitalised or not).

    rng: the generator to draw from; None makes one from config.seed.
    rejected: if given, counts the draws that were not kept, by reason (see draws).
    Raises SamplingError, holding the names found so far, if the allowed draws do not suffice.
    """
    try:
        return [drawn.name for drawn in sampled(model, config, rng, rejected)]
    except SamplingError as e:
        raise SamplingError(*e.parts, found=[drawn.name for drawn in e.found]) from None


def sampled(model: Model, config: SampleConfig, rng: np.random.Generator | None = None,
            rejected: Counter | None = None) -> list[Drawn]:
    """The names of `sample`, each with what it was drawn with (see Drawn); a SamplingError holds
    the Drawn found so far."""
    found: list[Drawn] = []
    try:
        for drawn in draws(model, config, rng, rejected):
            found.append(drawn)
    except SamplingError as e:
        raise SamplingError(*e.parts, found=found) from None
    return found


def style_weights(model: Model, text: str) -> np.ndarray | None:
    """The style weights --style asks for: 'elves' is 1 on elves; 'elves=0.7,dwarves=0.3' a blend,
    scaled to sum to 1 (each weight divided by the largest first, so no sum overflows). None for no
    --style. An OptionError names what is wrong and the styles."""
    if not text:
        return None
    if not model.styles:
        raise OptionError(OptionName("style"), " needs a model trained on several name lists (train with ",
                          OptionName("data"), " given once per list); this one learned one")
    known = ", ".join(style if len(style) <= 40 else style[:40] + "…" for style in model.styles)
    parts = []
    for part in text.split(","):
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if name not in model.styles:
            raise OptionError(OptionName("style"), f" {shortened(name)} is not one of this model's styles: {known}")
        try:
            weight = float(value) if equals else 1.0
        except ValueError:
            weight = math.nan
        if math.isinf(weight) and weight > 0:
            raise OptionError(OptionName("style"), f" weight {shortened(value)} of {name} is not a finite number "
                              "(weights are relative: 1 and 3 blend as 1e300 and 3e300 do)")
        if not (math.isfinite(weight) and weight >= 0):
            raise OptionError(OptionName("style"), f" weight {shortened(value)} of {name} must be a number of at least 0")
        parts.append((model.styles.index(name), weight))
    largest = max(weight for _, weight in parts)
    if not largest > 0:
        raise OptionError(OptionName("style"), f" weights must not all be 0 (styles: {known})")
    weights = np.zeros(len(model.styles))
    for k, weight in parts:
        weights[k] += weight / largest  # at most 1 each: the sum stays finite
    return weights / weights.sum()


def drawn_names(model: Model, params: Params, config: SampleConfig, count: int, rng: np.random.Generator,
                prefix: str, prefix_ids: list[int], max_length: int, weights: np.ndarray | None, banned: Banned | None,
                compiled: bool) -> tuple[list[str | Rejection], np.ndarray | None]:
    """`count` names drawn at once, starting with `prefix` (cleaned; its ids `prefix_ids`), in the
    style `weights` ask for (None: each in one list's, drawn here); in place of a name, why it was
    stopped: TOO_LONG if it ran past max_length, EXCLUDED once it held a text of `banned`. And the
    style each was drawn in, (count,), where it was drawn here (else None). params: the model's, in
    the number format to draw in."""
    bias = styles = None
    if weights is not None:
        bias = blend_term(params, weights)
    elif model.styles:  # each name in one list's style, as often as the list's names
        styles = rng.choice(len(model.styles), size=count, p=model.style_shares)
        bias = params["B"][styles]
    names: list[str | Rejection] = [Rejection.TOO_LONG] * count
    for rows, drawn, stopped in ended_rows(params, count, rng, temperature=config.temperature, top_k=config.top_k,
                                           top_p=config.top_p, prefix_ids=prefix_ids, min_length=config.min_length,
                                           max_length=max_length, bias=bias, banned=banned, compiled=compiled):
        if stopped:
            for row in rows.tolist():
                names[row] = stopped
        else:
            for row, rest in zip(rows.tolist(), model.vocab.decode_rows(drawn)):
                names[row] = prefix + rest
    return names, styles


@dataclass(frozen=True)
class Shape:
    """What --suffix, --contains, --exclude and --pattern ask of a name's letters, as the model writes them."""

    suffix: str
    contains: tuple[str, ...]
    exclude: tuple[str, ...]
    pattern: re.Pattern | None
    used: frozenset[str] = frozenset()  # the names of --exclude-names, cleaned as the model cleans
    banned: Banned | None = field(default=None, compare=False)  # exclude, to stop a draw as soon as it holds one

    @classmethod
    def of(cls, model: Model, config: SampleConfig, max_length: int) -> Shape:
        """The shape asked for; a SamplingError if no name could have it."""
        def letters(text: str) -> str:
            text = unicodedata.normalize("NFC", text)
            return text if model.keep_case else text.lower()

        suffix, contains = letters(config.suffix), tuple(letters(text) for text in config.contains if text)
        exclude = tuple(letters(text) for text in config.exclude if text)
        for name, text in [("suffix", suffix)] * bool(suffix) + [("contains", text) for text in contains]:
            if model.vocab.unknown(text):
                raise SamplingError(*model.vocab.unknown_error(text, f"--{name}").parts)
            if len(text) > max_length:
                raise SamplingError(OptionName(name), f" {shortened(text)} is longer than the longest name drawn "
                                    f"({max_length} letters); ask for more with ", OptionName("max_length"))
            for banned in exclude:
                if banned in text:
                    raise SamplingError(OptionName(name), f" {shortened(text)} holds ", OptionName("exclude"),
                                        f" {shortened(banned)}: no name can have both")
        prefix = model.clean_prefix(config.prefix)
        for banned in exclude:
            if banned in prefix:
                raise SamplingError(OptionName("prefix"), f" {shortened(prefix)} holds ", OptionName("exclude"),
                                    f" {shortened(banned)}: no name can have both")
        flags = 0 if model.keep_case else re.IGNORECASE
        used = frozenset(map(model.clean, read_names(config.exclude_names, "keep").names)) if config.exclude_names \
            else frozenset()
        return cls(suffix, contains, exclude, re.compile(config.pattern, flags) if config.pattern else None, used,
                   Banned.of(model.vocab, [text for text in exclude if len(text) <= max_length]))  # a longer one cannot occur

    @property
    def anything(self) -> bool:
        """Whether it asks anything of a name."""
        return bool(self.suffix or self.contains or self.exclude or self.pattern or self.used)

    def misses(self, name: str) -> Rejection | None:
        """Why `name` does not have this shape, or None."""
        if not name.endswith(self.suffix):
            return Rejection.SUFFIX
        if not all(text in name for text in self.contains):
            return Rejection.CONTAINS
        if any(text in name for text in self.exclude):
            return Rejection.EXCLUDED
        if self.pattern is not None and not self.pattern.fullmatch(name):
            return Rejection.PATTERN
        return Rejection.USED if name in self.used else None


def prepared(model: Model, config: SampleConfig) -> tuple[str, list[int], int, Shape, np.ndarray | None]:
    """What a request asks of every name, checked before any is drawn: the prefix cleaned and its
    ids, the longest length, the shape, the style weights (see style_weights)."""
    prefix = model.clean_prefix(config.prefix)
    try:
        ids = model.vocab.encode(prefix, "the prefix").tolist()
    except DataError as e:  # the vocabulary's message, as a sampling request that cannot be met
        raise SamplingError(*e.parts) from None
    max_length = config.max_length or max(default_max_length(model), len(prefix), config.min_length)
    return prefix, ids, max_length, Shape.of(model, config, max_length), style_weights(model, config.style)


class Tally(Counter):
    """The draws not kept, by reason (a Counter, as `rejected` is everywhere), and the draws kept."""

    kept = 0


@dataclass(frozen=True)
class Drawn:
    """A name as sampling hands it out, and what it was drawn with."""

    name: str  # as shown: capitalised where the data was
    cleaned: str  # as the model writes it
    style: str | None = None  # for a model of several lists: the style (or --style's blend) it was drawn in
    distance: int | None = None  # with --similar-to: its edit distance to that name (see similar.similar)


def stream(model: Model, config: SampleConfig, rng: np.random.Generator | None = None,
           rejected: Counter | None = None) -> Iterator[str]:
    """The names of `sample`, each as soon as it is drawn (see draws)."""
    return (drawn.name for drawn in draws(model, config, rng, rejected))


def draws(model: Model, config: SampleConfig, rng: np.random.Generator | None = None,
          rejected: Counter | None = None) -> Iterator[Drawn]:
    """The names of `sample`, each as soon as it is drawn, keeping none of them (but with
    config.unique, which must remember them): for counts too large to hold. Raises SamplingError
    after the last name it found if the allowed draws do not suffice.

    A draw is rejected, and counted in `rejected` by reason, if it ran past the longest length
    (TOO_LONG), could never be a line of the data (Model.unlike_data: NOT_CLEAN, ODD_EDGE,
    UNBALANCED, CAPITAL, WORD_START), or is known (KNOWN, with novel) or repeats a name (REPEATED, with
    unique), or has not the shape --suffix, --contains, --exclude and --pattern ask for (SUFFIX,
    CONTAINS, EXCLUDED, PATTERN; a draw is stopped as soon as it holds an excluded text), or is
    one of the names of --exclude-names (USED): see model.Rejection. A rejected draw is drawn
    again, so the names follow the model's distribution conditioned on every constraint.
    """
    rejected = Counter() if rejected is None else rejected
    rng = np.random.default_rng(config.seed) if rng is None else rng
    prefix, ids, max_length, shape, weights = prepared(model, config)
    budget = config.max_tries or max(FEWEST_TRIES, 100 * config.count)
    params = {}  # the model's, in each number format drawn in
    taken: set[str] = set()
    found = tries = 0
    ramp = FIRST_BATCH  # batches start small and double, so that the first names come at once
    while found < config.count and tries < budget:
        # a fifth more than the draws the names still wanted need at the share kept so far (a rare
        # shape: many); what a batch draws beyond the last name wanted is wasted
        wanted = 6 * (config.count - found) * (tries + 1) // (5 * (found + 1))
        batch = min(budget - tries, max(64, wanted), ramp, MOST_AT_ONCE, max(1, DRAW_BUFFER // max_length))
        ramp *= 2
        dtype = number_format(model, config, tries + batch)
        if dtype not in params:
            params[dtype] = {name: view.astype(dtype, copy=False) for name, view in model.param_views.items()}
        compiled = compiled_for(model, max(config.count, tries), dtype)
        names, styles = drawn_names(model, params[dtype], config, batch, rng, prefix, ids, max_length, weights,
                                    shape.banned, compiled)
        for row, name in enumerate(names):
            tries += 1
            why = name if isinstance(name, Rejection) else model.unlike_data(name) or (
                shape.anything and shape.misses(name)) or (
                Rejection.KNOWN if config.novel and model.knows(name) else
                Rejection.REPEATED if config.unique and name in taken else None)
            if why:
                rejected[why] += 1
                continue
            if config.unique:
                taken.add(name)
            found += 1
            if isinstance(rejected, Tally):
                rejected.kept += 1
            yield Drawn(model.display(name), name, config.style or None if styles is None else model.styles[styles[row]])
            if found == config.count:
                break
    if found < config.count:
        wanted = " ".join(w for w, on in (("novel", config.novel), ("unique", config.unique)) if on)
        raise SamplingError(f"found only {found} of {plural(config.count, (wanted + ' ' if wanted else '') + 'name')} "
                            f"in {plural(tries, 'draw')}", *rarest(rejected))


# What each reason for drawing again says, and the option that asked for it (None: the model's own).
REJECTED_BY = {
    Rejection.TOO_LONG: ("ran past the longest length", "max_length"), Rejection.NOT_CLEAN: ("were not clean", None),
    Rejection.ODD_EDGE: ("began or ended oddly", None), Rejection.KNOWN: ("were training names", "novel"),
    Rejection.REPEATED: ("repeated a name", "unique"), Rejection.SUFFIX: ("did not end as asked", "suffix"),
    Rejection.CONTAINS: ("lacked a text asked for", "contains"), Rejection.EXCLUDED: ("held an excluded text", "exclude"),
    Rejection.PATTERN: ("did not match the pattern", "pattern"), Rejection.USED: ("were names already used", "exclude_names"),
    Rejection.UNBALANCED: ("left a bracket or quote open", None), Rejection.CAPITAL: ("had a capital out of place", None),
    Rejection.WORD_START: ("began a word with a digit or mark no word of the data begins with", None),
}


def rarest(rejected: Counter) -> tuple:
    """The end of the message of a request that ran out of draws: which constraint turned most of them
    away, and what would help."""
    asked = [(count, why) for why, count in rejected.items() if REJECTED_BY.get(why, (None, None))[1]]
    if not asked:
        return ("; ask for fewer, or allow more draws with ", OptionName("max_tries"))
    count, why = max(asked)
    words, name = REJECTED_BY[why]
    return (f"; {count} of them {words} (", OptionName(name), "); ask for fewer, relax ", OptionName(name),
            ", or allow more draws with ", OptionName("max_tries"))
