"""Activation functions and (log-)softmax over any axis.

Under the numba backend, softmax over the last axis and its backward
(SoftmaxGrad) run compiled row loops. Softmax keeps NumPy's exp between
them: SIMD in NumPy, about 5x faster than the scalar exp a loop calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from graphnet.graph import Node, Op, apply, as_node
from graphnet.jit import loop
from graphnet.ops.elementwise import (
    add,
    erf,
    exp,
    float_infer,
    greater,
    multiply,
    power,
    subtract,
    where,
    zero,
)
from graphnet.ops.reductions import sum
from graphnet.shapes import normalize_axis


@dataclass(frozen=True)
class Sigmoid(Op):
    def infer(self, x):
        return float_infer(x)

    def forward(self, x):
        # NOTE: 1 / (1 + exp(-x)) overflows for large negative x; split by sign.
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

    def grad(self, node, g):
        return [multiply(g, multiply(node, subtract(1, node)))]


def sigmoid(x, name=None) -> Node:
    """1 / (1 + exp(-x)), computed without overflow."""
    return apply(Sigmoid(), as_node(x), name=name)


@dataclass(frozen=True)
class Tanh(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        return np.tanh(x, out=out)

    def grad(self, node, g):
        return [multiply(g, subtract(1, multiply(node, node)))]


def tanh(x, name=None) -> Node:
    """Hyperbolic tangent."""
    return apply(Tanh(), as_node(x), name=name)


@dataclass(frozen=True)
class Relu(Op):
    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        return np.maximum(x, 0, out=out)

    def grad(self, node, g):
        return [where(greater(node.inputs[0], 0), g, zero(g))]


def relu(x, name=None) -> Node:
    """max(x, 0)."""
    return apply(Relu(), as_node(x), name=name)


@dataclass(frozen=True)
class LeakyRelu(Op):
    alpha: float = 0.2

    def infer(self, x):
        return float_infer(x)

    def forward(self, x):
        return np.where(x > 0, x, x * x.dtype.type(self.alpha))

    def grad(self, node, g):
        return [where(greater(node.inputs[0], 0), g, multiply(g, self.alpha))]


def leaky_relu(x, alpha: float = 0.2, name=None) -> Node:
    """x for x > 0, alpha * x otherwise (Keras' default alpha 0.2)."""
    return apply(LeakyRelu(float(alpha)), as_node(x), name=name)


@dataclass(frozen=True)
class Softplus(Op):
    def infer(self, x):
        return float_infer(x)

    def forward(self, x):
        return np.logaddexp(x.dtype.type(0), x)

    def grad(self, node, g):
        return [multiply(g, sigmoid(node.inputs[0]))]


def softplus(x, name=None) -> Node:
    """log(1 + exp(x)), computed without overflow."""
    return apply(Softplus(), as_node(x), name=name)


def gelu(x, approximate: bool = False, name=None) -> Node:
    """Gaussian error linear unit: x * Phi(x); `approximate=True` is the tanh form."""
    x = as_node(x)
    if approximate:
        inner = multiply(add(x, multiply(power(x, 3), 0.044715)), math.sqrt(2 / math.pi))
        return multiply(multiply(x, 0.5), add(tanh(inner), 1), name=name or "gelu")
    return multiply(multiply(x, 0.5), add(erf(multiply(x, 1 / math.sqrt(2))), 1),
                    name=name or "gelu")


@dataclass(frozen=True)
class Softmax(Op):
    writes_out = True
    backends = ("numba",)

    axis: int = -1

    def infer(self, x):
        normalize_axis(self.axis, x.ndim)
        return float_infer(x)

    def forward(self, x, out=None):
        out = np.subtract(x, x.max(axis=self.axis, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=self.axis, keepdims=True)
        return out

    def forward_loop(self, x, out=None):
        """forward over rows of the last axis: loops for the max and the sum
        around NumPy's exp, in place in `out`; up to SMALL_SOFTMAX elements
        (class scores at batch 1), one loop with its own exp, where the calls
        cost more than NumPy's faster exp saves."""
        if not _rows_fit(self.axis, x):
            return self.forward(x, out=out)
        out = np.empty(x.shape, x.dtype) if out is None else out
        if x.ndim == 2:   # already rows: no reshape calls (this runs every step)
            x_rows, rows = x, out
        else:
            rows = out.reshape(-1, x.shape[-1])
            x_rows = x.reshape(rows.shape)
        if x.size <= SMALL_SOFTMAX:
            _softmax_rows(x_rows, rows)
            return out
        _subtract_row_max(x_rows, rows)
        np.exp(rows, out=rows)
        _divide_by_row_sum(rows)
        return out

    def grad(self, node, g):
        return [apply(SoftmaxGrad(self.axis), g, node)]


@dataclass(frozen=True)
class SoftmaxGrad(Op):
    """Softmax's backward in one kernel: y * (g - sum(g * y, axis)) for
    y = softmax(x) and the output gradient g (inputs g, y)."""

    writes_out = True
    backends = ("numba",)

    axis: int = -1

    def infer(self, g, y):
        return y.shape, y.dtype

    def forward(self, g, y, out=None):
        dot = np.multiply(g, y, out=out).sum(axis=self.axis, keepdims=True)
        out = np.subtract(g, dot, out=out)
        out *= y
        return out

    def forward_loop(self, g, y, out=None):
        """forward by `_softmax_grad_rows` when `axis` is the last."""
        if not _rows_fit(self.axis, y, g):
            return self.forward(g, y, out=out)
        out = np.empty(y.shape, y.dtype) if out is None else out
        shape = (-1, y.shape[-1])
        _softmax_grad_rows(g.reshape(shape), y.reshape(shape), out.reshape(shape))
        return out

    def grad(self, node, gg):
        # linear in g, so d/dg is the op itself; d/dy = gg * (g - sum(g y)) - g * sum(gg y)
        g, y = node.inputs
        dy = subtract(multiply(gg, subtract(g, sum(multiply(g, y), self.axis, keepdims=True))),
                      multiply(g, sum(multiply(gg, y), self.axis, keepdims=True)))
        return [apply(SoftmaxGrad(self.axis), gg, y), dy]


def _rows_fit(axis: int, x: np.ndarray, *others: np.ndarray) -> bool:
    """True when the row loops can run: over the last axis, float32 or float64."""
    if axis % x.ndim != x.ndim - 1 or x.size == 0 or x.dtype not in _FLOATS:
        return False
    for a in others:   # a loop and dtype objects: this runs every step
        if a.shape != x.shape or a.dtype != x.dtype:
            return False
    return True


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


@loop(fastmath=False)   # IEEE infinities: -inf logits (masks) give 0
def _subtract_row_max(x, out):
    for i in range(x.shape[0]):
        top = x[i, 0]
        for j in range(1, x.shape[1]):
            top = max(top, x[i, j])
        for j in range(x.shape[1]):
            out[i, j] = x[i, j] - top


#: Up to this many elements softmax runs as one loop (measured here: 1x10
#: 0.25 us against 2.3 us for the loops around NumPy's exp, 32x10 1.3 against
#: 2.6 us; at 64x64 the one loop takes 15.6 us against 5.8 us).
SMALL_SOFTMAX = 512


@loop(fastmath=False)   # IEEE infinities, as _subtract_row_max
def _softmax_rows(x, out):
    for i in range(x.shape[0]):
        top = x[i, 0]
        for j in range(1, x.shape[1]):
            top = max(top, x[i, j])
        total = x.dtype.type(0)
        for j in range(x.shape[1]):
            out[i, j] = np.exp(x[i, j] - top)
            total += out[i, j]
        scale = x.dtype.type(1) / total
        for j in range(x.shape[1]):
            out[i, j] *= scale


@loop
def _divide_by_row_sum(x):
    for i in range(x.shape[0]):
        total = x.dtype.type(0)
        for j in range(x.shape[1]):
            total += x[i, j]
        scale = x.dtype.type(1) / total
        for j in range(x.shape[1]):
            x[i, j] *= scale


@loop
def _softmax_grad_rows(g, y, out):
    for i in range(y.shape[0]):
        dot = y.dtype.type(0)
        for j in range(y.shape[1]):
            dot += g[i, j] * y[i, j]
        for j in range(y.shape[1]):
            out[i, j] = y[i, j] * (g[i, j] - dot)


def softmax(x, axis: int = -1, name=None) -> Node:
    """exp(x) / sum(exp(x)) along `axis`, shifted by the max for stability."""
    x = as_node(x)
    return apply(Softmax(normalize_axis(axis, x.ndim)), x, name=name)


@dataclass(frozen=True)
class LogSoftmax(Op):
    writes_out = True

    axis: int = -1

    def infer(self, x):
        normalize_axis(self.axis, x.ndim)
        return float_infer(x)

    def forward(self, x, out=None):
        out = np.subtract(x, x.max(axis=self.axis, keepdims=True), out=out)
        out -= np.log(np.exp(out).sum(axis=self.axis, keepdims=True))
        return out

    def grad(self, node, g):
        # d log_softmax: g - softmax * sum(g)
        total = sum(g, axis=self.axis, keepdims=True)
        return [subtract(g, multiply(exp(node), total))]


def log_softmax(x, axis: int = -1, name=None) -> Node:
    """x - logsumexp(x) along `axis`."""
    x = as_node(x)
    return apply(LogSoftmax(normalize_axis(axis, x.ndim)), x, name=name)
