"""Checkpoints: bit-exact round trips, atomic writes, and refusing anything that is not ours."""

import zipfile

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint, save_checkpoint, to_bytes
from namegen.errors import CheckpointError

from checkpoint_edits import rewrite, with_meta


def assert_same_state(a, b):
    assert a.config == b.config and a.vocab == b.vocab and a.names == b.names
    np.testing.assert_array_equal(a.params, b.params)
    assert a.params.dtype == b.params.dtype == np.float64
    for key in a.optimizer.state:
        np.testing.assert_array_equal(a.optimizer.state[key], b.optimizer.state[key])
    assert a.optimizer.steps == b.optimizer.steps
    assert (a.epoch, a.position, a.step, a.best_val_loss) == (b.epoch, b.position, b.step, b.best_val_loss)
    assert a.history == b.history and a.capitalize == b.capitalize
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    np.testing.assert_array_equal(a.val_idx, b.val_idx)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_round_trip_is_bit_exact(trained_state, tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, trained_state)
    assert_same_state(trained_state, load_checkpoint(path))


def test_save_leaves_no_temporary_files_and_creates_the_directory(trained_state, tmp_path):
    path = tmp_path / "deep" / "dir" / "c.npz"
    save_checkpoint(path, trained_state)
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.npz"]


def test_loading_never_needs_pickle(trained_checkpoint):
    with np.load(trained_checkpoint, allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)


@pytest.mark.parametrize("change, message", [
    (lambda a: with_meta(a, version=99), "newer namegen"),
    (lambda a: with_meta(a, format="something-else"), "not a namegen checkpoint"),
    (lambda a: {"meta": None}, "no metadata"),
    (lambda a: {"meta": np.frombuffer(b"{not json", dtype=np.uint8)}, "not valid JSON"),
    (lambda a: {"params/Whh": a["params/Whh"][:-1]}, "params/Whh"),
    (lambda a: {"params/Why": a["params/Why"].astype(np.float32)}, "params/Why"),
    (lambda a: {"params/bh": np.full_like(a["params/bh"], np.nan)}, "NaN"),
    (lambda a: {"params/by": None}, "missing array params/by"),
    (lambda a: with_meta(a, vocab=list("abcdefghijklmnopqrstuvwxyz0")), "params/Wxh"),
    (lambda a: with_meta(a, vocab=list("abc")), "vocabulary does not cover"),
    (lambda a: {"split/val": np.array([10**6])}, "out of range"),
    (lambda a: {"params/Whh": np.array([{"x": 1}], dtype=object)}, "pickled"),
])
def test_damaged_or_foreign_checkpoints_are_refused(trained_checkpoint, tmp_path, change, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(rewrite(trained_checkpoint, tmp_path / "bad.npz", change))


@pytest.mark.parametrize("content", [
    b"", b"not a zip at all", bytes(range(256)) * 10,
])
def test_random_bytes_are_refused(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable namegen checkpoint"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(trained_state, tmp_path):
    content = to_bytes(trained_state)
    for cut in (10, len(content) // 2, len(content) - 10):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(content[:cut])
        with pytest.raises(CheckpointError):
            load_checkpoint(path)


def test_a_zip_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointError, match="no metadata"):
        load_checkpoint(path)


def test_missing_checkpoint_says_how_to_get_one(tmp_path):
    with pytest.raises(CheckpointError, match="namegen train"):
        load_checkpoint(tmp_path / "none.npz")


def test_failed_save_keeps_the_previous_checkpoint(trained_state, tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    save_checkpoint(path, trained_state)
    before = path.read_bytes()

    def broken_write(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("namegen.checkpoint.os.fsync", broken_write)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(path, trained_state)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
