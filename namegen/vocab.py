"""Characters <-> integer ids, with id 0 reserved for the name boundary: the one encoder of names.

The boundary token is the input at step 0 (start of name) and the target after the last character
(end of name), so one reserved id serves both roles and the vocabulary is built from the data.
Every name is encoded here, through one lookup table, and a character the model never saw is
refused here, with one message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import DataError, shortened

BOUNDARY = 0  # id of the start/end-of-name token
ENCODE_CHUNK = 65536  # names encoded per step: bounds the temporary arrays


@dataclass(frozen=True)
class Encoded:
    """Many names as one id sequence: BOUNDARY name_1 BOUNDARY name_2 ... name_N BOUNDARY.

    A name's training pair is two views of it, inputs = seq[a:b] and targets = seq[a+1:b+1] with
    a, b its boundaries, so a million names cost one array, not millions of small ones.
    """

    seq: np.ndarray  # (chars + N + 1,) int32 ids
    bounds: np.ndarray  # (N + 1,) positions of the boundaries in seq

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @property
    def lengths(self) -> np.ndarray:
        """(N,) characters in each name."""
        return np.diff(self.bounds) - 1

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of name i, each (T+1,): [BOUNDARY, c_1..c_T] and [c_1..c_T, BOUNDARY]."""
        a, b = self.bounds[i], self.bounds[i + 1]
        return self.seq[a:b], self.seq[a + 1 : b + 1]

    def ids(self, i: int) -> np.ndarray:
        """The ids of name i's characters, without boundaries."""
        return self.seq[self.bounds[i] + 1 : self.bounds[i + 1]]


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # the characters seen in the data, sorted; char i has id i + 1
    _lookup: np.ndarray = field(init=False, repr=False, compare=False)  # code point -> id, -1: unknown

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("vocabulary characters must be distinct single characters")
        if "\n" in self.chars:
            raise ValueError("a newline separates names; it cannot be a character of one")
        # The id rule, in the one place it is written: character i of the sorted vocabulary has
        # id i + 1. The newline that ends each name in encode_names becomes its end token.
        lookup = np.full(max([ord(c) for c in self.chars] + [ord("\n")]) + 1, -1, dtype=np.int32)
        lookup[[ord(c) for c in self.chars]] = np.arange(1, len(self.chars) + 1)
        lookup[ord("\n")] = BOUNDARY
        object.__setattr__(self, "_lookup", lookup)

    @classmethod
    def from_names(cls, names: list[str]) -> Vocab:
        return cls(tuple(sorted(set("".join(names)))))

    @property
    def size(self) -> int:
        """V: the characters plus the boundary token."""
        return len(self.chars) + 1

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order of appearance."""
        lookup = self._lookup  # a newline maps to BOUNDARY, 0: it is no character of a name either
        return list(dict.fromkeys(c for c in text if ord(c) >= len(lookup) or lookup[ord(c)] <= 0))

    def unknown_error(self, name: str, source: str) -> DataError:
        """The one message for a name that uses characters the model never saw."""
        known = "".join(c for c in self.chars if c.isprintable() and not c.isspace())
        if len(known) > 60:
            known = known[:60] + "…"
        return DataError(f"{source}: {shortened(name)} uses {''.join(self.unknown(name))!r}, which the model never saw; "
                         f"it knows {known!r}")

    def encode_names(self, names: list[str], source: str = "the names given") -> Encoded:
        """Encode every name at once; a character outside the vocabulary is a DataError naming the name.

        Each chunk of names becomes ids with one gather from the code-point table, written into a
        single int32 sequence, so memory stays proportional to the data.
        """
        lookup = self._lookup
        seq = np.empty(sum(len(name) + 1 for name in names) + 1, dtype=np.int32)
        seq[0] = BOUNDARY
        at = 1
        for start in range(0, len(names), ENCODE_CHUNK):
            chunk = names[start : start + ENCODE_CHUNK]
            points = np.frombuffer(("\n".join(chunk) + "\n").encode("utf-32-le"), dtype=np.uint32)
            ids = lookup[np.minimum(points, len(lookup) - 1)]
            ids[points >= len(lookup)] = -1
            if (ids < 0).any():
                raise self.unknown_error(next(name for name in chunk if self.unknown(name)), source)
            seq[at : at + len(ids)] = ids
            at += len(ids)
        bounds = np.flatnonzero(seq == BOUNDARY)
        if len(bounds) != len(names) + 1:  # a newline inside a name would have split it in two
            raise self.unknown_error(next(name for name in names if "\n" in name), source)
        return Encoded(seq, bounds)

    def encode(self, name: str, source: str = "the names given") -> np.ndarray:
        """The ids of one name's characters, shape (T,), without boundary tokens."""
        return self.encode_names([name], source).ids(0)

    def decode(self, ids) -> str:
        """The inverse of `encode`; boundary tokens are dropped."""
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)

    def decode_rows(self, ids: np.ndarray) -> list[str]:
        """`decode` of each row of a 2-D array of letter ids (no boundary tokens), in a few calls
        for the whole array: its code points as one UTF-32 string, cut into rows."""
        count, letters = ids.shape
        if not letters:
            return [""] * count
        text = self._code_points[ids].tobytes().decode("utf-32-le")
        return [text[i : i + letters] for i in range(0, count * letters, letters)]

    @cached_property
    def _code_points(self) -> np.ndarray:
        return np.array([0, *map(ord, self.chars)], dtype="<u4")

    def inputs_and_targets(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The training pair for one name, each of shape (T+1,), T = len(name).

        inputs  = [BOUNDARY, c_1, ..., c_T]   (start token, then the name)
        targets = [c_1, ..., c_T, BOUNDARY]   (the name, then end of name)
        so the model at step t sees c_1..c_t and must predict c_{t+1}.
        """
        return self.encode_names([name]).pair(0)
