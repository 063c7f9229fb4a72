"""Rprop (iRprop-) and full-batch training: the sign rule, the step bounds, and a real run."""


import numpy as np
import pytest

from namegen.optim import Rprop, make_optimizer
from namegen.state import TrainConfig, new_state
from namegen.training import train

from conftest import assert_resumes_exactly


def test_steps_grow_while_the_sign_holds_and_shrink_without_a_move_when_it_flips():
    rprop = make_optimizer("rprop", 3, 0.1)
    params = np.zeros(3)
    rprop.step(params, np.array([2.0, -3.0, 0.0]))  # no previous gradient: move by the first step
    np.testing.assert_allclose(params, [-0.1, 0.1, 0.0])
    rprop.step(params, np.array([5.0, 4.0, 1.0]))  # entry 0 keeps its sign, 1 flips, 2 had no sign
    np.testing.assert_allclose(rprop.state["step"], [0.12, 0.05, 0.1])
    np.testing.assert_allclose(params, [-0.22, 0.1, -0.1])  # the flipped entry stays where it was
    rprop.step(params, np.array([1.0, 4.0, 1.0]))  # after a flip the entry forgets: it moves, no shrink
    np.testing.assert_allclose(rprop.state["step"], [0.144, 0.05, 0.12])
    np.testing.assert_allclose(params, [-0.364, 0.05, -0.22])


def test_only_the_sign_of_the_gradient_matters():
    small, huge = make_optimizer("rprop", 4, 0.01), make_optimizer("rprop", 4, 0.01)
    a, b = np.zeros(4), np.zeros(4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = rng.standard_normal(4)
        small.step(a, g.copy())
        huge.step(b, g * 1e12)  # an exploding gradient moves the weights no further
    np.testing.assert_array_equal(a, b)


def test_steps_stay_within_their_bounds():
    rprop = make_optimizer("rprop", 2, 1.0)
    params = np.zeros(2)
    for k in range(200):
        rprop.step(params, np.array([1.0, (-1.0) ** k]))  # entry 0 always agrees, entry 1 always flips
    assert rprop.state["step"][0] == Rprop.MAX_STEP and rprop.state["step"][1] == Rprop.MIN_STEP


def test_full_batch_rprop_lowers_the_validation_loss_steadily(few_dinos):
    state = new_state(TrainConfig(hidden_size=16, optimizer="rprop", batch_size=0, learning_rate=0.01, epochs=30),
                      few_dinos)
    train(state)
    assert state.step == 30  # one update an epoch
    val = [record.val_loss for record in state.history]
    assert val[-1] < val[0] - 0.4
    assert sum(b > a + 0.02 for a, b in zip(val, val[1:])) <= 3  # it falls, with at most a few small bumps


@pytest.mark.parametrize("batch_size", [0, 4])
def test_rprop_resumes_exactly_with_full_and_small_batches(few_dinos, tmp_path, batch_size):
    config = TrainConfig(hidden_size=8, optimizer="rprop", batch_size=batch_size, learning_rate=0.01, epochs=4)
    assert_resumes_exactly(config, few_dinos, tmp_path, first_epochs=2)


def test_the_first_step_is_held_within_the_bounds_as_every_later_one():
    rprop = Rprop(3, 100.0)
    weights = np.zeros(3)
    rprop.step(weights, np.array([1.0, -1.0, 0.0]))
    assert np.all(rprop.state["step"] == Rprop.MAX_STEP) and np.abs(weights).max() == Rprop.MAX_STEP
    assert np.all(Rprop(3, 1e-9).state["step"] == Rprop.MIN_STEP)
