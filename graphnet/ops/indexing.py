"""Positions of extreme values: argmax and argmin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.graph import Node, Op, apply, as_node
from graphnet.ops.reductions import reduced_shape
from graphnet.shapes import normalize_axis


@dataclass(frozen=True)
class ArgMax(Op):
    axis: int

    def infer(self, x):
        return reduced_shape(x.shape, (self.axis,), False), np.dtype("int64")

    def forward(self, x):
        return np.argmax(x, axis=self.axis)


@dataclass(frozen=True)
class ArgMin(Op):
    axis: int

    def infer(self, x):
        return reduced_shape(x.shape, (self.axis,), False), np.dtype("int64")

    def forward(self, x):
        return np.argmin(x, axis=self.axis)


def argmax(x, axis: int = -1, name=None) -> Node:
    """Index of the largest entry along `axis` (the first one on ties); no gradient."""
    x = as_node(x)
    return apply(ArgMax(normalize_axis(axis, x.ndim)), x, name=name)


def argmin(x, axis: int = -1, name=None) -> Node:
    """Index of the smallest entry along `axis` (the first one on ties); no gradient."""
    x = as_node(x)
    return apply(ArgMin(normalize_axis(axis, x.ndim)), x, name=name)
