"""Max and average pooling over NHWC windows, with their gradients.

Kernels loop over the taps of a window (4 for a 2x2 pool), each tap one
vectorised NumPy call on an (N, Ho, Wo, C) strided slice; never over pixels.

    MaxPool2D(x)             y = max over each window
    MaxPool2DGrad(x, y, g)   g routed to the first maximum of each window
    MaxPool2DGather(x, y, v) v read at the first maximum of each window
    AvgPool2D(x)             mean over each window (padding excluded, as TF)
    AvgPool2DGrad(g, x)      g spread evenly over each window (x: shape)

MaxPool2DGrad and MaxPool2DGather are each other's adjoint, as are
AvgPool2D and AvgPool2DGrad, so second derivatives stay within the family.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.nn.windows import (
    canonical_padding,
    check_nhwc,
    crop_hw,
    pad_hw,
    pair,
    resolve_padding,
    static_output_hw,
    tap,
)


@dataclass(frozen=True)
class PoolAttributes(Op):
    """What the pooling ops share: window, strides and padding."""

    pool: tuple
    strides: tuple
    padding: object   # "same" or ((top, bottom), (left, right))

    def infer(self, x):
        check_nhwc(x)
        if self.padding != "same" and any(
                max(pads) >= k for pads, k in zip(self.padding, self.pool, strict=True)):
            raise ShapeError(f"padding {self.padding} must be smaller than the pooling window "
                             f"{self.pool[0]}x{self.pool[1]}, or some windows see only padding")
        out_hw = static_output_hw(x.shape, self.padding, self.pool, self.strides, "pooling window")
        return (x.shape[0], *out_hw, x.shape[3]), x.dtype

    def geometry(self, x_shape: tuple) -> tuple:
        """(pads, out_hw) for a run-time input shape."""
        pads = resolve_padding(self.padding, x_shape[1:3], self.pool, self.strides)
        out_hw = tuple((n + p[0] + p[1] - k) // s + 1 for n, p, k, s in
                       zip(x_shape[1:3], pads, self.pool, self.strides, strict=True))
        return pads, out_hw

    def taps(self, out_hw: tuple):
        """The strided slice of each window position, in row-major order."""
        return [tap(a, b, out_hw, self.strides) for a in range(self.pool[0])
                for b in range(self.pool[1])]

    def overlapping(self) -> bool:
        return self.strides[0] < self.pool[0] or self.strides[1] < self.pool[1]

    def like(self, op_class) -> Op:
        return op_class(**self.attributes())


def _pool_op(op_class, pool_size, strides, padding) -> Op:
    pool = pair(pool_size, "pool_size")
    return op_class(pool, pool if strides is None else pair(strides, "strides"),
                    canonical_padding(padding))


# ----------------------------------------------------------- max pool


@dataclass(frozen=True)
class MaxPool2D(PoolAttributes):
    def forward(self, x):
        pads, out_hw = self.geometry(x.shape)
        xp = pad_hw(x, pads, -np.inf)
        taps = self.taps(out_hw)
        out = xp[taps[0]].copy()
        for index in taps[1:]:
            np.maximum(out, xp[index], out=out)
        return out

    def grad(self, node, g):
        return [apply(self.like(MaxPool2DGrad), node.inputs[0], node, g)]


def max_pool2d(x, pool_size, strides=None, padding="valid", name=None) -> Node:
    """Largest value of each `pool_size` window of NHWC `x`; strides default
    to the pool size; "same" padding pads with -inf."""
    return apply(_pool_op(MaxPool2D, pool_size, strides, padding), as_node(x), name=name)


def _first_max_hits(op: PoolAttributes, x: np.ndarray, y: np.ndarray):
    """(tap index, bool mask) pairs: where each window's first maximum sits.

    A window of ties (all zeros after a ReLU) has one winner, as in
    TensorFlow and PyTorch, so the gradient is not multiplied by the ties.
    """
    pads, out_hw = op.geometry(x.shape)
    xp = pad_hw(x, pads, -np.inf)
    free = np.ones(y.shape, bool)   # windows whose maximum is not found yet
    taps = op.taps(out_hw)
    for k, index in enumerate(taps):
        hit = np.equal(xp[index], y)
        hit &= free
        if k < len(taps) - 1:
            free ^= hit
        yield index, hit


@dataclass(frozen=True)
class MaxPool2DGrad(PoolAttributes):
    """Gradient of MaxPool2D: g added at each window's first maximum;
    overlapping windows accumulate. Inputs: x, the pool's output y, g."""

    def infer(self, x, y, g):
        return x.shape, g.dtype

    def forward(self, x, y, g):
        pads, _ = self.geometry(x.shape)
        n, h, w, c = x.shape
        dxp = np.zeros((n, h + sum(pads[0]), w + sum(pads[1]), c), g.dtype)
        overlapping = self.overlapping()
        for index, hit in _first_max_hits(self, x, y):
            if overlapping:
                dxp[index] += g * hit
            else:
                np.multiply(g, hit, out=dxp[index])
        return crop_hw(dxp, pads, (h, w))

    def grad(self, node, gg):
        x, y, _ = node.inputs
        return [None, None, apply(self.like(MaxPool2DGather), x, y, gg)]


@dataclass(frozen=True)
class MaxPool2DGather(PoolAttributes):
    """v (shaped like x) read at each window's first maximum of x: the
    adjoint of MaxPool2DGrad. Inputs: x, the pool's output y, v."""

    def infer(self, x, y, v):
        return y.shape, v.dtype

    def forward(self, x, y, v):
        pads, _ = self.geometry(x.shape)
        vp = pad_hw(v, pads)
        out = np.zeros(y.shape, v.dtype)
        for index, hit in _first_max_hits(self, x, y):
            out += vp[index] * hit
        return out

    def grad(self, node, gg):
        x, y, _ = node.inputs
        return [None, None, apply(self.like(MaxPool2DGrad), x, y, gg)]


# ----------------------------------------------------------- avg pool


def _window_counts(op: PoolAttributes, x_shape: tuple, dtype):
    """How many real (unpadded) values each window holds: a scalar without
    padding, else an (Ho, Wo, 1) array."""
    pads, out_hw = op.geometry(x_shape)
    if pads == ((0, 0), (0, 0)):
        return dtype.type(op.pool[0] * op.pool[1])
    per_axis = []
    geometry = zip(x_shape[1:3], pads, op.pool, op.strides, out_hw, strict=True)
    for size, (before, _), k, s, n in geometry:
        start = np.arange(n) * s - before
        per_axis.append(np.clip(start + k, 0, size) - np.clip(start, 0, size))
    return (per_axis[0][:, None] * per_axis[1][None, :])[:, :, None].astype(dtype)


@dataclass(frozen=True)
class AvgPool2D(PoolAttributes):
    """Mean of each window; padded positions are not counted (TensorFlow)."""

    def forward(self, x):
        pads, out_hw = self.geometry(x.shape)
        xp = pad_hw(x, pads)
        taps = self.taps(out_hw)
        out = xp[taps[0]].copy()
        for index in taps[1:]:
            out += xp[index]
        out /= _window_counts(self, x.shape, x.dtype)
        return out

    def grad(self, node, g):
        return [apply(self.like(AvgPool2DGrad), g, node.inputs[0])]


def avg_pool2d(x, pool_size, strides=None, padding="valid", name=None) -> Node:
    """Mean of each `pool_size` window of NHWC `x`; strides default to the
    pool size; with "same" padding, windows average their real values only."""
    return apply(_pool_op(AvgPool2D, pool_size, strides, padding), as_node(x), name=name)


@dataclass(frozen=True)
class AvgPool2DGrad(PoolAttributes):
    """Gradient of AvgPool2D: g / count added over each window. Input 1
    only gives x's shape."""

    def infer(self, g, x):
        return x.shape, g.dtype

    def forward(self, g, x):
        pads, out_hw = self.geometry(x.shape)
        n, h, w, c = x.shape
        share = g / _window_counts(self, x.shape, g.dtype)
        dxp = np.zeros((n, h + sum(pads[0]), w + sum(pads[1]), c), g.dtype)
        for index in self.taps(out_hw):
            dxp[index] += share
        return crop_hw(dxp, pads, (h, w))

    def grad(self, node, gg):
        # <AvgPool2DGrad(g), z> = <g, AvgPool2D(z)>
        return [apply(self.like(AvgPool2D), gg), None]
