"""--similar-to: the names closest to a given one among a pool of drawn names."""

import sys
from dataclasses import replace

import numpy as np
import pytest

from namegen.errors import OptionError
from namegen.evaluation import drawn_nll
from namegen.sampling import SampleConfig, sampled
from namegen.similar import pool_size, similar

pytest.importorskip("rapidfuzz", reason="--similar-to needs rapidfuzz (pip install 'namegen[similar]')")


def damerau_levenshtein(a: str, b: str) -> int:
    """The unrestricted Damerau-Levenshtein distance (Lowrance and Wagner), written out: the reference."""
    last_row = {}
    big = len(a) + len(b)
    d = np.full((len(a) + 2, len(b) + 2), big)
    d[1:, 1] = np.arange(len(a) + 1)
    d[1, 1:] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        last_match = 0
        for j in range(1, len(b) + 1):
            k, cost = last_row.get(b[j - 1], 0), int(a[i - 1] != b[j - 1])
            d[i + 1, j + 1] = min(d[i, j] + cost, d[i + 1, j] + 1, d[i, j + 1] + 1,
                                  d[k, last_match] + (i - k - 1) + 1 + (j - last_match - 1))
            if not cost:
                last_match = j
        last_row[a[i - 1]] = i
    return int(d[-1, -1])


def test_the_reference_distance_counts_a_swap_as_one():
    assert damerau_levenshtein("galadriel", "galdariel") == 1 and damerau_levenshtein("ab", "ba") == 1
    assert damerau_levenshtein("ca", "abc") == 2 and damerau_levenshtein("abcd", "bxad") == 3 and damerau_levenshtein("", "abc") == 3


def test_the_closest_names_of_the_pool_come_first_ties_to_the_likelier(trained_state):
    model = trained_state.model
    config = SampleConfig(count=8, seed=5, similar_to="StegoSAURUS", novel=True)
    closest = similar(model, config)
    pool = sampled(model, replace(config, count=pool_size(8), unique=True, similar_to=""))
    distance = {d.cleaned: damerau_levenshtein(d.cleaned, "stegosaurus") for d in pool}
    assert [d.distance for d in closest] == [distance[d.cleaned] for d in closest]
    nats = dict(zip((d.cleaned for d in pool), drawn_nll(model, pool)))
    expected = sorted((n for n in distance if n != "stegosaurus"), key=lambda n: (distance[n], nats[n], n))[:8]
    assert [d.cleaned for d in closest] == expected
    assert all(not model.knows(d.name) for d in closest)  # the other options hold


def test_without_rapidfuzz_the_option_says_how_to_get_it(trained_state, monkeypatch):
    monkeypatch.setitem(sys.modules, "rapidfuzz", None)
    monkeypatch.setitem(sys.modules, "rapidfuzz.distance", None)
    with pytest.raises(OptionError, match=r"pip install 'namegen\[similar\]'"):
        similar(trained_state.model, SampleConfig(similar_to="Rex"))


def test_the_cli_prints_the_closest_names_and_their_distances_in_json(cli, trained_checkpoint):
    payload = cli("sample", "-c", trained_checkpoint, "--similar-to", "Triceratops", "-n", 5, "--seed", 2,
                  "--json").json()
    distances = [n["distance"] for n in payload["names"]]
    assert len(distances) == 5 and distances == sorted(distances) and payload["draws"] >= pool_size(5)
    text = cli("sample", "-c", trained_checkpoint, "--similar-to", "Triceratops", "-n", 5, "--seed", 2)
    assert text.stdout.split() == [n["name"] for n in payload["names"]]
    cli("sample", "-c", trained_checkpoint, "--similar-to", "Rex", "--most-likely", 3).fails_in_one_line(
        2, "give one")
