"""One seed for everything random in graphnet: initializers, dropout, shuffling."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def seed(value: int | None):
    """Reseed graphnet's global generator: `gn.random.seed(0)`."""
    global _generator
    _generator = np.random.default_rng(value)


def generator(seed: int | None = None) -> np.random.Generator:
    """A generator for `seed`, or the global one when seed is None."""
    return _generator if seed is None else np.random.default_rng(seed)
