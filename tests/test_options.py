"""Options: one Spec per option holds its default, bounds and help, and one check refuses any
impossible value, whoever set it, with an OptionError naming the option."""

from dataclasses import fields

import pytest

from namegen.diagnostics import FlowConfig
from namegen.errors import OptionError, OptionName
from namegen.gradcheck import GradcheckConfig
from namegen.options import SPEC, spec_of
from namegen.sampling import SampleConfig
from namegen.state import TrainConfig

CONFIGS = [TrainConfig, SampleConfig, GradcheckConfig, FlowConfig]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_option_has_help_and_the_defaults_are_allowed(config):
    config()  # a default outside its own bounds would raise here
    for f in fields(config):
        assert f.metadata[SPEC].help, f.name


@pytest.mark.parametrize("config, values, named", [
    (TrainConfig, {"hidden_size": 0}, "hidden_size must be between 1 and 4096, not 0"),
    (TrainConfig, {"hidden_size": 4097}, "hidden_size must be between 1 and 4096"),
    (TrainConfig, {"learning_rate": 0.0}, "learning_rate must be above 0"),
    (TrainConfig, {"learning_rate": float("nan")}, "learning_rate must be a finite number"),
    (TrainConfig, {"clip": float("inf")}, "clip must be a finite number"),
    (TrainConfig, {"val_fraction": 1.0}, "val_fraction must be at least 0 and below 1, not 1.0"),
    (TrainConfig, {"optimizer": "lbfgs"}, "optimizer must be one of sgd, adam, adagrad, rprop, not 'lbfgs'"),
    (TrainConfig, {"max_steps": 0}, "max_steps must be at least 1"),
    (SampleConfig, {"top_k": -1}, "top_k must be at least 0"),
    (GradcheckConfig, {"truncate": 0}, "truncate must be at least 1"),
    (FlowConfig, {"max_distance": 0}, "max_distance must be at least 1"),
])
def test_an_impossible_value_is_refused_naming_the_option(config, values, named):
    with pytest.raises(OptionError, match=named):
        config(**values)


@pytest.mark.parametrize("values", [
    {"hidden_size": 50.0}, {"hidden_size": True}, {"seed": "abc"}, {"seed": 1.5}, {"batch_size": 1.5},
    {"bucket_by_length": 1}, {"learning_rate": "0.01"}, {"learning_rate": 10**400}, {"epochs": None},
])
def test_a_value_of_the_wrong_type_is_refused(values):
    """A checkpoint may hold anything: a float where a count belongs must not load and fail later."""
    with pytest.raises(OptionError, match="must be (a whole number|a finite number|true or false|text)"):
        TrainConfig(**values)


def test_an_option_error_is_a_value_error_and_names_the_option_as_each_reader_expects():
    with pytest.raises(ValueError) as caught:
        TrainConfig(batch_size=-1)
    error = caught.value
    assert str(error) == "batch_size must be at least 0, not -1"  # the Python name, for the library
    assert error.render(lambda name: "--" + name.replace("_", "-")) == "--batch-size must be at least 0, not -1"
    assert isinstance(error.parts[0], OptionName)


@pytest.mark.parametrize("values, named", [
    ({"min_length": 5, "max_length": 3}, "min_length 5 is greater than max_length 3"),
    ({"prefix": "abcdef", "max_length": 3}, "prefix 'abcdef' is longer than max_length 3"),
])
def test_sample_options_that_contradict_each_other_are_refused(values, named):
    with pytest.raises(OptionError, match=named):
        SampleConfig(**values)


def test_bounds_are_described_in_words():
    assert spec_of(TrainConfig, "hidden_size")[0].describe() == "between 1 and 4096"
    assert spec_of(TrainConfig, "val_fraction")[0].describe() == "at least 0 and below 1"
    assert spec_of(TrainConfig, "learning_rate")[0].describe() == "above 0"
    assert spec_of(TrainConfig, "bucket_by_length")[0].describe() == ""
    assert spec_of(TrainConfig, "case")[0].describe() == "one of auto, lower, keep"
