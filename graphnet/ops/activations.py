"""Activation functions and (log-)softmax over any axis."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from graphnet.graph import Node, Op, apply, as_node
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

    axis: int = -1

    def infer(self, x):
        normalize_axis(self.axis, x.ndim)
        return float_infer(x)

    def forward(self, x, out=None):
        out = np.subtract(x, x.max(axis=self.axis, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=self.axis, keepdims=True)
        return out

    def grad(self, node, g):
        # d softmax: y * (g - sum(g * y))
        dot = sum(multiply(g, node), axis=self.axis, keepdims=True)
        return [multiply(node, subtract(g, dot))]


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
