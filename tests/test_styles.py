"""Several name lists in one model: a style each, sampled by name or blended, scored per style."""

import json

import numpy as np
import pytest

from namegen.checkpoint import load_checkpoint, load_model, save_checkpoint
from namegen.data import NameList, bundled_path, read_name_lists
from namegen.errors import CheckpointError, DataError, OptionError
from namegen.evaluation import name_nll, score
from namegen.sampling import SampleConfig, sample, style_weights
from namegen.state import TrainConfig, new_state
from namegen.training import train

from conftest import assert_resumes_exactly, with_meta

ELVES = ["Aerendil", "Galadriel", "Elrond", "Legolas", "Arwen", "Celeborn", "Thranduil", "Glorfindel", "Luthien",
         "Finrod", "Earwen", "Idril", "Turgon", "Feanor", "Celebrian", "Haldir", "Elwing", "Amroth", "Nimrodel"]
DWARVES = ["Thorin", "Balin", "Dwalin", "Gimli", "Gloin", "Oin", "Bombur", "Bofur", "Bifur", "Dori", "Nori",
           "Ori", "Durin", "Dain", "Thrain", "Thror", "Fundin", "Nain", "Borin", "Frar"]


@pytest.fixture
def lists(tmp_path):
    (tmp_path / "elves.txt").write_text("\n".join(ELVES) + "\n")
    (tmp_path / "dwarves.txt").write_text("\n".join(DWARVES))
    return [tmp_path / "elves.txt", tmp_path / "dwarves.txt"]


def test_each_list_is_a_style_named_after_its_file(lists):
    data = read_name_lists(lists)
    assert data.styles == ("elves", "dwarves")
    assert data.names[: len(ELVES)] == [n.lower() for n in ELVES] and len(data.names) == len(ELVES) + len(DWARVES)
    assert data.style_of.tolist() == [0] * len(ELVES) + [1] * len(DWARVES)
    assert data.capitalize and data.source.endswith("elves.txt + " + str(lists[1]))


def test_two_lists_of_one_name_and_a_missing_list_are_clear_errors(lists, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "elves.txt").write_text("Arwen\n")
    with pytest.raises(DataError, match="would all be the style 'elves'"):
        read_name_lists([lists[0], tmp_path / "other" / "elves.txt"])
    with pytest.raises(DataError, match="orcs.txt: no such file"):
        read_name_lists([lists[0], tmp_path / "orcs.txt"])


def test_every_style_has_validation_names_and_the_model_keeps_b_the_product(lists):
    state = new_state(TrainConfig(hidden_size=8, style_size=3, epochs=2, val_fraction=0.2), read_name_lists(lists))
    assert set(state.model.style_of[state.val_idx]) == {0, 1}
    train(state)
    p = state.layout.views(state.weights)
    assert p["S"].shape == (2, 3) and p["Wsh"].shape == (3, 8) and "S" not in state.model.param_views
    np.testing.assert_allclose(p["B"], p["S"] @ p["Wsh"], rtol=0, atol=1e-12)


def test_a_run_with_styles_saves_loads_and_resumes_exactly(lists, tmp_path):
    config = TrainConfig(hidden_size=8, style_size=3, epochs=4, batch_size=4, optimizer="adam", learning_rate=0.02,
                         lr_schedule="constant")  # the same steps whether planned for 2 epochs or 4
    first, _ = assert_resumes_exactly(config, read_name_lists(lists), tmp_path, first_epochs=2,
                                      data_for_resume=read_name_lists(lists))
    loaded = load_checkpoint(tmp_path / "r.latest.npz")  # what the first call saved
    assert loaded.model.styles == ("elves", "dwarves") and loaded.model.style_size == 3
    np.testing.assert_array_equal(loaded.model.style_of, first.model.style_of)
    np.testing.assert_array_equal(loaded.weights, first.weights)


def test_a_model_of_one_list_has_no_styles_and_old_files_load_unchanged(tmp_path, damaged):
    shipped = load_model(bundled_path("checkpoints", "dinos.npz"))
    assert shipped.styles == () and shipped.params.size == 5277
    version_1 = load_model(damaged(bundled_path("checkpoints", "dinos.npz"), lambda a: with_meta(a, version=1)))
    np.testing.assert_array_equal(version_1.params, shipped.params)
    names = sample(shipped, SampleConfig(count=5, seed=3))
    assert names == sample(load_model(bundled_path("checkpoints", "dinos.npz")), SampleConfig(count=5, seed=3))
    with pytest.raises(OptionError, match="needs a model trained on several name lists"):
        sample(shipped, SampleConfig(count=1, style="dinos"))


@pytest.mark.parametrize("change, message", [
    (lambda m: {"styles": {"names": ["elves", "elves"], "size": 3}}, "distinct style names"),
    (lambda m: {"styles": {"names": ["elves", "dwarves"], "size": 0}}, "styles.size"),
    (lambda m: {"styles": {"names": ["elves", "dwarves", "orcs"], "size": 3}}, "a style has no names"),
])
def test_damaged_styles_are_refused(lists, tmp_path, damaged, change, message):
    state = new_state(TrainConfig(hidden_size=8, style_size=3, epochs=1), read_name_lists(lists))
    save_checkpoint(tmp_path / "s.npz", state)
    meta = json.loads(np.load(tmp_path / "s.npz")["meta"].tobytes())
    path = damaged(tmp_path / "s.npz", lambda a: with_meta(a, **change(meta)))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_style_weights_read_a_name_or_a_blend(lists):
    model = new_state(TrainConfig(hidden_size=8, style_size=3), read_name_lists(lists)).model
    assert style_weights(model, "") is None
    np.testing.assert_allclose(style_weights(model, "dwarves"), [0, 1])
    np.testing.assert_allclose(style_weights(model, "elves=3,dwarves=1"), [0.75, 0.25])
    for bad, message in (("orcs", "not one of this model's styles: elves, dwarves"), ("elves=-1", "at least 0"),
                         ("elves=x", "at least 0"), ("elves=", "at least 0"), ("elves=0", "must not all be 0"),
                         ("elves=inf", "not a finite number")):
        with pytest.raises(OptionError, match=message):
            style_weights(model, bad)


@pytest.fixture(scope="module")
def two_styles():
    """Dinosaur names and first names, 300 of each, trained briefly: clearly different lists."""
    dinos = read_name_lists([bundled_path("data", "dinos.txt")]).names[::5][:300]
    first = read_name_lists([bundled_path("data", "firstnames.txt")]).names[::7][:300]
    data = NameList(dinos + first, ("start",), "dinos + firstnames", styles=("dinos", "firstnames"),
                    style_of=np.repeat([0, 1], [len(dinos), len(first)]))
    state = new_state(TrainConfig(hidden_size=32, style_size=4, epochs=8, batch_size=8, optimizer="adam",
                                  learning_rate=0.01, val_fraction=0.2), data)
    train(state)
    return state


def test_held_out_names_fit_their_own_style_best(two_styles):
    state = two_styles
    model, val = state.model, state.val_idx
    nll = np.array([name_nll(model, model.encoded, val, styles=k) for k in range(2)])
    own = model.style_of[val]
    assert (np.argmin(nll, axis=0) == own).mean() >= 0.85
    for k in range(2):  # each style's names cost less under their own style than under the other
        mine = own == k
        assert nll[k, mine].sum() < nll[1 - k, mine].sum()
    scored = score(model, ["Tyrannosaurus", "Jennifer"])
    assert [s.style for s in scored] == ["dinos", "firstnames"]
    assert scored[0].loss.nll == min(e.nll for e in scored[0].by_style.values())


def test_each_sampled_name_says_the_style_it_was_drawn_in_and_its_nats_there(two_styles):
    from collections import Counter

    from namegen.evaluation import drawn_nll
    from namegen.sampling import SampleConfig, sampled

    model = two_styles.model
    found = sampled(model, SampleConfig(count=400, seed=4))
    counts = Counter(d.style for d in found)
    assert set(counts) == {"dinos", "firstnames"} and 150 < counts["dinos"] < 250  # as often as its names
    nll = drawn_nll(model, found)
    for d, nats in zip(found[:20], nll):
        assert nats == pytest.approx(score(model, [d.name])[0].by_style[d.style].nll, rel=1e-12)
    # each drawn in its style fits that style better than the other, on the whole
    fits = [score(model, [d.name])[0].style == d.style for d in found[:100]]
    assert sum(fits) >= 75
    blend = sampled(model, SampleConfig(count=3, seed=4, style="dinos=1,firstnames=1"))
    assert {d.style for d in blend} == {"dinos=1,firstnames=1"}
    assert drawn_nll(model, blend, "dinos=1,firstnames=1").shape == (3,)


def test_a_blends_samples_lie_between_the_pure_styles(two_styles):
    model = two_styles.model
    rng = np.random.default_rng(0)

    def mean_loss(names, k):
        encoded = model.vocab.encode_names([model.clean(n) for n in names])
        return name_nll(model, encoded, styles=k).sum() / (encoded.lengths.sum() + len(names))

    drawn = {label: sample(model, SampleConfig(count=300, style=label), rng)
             for label in ("dinos", "dinos=0.5,firstnames=0.5", "firstnames")}
    for k in range(2):
        low, high = sorted(mean_loss(drawn[label], k) for label in ("dinos", "firstnames"))
        assert low < mean_loss(drawn["dinos=0.5,firstnames=0.5"], k) < high


def test_the_cli_trains_samples_and_scores_styles(cli, lists, tmp_path):
    ran = cli("train", "--data", lists[0], "--data", lists[1], "--epochs", 2, "--hidden-size", 8,
              "--out-dir", tmp_path / "ck", "--preview", 0)
    assert ran.code == 0, ran.stderr
    checkpoint = tmp_path / "ck" / "elves+dwarves.best.npz"
    assert cli("sample", "-c", checkpoint, "-n", 3, "--style", "dwarves", "--seed", 1).code == 0
    cli("sample", "-c", checkpoint, "--style", "orcs").fails_in_one_line(2, "elves, dwarves")
    scored = cli("score", "-c", checkpoint, "Gimli", "--json").json()["scores"][0]
    assert set(scored["nats_per_char_by_style"]) == {"elves", "dwarves"} and scored["style"] in ("elves", "dwarves")
    evaluated = cli("evaluate", "-c", checkpoint, "--json").json()["results"]
    assert [r["set"] for r in evaluated] == ["train", "validation", "validation: elves", "validation: dwarves"]
    checked = cli("gradcheck", "-c", checkpoint, "--json").json()
    assert checked["passed"] and "B" in checked["max_relative_error"]
    for args in (["diagnose"], ["diagnose", "--surface"], ["info"]):
        ran = cli(*args, *([checkpoint] if args == ["info"] else ["-c", checkpoint]))
        assert ran.code == 0, (args, ran.stderr)
    assert "styles      2 of size 8: elves (19 names), dwarves (20 names)" in cli("info", checkpoint).stdout


# ------------------------------------------------------------------------------- hostile blends

@pytest.mark.parametrize("text, expected", [
    ("elves=1e308,elves=1e308", [1.0, 0.0]), ("elves=1e308,dwarves=1e308", [0.5, 0.5]),
    ("elves=1e-320,dwarves=3e-320", [0.25, 0.75]), (" elves = 2 , dwarves = 6 ", [0.25, 0.75]),
])
def test_blend_weights_are_normalised_without_overflow_or_underflow(lists, text, expected):
    model = new_state(TrainConfig(hidden_size=8, style_size=3), read_name_lists(lists)).model
    np.testing.assert_allclose(style_weights(model, text), expected)
    assert len(sample(model, SampleConfig(count=3, style=text, seed=0))) == 3


def test_a_weight_beyond_a_float_is_called_what_it_is(lists):
    model = new_state(TrainConfig(hidden_size=8, style_size=3), read_name_lists(lists)).model
    with pytest.raises(OptionError, match="'1e400' of elves is not a finite number"):
        style_weights(model, "elves=1e400")


def test_a_long_style_request_is_not_echoed_in_full(cli, lists, tmp_path):
    cli("train", "--data", lists[0], "--data", lists[1], "--epochs", 1, "--hidden-size", 4, "--out-dir", tmp_path,
        "--preview", 0)
    ran = cli("sample", "-c", tmp_path / "elves+dwarves.latest.npz", "--style", "x" * 130_000)
    ran.fails_in_one_line(2, "is not one of this model's styles")
    assert len(ran.stderr) < 400
    ran = cli("tune", "--budget", "9" * 130_000)
    ran.fails_in_one_line(2, "--budget")
    assert len(ran.stderr) < 400


@pytest.mark.parametrize("file_name", ["x=1.txt", "p,q.txt", " sp.txt", "tab\t.txt"])
def test_a_list_whose_style_could_not_be_named_is_refused_before_training(lists, tmp_path, file_name):
    odd = tmp_path / file_name
    odd.write_text("\n".join(DWARVES))
    with pytest.raises(DataError, match="rename the file"):
        read_name_lists([lists[0], odd])


def test_many_lists_are_refused_at_once_however_many(tmp_path):
    import time

    paths = [tmp_path / f"list{k}.txt" for k in range(40_000)]
    started = time.perf_counter()
    with pytest.raises(DataError, match="at most 64"):
        read_name_lists(paths)
    assert time.perf_counter() - started < 0.5  # the duplicate check was quadratic: 12-28 s


def test_a_name_far_from_every_style_is_said_to_fit_none(two_styles):
    model, val = two_styles.model, two_styles.val_idx
    gibberish, dino, first = score(model, ["Xqxzqjxqzvq", "Tyrannosaurus", "Jennifer"], val)
    assert not gibberish.fits and gibberish.style in ("dinos", "firstnames")
    assert dino.fits and dino.style == "dinos" and first.fits and first.style == "firstnames"
    held_out = [model.names[i] for i in val]
    assert np.mean([s.fits for s in score(model, held_out, val)]) >= 0.98  # what held-out names do, they fit
