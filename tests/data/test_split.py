"""train_test_split: sizes, alignment, determinism and errors."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.data import DataError, train_test_split


def test_split_sizes_and_alignment():
    x, y = np.arange(20).reshape(10, 2), np.arange(10)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, seed=0)
    assert (len(x_train), len(x_test)) == (7, 3)  # 2.5 test rows round up
    np.testing.assert_array_equal(x_train[:, 0] // 2, y_train)
    np.testing.assert_array_equal(x_test[:, 0] // 2, y_test)
    assert sorted(np.concatenate([y_train, y_test])) == list(range(10))


def test_split_is_deterministic_and_unshuffled_takes_the_tail():
    y = np.arange(10)
    assert [a.tolist() for a in train_test_split(y, test_size=3, seed=4)] == \
        [a.tolist() for a in train_test_split(y, test_size=3, seed=4)]
    gn.random.seed(1)
    a = train_test_split(y)
    gn.random.seed(1)
    assert a[1].tolist() == train_test_split(y)[1].tolist()
    train, test = train_test_split(y, test_size=2, shuffle=False)
    assert test.tolist() == [8, 9] and train.tolist() == list(range(8))


@pytest.mark.parametrize("args, kwargs, message", [
    ((), {}, "at least one array"),
    ((np.zeros(3), np.zeros(4)), {}, "same length .*3, 4"),
    ((np.zeros(4),), {"test_size": 1.5}, "fraction in"),
    ((np.zeros(4),), {"test_size": 4}, "leaves 0 train and 4 test"),
    ((np.zeros(4),), {"test_size": 0}, "leaves 4 train and 0 test"),
])
def test_split_errors(args, kwargs, message):
    with pytest.raises(DataError, match=message):
        train_test_split(*args, **kwargs)
