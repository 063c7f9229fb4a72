"""The compiled per-name path trains the same model as the numpy path, to round-off; the engine
is chosen as documented, and work runs on one BLAS thread unless asked otherwise."""

import itertools
import json
import os
import time
import zipfile
from dataclasses import asdict, replace

import numpy as np
import pytest
import threadpoolctl

import namegen.training

from namegen import fast
from namegen.checkpoint import load_checkpoint, save_checkpoint
from namegen.data import parse_names
from namegen.errors import OptionError, TrainingError
from namegen.evaluation import evaluate
from namegen.optim import ClipStats
from namegen.state import EpochStats, TrainConfig, new_state, resume_state
from namegen.threads import blas_threads
from namegen.training import Callbacks, choose_engine, train

from conftest import copied_numba_cache

needs_numba = pytest.mark.skipif(not fast.available(), reason="numba is not installed (pip install 'namegen[fast]')")

# A list unlike dinos: capitals kept, spaces, apostrophes, accents, one long name.
OWN_NAMES = parse_names("\n".join([
    "Éowyn", "D'Artagnan", "Jean Luc", "Zoë", "Ólafur Arnalds", "Ngozi", "Søren", "Mary-Kate", "Ægir",
    "Björk", "O'Neil", "Renée", "Åsa", "Lúcia", "Ximena", "Wolfeschlegelsteinhausenbergerdorff",
] * 3), "own.txt", case="keep")


def trained_both_ways(config, names):
    numpy_state, numba_state = new_state(config, names), new_state(config, names)
    assert train(numpy_state, engine="numpy").engine == "numpy"
    assert train(numba_state, engine="numba").engine == "numba"
    return numpy_state, numba_state


def assert_same_run(a, b, tolerance=1e-10):
    np.testing.assert_allclose(b.model.params, a.model.params, rtol=0, atol=tolerance)
    assert b.optimizer.steps == a.optimizer.steps and b.step == a.step
    for key, value in a.optimizer.state.items():
        np.testing.assert_allclose(b.optimizer.state[key], value, rtol=tolerance, atol=tolerance)
    for ra, rb in zip(a.history, b.history, strict=True):
        ra, rb = asdict(ra), asdict(rb)
        for key in ("running_loss", "val_loss", "grad_norm_mean", "grad_norm_max", "whh_sigma_max", "rescale_fraction"):
            assert rb[key] == pytest.approx(ra[key], rel=tolerance), key
        assert rb["clip_fraction"] == ra["clip_fraction"]  # the same entries clipped, counted exactly


@needs_numba
def test_an_epoch_of_the_default_recipe_matches_the_numpy_path(dinos):
    assert_same_run(*trained_both_ways(TrainConfig(epochs=1), dinos))


@needs_numba
@pytest.mark.parametrize("optimizer, learning_rate", [("sgd", 0.01), ("adam", 0.01), ("adagrad", 0.05)])
@pytest.mark.parametrize("clip, clip_norm", [(0.0, 0.0), (5.0, 0.0), (0.05, 0.0), (0.0, 2.0), (0.05, 2.0)])
def test_every_optimizer_and_clip_setting_matches_the_numpy_path(few_dinos, optimizer, learning_rate, clip, clip_norm):
    """One epoch each. Training amplifies round-off: at 5x the default SGD step, unclipped, the
    paths drift 5e-9 apart in an epoch (1e-9 with fastmath off too); they are not meant to agree bit for bit."""
    config = TrainConfig(hidden_size=16, epochs=1, optimizer=optimizer, learning_rate=learning_rate, clip=clip,
                         clip_norm=clip_norm)
    a, b = trained_both_ways(config, few_dinos)
    assert_same_run(a, b)
    if clip == 0.05:
        assert a.history[0].clip_fraction > 0  # the clipping branch was taken, by both
    if clip_norm:
        assert a.history[0].rescale_fraction > 0.5 and b.history[0].rescale_fraction == a.history[0].rescale_fraction


@needs_numba
@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad"])
def test_dropout_and_weight_decay_train_the_same_on_both_paths(few_dinos, optimizer):
    config = TrainConfig(hidden_size=16, epochs=1, optimizer=optimizer, dropout=0.3, weight_decay=0.05,
                         learning_rate=0.05 if optimizer == "adagrad" else 0.01, lr_schedule="cosine", warmup=0.1)
    a, b = trained_both_ways(config, few_dinos)
    assert_same_run(a, b)
    assert a.rng.bit_generator.state == b.rng.bit_generator.state  # the same dropout draws were made


@needs_numba
@pytest.mark.parametrize("schedule", ["linear", "constant"])
def test_a_users_own_names_train_the_same_on_both_paths(schedule):
    assert_same_run(*trained_both_ways(TrainConfig(hidden_size=12, epochs=3, lr_schedule=schedule), OWN_NAMES))


@needs_numba
@pytest.mark.parametrize("hidden_size", [1, 3, 7, 13])
def test_hidden_sizes_the_kernel_does_not_take_four_rows_at_a_time_match_too(few_dinos, hidden_size):
    assert_same_run(*trained_both_ways(TrainConfig(hidden_size=hidden_size, epochs=1), few_dinos))


@needs_numba
def test_both_paths_write_the_same_checkpoint(few_dinos, tmp_path):
    a, b = trained_both_ways(TrainConfig(hidden_size=8, epochs=1, optimizer="adam"), few_dinos)
    save_checkpoint(tmp_path / "a.npz", a)
    save_checkpoint(tmp_path / "b.npz", b)
    with zipfile.ZipFile(tmp_path / "a.npz") as za, zipfile.ZipFile(tmp_path / "b.npz") as zb:
        assert za.namelist() == zb.namelist()
        meta_a, meta_b = (json.loads(np.load(z.open("meta.npy")).tobytes()) for z in (za, zb))
    rounded = ("seconds", "running_loss", "val_loss", "grad_norm_mean", "grad_norm_max", "whh_sigma_max")
    for meta in (meta_a, meta_b):  # figures that differ by round-off (or time) are compared by assert_same_run
        for record in meta["history"]:
            for key in rounded:
                record.pop(key)
        meta.pop("best_val_loss")
    assert meta_a == meta_b
    assert_same_run(load_checkpoint(tmp_path / "a.npz"), load_checkpoint(tmp_path / "b.npz"))


@needs_numba
def test_the_compiled_path_stops_at_the_same_divergent_update(few_dinos):
    config = TrainConfig(hidden_size=8, epochs=1, learning_rate=1e307, lr_schedule="constant", clip=0)
    steps = []
    for engine in ("numpy", "numba"):
        state = new_state(config, few_dinos)
        with pytest.raises(TrainingError, match="diverged"):
            train(state, engine=engine)
        steps.append(state.step)
        assert np.all(np.isfinite(state.model.params))  # the update that overflowed was not applied
    assert steps[0] == steps[1] > 0


def test_numpy_is_taken_when_asked_or_when_numba_is_missing(monkeypatch):
    config = TrainConfig()
    assert choose_engine(config, "numpy") == ("numpy", None, None)
    monkeypatch.setattr(fast, "available", lambda: False)
    assert choose_engine(config, "auto") == ("numpy", None, None)
    with pytest.raises(OptionError, match="pip install 'namegen\\[fast\\]'"):
        choose_engine(config, "numba")
    with pytest.raises(OptionError):
        choose_engine(config, "cuda")


@needs_numba
@pytest.mark.parametrize("wanted", ["auto", "numba"])
def test_float32_per_name_falls_back_to_numpy_with_a_note_and_every_other_run_is_compiled(wanted):
    assert choose_engine(TrainConfig(), wanted) == ("numba", None, None)
    engine, note, _ = choose_engine(TrainConfig(dtype="float32"), wanted)
    assert engine == "numpy" and "float64" in note
    for options in ({"embedding_size": 8}, {"optimizer": "rprop"}, {"dropout": 0.3, "weight_decay": 0.1},
                    {"batch_size": 32}, {"batch_size": 0, "dtype": "float32"}):
        assert choose_engine(TrainConfig(**options), wanted).engine == "numba"


def test_every_option_is_covered_by_the_kernel_or_refused():
    """An option added to TrainConfig must be placed in fast.OPTIONS: passed to the kernel (and so
    in the product below), handled around it alike for both paths, or refused by fast.uncovered."""
    from dataclasses import fields

    assert set(fast.OPTIONS) == {f.name for f in fields(TrainConfig)}
    kernel = {name for name, how in fast.OPTIONS.items() if how == "kernel"}
    assert kernel == set(PRODUCT) | {"hidden_size", "style_size", "batch_size"}  # batches: BATCHES below
    refused = [name for name, how in fast.OPTIONS.items() if how.startswith("refused")]
    assert refused == ["dtype"]
    assert fast.uncovered(1, "float32") and not fast.uncovered(1) and not fast.uncovered(4, "float32")


# The product of the options the kernel takes, each off and on (the optimizers with a step each
# works at): 256 runs of one epoch on 24 names, both paths, compared to 1e-10.
PRODUCT = {"optimizer": [("sgd", 0.05), ("adam", 0.01), ("adagrad", 0.05), ("rprop", 0.001)],
           "embedding_size": [0, 3], "dropout": [0.0, 0.3], "weight_decay": [0.0, 0.1], "clip": [0.0, 0.05],
           "clip_norm": [0.0, 2.0]}
STYLED = [False, True]


def tiny_lists(styled: bool):
    names = parse_names("\n".join(["Ab", "Abc", "Bca", "Cab", "Acab", "Bac", "Cabba", "Ba", "Ccab", "Abba", "Bacca", "Ca"]
                                   * 2), "tiny.txt")
    if not styled:
        return names
    return replace(names, styles=("a", "b"), style_of=np.repeat([0, 1], [12, 12]))


def combinations(space: dict) -> list[dict]:
    """Every combination of the values in `space` (option -> values; an optimizer with its step), as
    TrainConfig fields."""
    fields = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    return [{**f, "optimizer": f["optimizer"][0], "learning_rate": f["optimizer"][1]} for f in fields]


def named(fields: dict) -> str:
    return "-".join(f"{key}={value}" for key, value in fields.items() if key != "learning_rate")


@needs_numba
@pytest.mark.parametrize("styled", STYLED, ids=["one list", "two styles"])
@pytest.mark.parametrize("options", combinations(PRODUCT), ids=named)
def test_every_combination_of_options_trains_the_same_on_both_paths(styled, options):
    a, b = trained_both_ways(TrainConfig(hidden_size=6, style_size=2, epochs=1, **options), tiny_lists(styled))
    assert_same_run(a, b)
    np.testing.assert_allclose(b.weights, a.weights, rtol=0, atol=1e-10)  # the factors too
    assert a.rng.bit_generator.state == b.rng.bit_generator.state  # the same dropout draws were made


# Batches run numpy's products with the compiled tanh and optimizer step: the options that reach those
# (clipping is the same numpy code on both paths), each off and on, in batches of 4; the whole set as
# one batch (what Rprop is for) with everything on.
BATCHES = {"optimizer": PRODUCT["optimizer"], "embedding_size": [0, 3], "dropout": [0.0, 0.3],
           "weight_decay": [0.0, 0.1], "batch_size": [4]}


@needs_numba
@pytest.mark.parametrize("styled", STYLED, ids=["one list", "two styles"])
@pytest.mark.parametrize("options", combinations(BATCHES), ids=named)
def test_every_combination_of_options_trains_the_same_in_batches(styled, options):
    a, b = trained_both_ways(TrainConfig(hidden_size=6, style_size=2, epochs=1, clip=0.5, **options), tiny_lists(styled))
    assert_same_run(a, b)
    np.testing.assert_allclose(b.weights, a.weights, rtol=0, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("optimizer, learning_rate", PRODUCT["optimizer"])
def test_one_batch_of_every_name_trains_the_same_with_every_option_on(optimizer, learning_rate):
    config = TrainConfig(hidden_size=6, style_size=2, epochs=5, optimizer=optimizer, learning_rate=learning_rate,
                         embedding_size=3, dropout=0.3, weight_decay=0.1, batch_size=0, clip=0.5)
    a, b = trained_both_ways(config, tiny_lists(True))
    assert_same_run(a, b)
    np.testing.assert_allclose(b.weights, a.weights, rtol=0, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("optimizer, learning_rate", PRODUCT["optimizer"])
def test_float32_batches_train_the_same_compiled_to_float32_round_off(few_dinos, optimizer, learning_rate):
    config = TrainConfig(hidden_size=16, epochs=1, optimizer=optimizer, learning_rate=learning_rate, batch_size=8,
                         embedding_size=4, dropout=0.2, dtype="float32")
    a, b = trained_both_ways(config, few_dinos)
    assert b.weights.dtype == np.float32 and {v.dtype for v in b.optimizer.state.values()} <= {np.dtype(np.float32)}
    np.testing.assert_allclose(b.weights, a.weights, rtol=0, atol=1e-4)
    assert b.history[0].val_loss == pytest.approx(a.history[0].val_loss, abs=1e-4)


@needs_numba
def test_the_cli_says_in_one_line_when_it_falls_back(cli, names_file, tmp_path):
    ran = cli("train", "--data", names_file(["Ab", "Abc", "Bca", "Cab"]), "--epochs", 1, "--hidden-size", 4,
              "--dtype", "float32", "--engine", "numba", "--out-dir", tmp_path)
    assert ran.code == 0
    assert [line for line in ran.stderr.splitlines() if "numpy path" in line] == [
        "note: training on the numpy path: the compiled one does not cover this run (its per-name kernel computes "
        "in float64)"]


TANH_POINTS = np.concatenate([np.random.default_rng(0).normal(scale=3, size=20_000), np.linspace(-25, 25, 20_001),
                              np.geomspace(1e-300, 30, 3000), -np.geomspace(1e-300, 30, 3000),
                              [0.0, 5e-324, 1e300, np.finfo(float).max, np.inf]])


@needs_numba
def test_the_compiled_tanh_is_within_3_ulp_of_the_c_librarys_and_keeps_signs_infinities_and_nan():
    fast.load("batches")
    x = np.concatenate([TANH_POINTS, -TANH_POINTS])
    ours, reference = fast.tanh(x, np.empty_like(x)), np.tanh(x)
    assert np.max(np.abs(ours - reference) / np.spacing(np.abs(reference))) <= 3
    assert np.array_equal(np.signbit(ours), np.signbit(x))  # -0.0 stays -0.0
    assert np.isnan(fast.tanh(np.array([np.nan, -np.nan]), np.empty(2))).all()
    strided = np.zeros((4, 9))  # out a strided view, as forward's hidden states are
    fast.tanh(x[:32].reshape(4, 8), strided[:, :8])
    np.testing.assert_array_equal(strided[:, :8], fast.tanh(x[:32].reshape(4, 8), np.empty((4, 8))))
    assert not strided[:, 8].any()


def blas_threads_now() -> list[int]:
    return [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_training_runs_on_one_blas_thread_unless_asked(small_names, engine):
    if engine == "numba" and not fast.available():
        pytest.skip("numba is not installed")
    if engine == "numba":
        fast.load()  # numba may load SciPy, and with it a second BLAS: count it in `before`
    before = blas_threads_now()
    seen = []
    callbacks = Callbacks(on_step=lambda done, loss: seen.append(blas_threads_now()))
    train(new_state(TrainConfig(hidden_size=4, epochs=1), small_names), callbacks=callbacks, engine=engine)
    assert seen and all(threads == [1] * len(before) for threads in seen)
    with blas_threads(2):
        train(new_state(TrainConfig(hidden_size=4, epochs=1), small_names), callbacks=callbacks, engine=engine)
    assert seen[-1] == [min(2, n) for n in before]  # OpenBLAS never exceeds the threads it was built to use
    assert blas_threads_now() == before  # restored afterwards


@pytest.mark.parametrize("engine", ["numpy", "numba"])
def test_the_train_loss_is_the_running_mean_and_the_full_pass_is_opt_in(few_dinos, engine):
    if engine == "numba" and not fast.available():
        pytest.skip("numba is not installed")
    running = []
    callbacks = Callbacks(on_step=lambda done, loss: running.append(loss))
    quick = new_state(TrainConfig(hidden_size=8, epochs=1), few_dinos)
    train(quick, callbacks=callbacks, engine=engine)
    record = quick.history[0]
    assert record.train_loss is None and record.running_loss == running[-1]
    full = new_state(TrainConfig(hidden_size=8, epochs=1, eval_train=True), few_dinos)
    train(full, engine=engine)
    assert full.history[0].train_loss == evaluate(full.model, full.model.encoded, full.train_idx).per_char
    assert full.history[0].running_loss == record.running_loss  # the same updates either way


def test_an_epochs_time_includes_what_was_done_after_the_previous_one(small_names, monkeypatch):
    """An epoch's time covers its evaluation, and everything between two epoch records
    (checkpoint writes, the report) lands in the second, so the epochs add up to the run."""
    real_evaluate = namegen.training.evaluate

    def slow_evaluate(*args):
        time.sleep(0.1)
        return real_evaluate(*args)

    monkeypatch.setattr(namegen.training, "evaluate", slow_evaluate)
    callbacks = Callbacks(on_epoch_end=lambda state, record: time.sleep(0.2))
    state = new_state(TrainConfig(hidden_size=4, epochs=2), small_names)
    result = train(state, callbacks=callbacks, engine="numpy")
    first, second = state.history
    assert 0.1 <= first.seconds < 0.3 <= second.seconds
    assert first.seconds + second.seconds <= result.seconds


def test_a_bad_thread_count_is_an_option_error():
    with pytest.raises(OptionError, match="threads"):
        with blas_threads(0):
            pass


def test_resuming_with_eval_train_is_allowed(few_dinos, tmp_path):
    state = new_state(TrainConfig(hidden_size=8, epochs=1), few_dinos)
    train(state, tmp_path / "r.npz")
    resumed = resume_state(load_checkpoint(tmp_path / "r.npz"), {"epochs": 2, "eval_train": True})
    train(resumed)
    assert resumed.history[0].train_loss is None and resumed.history[1].train_loss is not None
    assert replace(resumed.config, eval_train=False, epochs=1) == state.config


def test_a_chunk_of_updates_counts_exactly_as_one_by_one(rng):
    losses, norms = rng.exponential(20, size=300), rng.exponential(5, size=300)
    chars, clipped = rng.integers(2, 30, size=300), rng.integers(0, 3, size=300)
    one_by_one, at_once = EpochStats(loss=0.1, norm_sum=3.0), EpochStats(loss=0.1, norm_sum=3.0)
    for loss, n, norm, count in zip(losses, chars, norms, clipped):
        one_by_one.add(float(loss), 1, int(n), ClipStats(float(norm), int(count)))
    at_once.add_each(losses[:100], chars[:100], norms[:100], clipped[:100])
    at_once.add_each(losses[100:], chars[100:], norms[100:], clipped[100:])
    assert at_once == one_by_one  # the same floats, not merely close ones


@pytest.mark.parametrize("option, value", [("--engine", "gpu"), ("--threads", "0"), ("--threads", "two")])
def test_impossible_speed_options_are_one_line(cli, option, value, tmp_path):
    ran = cli("train", option, value, "--out-dir", tmp_path)
    ran.fails_in_one_line(2, option)
    assert not list(tmp_path.iterdir())  # nothing trained, nothing written


@pytest.mark.parametrize("command", [["sample", "-n", "3", "--seed", "1"], ["score", "Rex"], ["evaluate"]])
def test_the_commands_that_compute_take_a_thread_count(cli, trained_checkpoint, command):
    one, two = (cli(*command, "-c", trained_checkpoint, "--threads", n) for n in ("1", "2"))
    assert one.code == two.code == 0 and one.stdout == two.stdout



@needs_numba
@pytest.mark.slow
def test_a_truncated_numba_cache_costs_a_compile_and_one_line_never_the_run(names_file, tmp_path):
    """For real, in a process of its own whose cache is a copy of the one this process uses, the data
    file of the compiled tanh truncated; a batch run, which loads the tanh and the optimizer step
    only, so that the one compile it pays is short (the kernel's own file takes the same path in
    load(): see the simulated failures below)."""
    import subprocess
    import sys

    data = names_file(["Ab", "Abc", "Bca", "Cab", "Acab", "Bac"] * 4)
    cache = tmp_path / "numba-cache"
    command = [sys.executable, "-m", "namegen", "train", "--data", str(data), "--epochs", "1", "--hidden-size", "4",
               "--batch-size", "2", "--preview", "0", "--engine", "numba"]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    if not copied_numba_cache(cache):  # no cache here to copy: a process of its own fills one
        made = subprocess.run(command + ["--out-dir", str(tmp_path / "first")], capture_output=True, text=True, env=env)
        assert made.returncode == 0 and "note" not in made.stderr, made.stderr
    data_file = next(cache.rglob(f"fast._tanh-{fast.PYTHON['_tanh'].__code__.co_firstlineno}.*.nbc"))
    data_file.write_bytes(data_file.read_bytes()[:100])
    ran = subprocess.run(command + ["--out-dir", str(tmp_path / "second")], capture_output=True, text=True, env=env)
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    notes = [line for line in ran.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "numba's cache is unusable (UnpicklingError" in notes[0], ran.stderr
    assert "compiled steps (numba)" in ran.stdout and load_checkpoint(tmp_path / "second" / f"{data.stem}.latest.npz")


@pytest.fixture
def fresh_kernel(monkeypatch):
    """fast.load() as in a new process, with numba.njit answering as `njit` does (see the tests)."""
    import numba

    calls = []

    def use(njit):
        def recording(*args, cache=False, **kwargs):
            calls.append(cache)
            return njit(cache)
        monkeypatch.setattr(numba, "njit", recording)
        for name in ("_kernel", "_problem", *fast.HELPERS):  # as before the test, afterwards
            monkeypatch.setattr(fast, name, None if name in ("_kernel", "_problem") else getattr(fast, name))
        monkeypatch.setattr(fast, "_compiled", set())
        return calls

    return use


# What numba raised on each unusable cache (seen on 2203c90): no place to put it, an empty index,
# a directory where its data file goes.
CACHE_FAILURES = [RuntimeError("cannot cache function 'train_names': no locator available for file 'fast.py'"),
                  EOFError("Ran out of input"), IsADirectoryError(21, "Is a directory")]


@needs_numba
@pytest.mark.parametrize("failure", CACHE_FAILURES, ids=lambda e: type(e).__name__)
def test_every_unusable_cache_compiles_without_it_and_says_so(fresh_kernel, failure):
    def njit(cache):
        if cache:
            raise failure
        return lambda function: "compiled without a cache"

    calls = fresh_kernel(njit)
    problem = fast.load()
    assert calls == [True] + [False] * (len(fast.USES["kernel"]) + 1)  # the helpers and the kernel, without the cache
    assert fast.kernel() == "compiled without a cache"
    assert type(failure).__name__ in problem and "compiled without it" in problem
    assert choose_engine(TrainConfig(), "auto") == ("numba", problem, problem)


@needs_numba
def test_a_bad_cache_file_of_the_kernel_alone_recompiles_the_kernel_and_the_helpers_it_compiles(fresh_kernel):
    """The helpers compiled with signatures loaded from the cache before the kernel's file failed: they
    stay. Those compiled when the kernel calls them may have been the bad files: they compile again."""
    def njit(cache):
        def build(function):
            if cache and function is fast.train_names:
                raise EOFError("Ran out of input")
            return f"{function.__name__} {'cached' if cache else 'compiled'}"
        return build

    calls = fresh_kernel(njit)
    assert "EOFError" in fast.load()
    lazy = [name for name in fast.USES["kernel"] if name not in fast.SIGNATURES]
    assert calls == [True] * (len(fast.USES["kernel"]) + 1) + [False] * (len(lazy) + 1)
    assert fast.kernel() == "train_names compiled" and fast._step == "_step cached"
    assert all(getattr(fast, name) == f"{name} compiled" for name in lazy)


@needs_numba
def test_a_kernel_that_cannot_be_compiled_at_all_leaves_the_run_to_numpy(fresh_kernel):
    def njit(cache):
        raise RuntimeError("LLVM failed")

    fresh_kernel(njit)
    choice = choose_engine(TrainConfig(), "auto")
    assert choice.engine == "numpy" and "could not compile" in choice.problem


BLAS_CALLS = {"dot", "vdot", "inner", "matmul", "linalg", "kron", "tensordot", "einsum"}


def test_no_compiled_function_calls_what_numba_hands_to_scipys_blas():
    """numba compiles np.dot, @ and np.linalg into calls to SciPy's BLAS: where SciPy is not
    installed (namegen[fast] does not bring it), the kernel would not compile and every run would
    fall back to numpy, with a note. The compiled functions use loops instead."""
    import ast
    import inspect
    import textwrap

    for function in [fast.train_names, *fast.PYTHON.values()]:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)), function.__name__
            assert not (isinstance(node, ast.Attribute) and node.attr in BLAS_CALLS), (function.__name__, node.attr)
