"""Ops that move, select or re-type values: reshape, transpose, concat,
slicing, gather, one_hot, cast, and the shape-following helpers that
gradients use (`*_like` ops take their output shape from a second input at
run time, so they work with sizes that are unknown when the graph is built).
"""

from __future__ import annotations

import itertools
from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.shapes import (
    broadcast_shapes,
    format_shape,
    normalize_axes,
    normalize_axis,
    num_elements,
)

# ------------------------------------------------------ reshape family


@dataclass(frozen=True)
class Reshape(Op):
    view = True

    shape: tuple

    def infer(self, x):
        free = [i for i, d in enumerate(self.shape) if d == -1]
        if len(free) > 1 or any(d < -1 for d in self.shape):
            raise ShapeError(f"target {format_shape(self.shape)} may have one -1 and no "
                             "other negative size")
        known = int(np.prod([d for d in self.shape if d != -1], dtype=np.int64))
        total = num_elements(x.shape)
        if total is None:
            return tuple(None if d == -1 else d for d in self.shape), x.dtype
        if (free and (known == 0 or total % known)) or (not free and total != known):
            raise ShapeError(f"cannot reshape {format_shape(x.shape)} ({total} elements) "
                             f"to {format_shape(self.shape)}")
        return tuple(total // known if d == -1 else d for d in self.shape), x.dtype

    def forward(self, x):
        return np.reshape(x, self.shape)

    def grad(self, node, g):
        return [reshape_like(g, node.inputs[0])]


def reshape(x, shape, name=None) -> Node:
    """x with a new shape of the same size; one size may be -1."""
    return apply(Reshape(tuple(int(d) for d in shape)), as_node(x), name=name)


@dataclass(frozen=True)
class Unflatten(Op):
    """Axis `axis` of size prod(sizes) split into axes of `sizes`; the others kept."""

    view = True

    axis: int
    sizes: tuple

    def infer(self, x):
        size, known = x.shape[self.axis], int(np.prod(self.sizes, dtype=np.int64))
        if size is not None and size != known:
            raise ShapeError(f"unflatten: axis {self.axis} of {format_shape(x.shape)} has "
                             f"{size} entries, not {format_shape(self.sizes)} = {known}")
        return x.shape[:self.axis] + self.sizes + x.shape[self.axis + 1:], x.dtype

    def forward(self, x):
        return np.reshape(x, x.shape[:self.axis] + self.sizes + x.shape[self.axis + 1:])

    def grad(self, node, g):
        return [flatten(g, self.axis, self.axis + len(self.sizes) - 1)]


def unflatten(x, axis: int, sizes, name=None) -> Node:
    """Split one axis into several, keeping the other axes whatever their run-time
    sizes: (batch, seq, 128) -> unflatten(x, 2, (4, 32)) -> (batch, seq, 4, 32)."""
    x = as_node(x)
    return apply(Unflatten(normalize_axis(axis, x.ndim), tuple(int(d) for d in sizes)), x,
                 name=name)


@dataclass(frozen=True)
class Flatten(Op):
    """Axes start..end (inclusive) merged into one; the others kept."""

    view = True

    start: int
    end: int

    def infer(self, x):
        merged = x.shape[self.start:self.end + 1]
        size = None if None in merged else int(np.prod(merged, dtype=np.int64))
        return x.shape[:self.start] + (size,) + x.shape[self.end + 1:], x.dtype

    def forward(self, x):
        return np.reshape(x, x.shape[:self.start] + (-1,) + x.shape[self.end + 1:])

    def grad(self, node, g):
        return [reshape_like(g, node.inputs[0])]


def flatten(x, start: int = 0, end: int = -1, name=None) -> Node:
    """Merge axes start..end (inclusive) into one, keeping the others:
    (batch, seq, 4, 32) -> flatten(x, 2) -> (batch, seq, 128)."""
    x = as_node(x)
    start, end = normalize_axis(start, x.ndim), normalize_axis(end, x.ndim)
    if end < start:
        raise ShapeError(f"flatten: end axis {end} comes before start axis {start}")
    return apply(Flatten(start, end), x, name=name)


@dataclass(frozen=True)
class ReshapeLike(Op):
    view = True

    def infer(self, x, like):
        return like.shape, x.dtype

    def forward(self, x, like):
        return np.reshape(x, like.shape)

    def grad(self, node, g):
        return [reshape_like(g, node.inputs[0]), None]


def reshape_like(x, like, name=None) -> Node:
    """x reshaped to `like`'s run-time shape."""
    return apply(ReshapeLike(), x, like, name=name)


@dataclass(frozen=True)
class Transpose(Op):
    view = True

    perm: tuple

    def infer(self, x):
        if sorted(self.perm) != list(range(x.ndim)):
            raise ShapeError(f"perm {self.perm} is not a permutation of the {x.ndim} axes "
                             f"of {format_shape(x.shape)}")
        return tuple(x.shape[p] for p in self.perm), x.dtype

    def forward(self, x):
        return x.transpose(self.perm)   # the method: a quarter of np.transpose's call cost

    def grad(self, node, g):
        return [transpose(g, tuple(int(i) for i in np.argsort(self.perm)))]


def transpose(x, perm=None, name=None) -> Node:
    """Permute axes (reverse them when `perm` is None)."""
    x = as_node(x)
    if perm is None:
        perm = tuple(reversed(range(x.ndim)))
    else:  # an out-of-range axis is an error, not wrapped round (Transpose.infer names it)
        perm = tuple(int(p) + x.ndim if -x.ndim <= int(p) < 0 else int(p) for p in perm)
    return apply(Transpose(perm), x, name=name)


def swap_last_axes(x) -> Node:
    """Transpose of the last two axes, as matmul gradients need."""
    perm = list(range(x.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return transpose(x, perm)


@dataclass(frozen=True)
class ExpandDims(Op):
    view = True

    axes: tuple

    def infer(self, x):
        rank = x.ndim + len(self.axes)
        dims = iter(x.shape)
        return tuple(1 if i in self.axes else next(dims) for i in range(rank)), x.dtype

    def forward(self, x):
        return np.expand_dims(x, self.axes)

    def grad(self, node, g):
        return [reshape_like(g, node.inputs[0])]


def expand_dims(x, axis, name=None) -> Node:
    """Insert size-1 axes at `axis` (an int or a tuple) of the result."""
    x = as_node(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return apply(ExpandDims(normalize_axes(axes, x.ndim + len(axes))), x, name=name)


@dataclass(frozen=True)
class Squeeze(Op):
    view = True

    axes: tuple

    def infer(self, x):
        for a in self.axes:
            if x.shape[a] not in (1, None):
                raise ShapeError(f"cannot squeeze axis {a} of size {x.shape[a]} "
                                 f"in {format_shape(x.shape)}")
        return tuple(d for i, d in enumerate(x.shape) if i not in self.axes), x.dtype

    def forward(self, x):
        return x.squeeze(self.axes)   # the method: a quarter of np.squeeze's call cost

    def grad(self, node, g):
        return [reshape_like(g, node.inputs[0])]


def squeeze(x, axis=None, name=None) -> Node:
    """Drop size-1 axes: the given ones, or every axis statically known to be 1."""
    x = as_node(x)
    axes = tuple(i for i, d in enumerate(x.shape) if d == 1) if axis is None \
        else normalize_axes(axis, x.ndim)
    return apply(Squeeze(axes), x, name=name)


@dataclass(frozen=True)
class BroadcastTo(Op):
    view = True

    shape: tuple

    def infer(self, x):
        if x.ndim > len(self.shape) or broadcast_shapes(x.shape, self.shape) != self.shape:
            raise ShapeError(f"cannot broadcast {format_shape(x.shape)} to "
                             f"{format_shape(self.shape)}")
        return self.shape, x.dtype

    def forward(self, x):
        return np.broadcast_to(x, self.shape)

    def grad(self, node, g):
        return [g]  # gradients() sums it back to x's shape


def broadcast_to(x, shape, name=None) -> Node:
    """x repeated along new or size-1 axes to `shape`."""
    return apply(BroadcastTo(tuple(int(d) for d in shape)), as_node(x), name=name)


@dataclass(frozen=True)
class BroadcastLike(Op):
    view = True

    def infer(self, x, like):
        broadcast_shapes(x.shape, like.shape)
        return like.shape, x.dtype

    def forward(self, x, like):
        return np.broadcast_to(x, like.shape)

    def grad(self, node, g):
        return [g, None]


def broadcast_like(x, like, name=None) -> Node:
    """x broadcast to `like`'s run-time shape."""
    return apply(BroadcastLike(), x, like, name=name)


@dataclass(frozen=True)
class SumLike(Op):
    view = True

    def infer(self, x, like):
        return like.shape, x.dtype

    def forward(self, x, like):
        return sum_to_shape(x, like.shape)

    def grad(self, node, g):
        return [broadcast_like(g, node.inputs[0]), None]


def sum_to_shape(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum a broadcast array back down to `shape` (the inverse of broadcasting)."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(shape) if d == 1 and x.shape[lead + i] != 1)
    return np.reshape(np.sum(x, axis=axes, keepdims=True) if axes else x, shape)


def sum_like(x, like, name=None) -> Node:
    """x summed over the axes along which `like` was broadcast to x's shape."""
    return apply(SumLike(), x, like, name=name)


def sum_to(x: Node, like: Node) -> Node:
    """x reduced to `like`'s shape: a static sum when the shapes decide the
    axes, else a run-time SumLike (a None size might be 1 and broadcast)."""
    lead = x.ndim - like.ndim
    if lead < 0:
        return sum_like(x, like)
    pairs = list(zip(x.shape[lead:], like.shape, strict=True))
    if any(b is None and a != 1 for a, b in pairs):
        return sum_like(x, like)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, (a, b) in enumerate(pairs) if b == 1 and a != 1)
    if not axes:
        return x
    from graphnet.ops.reductions import sum
    summed = sum(x, axis=axes, keepdims=True)
    return squeeze(summed, tuple(range(lead))) if lead else summed


@dataclass(frozen=True)
class FillLike(Op):
    value: float
    dtype: np.dtype

    def infer(self, like):
        return like.shape, self.dtype

    def forward(self, like):
        return np.full(like.shape, self.value, self.dtype)


def zeros_like(x, dtype=None, name=None) -> Node:
    """Zeros of x's run-time shape."""
    x = as_node(x)
    return apply(FillLike(0.0, np.dtype(dtype or x.dtype)), x, name=name)


def ones_like(x, dtype=None, name=None) -> Node:
    """Ones of x's run-time shape."""
    x = as_node(x)
    return apply(FillLike(1.0, np.dtype(dtype or x.dtype)), x, name=name)


# ------------------------------------------------------- concatenation


def _concat_infer(xs, axis):
    ranks = {x.ndim for x in xs}
    if len(ranks) != 1:
        raise ShapeError("inputs have different ranks: "
                         + ", ".join(format_shape(x.shape) for x in xs))
    out = []
    for i in range(xs[0].ndim):
        dims = [x.shape[i] for x in xs]
        if i == axis:
            out.append(None if None in dims else sum(dims))
            continue
        known = {d for d in dims if d is not None}
        if len(known) > 1:
            raise ShapeError(f"sizes differ on axis {i}: "
                             + ", ".join(format_shape(x.shape) for x in xs))
        out.append(known.pop() if known else None)
    return tuple(out)


@dataclass(frozen=True)
class Concat(Op):
    axis: int

    def infer(self, *xs):
        return _concat_infer(xs, self.axis), np.result_type(*(x.dtype for x in xs))

    def forward(self, *xs):
        return np.concatenate(xs, axis=self.axis)

    def grad(self, node, g):
        return [apply(ConcatPart(self.axis, i), g, *node.inputs) for i in range(len(node.inputs))]


def concat(xs, axis: int = 0, name=None) -> Node:
    """Join nodes along an existing axis."""
    xs = [as_node(x) for x in xs]
    if not xs:
        raise ShapeError("concat needs at least one input")
    return apply(Concat(normalize_axis(axis, xs[0].ndim)), *xs, name=name)


@dataclass(frozen=True)
class ConcatPart(Op):
    """The piece of a concat's output (input 0) that came from input `index + 1`."""

    view = True

    axis: int
    index: int

    def infer(self, g, *xs):
        return xs[self.index].shape, g.dtype

    def forward(self, g, *xs):
        start = sum(x.shape[self.axis] for x in xs[:self.index])
        stop = start + xs[self.index].shape[self.axis]
        return g[(slice(None),) * self.axis + (slice(start, stop),)]

    def grad(self, node, g):
        xs = node.inputs[1:]
        parts = [g if j == self.index else zeros_like(x, dtype=g.dtype) for j, x in enumerate(xs)]
        return [concat(parts, self.axis)] + [None] * len(xs)


def stack(xs, axis: int = 0, name=None) -> Node:
    """Join nodes along a new axis."""
    xs = [as_node(x) for x in xs]
    if not xs:
        raise ShapeError("stack needs at least one input")
    axis = normalize_axis(axis, xs[0].ndim + 1)
    return concat([expand_dims(x, axis) for x in xs], axis, name=name or "stack")


def split(x, num_or_sizes, axis: int = 0, name=None) -> list:
    """Cut x along `axis` into `num` equal parts or parts of the given sizes."""
    x = as_node(x)
    axis = normalize_axis(axis, x.ndim)
    size = x.shape[axis]
    if isinstance(num_or_sizes, int):
        if size is None or size % num_or_sizes:
            raise ShapeError(f"split: axis {axis} of {format_shape(x.shape)} does not divide "
                             f"into {num_or_sizes} equal parts")
        sizes = [size // num_or_sizes] * num_or_sizes
    else:
        sizes = [int(s) for s in num_or_sizes]
        if size is not None and sum(sizes) != size:
            raise ShapeError(f"split: sizes {sizes} do not add up to {size} "
                             f"(axis {axis} of {format_shape(x.shape)})")
    starts = np.cumsum([0] + sizes)
    lead = (slice(None),) * axis
    return [getitem(x, lead + (slice(int(a), int(b)),), name=name or "split")
            for a, b in itertools.pairwise(starts)]


# ----------------------------------------------------------- indexing

Slice = namedtuple("Slice", "start stop step")


def _canonical_index(index) -> tuple:
    """A user index as a hashable tuple of ints, Slice, None and Ellipsis."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, slice):
            out.append(Slice(item.start, item.stop, item.step))
        elif item is None or item is Ellipsis:
            out.append(item)
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            out.append(int(item))
        else:
            raise TypeError(f"index {item!r}: only ints, slices, None and ... are supported; "
                            "use gn.gather to index with arrays or nodes")
    return tuple(out)


def _numpy_index(index: tuple) -> tuple:
    return tuple(slice(*i) if isinstance(i, Slice) else i for i in index)


def _format_index(index: tuple) -> str:
    def one(i):
        if isinstance(i, Slice):
            text = ":".join("" if v is None else str(v) for v in i[:2])
            return text + (f":{i.step}" if i.step is not None else "")
        return {None: "None", Ellipsis: "..."}.get(i, str(i)) if not isinstance(i, int) else str(i)
    return "[" + ", ".join(one(i) for i in index) + "]"


@dataclass(frozen=True)
class GetItem(Op):
    view = True

    index: tuple

    def label(self):
        return f"GetItem{_format_index(self.index)}"

    def infer(self, x):
        if sum(i is Ellipsis for i in self.index) > 1:
            raise ShapeError("an index can have only one ellipsis (...)")
        used = sum(i is not None and i is not Ellipsis for i in self.index)
        if used > x.ndim:
            raise ShapeError(f"too many indices {_format_index(self.index)} for "
                             f"{format_shape(x.shape)}")
        items = list(self.index)
        if Ellipsis in items:
            at = items.index(Ellipsis)
            items[at:at + 1] = [Slice(None, None, None)] * (x.ndim - used)
        dims, out = iter(x.shape), []
        for item in items:
            if item is None:
                out.append(1)
                continue
            n = next(dims)
            if isinstance(item, int):
                if n is not None and not -n <= item < n:
                    raise ShapeError(f"index {item} is out of range for size {n} "
                                     f"in {format_shape(x.shape)}")
            elif n is None:
                out.append(None)
            else:
                out.append(len(range(*slice(*item).indices(n))))
        return tuple(out) + tuple(dims), x.dtype

    def forward(self, x):
        return x[_numpy_index(self.index)]

    def grad(self, node, g):
        return [apply(ScatterSlice(self.index), g, node.inputs[0])]


def getitem(x, index, name=None) -> Node:
    """Basic slicing, `x[1:, ..., None, 0]`; the gradient scatters back."""
    return apply(GetItem(_canonical_index(index)), as_node(x), name=name)


@dataclass(frozen=True)
class ScatterSlice(Op):
    """Zeros shaped like input 1 with input 0 written at `index`: GetItem's gradient."""

    index: tuple

    def label(self):
        return f"ScatterSlice{_format_index(self.index)}"

    def infer(self, g, like):
        return like.shape, g.dtype

    def forward(self, g, like):
        out = np.zeros(like.shape, g.dtype)
        out[_numpy_index(self.index)] = g
        return out

    def grad(self, node, g):
        return [apply(GetItem(self.index), g), None]  # index is already canonical


@dataclass(frozen=True)
class Gather(Op):
    axis: int

    def infer(self, x, indices):
        if indices.dtype.kind not in "iu":
            raise ShapeError(f"indices must be integers, got {indices.dtype.name}")
        return x.shape[:self.axis] + indices.shape + x.shape[self.axis + 1:], x.dtype

    def forward(self, x, indices):
        return np.take(x, indices, axis=self.axis)

    def grad(self, node, g):
        x, indices = node.inputs
        return [apply(GatherGrad(self.axis), g, indices, x), None]


def gather(x, indices, axis: int = 0, name=None) -> Node:
    """Slices of x at integer `indices` along `axis` (like `np.take`, `tf.gather`)."""
    x = as_node(x)
    return apply(Gather(normalize_axis(axis, x.ndim)), x, as_node(indices), name=name)


@dataclass(frozen=True)
class GatherGrad(Op):
    """Scatter-add of gathered gradients back into zeros shaped like x."""

    axis: int

    def infer(self, g, indices, like):
        return like.shape, g.dtype

    def forward(self, g, indices, like):
        out = np.zeros(like.shape, g.dtype)
        np.add.at(out, (slice(None),) * self.axis + (indices,), g)
        return out

    def grad(self, node, g):
        return [gather(g, node.inputs[1], self.axis), None, None]


@dataclass(frozen=True)
class TakeAlongAxis(Op):
    axis: int

    def infer(self, x, indices):
        if indices.dtype.kind not in "iu":
            raise ShapeError(f"indices must be integers, got {indices.dtype.name}")
        if indices.ndim != x.ndim:
            raise ShapeError(f"indices {format_shape(indices.shape)} must have the rank of "
                             f"{format_shape(x.shape)}")
        out = []
        for i, (a, b) in enumerate(zip(x.shape, indices.shape, strict=True)):
            if i != self.axis and None not in (a, b) and a != b:
                raise ShapeError(f"indices {format_shape(indices.shape)} and "
                                 f"{format_shape(x.shape)} differ on axis {i}")
            out.append(b if i == self.axis or a is None else a)
        return tuple(out), x.dtype

    def forward(self, x, indices):
        return np.take_along_axis(x, indices, axis=self.axis)

    def grad(self, node, g):
        x, indices = node.inputs
        return [apply(TakeAlongAxisGrad(self.axis), g, indices, x), None]


def take_along_axis(x, indices, axis: int, name=None) -> Node:
    """`np.take_along_axis`: pick one entry per position along `axis`."""
    x = as_node(x)
    return apply(TakeAlongAxis(normalize_axis(axis, x.ndim)), x, as_node(indices), name=name)


@dataclass(frozen=True)
class TakeAlongAxisGrad(Op):
    axis: int

    def infer(self, g, indices, like):
        return like.shape, g.dtype

    def forward(self, g, indices, like):
        out = np.zeros(like.shape, g.dtype)
        grid = list(np.ogrid[tuple(slice(n) for n in g.shape)])
        grid[self.axis] = indices
        np.add.at(out, tuple(grid), g)
        return out

    def grad(self, node, g):
        return [take_along_axis(g, node.inputs[1], self.axis), None, None]


@dataclass(frozen=True)
class OneHot(Op):
    depth: int
    dtype: np.dtype

    def infer(self, indices):
        if indices.dtype.kind not in "iu":
            raise ShapeError(f"indices must be integers, got {indices.dtype.name}")
        return indices.shape + (self.depth,), self.dtype

    def forward(self, indices):
        return (indices[..., None] == np.arange(self.depth)).astype(self.dtype)


def one_hot(indices, depth: int, dtype="float32", name=None) -> Node:
    """Vectors of length `depth` with a 1 at each index (all zeros when out of range)."""
    return apply(OneHot(int(depth), np.dtype(dtype)), as_node(indices), name=name)


# ------------------------------------------------------------- types


@dataclass(frozen=True)
class Cast(Op):
    writes_out = True

    dtype: np.dtype

    def infer(self, x):
        return x.shape, self.dtype

    def forward(self, x, out=None):
        if out is None:
            return np.asarray(x).astype(self.dtype)
        np.copyto(out, x, casting="unsafe")
        return out

    def grad(self, node, g):
        x = node.inputs[0]
        if x.dtype.kind == "f" and self.dtype.kind == "f":
            return [cast(g, x.dtype)]
        return [None]


def cast(x, dtype, name=None) -> Node:
    """x converted to `dtype`; gradients pass only between float types."""
    x = as_node(x)
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return apply(Cast(dtype), x, name=name)


@dataclass(frozen=True)
class StopGradient(Op):
    view = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x):
        return x


def stop_gradient(x, name=None) -> Node:
    """x in the forward pass; no gradient flows through it."""
    return apply(StopGradient(), as_node(x), name=name)
