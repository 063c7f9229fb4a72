"""Every option's default, bounds and help, in one place: the fields of the config dataclasses.

A config field is declared with `option(default, help, bounds...)`. `check` refuses an impossible
value with an OptionError naming the option, whoever set it (the command line, the Python API or a
checkpoint), and the CLI builds its flags and help texts from the same fields.
"""

from __future__ import annotations

import math
import sys
import typing
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from .errors import OptionError, OptionName, shortened

SPEC = "namegen.option"  # the key of a field's Spec in its metadata


@dataclass(frozen=True)
class Spec:
    """What an option means and which values it allows (None: no such bound)."""

    help: str  # one phrase, no final period: the CLI adds the bounds and the default
    at_least: float | None = None
    at_most: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] = ()
    default_text: str = ""  # what a default of None means, e.g. "fresh each run"

    def allows(self, value) -> bool:
        return ((self.at_least is None or value >= self.at_least)
                and (self.at_most is None or value <= self.at_most)
                and (self.above is None or value > self.above)
                and (self.below is None or value < self.below)
                and (not self.choices or value in self.choices))

    def describe(self) -> str:
        """The allowed values in words: 'between 1 and 4096', 'above 0', 'one of sgd, adam'."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.at_least is not None and self.at_most is not None:
            return f"between {self.at_least:g} and {self.at_most:g}"
        bounds = [(self.at_least, "at least"), (self.above, "above"), (self.at_most, "at most"), (self.below, "below")]
        return " and ".join(f"{words} {bound:g}" for bound, words in bounds if bound is not None)


def option(default: Any, help: str, **bounds) -> Any:
    """A config field with its default, its help and the values it allows (see Spec)."""
    return field(default=default, metadata={SPEC: Spec(help, **bounds)})


def spec_of(config: type, name: str) -> tuple[Spec, Any]:
    """The Spec and the default of one option of a config dataclass."""
    for f in fields(config):
        if f.name == name:
            return f.metadata[SPEC], f.default
    raise KeyError(f"{config.__name__} has no option {name!r}")


@cache
def field_kinds(cls: type) -> dict[str, tuple[type, bool]]:
    """Each field's value type (bool, int, float or str) and whether None is allowed, from the
    annotations of the dataclass `cls`: an option's, or a record's that a checkpoint holds."""
    kinds = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint)
        optional = type(None) in args
        kinds[name] = (next(a for a in args if a is not type(None)) if optional else hint, optional)
    return kinds


TEXTS = tuple[str, ...]  # a repeatable option: every value it was given
KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a finite number", str: "text", TEXTS: "texts"}


def check_values(config: type, values: dict[str, Any]) -> None:
    """Raise OptionError for the first of `values` (option name -> value) that `config` does not allow."""
    kinds = field_kinds(config)
    for name, value in values.items():
        spec, _ = spec_of(config, name)
        kind, optional = kinds[name]
        if value is None and optional:
            continue
        if not conforms(value, kind):
            raise OptionError(OptionName(name), f" must be {KIND_WORDS[kind]}, not {shortened(value)}")
        if not spec.allows(value):
            raise OptionError(OptionName(name), f" must be {spec.describe()}, not {shortened(value)}")


def check(config) -> None:
    """Raise OptionError for the first field of the dataclass `config` that its Spec does not allow."""
    check_values(type(config), {f.name: getattr(config, f.name) for f in fields(config) if SPEC in f.metadata})


def conforms(value, kind: type) -> bool:
    """Whether `value` is a `kind` (bool, int, float, str or TEXTS) as JSON or a user could give it."""
    if kind == TEXTS:
        return isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    if kind is bool or isinstance(value, bool):  # bool is an int to Python, never to an option
        return kind is bool and isinstance(value, bool)
    if kind is float:  # an int is a fine float unless it is too large to be one
        return isinstance(value, (int, float)) and abs(value) <= sys.float_info.max and math.isfinite(value)
    return isinstance(value, kind)

