"""Which rows of each global batch a rank trains on, and random numbers to match.

A global batch of n rows is split as `numpy.array_split` would: rank r gets
rows [lo_r, hi_r), the first n % size ranks one row more than the others.
Every rank iterates the same global batches (the same shuffle: same seed,
same generator state), and keeps its rows.

Random draws inside a training step (dropout masks, augmentation) must be
the numbers the single-process run would draw for those rows. While a step
runs, `ShardedGenerator` stands in for a generator: a draw whose first axis
is this rank's row count draws the whole global batch's numbers (so the
generator advances exactly as in one process, on every rank alike) and
returns this rank's rows. Draws of other shapes pass through unchanged.
"""

from __future__ import annotations

import numpy as np


def shard_bounds(rows: int, rank: int, size: int) -> tuple:
    """(lo, hi): rank's rows of a global batch of `rows`, as numpy.array_split splits."""
    base, extra = divmod(rows, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (1 if rank < extra else 0)


class ShardedBatches:
    """Each global batch of `data` cut to this rank's rows: (x[lo:hi], y[lo:hi]).

    A final global batch with fewer rows than ranks cannot give every rank a
    row; it is skipped (`dropped` counts its rows per epoch), with a warning
    from the strategy. `current` is (lo, hi, rows) of the batch last yielded.
    """

    def __init__(self, data, rank: int, size: int, last_rows: int | None = None):
        self.data, self.rank, self.size = data, rank, size
        self.last_rows = last_rows      # rows of the final global batch, when known
        self.current = None
        self.checked = getattr(data, "checked", False)
        self.dropped = 0

    def __len__(self) -> int:
        n = len(self.data)
        return n - 1 if self.last_rows is not None and self.last_rows < self.size else n

    def __iter__(self):
        for batch in self.data:
            xb, yb = batch
            rows = len(xb)
            if rows < self.size:
                self.dropped = rows
                continue
            lo, hi = shard_bounds(rows, self.rank, self.size)
            self.current = (lo, hi, rows)
            yield xb[lo:hi], yb[lo:hi]


#: Generator methods whose `size` argument ShardedGenerator maps, with the
#: position of `size` among their positional arguments.
_SIZE_POSITION = {"random": 0, "standard_normal": 0, "normal": 2, "uniform": 2,
                  "integers": 2, "exponential": 1, "binomial": 2, "poisson": 1}


class ShardedGenerator:
    """A numpy Generator seen through a shard: see the module docstring.

    Only active while `rows` is set to (lo, hi, global rows); otherwise every
    call goes straight to the wrapped generator.
    """

    def __init__(self, generator: np.random.Generator):
        self.generator = generator
        self.rows = None

    def __getattr__(self, name):
        method = getattr(self.generator, name)
        if name not in _SIZE_POSITION:
            return method
        position = _SIZE_POSITION[name]

        def draw(*args, **kwargs):
            if self.rows is None:
                return method(*args, **kwargs)
            args = list(args)
            if "size" in kwargs:
                size = kwargs["size"]
            elif len(args) > position:
                size = args[position]
            else:
                return method(*args, **kwargs)
            shape = (size,) if isinstance(size, (int, np.integer)) else size
            lo, hi, total = self.rows
            if shape is None or len(shape) == 0 or shape[0] != hi - lo or total == hi - lo:
                return method(*args, **kwargs)
            whole = (total,) + tuple(shape[1:])
            if "size" in kwargs:
                kwargs["size"] = whole
            else:
                args[position] = whole
            return method(*args, **kwargs)[lo:hi].copy()

        return draw

    def __repr__(self):
        return f"ShardedGenerator({self.generator!r}, rows={self.rows})"
