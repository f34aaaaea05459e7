"""Slices at positions known only at run time: what a key/value cache needs.

    positions(x, axis=1, offset=p)   # [p, p+1, ..., p+T-1] for x of T steps
    read_at(x, p, size, axis)        # x[..., p:p+size, ...]
    write_at(x, update, p, axis)     # x with x[..., p:p+n, ...] = update

`p` is a scalar integer node (a placeholder fed per run), so one compiled
plan serves every position: a decode step does not recompile per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.shapes import format_shape, normalize_axis


def _check_index(index: Node, op: str):
    if index.shape != () or index.dtype.kind not in "iu":
        raise ShapeError(f"{op}: the position must be a scalar integer, got "
                         f"{index.dtype.name} {format_shape(index.shape)}")


def _window(start, size: int, length: int, op: str) -> slice:
    start = int(start)
    if start < 0 or start + size > length:
        raise IndexError(f"{op}: positions {start}..{start + size - 1} are outside an axis of "
                         f"length {length}")
    return slice(start, start + size)


@dataclass(frozen=True)
class Positions(Op):
    """arange(x.shape[axis]) + offset, int64: the position of each step of x."""

    axis: int

    def infer(self, x, *offset):
        if offset:
            _check_index(offset[0], "positions")
        return (x.shape[self.axis],), np.dtype("int64")

    def forward(self, x, offset=0):
        return np.arange(x.shape[self.axis], dtype=np.int64) + np.int64(offset)


def positions(x, axis: int = 1, offset=None, name=None) -> Node:
    """Positions [offset, ..., offset + T - 1] of the T steps of x along `axis`
    (offset: None, or a scalar integer node fed at run time); no gradient."""
    x = as_node(x)
    extra = () if offset is None else (as_node(offset),)
    return apply(Positions(normalize_axis(axis, x.ndim)), x, *extra, name=name or "positions")


@dataclass(frozen=True)
class ReadAt(Op):
    """x[..., index:index + size, ...] along `axis`, index fed at run time. With
    size None the window is as long as input 2's axis (`like`)."""

    axis: int
    size: int | None

    def infer(self, x, index, *like):
        _check_index(index, "read_at")
        size = self.size if self.size is not None else like[0].shape[self.axis]
        length = x.shape[self.axis]
        if None not in (length, size) and size > length:
            raise ShapeError(f"read_at: a window of {size} does not fit axis {self.axis} "
                             f"of {format_shape(x.shape)}")
        shape = list(x.shape)
        shape[self.axis] = size
        return tuple(shape), x.dtype

    def forward(self, x, index, like=None):
        size = self.size if self.size is not None else like.shape[self.axis]
        where = _window(index, size, x.shape[self.axis], "read_at")
        return x[(slice(None),) * self.axis + (where,)]

    def grad(self, node, g):
        x, index = node.inputs[:2]
        from graphnet.ops import zeros_like
        return [write_at(zeros_like(x), g, index, self.axis)] + [None] * (len(node.inputs) - 1)


def read_at(x, index, size: int, axis: int, name=None) -> Node:
    """The `size` entries of x from position `index` along `axis`."""
    x = as_node(x)
    return apply(ReadAt(normalize_axis(axis, x.ndim), int(size)), x, as_node(index), name=name)


@dataclass(frozen=True)
class WriteAt(Op):
    """A copy of x whose entries index..index + n - 1 along `axis` are `update`'s."""

    axis: int

    def infer(self, x, update, index):
        _check_index(index, "write_at")
        if update.ndim != x.ndim or update.dtype != x.dtype or any(
                a is not None and b is not None and a != b
                for i, (a, b) in enumerate(zip(x.shape, update.shape)) if i != self.axis):
            raise ShapeError(f"write_at: update {update.dtype.name} "
                             f"{format_shape(update.shape)} does not fit x {x.dtype.name} "
                             f"{format_shape(x.shape)} outside axis {self.axis}")
        return x.shape, x.dtype

    def forward(self, x, update, index):
        out = x.copy()
        where = _window(index, update.shape[self.axis], x.shape[self.axis], "write_at")
        out[(slice(None),) * self.axis + (where,)] = update
        return out

    def grad(self, node, g):
        x, update, index = node.inputs
        from graphnet.ops import zeros_like
        return [write_at(g, zeros_like(update), index, self.axis),
                apply(ReadAt(self.axis, None), g, index, update), None]


def write_at(x, update, index, axis: int, name=None) -> Node:
    """x with `update` written from position `index` along `axis` (a new value;
    `gn.assign(cache, write_at(cache, kv, p, 2))` updates a cache variable)."""
    x, update = as_node(x), as_node(update)
    return apply(WriteAt(normalize_axis(axis, x.ndim)), x, update, as_node(index),
                 name=name or "write_at")
