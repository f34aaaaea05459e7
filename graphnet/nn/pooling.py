"""Max and average pooling over NHWC windows, with their gradients.

The NumPy kernels loop over the taps of a window (4 for a 2x2 pool), each tap
one vectorised NumPy call on an (N, Ho, Wo, C) strided slice; never over
pixels. Under the numba backend the ops run compiled loops over the windows
instead (graphnet/jit.py), which read every input once and need no padded
copy, with the taps of 2x2 windows unrolled. Windows at stride 1 keep the
NumPy kernels, which measured as fast there; the NumPy kernels stay the
reference that the tests compare the loops against. The max-pool gradient's
NumPy kernels keep their masks and padded copies per plan step (`kernel`)
and write into `out`: no temporaries per step.

    MaxPool2D(x)             y = max over each window
    MaxPool2DGrad(x, y, g)   g routed to the first maximum of each window (not padding)
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
from graphnet.jit import loop
from graphnet.nn.windows import (
    canonical_padding,
    check_nhwc,
    crop_hw,
    pad_hw,
    pair,
    run_geometry,
    static_output_hw,
    tap,
)
from graphnet.scratch import kept


@dataclass(frozen=True)
class PoolAttributes(Op):
    """What the pooling ops share: window, strides and padding. The ops
    write into `out=`; under the numba backend they run `forward_loop`."""

    pool: tuple
    strides: tuple
    padding: object   # "same" or ((top, bottom), (left, right))

    writes_out = True

    @property
    def backends(self) -> tuple:
        """The loops, but not for windows at stride 1: there NumPy's pass per
        tap over long strided runs measured as fast, or faster for few channels."""
        return () if self.strides == (1, 1) else ("numba",)

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
        return run_geometry(self.padding, tuple(x_shape[1:3]), self.pool, self.strides)

    def offsets(self, x_shape: tuple) -> tuple:
        """(top, left): the padding before the first row and column, as the
        loops take it (a window's taps outside x are padding)."""
        (top, _), (left, _) = self.geometry(x_shape)[0]
        return top, left

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


def _empty(out, shape: tuple, dtype) -> np.ndarray:
    """The result's array: `out` when the plan gives a buffer, else a new one."""
    return np.empty(shape, dtype) if out is None else out


def _into(out, value: np.ndarray) -> np.ndarray:
    """`value` (a fresh array or a view of one), copied into `out` when given."""
    if out is None:
        return value
    np.copyto(out, value)
    return out


# ----------------------------------------------------------- max pool


@dataclass(frozen=True)
class MaxPool2D(PoolAttributes):
    def forward(self, x, out=None):
        pads, out_hw = self.geometry(x.shape)
        xp = pad_hw(x, pads, -np.inf)
        taps = self.taps(out_hw)
        out = _empty(out, (x.shape[0], *out_hw, x.shape[3]), x.dtype)
        np.copyto(out, xp[taps[0]])
        for index in taps[1:]:
            np.maximum(out, xp[index], out=out)
        return out

    def forward_loop(self, x, out=None):
        _, out_hw = self.geometry(x.shape)
        out = _empty(out, (x.shape[0], *out_hw, x.shape[3]), x.dtype)
        if self.pool == (2, 2):
            _max_pool_2x2(x, self.strides, self.offsets(x.shape), out)
        else:
            _max_pool(x, self.pool, self.strides, self.offsets(x.shape), out)
        return out

    def grad(self, node, g):
        return [apply(self.like(MaxPool2DGrad), node.inputs[0], node, g)]


def max_pool2d(x, pool_size, strides=None, padding="valid", name=None) -> Node:
    """Largest value of each `pool_size` window of NHWC `x`; strides default
    to the pool size; "same" padding pads with -inf."""
    return apply(_pool_op(MaxPool2D, pool_size, strides, padding), as_node(x), name=name)


@loop(fastmath=False)
def _max_pool(x, pool, strides, offsets, out):
    """out[n, i, j] = the maximum of x over the taps of window (i, j) that
    lie inside x (padding holds -inf); NaN wins, as in np.maximum."""
    n_images, h, w, channels = x.shape
    _, out_h, out_w, _ = out.shape
    for n in range(n_images):
        for i in range(out_h):
            r0 = i * strides[0] - offsets[0]
            r_lo, r_hi = max(r0, 0), min(r0 + pool[0], h)
            for j in range(out_w):
                q0 = j * strides[1] - offsets[1]
                q_lo, q_hi = max(q0, 0), min(q0 + pool[1], w)
                for c in range(channels):
                    out[n, i, j, c] = x[n, r_lo, q_lo, c]
                for r in range(r_lo, r_hi):
                    for q in range(q_lo, q_hi):
                        for c in range(channels):   # channels innermost: vectorizes
                            v, top = x[n, r, q, c], out[n, i, j, c]
                            out[n, i, j, c] = v if v > top or v != v else top


@loop(fastmath=False)
def _max_pool_2x2(x, strides, offsets, out):
    """`_max_pool` for 2x2 windows, the taps unrolled (2.5x faster: the
    general loop's two-tap inner loops cost more than their work). A tap in
    the padding is replaced by its neighbour inside x, which leaves the
    maximum as it is."""
    n_images, h, w, channels = x.shape
    _, out_h, out_w, _ = out.shape
    for n in range(n_images):
        for i in range(out_h):
            r = i * strides[0] - offsets[0]
            r0, r1 = max(r, 0), min(r + 1, h - 1)
            for j in range(out_w):
                q = j * strides[1] - offsets[1]
                q0, q1 = max(q, 0), min(q + 1, w - 1)
                for c in range(channels):
                    top = x[n, r0, q0, c]
                    for v in (x[n, r0, q1, c], x[n, r1, q0, c], x[n, r1, q1, c]):
                        top = v if v > top or v != v else top
                    out[n, i, j, c] = top


@loop(fastmath=False)
def _max_pool_grad(x, y, g, pool, strides, offsets, out):
    """g[n, i, j, c] added to out at the first tap of window (i, j) inside x,
    in row-major order, where x equals the window's maximum y (none when y
    is NaN)."""
    n_images, h, w, channels = x.shape
    _, out_h, out_w, _ = y.shape
    out[...] = 0
    for n in range(n_images):
        for i in range(out_h):
            r0 = i * strides[0] - offsets[0]
            r_lo, r_hi = max(r0, 0), min(r0 + pool[0], h)
            for j in range(out_w):
                q0 = j * strides[1] - offsets[1]
                q_lo, q_hi = max(q0, 0), min(q0 + pool[1], w)
                for c in range(channels):
                    top, first_r, first_q = y[n, i, j, c], -1, -1
                    for r in range(r_hi - 1, r_lo - 1, -1):   # backwards: the last hit is the first
                        for q in range(q_hi - 1, q_lo - 1, -1):
                            hit = x[n, r, q, c] == top
                            first_r, first_q = (r if hit else first_r), (q if hit else first_q)
                    if first_r >= 0:
                        out[n, first_r, first_q, c] += g[n, i, j, c]


@loop(fastmath=False)
def _max_pool_grad_2x2(x, y, g, strides, offsets, out):
    """`_max_pool_grad` for 2x2 windows, the taps unrolled (2x faster).
    Padding taps are replaced by their neighbours inside x, as in
    `_max_pool_2x2`: a repeated tap never comes before its original."""
    n_images, h, w, channels = x.shape
    _, out_h, out_w, _ = y.shape
    out[...] = 0
    for n in range(n_images):
        for i in range(out_h):
            r = i * strides[0] - offsets[0]
            r0, r1 = max(r, 0), min(r + 1, h - 1)
            for j in range(out_w):
                q = j * strides[1] - offsets[1]
                q0, q1 = max(q, 0), min(q + 1, w - 1)
                for c in range(channels):   # the taps backwards: the last hit is the first
                    top = y[n, i, j, c]
                    hit = x[n, r1, q1, c] == top
                    first_r, first_q = (r1 if hit else -1), q1
                    hit = x[n, r1, q0, c] == top
                    first_r, first_q = (r1 if hit else first_r), (q0 if hit else first_q)
                    hit = x[n, r0, q1, c] == top
                    first_r, first_q = (r0 if hit else first_r), (q1 if hit else first_q)
                    hit = x[n, r0, q0, c] == top
                    first_r, first_q = (r0 if hit else first_r), (q0 if hit else first_q)
                    if first_r >= 0:
                        out[n, first_r, first_q, c] += g[n, i, j, c]


def _first_max_hits(op: PoolAttributes, x: np.ndarray, y: np.ndarray, scratch: dict):
    """(tap index, bool mask) pairs: where each window's first maximum sits.
    The mask is one array kept in `scratch`, rewritten for each tap.

    A window of ties (all zeros after a ReLU) has one winner, as in
    TensorFlow and PyTorch, so the gradient is not multiplied by the ties.
    """
    pads, out_hw = op.geometry(x.shape)
    # Padding is never a window's maximum, even of -infs.
    xp = pad_hw(x, pads, np.nan, scratch, "x")
    hit, free = kept(scratch, "hit", y.shape, bool), kept(scratch, "free", y.shape, bool)
    free.fill(True)   # windows whose maximum is not found yet
    taps = op.taps(out_hw)
    for k, index in enumerate(taps):
        np.equal(xp[index], y, out=hit)
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

    def forward(self, x, y, g, out=None, scratch=None):
        scratch = {} if scratch is None else scratch
        pads, _ = self.geometry(x.shape)
        n, h, w, c = x.shape
        out = _empty(out, x.shape, g.dtype)
        padded = (n, h + sum(pads[0]), w + sum(pads[1]), c)
        dxp = out if padded == x.shape else kept(scratch, "dxp", padded, g.dtype)
        dxp.fill(0)   # also where the taps cover it: warms the lines, measured faster
        overlapping = self.overlapping()
        share = kept(scratch, "share", g.shape, g.dtype) if overlapping else None
        for index, hit in _first_max_hits(self, x, y, scratch):
            if overlapping:
                dxp[index] += np.multiply(g, hit, out=share)
            else:
                np.multiply(g, hit, out=dxp[index])
        if dxp is not out:
            np.copyto(out, crop_hw(dxp, pads, (h, w)))
        return out

    def forward_loop(self, x, y, g, out=None):
        out = _empty(out, x.shape, g.dtype)
        if self.pool == (2, 2):
            _max_pool_grad_2x2(x, y, g, self.strides, self.offsets(x.shape), out)
        else:
            _max_pool_grad(x, y, g, self.pool, self.strides, self.offsets(x.shape), out)
        return out

    def grad(self, node, gg):
        x, y, _ = node.inputs
        return [None, None, apply(self.like(MaxPool2DGather), x, y, gg)]


@dataclass(frozen=True)
class MaxPool2DGather(PoolAttributes):
    """v (shaped like x) read at each window's first maximum of x: the
    adjoint of MaxPool2DGrad. Inputs: x, the pool's output y, v. Only second
    derivatives use it, so it has no loop (one measured no faster than NumPy)."""

    backends = ()

    def infer(self, x, y, v):
        return y.shape, v.dtype

    def forward(self, x, y, v, out=None, scratch=None):
        scratch = {} if scratch is None else scratch
        pads, _ = self.geometry(x.shape)
        vp = pad_hw(v, pads, 0, scratch, "v")
        out = _empty(out, y.shape, v.dtype)
        out.fill(0)
        share = kept(scratch, "share", y.shape, v.dtype)
        for index, hit in _first_max_hits(self, x, y, scratch):
            out += np.multiply(vp[index], hit, out=share)
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

    def forward(self, x, out=None):
        pads, out_hw = self.geometry(x.shape)
        xp = pad_hw(x, pads)
        taps = self.taps(out_hw)
        out = _empty(out, (x.shape[0], *out_hw, x.shape[3]), x.dtype)
        np.copyto(out, xp[taps[0]])
        for index in taps[1:]:
            out += xp[index]
        out /= _window_counts(self, x.shape, x.dtype)
        return out

    def forward_loop(self, x, out=None):
        _, out_hw = self.geometry(x.shape)
        out = _empty(out, (x.shape[0], *out_hw, x.shape[3]), x.dtype)
        _avg_pool(x, self.pool, self.strides, self.offsets(x.shape), out)
        return out

    def grad(self, node, g):
        return [apply(self.like(AvgPool2DGrad), g, node.inputs[0])]


def avg_pool2d(x, pool_size, strides=None, padding="valid", name=None) -> Node:
    """Mean of each `pool_size` window of NHWC `x`; strides default to the
    pool size; with "same" padding, windows average their real values only."""
    return apply(_pool_op(AvgPool2D, pool_size, strides, padding), as_node(x), name=name)


@loop
def _avg_pool(x, pool, strides, offsets, out):
    """out[n, i, j, c] = the mean of x over the taps of window (i, j) that
    lie inside x."""
    n_images, h, w, channels = x.shape
    _, out_h, out_w, _ = out.shape
    out[...] = 0
    for n in range(n_images):
        for i in range(out_h):
            r0 = i * strides[0] - offsets[0]
            r1 = min(r0 + pool[0], h)
            for j in range(out_w):
                q0 = j * strides[1] - offsets[1]
                q1 = min(q0 + pool[1], w)
                for r in range(max(r0, 0), r1):
                    for q in range(max(q0, 0), q1):
                        for c in range(channels):
                            out[n, i, j, c] += x[n, r, q, c]
                count = out.dtype.type((r1 - max(r0, 0)) * (q1 - max(q0, 0)))
                for c in range(channels):
                    out[n, i, j, c] /= count


@loop
def _avg_pool_grad(g, pool, strides, offsets, out):
    """The adjoint of `_avg_pool`: g[n, i, j, c] / count added to each tap
    of window (i, j) that lies inside out."""
    n_images, h, w, channels = out.shape
    _, out_h, out_w, _ = g.shape
    out[...] = 0
    for n in range(n_images):
        for i in range(out_h):
            r0 = i * strides[0] - offsets[0]
            r1 = min(r0 + pool[0], h)
            for j in range(out_w):
                q0 = j * strides[1] - offsets[1]
                q1 = min(q0 + pool[1], w)
                count = out.dtype.type((r1 - max(r0, 0)) * (q1 - max(q0, 0)))
                for r in range(max(r0, 0), r1):
                    for q in range(max(q0, 0), q1):
                        for c in range(channels):
                            out[n, r, q, c] += g[n, i, j, c] / count


@dataclass(frozen=True)
class AvgPool2DGrad(PoolAttributes):
    """Gradient of AvgPool2D: g / count added over each window. Input 1
    only gives x's shape."""

    def infer(self, g, x):
        return x.shape, g.dtype

    def forward(self, g, x, out=None):
        pads, out_hw = self.geometry(x.shape)
        n, h, w, c = x.shape
        share = g / _window_counts(self, x.shape, g.dtype)
        dxp = np.zeros((n, h + sum(pads[0]), w + sum(pads[1]), c), g.dtype)
        for index in self.taps(out_hw):
            dxp[index] += share
        return _into(out, crop_hw(dxp, pads, (h, w)))

    def forward_loop(self, g, x, out=None):
        out = _empty(out, x.shape, g.dtype)
        _avg_pool_grad(g, self.pool, self.strides, self.offsets(x.shape), out)
        return out

    def grad(self, node, gg):
        # <AvgPool2DGrad(g), z> = <g, AvgPool2D(z)>
        return [apply(self.like(AvgPool2D), gg), None]
