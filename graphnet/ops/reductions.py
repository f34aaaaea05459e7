"""Reductions over axes: sum, mean, max, min, prod."""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.jit import loop
from graphnet.ops.elementwise import divide, equal, multiply, where, zero
from graphnet.ops.shape import broadcast_like, cast, expand_dims
from graphnet.scratch import ones
from graphnet.shapes import normalize_axes


def reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    """`shape` with `axes` removed, or set to 1 when keepdims."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


@dataclass(frozen=True)
class Reduction(Op):
    """Shared attributes and shape rule of the reductions."""

    axis: tuple
    keepdims: bool = False

    def infer(self, x):
        return reduced_shape(x.shape, self.axis, self.keepdims), self.result_dtype(x.dtype)

    def result_dtype(self, dtype):
        return dtype

    def kept(self, g: Node) -> Node:
        """g with the reduced axes put back as size 1, ready to broadcast."""
        return g if self.keepdims or not self.axis else expand_dims(g, self.axis)


@dataclass(frozen=True)
class Sum(Reduction):
    writes_out = True
    backends = ("numba",)

    def result_dtype(self, dtype):
        return np.add.reduce(np.zeros(1, dtype)).dtype

    def forward(self, x, out=None):
        """A sum over leading axes (a bias gradient) of a contiguous float
        array runs as ones @ x, one BLAS matrix-vector product: 1.5-25x
        faster than np.sum, whose loop adds whole rows one after another."""
        lead = len(self.axis)
        if (lead == 0 or self.axis != tuple(range(lead)) or x.ndim <= lead or x.size == 0
                or x.dtype not in _BLAS_FLOATS or not x.flags.c_contiguous):
            return np.sum(x, axis=self.axis, keepdims=self.keepdims, out=out)
        matrix = x.reshape(-1, math.prod(x.shape[lead:]))
        if out is not None:
            np.dot(ones(len(matrix), x.dtype), matrix, out=out.reshape(-1))
            return out
        total = np.dot(ones(len(matrix), x.dtype), matrix)
        return total.reshape(reduced_shape(x.shape, self.axis, self.keepdims))

    def forward_loop(self, x, out=None):
        """A small sum over leading axes, or all of them, by `_small_sums`
        (no call costs of np.sum or BLAS, a few microseconds); else forward."""
        if out is None or not _small_sums(x, self.axis, out, 1):
            return self.forward(x, out=out)
        return out

    def grad(self, node, g):
        return [broadcast_like(self.kept(g), node.inputs[0])]


#: The dtypes BLAS multiplies: sums of these may run as matrix products.
_BLAS_FLOATS = (np.dtype("float32"), np.dtype("float64"))


@dataclass(frozen=True)
class Mean(Reduction):
    writes_out = True
    backends = ("numba",)

    def result_dtype(self, dtype):
        return dtype if dtype.kind == "f" else np.dtype("float64")

    def forward(self, x, out=None):
        """np.mean's own steps (add.reduce, then true_divide by an intp count)
        for floats into `out`, without its 5 us of Python around them."""
        count = math.prod(x.shape[a] for a in self.axis)
        if out is None or x.dtype.kind != "f" or x.dtype == np.float16 or count == 0:
            return np.mean(x, axis=self.axis, keepdims=self.keepdims, out=out)
        np.add.reduce(x, axis=self.axis, out=out, keepdims=self.keepdims)
        return np.true_divide(out, np.intp(count), out=out, casting="unsafe")

    def forward_loop(self, x, out=None):
        """forward by `_small_sums` for a small mean over leading axes or all."""
        if out is None or not _small_sums(x, self.axis, out, x.size // builtins.max(out.size, 1)):
            return self.forward(x, out=out)
        return out

    def grad(self, node, g):
        x = node.inputs[0]
        return [divide(broadcast_like(self.kept(g), x), reduced_size(x, self.axis, g.dtype))]


#: Up to this many elements, sums and means under the numba backend run as
#: `_column_sums` loops: np.mean and np.sum cost 5-8 us a call in Python,
#: a 32 x 128 bias gradient 0.5 us in BLAS; larger ones keep BLAS and
#: NumPy's pairwise sums.
SMALL = 1 << 14


def _small_sums(x, axes: tuple, out, count: int) -> bool:
    """Write the sums of x over `axes` (leading ones, or all), divided by
    `count`, into `out`, if x is a small contiguous float array; else False."""
    lead = len(axes)
    if (not 0 < x.size <= SMALL or axes != tuple(range(lead)) or x.dtype not in _BLAS_FLOATS
            or out.dtype != x.dtype or not x.flags.c_contiguous or not out.flags.c_contiguous):
        return False
    columns = out.size
    matrix = x.reshape(-1, columns) if x.ndim != 2 or lead != 1 else x
    _column_sums(matrix, out.reshape(columns) if out.ndim != 1 else out, count)
    return True


@loop
def _column_sums(x, out, count):
    """out[c] = sum of x[:, c] / count (one column: a vectorized total)."""
    rows, columns = x.shape
    if columns == 1:
        total = x.dtype.type(0)
        for r in range(rows):
            total += x[r, 0]
        out[0] = total
    else:
        for c in range(columns):
            out[c] = 0
        for r in range(rows):
            for c in range(columns):
                out[c] += x[r, c]
    if count != 1:
        for c in range(columns):
            out[c] = out[c] / count


@dataclass(frozen=True)
class Max(Reduction):
    writes_out = True

    def forward(self, x, out=None):
        return np.max(x, axis=self.axis, keepdims=self.keepdims, out=out)

    def grad(self, node, g):
        return [_extremum_grad(self, node, g)]


@dataclass(frozen=True)
class Min(Reduction):
    writes_out = True

    def forward(self, x, out=None):
        return np.min(x, axis=self.axis, keepdims=self.keepdims, out=out)

    def grad(self, node, g):
        return [_extremum_grad(self, node, g)]


def _extremum_grad(op: Reduction, node: Node, g: Node) -> Node:
    """Max/min gradient: shared equally by the entries that attain the extremum."""
    x = node.inputs[0]
    hits = equal(x, op.kept(node))
    count = sum(cast(hits, g.dtype), axis=op.axis, keepdims=True)
    return where(hits, divide(op.kept(g), count), zero(g))


@dataclass(frozen=True)
class Prod(Reduction):
    writes_out = True

    def result_dtype(self, dtype):
        return np.multiply.reduce(np.ones(1, dtype)).dtype

    def forward(self, x, out=None):
        return np.prod(x, axis=self.axis, keepdims=self.keepdims, out=out)

    def grad(self, node, g):
        # NOTE: prod / x is undefined where x == 0; fine for the strictly nonzero
        # inputs products are used on (likelihoods, scales).
        return [divide(multiply(self.kept(g), self.kept(node)), node.inputs[0])]


@dataclass(frozen=True)
class ReducedSize(Op):
    """Number of elements `axis` spans in x at run time, as a scalar of `dtype`."""

    axis: tuple
    dtype: np.dtype

    def infer(self, x):
        return (), self.dtype

    def forward(self, x):
        return np.asarray(np.prod([x.shape[a] for a in self.axis]), self.dtype)


def reduced_size(x: Node, axes: tuple, dtype) -> Node:
    """The count of elements over `axes` of x: a constant when sizes are known."""
    dims = [x.shape[a] for a in axes]
    if None not in dims:
        return as_node(np.asarray(np.prod(dims), dtype=dtype))
    return apply(ReducedSize(axes, np.dtype(dtype)), x)


def _reduce(op_class, x, axis, keepdims, name):
    x = as_node(x)
    if x.dtype is None:
        raise ShapeError(f"{op_class.__name__.lower()} of '{x.name}', which has no value")
    return apply(op_class(normalize_axes(axis, x.ndim), builtins.bool(keepdims)), x, name=name)


def sum(x, axis=None, keepdims: bool = False, name=None) -> Node:  # noqa: A001
    """Sum over `axis` (None: all axes; int or tuple)."""
    return _reduce(Sum, x, axis, keepdims, name)


def mean(x, axis=None, keepdims: bool = False, name=None) -> Node:
    """Arithmetic mean over `axis`."""
    return _reduce(Mean, x, axis, keepdims, name)


def max(x, axis=None, keepdims: bool = False, name=None) -> Node:  # noqa: A001
    """Largest entry over `axis`; ties share the gradient."""
    return _reduce(Max, x, axis, keepdims, name)


def min(x, axis=None, keepdims: bool = False, name=None) -> Node:  # noqa: A001
    """Smallest entry over `axis`; ties share the gradient."""
    return _reduce(Min, x, axis, keepdims, name)


def prod(x, axis=None, keepdims: bool = False, name=None) -> Node:
    """Product over `axis`."""
    return _reduce(Prod, x, axis, keepdims, name)
