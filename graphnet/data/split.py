"""train_test_split: hold out part of some arrays, like scikit-learn's helper of that name."""

from __future__ import annotations

import math

import numpy as np

from graphnet import random as gn_random
from graphnet.data.dataset import DataError


def train_test_split(*arrays, test_size: float = 0.25, shuffle: bool = True,
                     seed: int | None = None) -> list:
    """Split arrays of equal length into train and test rows, in the same way for all.

    Returns `[a_train, a_test, b_train, b_test, ...]`. `test_size` is a
    fraction in (0, 1) (rounded up to whole rows) or a number of rows. With
    `shuffle` the rows are drawn at random from `seed`, or from graphnet's
    global generator when `seed` is None; without it the test rows are the last ones.

    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, seed=0)
    """
    if not arrays:
        raise DataError("train_test_split needs at least one array")
    arrays = [np.asarray(a) for a in arrays]
    lengths = [len(a) if a.ndim else None for a in arrays]
    if None in lengths or len(set(lengths)) > 1:
        raise DataError("train_test_split: all arrays need the same length (first axis), "
                        "found " + ", ".join("scalar" if n is None else str(n) for n in lengths))
    n = lengths[0]
    if isinstance(test_size, float) and 0 < test_size < 1:
        n_test = math.ceil(test_size * n)
    elif isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        n_test = int(test_size)
    else:
        raise DataError("train_test_split: test_size must be a fraction in (0, 1) or a number "
                        f"of rows, found {test_size!r}")
    if not 0 < n_test < n:
        raise DataError(f"train_test_split: test_size={test_size!r} leaves {n - n_test} train "
                        f"and {n_test} test rows out of {n}; both parts need at least one")
    order = gn_random.generator(seed).permutation(n) if shuffle else np.arange(n)
    train, test = order[:n - n_test], order[n - n_test:]
    return [part for a in arrays for part in (a[train], a[test])]
