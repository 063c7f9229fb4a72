"""Reading and cleaning names files, the vocabulary, and the train/validation split."""

import hashlib

import numpy as np
import pytest

from namegen.data import default_data_path, parse_names, read_names, split_indices
from namegen.errors import DataError, OptionError
from namegen.vocab import Vocab


def test_bundled_dinos_is_the_canonical_file_byte_for_byte():
    raw = default_data_path().read_bytes()
    assert hashlib.sha256(raw).hexdigest() == "ad6465621cf56c08f71d4fbb40cf7eab763f9df42c54cc460d6c4d86e9c927fb"


def test_dinos_loads_lowercased_with_duplicates_kept(dinos):
    assert len(dinos.names) == 1536
    assert len(set(dinos.names)) == 1524  # data/SOURCES.md: 10 names twice, Skeleton three times
    assert all(name == name.lower() for name in dinos.names)
    assert dinos.capitalize
    assert Vocab.from_names(dinos.names).chars == tuple("abcdefghijklmnopqrstuvwxyz")


def test_cleaning_strips_normalises_and_lowercases():
    text = "  Ana \r\n\n\t\nBe\u0301la\r\nZOË\n"  # CRLF, blank lines, a combining accent
    names = parse_names(text, "t").names
    assert names == ["ana", "béla", "zoë"]
    assert names[1] == "b\u00e9la"  # NFC: one code point, not e + combining accent


def test_keep_case_keeps_case_and_does_not_capitalise():
    data = parse_names("McDonald\nVan Dyke", "t", keep_case=True)
    assert data.names == ["McDonald", "Van Dyke"] and not data.capitalize


def test_lowercase_data_is_not_capitalised():
    assert not parse_names("alpha\nbeta\nGamma", "t").capitalize


def test_a_utf8_bom_is_not_part_of_the_first_name(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffAlpha\nBeta\n".encode("utf-8"))
    assert read_names(path).names == ["alpha", "beta"]


def test_vocabulary_comes_from_the_data_not_a_fixed_alphabet():
    vocab = Vocab.from_names(parse_names("Åsa\nJosé\nO'Neil-Ng", "t").names)
    assert set("åé'- ") - {" "} <= set(vocab.chars)
    assert vocab.size == len(vocab.chars) + 1
    assert vocab.decode(vocab.encode("josé")) == "josé"


@pytest.mark.parametrize("content, message", [
    (b"", "no names found"),
    (b"\n  \n\t\n", "no names found"),
    (b"Alpha\nBeta\nGam\xe9ma\n", "line 3 is not valid UTF-8"),
])
def test_bad_files_raise_a_clear_data_error(tmp_path, content, message):
    path = tmp_path / "names.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_names(path)


def test_missing_file_and_directory_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_names(tmp_path / "nope.txt")
    with pytest.raises(DataError, match="is a directory"):
        read_names(tmp_path)


def test_split_is_seeded_disjoint_and_complete():
    train, val = split_indices(100, 0.1, np.random.default_rng(7))
    again = split_indices(100, 0.1, np.random.default_rng(7))
    assert len(val) == 10 and not set(train) & set(val) and len(train) + len(val) == 100
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert len(split_indices(100, 0.0, np.random.default_rng(7))[1]) == 0


def test_a_split_that_leaves_no_training_names_is_refused():
    with pytest.raises(OptionError, match="leaves no training names"):
        split_indices(1, 0.5, np.random.default_rng(0))
