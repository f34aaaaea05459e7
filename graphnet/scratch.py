"""Temporaries a plan step keeps between runs, so a steady-state step allocates nothing.

An op whose NumPy kernel needs temporaries returns, from `kernel(backend)`,
`functools.partial(self.forward, scratch={})`: each plan step owns one dict,
and `kept(scratch, name, shape, dtype)` hands it the same array for the same
temporary on every run. Called without a dict (`scratch=None`, as `forward`
is when the compiler folds constants), it makes a fresh array.
"""

from __future__ import annotations

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
