"""Inverted dropout (as Keras): y = x * mask / (1 - rate) while training, y = x otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet import random as gn_random
from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.ops import multiply
from graphnet.ops.elementwise import float_infer
from graphnet.shapes import format_shape


@dataclass(frozen=True, eq=False)
class DropoutMask(Op):
    """A fresh keep-mask each run, already scaled: 1 / (1 - rate) where kept
    (probability 1 - rate), 0 where dropped, shaped and typed like input 0.

    The mask is a node of its own, so the forward product and its gradient
    read the same mask within a run. Numbers come from graphnet's global
    generator (`gn.random.seed`) or, given `seed`, from a stream the op owns.
    An optional bool scalar input 1 switches dropout off at run time (all ones).
    """

    random = True
    rate: float
    seed: int | None = None

    __eq__, __hash__ = object.__eq__, object.__hash__  # two masks are never the same value

    def __post_init__(self):
        own = None if self.seed is None else gn_random.generator(self.seed)
        object.__setattr__(self, "_generator", own)

    def infer(self, x, *training):
        float_infer(x)
        if training and (training[0].dtype != np.bool_ or training[0].shape != ()):
            raise ShapeError(f"training must be a bool scalar, got {training[0].dtype.name} "
                             f"{format_shape(training[0].shape)}")
        return x.shape, x.dtype

    def forward(self, x, training=True):
        if not training:
            return np.ones(x.shape, x.dtype)
        rng = gn_random.generator() if self._generator is None else self._generator
        draw = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        keep = rng.random(x.shape, dtype=draw) >= self.rate
        return np.multiply(keep, x.dtype.type(1 / (1 - self.rate)), dtype=x.dtype)


def dropout(x, rate: float, training=True, seed: int | None = None, name=None) -> Node:
    """Zero each entry of x with probability `rate` and scale the rest by
    1 / (1 - rate) when `training` (a Python bool, or a bool scalar node fed
    at run time); the identity otherwise. Each run draws a new mask.

        >>> h = gn.nn.dropout(h, 0.5, training=is_training)  # is_training: bool placeholder
    """
    x = as_node(x)
    rate = float(rate)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    if not isinstance(training, (bool, np.bool_, Node)):
        raise TypeError(f"training must be a bool or a bool scalar node, got {training!r}")
    if rate == 0 or training is False or training is np.False_:
        return x
    switch = (training,) if isinstance(training, Node) else ()
    mask = apply(DropoutMask(rate, None if seed is None else int(seed)), x, *switch,
                 name="dropout_mask")
    return multiply(x, mask, name=name or "dropout")
