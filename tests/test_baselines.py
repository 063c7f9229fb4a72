"""The baselines the README compares with: makemore's split rebuilt without PyTorch, and the
Kneser-Ney n-grams' probabilities."""

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from makemore_split import makemore_split  # noqa: E402
from ngram import BOUNDARY, KneserNey  # noqa: E402


WORDS = (BENCHMARKS.parent / "data" / "names.txt").read_text(encoding="utf-8").split()


def test_makemores_split_is_rebuilt_with_its_first_and_last_test_names():
    train, test = makemore_split(WORDS)
    assert len(train) == 31033 and len(test) == 1000 and (test[0], test[-1]) == ("kalub", "jvion")
    assert sorted(train + test) == sorted(WORDS)


def test_makemores_split_is_pytorchs_own_permutation():
    words = WORDS
    _, test = makemore_split(words)
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (it is never a dependency)")
    torch.manual_seed(3407)
    assert [words[i] for i in torch.randperm(len(words)).tolist()[-1000:]] == test


@pytest.mark.parametrize("n", [2, 4, 6])
def test_kneser_ney_gives_a_distribution_after_any_history(n):
    names = ["tyrannosaurus", "stegosaurus", "rex", "raptor", "saur", "aura"] * 3
    model = KneserNey(names, n)
    symbols = sorted({c for name in names for c in name} | {BOUNDARY})
    for history in [BOUNDARY * (n - 1), "saur"[-(n - 1):], "zzzzzz"[-(n - 1):]]:
        assert sum(model.probability(history, w) for w in symbols) == pytest.approx(1.0, abs=1e-12)
    assert model.probability("saur"[-(n - 1):], "u") > model.probability("saur"[-(n - 1):], "z")
