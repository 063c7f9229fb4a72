"""Read and clean a names file, split it into train/validation, and pad encoded names into batches.

Cleaning is the same for training, evaluation and scoring, so a name means one thing everywhere.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import DataError, OptionError, OptionName
from .vocab import BOUNDARY

PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_path(folder: str, filename: str) -> Path:
    """A file shipped with namegen: inside the installed package, else in the source checkout."""
    installed = PACKAGE_DIR / f"_{folder}" / filename
    return installed if installed.exists() else PACKAGE_DIR.parent / folder / filename


def default_data_path() -> Path:
    return bundled_path("data", "dinos.txt")


MAX_NAMES_BYTES = 64 * 2**20  # a names file is read up to this size: about 7 million names, 1 GB of memory
BUNDLED_SOURCE = "dinos.txt (bundled with namegen)"  # not the install's path: it means nothing elsewhere


CASES = ("auto", "lower", "keep")  # how letter case is handled; see parse_names
RESTORED_SHARE = 0.95  # "auto" lower-cases names when this share of them comes back as it was


@dataclass(frozen=True)
class NameList:
    names: list[str]  # cleaned names, in file order (duplicates kept: they are part of the data)
    capitals: tuple[str, ...]  # names were lower-cased: where to show capitals (see capital_contexts)
    source: str  # where they came from, for messages and checkpoint metadata
    keep_case: bool = False  # the names kept their letter case (case "keep", or "auto" deciding so)

    @property
    def capitalize(self) -> bool:
        return bool(self.capitals)
    styles: tuple[str, ...] = ()  # with several lists: each list's style, named after its file
    style_of: np.ndarray | None = None  # with several lists: the style of each name


# Characters a name may not hold: C0 and C1 controls other than white space (an ESC would drive the
# terminal that shows the name) and the bidirectional overrides, which make text read otherwise
# than it is stored. A NUL byte is refused earlier, as the sign of a binary file.
FORBIDDEN = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")
# Stripped from both ends of a line, so that a line of them is blank: white space, the byte-order
# mark that starts a concatenated file, zero-width characters, and the soft hyphen.
INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060\u00ad"
STRIPPED = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + INVISIBLE
READ_CHUNK = 2**20


def clean_name(line: str, keep_case: bool = False) -> str:
    """Strip invisible characters from both ends, collapse every run of white space inside to one
    space, normalise to NFC, and lower-case unless keep_case."""
    name = unicodedata.normalize("NFC", " ".join(line.strip(STRIPPED).split()))
    return name if keep_case else name.lower()


def clean_prefix(prefix: str, keep_case: bool = False) -> str:
    """The beginning of a name, cleaned as the name would be but for its end: a space there stays,
    since the next word of the name is still to come ("San " asks for San Jose, not Sandral)."""
    cleaned = clean_name(prefix, keep_case)
    return cleaned + " " if cleaned and prefix.rstrip(INVISIBLE)[-1:].isspace() else cleaned


START = "start"  # the context of a name's first character


def context(name: str, i: int) -> str | None:
    """What comes before character i where a capital may start a word: START for the first, else
    the character before if it is no letter or digit (" ", "-", "'", "("); None inside a word."""
    if not i:
        return START
    return None if name[i - 1].isalnum() else name[i - 1]


def capital_contexts(names: list[str]) -> tuple[str, ...]:
    """The contexts (see context) in which the cased letters of `names` are capitals more often than
    not, sorted: ("start",) for Tyrannosaurus, (" ", "start") for "Mr. Mime" and "Tapu Koko", and
    "-" too if most letters after a hyphen are capitals (Ho-Oh, but Jangmo-o and Kommo-o: not)."""
    upper, total = Counter(), Counter()
    for name in names:
        for i, c in enumerate(name):
            where = context(name, i)
            if where is not None and c.lower() != c.upper():
                total[where] += 1
                upper[where] += c.isupper()
    return tuple(sorted(where for where in total if 2 * upper[where] > total[where]))


def capitalised(name: str, capitals: tuple[str, ...] = (START,)) -> str:
    """The name with a capital at each letter whose context is in `capitals` (see capital_contexts),
    where the capital turns back into the same letter (ß would become SS, and the name a different one)."""
    if capitals == (START,):  # most lists: one letter to look at, not a pattern to match
        first = name[:1].upper()
        return first + name[1:] if len(first) == 1 and first.lower() == name[:1] else name
    return capital_pattern(capitals).sub(capital_of, name) if capitals else name


@lru_cache(maxsize=16)
def capital_pattern(capitals: tuple[str, ...]) -> re.Pattern:
    """The characters whose context (see context) is in `capitals`: the first, and each after a mark."""
    marks = "".join(re.escape(c) for c in capitals if c != START)
    return re.compile("|".join((["^."] if START in capitals else []) + ([f"(?<=[{marks}])."] if marks else [])))


def capital_of(match: re.Match) -> str:
    c = match.group()
    upper = c.upper()
    return upper if len(upper) == 1 and upper.lower() == c else c


def read_text(path: Path) -> str:
    """A names file's text, read in chunks: a NUL byte or invalid UTF-8 is refused as soon as it is
    seen, a leading BOM is dropped, and no more than MAX_NAMES_BYTES is read, so an endless stream
    (a device, a pipe) ends in a message, not in exhausted memory."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    parts, lines, size = [], 0, 0
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            nul = chunk.find(b"\0")
            if nul >= 0 and not size and utf16(chunk):
                raise DataError(f"{path}: looks like UTF-16 text, not UTF-8; save it as UTF-8 (for example "
                                f"`iconv -f UTF-16 -t UTF-8 {path} > names-utf8.txt`, or choose UTF-8 when saving)")
            if nul >= 0:
                line = lines + chunk.count(b"\n", 0, nul) + 1
                raise DataError(f"{path}: looks like a binary file (a NUL byte on line {line}); "
                                "give a text file with one name per line")
            try:
                parts.append(decoder.decode(chunk))
            except UnicodeDecodeError as e:  # e.object: the chunk after at most 3 bytes held from the last
                line = lines + e.object.count(b"\n", 0, e.start) + 1
                raise DataError(f"{path}: line {line} is not valid UTF-8 (byte 0x{e.object[e.start]:02x}); "
                                "save the file as UTF-8 and try again") from None
            lines += chunk.count(b"\n")
            size += len(chunk)
            if size > MAX_NAMES_BYTES:
                raise DataError(f"{path}: more than {MAX_NAMES_BYTES // 2**20} MiB, the most namegen reads from a "
                                "names file; give a shorter list (a sample of it trains as well)")
    try:
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError:
        raise DataError(f"{path}: line {lines + 1} is not valid UTF-8 (it ends inside a character); "
                        "save the file as UTF-8 and try again") from None
    return "".join(parts)


def utf16(start: bytes) -> bool:
    """Whether a file's first bytes are UTF-16: its byte-order mark, or (without one) text whose every
    other byte is NUL, as ASCII letters are in UTF-16."""
    if start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return True
    sample = start[: min(200, len(start)) // 2 * 2]
    half = len(sample) // 2
    return half >= 2 and any(zeros.count(0) == half and not text.count(0)
                             for zeros, text in ((sample[1::2], sample[0::2]), (sample[0::2], sample[1::2])))


def parse_names(text: str, source: str, case: str = "auto") -> NameList:
    """Clean the lines of a names text; raise DataError if no name is left.

    Lines end at "\n" only (a "\r" before it is stripped), so a name may hold any other printable
    character; a control character or a bidirectional override is refused, naming its line.
    case: "lower" lower-cases every name, and capitalises names on output if most began with a
    capital; "keep" keeps letter case; "auto" lower-cases only where that loses nothing, that is
    where RESTORED_SHARE of the names come back as they were (Tyrannosaurus does; Hurin of Londes,
    McDonald and Mr. Mime do not).
    """
    forbidden = FORBIDDEN.search(text)
    if forbidden:
        char = forbidden.group()
        what = unicodedata.name(char, "a control character")
        raise DataError(f"{source}: line {text.count(chr(10), 0, forbidden.start()) + 1} holds U+{ord(char):04X} "
                        f"({what}); names must be plain text")
    raw = [line.strip(STRIPPED) for line in text.split("\n")]
    raw = [line for line in raw if line]
    if not raw:
        raise DataError(f"{source}: no names found (the file is empty or only blank lines)")
    kept = [clean_name(line, keep_case=True) for line in raw]
    capitals = capital_contexts(kept)
    if case == "keep":
        return NameList(kept, (), source, keep_case=True)
    lowered = [name.lower() for name in kept]  # clean_name lower-cases last: the same as cleaning again
    if case == "auto":
        shown = (capitalised(name, capitals) for name in lowered)
        if sum(name == was for name, was in zip(shown, kept)) < RESTORED_SHARE * len(raw):
            return NameList(kept, (), source, keep_case=True)
    return NameList(lowered, capitals, source)


def read_names(path: str | Path | None = None, case: str = "auto") -> NameList:
    """Read a newline-separated UTF-8 names file (None: the bundled dinosaur names); `case` as for
    parse_names."""
    if path is None:
        return replace(read_names(default_data_path(), case), source=BUNDLED_SOURCE)
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; give a newline-separated list of names")
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give a newline-separated list of names")
    try:
        text = read_text(path)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None
    return parse_names(text, str(path), case)


MAX_STYLES = 64  # lists one model learns at once: a style is a name list, not a name


def read_name_lists(paths: list[str | Path] | None, case: str = "auto") -> NameList:
    """One list (as read_names; None or [] is the bundled one), or several, each a style named
    after its file: the names of all of them in order, with the style of each. `case` is decided
    for all the lists together: one vocabulary, one way to show names."""
    if not paths or len(paths) == 1:
        return read_names(paths[0] if paths else None, case)
    if len(paths) > MAX_STYLES:
        raise DataError(f"{len(paths)} name lists: at most {MAX_STYLES} can be learned at once")
    styles = tuple(Path(p).stem for p in paths)
    for path, style in zip(paths, styles):
        why = unnameable(style)
        if why:
            raise DataError(f"{path}: its file name makes the style {style!r}, which --style could not name ({why}); "
                            "rename the file")
    for style, count in Counter(styles).items():
        if count > 1:
            same = ", ".join(str(p) for p in paths if Path(p).stem == style)
            raise DataError(f"{same} would all be the style {style!r}: each list is a style named after its "
                            "file, so give each a file of its own name")
    lists = [read_names(p, "keep") for p in paths]
    source = " + ".join(names.source for names in lists)
    joint = parse_names("\n".join(name for names in lists for name in names.names), source, case)
    style_of = np.repeat(np.arange(len(lists)), [len(names.names) for names in lists])
    return replace(joint, styles=styles, style_of=style_of)


def unnameable(style: str) -> str | None:
    """Why `sample --style` could not name a style of this name ('elves=0.7,dwarves=0.3' is split at
    ',' and '=' and trimmed), or None."""
    if "=" in style or "," in style:
        return "it holds '=' or ','"
    if style != style.strip():
        return "it begins or ends with a space"
    if not style.isprintable():
        return "it holds a character that cannot be printed"
    return None


def fingerprint(names: list[str]) -> str:
    """A short hash of the cleaned names, to tell whether two runs saw the same data."""
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


def split_by_style(style_of: np.ndarray, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """split_indices within each style, so that every style has validation names of its own."""
    parts = [np.flatnonzero(style_of == k) for k in range(int(style_of.max()) + 1)]
    splits = [split_indices(len(part), val_fraction, rng) for part in parts]
    return (np.sort(np.concatenate([part[train] for part, (train, _) in zip(parts, splits)])),
            np.sort(np.concatenate([part[val] for part, (_, val) in zip(parts, splits)])))


def split_indices(n: int, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/validation split of n names; returns sorted (train, val) indices."""
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= n:
        raise OptionError(
            f"a validation fraction of {val_fraction} leaves no training names out of {n}; use a smaller ",
            OptionName("val_fraction"), " (0 turns validation off)"
        )
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def pad_batch(encoded: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad encoded names (without boundaries) into one batch.

    Returns inputs, targets (N, T) int and mask (N, T) bool, T = longest name + 1. Padding sits
    after each name's end token, so a padded step never comes before a real one: it cannot feed
    the hidden state of a real step, and the mask removes it from the loss and gradients.
    """
    n, t = len(encoded), max(len(ids) for ids in encoded) + 1
    inputs = np.full((n, t), BOUNDARY, dtype=np.int64)
    targets = np.full((n, t), BOUNDARY, dtype=np.int64)
    mask = np.zeros((n, t), dtype=bool)
    for row, ids in enumerate(encoded):
        inputs[row, 1 : len(ids) + 1] = ids
        targets[row, : len(ids)] = ids
        mask[row, : len(ids) + 1] = True
    return inputs, targets, mask
