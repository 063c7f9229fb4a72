"""Names that sound like a given one: a pool of drawn names, ranked by their edit distance to it.

The distance is Damerau-Levenshtein (insertions, deletions, substitutions and swaps of two letters
side by side each count 1), from rapidfuzz (the optional extra namegen[similar]), which computes it
in C for the whole pool at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from .errors import OptionError, OptionName, SamplingError
from .evaluation import drawn_nll
from .model import Model
from .sampling import Drawn, SampleConfig, sampled


def pool_size(count: int) -> int:
    """The names drawn to choose the `count` closest from: 100 per name asked, at least 2,000."""
    return max(2000, 100 * count)


def similar(model: Model, config: SampleConfig, rejected: Counter | None = None) -> list[Drawn]:
    """The config.count names closest to config.similar_to among pool_size(config.count) distinct
    names drawn with every other option of config, closest first, each with its distance.

    Letters are compared as the model writes them and without regard to case (Gal and gal are the
    same name here); the name itself (distance 0) is left out, since it is not a new name. Ties go
    to the name the model finds likelier, then to the first in alphabetical order. If the draws run
    out before the pool is full, the names drawn are ranked all the same; a SamplingError holds
    them if they are fewer than config.count.
    """
    try:
        from rapidfuzz.distance import DamerauLevenshtein
        from rapidfuzz.process import cdist
    except ImportError:
        raise OptionError(OptionName("similar_to"), " needs rapidfuzz: pip install 'namegen[similar]'") from None
    target = model.clean(config.similar_to).lower()
    if not target:
        raise OptionError(OptionName("similar_to"), " needs a name with a letter")
    problem = None
    try:
        pool = sampled(model, replace(config, count=pool_size(config.count), unique=True, similar_to=""),
                       rejected=rejected)
    except SamplingError as e:
        pool, problem = e.found, e
    pool = [drawn for drawn in pool if drawn.cleaned.lower() != target]
    distances = cdist([target], [drawn.cleaned.lower() for drawn in pool], scorer=DamerauLevenshtein.distance,
                      workers=1)[0].tolist() if pool else []
    nats = drawn_nll(model, pool, config.style).tolist()
    order = sorted(range(len(pool)), key=lambda i: (distances[i], nats[i], pool[i].cleaned))
    closest = [replace(pool[i], distance=int(distances[i])) for i in order[: config.count]]
    if len(closest) < config.count:
        raise SamplingError(f"found only {len(closest)} names to rank by closeness to {config.similar_to!r}",
                            *(problem.parts[1:] if problem else ()), found=closest)
    return closest
