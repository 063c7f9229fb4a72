"""Looking inside: the gradient check catches broken backward passes, and the flow numbers are right."""

import tracemalloc

import numpy as np
import pytest

from namegen.diagnostics import FlowConfig, demo, diagnose, flow_from_states, name_flow, whh_spectrum
from namegen.gradcheck import GradcheckConfig, check_gradients, gradient_check, random_model
from namegen.model import PARAM_NAMES, backward, forward
from namegen.optim import clip_
from namegen.state import TrainConfig, new_state
from namegen.training import train


def backward_with_the_dWhh_bug(params, cache, truncate=None):
    """The classic mistake: the previous gradient where the previous hidden state belongs in dWhh."""
    grads = backward(params, cache)
    hs = cache.hidden[:, 0]
    dz = cache.probs
    dz.reshape(-1)[cache.picked] -= 1.0
    dh_next, wrong = np.zeros(hs.shape[1]), np.zeros_like(params["Whh"])
    for t in reversed(range(dz.shape[0])):
        da = (dz[t] @ params["Why"].T + dh_next) * (1 - hs[t + 1] ** 2)
        wrong += np.outer(dh_next, da)  # should be np.outer(hs[t], da): h_{t-1}
        dh_next = da @ params["Whh"].T
    grads["Whh"][...] = wrong
    return grads


def test_finite_differences_catch_the_dWhh_bug(random_params, rng):
    params = random_params(vocab_size=6, hidden_size=4)
    ids = rng.integers(1, 6, size=5)
    errors = check_gradients(params, np.r_[0, ids], np.r_[ids, 0], backward_fn=backward_with_the_dWhh_bug)
    assert errors["Whh"] > 1e-2
    assert all(errors[name] < 1e-6 for name in PARAM_NAMES if name != "Whh")


def test_finite_differences_catch_a_truncated_backward_pass(random_params, rng):
    params = random_params(vocab_size=6, hidden_size=4)
    ids = rng.integers(1, 6, size=7)
    assert check_gradients(params, np.r_[0, ids], np.r_[ids, 0], truncate=2)["Whh"] > 1e-2
    assert check_gradients(params, np.r_[0, ids], np.r_[ids, 0])["Whh"] < 1e-6


def test_flow_norms_match_a_direct_product_of_jacobians(random_params, rng):
    params = random_params(vocab_size=5, hidden_size=3, scale=0.8)
    ids = rng.integers(1, 5, size=5)
    inputs, targets = np.r_[0, ids], np.r_[ids, 0]
    grad, jac = name_flow(params, inputs, targets, max_distance=len(inputs))
    _, cache = forward(params, inputs, targets)
    hs = cache.hidden[1:, 0]  # h_t for t = 0..T-1
    p = cache.probs
    p[np.arange(len(targets)), targets] -= 1
    upstream = p @ params["Why"].T
    J = [np.diag(1 - h**2) @ params["Whh"].T for h in hs]  # J_i = dh_i/dh_{i-1}
    for t in range(len(inputs)):
        for m in range(t + 1):
            product = np.eye(3)
            for i in range(t, t - m, -1):
                product = product @ J[i]
            assert grad[t, m] == pytest.approx(np.linalg.norm(upstream[t] @ product), rel=1e-10)
            assert jac[t, m] == pytest.approx(np.linalg.norm(product, 2), rel=1e-10)
        assert np.all(np.isnan(grad[t, t + 1 :]))


@pytest.mark.parametrize("w", [0.5, 1.0, 1.7, -0.8])
def test_linear_scalar_recurrence_scales_the_gradient_by_w_to_the_distance(w):
    T, g = 12, 2.5
    grad, _ = flow_from_states(np.full((T, 1), g), np.ones((T, 1)), np.array([[w]]), max_distance=T)
    for m in range(T):
        np.testing.assert_allclose(grad[m:, m], abs(w) ** m * g, rtol=1e-12)


def test_demo_follows_sigma_to_the_m_and_clipping_bounds_the_exploding_case():
    result = demo(sigmas=(0.7, 1.3), length=20)
    for case in result.cases:
        np.testing.assert_allclose(case.grad_norm / case.grad_norm[0], case.sigma ** np.arange(20), rtol=1e-9)
    clipping = result.clipping
    assert clipping.max_before > 5 and clipping.max_after == 5.0
    assert clipping.norm_after < clipping.norm_before and 0 < clipping.clipped_fraction < 1
    assert clipping.cosine < 0.99 and clipping.norm_clipped_cosine == pytest.approx(1.0, abs=1e-12)


def test_recorded_clipping_and_spectrum_agree_with_the_raw_gradients(small_names, monkeypatch):
    raw = []

    def recording_clip(grad, clip, max_norm=None, scratch=None):
        raw.append(grad.copy())
        return clip_(grad, clip, max_norm, scratch)

    monkeypatch.setattr("namegen.training.clip_", recording_clip)
    state = new_state(TrainConfig(hidden_size=6, epochs=1, clip=0.3, learning_rate=0.3), small_names)
    train(state, engine="numpy")  # the compiled path clips inside its kernel (tests/test_fast.py)
    record = state.history[0]
    assert len(raw) == record.step
    clipped = sum(int(np.sum(np.abs(g) > 0.3)) for g in raw)
    assert record.clip_fraction == pytest.approx(clipped / (len(raw) * raw[0].size), rel=1e-12)
    assert clipped > 0
    norms = [np.linalg.norm(g) for g in raw]
    assert record.grad_norm_mean == pytest.approx(np.mean(norms), rel=1e-12)
    assert record.grad_norm_max == pytest.approx(max(norms), rel=1e-12)
    assert record.whh_sigma_max == pytest.approx(np.linalg.svd(state.model.param_views["Whh"])[1][0], rel=1e-12)


def test_spectrum_radius_never_exceeds_the_largest_singular_value(trained_state):
    spectrum = whh_spectrum(trained_state.model.param_views["Whh"])
    assert np.all(np.diff(spectrum.singular_values) <= 0)
    assert spectrum.spectral_radius <= spectrum.sigma_max + 1e-12


def test_the_gradient_check_passes_on_a_model_and_fails_truncated(trained_state):
    checked = gradient_check(trained_state.model, GradcheckConfig(count=2))
    assert len(checked.names) == 2 and checked.passed
    truncated = gradient_check(random_model(seed=0), GradcheckConfig(truncate=2))
    assert not truncated.passed and not truncated.ok("Whh") and truncated.ok("Why")
    assert truncated.max_error["Whh"] > 1e-2 and truncated.max_error["Why"] < 1e-6


def test_diagnose_traces_the_names_given_or_the_count_asked_for(trained_state):
    drawn = diagnose(trained_state.model, FlowConfig(count=10))
    assert len(drawn.names) == 10 and drawn.verdict and len(drawn.spectrum.singular_values) == 24
    assert drawn.flow.distance[0] == 0 and drawn.flow.relative[0] == 1.0
    assert diagnose(trained_state.model, FlowConfig(), ["Stegosaurus"]).names == ["stegosaurus"]


def test_gradcheck_command_renders_its_table_and_fails_with_1(cli, trained_checkpoint):
    ok = cli("gradcheck", "-c", trained_checkpoint, "--count", 2)
    assert ok.code == 0, ok.stderr
    assert "Whh" in ok.stdout and "FAIL" not in ok.stdout
    truncated = cli("gradcheck", "--truncate", 2, "--json")
    assert truncated.code == 1
    errors = truncated.json()["max_relative_error"]
    assert errors["Whh"] > 1e-2 and errors["Why"] < 1e-6


def test_diagnose_command_reports_flow_spectrum_and_verdict(cli, trained_checkpoint):
    result = cli("diagnose", "-c", trained_checkpoint, "--count", 10, "--json")
    assert result.code == 0, result.stderr
    payload = result.json()
    assert payload["flow"][0]["distance"] == 0 and payload["flow"][0]["relative"] == 1.0
    assert payload["verdict"] and len(payload["singular_values"]) == 24
    text = cli("diagnose", "-c", trained_checkpoint, "Stegosaurus")
    assert "σmax(Whh)" in text.stdout and "distance" in text.stdout
    demo_text = cli("diagnose", "--demo")
    assert demo_text.code == 0 and "Clipping the exploding case" in demo_text.stdout


def test_plot_in_the_terminal(cli, trained_checkpoint):
    result = cli("plot", "-c", trained_checkpoint, "--count", 5)
    assert result.code == 0, result.stderr
    assert "validation" in result.stdout and "gradient flow" in result.stdout


@pytest.mark.slow
def test_plot_writes_a_png(cli, trained_checkpoint, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    result = cli("plot", "-c", trained_checkpoint, "--count", 5, "--out", out)
    assert result.code == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_plot_without_matplotlib_says_how_to_install_it(cli, trained_checkpoint, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = cli("plot", "-c", trained_checkpoint, "--out", tmp_path / "x.png")
    result.fails_in_one_line(1, "pip install 'namegen[plot]'")
    assert not (tmp_path / "x.png").exists()


def test_a_60000_letter_name_is_traced_in_bounded_work_up_to_the_distance_asked(trained_state):
    """The flow of a step depends on no later step: tracing a name's first steps is exact for them."""
    model = trained_state.model
    long_name = ("stegosaurus" * 5455)[:60_000]
    tracemalloc.start()
    try:
        long_flow = diagnose(model, FlowConfig(max_distance=5), [long_name]).flow
        assert tracemalloc.get_traced_memory()[1] < 200 * 2**20
    finally:
        tracemalloc.stop()
    assert long_flow.distance.tolist() == [0, 1, 2, 3, 4, 5]
    cut = diagnose(model, FlowConfig(max_distance=5), [long_name[:1000]]).flow  # traced over the same 1000 steps
    np.testing.assert_allclose(long_flow.grad_norm, cut.grad_norm, rtol=1e-12)
    np.testing.assert_allclose(long_flow.jacobian_norm, cut.jacobian_norm, rtol=1e-12)


@pytest.fixture(scope="module")
def wide_model(few_dinos):
    """Hidden 256 trained briefly as the best recipe trains: large losses, and a long tail of
    gradient entries far smaller than the largest, where central differences round."""
    from namegen.state import TrainConfig, new_state
    from namegen.training import train

    state = new_state(TrainConfig(hidden_size=256, embedding_size=256, dropout=0.5, optimizer="adam",
                                  learning_rate=0.003, batch_size=16, epochs=3), few_dinos)
    train(state)
    return state.model


def test_a_correct_hidden_256_model_passes_and_a_planted_bug_still_fails(wide_model, monkeypatch):
    config = GradcheckConfig(count=1, entries=150)
    checked = gradient_check(wide_model, config)
    assert checked.passed, checked.max_error
    monkeypatch.setattr("namegen.gradcheck.backward", backward_with_the_dWhh_bug)
    broken = gradient_check(wide_model, config)
    assert not broken.passed and not broken.ok("Whh") and broken.ok("Why") and broken.max_error["Whh"] > 1e-3


def test_rounding_alone_stays_below_the_allowance_it_is_judged_by(wide_model):
    """The allowance (rounding_noise) is an estimate: it must cover what rounding does, and not by
    so much that a wrong gradient could hide in it."""
    from namegen.gradcheck import numerical_grads, rounding_noise
    from namegen.model import backward, forward

    inputs, targets = wide_model.vocab.inputs_and_targets(wide_model.names[0])
    params = wide_model.param_views
    nll, cache = forward(params, inputs, targets)
    analytic = backward(params, cache)
    entries = {name: np.arange(min(300, params[name].size)) for name in ("Wxh", "Whh", "bh", "Why", "by")}
    numeric = numerical_grads(params, inputs, targets, entries=entries)
    seen = max(np.nanmax(np.abs(numeric[name] - analytic[name])) for name in entries)
    allowance = rounding_noise(float(nll[0]), len(inputs), 1e-5)
    assert seen < allowance < 1000 * max(seen, 1e-12)


def test_a_long_check_shows_its_progress(wide_model):
    seen = []
    gradient_check(wide_model, GradcheckConfig(count=1, entries=20), on_progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] and all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))
