"""simplify: algebraic identities, one rule a row of RULES.

Each rule takes a node whose inputs are already simplified and returns a
replacement or None (see rewrite.apply_rules: a replacement of another
static shape or dtype is ignored, so `x * 1 -> x` does not fire where the 1
broadcasts x to a larger shape). Rules that would change values are guarded:
`x * 0` fires only when x cannot be inf or NaN, `exp(log(x))` only when x
cannot be negative. `log(exp(x)) -> x` always fires: it only differs where
exp overflows or underflows, and there x is the right answer.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from graphnet.compiler.rewrite import apply_rules, make, note_counts
from graphnet.graph import Constant, Graph, Node
from graphnet.ops.activations import Relu, Sigmoid, Softmax, Softplus
from graphnet.ops.elementwise import (
    Abs,
    Add,
    Div,
    Equal,
    Exp,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Log,
    LogicalAnd,
    LogicalOr,
    Maximum,
    Minimum,
    Mul,
    Neg,
    NotEqual,
    Pow,
    Sqrt,
    Square,
    Sub,
    Where,
)
from graphnet.ops.reductions import Reduction
from graphnet.ops.shape import (
    BroadcastTo,
    Cast,
    ExpandDims,
    FillLike,
    OneHot,
    Reshape,
    ReshapeLike,
    Squeeze,
    StopGradient,
    Transpose,
)
from graphnet.shapes import broadcast_shapes, is_static


def simplify(graph: Graph) -> Graph:
    """Apply RULES until none fires; explain() lists how often each fired."""
    counts = Counter()
    graph = apply_rules(graph, RULES, counts)
    note_counts(counts)
    return graph


# ------------------------------------------------------------- facts

#: Larger constants are not scanned for a uniform value.
UNIFORM_LIMIT = 1 << 16


def uniform(node: Node):
    """The one value every element of `node` has, if known now, else None."""
    op = node.op
    if isinstance(op, Constant):
        value = op.value
        if value.size == 1 or 0 < value.size <= UNIFORM_LIMIT and np.all(value == value.flat[0]):
            return value.flat[0]
    elif isinstance(op, BroadcastTo):
        return uniform(node.inputs[0])
    elif isinstance(op, FillLike) and is_static(node.shape):
        return node.dtype.type(op.value)
    return None


def is_finite(node: Node) -> bool:
    """True when no element can be inf or NaN."""
    op = node.op
    if node.dtype.kind in "biu" or isinstance(op, OneHot):
        return True
    if isinstance(op, Constant):
        return bool(np.isfinite(op.value).all())
    if isinstance(op, FillLike):
        return bool(np.isfinite(op.value))
    if isinstance(op, Cast):
        return node.inputs[0].dtype.kind in "biu"
    return isinstance(op, BroadcastTo) and is_finite(node.inputs[0])


_NONNEGATIVE = (Exp, Sigmoid, Softmax, Softplus, Square, Abs, Sqrt, Relu, OneHot)


def never_negative(node: Node, depth: int = 8) -> bool:
    """True when no element can be below zero (NaN allowed: it stays NaN).

    Sums, products and quotients of such values count too, looking at most
    `depth` ops up.
    """
    op = node.op
    if isinstance(op, _NONNEGATIVE) or node.dtype.kind in "bu":
        return True
    if isinstance(op, Constant):
        return not bool((op.value < 0).any())
    if isinstance(op, FillLike):
        return op.value >= 0
    if isinstance(op, Cast):
        return node.inputs[0].dtype.kind in "bu"
    if depth and isinstance(op, (BroadcastTo, Add, Mul, Div)):
        return all(never_negative(i, depth - 1) for i in node.inputs)
    return False


def zeros(node: Node):
    """Zeros with node's shape and dtype, without computing anything big."""
    scalar = np.zeros((), node.dtype)
    scalar.setflags(write=False)
    if not node.shape:
        return make(Constant(scalar), (), like=node)
    if is_static(node.shape):
        zero = make(Constant(scalar), (), like=node, suffix="zero")
        return make(BroadcastTo(node.shape), (zero,), like=node)
    same = next((i for i in node.inputs if i.shape == node.shape), None)
    return None if same is None else make(FillLike(0.0, node.dtype), (same,), like=node)


def reshape_target(shape: tuple):
    """`shape` for a Reshape: one unknown size becomes -1; two or more give None."""
    if sum(d is None for d in shape) > 1:
        return None
    return tuple(-1 if d is None else d for d in shape)


# ------------------------------------------------------------- rules


def times_one(node):
    """x * 1 -> x,  1 * x -> x"""
    a, b = node.inputs
    return a if uniform(b) == 1 else b if uniform(a) == 1 else None


def times_zero(node):
    """x * 0 -> 0 with x's shape, when x is finite (inf * 0 is NaN)"""
    a, b = node.inputs
    if (uniform(b) == 0 and is_finite(a)) or (uniform(a) == 0 and is_finite(b)):
        return zeros(node)
    return None


def over_one(node):
    """x / 1 -> x"""
    a, b = node.inputs
    return a if uniform(b) == 1 else None


def plus_zero(node):
    """x + 0 -> x,  0 + x -> x"""
    a, b = node.inputs
    return a if uniform(b) == 0 else b if uniform(a) == 0 else None


def minus_zero(node):
    """x - 0 -> x"""
    a, b = node.inputs
    return a if uniform(b) == 0 else None


def zero_minus(node):
    """0 - x -> -x"""
    a, b = node.inputs
    return make(Neg(), (b,), like=node) if uniform(a) == 0 else None


def plus_neg(node):
    """x + (-y) -> x - y,  (-x) + y -> y - x"""
    a, b = node.inputs
    if isinstance(b.op, Neg):
        return make(Sub(), (a, b.inputs[0]), like=node)
    if isinstance(a.op, Neg):
        return make(Sub(), (b, a.inputs[0]), like=node)
    return None


def minus_neg(node):
    """x - (-y) -> x + y"""
    a, b = node.inputs
    return make(Add(), (a, b.inputs[0]), like=node) if isinstance(b.op, Neg) else None


def neg_neg(node):
    """-(-x) -> x"""
    x = node.inputs[0]
    return x.inputs[0] if isinstance(x.op, Neg) else None


def power_one(node):
    """x ** 1 -> x"""
    a, b = node.inputs
    return a if uniform(b) == 1 else None


def power_two(node):
    """x ** 2 -> square(x)"""
    a, b = node.inputs
    return make(Square(), (a,), like=node) if uniform(b) == 2 else None


def log_exp(node):
    """log(exp(x)) -> x"""
    x = node.inputs[0]
    return x.inputs[0] if isinstance(x.op, Exp) else None


def exp_log(node):
    """exp(log(x)) -> x, when x is never negative"""
    x = node.inputs[0]
    if isinstance(x.op, Log) and never_negative(x.inputs[0]):
        return x.inputs[0]
    return None


def transpose_identity(node):
    """transpose(x, (0, 1, ..., n-1)) -> x"""
    return node.inputs[0] if node.op.perm == tuple(range(node.ndim)) else None


def transpose_transpose(node):
    """transpose(transpose(x, p), q) -> transpose(x, p[q])"""
    inner = node.inputs[0]
    if not isinstance(inner.op, Transpose):
        return None
    perm = tuple(inner.op.perm[i] for i in node.op.perm)
    return make(Transpose(perm), inner.inputs, like=node)


_RESHAPES = (Reshape, ExpandDims, Squeeze, ReshapeLike)


def reshape_noop(node):
    """reshape(x, x.shape) -> x  (also expand_dims, squeeze, reshape_like)"""
    x = node.inputs[0]
    return x if node.shape == x.shape and reshape_target(node.shape) is not None else None


def reshape_reshape(node):
    """reshape(reshape(x, s), t) -> reshape(x, t)  (any two of the reshape family)"""
    inner = node.inputs[0]
    if not isinstance(inner.op, _RESHAPES):
        return None
    target = node.op.shape if isinstance(node.op, Reshape) else reshape_target(node.shape)
    return None if target is None else make(Reshape(target), inner.inputs[:1], like=node)


def reduce_size_one(node):
    """sum(x, axes of size 1) -> x  (squeezed unless keepdims; also mean, max, ...)"""
    x = node.inputs[0]
    if any(x.shape[a] != 1 for a in node.op.axis):
        return None
    if node.op.keepdims or not node.op.axis:
        return x
    return make(Squeeze(node.op.axis), (x,), like=node)


def broadcast_noop(node):
    """broadcast_to(x, x.shape) -> x"""
    return node.inputs[0] if node.inputs[0].shape == node.shape else None


def broadcast_broadcast(node):
    """broadcast_to(broadcast_to(x, s), t) -> broadcast_to(x, t)"""
    inner = node.inputs[0]
    if not isinstance(inner.op, BroadcastTo):
        return None
    return make(node.op, inner.inputs, like=node)


_ELEMENTWISE = (Add, Sub, Mul, Div, Pow, Maximum, Minimum, Equal, NotEqual, Less, LessEqual,
                Greater, GreaterEqual, LogicalAnd, LogicalOr, Where)


def drop_broadcast(node):
    """f(x, broadcast_to(y, s)) -> f(x, y), when f's own broadcasting gives the same shape"""
    for i, inp in enumerate(node.inputs):
        if isinstance(inp.op, BroadcastTo):
            inputs = node.inputs[:i] + inp.inputs + node.inputs[i + 1:]
            if broadcast_shapes(*(n.shape for n in inputs)) == node.shape:
                return make(node.op, inputs, like=node)
    return None


def broadcast_later(node):
    """f(broadcast_to(y, s), c) -> broadcast_to(f(y, c), s), when the other
    inputs broadcast onto y: f then runs on y's few values (a mean's
    gradient), and the broadcast can drop into the next op"""
    if not is_static(node.shape):
        return None
    for i, inp in enumerate(node.inputs):
        if isinstance(inp.op, BroadcastTo):
            inputs = node.inputs[:i] + inp.inputs + node.inputs[i + 1:]
            shape = broadcast_shapes(*(n.shape for n in inputs))
            if is_static(shape) and np.prod(shape) < np.prod(node.shape):
                inner = make(node.op, inputs, like=node, suffix="unbroadcast")
                return make(BroadcastTo(node.shape), (inner,), like=node)
    return None


def cast_identity(node):
    """cast(x, x.dtype) -> x"""
    return node.inputs[0] if node.inputs[0].dtype == node.dtype else None


def cast_round_trip(node):
    """cast(cast(x, wider), x.dtype) -> x, when the wider type holds every x exactly"""
    inner = node.inputs[0]
    if isinstance(inner.op, Cast) and holds_exactly(inner.inputs[0].dtype, inner.dtype):
        return inner.inputs[0]
    return None


def holds_exactly(source: np.dtype, target: np.dtype) -> bool:
    """Every `source` value survives a round trip through `target`. NumPy
    calls int64 -> float64 safe, but 2**53 + 1 does not survive it."""
    if not np.can_cast(source, target, "safe"):
        return False
    return not (source.kind in "iu" and target.kind in "fc") or target.itemsize > source.itemsize


def stop_gradient_forward(node):
    """stop_gradient(x) -> x  (gradients are built before compiling)"""
    return node.inputs[0]


def where_same(node):
    """where(c, x, x) -> x"""
    _, a, b = node.inputs
    return a if a is b else None


RULES = [
    (Mul, times_one),                      # x * 1 -> x
    (Mul, times_zero),                     # x * 0 -> 0, x finite
    (Div, over_one),                       # x / 1 -> x
    (Add, plus_zero),                      # x + 0 -> x
    (Sub, minus_zero),                     # x - 0 -> x
    (Sub, zero_minus),                     # 0 - x -> -x
    (Add, plus_neg),                       # x + (-y) -> x - y
    (Sub, minus_neg),                      # x - (-y) -> x + y
    (Neg, neg_neg),                        # -(-x) -> x
    (Pow, power_one),                      # x ** 1 -> x
    (Pow, power_two),                      # x ** 2 -> square(x)
    (Log, log_exp),                        # log(exp(x)) -> x
    (Exp, exp_log),                        # exp(log(x)) -> x, x >= 0
    (Transpose, transpose_identity),       # transpose(x, identity) -> x
    (Transpose, transpose_transpose),      # transpose(transpose(x, p), q) -> transpose(x, p[q])
    (_RESHAPES, reshape_noop),             # reshape(x, x.shape) -> x
    ((Reshape, ExpandDims, Squeeze), reshape_reshape),  # reshape(reshape(x, s), t) -> reshape(x, t)
    (Reduction, reduce_size_one),          # sum(x, axes of size 1) -> x
    (BroadcastTo, broadcast_noop),         # broadcast_to(x, x.shape) -> x
    (BroadcastTo, broadcast_broadcast),    # broadcast_to(broadcast_to(x, s), t) -> ...(x, t)
    (_ELEMENTWISE, drop_broadcast),        # f(x, broadcast_to(y, s)) -> f(x, y)
    (_ELEMENTWISE, broadcast_later),       # f(broadcast_to(y, s), c) -> broadcast_to(f(y, c), s)
    (Cast, cast_identity),                 # cast(x, x.dtype) -> x
    (Cast, cast_round_trip),               # cast(cast(x, wider), x.dtype) -> x
    (StopGradient, stop_gradient_forward),  # stop_gradient(x) -> x
    (Where, where_same),                   # where(c, x, x) -> x
]
