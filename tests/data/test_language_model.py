"""Language-model batches: TokenWindows and split_tokens (graphnet/data/language_model.py)."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.data import DataError, TokenWindows, split_tokens


def test_windows_are_shifted_pairs_from_the_array():
    tokens = np.arange(100, dtype=np.int64)
    data = TokenWindows(tokens, block_size=8, batch_size=5, steps=3, seed=0)
    batches = list(data)
    assert len(data) == 3 and len(batches) == 3
    for x, y in batches:
        assert x.shape == y.shape == (5, 8)
        np.testing.assert_array_equal(y, x + 1)                  # the next token
        np.testing.assert_array_equal(x, x[:, :1] + np.arange(8))  # contiguous windows
        assert x.min() >= 0 and y.max() <= 99


def test_windows_are_seeded_and_new_every_epoch():
    tokens = np.arange(1000)
    first = [x for x, _ in TokenWindows(tokens, 4, 3, 2, seed=1)]
    again = [x for x, _ in TokenWindows(tokens, 4, 3, 2, seed=1)]
    np.testing.assert_array_equal(first, again)
    data = TokenWindows(tokens, 4, 3, 2, seed=1)
    epoch1, epoch2 = [x for x, _ in data], [x for x, _ in data]
    assert not np.array_equal(epoch1, epoch2)
    gn.random.seed(5)
    a = [x for x, _ in TokenWindows(tokens, 4, 3, 2)]
    gn.random.seed(5)
    np.testing.assert_array_equal(a, [x for x, _ in TokenWindows(tokens, 4, 3, 2)])


def test_split_by_position():
    train, val = split_tokens(np.arange(10), validation=0.2)
    assert train.tolist() == list(range(8)) and val.tolist() == [8, 9]
    with pytest.raises(DataError, match="validation must be a fraction"):
        split_tokens(np.arange(10), validation=1.0)


def test_bad_token_arrays():
    with pytest.raises(DataError, match="1-D integer array"):
        TokenWindows(np.zeros((2, 3), np.int64), 2, 1, 1)
    with pytest.raises(DataError, match="5 tokens cannot make a window of block_size"):
        TokenWindows(np.arange(5), 8, 1, 1)
    with pytest.raises(DataError, match="batch_size must be at least 1"):
        TokenWindows(np.arange(50), 8, 0, 1)
