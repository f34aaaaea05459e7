"""Ops whose shapes come from tensors computed at run time, for imported graphs.

Exporters such as torch.onnx write `Reshape(x, Concat(Shape(x)[0], ..., 32))`:
the target shape is a value, not an attribute. graphnet's own ops take
static shapes, so an import uses these ops where the importer cannot work a
shape out when it builds the graph. Each has a `hint`: the static shape the
importer did work out (None where unknown), which `infer` reports.

    ShapeOf(x)                         x.shape[start:end] as int64
    DynamicReshape(x, shape)           Reshape (0 copies x's size unless allowzero)
    DynamicExpand(x, shape)            Expand: broadcast x against `shape`
    Fill(shape)                        ConstantOfShape
    Arange(start, limit, delta)        Range
    DynamicSlice(x, starts, ends, axes, steps), with its gradient DynamicSliceGrad
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Op, apply
from graphnet.ops.shape import reshape_like
from graphnet.shapes import format_shape


def _vector(node, what: str) -> int:
    """The static length of a 1-D integer input, or a ShapeError."""
    if node.ndim != 1 or node.shape[0] is None or node.dtype.kind not in "iu":
        raise ShapeError(f"{what} must be a 1-D integer tensor of known length, got "
                         f"{node.dtype} {format_shape(node.shape)}")
    return node.shape[0]


@dataclass(frozen=True)
class ShapeOf(Op):
    start: int = 0
    end: int | None = None

    def infer(self, x):
        return (len(range(x.ndim)[self.start:self.end]),), np.dtype("int64")

    def forward(self, x):
        return np.asarray(x.shape[self.start:self.end], np.int64)


@dataclass(frozen=True)
class DynamicReshape(Op):
    view = True   # np.reshape returns a view of x when it can

    hint: tuple
    allowzero: bool = False

    def infer(self, x, shape):
        if _vector(shape, "the target shape") != len(self.hint):
            raise ShapeError(f"hint {self.hint} does not match a shape of {shape.shape[0]}")
        return self.hint, x.dtype

    def forward(self, x, shape):
        target = [int(d) for d in shape]
        if not self.allowzero:
            target = [x.shape[i] if d == 0 else d for i, d in enumerate(target)]
        return np.reshape(x, target)

    def grad(self, node, g):
        return [reshape_like(g, node.inputs[0]), None]


@dataclass(frozen=True)
class DynamicExpand(Op):
    view = True

    hint: tuple

    def infer(self, x, shape):
        _vector(shape, "the expanded shape")
        return self.hint, x.dtype

    def forward(self, x, shape):
        return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(int(d) for d in shape)))

    def grad(self, node, g):
        return [g, None]   # gradients() sums g back to x's shape


@dataclass(frozen=True)
class Fill(Op):
    hint: tuple
    value: float
    dtype: np.dtype

    def infer(self, shape):
        _vector(shape, "the filled shape")
        return self.hint, self.dtype

    def forward(self, shape):
        return np.full(tuple(int(d) for d in shape), self.value, self.dtype)


@dataclass(frozen=True)
class Arange(Op):
    def infer(self, start, limit, delta):
        return (None,), np.result_type(start.dtype, limit.dtype, delta.dtype)

    def forward(self, start, limit, delta):
        dtype = np.result_type(start, limit, delta)
        return np.arange(start, limit, delta, dtype=dtype)


def _slices(rank: int, starts, ends, axes, steps) -> tuple:
    index = [slice(None)] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        # Python slices clamp out-of-range bounds as ONNX does
        index[int(axis)] = slice(int(start), int(end), int(step))
    return tuple(index)


@dataclass(frozen=True)
class DynamicSlice(Op):
    view = True

    hint: tuple

    def infer(self, x, starts, ends, axes, steps):
        return self.hint, x.dtype

    def forward(self, x, starts, ends, axes, steps):
        return x[_slices(x.ndim, starts, ends, axes, steps)]

    def grad(self, node, g):
        return [apply(DynamicSliceGrad(), g, *node.inputs)] + [None] * 4


@dataclass(frozen=True)
class DynamicSliceGrad(Op):
    """Zeros shaped like x (input 1) with g written at the slice."""

    def infer(self, g, x, starts, ends, axes, steps):
        return x.shape, g.dtype

    def forward(self, g, x, starts, ends, axes, steps):
        out = np.zeros(x.shape, g.dtype)
        out[_slices(x.ndim, starts, ends, axes, steps)] = g
        return out

    def grad(self, node, gg):
        hint = node.inputs[0].shape
        return [apply(DynamicSlice(hint), gg, *node.inputs[2:])] + [None] * 5
