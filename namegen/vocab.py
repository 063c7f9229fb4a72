"""Characters <-> integer ids, with id 0 reserved for the name boundary.

The boundary token is the input at step 0 (start of name) and the target after the last character
(end of name), so one reserved id serves both roles and the vocabulary is built from the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DataError

BOUNDARY = 0  # id of the start/end-of-name token


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]  # the characters seen in the data, sorted; char i has id i + 1
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("vocabulary characters must be distinct single characters")
        if "\n" in self.chars:
            raise ValueError("a newline separates names; it cannot be a character of one")
        object.__setattr__(self, "_index", {c: i + 1 for i, c in enumerate(self.chars)})

    @classmethod
    def from_names(cls, names: list[str]) -> Vocab:
        return cls(tuple(sorted(set("".join(names)))))

    @property
    def size(self) -> int:
        """V: the characters plus the boundary token."""
        return len(self.chars) + 1

    def unknown(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not in the vocabulary, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def encode(self, name: str) -> np.ndarray:
        """The ids of a name's characters, shape (T,), without boundary tokens."""
        missing = self.unknown(name)
        if missing:
            raise DataError(
                f"{name!r} uses characters the model never saw: {''.join(missing)!r}"
            )
        return np.array([self._index[c] for c in name], dtype=np.int64)

    def decode(self, ids) -> str:
        """The inverse of `encode`; boundary tokens are dropped."""
        return "".join(self.chars[i - 1] for i in ids if i != BOUNDARY)

    def inputs_and_targets(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The training pair for one name, each of shape (T+1,), T = len(name).

        inputs  = [BOUNDARY, c_1, ..., c_T]   (start token, then the name)
        targets = [c_1, ..., c_T, BOUNDARY]   (the name, then end of name)
        so the model at step t sees c_1..c_t and must predict c_{t+1}.
        """
        ids = self.encode(name)
        inputs = np.concatenate(([BOUNDARY], ids))
        targets = np.concatenate((ids, [BOUNDARY]))
        return inputs, targets
