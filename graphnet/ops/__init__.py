"""All ops, and the Python operators on nodes that build them."""

from graphnet.graph import Node
from graphnet.ops.activations import (
    gelu,
    leaky_relu,
    log_softmax,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from graphnet.ops.elementwise import (
    abs,
    add,
    clip,
    cos,
    divide,
    equal,
    erf,
    exp,
    floor,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    maximum,
    minimum,
    multiply,
    neg,
    not_equal,
    power,
    sign,
    sin,
    sqrt,
    square,
    subtract,
    where,
)
from graphnet.ops.indexing import argmax, argmin
from graphnet.ops.linalg import matmul
from graphnet.ops.reductions import max, mean, min, prod, sum
from graphnet.ops.shape import (
    broadcast_to,
    cast,
    concat,
    expand_dims,
    flatten,
    gather,
    getitem,
    one_hot,
    ones_like,
    reshape,
    split,
    squeeze,
    stack,
    stop_gradient,
    take_along_axis,
    transpose,
    unflatten,
    zeros_like,
)
from graphnet.ops.slicing import positions, read_at, write_at
from graphnet.ops.state import assign, assign_add, assign_sub, group

__all__ = [
    "abs", "add", "argmax", "argmin", "assign", "assign_add", "assign_sub", "broadcast_to", "cast",
    "clip", "concat", "cos", "divide", "equal", "erf", "exp", "expand_dims", "flatten", "floor",
    "gather", "gelu", "getitem", "greater", "greater_equal", "group", "leaky_relu", "less",
    "less_equal", "log", "log1p", "log_softmax", "logical_and", "logical_not", "logical_or",
    "matmul", "max", "maximum", "mean", "min", "minimum", "multiply", "neg", "not_equal",
    "one_hot", "ones_like", "positions", "power", "prod", "read_at", "relu", "reshape", "sigmoid",
    "sign", "sin", "softmax", "softplus", "split", "sqrt", "square", "squeeze", "stack",
    "stop_gradient", "subtract", "sum", "take_along_axis", "tanh", "transpose", "unflatten",
    "where", "write_at", "zeros_like",
]

Node.__add__ = lambda self, other: add(self, other)
Node.__radd__ = lambda self, other: add(other, self)
Node.__sub__ = lambda self, other: subtract(self, other)
Node.__rsub__ = lambda self, other: subtract(other, self)
Node.__mul__ = lambda self, other: multiply(self, other)
Node.__rmul__ = lambda self, other: multiply(other, self)
Node.__truediv__ = lambda self, other: divide(self, other)
Node.__rtruediv__ = lambda self, other: divide(other, self)
Node.__pow__ = lambda self, other: power(self, other)
Node.__rpow__ = lambda self, other: power(other, self)
Node.__matmul__ = lambda self, other: matmul(self, other)
Node.__rmatmul__ = lambda self, other: matmul(other, self)
Node.__neg__ = lambda self: neg(self)
Node.__abs__ = lambda self: abs(self)
Node.__lt__ = lambda self, other: less(self, other)
Node.__le__ = lambda self, other: less_equal(self, other)
Node.__gt__ = lambda self, other: greater(self, other)
Node.__ge__ = lambda self, other: greater_equal(self, other)
Node.__getitem__ = lambda self, index: getitem(self, index)
