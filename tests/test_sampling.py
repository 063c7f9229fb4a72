"""Sampling: repeatable by seed, every option honoured, impossible requests refused."""

import re
import warnings
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from namegen import fast
from namegen.errors import SamplingError
from namegen.model import softmax, step
from namegen.sampling import SampleConfig, generate, sample


needs_numba = pytest.mark.skipif(not fast.available(), reason="numba is not installed (pip install 'namegen[fast]')")


def draw(state, seed=0, **options):
    return sample(state.model, SampleConfig(**options), np.random.default_rng(seed))


def test_same_seed_same_names_different_seed_different_names(trained_state):
    assert draw(trained_state, seed=4, count=20) == draw(trained_state, seed=4, count=20)
    assert draw(trained_state, seed=4, count=20) != draw(trained_state, seed=5, count=20)


def test_names_are_capitalised_like_the_data(trained_state):
    names = draw(trained_state, count=30)
    assert len(names) == 30
    assert all(n[0].isupper() and n[1:] == n[1:].lower() for n in names)


def test_sampled_names_use_only_the_vocabulary(trained_state):
    for name in draw(trained_state, count=200, temperature=2.0):
        assert not trained_state.model.vocab.unknown(name.lower())


def test_prefix_is_respected_in_any_case(trained_state):
    assert all(n.startswith("Ste") for n in draw(trained_state, count=25, prefix="STE"))


def test_length_limits_are_respected(trained_state):
    names = draw(trained_state, count=100, min_length=6, max_length=9)
    assert all(6 <= len(n) <= 9 for n in names)


def test_novel_names_are_not_in_the_training_list(trained_state):
    names = draw(trained_state, count=100, novel=True, temperature=0.5)
    assert not any(trained_state.model.knows(n) for n in names)


def test_unique_names_do_not_repeat(trained_state):
    names = draw(trained_state, count=60, unique=True, temperature=0.5)
    assert len(set(names)) == 60


def test_low_temperature_is_more_repetitive_than_high(trained_state):
    cold = draw(trained_state, count=200, temperature=0.3)
    hot = draw(trained_state, count=200, temperature=1.5)
    assert len(set(cold)) < len(set(hot))


def test_top_1_is_greedy_and_always_the_same(trained_state):
    assert len(set(draw(trained_state, count=20, top_k=1))) == 1


def test_first_letter_follows_the_models_distribution(trained_state):
    """The vectorised sampler draws from softmax(logits): compare first letters with the model."""
    params = trained_state.model.param_views
    _, logits = step(params, np.zeros((1, params["Whh"].shape[0])), np.array([0]))
    expected = softmax(logits)[0]
    drawn = generate(params, 20_000, np.random.default_rng(1), max_length=40)
    first = np.bincount([d[0] for d in drawn if d], minlength=len(expected)) / 20_000
    assert np.abs(first[1:] - expected[1:]).max() < 0.015


def test_unknown_prefix_letter_is_refused(trained_state):
    with pytest.raises(SamplingError, match="never saw"):
        draw(trained_state, prefix="q7")


@pytest.mark.parametrize("options, message", [
    ({"count": 0}, "count"), ({"temperature": 0}, "temperature"), ({"temperature": float("nan")}, "temperature"),
    ({"min_length": 5, "max_length": 3}, "min_length"), ({"prefix": "abcdef", "max_length": 3}, "prefix"),
])
def test_impossible_options_are_refused(trained_state, options, message):
    with pytest.raises(ValueError, match=message):
        draw(trained_state, **options)


def test_unmeetable_novel_unique_request_reports_what_it_found(trained_state):
    with pytest.raises(SamplingError, match=r"found only \d+ of 50 novel unique names") as info:
        draw(trained_state, count=50, novel=True, unique=True, max_length=2, max_tries=3000)
    found = info.value.found
    assert len(found) < 50 and len(set(found)) == len(found)
    assert all(len(n) <= 2 and not trained_state.model.knows(n) for n in found)


def test_a_seed_in_the_options_repeats_the_names(trained_state):
    config = SampleConfig(count=8, seed=11)
    assert sample(trained_state.model, config) == sample(trained_state.model, config) == \
        draw(trained_state, seed=11, count=8)


def test_a_name_whose_capital_would_change_it_is_shown_as_it_is_and_known():
    from namegen.model import Model
    from namegen.vocab import Vocab

    names = ["ßeta", "ﬁona", "anna", "ǳevad"]
    model = Model(Vocab.from_names(names), np.zeros(1), 1, False, ("start",), names)
    shown = [model.display(n) for n in names]
    assert shown == ["ßeta", "ﬁona", "Anna", "Ǳevad"]
    assert all(model.knows(s) for s in shown)


def test_the_shortest_length_holds_at_any_temperature_however_small(trained_state):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, no NaN along the way
        names = draw(trained_state, count=20, temperature=1e-310, min_length=30, max_length=60)
    assert len(names) == 20 and all(30 <= len(n) <= 60 for n in names)


def test_streamed_names_are_the_sampled_names(trained_state):
    from namegen.sampling import stream

    config = SampleConfig(count=25, seed=3, unique=True)
    assert list(stream(trained_state.model, config)) == sample(trained_state.model, config)


@pytest.fixture(scope="module")
def spaced_model():
    """A barely trained model over names with spaces, hyphens and apostrophes: it draws many
    names that could never be lines of its data."""
    from namegen.data import parse_names
    from namegen.state import TrainConfig, new_state
    from namegen.training import train

    names = ["Jean-Luc Picard", "Mary Ann", "O'Brien", "Tar Aeland", "Hurin of Londes", "Anne-Marie"] * 5
    state = new_state(TrainConfig(hidden_size=8, epochs=1, val_fraction=0), parse_names("\n".join(names), "t"))
    train(state)
    return state.model


def test_no_sampled_name_has_white_space_at_an_end_or_doubled_or_an_edge_the_data_never_has(spaced_model):
    from collections import Counter

    rejected = Counter()
    names = sample(spaced_model, SampleConfig(count=300, temperature=1.5, seed=0), rejected=rejected)
    assert len(names) == 300
    for name in names:
        assert name == name.strip() and "  " not in name
        assert name[0].isalnum() and name[-1].isalnum()  # no name of the data begins or ends otherwise
    assert rejected["not_clean"] > 0 and rejected["odd_edge"] > 0  # such draws came, and were redrawn


def test_a_prefix_ending_in_a_space_asks_for_a_next_word(spaced_model):
    from namegen.data import clean_prefix

    assert clean_prefix("  San  ", keep_case=True) == "San " and clean_prefix("STE") == "ste" and clean_prefix("") == ""
    names = sample(spaced_model, SampleConfig(count=20, prefix="Tar ", seed=0))
    assert all(name.startswith("Tar ") and len(name) > 4 for name in names)


@pytest.fixture(scope="module")
def styled_params():
    """A briefly trained model of two lists: its sampling weights, and each name's style term."""
    from namegen.data import parse_names
    from namegen.model import blend_term
    from namegen.state import TrainConfig, new_state
    from namegen.training import train

    a = parse_names("\n".join(["Aelin", "Arwen", "Elrond", "Galadriel", "Idril", "Luthien"] * 4), "elves.txt")
    b = parse_names("\n".join(["Balin", "Dwalin", "Gimli", "Thorin", "Durin", "Gloin"] * 4), "dwarves.txt")
    names = replace(a, names=a.names + b.names, styles=("elves", "dwarves"), style_of=np.repeat([0, 1], 24))
    state = new_state(TrainConfig(hidden_size=16, epochs=2, val_fraction=0), names)
    train(state, engine="numpy")
    params = state.model.param_views
    return params, params["B"][np.random.default_rng(5).integers(0, 2, size=3000)], blend_term(params, [0.3, 0.7])


@needs_numba
@pytest.mark.parametrize("options", [
    {}, {"prefix_ids": [3, 1], "min_length": 6}, {"max_length": 6}, {"bias": "per name"}, {"bias": "blend"},
    {"top_k": 5, "temperature": 0.8},
], ids=["plain", "prefix and shortest", "longest", "a style per name", "a blend", "top-k and temperature"])
def test_the_compiled_sampling_steps_draw_the_names_numpy_draws(styled_params, options):
    """fast.input_tanh and fast.draw against the numpy steps: the same products, the same sums for
    the draw, tanh within 3 ulp, so the same names for the same generator (3,000 names, each option)."""
    fast.load("sampling")
    params, per_name, blend = styled_params
    options = options | ({"bias": {"per name": per_name, "blend": blend}[options["bias"]]} if "bias" in options else {})
    drawn = [generate(params, 3000, np.random.default_rng(11), compiled=compiled, **options) for compiled in (False, True)]
    assert drawn[0] == drawn[1]
    assert sum(d is None for d in drawn[0]) < 3000 and len({tuple(d) for d in drawn[0] if d}) > 100


@needs_numba
@given(st.integers(0, 2**32 - 1), st.booleans())
@settings(max_examples=40, deadline=None)
def test_the_compiled_draw_picks_the_ids_numpy_picks(seed, no_end):
    from namegen.sampling import draw

    fast.load("sampling")
    rng = np.random.default_rng(seed)
    product = rng.standard_normal((64, 7 + 30)) * rng.choice([0.1, 3.0, 40.0])
    by = rng.standard_normal(30)
    u = rng.random(64)
    ids = fast.draw(product, 7, by, u, no_end)
    np.testing.assert_array_equal(ids, draw(product[:, 7:] + by, u, no_end))
    assert not no_end or ids.min() > 0


@given(st.lists(st.text(st.sampled_from("abcé'- ()ÆØ𝔄ß"), min_size=3, max_size=3), min_size=1, max_size=20))
def test_decoding_rows_at_once_is_decoding_each_row(rows):
    from namegen.vocab import Vocab

    vocab = Vocab.from_names(["abcé'- ()ÆØ𝔄ß"])
    ids = np.array([vocab.encode(row, "a row") for row in rows])
    assert vocab.decode_rows(ids) == [vocab.decode(row) for row in ids] == rows
    assert vocab.decode_rows(ids[:, :0]) == [""] * len(rows)


def nucleus(probs: np.ndarray, top_p: float) -> np.ndarray:
    """The distribution nucleus sampling draws from, written plainly: the likeliest letters, one by
    one, until their probabilities reach top_p; renormalised."""
    kept, mass = np.zeros_like(probs), 0.0
    for i in sorted(range(len(probs)), key=lambda i: -probs[i]):
        if mass >= top_p:
            break
        kept[i], mass = probs[i], mass + probs[i]
    return kept / kept.sum()


def chi_square_bound(df: int, z: float = 3.72) -> float:
    """The chi-square statistic a correct sampler exceeds with probability about 1e-4 (z: that tail's
    normal quantile), by the Wilson-Hilferty approximation."""
    return df * (1 - 2 / (9 * df) + z * np.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 6, 1.0), (1.0, 0, 0.6),
                                                       (1.3, 0, 0.8), (0.8, 8, 0.5), (1.0, 0, 0.01)])
def test_the_first_letter_follows_the_renormalised_softmax_of_every_mode(trained_state, temperature, top_k, top_p):
    """Chi-square of 20,000 first letters against softmax(logits / temperature), cut to the top_k and
    then to the nucleus of top_p, renormalised; a letter outside that set is never drawn."""
    params = trained_state.model.param_views
    _, logits = step(params, np.zeros((1, params["Whh"].shape[0])), np.array([0]))
    z = logits[0].copy()
    z[0] = -np.inf  # a name has at least one letter
    if top_k:
        z[z < np.sort(z)[-top_k]] = -np.inf
    expected = nucleus(softmax(z / temperature), top_p) * 20_000
    drawn = generate(params, 20_000, np.random.default_rng(7), temperature=temperature, top_k=top_k, top_p=top_p,
                     max_length=40)
    counts = np.bincount([d[0] for d in drawn if d], minlength=len(expected))
    assert counts[expected == 0].sum() == 0 and counts.sum() == 20_000
    shown = expected >= 5
    statistic = (((counts - expected) ** 2)[shown] / expected[shown]).sum()
    assert statistic < chi_square_bound(max(shown.sum() - 1, 1)), (statistic, shown.sum())


def test_a_suffix_and_a_pattern_are_met_by_every_name_and_counted_when_missed(trained_state):
    from collections import Counter

    rejected = Counter()
    names = sample(trained_state.model, SampleConfig(count=40, suffix="SAURUS", seed=1), rejected=rejected)
    assert len(names) == 40 and all(n.endswith("saurus") for n in names)  # as the model writes it: lower case
    assert rejected["suffix"] > 0
    matched = draw(trained_state, count=40, pattern="a.*|.*on", seed=2)
    assert len(matched) == 40 and all(n.lower().startswith("a") or n.endswith("on") for n in matched)
    both = draw(trained_state, count=10, prefix="ste", suffix="us", pattern=".{6,12}", seed=3)
    assert all(n.startswith("Ste") and n.endswith("us") and 6 <= len(n) <= 12 for n in both)


def test_a_suffix_no_name_can_have_and_a_pattern_that_is_not_one_are_refused(trained_state):
    with pytest.raises(SamplingError, match="never saw"):
        draw(trained_state, suffix="us7")
    with pytest.raises(ValueError, match="pattern"):
        SampleConfig(pattern="(unclosed")
    with pytest.raises(ValueError, match="suffix"):
        SampleConfig(suffix="saurus", max_length=4)
    with pytest.raises(SamplingError, match="longer than the longest name"):
        draw(trained_state, suffix="a" * 200)


def test_the_cli_refuses_impossible_constraints_in_one_line(cli, trained_checkpoint):
    cli("sample", "-c", trained_checkpoint, "--pattern", "(").fails_in_one_line(2, "--pattern")
    cli("sample", "-c", trained_checkpoint, "--suffix", "q7").fails_in_one_line(1, "never saw")
    cli("sample", "-c", trained_checkpoint, "--suffix", "xyz", "--max-length", 2).fails_in_one_line(2, "--suffix")


def test_contains_and_exclude_hold_for_every_name_each_time_they_are_given(trained_state):
    from collections import Counter

    rejected = Counter()
    names = sample(trained_state.model, SampleConfig(count=30, contains=("o", "A"), exclude=("x", "saurus"), seed=4),
                   rejected=rejected)
    assert len(names) == 30
    assert all("o" in n.lower() and "a" in n.lower() and "x" not in n.lower() and "saurus" not in n.lower()
               for n in names)
    assert rejected["contains"] + rejected["excluded"] > 0
    assert SampleConfig(contains=["a", "b"]).contains == ("a", "b")  # a list, from Python or JSON, is kept as a tuple


@pytest.mark.parametrize("options, message", [
    ({"contains": ("ab",), "exclude": ("b",)}, "no name can have both"),
    ({"suffix": "us", "exclude": ("s",)}, "no name can have both"),
    ({"prefix": "ste", "exclude": ("te",)}, "no name can have both"),
    ({"contains": ("q7",)}, "never saw"),
    ({"contains": ("a" * 300,)}, "longer than the longest name"),
])
def test_constraints_no_name_can_meet_are_refused_before_sampling(trained_state, options, message):
    with pytest.raises(SamplingError, match=message):
        draw(trained_state, **options)


def test_the_cli_takes_contains_and_exclude_again_and_again(cli, trained_checkpoint):
    ran = cli("sample", "-c", trained_checkpoint, "-n", 8, "--contains", "a", "--contains", "o", "--exclude", "x",
              "--exclude", "u", "--seed", 1)
    assert ran.code == 0, ran.stderr
    names = ran.stdout.split()
    assert len(names) == 8 and all("a" in n.lower() and "o" in n.lower() and not {"x", "u"} & set(n.lower())
                                   for n in names)


def test_names_already_used_are_never_printed_whatever_their_case_or_spacing(trained_state, tmp_path):
    from collections import Counter

    before = draw(trained_state, count=200, seed=5)
    used = tmp_path / "manuscript.txt"
    used.write_text("\n".join(f"  {name.upper()} " for name in before[:50]) + "\n")
    rejected = Counter()
    after = sample(trained_state.model, SampleConfig(count=200, seed=5, exclude_names=str(used)), rejected=rejected)
    assert len(after) == 200 and not set(after) & set(before[:50])
    assert rejected["used"] >= 50  # the same draws came first, and each of those was drawn again


def test_an_unreadable_list_of_used_names_is_one_line(cli, trained_checkpoint, tmp_path):
    cli("sample", "-c", trained_checkpoint, "--exclude-names", tmp_path / "nope.txt").fails_in_one_line(1, "no such file")
    (tmp_path / "bad.txt").write_bytes(b"Rex\n\xff\xfe oops\n")
    cli("sample", "-c", trained_checkpoint, "--exclude-names", tmp_path / "bad.txt").fails_in_one_line(1, "UTF-8")


@pytest.mark.parametrize("options, option", [({"suffix": "xyzzy"}, "suffix"), ({"pattern": "q.*z"}, "pattern"),
                                             ({"count": 40, "novel": True, "max_length": 2}, "max_length")])
def test_a_request_that_runs_out_of_draws_names_the_constraint_that_turned_them_away(trained_state, options, option):
    with pytest.raises(SamplingError) as info:
        draw(trained_state, **{"count": 3, "max_tries": 2000, **options})
    message = str(info.value)
    assert re.search(rf"; \d+ of them .* \({option}\); ask for fewer, relax {option}, or allow more draws with "
                     "max_tries", message), message  # the library names fields; the CLI spells them --max-tries


@pytest.fixture(scope="module")
def bracketed_model():
    """The README's best recipe (hidden 256, embedding 256, dropout 0.5, Adam 0.003, batches of 16),
    briefly trained on multi-word names with parentheses, quotes, hyphens and apostrophes, letter
    case kept: it draws many names no line of its data could be."""
    from namegen.data import parse_names
    from namegen.state import TrainConfig, new_state
    from namegen.training import train

    names = ["Hiril (Elf)", "Gandalf the Grey", "Bilbo Baggins", "Frodo (Hobbit)", "Helm's Deep", "Barad-dûr",
             "Orodruin (Mount Doom)", "Tom Bombadil", "Dol Guldur", "Aragorn (Strider)", "O'Neill", "Jean-Luc",
             'Grima "Wormtongue"', "Minas Tirith (City)", "Fangorn Forest", "Eorl the Young"] * 8
    state = new_state(TrainConfig(hidden_size=256, embedding_size=256, dropout=0.5, optimizer="adam",
                                  learning_rate=0.003, batch_size=16, warmup=0.05, epochs=3),
                      parse_names("\n".join(names), "middle.txt", "keep"))
    train(state, engine="numpy")
    return state.model


def test_no_printed_name_breaks_a_rule_every_line_of_the_data_keeps(bracketed_model):
    from namegen.rules import balanced, capital_places

    model = bracketed_model
    rejected = Counter()
    names = sample(model, SampleConfig(count=2000, seed=1), rejected=rejected)
    assert len(names) == 2000 and not [name for name in names if model.unlike_data(name)]
    assert all(balanced(n, "()") and balanced(n, '""') for n in names)
    assert not any("inside" in capital_places(n) for n in names)
    assert model.rules.balanced == ("()", '""') and model.rules.capital_places == ("start", "after mark")
    assert rejected["unbalanced"] > 0 and rejected["capital"] > 0  # by rule, as --json counts them


def test_rules_are_learned_so_a_list_that_breaks_them_keeps_its_names():
    from namegen.data import parse_names
    from namegen.state import TrainConfig, new_state

    codes = parse_names("\n".join(["McDonald", "DeVito", "C3PO", "Open (left", "iPhone"] * 4), "codes.txt", "keep")
    model = new_state(TrainConfig(hidden_size=4), codes).model
    assert model.unlike_data("McVito") is None and model.unlike_data("Open (Phone") is None


def test_a_word_may_begin_with_a_digit_or_a_mark_only_where_a_word_of_the_data_does():
    from namegen.rules import Rejection, Rules

    rules = Rules.of(["Apollo 11", "Gemini (IV)", "Vostok"])
    assert rules.word_starts == ("letter", "digit", "mark")
    plain = Rules.of(["Apollo Eleven", "Gemini Four", "R2 D2"])  # digits inside words, none at a start
    assert plain.word_starts == ("letter",)
    assert plain.broken_by("Apollo 2d") is Rejection.WORD_START and plain.broken_by("Apollo D2") is None
    assert plain.broken_by("Gemini -x") is Rejection.WORD_START


@pytest.mark.parametrize("name, pair, expected", [("a (b) c", "()", True), ("a (b", "()", False), ("a) (b", "()", False),
                                                  ('say "hi"', '""', True), ('say "hi', '""', False)])
def test_balance_is_opening_before_closing_and_as_many(name, pair, expected):
    from namegen.rules import balanced

    assert balanced(name, pair) is expected


def test_capitals_are_placed_at_a_word_start_after_a_mark_or_inside():
    from namegen.rules import capital_places

    assert capital_places("Hiril (Elf)") == {"start"}
    assert capital_places("O'Neill Jean-Luc") == {"start", "after mark"}
    assert capital_places("McDonald") == {"start", "inside"}
    assert capital_places("lower case") == set()


@pytest.mark.parametrize("options, keep", [
    ({"suffix": "a", "exclude": ("bb",), "pattern": ".*[ab].*"},
     lambda name: name.endswith("a") and "bb" not in name and ("a" in name or "b" in name)),
    ({"prefix": "c", "contains": ("b",)}, lambda name: name.startswith("c") and "b" in name),
    ({"exclude_names": "USED", "novel": True, "exclude": ("c",)},
     lambda name: name not in {"ab", "ba", "aab", "abc", "cab", "bca", "ca"} and "c" not in name),
], ids=["suffix, exclude, pattern", "prefix, contains", "names used, novel, exclude"])
def test_constrained_names_follow_the_model_conditioned_on_the_constraints_by_enumeration(options, keep, tmp_path):
    """A model over three letters with random weights, names of at most 3 letters: every name's
    probability by enumeration (the product of its letters' softmax and the end's), conditioned on
    the constraints (renormalised over the names that meet them); 20,000 names drawn with those
    constraints against it, by chi-square. USED is a file of names already used: ab, ba, aab."""
    from itertools import product

    from namegen.data import parse_names
    from namegen.state import TrainConfig, new_state

    model = new_state(TrainConfig(hidden_size=5), parse_names("abc\ncab\nbca\nca", "abc.txt")).model
    model.params[:] = np.random.default_rng(3).standard_normal(model.params.size)  # a model with opinions
    params, V = model.param_views, model.vocab.size
    used = tmp_path / "used.txt"
    used.write_text("AB\n ba\naab\n")

    def probability(ids):
        h, logits = step(params, np.zeros((1, params["Whh"].shape[0])), np.array([0]))
        p = 1.0
        for i in [*ids, 0]:
            p *= softmax(logits)[0, i]
            h, logits = step(params, h, np.array([i]))
        return p

    wanted = {}
    for length in (1, 2, 3):
        for ids in product(range(1, V), repeat=length):
            name = model.vocab.decode(ids)
            if keep(name):
                wanted[name] = probability(ids)
    total = sum(wanted.values())
    options = {k: str(used) if v == "USED" else v for k, v in options.items()}
    config = SampleConfig(count=20_000, max_length=3, seed=9, max_tries=10_000_000, **options)
    counts = Counter(sample(model, config))
    assert set(counts) <= set(wanted)
    expected = np.array([20_000 * wanted[name] / total for name in wanted])
    observed = np.array([counts[name] for name in wanted])
    shown = expected >= 5
    statistic = (((observed - expected) ** 2)[shown] / expected[shown]).sum()
    assert statistic < chi_square_bound(shown.sum() - 1), (statistic, shown.sum())


@given(st.lists(st.text("abc", min_size=1, max_size=3), min_size=1, max_size=4), st.text("abcd", max_size=12))
def test_the_banned_automaton_stops_at_the_first_letter_that_completes_a_banned_text(texts, name):
    from namegen.sampling import Banned
    from namegen.vocab import Vocab

    vocab = Vocab(tuple("abcd"))
    banned = Banned.of(vocab, texts)
    state, stopped_at = 0, None
    for i, c in enumerate(vocab.encode(name, "a name").tolist()):
        state = banned.next[state, c]
        if banned.dead[state]:
            stopped_at = i
            break
    ends = [i for i in range(len(name)) if any(name[: i + 1].endswith(text) for text in texts)]
    assert stopped_at == (ends[0] if ends else None)


class CountingGenerator:
    """A random generator that counts the uniforms drawn: one per growing name per step."""

    def __init__(self, seed):
        self.rng, self.steps = np.random.default_rng(seed), 0

    def random(self, n):
        self.steps += n
        return self.rng.random(n)


def test_a_draw_that_holds_an_excluded_text_is_stopped_at_once_and_never_drawn_further():
    """Count the steps: with --exclude, a name is drawn only up to the letter that completes an
    excluded text, so the steps are exactly each draw's letters (plus the end for names that ended),
    and fewer than the same draws without stopping."""
    from namegen.data import parse_names
    from namegen.model import Rejection
    from namegen.sampling import Banned, ended_rows
    from namegen.state import TrainConfig, new_state

    model = new_state(TrainConfig(hidden_size=5), parse_names("abc\ncab\nbca\nca", "abc.txt")).model
    model.params[:] = np.random.default_rng(3).standard_normal(model.params.size)
    texts = ["b", "ca"]
    steps = {}
    for banned in (None, Banned.of(model.vocab, texts)):
        rng = CountingGenerator(5)
        drawn = list(ended_rows(model.param_views, 2000, rng, max_length=30, banned=banned))
        counted = 0
        for rows, letters, why in drawn:
            names = model.vocab.decode_rows(letters)
            counted += sum(len(name) + (why is None) for name in names)
            if banned and why is Rejection.EXCLUDED:
                assert all(any(name.endswith(t) for t in texts) for name in names)
                assert not any(t in name[:-1] for name in names for t in texts)  # stopped at the first
            elif banned:
                assert not any(t in name for name in names for t in texts)
        too_long = 2000 - sum(len(rows) for rows, _, _ in drawn)
        assert rng.steps == counted + too_long * 31
        steps[banned is None] = rng.steps
    assert steps[False] < 0.7 * steps[True]


def test_names_of_several_words_are_shown_with_a_capital_on_each_word_as_the_data_has():
    """Pokémon-like names, lower-cased by "auto" since capitals per word bring them back: no "Mr. mime"."""
    from namegen.data import parse_names
    from namegen.state import TrainConfig, new_state
    from namegen.training import train

    names = ["Mr. Mime", "Mime Jr.", "Tapu Koko", "Tapu Lele", "Tapu Bulu", "Tapu Fini", "Pikachu", "Type: Null",
             "Ho-Oh", "Porygon-Z", "Raichu", "Mew", "Mewtwo", "Great Tusk", "Iron Hands", "Iron Moth"] * 6
    state = new_state(TrainConfig(hidden_size=16, epochs=2, batch_size=8, optimizer="adam", learning_rate=0.01),
                      parse_names("\n".join(names), "pokemon.txt"))
    train(state, engine="numpy")
    assert not state.model.keep_case and state.model.capitals == (" ", "-", "start")
    shown = sample(state.model, SampleConfig(count=300, seed=2, min_length=3))
    words = [word for name in shown for part in name.split(" ") for word in part.split("-") if word[:1].isalpha()]
    assert len(words) > 300 and all(word[0].isupper() for word in words)
    assert sample(state.model, SampleConfig(count=5, seed=2, prefix="tapu k")) == \
        [name for name in sample(state.model, SampleConfig(count=5, seed=2, prefix="Tapu K"))]
    assert all(name.startswith("Tapu K") for name in sample(state.model, SampleConfig(count=5, seed=2, prefix="tapu k")))


def test_a_lower_case_prefix_asks_for_the_capital_a_model_that_keeps_case_begins_names_with(bracketed_model):
    assert bracketed_model.keep_case
    names = sample(bracketed_model, SampleConfig(count=20, seed=3, prefix="fro"))
    assert all(name.startswith("Fro") for name in names)
    assert bracketed_model.clean_prefix("tom") == "Tom" and bracketed_model.clean_prefix("xy") == "xy"


def test_large_requests_are_drawn_in_float32_and_give_the_names_float64_gives_until_a_rounding_differs(trained_state):
    from namegen.sampling import FLOAT32_FROM, number_format

    model = trained_state.model
    large = -(-FLOAT32_FROM // (model.hidden_size * model.longest_name))
    assert number_format(model, SampleConfig(count=large)) == np.float32
    assert number_format(model, SampleConfig(count=large - 1)) == np.float64
    assert number_format(model, SampleConfig(count=large, dtype="float64")) == np.float64
    assert number_format(model, SampleConfig(count=1), drawn=large) == np.float32  # a rare shape draws many
    names = {dtype: draw(trained_state, seed=4, count=3000, dtype=dtype) for dtype in ("float32", "float64")}
    same = next((i for i, (a, b) in enumerate(zip(names["float32"], names["float64"])) if a != b), 3000)
    assert same >= 1000  # a letter drawn otherwise is rare: its uniform must fall within rounding of a boundary


@pytest.mark.parametrize("options, message", [({"similar_to": "x" * 1001}, "at most 1,000"),
                                              ({"most_likely": 10_001}, "between 0 and 10000")])
def test_requests_whose_cost_would_have_no_bound_are_refused(options, message):
    from namegen.errors import OptionError

    with pytest.raises(OptionError, match=message):
        SampleConfig(**options)


def test_an_exclusion_longer_than_any_name_costs_nothing_and_changes_nothing(trained_state):
    from namegen.sampling import Shape

    model = trained_state.model
    shape = Shape.of(model, SampleConfig(exclude=("a" * 5000,), max_length=30), 30)
    assert shape.banned is None  # no automaton of 5,000 states for a text no name can hold
    assert draw(trained_state, seed=3, count=20, exclude=("a" * 5000,)) == draw(trained_state, seed=3, count=20)
