"""Inputs users bring: unusual characters, very long names, a million names, and properties that
hold over any name list."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from namegen.data import clean_name, parse_names, read_names
from namegen.errors import DataError, SamplingError
from namegen.evaluation import score
from namegen.sampling import SampleConfig, sample
from namegen.state import TrainConfig, new_state
from namegen.training import train
from namegen.vocab import Vocab


# ------------------------------------------------------------------------------------ unusual names

def test_names_with_spaces_hyphens_apostrophes_accents_and_emoji_train_sample_and_score():
    names = ["Jean-Luc", "O'Brien", "Mary Ann", "Zoë", "Ἀχιλλεύς", "Dino🦖saur", "Łukasz", "José María"] * 3
    state = new_state(TrainConfig(hidden_size=8, epochs=1, val_fraction=0), parse_names("\n".join(names), "t"))
    train(state)
    vocab = set(state.model.vocab.chars)
    assert {" ", "-", "'", "ë", "🦖", "ł"} <= vocab
    # capitals at each word's start and after a hyphen or apostrophe bring every name back: "auto" lower-cases
    assert not state.model.keep_case and state.model.capitals == (" ", "'", "-", "start")
    for name in sample(state.model, SampleConfig(count=30, seed=0)):
        assert set(name.lower()) <= vocab
    scores = score(state.model, ["Jean-Luc", "Dino🦖saur"])
    assert scores[0].known and scores[1].known


@pytest.mark.slow
def test_a_100000_character_line_trains_and_samples_names_within_the_default_cap():
    long_name = ("abcdefghij" * 10_000).capitalize()
    state = new_state(TrainConfig(hidden_size=4, epochs=1, val_fraction=0),
                      parse_names("\n".join(["Rex", "Troodon", long_name, "Zuul"]), "t"))
    assert train(state).reason == "finished"
    names = sample(state.model, SampleConfig(count=5, seed=0))
    assert len(names) == 5 and all(1 <= len(n) <= 1000 for n in names)


# ------------------------------------------------------------------------------------------ scale

@pytest.fixture(scope="module")
def million(tmp_path_factory):
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 13, size=1_000_000)
    ends = np.cumsum(lengths + 1) - 1  # where each name's newline goes
    text = (rng.integers(0, 26, size=ends[-1] + 1) + ord("a")).astype(np.uint8)  # as bytes, not a million strings
    text[ends] = ord("\n")
    path = tmp_path_factory.mktemp("scale") / "million.txt"
    path.write_bytes(text[:-1].tobytes())
    return path


@pytest.mark.slow
def test_a_million_names_load_in_memory_proportional_to_the_data(million):
    """The peak resident memory a fresh process gains reading and encoding them (rather than
    tracemalloc's count, which makes every allocation of a million names several times slower)."""
    code = f"""
import resource, sys
from namegen.data import read_names
from namegen.vocab import Vocab
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
data = read_names({str(million)!r})
encoded = Vocab.from_names(data.names).encode_names(data.names)
assert len(data.names) == len(encoded) == 1_000_000
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 20 * million.stat().st_size  # 65 MB for 8.5 MB of names: strings, list, ids


@pytest.mark.slow
def test_a_million_names_train_with_max_steps_and_a_progress_bar(million, tmp_path):
    """Run in a pseudo-terminal, so tqdm draws its bar as it would for a person."""
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    proc = subprocess.Popen([sys.executable, "-m", "namegen", "train", "--data", str(million), "--max-steps", "300",
                             "--hidden-size", "16", "--out-dir", str(tmp_path)],
                            stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(parent, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=120)
    os.close(parent)
    text = output.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    assert "name/s" in text and "epoch 1/25" in text  # tqdm's bar
    assert "stopped at --max-steps: 0 epochs, 300 updates" in text


# ------------------------------------------------------------------------------------- properties

# Any text but controls and bidirectional overrides, which are refused (tests/test_data.py)
NAME_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u202a\u202b\u202c\u202d"
                                  "\u202e\u2066\u2067\u2068\u2069"), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(NAME_TEXT, min_size=1, max_size=20), st.booleans())
def test_any_unicode_name_list_round_trips_through_cleaning_and_encoding(names, keep_case):
    expected = [name for name in (clean_name(n, keep_case) for n in names) if name]
    text, case = "\n".join(names), "keep" if keep_case else "lower"
    if not expected:
        with pytest.raises(DataError):
            parse_names(text, "t", case)
        return
    data = parse_names(text, "t", case)
    assert data.names == expected
    vocab = Vocab.from_names(data.names)
    encoded = vocab.encode_names(data.names)
    for i, name in enumerate(data.names):
        assert vocab.decode(encoded.ids(i)) == name
        assert vocab.decode(vocab.encode(name)) == name
        inputs, targets = encoded.pair(i)
        assert inputs.tolist() == vocab.inputs_and_targets(name)[0].tolist()
        assert targets.tolist() == vocab.inputs_and_targets(name)[1].tolist()
        assert unicodedata.is_normalized("NFC", name) or not keep_case


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names=st.lists(st.text(alphabet="abcxyzé -", min_size=1, max_size=8).filter(str.strip), min_size=2, max_size=10),
       temperature=st.floats(0.05, 5.0), top_k=st.integers(0, 12), min_length=st.integers(1, 4),
       extra=st.integers(0, 10), prefix_len=st.integers(0, 2), seed=st.integers(0, 2**32 - 1))
def test_sampled_names_use_only_the_vocabulary_and_respect_every_limit(names, temperature, top_k, min_length,
                                                                        extra, prefix_len, seed):
    data = parse_names("\n".join(names), "t")
    state = new_state(TrainConfig(hidden_size=4, val_fraction=0, seed=seed % 1000), data)
    prefix = data.names[0].strip()[:prefix_len].strip()
    max_length = max(min_length, len(prefix)) + extra
    config = SampleConfig(count=5, temperature=temperature, top_k=top_k, prefix=prefix, min_length=min_length,
                          max_length=max_length, max_tries=2000)
    try:
        found = sample(state.model, config, np.random.default_rng(seed))
    except SamplingError as e:  # the documented 'could not find enough' outcome; anything else fails
        found = e.found
    for name in found:
        lowered = name[:1].lower() + name[1:] if state.model.capitalize else name
        assert not state.model.vocab.unknown(lowered)
        assert min_length <= len(name) <= max_length
        assert lowered.startswith(prefix)
