"""Temporaries a plan step keeps between runs, so a steady-state step allocates nothing.

A kernel (`forward` or `forward_loop`) that needs temporaries takes a
`scratch=None` argument; `Op.kernel` then gives each plan step a dict of its
own, and `kept(scratch, name, shape, dtype)` hands it the same array for the
same temporary on every run. Called without a dict (as `forward` is when the
compiler folds constants), it makes a fresh array. `ones(n, dtype)` is a
shared read-only vector for row sums by BLAS.
"""

from __future__ import annotations

import functools

import numpy as np


def kept(scratch: dict | None, name: str, shape: tuple, dtype) -> np.ndarray:
    """The array for temporary `name` of `shape` and `dtype`, zeroed when
    made (parts no run writes stay zero); kept in `scratch` when given."""
    if scratch is None:
        return np.zeros(shape, dtype)
    key = (name, tuple(shape), np.dtype(dtype))
    if key not in scratch:
        scratch[key] = np.zeros(shape, dtype)
    return scratch[key]


@functools.lru_cache(maxsize=64)
def ones(n: int, dtype) -> np.ndarray:
    """A read-only vector of `n` ones: `ones @ x` sums x's rows with BLAS."""
    vector = np.ones(n, dtype)
    vector.setflags(write=False)
    return vector
