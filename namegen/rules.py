"""What every line of a name list keeps, learned from its names: a drawn name that breaks one of
these rules could never have been a line of the data, so sampling draws it again.

The rules are learned when a model is trained and saved in its checkpoint (a file written before
they were is read by learning them from its names), so a list whose lines break a rule (codes with
inner capitals, an open bracket) keeps its names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum


class Rejection(str, Enum):
    """Why the sampler drew a name again (a str: JSON counts them under these names)."""

    TOO_LONG = "too_long"  # it ran past the longest length
    NOT_CLEAN = "not_clean"  # cleaning would change it: no line of the data could be it
    ODD_EDGE = "odd_edge"  # it begins or ends with a symbol no name of the data begins or ends with
    KNOWN = "known"  # one of the model's own names, with novel
    REPEATED = "repeated"  # drawn before, with unique
    SUFFIX = "suffix"  # it does not end as --suffix asks
    PATTERN = "pattern"  # it does not match --pattern in full
    CONTAINS = "contains"  # it lacks a text --contains asks for
    EXCLUDED = "excluded"  # it holds a text --exclude forbids
    USED = "used"  # one of the names of --exclude-names
    UNBALANCED = "unbalanced"  # a bracket or quote left open or closed unopened, which no name of the data does
    CAPITAL = "capital"  # a capital where no name of the data has one (inside a word, say)
    WORD_START = "word_start"  # a word begins with a kind of character (a digit, a mark) no word of the data begins with


PAIRS = ("()", "[]", "{}", '""', "«»")  # brackets and quotes: opening and closing (a quote: the same twice)
CAPITAL_PLACES = ("start", "after mark", "inside")  # see capital_places
KINDS = ("letter", "digit", "mark")


def balanced(name: str, pair: str) -> bool:
    """Whether `name` opens and closes `pair` properly: never closes more than it opened, and closes
    all it opened (a quote: an even number of them)."""
    opening, closing = pair
    if opening == closing:
        return name.count(opening) % 2 == 0
    depth = 0
    for c in name:
        depth += (c == opening) - (c == closing)
        if depth < 0:
            return False
    return depth == 0


def capital_places(name: str) -> set[str]:
    """Where `name` has capitals: "start" (a word's first character), "after mark" (after an
    apostrophe or hyphen: O'Brien, Jean-Luc), "inside" (after a letter or digit: McDonald)."""
    places = set()
    for i, c in enumerate(name):
        if c.isupper():
            before = name[i - 1] if i else " "
            places.add("start" if before.isspace() or not before.isalnum() and before not in "'’-"
                       else "after mark" if before in "'’-" else "inside")
    return places


def kind(c: str) -> str:
    return "letter" if c.isalpha() else "digit" if c.isdigit() else "mark"


def word_starts(name: str) -> set[str]:
    """The kinds of character (see KINDS) that begin the words of `name`."""
    return {kind(word[0]) for word in name.split(" ") if word}


@dataclass(frozen=True)
class Rules:
    """The structure every line of a name list keeps (characters sorted, the rest in the order of
    PAIRS, CAPITAL_PLACES and KINDS, so that equal rules are equal)."""

    starts: str  # the characters other than letters and digits that begin a name of the data
    ends: str  # and that end one
    balanced: tuple[str, ...]  # the pairs of PAIRS the data uses and keeps balanced in every name
    capital_places: tuple[str, ...]  # where the data has capitals (see capital_places)
    word_starts: tuple[str, ...]  # the kinds of character that begin a word of the data (see KINDS)

    @classmethod
    def of(cls, names: list[str]) -> Rules:
        """The rules `names` keep."""
        chars = set("".join(names))
        return cls("".join(sorted({n[0] for n in names if not n[0].isalnum()})),
                   "".join(sorted({n[-1] for n in names if not n[-1].isalnum()})),
                   tuple(pair for pair in PAIRS if chars & set(pair) and all(balanced(n, pair) for n in names)),
                   tuple(p for p in CAPITAL_PLACES if any(p in capital_places(n) for n in names)),
                   tuple(k for k in KINDS if any(k in word_starts(n) for n in names)))

    def broken_by(self, name: str) -> Rejection | None:
        """The first rule `name` breaks, or None."""
        if not (name[0].isalnum() or name[0] in self.starts) or not (name[-1].isalnum() or name[-1] in self.ends):
            return Rejection.ODD_EDGE
        if not all(balanced(name, pair) for pair in self.balanced):
            return Rejection.UNBALANCED
        if name != name.lower() and not capital_places(name) <= set(self.capital_places):
            return Rejection.CAPITAL
        if len(self.word_starts) < len(KINDS) and not word_starts(name) <= set(self.word_starts):
            return Rejection.WORD_START
        return None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, saved, chars: str) -> Rules | None:
        """The rules saved in a checkpoint whose vocabulary is `chars`; None if they are not rules."""
        if not isinstance(saved, dict) or set(saved) != {"starts", "ends", "balanced", "capital_places", "word_starts"}:
            return None
        starts, ends = saved["starts"], saved["ends"]
        if not (isinstance(starts, str) and isinstance(ends, str) and set(starts + ends) <= set(chars)):
            return None
        lists = {"balanced": PAIRS, "capital_places": CAPITAL_PLACES, "word_starts": KINDS}
        for name, allowed in lists.items():
            value = saved[name]
            if not (isinstance(value, list) and len(value) <= len(allowed) and all(v in allowed for v in value)):
                return None
        return cls(starts, ends, *(tuple(v for v in allowed if v in saved[name]) for name, allowed in lists.items()))
