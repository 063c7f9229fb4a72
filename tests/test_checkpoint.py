"""Checkpoints: bit-exact round trips, atomic writes, and refusing anything that is not ours."""

import contextlib
import json
import os
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint, load_model, save_checkpoint, to_bytes
from namegen.errors import CheckpointError, TrainingError
from namegen.files import remove_stale_temporaries
from namegen.state import TrainConfig, new_state, resume_state
from namegen.training import best_path, train

from conftest import forge_zip, npy_header, with_meta


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
    "future version 3": (lambda a, m: with_meta(a, version=3), "newer namegen"),
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
    "capitals not a list": (lambda a, m: with_meta(a, capitals="start"), "capitals is not a list"),
    "capitals of long strings": (lambda a, m: with_meta(a, capitals=["after a space"]), "capitals is not a list"),
    "capitals after a letter": (lambda a, m: with_meta(a, capitals=["a"]), "capitals is not a list"),
    "capitals without end": (lambda a, m: with_meta(a, capitals=[" "] * 10**5), "capitals is not a list"),
    "rules not a dict": (lambda a, m: with_meta(a, rules=[]), "rules are not the rules"),
    "rules with an unknown pair": (lambda a, m: with_meta(a, rules={
        "starts": "", "ends": "", "balanced": ["<>"], "capital_places": [], "word_starts": ["letter"]}), "rules are not"),
    "rules with a character out of the vocabulary": (lambda a, m: with_meta(a, rules={
        "starts": "\u202e", "ends": "", "balanced": [], "capital_places": [], "word_starts": []}), "rules are not"),
    "split out of range": (lambda a, m: {"split/val": np.r_[a["split/val"][:-1], 10**6]}, "out of range"),
    "an impossible option": (lambda a, m: with_meta(a, config={"hidden_size": 0}), "hidden_size must be"),
    "a pickled object array": (lambda a, m: {"params/Whh": np.array([Payload(str(m))], dtype=object)}, "pickled"),
    "the optimizer section of another optimizer": (
        lambda a, m: with_meta(a, optimizer={"name": "adagrad", "steps": 3}) | {
            "optimizer/m": None, "optimizer/v": None, "optimizer/sum_sq": np.abs(a["optimizer/v"])},
        "optimizer section is adagrad's, but the run's configuration says adam"),
    "the optimizer section of plain SGD": (
        lambda a, m: with_meta(a, optimizer={"name": "sgd", "steps": 3}) | {"optimizer/m": None, "optimizer/v": None},
        "optimizer section is sgd's, but the run's configuration says adam"),
    "a negative second moment": (lambda a, m: {"optimizer/v": -1.0 - np.abs(a["optimizer/v"])}, "optimizer/v"),
    "weights too large to compute with": (
        lambda a, m: {"params/Why": np.where(np.arange(a["params/Why"].size).reshape(a["params/Why"].shape) % 2,
                                             1e308, -1e308)}, "too large for probabilities to be computed"),
}


def test_where_capitals_go_is_saved_and_an_older_file_reads_as_capitals_at_the_start(tmp_path, damaged):
    from namegen.data import parse_names
    from namegen.state import TrainConfig, new_state

    state = new_state(TrainConfig(hidden_size=4), parse_names("Tapu Koko\nMr. Mime\nPikachu\nHo-Oh\n" * 5, "p.txt"))
    assert state.model.capitals == (" ", "-", "start")
    path = tmp_path / "p.npz"
    save_checkpoint(path, state)
    assert load_model(path).capitals == (" ", "-", "start") and load_model(path).display("mr. mime") == "Mr. Mime"
    meta = json.loads(np.load(path)["meta"].tobytes())
    meta.pop("capitals")
    older = damaged(path, lambda arrays: {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}, "older.npz")
    assert load_model(older).capitals == ("start",) and load_model(older).display("mr. mime") == "Mr. mime"


def test_the_rules_of_the_data_are_saved_and_an_older_file_learns_them_from_its_names(tmp_path, damaged):
    from namegen.data import parse_names
    from namegen.rules import Rules
    from namegen.state import TrainConfig, new_state

    state = new_state(TrainConfig(hidden_size=4), parse_names("Hiril (Elf)\nO'Neill\nDol Guldur\n" * 5, "m.txt", "keep"))
    path = tmp_path / "m.npz"
    save_checkpoint(path, state)
    assert load_model(path).rules == state.model.rules == Rules.of(state.model.names)
    assert load_model(path).rules.balanced == ("()",)
    # what the file says holds, even where its names say otherwise: the rules travel with the weights
    looser = dict(state.model.rules.to_json(), balanced=[])
    assert load_model(damaged(path, lambda a: with_meta(a, rules=looser))).rules.balanced == ()
    meta = json.loads(np.load(path)["meta"].tobytes())
    meta.pop("rules")
    older = damaged(path, lambda arrays: {"meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}, "o.npz")
    assert load_model(older).saved_rules is None and load_model(older).rules == state.model.rules


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
    b"", b"not a zip at all", bytes(range(256)) * 10, b"\x00" * 100, np.random.default_rng(0).bytes(4096),
    b"PK\x03\x04" + np.random.default_rng(1).bytes(200),
], ids=["empty", "text", "every byte", "zeros", "random", "a zip signature then random"])
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


# --------------------------------------------------------------------- bounded loading (hostile)

def entries_of(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def load_peak_memory(path) -> int:
    """Bytes of peak traced memory while trying to load `path` (which must be refused)."""
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_parameter_declared_as_a_3_gb_array_is_refused_before_its_data_is_read(trained_checkpoint, tmp_path):
    entries = entries_of(trained_checkpoint)
    header = npy_header((20000, 20000))
    entries["params/Whh.npy"] = header + bytes(4096)
    path = forge_zip(tmp_path / "bomb.npz", entries, {"params/Whh.npy": len(header) + 20000 * 20000 * 8})
    assert load_peak_memory(path) < 20 * 2**20
    with pytest.raises(CheckpointError, match=r"params/Whh is float64\[20000, 20000\], expected float64\[24, 24\]"):
        load_checkpoint(path)


def test_an_array_whose_entry_declares_more_bytes_than_its_shape_is_refused(trained_checkpoint, tmp_path):
    entries = entries_of(trained_checkpoint)
    path = forge_zip(tmp_path / "bomb.npz", entries, {"params/Whh.npy": 3 * 10**9})
    assert load_peak_memory(path) < 20 * 2**20
    with pytest.raises(CheckpointError, match="params/Whh declares 3000000000 bytes"):
        load_checkpoint(path)


@pytest.mark.parametrize("name", ["junk.bin", "params/extra.npy", "meta.npy.npy"])
def test_an_unknown_entry_is_refused_unread_whatever_it_declares(trained_checkpoint, tmp_path, name):
    entries = entries_of(trained_checkpoint) | {name: b" " * 1000}
    path = forge_zip(tmp_path / "extra.npz", entries, {name: 1_150_000_000})
    assert load_peak_memory(path) < 20 * 2**20
    with pytest.raises(CheckpointError, match="an unexpected entry"):
        load_checkpoint(path)


def test_metadata_declared_larger_than_any_checkpoint_holds_is_refused_unread(trained_checkpoint, tmp_path):
    entries = entries_of(trained_checkpoint)
    path = forge_zip(tmp_path / "fat.npz", entries, {"meta.npy": 1_200_000_000})
    assert load_peak_memory(path) < 20 * 2**20
    with pytest.raises(CheckpointError, match="its metadata declares 1200000000 bytes"):
        load_checkpoint(path)


def test_an_archive_listing_more_entries_than_a_checkpoint_has_is_refused(tmp_path):
    path = forge_zip(tmp_path / "many.npz", {f"x{i}.npy": b"" for i in range(100)})
    with pytest.raises(CheckpointError, match="lists 100 entries"):
        load_checkpoint(path)


def raw_meta(text: str):
    return lambda arrays: {"meta": np.frombuffer(text.encode(), dtype=np.uint8)}


META_CASES = {  # name -> (change of the metadata fields or raw text, what the message says)
    "nested 100,000 deep": ('{"format": "namegen-checkpoint", "version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                            "nested too deeply"),
    "epoch 1e999": ({"epoch": 1e999}, "epoch is inf"),
    "position 1e999": ({"position": float("inf")}, "position is inf"),
    "negative epoch": ({"epoch": -1}, "epoch is -1"),
    "optimizer steps 1e999": ({"optimizer": {"name": "sgd", "steps": 1e999}}, "optimizer.steps is inf"),
    "PCG64 state -1": ({"rng": {"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0,
                                 "uinteger": 0}}, "rng.state.state is -1"),
    "PCG64 state 2**300": ({"rng": {"bit_generator": "PCG64", "state": {"state": 2**300, "inc": 1}, "has_uint32": 0,
                                     "uinteger": 0}}, "rng.state.state is"),
    "history of empty records": ({"history": [{}, {}]}, "history record 1 does not hold the fields of an EpochRecord"),
    "history of lists": ({"history": [[1, 2, 3], [4]]}, "history record 1 does not hold the fields of an EpochRecord"),
    "history of strings": ({"history": ["a", "b"]}, "history record 1 does not hold the fields of an EpochRecord"),
    "history of the wrong length": ({"history": []}, "one record for each of the 2 epochs"),
    "hidden size 24.0": ({"config": {"hidden_size": 24.0}}, "hidden_size must be a whole number"),
    "batch size 1.5": ({"config": {"hidden_size": 24, "batch_size": 1.5}}, "batch_size must be a whole number"),
    "seed 'abc'": ({"config": {"hidden_size": 24, "seed": "abc"}}, "seed must be a whole number"),
    "a surrogate in the source": ({"data": "SOURCE"}, "data.source is not text"),
    "a surrogate in the vocabulary": ({"vocab": "VOCAB"}, "the vocabulary is not text"),
    "no names": ({"names": []}, "names are not a list of names"),
    "epoch statistics of the wrong kind": ({"epoch_stats": {"loss": "x"}}, "epoch_stats does not hold the fields of an EpochStats"),
    "best loss NaN": ({"best_val_loss": float("nan")}, "best validation loss is not a finite number"),
}


@pytest.mark.parametrize("case", sorted(META_CASES))
def test_every_metadata_field_is_checked_at_load(trained_checkpoint, damaged, case):
    change, message = META_CASES[case]
    if isinstance(change, str):
        path = damaged(trained_checkpoint, raw_meta(change))
    else:
        meta = json.loads(entries_of(trained_checkpoint)["meta.npy"][128:])
        if change.get("data") == "SOURCE":
            change = {"data": dict(meta["data"], source="\ud800 bad")}
        elif change.get("vocab") == "VOCAB":
            change = {"vocab": meta["vocab"][:-1] + ["\udfff"]}
        elif "config" in change:
            change = {"config": dict(meta["config"], **change["config"])}
        text = json.dumps(meta | change)  # json escapes lone surrogates, as a hostile file may
        path = damaged(trained_checkpoint, raw_meta(text))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_metadata_that_is_raw_json_without_an_npy_header_is_refused(trained_checkpoint, tmp_path):
    entries = entries_of(trained_checkpoint)
    entries["meta.npy"] = entries["meta.npy"][128:]  # the JSON alone
    with pytest.raises(CheckpointError, match="metadata entry is not an .npy byte array"):
        load_checkpoint(forge_zip(tmp_path / "raw.npz", entries))


@pytest.mark.parametrize("change, message", [
    (lambda a: {"split/val": a["split/train"][: len(a["split/val"])].copy()}, "both a training and a validation name"),
    (lambda a: {"order": np.r_[a["split/train"][1:], -1]}, "order is not an order of the training names"),
    (lambda a: {"order": np.r_[a["split/train"][1:], a["split/val"][0]]}, "order is not an order of the training names"),
    (lambda a: {"order": np.r_[a["split/train"][1:], 10**6]}, "order is not an order of the training names"),
    (lambda a: {"split/train": np.zeros_like(a["split/train"])}, "repeats a name"),
])
def test_splits_and_the_epoch_order_must_be_consistent(trained_checkpoint, damaged, change, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(damaged(trained_checkpoint, change))


def test_an_empty_training_split_is_refused_as_damage_not_reported_as_divergence(trained_checkpoint, damaged):
    meta = json.loads(entries_of(trained_checkpoint)["meta.npy"][128:])
    text = json.dumps(meta | {"data": dict(meta["data"], train=0)})
    path = damaged(trained_checkpoint, lambda a: raw_meta(text)(a) | {"split/train": a["split/train"][:0]})
    with pytest.raises(CheckpointError, match="data.train is 0, expected a whole number from 1"):
        load_checkpoint(path)


def test_a_file_that_is_no_zip_is_not_said_to_hold_pickles(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("Rex\nTroodon\n")
    with pytest.raises(CheckpointError, match=r"not an \.npz archive") as caught:
        load_checkpoint(path)
    assert "pickle" not in str(caught.value)


@pytest.mark.slow
def test_a_fifo_or_a_pipe_given_as_a_checkpoint_is_refused_at_once(tmp_path, trained_checkpoint):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for args, stdin in ((["info", fifo], None), (["sample", "-c", fifo], None),
                        (["info", "/dev/stdin"], trained_checkpoint.read_bytes())):
        result = subprocess.run([sys.executable, "-m", "namegen", *map(str, args)], input=stdin,
                                capture_output=True, timeout=30)
        assert result.returncode == 1 and b"is not a regular file" in result.stderr, result.stderr


def test_a_directory_where_the_checkpoint_goes_is_not_said_to_lack_space(trained_state, tmp_path):
    (tmp_path / "c.npz").mkdir()
    with pytest.raises(CheckpointError, match="move the directory that stands there") as caught:
        save_checkpoint(tmp_path / "c.npz", trained_state)
    assert "free some space" not in str(caught.value)


@pytest.mark.parametrize("keep_case, case", [(True, "keep"), (False, "lower")])
def test_a_checkpoint_from_before_case_loads_its_keep_case_as_case(trained_checkpoint, damaged, keep_case, case):
    meta = json.loads(entries_of(trained_checkpoint)["meta.npy"][128:])
    config = {k: v for k, v in meta["config"].items() if k != "case"} | {"keep_case": keep_case}
    data = {k: v for k, v in meta["data"].items() if k != "case"}
    state = load_checkpoint(damaged(trained_checkpoint, lambda a: with_meta(a, config=config, data=data)))
    assert state.config.case == case and state.model.keep_case == keep_case


def test_a_checkpoint_from_before_norm_clipping_loads_with_nothing_rescaled(trained_checkpoint, damaged):
    meta = json.loads(entries_of(trained_checkpoint)["meta.npy"][128:])
    history = [{k: v for k, v in r.items() if k != "rescale_fraction"} for r in meta["history"]]
    stats = {k: v for k, v in meta["epoch_stats"].items() if k != "rescaled"}
    config = {k: v for k, v in meta["config"].items() if k != "clip_norm"}
    state = load_checkpoint(damaged(trained_checkpoint,
                                    lambda a: with_meta(a, history=history, epoch_stats=stats, config=config)))
    assert state.config.clip_norm == 0 and state.epoch_stats.rescaled == 0
    assert [r.rescale_fraction for r in state.history] == [0.0] * len(history)


def test_the_best_checkpoint_stays_the_best_when_the_latest_moves_on(few_dinos, tmp_path):
    """The best file may share the latest's data on disk (a hard link); the next epoch's latest
    must not change it."""
    state = new_state(TrainConfig(hidden_size=6, epochs=1, learning_rate=0.05), few_dinos)
    train(state, tmp_path / "r.latest.npz")
    best_bytes = best_path(tmp_path / "r.latest.npz").read_bytes()
    assert best_bytes == (tmp_path / "r.latest.npz").read_bytes()
    resumed = resume_state(load_checkpoint(tmp_path / "r.latest.npz"), {"epochs": 2, "learning_rate": 5.0, "clip": 0})
    with contextlib.suppress(TrainingError):  # a step this large makes the model worse, or diverges
        train(resumed, tmp_path / "r.latest.npz")
    assert best_path(tmp_path / "r.latest.npz").read_bytes() == best_bytes
    assert load_checkpoint(best_path(tmp_path / "r.latest.npz")).epoch == 1


def test_a_file_system_without_hard_links_gets_the_best_written_out(few_dinos, tmp_path, monkeypatch):
    def no_links(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr("os.link", no_links)
    state = new_state(TrainConfig(hidden_size=6, epochs=1), few_dinos)
    train(state, tmp_path / "r.latest.npz")
    assert best_path(tmp_path / "r.latest.npz").read_bytes() == (tmp_path / "r.latest.npz").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.fixture(scope="module")
def checkpoints_of(few_dinos, tmp_path_factory):
    """One small trained checkpoint per kind of run asked for, made once."""
    made = {}

    def make(**options):
        key = tuple(sorted(options.items()))
        options = dict(options)
        if key not in made:
            from namegen.data import NameList

            data = few_dinos
            if options.pop("styles", False):
                half = len(few_dinos.names) // 2
                data = NameList(few_dinos.names, ("start",), "two.txt", styles=("a", "b"),
                                style_of=np.repeat([0, 1], [half, len(few_dinos.names) - half]))
            state = new_state(TrainConfig(hidden_size=4, epochs=1, **options), data)
            train(state)
            made[key] = tmp_path_factory.mktemp("kinds") / "run.npz"
            save_checkpoint(made[key], state)
        return made[key]

    return make


@pytest.mark.parametrize("options, change, said", [
    ({"styles": True}, lambda a: {"params/B": a["params/B"] + 0.5}, "params/B is not params/S times params/Wsh"),
    ({"embedding_size": 3, "optimizer": "adam"}, lambda a: {"params/Wxh": a["params/Wxh"] * 2},
     "params/Wxh is not factors/E times factors/Wih"),
    ({"optimizer": "adagrad"}, lambda a: {"optimizer/sum_sq": -a["optimizer/sum_sq"] - 1}, "optimizer/sum_sq"),
    ({"optimizer": "rprop", "batch_size": 0}, lambda a: {"optimizer/step": -a["optimizer/step"]}, "optimizer/step"),
    ({"optimizer": "rprop", "batch_size": 0}, lambda a: {"optimizer/step": a["optimizer/step"] * 0 + 1e9}, "optimizer/step"),
])
def test_sections_that_contradict_each_other_are_refused(checkpoints_of, damaged, options, change, said):
    path = damaged(checkpoints_of(**options), change)
    with pytest.raises(CheckpointError, match=said):
        load_checkpoint(path)


@pytest.mark.parametrize("command", [["sample", "-n", 3], ["diagnose", "--count", 2], ["plot", "--count", 2],
                                     ["score", "Rex"], ["evaluate"]])
def test_weights_too_large_to_compute_with_are_one_line_in_every_command(cli, adam_checkpoint, damaged, command):
    change, _ = HOSTILE["weights too large to compute with"]
    path = damaged(adam_checkpoint, lambda arrays: change(arrays, None))
    cli(command[0], "-c", path, *command[1:]).fails_in_one_line(1, "too large for probabilities to be computed")


def test_the_readmes_reader_samples_from_the_arrays_alone_without_namegen(tmp_path):
    """The README's snippet, as printed, run where namegen cannot be imported: a checkpoint is
    enough to sample from with numpy."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\n", readme.index("**Reading a checkpoint without namegen.**")) + len("```python\n")
    code = "import sys; sys.modules['namegen'] = None\n" + readme[start : readme.index("```", start)]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    names = eval(done.stdout)  # a printed list of str
    model = load_model(root / "checkpoints" / "dinos.npz")
    assert len(names) == 5 and all(set(name) <= set(model.vocab.chars) for name in names if name)
