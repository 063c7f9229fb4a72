"""Checkpoints: bit-exact round trips, atomic writes, and refusing anything that is not ours."""

import os
import zipfile

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint, load_model, save_checkpoint, to_bytes
from namegen.errors import CheckpointError
from namegen.files import remove_stale_temporaries

from conftest import with_meta


def assert_same_state(a, b):
    assert a.config == b.config and a.model.vocab == b.model.vocab and a.model.names == b.model.names
    np.testing.assert_array_equal(a.model.params, b.model.params)
    assert a.model.params.dtype == b.model.params.dtype == np.float64
    for key in a.optimizer.state:
        np.testing.assert_array_equal(a.optimizer.state[key], b.optimizer.state[key])
    assert a.optimizer.steps == b.optimizer.steps
    assert (a.epoch, a.position, a.step, a.best_val_loss) == (b.epoch, b.position, b.step, b.best_val_loss)
    assert a.history == b.history and a.model.capitalize == b.model.capitalize
    assert a.epoch_stats == b.epoch_stats
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    np.testing.assert_array_equal(a.val_idx, b.val_idx)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_round_trip_is_bit_exact(trained_state, tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, trained_state)
    assert_same_state(trained_state, load_checkpoint(path))


def test_the_model_alone_loads_as_the_model_of_the_run(trained_checkpoint):
    model, run = load_model(trained_checkpoint), load_checkpoint(trained_checkpoint)
    np.testing.assert_array_equal(model.params, run.model.params)
    assert (model.vocab, model.names, model.capitalize, model.keep_case) == \
        (run.model.vocab, run.model.names, run.model.capitalize, run.model.keep_case)


def test_save_leaves_no_temporary_files_and_creates_the_directory(trained_state, tmp_path):
    path = tmp_path / "deep" / "dir" / "c.npz"
    save_checkpoint(path, trained_state)
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.npz"]


def test_loading_never_needs_pickle(trained_checkpoint):
    with np.load(trained_checkpoint, allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)


class Payload:
    """Unpickling this creates a file: proof that something executed."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


HOSTILE = {  # name -> (change of the arrays, given the marker file; what the message says)
    "newer version": (lambda a, m: with_meta(a, version=99), "newer namegen"),
    "future version 2": (lambda a, m: with_meta(a, version=2), "newer namegen"),
    "another format": (lambda a, m: with_meta(a, format="something-else"), "not a namegen checkpoint"),
    "no metadata": (lambda a, m: {"meta": None}, "no metadata"),
    "metadata not JSON": (lambda a, m: {"meta": np.frombuffer(b"{not json", dtype=np.uint8)}, "not valid JSON"),
    "metadata not UTF-8": (lambda a, m: {"meta": np.frombuffer(b"\x80\x81 not json", dtype=np.uint8)}, "not valid JSON"),
    "metadata a JSON list": (lambda a, m: {"meta": np.frombuffer(b"[1, 2]", dtype=np.uint8)}, "not a namegen checkpoint"),
    "a row short": (lambda a, m: {"params/Whh": a["params/Whh"][:-1]}, "params/Whh"),
    "transposed": (lambda a, m: {"params/Wxh": a["params/Wxh"].T.copy()}, "params/Wxh"),
    "float32": (lambda a, m: {"params/Why": a["params/Why"].astype(np.float32)}, "params/Why"),
    "complex": (lambda a, m: {"params/Whh": a["params/Whh"].astype(np.complex128)}, "params/Whh"),
    "integers": (lambda a, m: {"params/by": a["params/by"].astype(np.int64)}, "params/by"),
    "NaN in parameters": (lambda a, m: {"params/bh": np.full_like(a["params/bh"], np.nan)}, "NaN"),
    "infinity in optimizer state": (lambda a, m: {"optimizer/v": np.full_like(a["optimizer/v"], np.inf)},
                                    "optimizer/v holds NaN or infinite"),
    "a parameter missing": (lambda a, m: {"params/by": None}, "missing array params/by"),
    "optimizer state missing": (lambda a, m: {"optimizer/m": None}, "missing array optimizer/m"),
    "vocabulary too large for the parameters": (lambda a, m: with_meta(a, vocab=list("abcdefghijklmnopqrstuvwxyzé")),
                                                "params/Wxh"),
    "vocabulary not covering the names": (lambda a, m: with_meta(a, vocab=list("abc")), "vocabulary does not cover"),
    "names not matching the fingerprint": (lambda a, m: with_meta(a, names=["x"] * 3), "fingerprint"),
    "split out of range": (lambda a, m: {"split/val": np.array([10**6])}, "out of range"),
    "an impossible option": (lambda a, m: with_meta(a, config={"hidden_size": 0}), "hidden_size must be"),
    "a pickled object array": (lambda a, m: {"params/Whh": np.array([Payload(str(m))], dtype=object)}, "pickled"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_damaged_foreign_or_hostile_checkpoints_are_refused(adam_checkpoint, damaged, tmp_path, case):
    change, message = HOSTILE[case]
    marker = tmp_path / "EXECUTED"
    path = damaged(adam_checkpoint, lambda arrays: change(arrays, marker))
    for load in (load_checkpoint, load_model):
        with pytest.raises(CheckpointError, match=message) as caught:
            load(path)
        assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    assert not marker.exists(), "unpickling ran code from the file"


@pytest.mark.parametrize("content", [
    b"", b"not a zip at all", bytes(range(256)) * 10, b"\x00" * 100, os.urandom(4096), b"PK\x03\x04" + os.urandom(200),
])
def test_random_bytes_are_refused(tmp_path, content):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable namegen checkpoint"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(trained_state, tmp_path):
    content = to_bytes(trained_state)
    for cut in (10, len(content) // 2, len(content) * 2 // 3, len(content) - 10):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(content[:cut])
        with pytest.raises(CheckpointError):
            load_checkpoint(path)


def test_a_zip_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "photos.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("cat.jpg", b"\xff\xd8\xff")
    with pytest.raises(CheckpointError, match="not a namegen checkpoint"):
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

    monkeypatch.setattr("namegen.files.os.fsync", broken_write)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint(path, trained_state)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "c.npz"
    dead = tmp_path / ".c.npz.999999999.abc.tmp"  # above any pid_max: no such process
    live = tmp_path / f".c.npz.{os.getpid()}.def.tmp"
    other = tmp_path / ".d.npz.999999999.abc.tmp"  # another checkpoint's: not ours to touch
    for p in (dead, live, other):
        p.write_bytes(b"partial")
    assert remove_stale_temporaries(target) == [dead]
    assert not dead.exists() and live.exists() and other.exists()


def test_a_checkpoint_from_before_max_steps_was_optional_loads_with_no_limit(trained_checkpoint, damaged):
    config = dict(load_checkpoint(trained_checkpoint).config.__dict__, max_steps=0)  # how older files said "none"
    state = load_checkpoint(damaged(trained_checkpoint, lambda arrays: with_meta(arrays, config=config)))
    assert state.config.max_steps is None
