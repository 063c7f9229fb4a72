"""Make damaged copies of a checkpoint for the tests that must refuse them."""

import json
from pathlib import Path

import numpy as np


def rewrite(path: Path, out: Path, change) -> Path:
    """Copy the checkpoint at `path` to `out` with change(arrays) applied: key -> new array, or None to drop."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(change(arrays))
    np.savez(out, **{k: v for k, v in arrays.items() if v is not None})
    return out


def with_meta(arrays, **fields):
    """A change that replaces fields of the JSON metadata."""
    meta = json.loads(arrays["meta"].tobytes())
    meta.update(fields)
    return {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
