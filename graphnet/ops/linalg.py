"""Matrix products."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.ops.shape import expand_dims, flatten, reshape, squeeze, swap_last_axes
from graphnet.shapes import broadcast_shapes, format_shape


@dataclass(frozen=True)
class Matmul(Op):
    """`a @ b` over the last two axes, broadcasting the leading (batch) axes."""

    writes_out = True

    def infer(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ShapeError(f"{format_shape(a.shape)} @ {format_shape(b.shape)}: "
                             "both inputs need at least 2 axes")
        k1, k2 = a.shape[-1], b.shape[-2]
        if k1 is not None and k2 is not None and k1 != k2:
            raise ShapeError(f"{format_shape(a.shape)} @ {format_shape(b.shape)}: "
                             f"inner dimensions {k1} != {k2}")
        try:
            batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ShapeError:
            raise ShapeError(f"{format_shape(a.shape)} @ {format_shape(b.shape)}: batch axes "
                             f"{format_shape(a.shape[:-2])} and {format_shape(b.shape[:-2])} "
                             "do not broadcast") from None
        return batch + (a.shape[-2], b.shape[-1]), np.result_type(a.dtype, b.dtype)

    def forward(self, a, b, out=None):
        return np.matmul(a, b, out=out)

    def grad(self, node, g):
        a, b = node.inputs
        return [matmul(g, swap_last_axes(b)), matmul(swap_last_axes(a), g)]


def matmul(a, b, name=None) -> Node:
    """Matrix product; 1-D operands act as a row (a) or column (b) vector, as in NumPy."""
    a, b = as_node(a), as_node(b)
    if a.ndim == 1 or b.ndim == 1:
        a2 = expand_dims(a, 0) if a.ndim == 1 else a
        b2 = expand_dims(b, -1) if b.ndim == 1 else b
        out = apply(Matmul(), a2, b2)
        drop = ([out.ndim - 2] if a.ndim == 1 else []) + ([out.ndim - 1] if b.ndim == 1 else [])
        return squeeze(out, tuple(drop), name=name)
    if a.ndim > 2 and b.ndim == 2:
        # NOTE: (batch, seq, k) @ (k, n) as one 2-D product: BLAS runs it faster
        # than a batched one, and the weight gradient becomes one gemm, not a
        # batched product and a sum over the batch.
        if None not in a.shape[1:] + b.shape[1:]:
            flat = apply(Matmul(), reshape(a, (-1, a.shape[-1])), b)
            return reshape(flat, (-1,) + a.shape[1:-1] + (b.shape[-1],), name=name)
        flat = apply(Matmul(), flatten(a, 0, a.ndim - 2), b)   # sizes known at run time
        return apply(LeadingAxesLike(), flat, a, name=name)
    return apply(Matmul(), a, b, name=name)


@dataclass(frozen=True)
class LeadingAxesLike(Op):
    """(m, n) x back to like.shape[:-1] + (n,): undoes flattening like's leading axes."""

    view = True

    def infer(self, x, like):
        return like.shape[:-1] + (x.shape[-1],), x.dtype

    def forward(self, x, like):
        return np.reshape(x, like.shape[:-1] + (x.shape[-1],))

    def grad(self, node, g):
        return [flatten(g, 0, g.ndim - 2), None]
