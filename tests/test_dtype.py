"""--dtype float32: the trained vector, its products, the optimizer and sampling stay float32 end to
end; float64 stays the default and the reference (gradient checks always use it)."""

import json

import numpy as np
import pytest
from conftest import assert_resumes_exactly, with_meta

from namegen.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
from namegen.data import NameList
from namegen.gradcheck import GradcheckConfig, gradient_check
from namegen.model import backward, blend_term, dropout_factors, forward, name_losses, step
from namegen.sampling import SampleConfig, draw, sample
from namegen.state import TrainConfig, new_state
from namegen.training import train

EVERYTHING = dict(hidden_size=12, embedding_size=5, dropout=0.2, weight_decay=0.01, optimizer="adam",
                  learning_rate=0.01, batch_size=4, epochs=2)


@pytest.fixture(scope="module")
def styled(dinos):
    names = dinos.names[::16]
    return NameList(names, ("start",), "two.txt", styles=("a", "b"), style_of=np.arange(len(names)) % 2)


def test_a_float32_run_keeps_every_array_float32(styled, tmp_path):
    """numpy promotes float32 to float64 at the first float64 operand it meets (a scalar of
    np.float64, a zeros() without a dtype): any one would silently double the memory and time."""
    state = new_state(TrainConfig(dtype="float32", **EVERYTHING), styled)
    train(state, tmp_path / "a.latest.npz", engine="numpy")
    assert state.weights.dtype == np.float32 and state.model.params.dtype == np.float32
    assert {value.dtype for value in state.optimizer.state.values()} == {np.dtype(np.float32)}
    assert {array.dtype for array in state.optimizer.scratch if array.dtype != bool} == {np.dtype(np.float32)}
    params, names = state.model.param_views, state.model.encoded
    inputs, targets = names.pair(0)
    _, cache = forward(params, inputs, targets, keep=dropout_factors(state.rng, (len(inputs), 12), 0.2, "float32"),
                       styles=0)
    assert {a.dtype for a in (cache.u, cache.out_rows, cache.exp_z, cache.total, cache.keep)} == {np.dtype(np.float32)}
    assert {g.dtype for g in backward(params, cache).values()} == {np.dtype(np.float32)}
    assert name_losses(params, inputs, targets, styles=0).dtype == np.float32
    h, logits = step(params, np.zeros((3, 12), dtype=np.float32), np.array([1, 2, 3]), blend_term(params, [0.5, 0.5]))
    assert h.dtype == logits.dtype == np.float32
    with np.load(tmp_path / "a.latest.npz") as saved:
        assert {saved[key].dtype for key in saved.files if key.startswith(("params/", "optimizer/", "factors/"))} \
            == {np.dtype(np.float32)}


def test_a_float32_checkpoint_loads_resumes_and_samples_as_float32(styled, tmp_path, monkeypatch):
    config = TrainConfig(dtype="float32", **EVERYTHING)
    first, resumed = assert_resumes_exactly(config, styled, tmp_path, stop_after=3)
    assert resumed.weights.dtype == np.float32 and resumed.config.dtype == "float32"
    model = load_model(tmp_path / "r.latest.npz")
    assert model.params.dtype == np.float32
    formats = set()

    def recording_draw(logits, *args):  # float32 only if every product and sum before it was
        formats.add(logits.dtype)
        return draw(logits, *args)

    monkeypatch.setattr("namegen.sampling.draw", recording_draw)
    assert len(sample(model, SampleConfig(count=20, seed=1))) == 20
    assert formats == {np.dtype(np.float32)}


def test_float32_learns_what_float64_learns(few_dinos):
    """The same draws rounded to float32, the same updates: the validation loss stays within 0.005
    (benchmarks/bench.py --dtype measures it on the whole of dinos.txt and names.txt)."""
    losses = {}
    for dtype in ("float64", "float32"):
        state = new_state(TrainConfig(hidden_size=32, embedding_size=16, optimizer="adam", learning_rate=0.005,
                                      batch_size=8, epochs=4, dtype=dtype), few_dinos)
        train(state, engine="numpy")
        losses[dtype] = state.best_val_loss
    assert abs(losses["float32"] - losses["float64"]) < 0.005, losses


def test_gradient_checks_of_a_float32_model_run_in_float64(styled):
    """Central differences at eps 1e-5 in float32 would lose every digit (2^-23 of a loss of
    tens of nats is 1e-6, over 2e-5): a check that passes at 1e-6 ran in float64."""
    state = new_state(TrainConfig(hidden_size=8, dtype="float32"), styled)
    state.model.params[:] += np.random.default_rng(0).normal(scale=0.5, size=state.model.params.size)
    result = gradient_check(state.model, GradcheckConfig(count=2, entries=20))
    assert result.passed, result.max_error
    assert state.model.params.dtype == np.float32  # the model itself is left as it was


def test_the_compiled_path_says_float32_is_not_its_own(few_dinos):
    from namegen import fast
    from namegen.training import choose_engine

    if not fast.available():
        pytest.skip("numba is not installed")
    choice = choose_engine(TrainConfig(dtype="float32"), "numba")
    assert choice.engine == "numpy" and "float64" in choice.note


def float_arrays(arrays, dtype):
    return {key: value.astype(dtype) for key, value in arrays.items() if key.startswith(("params/", "optimizer/"))}


def with_config(arrays, **changes):
    config = json.loads(arrays["meta"].tobytes())["config"]
    return with_meta(arrays, config=config | changes)


@pytest.mark.parametrize("change, message", [
    (lambda a: with_config(a, dtype="float32"), "is float64"),  # says float32, holds float64
    (lambda a: with_config(a, dtype="float32") | float_arrays(a, np.float32) | {"params/Why": a["params/Why"]},
     "params/Why is float64"),  # one block left behind
    (lambda a: with_config(a, dtype="float16") | float_arrays(a, np.float16), "dtype must be"),
    (lambda a: float_arrays(a, np.float32), "expected float64"),  # float32 arrays, a float64 run
], ids=["config float32, arrays float64", "one block float64", "float16", "arrays float32, config float64"])
def test_a_checkpoint_whose_arrays_and_dtype_disagree_is_refused(adam_checkpoint, damaged, change, message):
    path = damaged(adam_checkpoint, change)
    for load in (load_checkpoint, load_model):
        with pytest.raises(CheckpointError, match=message) as caught:
            load(path)
        assert "\n" not in str(caught.value)


def test_the_cli_trains_and_samples_float32_and_refuses_other_formats(cli, names_file, tmp_path):
    names_file = names_file(["Aragorn", "Arwen", "Boromir", "Celeborn", "Denethor", "Elrond", "Eowyn", "Faramir"] * 3)
    ran = cli("train", "--data", names_file, "--dtype", "float32", "--epochs", 1, "--hidden-size", 8,
              "--out-dir", tmp_path)
    assert ran.code == 0, ran.stderr
    assert "float32" in ran.stdout.splitlines()[0]
    (checkpoint,) = tmp_path.glob("*.best.npz")
    assert load_checkpoint(checkpoint).config.dtype == "float32"
    assert "(float32)" in cli("info", checkpoint).stdout
    assert cli("sample", "-c", checkpoint, "-n", 3).code == 0
    cli("train", "--data", names_file, "--dtype", "float16", "--out-dir", tmp_path / "x").fails_in_one_line(2, "dtype")
    changed = cli("train", "--resume", tmp_path / checkpoint.name.replace("best", "latest"), "--dtype", "float64",
                  "--epochs", 2)
    changed.fails_in_one_line(1, "dtype")


def test_saving_a_float32_state_writes_float32(styled, tmp_path):
    state = new_state(TrainConfig(hidden_size=6, dtype="float32", embedding_size=3), styled)
    save_checkpoint(tmp_path / "s.npz", state)
    loaded = load_checkpoint(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded.weights, state.weights)
    assert loaded.weights.dtype == np.float32
