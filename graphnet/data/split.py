"""train_test_split: hold out part of some arrays, like scikit-learn's helper of that name."""

from __future__ import annotations

import math

import numpy as np

from graphnet import random as gn_random
from graphnet.data.dataset import DataError


def train_test_split(*arrays, test_size: float = 0.25, shuffle: bool = True,
                     seed: int | None = None, stratify=None) -> list:
    """Split arrays of equal length into train and test rows, in the same way for all.

    Returns `[a_train, a_test, b_train, b_test, ...]`. `test_size` is a
    fraction in (0, 1) (rounded up to whole rows) or a number of rows. With
    `shuffle` the rows are drawn at random from `seed`, or from graphnet's
    global generator when `seed` is None; without it the test rows are the last ones.

    `stratify` (class labels, one per row, usually `y`) keeps each class's
    share the same in both parts: each class gets its share of the test rows,
    rounded so the total is exact, and every class with two or more rows has
    at least one row in each part (a class with one row stays in train when
    it can). Without `shuffle` each class's test rows are its last ones.

    >>> x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, seed=0)
    >>> parts = train_test_split(x, y, test_size=0.2, stratify=y, seed=0)
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
    rng = gn_random.generator(seed) if shuffle else None
    if stratify is None:
        order = rng.permutation(n) if shuffle else np.arange(n)
        train, test = order[:n - n_test], order[n - n_test:]
    else:
        train, test = _stratified(np.asarray(stratify), n, n_test, rng)
    return [part for a in arrays for part in (a[train], a[test])]


def _stratified(labels: np.ndarray, n: int, n_test: int, rng) -> tuple:
    """(train rows, test rows) with each class's share of `n_test` (rng None: no shuffle)."""
    if labels.ndim == 0 or len(labels) != n:
        raise DataError(f"train_test_split: stratify needs one label per row ({n}), found "
                        f"shape {labels.shape}")
    _, classes = np.unique(labels, axis=0 if labels.ndim > 1 else None, return_inverse=True)
    classes = classes.reshape(-1)
    counts = np.bincount(classes)
    low = np.where(counts >= 2, 1, 0)               # a test row for each class of 2+ rows
    high = np.where(counts >= 2, counts - 1, 1)     # ... and a train row
    if low.sum() > n_test or high.sum() < n_test:
        raise DataError(
            f"train_test_split: {n_test} test rows of {n} cannot give each of the "
            f"{int((counts >= 2).sum())} classes with 2+ rows (of {len(counts)} classes in "
            "stratify) a row in both parts; change test_size or merge rare classes")
    exact = counts * (n_test / n)
    share = np.clip(np.floor(exact).astype(np.int64), low, high)
    # Ties between classes are broken at random (by class order without shuffle).
    tiebreak = rng.permutation(len(counts)) if rng is not None else np.arange(len(counts))
    while share.sum() != n_test:
        step = 1 if share.sum() < n_test else -1
        room = share < high if step > 0 else share > low
        # Grow the class furthest below its exact share (or shrink the furthest above);
        # single-row classes come last when growing, so they stay in train if they can.
        gap = (exact - share) * step - (step > 0) * (counts < 2) * n
        candidates = np.flatnonzero(room)
        best = candidates[np.lexsort((tiebreak[candidates], -gap[candidates]))[0]]
        share[best] += step
    train, test = [], []
    for label, size in enumerate(share):
        rows = np.flatnonzero(classes == label)
        if rng is not None:
            rows = rng.permutation(rows)
        train.append(rows[:len(rows) - size])
        test.append(rows[len(rows) - size:])
    train, test = np.concatenate(train), np.concatenate(test)
    if rng is not None:
        return rng.permutation(train), rng.permutation(test)
    return np.sort(train), np.sort(test)
