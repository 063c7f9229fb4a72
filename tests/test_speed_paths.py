"""The fast paths compute the same numbers as the straightforward per-step implementation."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from namegen.data import pad_batch
from namegen.model import PARAM_NAMES, loss_and_grads
from namegen.optim import Optimizer
from namegen.state import TrainConfig, new_state
from namegen.training import train

BASELINE = Path(__file__).resolve().parent.parent / "benchmarks" / "baseline.py"


@pytest.fixture(scope="module")
def baseline():
    spec = importlib.util.spec_from_file_location("baseline", BASELINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("length", [1, 3, 11, 26])
def test_fast_per_name_path_equals_the_per_step_implementation(random_params, rng, baseline, length):
    params = random_params(vocab_size=9, hidden_size=6)
    ids = rng.integers(1, 9, size=length)
    inputs, targets = np.concatenate(([0], ids)), np.concatenate((ids, [0]))
    loss, grads = loss_and_grads(params, inputs, targets)
    expected_loss, expected = baseline.loss_and_grads({k: params[k] for k in PARAM_NAMES}, inputs, targets)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-12)


def test_batch_gradient_equals_the_mean_of_per_step_gradients(random_params, rng, baseline):
    params = random_params(vocab_size=9, hidden_size=6)
    names = [rng.integers(1, 9, size=n) for n in (1, 7, 3, 12, 5)]
    _, batch = loss_and_grads(params, *pad_batch(names))
    plain = {k: params[k] for k in PARAM_NAMES}
    singles = [baseline.loss_and_grads(plain, np.concatenate(([0], ids)), np.concatenate((ids, [0])))[1]
               for ids in names]
    for name in PARAM_NAMES:
        np.testing.assert_allclose(batch[name], sum(g[name] for g in singles) / len(names), rtol=0, atol=1e-10)


def test_one_epoch_of_training_matches_the_per_step_implementation(small_names, baseline):
    """Same updates, same order, constant SGD step: the parameters agree to round-off."""
    state = new_state(TrainConfig(hidden_size=6, epochs=1, val_fraction=0, lr_schedule="constant",
                                  learning_rate=0.1, seed=2), small_names)
    params = {name: state.model.param_views[name].copy() for name in PARAM_NAMES}
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng.bit_generator.state  # the generator train() will shuffle with
    order = rng.permutation(state.train_idx)
    train(state)
    for i in order:
        _, grads = baseline.loss_and_grads(params, *state.model.vocab.inputs_and_targets(state.model.names[i]))
        baseline.sgd_update(params, grads, 0.1, 5.0)
    for name in PARAM_NAMES:
        np.testing.assert_allclose(state.model.param_views[name], params[name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("adam", 4), ("adagrad", 1), ("adam", 1)])
def test_every_optimizer_receives_a_clipped_gradient(small_names, monkeypatch, optimizer, batch_size):
    seen = []
    original = Optimizer.step

    def recording_step(self, params, grad):
        seen.append(float(np.abs(grad).max()))
        original(self, params, grad)

    monkeypatch.setattr(Optimizer, "step", recording_step)
    state = new_state(TrainConfig(hidden_size=6, epochs=1, optimizer=optimizer, batch_size=batch_size,
                                  clip=0.05, learning_rate=0.5), small_names)
    train(state, engine="numpy")  # the compiled path clips and updates inside its kernel (tests/test_fast.py)
    assert seen and max(seen) <= 0.05
    assert state.history[-1].clip_fraction > 0


def reference_step(name, params, grad, state, learning_rate, steps):
    """The optimizers as the readable formulas (temporaries and all), for the in-place versions."""
    if name == "sgd":
        params -= learning_rate * grad
    elif name == "adam":
        m, v = state["m"], state["v"]
        m *= 0.9
        m += (1 - 0.9) * grad
        v *= 0.999
        v += (1 - 0.999) * grad * grad
        step_size = learning_rate * np.sqrt(1 - 0.999**steps) / (1 - 0.9**steps)
        params -= step_size * m / (np.sqrt(v) + 1e-8)
    elif name == "adagrad":
        state["sum_sq"] += grad * grad
        params -= learning_rate * grad / (np.sqrt(state["sum_sq"]) + 1e-8)
    else:
        step, previous = state["step"], state["previous"]
        agreement = grad * previous
        grown, flipped = agreement > 0, agreement < 0
        step[grown] = np.minimum(step[grown] * 1.2, 50.0)
        step[flipped] = np.maximum(step[flipped] * 0.5, 1e-6)
        grad = np.where(flipped, 0.0, grad)
        params -= np.sign(grad) * step
        previous[:] = grad


@pytest.mark.parametrize("name", ["sgd", "adam", "adagrad", "rprop"])
def test_clip_decay_and_every_optimizer_update_in_place_without_a_temporary(rng, name):
    """The update works in scratch arrays made once: tracemalloc (which numpy reports to) sees no
    temporary of the vector's size, and the numbers are the readable formulas' to the bit."""
    import tracemalloc

    from namegen.optim import clip_, decay_, make_optimizer

    size = 100_000
    weights = rng.normal(size=size)
    optimizer = make_optimizer(name, size, 0.01)
    expected_weights, expected_state = weights.copy(), {key: value.copy() for key, value in optimizer.state.items()}
    outside, ranges = np.empty(size, dtype=bool), np.array([[0, size // 2]])
    for step in range(1, 5):
        grad = rng.normal(scale=0.5, size=size) * (1 if step % 2 else -1)  # some signs flip, some entries clip
        expected_grad = np.clip(grad, -1.0, 1.0)
        expected_weights[: size // 2] *= 1 - 0.01 * 0.1
        reference_step(name, expected_weights, expected_grad, expected_state, 0.01, step)
        tracemalloc.start()
        stats = clip_(grad, 1.0, None, outside)
        decay_(weights, ranges, 0.01 * 0.1)
        optimizer.step(weights, grad)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert stats.clipped > 0
        if step > 1:  # the first step makes the scratch arrays
            assert peak < size  # bytes: an eighth of one float64 temporary
        np.testing.assert_array_equal(weights, expected_weights)
    for key, value in expected_state.items():
        np.testing.assert_array_equal(optimizer.state[key], value)


@pytest.mark.parametrize("batch_size, count", [(7, 100), (5, 333), (32, 1000)])
def test_bucketed_batches_never_straddle_two_buckets(small_names, batch_size, count):
    """The loop takes batch_size names at a time from the epoch's order, so each such slice must be
    one batch of a length window: sorted by length. A short batch anywhere but last would shift
    every later slice across two batches."""
    from namegen.data import NameList
    from namegen.training import epoch_order

    letters = np.random.default_rng(0)
    names = ["A" + "b" * int(n) for n in letters.integers(0, 30, size=count)]
    state = new_state(TrainConfig(hidden_size=4, batch_size=batch_size, val_fraction=0, seed=3),
                      NameList(names, ("start",), "lengths.txt"))
    lengths = state.model.encoded.lengths
    for _ in range(5):
        order = epoch_order(state, lengths)
        assert sorted(order) == sorted(state.train_idx)
        for start in range(0, len(order), batch_size):
            slice_lengths = lengths[order[start : start + batch_size]]
            assert np.all(np.diff(slice_lengths) >= 0), start
