import numpy as np
import pytest

from namegen.data import default_data_path, parse_names, read_names
from namegen.model import unflatten, init_params
from namegen.train import TrainConfig, new_state, train


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def random_params(rng):
    """Makes small models with weights large enough that every gradient path matters."""

    def make(vocab_size=7, hidden_size=5, scale=0.5):
        flat = init_params(vocab_size, hidden_size, rng)
        flat += rng.standard_normal(flat.size) * scale
        return unflatten(flat, vocab_size, hidden_size)

    return make


@pytest.fixture(scope="session")
def dinos():
    return read_names(default_data_path())


@pytest.fixture(scope="session")
def small_names():
    text = "\n".join(["Ab", "Abc", "Bca", "Cab", "Acab", "Bac", "Cabba", "Ba", "Ccab", "Abba", "Bacca", "Ca"])
    return parse_names(text, "small.txt")


@pytest.fixture(scope="session")
def trained_state(dinos):
    """A small model trained briefly on dinos, shared by the sampling and CLI tests."""
    state = new_state(TrainConfig(hidden_size=24, epochs=2, seed=3), dinos)
    train(state)
    return state


@pytest.fixture(scope="session")
def trained_checkpoint(trained_state, tmp_path_factory):
    from namegen.checkpoint import save_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "dinos.npz"
    save_checkpoint(path, trained_state)
    return path
