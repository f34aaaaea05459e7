"""Dataset: a small NumPy-side input pipeline (from_arrays, shuffle, batch, map, take).

Each method returns a new Dataset that wraps the one it was called on, as in
tf.data. Iterating runs the chain for one epoch:

    ds = gn.data.Dataset.from_arrays(x, y).shuffle(seed=0).batch(32)
    for xb, yb in ds:            # NumPy arrays, a fresh permutation every epoch
        ...

Why stages are "indexable": while a chain is only from_arrays, shuffle and
take, an epoch is just an order of row indices. `batch` then gathers each
batch straight from the source arrays with one fancy index of that order
(`x[order[i:i + n]]`), so an epoch never copies the whole data set; only the
batch it yields is new memory. After `map` or `batch` the elements are
arbitrary, and the later stages work on the stream of elements instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np

from graphnet import random as gn_random
from graphnet.errors import GraphnetError


class DataError(GraphnetError, ValueError):
    """Data that cannot form a data set: unequal lengths, no examples, bad structure."""


class Dataset:
    """A re-iterable pipeline of examples or batches; build one with `Dataset.from_arrays`.

    Every iteration is one epoch. Elements keep the structure given to
    `from_arrays`: one array, a tuple, or a dict of arrays.
    """

    # Indexable stages answer `_order()` (an int array of source rows for one
    # epoch) and `_gather(rows)`; the others implement `_elements()`.
    _indexable = False

    @staticmethod
    def from_arrays(x, y=None) -> Dataset:
        """Slice arrays along their first axis: one example per row.

        `x` is an array, or a tuple or dict of arrays (nested too); with `y`
        the elements are `(x_i, y_i)`. All arrays need the same length.

        >>> ds = Dataset.from_arrays(np.zeros((10, 3)), np.arange(10))
        >>> len(ds.batch(4))
        3
        """
        return _Arrays(x if y is None else (x, y))

    def shuffle(self, seed: int | None = None, reshuffle_each_iteration: bool = True) -> Dataset:
        """Shuffle the whole data set, drawing a new order every epoch.

        With `seed=None` the orders come from graphnet's global generator, so
        `gn.random.seed(0)` makes a run repeatable; an integer seed gives this
        Dataset its own generator: the same sequence of epoch orders for the
        same seed, independent of everything else.
        """
        return _Shuffle(self, seed, reshuffle_each_iteration)

    def batch(self, batch_size: int, drop_remainder: bool = False) -> Dataset:
        """Group consecutive elements into batches of `batch_size` along a new first axis.

        The last batch is smaller unless `drop_remainder=True`, which drops it
        (useful when a model wants one fixed batch shape).
        """
        _check_count("batch", "batch_size", batch_size, minimum=1)
        return _Batch(self, int(batch_size), bool(drop_remainder))

    def map(self, fn: Callable) -> Dataset:
        """Apply `fn` to every element: `fn(*element)` for tuples, `fn(element)` otherwise."""
        if not callable(fn):
            raise DataError(f"Dataset.map needs a callable, found {type(fn).__name__}: {fn!r}")
        return _Map(self, fn)

    def take(self, count: int) -> Dataset:
        """The first `count` elements of every epoch (all of them if there are fewer)."""
        _check_count("take", "count", count, minimum=0)
        return _Take(self, int(count))

    def __iter__(self) -> Iterator:
        if self._indexable:
            return (self._gather(row) for row in self._order())
        return self._elements()

    def __len__(self) -> int:
        raise NotImplementedError

    def _order(self) -> np.ndarray:
        raise NotImplementedError

    def _gather(self, rows):
        raise NotImplementedError

    def _elements(self) -> Iterator:
        raise NotImplementedError


class _Arrays(Dataset):
    """The source: rows of in-memory arrays (kept as given, never copied whole)."""

    _indexable = True

    def __init__(self, structure):
        self.arrays = _tree_map(np.asarray, structure)
        leaves = _leaves(self.arrays)
        if not leaves:
            raise DataError("Dataset.from_arrays needs at least one array, found an empty "
                            f"{type(structure).__name__}")
        for name, leaf in leaves:
            if leaf.ndim == 0:
                raise DataError(f"Dataset.from_arrays: {name} is a scalar ({leaf!r}); every "
                                "array needs a first axis that indexes the examples")
        lengths = {name: len(leaf) for name, leaf in leaves}
        if len(set(lengths.values())) > 1:
            found = ", ".join(f"{name}: {n}" for name, n in lengths.items())
            raise DataError("Dataset.from_arrays: all arrays need the same length (first "
                            f"axis), found {found}")
        self.length = next(iter(lengths.values()))
        if self.length == 0:
            raise DataError("Dataset.from_arrays: the arrays hold no examples (length 0)")

    def __len__(self):
        return self.length

    def _order(self):
        return np.arange(self.length)

    def _gather(self, rows):
        # Gathering an array of rows copies just these rows (`take` does it for
        # a matrix faster than fancy indexing); a single row or a slice would
        # be a view, so it is copied: a map that edits its input in place
        # cannot corrupt the source either way.
        if isinstance(rows, slice) or not np.ndim(rows):
            return _tree_map(lambda a: a[rows].copy(), self.arrays)
        return _tree_map(lambda a: a.take(rows, axis=0) if a.ndim > 1 else a[rows], self.arrays)

    def __repr__(self):
        spec = _tree_map(lambda a: f"{a.dtype.name}{list(a.shape)}", self.arrays)
        return f"Dataset.from_arrays({spec})"


class _Shuffle(Dataset):
    """A new random order every epoch: of row indices when possible, else of elements."""

    def __init__(self, parent: Dataset, seed, reshuffle: bool):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise DataError(f"Dataset.shuffle: seed must be an int or None, found {seed!r}")
        self.parent, self.seed, self.reshuffle = parent, seed, reshuffle
        self._indexable = parent._indexable
        self._own_rng = None if seed is None else np.random.default_rng(seed)
        self._fixed = None  # the one permutation kept when reshuffle is off

    def _permutation(self, n: int) -> np.ndarray:
        if not self.reshuffle and self._fixed is not None:
            return self._fixed
        rng = self._own_rng if self._own_rng is not None else gn_random.generator()
        self._fixed = rng.permutation(n)
        return self._fixed

    def skip_epochs(self, count: int):
        """Draw and drop the orders of `count` epochs, so the next iteration
        is epoch `count`'s: how a resumed `fit` sees the batches it would have."""
        if self._own_rng is None or not self.reshuffle:
            return
        n = len(self.parent._order()) if self._indexable else len(list(self.parent))
        for _ in range(int(count)):
            self._permutation(n)

    def __len__(self):
        return len(self.parent)

    def _order(self):
        order = self.parent._order()
        return order[self._permutation(len(order))]

    def _gather(self, rows):
        return self.parent._gather(rows)

    def _elements(self):
        # Elements made by map/batch cannot be re-made by index: hold one epoch
        # of them (references, not copies) and yield them in a shuffled order.
        elements = list(self.parent)
        for i in self._permutation(len(elements)):
            yield elements[i]

    def __repr__(self):
        return f"{self.parent!r}.shuffle({'' if self.seed is None else f'seed={self.seed}'})"


class _Take(Dataset):
    """The first `count` elements of each epoch."""

    def __init__(self, parent: Dataset, count: int):
        self.parent, self.count = parent, count
        self._indexable = parent._indexable

    def __len__(self):
        return min(self.count, len(self.parent))

    def _order(self):
        return self.parent._order()[:self.count]

    def _gather(self, rows):
        return self.parent._gather(rows)

    def _elements(self):
        return itertools.islice(iter(self.parent), self.count)

    def __repr__(self):
        return f"{self.parent!r}.take({self.count})"


class _Batch(Dataset):
    """Consecutive elements stacked along a new first axis."""

    def __init__(self, parent: Dataset, size: int, drop_remainder: bool):
        self.parent, self.size, self.drop_remainder = parent, size, drop_remainder

    def __len__(self):
        n = len(self.parent)
        return n // self.size if self.drop_remainder else math.ceil(n / self.size)

    def _elements(self):
        if self.parent._indexable:
            order = self.parent._order()
            stop = len(self) * self.size if self.drop_remainder else len(order)
            # Arrays in their own order are read by slices, one copy each.
            sliced = isinstance(self.parent, _Arrays)
            for start in range(0, stop, self.size):
                rows = slice(start, start + self.size) if sliced else order[start:start + self.size]
                yield self.parent._gather(rows)
            return
        group = []
        for element in self.parent:
            group.append(element)
            if len(group) == self.size:
                yield _stack(group)
                group = []
        if group and not self.drop_remainder:
            yield _stack(group)

    def __repr__(self):
        drop = ", drop_remainder=True" if self.drop_remainder else ""
        return f"{self.parent!r}.batch({self.size}{drop})"


class _Map(Dataset):
    """`fn` applied to every element as it streams past."""

    def __init__(self, parent: Dataset, fn: Callable):
        self.parent, self.fn = parent, fn

    def __len__(self):
        return len(self.parent)

    def _elements(self):
        for element in self.parent:
            yield self.fn(*element) if isinstance(element, tuple) else self.fn(element)

    def __repr__(self):
        return f"{self.parent!r}.map({getattr(self.fn, '__name__', repr(self.fn))})"


# --- structures: an array, or tuples and dicts of them -------------------------------

def _tree_map(fn, tree):
    if isinstance(tree, tuple):
        return tuple(_tree_map(fn, t) for t in tree)
    if isinstance(tree, dict):
        return {k: _tree_map(fn, t) for k, t in tree.items()}
    return fn(tree)


def _leaves(tree, name="x"):
    """(name, leaf) pairs; names like `x[1]` or `x['image']` make error messages exact."""
    if isinstance(tree, tuple):
        return [p for i, t in enumerate(tree) for p in _leaves(t, f"{name}[{i}]")]
    if isinstance(tree, dict):
        return [p for k, t in tree.items() for p in _leaves(t, f"{name}[{k!r}]")]
    return [(name, tree)]


def _stack(elements: list):
    """Stack a list of equally structured elements into one batch of that structure."""
    first = elements[0]
    if isinstance(first, tuple):
        if any(not isinstance(e, tuple) or len(e) != len(first) for e in elements):
            raise DataError(f"Dataset.batch: elements differ in structure: {_describe(elements)}")
        return tuple(_stack([e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, dict):
        if any(not isinstance(e, dict) or e.keys() != first.keys() for e in elements):
            raise DataError(f"Dataset.batch: elements differ in structure: {_describe(elements)}")
        return {k: _stack([e[k] for e in elements]) for k in first}
    try:
        return np.stack(elements)
    except ValueError as err:
        shapes = sorted({np.shape(e) for e in elements})
        raise DataError(f"Dataset.batch: cannot stack elements of shapes {shapes}; "
                        "map them to one shape before batching") from err


def _describe(elements):
    kinds = sorted({type(e).__name__ + (f"[{len(e)}]" if isinstance(e, (tuple, dict)) else "")
                    for e in elements})
    return ", ".join(kinds)


def _check_count(method: str, arg: str, value, minimum: int):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"Dataset.{method}: {arg} must be an int >= {minimum}, found {value!r}")
