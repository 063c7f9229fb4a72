"""The classic experiments on unstable gradients: the counting RNN, the loss surface of a real
model, and the sigmoid's bound."""

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint
from namegen.counting import cost, counting_data, counting_demo, gradient, state_gradients
from namegen.data import bundled_path
from namegen.diagnostics import SIGMOID_DERIVATIVE_BOUND, loss_surface, sigmoid_demo
from namegen.evaluation import evaluate


@pytest.mark.parametrize("w_x, w_rec", [(0.3, 0.5), (1.0, 1.0), (-1.5, 2.0), (0.7, -1.2)])
def test_the_counting_gradient_passes_central_differences(w_x, w_rec):
    data = counting_data(rng=np.random.default_rng(3))
    eps = 1e-6
    numeric = [(cost(data, w_x + eps, w_rec) - cost(data, w_x - eps, w_rec)) / (2 * eps),
               (cost(data, w_x, w_rec + eps) - cost(data, w_x, w_rec - eps)) / (2 * eps)]
    np.testing.assert_allclose(gradient(data, w_x, w_rec), numeric, rtol=1e-6, atol=1e-7)


def test_the_gradient_reaching_step_k_is_scaled_by_w_rec_to_the_distance():
    data = counting_data()
    for w_rec in (0.5, 1.5):
        g = np.abs(state_gradients(data, 0.5, w_rec)).mean(axis=0)
        n = len(g)
        np.testing.assert_allclose(g / g[-1], w_rec ** (n - 1 - np.arange(n)), rtol=1e-12)


def test_the_counting_cost_is_a_cliff_beyond_w_rec_1_and_rprop_finds_both_weights():
    d = counting_demo()
    assert cost(d.data, 1.0, 1.0) == 0.0
    assert cost(d.data, 1.0, 0.0) < 3 * cost(d.data, 1.0, 0.5)  # flat on one side
    assert cost(d.data, 1.0, 1.5) > 100 * cost(d.data, 1.0, 0.5)  # a cliff on the other
    assert d.costs[0] > 1e5  # it starts up the cliff
    np.testing.assert_allclose(d.path[-1], [1.0, 1.0], atol=0.05)


def test_with_a_sigmoid_the_gradient_scales_as_a_quarter_of_sigma_per_step():
    result = sigmoid_demo(sigmas=(1.0, 4.0, 6.0), length=20)
    for case in result.cases:
        np.testing.assert_allclose(case.grad_norm / case.grad_norm[0],
                                   (SIGMOID_DERIVATIVE_BOUND * case.sigma) ** np.arange(20), rtol=1e-9)
    assert result.derivative_bound == 0.25


def test_the_loss_surface_marks_the_model_and_rises_to_a_cliff_in_r():
    state = load_checkpoint(bundled_path("checkpoints", "dinos.npz"))
    s = loss_surface(state.model, state.val_idx, "validation")
    i, j = int(np.argmin(np.abs(s.r - 1))), int(np.argmin(np.abs(s.a - 1)))
    assert s.loss[i, j] == pytest.approx(evaluate(state.model, state.model.encoded, state.val_idx).per_char, rel=1e-9)
    assert s.loss[-1, j] > s.loss[i, j] + 1.0  # r = 3
    assert s.grad_norm[-1] > 100 * s.grad_norm[i]


def test_the_cli_runs_each_demo_and_refuses_unknown_ones(cli):
    counting = cli("diagnose", "--demo", "counting", "--json")
    assert counting.code == 0, counting.stderr
    np.testing.assert_allclose(counting.json()["rprop_path"][-1], [1.0, 1.0], atol=0.05)
    sigmoid = cli("diagnose", "--demo", "--activation", "sigmoid", "--json")
    assert sigmoid.code == 0 and sigmoid.json()["activation"] == "sigmoid"
    cli("diagnose", "--demo", "bogus").fails_in_one_line(2, "--demo")
    cli("diagnose", "--activation", "relu").fails_in_one_line(2, "--activation")
    cli("diagnose", "--activation", "sigmoid").fails_in_one_line(2, "--demo")


def test_the_surface_in_the_terminal_and_as_a_png(cli, few_dinos, tmp_path):
    from namegen.state import TrainConfig, new_state
    from namegen.training import train

    state = new_state(TrainConfig(hidden_size=8, epochs=2), few_dinos)  # 19 validation names: a quick surface
    train(state, tmp_path / "few.latest.npz")
    small = tmp_path / "few.best.npz"
    ran = cli("diagnose", "--surface", "-c", small)
    assert ran.code == 0 and "X" in ran.stdout and "‖gradient‖ along r" in ran.stdout
    pytest.importorskip("matplotlib")
    ran = cli("plot", "--surface", "-c", small, "--out", tmp_path / "s.png")
    assert ran.code == 0 and (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, named", [
    (["diagnose", "--demo", "counting", "--activation", "sigmoid"], "--activation does not apply to `diagnose --demo counting`"),
    (["diagnose", "--demo", "--surface"], "--demo does not apply to `diagnose --surface`"),
    (["diagnose", "--demo", "-c", "x.npz"], "--checkpoint does not apply to `diagnose --demo`"),
    (["diagnose", "--demo", "--count", "3"], "--count does not apply"),
    (["diagnose", "--surface", "--max-distance", "3"], "--max-distance does not apply to `diagnose --surface`"),
    (["diagnose", "--surface", "Rex"], "a NAME argument does not apply to `diagnose --surface`"),
    (["diagnose", "--activation", "sigmoid"], "--activation does not apply to `diagnose`"),
    (["plot", "--surface", "--count", "3"], "--count does not apply to `plot --surface`"),
])
def test_every_flag_acts_or_is_refused(cli, args, named):
    cli(*args).fails_in_one_line(2, named)
