"""Ops that only the compiler inserts into graphs."""

from __future__ import annotations

from dataclasses import dataclass

from graphnet.errors import FeedError, ShapeError
from graphnet.graph import Op
from graphnet.shapes import check_value_shape, format_shape


@dataclass(frozen=True)
class SpecifyShape(Op):
    """The fed value of placeholder `feed`, promised to have `shape`.

    `specialize` puts one after each fed placeholder, so every node below
    knows its sizes; the kernel keeps the promise, refusing other shapes
    (a plan is compiled per feed-shape signature; Session.run compiles one
    per signature itself).
    """

    shape: tuple
    feed: str

    view = True  # its value is its input's

    def infer(self, x):
        if not check_value_shape(self.shape, x.shape):
            raise ShapeError(f"{format_shape(self.shape)} does not fit "
                             f"{format_shape(x.shape)}")
        return self.shape, x.dtype

    def forward(self, x):
        if x.shape != self.shape:
            raise FeedError(
                f"this plan was compiled for placeholder '{self.feed}' of shape "
                f"{format_shape(self.shape)}; fed {format_shape(x.shape)}. Compile "
                "again for the new shape, or use Session.run, which compiles one plan "
                "per feed shape")
        return x

    def grad(self, node, g):
        return [g]
