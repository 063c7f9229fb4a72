"""The exceptions namegen raises for problems a user can fix.

The CLI turns each into one line on stderr and a non-zero exit code; anything else is a bug.
"""


class NamegenError(Exception):
    """Base class: the message says what is wrong and how to fix it."""


class OptionError(NamegenError):
    """An option value that cannot work (with this data); the CLI exits with 2 as for bad options."""


class DataError(NamegenError):
    """A names file is missing, unreadable, undecodable or empty after cleaning."""


class CheckpointError(NamegenError):
    """A checkpoint is missing, damaged, foreign, too new, or does not fit the request."""


class SamplingError(NamegenError):
    """A sampling request is impossible (unknown prefix letter, unmeetable constraints)."""

    def __init__(self, message: str, found: list[str] | None = None):
        super().__init__(message)
        self.found = found or []  # names found before giving up, so the work is not lost


class TrainingError(NamegenError):
    """Training cannot start or continue (divergence, conflicting resume options)."""
