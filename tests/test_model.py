"""The math: forward pass, backpropagation through time, softmax, and the classic RNN mistakes."""

import numpy as np
import pytest

from namegen.data import pad_batch
from namegen.gradcheck import check_gradients
from namegen.layout import Layout
from namegen.model import (PARAM_NAMES, backward, dropout_factors, forward, loss_and_grads, name_losses,
                           softmax, step)
from namegen.vocab import BOUNDARY, Vocab

V, H = 7, 5


def random_name(rng, length):
    ids = rng.integers(1, V, size=length)
    return np.concatenate(([BOUNDARY], ids)), np.concatenate((ids, [BOUNDARY]))


@pytest.mark.parametrize("length", [1, 2, 5, 12])
def test_gradients_match_finite_differences_for_one_name(rng, random_params, length):
    params = random_params(V, H)
    inputs, targets = random_name(rng, length)
    errors = check_gradients(params, inputs, targets, resolution=0)  # strict, element-wise
    assert set(errors) == set(PARAM_NAMES)
    assert max(errors.values()) < 1e-6, errors


def test_gradients_match_finite_differences_for_a_padded_batch(rng, random_params):
    params = random_params(V, H)
    names = [rng.integers(1, V, size=n) for n in (1, 4, 7)]
    inputs, targets, mask = pad_batch(names)
    errors = check_gradients(params, inputs, targets, mask, resolution=0)
    assert max(errors.values()) < 1e-6, errors


def test_truncated_backward_pass_disagrees_with_finite_differences(rng, random_params):
    params = random_params(V, H)
    inputs, targets = random_name(rng, 8)
    errors = check_gradients(params, inputs, targets, truncate=3, resolution=0)
    assert errors["Whh"] > 1e-3 and errors["Wxh"] > 1e-3
    # the output layer does not backpropagate through time, so truncation leaves it exact
    assert errors["Why"] < 1e-6 and errors["by"] < 1e-6


def test_labels_are_the_inputs_shifted_by_one():
    vocab = Vocab(tuple("abcdr"))
    inputs, targets = vocab.inputs_and_targets("abra")
    a, b, r = (vocab.encode(c)[0] for c in "abr")
    assert inputs.tolist() == [BOUNDARY, a, b, r, a]
    assert targets.tolist() == [a, b, r, a, BOUNDARY]


def test_one_character_name_has_two_steps():
    vocab = Vocab(tuple("ab"))
    inputs, targets = vocab.inputs_and_targets("b")
    assert inputs.tolist() == [BOUNDARY, 2] and targets.tolist() == [2, BOUNDARY]


def test_softmax_is_stable_for_large_logits():
    z = np.array([[1000.0, 999.0, -1000.0], [-1e300, 0.0, 1e300]])
    p = softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)
    np.testing.assert_allclose(p[0, :2], [1 / (1 + np.exp(-1)), np.exp(-1) / (1 + np.exp(-1))])
    assert np.array_equal(z, np.array([[1000.0, 999.0, -1000.0], [-1e300, 0.0, 1e300]]))  # input untouched


def test_the_loss_is_finite_for_logits_far_too_large_to_exponentiate(random_params):
    params = random_params(V, H)
    params["Why"][:] *= 1e4  # logits in the tens of thousands: exp() of them overflows
    nll, _ = forward(params, np.array([0, 1, 2]), np.array([1, 2, 0]))
    assert np.all(np.isfinite(nll)) and nll[0] > 0


def test_softmax_normalises_over_the_vocabulary_axis_not_the_batch(rng):
    z = rng.standard_normal((4, 3, V))  # (T, N, V)
    p = softmax(z)
    np.testing.assert_allclose(p.sum(axis=-1), np.ones((4, 3)))
    for t in range(4):
        for n in range(3):
            e = np.exp(z[t, n] - z[t, n].max())
            np.testing.assert_allclose(p[t, n], e / e.sum())


def test_batch_loss_is_the_mean_of_each_names_loss_whatever_the_batch(rng, random_params):
    params = random_params(V, H)
    names = [rng.integers(1, V, size=n) for n in (3, 1, 6)]
    inputs, targets, mask = pad_batch(names)
    nll, _ = forward(params, inputs, targets, mask)
    for row, ids in enumerate(names):
        single, _ = forward(params, np.concatenate(([0], ids)), np.concatenate((ids, [0])))
        assert nll[row] == pytest.approx(single[0], rel=1e-12)


def test_batch_gradient_is_the_mean_of_per_name_gradients(rng, random_params):
    params = random_params(V, H)
    names = [rng.integers(1, V, size=n) for n in (5, 1, 3, 9)]
    inputs, targets, mask = pad_batch(names)
    _, batch = loss_and_grads(params, inputs, targets, mask)
    singles = [loss_and_grads(params, np.concatenate(([0], ids)), np.concatenate((ids, [0])))[1] for ids in names]
    for name in PARAM_NAMES:
        mean = sum(g[name] for g in singles) / len(names)
        np.testing.assert_allclose(batch[name], mean, rtol=0, atol=1e-10)


def test_padded_steps_cannot_change_loss_or_gradients(rng, random_params):
    params = random_params(V, H)
    inputs, targets, mask = pad_batch([rng.integers(1, V, size=n) for n in (2, 6)])
    loss, grads = loss_and_grads(params, inputs, targets, mask)
    junk_in, junk_out = inputs.copy(), targets.copy()
    junk_in[~mask] = rng.integers(1, V, size=(~mask).sum())
    junk_out[~mask] = rng.integers(1, V, size=(~mask).sum())
    loss2, grads2 = loss_and_grads(params, junk_in, junk_out, mask)
    assert loss == loss2
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(grads[name], grads2[name])


def test_hidden_state_is_not_carried_from_one_name_into_the_next(rng, random_params):
    params = random_params(V, H)
    name = random_name(rng, 4)
    alone, _ = forward(params, *name)
    for _ in range(3):  # whatever ran before, the name's loss is the same
        forward(params, *random_name(rng, 6))
    again, _ = forward(params, *name)
    assert alone[0] == again[0]
    # and in a batch, a row does not depend on its neighbours
    batch, _ = forward(params, np.stack([name[0], random_name(rng, 4)[0]]), np.stack([name[1], name[1]]))
    assert batch[0] == pytest.approx(alone[0], rel=1e-12)


def test_backward_pairs_dWhh_with_the_previous_hidden_state(rng, random_params):
    params = random_params(V, H)
    inputs, targets = random_name(rng, 4)
    _, cache = forward(params, inputs, targets)
    grads = backward(params, cache)
    hs = cache.hidden
    # rebuild da_t from the definition and check dWhh = sum_t h_{t-1}^T da_t
    da = np.zeros((len(inputs), H))
    dz = cache.probs.copy()  # (T, V) for one name
    dz[np.arange(len(inputs)), targets] -= 1
    dh_next = np.zeros(H)
    for t in reversed(range(len(inputs))):
        dh = dz[t] @ params["Why"].T + dh_next
        da[t] = dh * (1 - hs[t + 1, 0] ** 2)
        dh_next = da[t] @ params["Whh"].T
    expected = sum(np.outer(hs[t, 0], da[t]) for t in range(len(inputs)))
    np.testing.assert_allclose(grads["Whh"], expected, atol=1e-12)
    wrong = sum(np.outer(hs[t + 1, 0], da[t]) for t in range(len(inputs)))
    assert not np.allclose(grads["Whh"], wrong)


def test_gradients_are_written_into_given_arrays(rng, random_params):
    params = random_params(V, H)
    out = {name: np.full_like(params[name], np.nan) for name in PARAM_NAMES}
    _, grads = loss_and_grads(params, *random_name(rng, 3), grads=out)
    assert all(grads[name] is out[name] and np.all(np.isfinite(out[name])) for name in PARAM_NAMES)


def test_sampling_step_and_training_forward_compute_the_same_model(rng, random_params):
    """model.step (one step, for sampling) and forward (all steps, for training) are two codings of
    one recurrence: stepping through a name must give forward's loss for it."""
    params = random_params(V, H)
    inputs, targets = random_name(rng, 9)
    h, total = np.zeros((1, H)), 0.0
    for x, y in zip(inputs, targets):
        h, logits = step(params, h, np.array([x]))
        total -= np.log(softmax(logits)[0, y])
    nll, cache = forward(params, inputs, targets)
    assert total == pytest.approx(nll[0], rel=1e-12)
    np.testing.assert_allclose(h[0], cache.hidden[-1, 0], rtol=1e-12)


@pytest.mark.parametrize("vocab_size, hidden_size", [(7, 5), (60, 4)])
def test_evaluation_losses_equal_the_training_forward_pass(random_params, rng, vocab_size, hidden_size):
    params = random_params(vocab_size=vocab_size, hidden_size=hidden_size)
    lengths = [1, 6, 3, 9]
    inputs, targets, mask = pad_batch([rng.integers(1, vocab_size, size=n) for n in lengths])
    expected, _ = forward(params, inputs, targets, mask)
    np.testing.assert_allclose(name_losses(params, inputs, targets, mask), expected, rtol=1e-12)
    one, _ = forward(params, inputs[1, :7], targets[1, :7])
    np.testing.assert_allclose(name_losses(params, inputs[1, :7], targets[1, :7]), one, rtol=1e-12)


@pytest.mark.parametrize("batch", [False, True])
def test_dropout_gradients_pass_finite_differences_with_a_fixed_mask(random_params, rng, batch):
    params = random_params(vocab_size=7, hidden_size=5)
    if batch:
        inputs, targets, mask = pad_batch([rng.integers(1, 7, size=n) for n in (4, 7, 2)])
        keep = dropout_factors(rng, (inputs.shape[1], inputs.shape[0], 5), 0.4)
    else:
        ids = rng.integers(1, 7, size=8)
        inputs, targets, mask = np.concatenate(([0], ids)), np.concatenate((ids, [0])), None
        keep = dropout_factors(rng, (9, 5), 0.4)
    assert 0 < np.count_nonzero(keep == 0) < keep.size  # some units dropped, some kept
    errors = check_gradients(params, inputs, targets, mask, keep=keep, resolution=0)
    assert max(errors.values()) < 1e-6, errors


def test_a_backward_pass_that_ignores_the_dropout_mask_is_caught(random_params, rng):
    params = random_params(vocab_size=7, hidden_size=5)
    ids = rng.integers(1, 7, size=8)
    inputs, targets = np.concatenate(([0], ids)), np.concatenate((ids, [0]))
    keep = dropout_factors(rng, (9, 5), 0.4)

    def ignores_keep(params, cache, truncate=None):
        return backward(params, cache._replace(keep=None), truncate)

    errors = check_gradients(params, inputs, targets, keep=keep, backward_fn=ignores_keep, resolution=0)
    assert errors["Wxh"] > 1e-2 and errors["Whh"] > 1e-2


def test_dropout_factors_keep_the_expected_output_and_follow_the_generator():
    a = dropout_factors(np.random.default_rng(1), (4000, 50), 0.3)
    assert set(np.unique(a)) == {0.0, 1 / 0.7}
    assert abs(a.mean() - 1.0) < 0.01
    two_draws = np.random.default_rng(1)
    first, second = dropout_factors(two_draws, (1500, 50), 0.3), dropout_factors(two_draws, (2500, 50), 0.3)
    np.testing.assert_array_equal(np.concatenate((first, second)), a)  # chunks see what names one by one would


def perturbed_vector(rng, styles=0, style_size=0, embedding_size=0):
    """A trained vector of a layout, its initial values plus N(0, 0.5^2) noise, products rebuilt."""
    layout = Layout(V, H, styles, style_size, embedding_size)
    weights = layout.initial(rng) + rng.standard_normal(layout.size) * 0.5
    views = layout.views(weights)
    layout.rebuild_(views)
    return layout, weights, views


@pytest.mark.parametrize("batch", [False, True])
def test_every_products_factors_get_gradients_that_pass_finite_differences(rng, batch):
    """Wxh = E Wih and B = S Wsh: d left = d product right^T and d right = left^T d product (the
    layout passes them on), checked entry by entry against the loss of the network rebuilt from
    perturbed factors."""
    layout, weights, views = perturbed_vector(rng, styles=2, style_size=3, embedding_size=3)
    if batch:
        inputs, targets, mask = pad_batch([rng.integers(1, V, size=n) for n in (2, 6, 4)])
        styles = np.array([0, 1, 1])
    else:
        (inputs, targets), mask, styles = random_name(rng, 6), None, 1

    def loss():
        layout.rebuild_(views)
        return loss_and_grads(views, inputs, targets, mask, styles=styles)[0]

    grad = np.zeros_like(weights)
    grads = layout.views(grad)
    loss_and_grads(views, inputs, targets, mask, grads=grads, styles=styles)
    layout.pass_to_factors_(grads, views)
    assert not grads["Wxh"].any() and not grads["B"].any()  # products are not trained themselves
    for name in ("E", "Wih", "S", "Wsh"):
        np.testing.assert_allclose(grads[name], central_differences(loss, views[name]), rtol=1e-6, atol=1e-9,
                                   err_msg=name)


def central_differences(loss, array, eps=1e-5):
    """d loss() / d array, entry by entry, by (loss(a + eps) - loss(a - eps)) / 2 eps; loss reads array."""
    numeric = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        old = array[i]
        array[i] = old + eps
        plus = loss()
        array[i] = old - eps
        minus = loss()
        array[i] = old
        numeric[i] = (plus - minus) / (2 * eps)
    return numeric


def test_style_gradients_pass_finite_differences_through_b(rng):
    """h_t = tanh(x_t Wxh + h_{t-1} Whh + s Wsh + bh): backward's dB against central differences of
    the loss of a padded batch of names of two styles (S and Wsh get theirs through B, above)."""
    layout, weights, params = perturbed_vector(rng, styles=2, style_size=3)
    inputs, targets, mask = pad_batch([rng.integers(1, V, size=n) for n in (3, 6, 2, 5)])
    styles = np.array([0, 1, 1, 0])
    errors = check_gradients(params, inputs, targets, mask, styles=styles, resolution=0)
    assert set(errors) == set(PARAM_NAMES) | {"B"} and max(errors.values()) < 1e-6, errors
    _, grads = loss_and_grads(params, inputs, targets, mask, styles=styles)
    assert np.abs(grads["B"]).min(axis=1).max() > 1e-4  # both styles' rows: each style reached the loss


def test_a_style_changes_only_its_own_names_losses(rng):
    layout, weights, params = perturbed_vector(rng, styles=2, style_size=3)
    inputs, targets, mask = pad_batch([rng.integers(1, V, size=n) for n in (3, 6)])
    before = name_losses(params, inputs, targets, mask, np.array([0, 1]))
    np.testing.assert_allclose(before, forward(params, inputs, targets, mask, styles=np.array([0, 1]))[0])
    params["S"][1] += 1.0
    layout.rebuild_(params)
    after = name_losses(params, inputs, targets, mask, np.array([0, 1]))
    assert after[0] == before[0] and after[1] != before[1]
