"""The exceptions namegen raises for problems a user can fix, and how their messages name options.

The CLI turns each into one line on stderr and a non-zero exit code; anything else is a bug and
shows its traceback.
"""

from __future__ import annotations

from typing import Callable


class OptionName(str):
    """An option named inside an error message, such as OptionName("learning_rate").

    The library shows it as the Python name (learning_rate) and the CLI as its flag
    (--learning-rate), so a message reads right to either user and the library never spells a flag.
    """


def shortened(value, limit: int = 60) -> str:
    """A value a user gave, as repr shows it, cut to about `limit` characters: an error line never
    echoes a 130 KB argument back in full."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def fixed(x: float, digits: int) -> str:
    """A figure for people: fixed point, or where it is huge (a diverged model's 5.7e+200 nats, a
    σmax of 1e300), the exponent form instead of hundreds of digits."""
    return f"{x:.{digits}f}" if abs(x) < 1e6 else f"{x:.{digits}g}"


def plural(count: int, word: str) -> str:
    """1 epoch, 2 epochs; 1 name, 0 names: messages and output count in words that agree."""
    return f"{count} {word}" + ("" if count == 1 else "s")


class NamegenError(Exception):
    """Base class: the message says what is wrong and how to fix it.

    The message comes in parts, plain text and OptionName parts, joined by `render`.
    """

    def __init__(self, *parts: str):
        super().__init__(*parts)
        self.parts = parts

    def render(self, name_option: Callable[[str], str] = str) -> str:
        """The message, with each OptionName part shown by `name_option`."""
        return "".join(name_option(part) if isinstance(part, OptionName) else part for part in self.parts)

    def __str__(self) -> str:
        return self.render()


class OptionError(NamegenError, ValueError):
    """An option value that cannot work (with this data); the CLI exits with 2, as for bad usage."""


class DataError(NamegenError):
    """A names file is missing, unreadable, undecodable or empty after cleaning, or a name holds
    a character the model never saw."""


class CheckpointError(NamegenError):
    """A checkpoint is missing, damaged, foreign, too new, or cannot be written."""


class SamplingError(NamegenError):
    """A sampling request is impossible (unknown prefix letter, unmeetable constraints)."""

    def __init__(self, *parts: str, found: list | None = None):
        super().__init__(*parts)
        self.found = found or []  # names (or sampling.Drawn) found before giving up, so the work is not lost


class TrainingError(NamegenError):
    """Training cannot start or continue (divergence, conflicting resume options)."""
