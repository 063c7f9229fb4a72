"""--most-likely: the names the model finds likeliest, found exactly, under every constraint."""

from itertools import product

import numpy as np
import pytest

from namegen.data import parse_names
from namegen.errors import OptionError, SamplingError
from namegen.likeliest import most_likely
from namegen.model import softmax, step
from namegen.sampling import SampleConfig
from namegen.state import TrainConfig, new_state


@pytest.fixture(scope="module")
def tiny():
    """A model over three letters with random weights: every name up to 4 letters can be enumerated."""
    model = new_state(TrainConfig(hidden_size=5), parse_names("abc\ncab\nbca\nca", "abc.txt")).model
    model.params[:] = np.random.default_rng(3).standard_normal(model.params.size)
    return model


def enumerated(model, longest, keep=lambda name: True):
    """Every name of at most `longest` letters with its nats, by the product of its letters' softmax
    and the end's, likeliest first."""
    params, V = model.param_views, model.vocab.size
    nats = {}
    for length in range(1, longest + 1):
        for ids in product(range(1, V), repeat=length):
            name = model.vocab.decode(ids)
            if not keep(name):
                continue
            h, logits = step(params, np.zeros((1, params["Whh"].shape[0])), np.array([0]))
            total = 0.0
            for i in [*ids, 0]:
                total -= np.log(softmax(logits)[0, i])
                h, logits = step(params, h, np.array([i]))
            nats[name] = total
    return sorted(nats.items(), key=lambda item: item[1])


@pytest.mark.parametrize("options, keep", [
    ({}, lambda n: True),
    ({"prefix": "b"}, lambda n: n.startswith("b")),
    ({"min_length": 3}, lambda n: len(n) >= 3),
    ({"suffix": "a", "exclude": ("bb",)}, lambda n: n.endswith("a") and "bb" not in n),
    ({"contains": ("ca",), "pattern": "[ab].*"}, lambda n: "ca" in n and n[0] in "ab"),
    ({"novel": True}, lambda n: n not in {"abc", "cab", "bca", "ca"}),
])
def test_the_likeliest_names_are_the_top_of_the_enumeration(tiny, options, keep):
    expected = enumerated(tiny, 4, keep)[:12]
    found = most_likely(tiny, SampleConfig(most_likely=12, max_length=4, **options))
    assert [f.cleaned for f in found] == [name for name, _ in expected]
    assert [f.nats for f in found] == pytest.approx([nats for _, nats in expected], rel=1e-12)


def test_the_search_stops_at_the_budget_with_the_names_it_found_each_exact(tiny):
    expected = [name for name, _ in enumerated(tiny, 4, lambda n: n.endswith("cc"))]
    with pytest.raises(SamplingError, match="found only .* partial names extended") as caught:
        most_likely(tiny, SampleConfig(most_likely=20, max_length=4, suffix="cc", max_tries=40))
    found = [f.cleaned for f in caught.value.found]
    assert found == expected[: len(found)]


def test_asking_for_more_names_than_there_are_says_so(tiny):
    with pytest.raises(SamplingError, match="no other name meets") as caught:
        most_likely(tiny, SampleConfig(most_likely=50, max_length=2))
    assert len(caught.value.found) == 12  # 3 + 9 names of one or two letters


@pytest.mark.parametrize("options", [{"temperature": 0.5}, {"top_k": 2}, {"top_p": 0.5}])
def test_the_sampling_modes_are_refused(tiny, options):
    with pytest.raises(OptionError, match="does not apply"):
        most_likely(tiny, SampleConfig(most_likely=3, **options))


def test_the_cli_prints_the_likeliest_names_with_their_log_probability(cli, trained_checkpoint):
    text = cli("sample", "-c", trained_checkpoint, "--most-likely", 4, "--prefix", "st")
    assert text.code == 0, text.stderr
    payload = cli("sample", "-c", trained_checkpoint, "--most-likely", 4, "--prefix", "st", "--json").json()
    names = payload["names"]
    assert len(names) == 4 and all(n["name"].startswith("St") and n["name"] in text.stdout for n in names)
    assert [n["log_probability"] for n in names] == sorted((n["log_probability"] for n in names), reverse=True)
    scored = cli("score", "-c", trained_checkpoint, *[n["name"] for n in names], "--json").json()["scores"]
    assert [n["nats"] for n in names] == pytest.approx([s["nats"] for s in scored], rel=1e-12)
