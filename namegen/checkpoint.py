"""The checkpoint format: one .npz of plain arrays plus a JSON metadata entry, saved and loaded.

Loading never unpickles (allow_pickle=False) and checks each section (model, split, optimizer,
progress) against the metadata, so a damaged, foreign or hostile file is refused with a
CheckpointError instead of half-loading. Saving goes through files.atomic_write, so a crash at
any moment leaves the old checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .data import bundled_path
from .errors import CheckpointError, OptionName
from .files import atomic_write, probe_writable
from .model import PARAM_NAMES, Model, param_shapes
from .optim import OPTIMIZERS, Optimizer, make_optimizer
from .state import EpochRecord, EpochStats, TrainConfig, TrainState
from .vocab import Vocab

FORMAT = "namegen-checkpoint"
VERSION = 1


def default_checkpoint() -> Path:
    """checkpoints/dinos.npz under the current directory if it is there, else the bundled one."""
    local = Path("checkpoints") / "dinos.npz"
    return local if local.exists() else bundled_path("checkpoints", "dinos.npz")


# ------------------------------------------------------------------------------------------ save

def _meta(state: TrainState) -> dict:
    from . import __version__

    model = state.model
    return {
        "format": FORMAT,
        "version": VERSION,
        "namegen_version": __version__,
        "vocab": list(model.vocab.chars),
        "capitalize": model.capitalize,
        "config": dataclasses.asdict(state.config),
        "data": {"source": state.source, "fingerprint": model.fingerprint,
                 "names": len(model.names), "train": len(state.train_idx), "val": len(state.val_idx)},
        "names": model.names,
        "epoch": state.epoch,
        "position": state.position,
        "step": state.step,
        "optimizer": {"name": state.optimizer.name, "steps": state.optimizer.steps},
        "rng": state.rng.bit_generator.state,
        "history": [dataclasses.asdict(record) for record in state.history],
        "best_val_loss": state.best_val_loss,
        "epoch_stats": dataclasses.asdict(state.epoch_stats),
    }


def to_bytes(state: TrainState) -> bytes:
    """The checkpoint file's content."""
    views = state.model.param_views
    arrays = {f"params/{name}": views[name] for name in PARAM_NAMES}
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


def save_checkpoint(path: str | Path, state: TrainState) -> None:
    """Save atomically; a CheckpointError if it cannot be written (the old file is kept then)."""
    path = Path(path)
    content = to_bytes(state)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, content)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoint {path}: {e.strerror or e}; free some space or "
                              "choose another place with ", OptionName("out_dir")) from None


def check_checkpoint_dir(directory: str | Path) -> None:
    """Make sure checkpoints can be written to `directory` before any work is done."""
    try:
        probe_writable(directory)
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoints to {directory}: {e.strerror or e}; "
                              "choose another place with ", OptionName("out_dir")) from None


# ------------------------------------------------------------------------------------------ load

def load_checkpoint(path: str | Path) -> TrainState:
    """Load and validate a whole checkpoint: the model and the run that trains it, enough to resume."""
    return _Reader(path).state()


def load_model(path: str | Path) -> Model:
    """The model of a checkpoint: what sampling, scoring and diagnostics need. The whole file is
    validated all the same, so every command refuses a damaged checkpoint alike."""
    return load_checkpoint(path).model


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: {why}")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file, read without unpickling."""
    if not path.exists():
        raise _fail(path, "no such checkpoint; train one with `namegen train`, or give the path of one")
    if path.is_dir():
        raise _fail(path, "is a directory, not a checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError) as e:
        detail = "it holds pickled objects, which namegen never loads" if "pickle" in str(e) else \
            "damaged, truncated, or not an .npz file"
        raise _fail(path, f"not a readable namegen checkpoint ({detail})") from None
    except Exception as e:  # zlib and zipfile raise assorted types on corrupt members
        raise _fail(path, f"not a readable namegen checkpoint (damaged: {type(e).__name__})") from None


def _read_meta(path: Path, arrays: dict[str, np.ndarray]) -> dict:
    """The metadata entry, checked to be ours and of a version this namegen reads."""
    meta_bytes = arrays.get("meta")
    if meta_bytes is None or meta_bytes.dtype != np.uint8 or meta_bytes.ndim != 1:
        raise _fail(path, "not a namegen checkpoint (no metadata entry)")
    try:
        meta = json.loads(meta_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _fail(path, "damaged checkpoint (its metadata is not valid JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _fail(path, "not a namegen checkpoint (unknown format)")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise _fail(path, f"written by a newer namegen (format version {version}, this one reads "
                          f"up to {VERSION}); upgrade namegen to read it")
    return meta


class _Reader:
    """One checkpoint file being loaded: its metadata and arrays, checked one section at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.arrays = _read_arrays(self.path)
        self.meta = _read_meta(self.path, self.arrays)

    def fail(self, why: str) -> CheckpointError:
        return _fail(self.path, why)

    def state(self) -> TrainState:
        """Every section, checked; a missing or mistyped field is a CheckpointError too."""
        try:
            return self._state()
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise self.fail(f"damaged checkpoint (bad or missing field: {e})") from None

    def _state(self) -> TrainState:
        config = self.config()
        model = self.model(config)
        train_idx, val_idx = self.split(len(model.names))
        state = TrainState(config=config, model=model, source=str(self.meta["data"]["source"]),
                           train_idx=train_idx, val_idx=val_idx,
                           optimizer=self.optimizer(model.params.size, config.learning_rate), rng=self.rng())
        self.progress(state)
        return state

    # ---------------------------------------------------------------------------------- sections

    def array(self, key: str, shape: tuple) -> np.ndarray:
        """A float64 array of the expected shape with only finite values, or a CheckpointError."""
        a = self.arrays.get(key)
        if a is None:
            raise self.fail(f"damaged checkpoint (missing array {key})")
        if a.dtype != np.float64 or a.shape != shape:
            raise self.fail(f"damaged checkpoint ({key} is {a.dtype}{list(a.shape)}, expected float64{list(shape)})")
        if not np.all(np.isfinite(a)):
            raise self.fail(f"damaged checkpoint ({key} holds NaN or infinite values)")
        return a

    def config(self) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        values = {k: v for k, v in self.meta["config"].items() if k in known}
        if values.get("max_steps") == 0:  # files written before max_steps was optional used 0 for no limit
            values["max_steps"] = None
        return TrainConfig(**values)

    def model(self, config: TrainConfig) -> Model:
        """The vocabulary, the names, case handling and the parameters."""
        vocab = Vocab(tuple(self.meta["vocab"]))
        names = self.meta["names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self.fail("damaged checkpoint (names are not a list of strings)")
        if vocab.unknown("".join(names)):
            raise self.fail("damaged checkpoint (the vocabulary does not cover the saved names)")
        params = np.concatenate([self.array(f"params/{name}", shape).ravel()
                                 for name, shape in param_shapes(vocab.size, config.hidden_size).items()])
        model = Model(vocab, params, config.hidden_size, config.keep_case, bool(self.meta["capitalize"]), names)
        if self.meta["data"]["fingerprint"] != model.fingerprint:
            raise self.fail("damaged checkpoint (the saved names do not match their fingerprint)")
        return model

    def split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The indices of the training and validation names."""
        for key in ("split/train", "split/val"):
            idx = self.arrays.get(key)
            if idx is None or idx.dtype.kind != "i" or idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
                raise self.fail(f"damaged checkpoint ({key} is missing or out of range)")
        return self.arrays["split/train"].astype(np.int64), self.arrays["split/val"].astype(np.int64)

    def optimizer(self, size: int, learning_rate: float) -> Optimizer:
        name = self.meta["optimizer"]["name"]
        if name not in OPTIMIZERS:
            raise self.fail(f"damaged checkpoint (unknown optimizer {name!r})")
        optimizer = make_optimizer(name, size, learning_rate)
        optimizer.steps = int(self.meta["optimizer"]["steps"])
        for key in optimizer.state_names:
            optimizer.state[key] = self.array(f"optimizer/{key}", (size,)).copy()
        return optimizer

    def rng(self) -> np.random.Generator:
        rng = np.random.Generator(np.random.PCG64())
        if self.meta["rng"].get("bit_generator") != "PCG64":
            raise self.fail("damaged checkpoint (unknown random generator state)")
        rng.bit_generator.state = self.meta["rng"]
        return rng

    def progress(self, state: TrainState) -> None:
        """Where the run is: epoch, position, order, updates, history and best loss, set on `state`."""
        meta = self.meta
        best = meta["best_val_loss"]
        if best is not None and not math.isfinite(best):
            raise self.fail("damaged checkpoint (best validation loss is not finite)")
        order = self.arrays.get("order")
        if order is not None and (order.dtype.kind != "i" or order.shape != state.train_idx.shape):
            raise self.fail("damaged checkpoint (order does not match the training split)")
        state.epoch, state.position, state.step = int(meta["epoch"]), int(meta["position"]), int(meta["step"])
        state.order, state.best_val_loss = order, best
        state.history = [EpochRecord(**record) for record in meta["history"]]
        state.epoch_stats = EpochStats(**meta["epoch_stats"])
        if not 0 <= state.position <= len(state.train_idx) or (state.position and order is None):
            raise self.fail("damaged checkpoint (epoch position out of range)")

