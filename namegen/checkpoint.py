"""The checkpoint format: one .npz of plain arrays plus a JSON metadata entry, saved and loaded.

Loading never unpickles, reads only what a checkpoint can hold, and checks every field and each
section (model, split, optimizer, progress) against the metadata, so a damaged, foreign or hostile
file is refused with a CheckpointError in bounded time and memory instead of half-loading. Saving goes through files.atomic_write, so a crash at
any moment leaves the old checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import math
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

from .data import MAX_NAMES_BYTES, MAX_STYLES, START
from .errors import CheckpointError, OptionName
from .files import atomic_link, atomic_write, probe_writable
from .layout import Layout
from .model import Model, computable
from .rules import Rules
from .optim import OPTIMIZERS, Optimizer, make_optimizer
from .options import conforms, field_kinds
from .state import MAX_HIDDEN, EpochRecord, EpochStats, TrainConfig, TrainState, layout_of
from .vocab import Vocab

FORMAT = "namegen-checkpoint"
VERSION = 2  # 2 added styles (several name lists); a version 1 file is a model of one list


# ------------------------------------------------------------------------------------------ save

def _meta(state: TrainState) -> dict:
    from . import __version__

    model = state.model
    return {
        "format": FORMAT,
        "version": VERSION,
        "namegen_version": __version__,
        "vocab": list(model.vocab.chars),
        "capitalize": model.capitalize,  # what namegen read before "capitals": a capital at a name's start or none
        "capitals": list(model.capitals),
        "rules": model.rules.to_json(),
        "config": dataclasses.asdict(state.config),
        "data": {"source": state.source, "fingerprint": model.fingerprint, "case": model.case,
                 "names": len(model.names), "train": len(state.train_idx), "val": len(state.val_idx)},
        "names": model.names,
        **({"styles": {"names": list(model.styles), "size": model.style_size}} if model.styles else {}),
        "epoch": state.epoch,
        "position": state.position,
        "step": state.step,
        "optimizer": {"name": state.optimizer.name, "steps": state.optimizer.steps},
        "rng": state.rng.bit_generator.state,
        "history": [vars(record).copy() for record in state.history],  # flat records: asdict's deep copy is slow
        "best_val_loss": state.best_val_loss,
        "epoch_stats": dataclasses.asdict(state.epoch_stats),
    }


def to_bytes(state: TrainState) -> bytes:
    """The checkpoint file's content."""
    model, layout = state.model, state.layout
    views = layout.views(state.weights)
    arrays = {block.entry: views[block.name] for block in layout.blocks}
    if model.styles:
        arrays["styles/of"] = model.style_of
    arrays |= {f"optimizer/{key}": value for key, value in state.optimizer.state.items()}
    arrays["split/train"] = state.train_idx
    arrays["split/val"] = state.val_idx
    if state.order is not None:
        arrays["order"] = state.order
    meta = json.dumps(_meta(state), ensure_ascii=False).encode("utf-8")
    arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, state: TrainState | bytes) -> bytes:
    """Save atomically; a CheckpointError if it cannot be written (the old file is kept then).
    state: a run, or the content to_bytes made of one. Returns the content written."""
    path = Path(path)
    content = state if isinstance(state, bytes) else to_bytes(state)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, content)
        return content
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}; {WRITE_ADVICE.get(e.errno, '')}"
                              "choose another place with ", OptionName("out_dir")) from None


def save_checkpoint_copy(path: str | Path, written: str | Path, content: bytes) -> None:
    """Save `content`, just saved to `written`, to `path` as well: as a second name of that file
    where the file system has hard links (nothing written twice; the files part when `written` is
    next replaced, atomically), else by writing it again."""
    try:
        if atomic_link(written, path):
            return
    except OSError:
        pass
    save_checkpoint(path, content)


WRITE_ADVICE = {errno.ENOSPC: "free some space, or ", errno.EDQUOT: "free some space, or ",
                errno.EISDIR: "move the directory that stands there, or "}


def check_checkpoint_dir(directory: str | Path, resuming: bool = False) -> None:
    """Make sure checkpoints can be written to `directory` before any work is done (a resumed run
    writes beside the checkpoint it resumes, so the advice differs)."""
    try:
        probe_writable(directory)
    except OSError as e:
        advice = (("make it writable, or copy the checkpoint to a directory you can write and resume the copy",)
                  if resuming else ("choose another place with ", OptionName("out_dir")))
        raise CheckpointError(f"cannot write checkpoints to {directory}: {e.strerror or e}; ", *advice) from None


# ------------------------------------------------------------------------------------------ load
#
# A file may be hostile, so loading is bounded by what a checkpoint can legitimately hold, never by
# what the file declares: the zip directory is sized before it is parsed; only known entries are
# read; the metadata is capped; and each array's .npy header is checked against the shape and
# type the metadata implies before its data is read, exactly that many bytes.

ENTRIES = ({"meta", "split/train", "split/val", "order", "styles/of"}
           | {block.entry for block in Layout.with_every_block().blocks}
           | {f"optimizer/{key}" for cls in OPTIMIZERS.values() for key in cls.state_names})
MAX_DIRECTORY_BYTES = 2**16  # a checkpoint's zip directory lists a dozen entries in about 1 KB
MAX_CAPITALS = 256  # contexts a capital follows: the name's start and a few marks (" ", "-", "(")
MAX_META_BYTES = 2 * MAX_NAMES_BYTES + 2**26  # every name, JSON-escaped, plus a long history
MAX_HEADER_BYTES = 2**16  # an .npy header describes one array in about 128 bytes
MAX_COUNT = 2**53  # epochs, updates: beyond this a float could not even count them


def load_checkpoint(path: str | Path) -> TrainState:
    """Load and validate a whole checkpoint: the model and the run that trains it, enough to resume."""
    path = Path(path)
    with _open_archive(path) as archive:
        return _Reader(path, archive).state()


def load_model(path: str | Path) -> Model:
    """The model of a checkpoint: what sampling, scoring and diagnostics need. The whole file is
    validated all the same, so every command refuses a damaged checkpoint alike."""
    return load_checkpoint(path).model


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a checkpoint's metadata says of how good its model is, and on which validation names."""

    best_val_loss: float | None
    fingerprint: str
    seed: int
    val_fraction: float
    styles: tuple[str, ...]

    def comparable(self, other: Summary) -> bool:
        """Whether the two were judged on the same validation names: the same names, split alike."""
        return (self.best_val_loss is not None and (self.fingerprint, self.seed, self.val_fraction, self.styles)
                == (other.fingerprint, other.seed, other.val_fraction, other.styles))


def read_summary(path: str | Path) -> Summary | None:
    """The summary of a checkpoint from its metadata alone (bounded as load_checkpoint is), or None
    if it cannot be read. For choosing among checkpoints; the one chosen is loaded in full."""
    path = Path(path)
    try:
        with _open_archive(path) as archive:
            meta = _Reader(path, archive).meta
        best, config, styles = meta["best_val_loss"], meta["config"], meta.get("styles", {}).get("names", [])
        summary = Summary(best, meta["data"]["fingerprint"], config["seed"], config["val_fraction"], tuple(styles))
    except (CheckpointError, KeyError, TypeError, AttributeError, ValueError):
        return None
    if (best is not None and not (conforms(best, float) and best >= 0)) or not isinstance(summary.fingerprint, str) \
            or not all(isinstance(s, str) for s in summary.styles):
        return None
    return summary


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: {why}")


def _open_archive(path: Path) -> zipfile.ZipFile:
    """The file as a zip archive, once its directory is known to be of checkpoint size."""
    if not path.exists():
        raise _fail(path, "no such checkpoint; train one with `namegen train`, or give the path of one")
    if path.is_dir():
        raise _fail(path, "is a directory, not a checkpoint file")
    if not stat.S_ISREG(path.stat().st_mode):
        raise _fail(path, "is not a regular file (a pipe, a socket or a device); give the path of a checkpoint file")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 22 - 2**16))  # the end record: 22 bytes and a comment of up to 64 KiB
            tail = f.read()
    except OSError as e:
        raise _fail(path, f"cannot be read ({e.strerror or e})") from None
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or len(tail) - end < 22:
        raise _fail(path, "not a readable namegen checkpoint (not an .npz archive, or a truncated one)")
    entries, directory = int.from_bytes(tail[end + 10 : end + 12], "little"), int.from_bytes(tail[end + 12 : end + 16], "little")
    if entries > len(ENTRIES) or directory > MAX_DIRECTORY_BYTES:  # zip64 marks these 0xFFFF...: never a checkpoint's
        raise _fail(path, f"not a namegen checkpoint (its archive lists {entries} entries in {directory} bytes)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise _fail(path, "not a readable namegen checkpoint (not an .npz archive, or a truncated one)") from None


class _Reader:
    """One checkpoint being loaded: its archive and metadata, checked one section at a time."""

    def __init__(self, path: Path, archive: zipfile.ZipFile):
        self.path, self.archive = path, archive
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            if key not in ENTRIES or key in self.entries or not info.filename.endswith(".npy"):
                raise self.fail(f"not a namegen checkpoint (an unexpected entry {info.filename[:80]!r})")
            self.entries[key] = info
        self.meta = self.read_meta()

    def fail(self, why: str) -> CheckpointError:
        return _fail(self.path, why)

    def damaged(self, why: str) -> CheckpointError:
        return self.fail(f"damaged checkpoint ({why})")

    # ------------------------------------------------------------------------------------ arrays

    def array(self, key: str, shape: tuple[int, ...] | None, kind: str = "f", floats: str = "float64") -> np.ndarray | None:
        """The entry `key` as an array of `shape` (None: one dimension, any length): `floats` (the
        run's dtype) for kind "f", any signed integer for "i", bytes for "u". The .npy header is
        checked before any data is read; None if there is no such entry."""
        info = self.entries.get(key)
        if info is None:
            return None
        try:
            with self.archive.open(info) as f:
                dtype, found, fortran, data_start = _npy_header(f)
                shape = found if shape is None and len(found) == 1 else shape
                if dtype.hasobject:
                    raise self.fail("not a readable namegen checkpoint (it holds pickled objects, which namegen never loads)")
                expected = {"f": floats, "i": "a signed integer", "u": "uint8"}[kind]
                if found != shape or dtype.kind != kind or dtype.itemsize > 8 or (kind != "i" and dtype != expected):
                    raise self.damaged(f"{key} is {dtype}{list(found)}, expected {expected}{list(shape)}")
                size = math.prod(shape) * dtype.itemsize
                if info.file_size != data_start + size:
                    raise self.damaged(f"{key} declares {info.file_size} bytes where its array takes {data_start + size}")
                data = f.read(size)
        except CheckpointError:
            raise
        except Exception as e:  # zlib and zipfile raise assorted types on corrupt members
            raise self.damaged(f"{key} cannot be read: {type(e).__name__}") from None
        array = np.frombuffer(data, dtype=dtype)
        return array.reshape(shape[::-1]).T if fortran else array.reshape(shape)

    def floats(self, key: str, shape: tuple[int, ...], dtype: str = "float64") -> np.ndarray:
        """An array of `shape` and `dtype` (a TrainConfig.dtype) holding only finite values."""
        a = self.array(key, shape, floats=dtype)
        if a is None:
            raise self.damaged(f"missing array {key}")
        if not np.all(np.isfinite(a)):
            raise self.damaged(f"{key} holds NaN or infinite values")
        return a

    def indices(self, key: str, length: int, n: int) -> np.ndarray:
        """Distinct integers in [0, n): positions in the list of names."""
        a = self.array(key, (length,), kind="i")
        # counted rather than np.unique'd: np.unique imports numpy.ma, 50 ms of every command's start
        if a is None or (a.size and (a.min() < 0 or a.max() >= n or np.bincount(a, minlength=n).max() > 1)):
            raise self.damaged(f"{key} is missing, out of range or repeats a name")
        return a.astype(np.int64)

    def read_meta(self) -> dict:
        info = self.entries.get("meta")
        if info is None:
            raise self.fail("not a namegen checkpoint (no metadata entry)")
        if info.file_size > MAX_META_BYTES + MAX_HEADER_BYTES:
            raise self.damaged(f"its metadata declares {info.file_size} bytes, more than the {MAX_META_BYTES} a checkpoint can hold")
        try:
            raw = self.array("meta", None, kind="u")
        except CheckpointError:
            raise self.fail("not a namegen checkpoint (its metadata entry is not an .npy byte array)") from None
        try:
            meta = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self.damaged("its metadata is not valid JSON") from None
        except RecursionError:
            raise self.damaged("its metadata is nested too deeply to be ours") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise self.fail("not a namegen checkpoint (unknown format)")
        version = meta.get("version")
        if type(version) is not int or version > VERSION:
            raise self.fail(f"written by a newer namegen (format version {str(version)[:20]}, this one reads "
                            f"up to {VERSION}); upgrade namegen to read it")
        return meta

    # ---------------------------------------------------------------------------------- sections

    def state(self) -> TrainState:
        """Every section, checked; a missing or mistyped field is a CheckpointError too."""
        try:
            return self._state()
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise self.damaged(f"bad or missing field: {str(e)[:200]}") from None

    def _state(self) -> TrainState:
        config = self.config()
        model, weights = self.model(config)
        train_idx, val_idx = self.split(len(model.names))
        state = TrainState(config=config, model=model, source=self.text(self.meta["data"]["source"], "data.source"),
                           train_idx=train_idx, val_idx=val_idx, rng=self.rng(), weights=weights,
                           optimizer=self.optimizer(config, weights.size))
        self.progress(state)
        return state

    def whole(self, value, what: str, low: int = 0, high: int = MAX_COUNT) -> int:
        if type(value) is not int or not low <= value <= high:
            raise self.damaged(f"{what} is {str(value)[:40]}, expected a whole number from {low} to {high}")
        return value

    def text(self, value, what: str) -> str:
        """A string that can be printed: JSON can carry lone surrogates, which no terminal can show."""
        try:
            value.encode("utf-8")
        except (AttributeError, UnicodeEncodeError):
            raise self.damaged(f"{what} is not text") from None
        return value

    def record(self, cls: type, value, what: str):
        """A history row or the epoch statistics: exactly the fields of `cls`, each of its type."""
        kinds = field_kinds(cls)
        if isinstance(value, dict):  # a field added since the file was written takes its default
            value = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING} | value
        if not isinstance(value, dict) or set(value) != set(kinds) or not all(
                (value[name] is None and optional) or conforms(value[name], kind)
                for name, (kind, optional) in kinds.items()):
            raise self.damaged(f"{what} does not hold the fields of an {cls.__name__}")
        return cls(**value)

    def config(self) -> TrainConfig:
        saved = self.meta["config"]
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in saved.items() if k in known}
        if values.get("max_steps") == 0:  # files written before max_steps was optional used 0 for no limit
            values["max_steps"] = None
        if "keep_case" in saved and "case" not in saved:  # files written before --case: keep_case true or false
            values["case"] = "keep" if saved["keep_case"] is True else "lower"
        return TrainConfig(**values)

    def capitals(self) -> tuple[str, ...]:
        """Where names are shown with capitals (see data.capital_contexts); files written before
        "capitals" say only whether a name's first letter is one."""
        if "capitals" not in self.meta:
            capitalize = self.meta["capitalize"]
            if type(capitalize) is not bool:
                raise self.damaged("capitalize is not true or false")
            return (START,) if capitalize else ()
        capitals = self.meta["capitals"]
        if not isinstance(capitals, list) or len(capitals) > MAX_CAPITALS or not all(
                isinstance(c, str) and (c == START or len(c) == 1 and not c.isalnum()) for c in capitals):
            raise self.damaged("capitals is not a list of contexts")
        return tuple(sorted(set(capitals)))

    def rules(self, vocab: Vocab) -> Rules | None:
        """What every line of the data keeps (see rules.Rules); None in a file written before they
        were saved: the model learns them from its names."""
        if "rules" not in self.meta:
            return None
        rules = Rules.from_json(self.meta["rules"], "".join(vocab.chars))
        if rules is None:
            raise self.damaged("rules are not the rules of its names")
        return rules

    def keep_case(self, config: TrainConfig) -> bool:
        """Whether the model's names kept their letter case, as saved ("keep" or "lower"); a file
        written before --case had no "auto" to resolve, and its config says which."""
        case = self.meta["data"].get("case", config.case)
        if case not in ("keep", "lower"):
            raise self.damaged(f"data.case is {str(case)[:20]!r}, expected 'keep' or 'lower'")
        return case == "keep"

    def model(self, config: TrainConfig) -> tuple[Model, np.ndarray]:
        """The vocabulary, the names, case handling, and the trained vector read block by block
        through the run's layout (each block's shape checked before its data is read, each product
        checked against its factors); the model, whose parameters are the vector's prefix, and the vector."""
        vocab = Vocab(tuple(self.text(c, "the vocabulary") for c in self.meta["vocab"]))
        names = self.meta["names"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise self.damaged("names are not a list of names")
        if vocab.unknown(self.text("".join(names), "a name")):
            raise self.damaged("the vocabulary does not cover the saved names")
        styles, style_of, style_size = self.styles(len(names))
        layout = layout_of(config, vocab.size, len(styles), style_size)
        weights = np.concatenate([self.floats(block.entry, block.shape, config.dtype).ravel() for block in layout.blocks])
        mismatched = layout.mismatched_product(layout.views(weights))
        if mismatched:
            left, right = (layout[name].entry for name in mismatched.of)
            raise self.damaged(f"{mismatched.entry} is not {left} times {right}")
        model = Model(vocab, weights[: layout.model_size], config.hidden_size, self.keep_case(config), self.capitals(), names,
                      styles, style_of, style_size, self.rules(vocab))
        if self.meta["data"]["fingerprint"] != model.fingerprint:
            raise self.damaged("the saved names do not match their fingerprint")
        if not computable(model.param_views):
            raise self.damaged("its weights are too large for probabilities to be computed")
        return model, weights

    def styles(self, n: int) -> tuple[tuple[str, ...], np.ndarray | None, int]:
        """The style names, the style of each of the n names, and the style size; ((), None, 0)
        for a model of one list (every version 1 file)."""
        saved = self.meta.get("styles")
        if saved is None:
            return (), None, 0
        names = saved["names"]
        if (not isinstance(names, list) or not 2 <= len(names) <= MAX_STYLES
                or not all(isinstance(s, str) and s for s in names) or len(set(names)) != len(names)):
            raise self.damaged("styles.names is not a list of distinct style names")
        size = self.whole(saved["size"], "styles.size", 1, MAX_HIDDEN)
        style_of = self.array("styles/of", (n,), kind="i")
        if style_of is None or style_of.min() < 0 or style_of.max() >= len(names):
            raise self.damaged(f"styles/of does not give each name one of the {len(names)} styles")
        if np.bincount(style_of, minlength=len(names)).min() == 0:
            raise self.damaged("a style has no names")
        return tuple(self.text(s, "a style name") for s in names), style_of.astype(np.int64), size

    def split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The indices of the training and validation names: disjoint, and some to train on."""
        data = self.meta["data"]
        train_idx = self.indices("split/train", self.whole(data["train"], "data.train", 1, n), n)
        val_idx = self.indices("split/val", self.whole(data["val"], "data.val", 0, n), n)
        if np.bincount(np.concatenate((train_idx, val_idx)), minlength=n).max() > 1:  # each distinct already
            raise self.damaged("a name is both a training and a validation name")
        return train_idx, val_idx

    def optimizer(self, config: TrainConfig, size: int) -> Optimizer:
        """The optimizer's state: the configuration's optimizer, its arrays of `size` entries within
        their bounds (see Optimizer.state_problem)."""
        name = self.meta["optimizer"]["name"]
        if name not in OPTIMIZERS:
            raise self.damaged(f"unknown optimizer {str(name)[:40]!r}")
        if name != config.optimizer:
            raise self.damaged(f"its optimizer section is {name}'s, but the run's configuration says {config.optimizer}")
        optimizer = make_optimizer(name, size, config.learning_rate, config.dtype)
        optimizer.steps = self.whole(self.meta["optimizer"]["steps"], "optimizer.steps")
        for key in optimizer.state_names:
            optimizer.state[key] = self.floats(f"optimizer/{key}", (size,), config.dtype).copy()
        problem = optimizer.state_problem()
        if problem:
            raise self.damaged(problem)
        return optimizer

    def rng(self) -> np.random.Generator:
        saved = self.meta["rng"]
        if saved.get("bit_generator") != "PCG64" or set(saved) != {"bit_generator", "state", "has_uint32", "uinteger"}:
            raise self.damaged("unknown random generator state")
        for key in ("state", "inc"):
            self.whole(saved["state"][key], f"rng.state.{key}", 0, 2**128 - 1)
        self.whole(saved["has_uint32"], "rng.has_uint32", 0, 1)
        self.whole(saved["uinteger"], "rng.uinteger", 0, 2**32 - 1)
        rng = np.random.Generator(np.random.PCG64())
        rng.bit_generator.state = saved
        return rng

    def progress(self, state: TrainState) -> None:
        """Where the run is: epoch, position, order, updates, history and best loss, set on `state`."""
        meta, train = self.meta, len(state.train_idx)
        state.epoch = self.whole(meta["epoch"], "epoch", 0, state.config.epochs)
        state.position = self.whole(meta["position"], "position", 0, train)
        state.step = self.whole(meta["step"], "step")
        best = meta["best_val_loss"]
        if best is not None and not (conforms(best, float) and best >= 0):
            raise self.damaged("best validation loss is not a finite number")
        state.best_val_loss = best
        history = meta["history"]
        if not isinstance(history, list) or len(history) != state.epoch:
            raise self.damaged(f"the history does not hold one record for each of the {state.epoch} epochs done")
        state.history = [self.record(EpochRecord, r, f"history record {i + 1}") for i, r in enumerate(history)]
        state.epoch_stats = self.record(EpochStats, meta["epoch_stats"], "epoch_stats")
        order = self.array("order", (train,), kind="i")
        if order is not None and not np.array_equal(np.sort(order), state.train_idx):
            raise self.damaged("order is not an order of the training names")
        if state.position and order is None:
            raise self.damaged("a run stopped mid-epoch without the epoch's order")
        state.order = None if order is None else order.astype(np.int64)


def _npy_header(f) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """dtype, shape, Fortran order and where the data starts, from an .npy stream's header."""
    version = np.lib.format.read_magic(f)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}[version]
    shape, fortran, dtype = read(f, max_header_size=MAX_HEADER_BYTES)
    return dtype, shape, fortran, f.tell()
