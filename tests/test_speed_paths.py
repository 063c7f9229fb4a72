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
