"""Save and load checkpoints: one .npz of plain arrays plus a JSON metadata entry.

Loading never unpickles (allow_pickle=False) and checks every array against the metadata, so a
damaged, foreign or hostile file is refused with a CheckpointError instead of half-loading.
Saving writes a temporary file beside the target and renames it over, so a crash at any moment
leaves either the old checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .model import PARAM_NAMES, param_shapes
from .optim import make_optimizer
from .state import TrainConfig, TrainState
from .vocab import Vocab

FORMAT = "namegen-checkpoint"
VERSION = 1
TEMP_SUFFIX = ".tmp"


def temp_prefix(path: Path, pid: int | None = None) -> str:
    """Temporary files for `path` are '.<name>.<writer pid>.<random>.tmp' in the same directory."""
    return f".{path.name}.{os.getpid() if pid is None else pid}."


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete temporary files of `path` whose writer is gone (a killed run); return them.

    A temporary file is only ever renamed into place once complete, so a stale one is never a
    checkpoint anyone needs; those of live writers are left alone.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*{TEMP_SUFFIX}"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def check_writable(directory: str | Path) -> None:
    """Make sure checkpoints can be written to `directory` before any work is done."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".namegen-probe.", delete=True):
            pass
    except OSError as e:
        raise CheckpointError(f"cannot write checkpoints to {directory}: {e.strerror or e}; "
                              "choose another place with --out-dir") from None


def _meta(state: TrainState) -> dict:
    from . import __version__

    return {
        "format": FORMAT,
        "version": VERSION,
        "namegen_version": __version__,
        "vocab": list(state.vocab.chars),
        "capitalize": state.capitalize,
        "config": dataclasses.asdict(state.config),
        "data": {"source": state.source, "fingerprint": state.data_fingerprint,
                 "names": len(state.names), "train": len(state.train_idx), "val": len(state.val_idx)},
        "names": state.names,
        "epoch": state.epoch,
        "position": state.position,
        "step": state.step,
        "optimizer": {"name": state.optimizer.name, "steps": state.optimizer.steps},
        "rng": state.rng.bit_generator.state,
        "history": state.history,
        "best_val_loss": state.best_val_loss,
        "epoch_stats": state.epoch_stats,
    }


def to_bytes(state: TrainState) -> bytes:
    """The checkpoint file's content."""
    views = state.param_views
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


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, content: bytes) -> None:
    """Write content to path so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it 0600; a checkpoint is a normal file
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_checkpoint(path: str | Path, state: TrainState) -> None:
    """Save atomically; a CheckpointError if the directory cannot be written (old file kept)."""
    path = Path(path)
    content = to_bytes(state)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, content)
    except OSError as e:
        raise CheckpointError(
            f"cannot write checkpoint {path}: {e.strerror or e}; "
            "free some space or choose another place with --out-dir"
        ) from None


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: {why}")


def load_checkpoint(path: str | Path) -> TrainState:
    """Load and validate a checkpoint; raise CheckpointError saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise _fail(path, "no such checkpoint; train one with `namegen train` or pass --checkpoint")
    if path.is_dir():
        raise _fail(path, "is a directory, not a checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError) as e:
        detail = "it holds pickled objects, which namegen never loads" if "pickle" in str(e) else \
            "damaged, truncated, or not an .npz file"
        raise _fail(path, f"not a readable namegen checkpoint ({detail})") from None
    except Exception as e:  # zlib and zipfile raise assorted types on corrupt members
        raise _fail(path, f"not a readable namegen checkpoint (damaged: {type(e).__name__})") from None
    return _state_from_arrays(path, arrays)


def _state_from_arrays(path: Path, arrays: dict) -> TrainState:
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
    try:
        return _build_state(path, meta, arrays)
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise _fail(path, f"damaged checkpoint (bad or missing field: {e})") from None


def _array(path: Path, arrays: dict, key: str, shape: tuple) -> np.ndarray:
    """A float64 array of the expected shape with only finite values, or a CheckpointError."""
    a = arrays.get(key)
    if a is None:
        raise _fail(path, f"damaged checkpoint (missing array {key})")
    if a.dtype != np.float64 or a.shape != shape:
        raise _fail(path, f"damaged checkpoint ({key} is {a.dtype}{list(a.shape)}, expected float64{list(shape)})")
    if not np.all(np.isfinite(a)):
        raise _fail(path, f"damaged checkpoint ({key} holds NaN or infinite values)")
    return a


def _build_state(path: Path, meta: dict, arrays: dict) -> TrainState:
    vocab = Vocab(tuple(meta["vocab"]))
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in meta["config"].items() if k in known})
    config.validate()
    V, H = vocab.size, config.hidden_size
    names = meta["names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(path, "damaged checkpoint (names are not a list of strings)")
    if vocab.unknown("".join(names)):
        raise _fail(path, "damaged checkpoint (the vocabulary does not cover the saved names)")

    params = np.concatenate([
        _array(path, arrays, f"params/{name}", shape).ravel()
        for name, shape in param_shapes(V, H).items()
    ])
    optimizer = make_optimizer(meta["optimizer"]["name"], params.size, config.learning_rate)
    optimizer.steps = int(meta["optimizer"]["steps"])
    for key in optimizer.state_names:
        optimizer.state[key] = _array(path, arrays, f"optimizer/{key}", (params.size,)).copy()

    n = len(names)
    train_idx = arrays.get("split/train")
    val_idx = arrays.get("split/val")
    for key, idx in (("split/train", train_idx), ("split/val", val_idx)):
        if idx is None or idx.dtype.kind != "i" or idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise _fail(path, f"damaged checkpoint ({key} is missing or out of range)")
    order = arrays.get("order")
    if order is not None and (order.dtype.kind != "i" or order.shape != train_idx.shape):
        raise _fail(path, "damaged checkpoint (order does not match the training split)")

    rng = np.random.Generator(np.random.PCG64())
    if meta["rng"].get("bit_generator") != "PCG64":
        raise _fail(path, "damaged checkpoint (unknown random generator state)")
    rng.bit_generator.state = meta["rng"]

    best = meta["best_val_loss"]
    if best is not None and not math.isfinite(best):
        raise _fail(path, "damaged checkpoint (best validation loss is not finite)")
    state = TrainState(
        config=config, vocab=vocab, names=names, capitalize=bool(meta["capitalize"]),
        source=str(meta["data"]["source"]), train_idx=train_idx.astype(np.int64),
        val_idx=val_idx.astype(np.int64), params=params, optimizer=optimizer, rng=rng,
        epoch=int(meta["epoch"]), position=int(meta["position"]), order=order,
        step=int(meta["step"]), history=list(meta["history"]), best_val_loss=best,
        epoch_stats=dict(meta["epoch_stats"]),
    )
    if state.data_fingerprint != meta["data"]["fingerprint"]:
        raise _fail(path, "damaged checkpoint (the saved names do not match their fingerprint)")
    if not 0 <= state.position <= len(train_idx) or (state.position and order is None):
        raise _fail(path, "damaged checkpoint (epoch position out of range)")
    return state
