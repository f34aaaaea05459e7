"""Batches for language models: random windows of one long token array.

    train, val = split_tokens(ids, validation=0.1)         # by position, no shuffling
    data = TokenWindows(train, block_size=64, batch_size=12, steps=2000, seed=0)
    gpt.fit(data, epochs=1)          # (x, y) batches: y is x shifted by one token
"""

from __future__ import annotations

import numpy as np

from graphnet.data.dataset import DataError, Dataset


def split_tokens(tokens, validation: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(first part, last part) of a token array, the last `validation` fraction held
    out: a split by position, so no window of one part overlaps the other."""
    tokens = _token_array(tokens, "split_tokens")
    if not 0 < validation < 1:
        raise DataError(f"split_tokens: validation must be a fraction in (0, 1), "
                        f"got {validation!r}")
    cut = int(round(len(tokens) * (1 - validation)))
    return tokens[:cut], tokens[cut:]


class TokenWindows(Dataset):
    """`steps` batches per epoch of `batch_size` random windows of `block_size + 1`
    tokens: x is a window's first block_size tokens, y the next token at each
    position (the window shifted by one).

    Windows start anywhere in the array, drawn from `seed` (graphnet's global
    generator when None) and a fresh set every epoch; a batch is gathered
    from the array by index, so the corpus is never copied.
    """

    def __init__(self, tokens, block_size: int, batch_size: int, steps: int, seed=None):
        self.tokens = _token_array(tokens, "TokenWindows")
        self.block_size, self.batch_size, self.steps = int(block_size), int(batch_size), int(steps)
        for label, value in (("block_size", block_size), ("batch_size", batch_size),
                             ("steps", steps)):
            if int(value) < 1:
                raise DataError(f"TokenWindows: {label} must be at least 1, got {value}")
        if len(self.tokens) < self.block_size + 1:
            raise DataError(f"TokenWindows: {len(self.tokens)} tokens cannot make a window of "
                            f"block_size + 1 = {self.block_size + 1}")
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._offsets = np.arange(self.block_size + 1)
        self.checked = True   # integer ids, checked here: fit need not scan them

    def __len__(self) -> int:
        return self.steps

    def _elements(self):
        from graphnet import random as gn_random
        rng = self._rng if self._rng is not None else gn_random.generator()
        last = len(self.tokens) - self.block_size - 1
        for _ in range(self.steps):
            starts = rng.integers(0, last + 1, self.batch_size)
            windows = self.tokens[starts[:, None] + self._offsets]
            yield windows[:, :-1], windows[:, 1:]

    def __repr__(self):
        return (f"TokenWindows({len(self.tokens)} tokens, block_size={self.block_size}, "
                f"batch_size={self.batch_size}, steps={self.steps})")


def _token_array(tokens, what: str) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        raise DataError(f"{what}: tokens must be a 1-D integer array, got {tokens.dtype} "
                        f"{tokens.shape}")
    return tokens.astype(np.int64, copy=False)
