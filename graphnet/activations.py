"""Activation functions by name, for layers' `activation=` argument."""

from __future__ import annotations

import graphnet.ops as ops
from graphnet.graph import Node


def linear(x: Node) -> Node:
    """The identity."""
    return x


def elu(x: Node, alpha: float = 1.0) -> Node:
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""
    # NOTE: exp is taken of min(x, 0) so large positive x cannot overflow.
    return ops.where(ops.greater(x, 0), x, ops.multiply(ops.exp(ops.minimum(x, 0)) - 1, alpha))


def swish(x: Node) -> Node:
    """x * sigmoid(x) (also called SiLU)."""
    return ops.multiply(x, ops.sigmoid(x))


_BY_NAME = {
    "linear": linear, "relu": ops.relu, "sigmoid": ops.sigmoid, "tanh": ops.tanh,
    "softmax": ops.softmax, "log_softmax": ops.log_softmax, "leaky_relu": ops.leaky_relu,
    "gelu": ops.gelu, "elu": elu, "swish": swish, "silu": swish, "softplus": ops.softplus,
}


def get(identifier):
    """An activation by name (`"relu"`), None (linear) or a callable passed through."""
    if identifier is None:
        return linear
    if callable(identifier):
        return identifier
    try:
        return _BY_NAME[identifier]
    except KeyError:
        raise ValueError(f"unknown activation {identifier!r}; valid names: "
                         f"{', '.join(sorted(_BY_NAME))}") from None
