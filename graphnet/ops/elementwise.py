"""Elementwise arithmetic, math functions, comparisons and selection.

Binary ops broadcast like NumPy; their gradients may have the broadcast
shape, and `gradients()` sums them back to each input's shape.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np

from graphnet import float32_math
from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.ops.shape import cast
from graphnet.shapes import broadcast_shapes


def binary_infer(*inputs: Node):
    """Broadcast shape and NumPy-promoted dtype of several inputs."""
    return broadcast_shapes(*(i.shape for i in inputs)), np.result_type(*(i.dtype for i in inputs))


def float_infer(x: Node):
    """Same shape and dtype, for math that only makes sense on floats."""
    if x.dtype.kind != "f":
        raise ShapeError(f"expects a floating-point input, got {x.dtype.name}; use gn.cast first")
    return x.shape, x.dtype


def _pair(a, b):
    """Both operands as nodes, a Python scalar taking the other's dtype."""
    if isinstance(a, Node):
        return a, as_node(b, like=a)
    if isinstance(b, Node):
        return as_node(a, like=b), b
    return as_node(a), as_node(b)


def zero(like: Node) -> Node:
    """A scalar 0 of `like`'s dtype."""
    return as_node(0, like=like)


# ------------------------------------------------------------ arithmetic


@dataclass(frozen=True)
class Add(Op):
    writes_out = True

    def infer(self, a, b):
        return binary_infer(a, b)

    def forward(self, a, b, out=None):
        return np.add(a, b, out=out)

    def grad(self, node, g):
        return [g, g]


def add(a, b, name=None) -> Node:
    """a + b with broadcasting."""
    return apply(Add(), *_pair(a, b), name=name)


@dataclass(frozen=True)
class Sub(Op):
    writes_out = True

    def infer(self, a, b):
        return binary_infer(a, b)

    def forward(self, a, b, out=None):
        return np.subtract(a, b, out=out)

    def grad(self, node, g):
        return [g, neg(g)]


def subtract(a, b, name=None) -> Node:
    """a - b with broadcasting."""
    return apply(Sub(), *_pair(a, b), name=name)


@dataclass(frozen=True)
class Mul(Op):
    writes_out = True

    def infer(self, a, b):
        return binary_infer(a, b)

    def forward(self, a, b, out=None):
        return np.multiply(a, b, out=out)

    def grad(self, node, g):
        a, b = node.inputs
        return [multiply(g, b), multiply(g, a)]


def multiply(a, b, name=None) -> Node:
    """a * b with broadcasting."""
    return apply(Mul(), *_pair(a, b), name=name)


@dataclass(frozen=True)
class Div(Op):
    writes_out = True

    def infer(self, a, b):
        shape, dtype = binary_infer(a, b)
        return shape, dtype if dtype.kind == "f" else np.dtype("float64")

    def forward(self, a, b, out=None):
        return np.true_divide(a, b, out=out)

    def grad(self, node, g):
        b = node.inputs[1]
        return [divide(g, b), neg(multiply(g, divide(node, b)))]


def divide(a, b, name=None) -> Node:
    """a / b (true division: integers give float64, as in NumPy)."""
    return apply(Div(), *_pair(a, b), name=name)


@dataclass(frozen=True)
class Neg(Op):
    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        return np.negative(x, out=out)

    def grad(self, node, g):
        return [neg(g)]


def neg(x, name=None) -> Node:
    """-x."""
    return apply(Neg(), as_node(x), name=name)


@dataclass(frozen=True)
class Pow(Op):
    writes_out = True

    def infer(self, a, b):
        return binary_infer(a, b)

    def forward(self, a, b, out=None):
        return np.power(a, b, out=out)

    def grad(self, node, g):
        a, b = node.inputs
        da = multiply(g, multiply(b, power(a, subtract(b, 1))))
        # NOTE: d/db a**b = log(a) a**b is only real for a > 0; 0 elsewhere.
        a_float, positive = cast(a, node.dtype), greater(a, 0)
        safe_log = where(positive, log(where(positive, a_float, 1)), zero(a_float))
        db = multiply(g, multiply(node, safe_log))
        return [da, db]


def power(a, b, name=None) -> Node:
    """a ** b with broadcasting."""
    return apply(Pow(), *_pair(a, b), name=name)


@dataclass(frozen=True)
class Maximum(Op):
    writes_out = True

    def infer(self, a, b):
        return binary_infer(a, b)

    def forward(self, a, b, out=None):
        return np.maximum(a, b, out=out)

    def grad(self, node, g):
        a, b = node.inputs
        a_wins = greater_equal(a, b)  # ties go to the first input, as in TensorFlow
        return [where(a_wins, g, zero(g)), where(a_wins, zero(g), g)]


def maximum(a, b, name=None) -> Node:
    """Elementwise larger of a and b."""
    return apply(Maximum(), *_pair(a, b), name=name)


@dataclass(frozen=True)
class Minimum(Op):
    writes_out = True

    def infer(self, a, b):
        return binary_infer(a, b)

    def forward(self, a, b, out=None):
        return np.minimum(a, b, out=out)

    def grad(self, node, g):
        a, b = node.inputs
        a_wins = less_equal(a, b)
        return [where(a_wins, g, zero(g)), where(a_wins, zero(g), g)]


def minimum(a, b, name=None) -> Node:
    """Elementwise smaller of a and b."""
    return apply(Minimum(), *_pair(a, b), name=name)


# ---------------------------------------------------------- unary math


@dataclass(frozen=True)
class Exp(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        return np.exp(x, out=out)

    def grad(self, node, g):
        return [multiply(g, node)]


def exp(x, name=None) -> Node:
    """e ** x."""
    return apply(Exp(), as_node(x), name=name)


@dataclass(frozen=True)
class Log(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        return np.log(x, out=out)

    def grad(self, node, g):
        return [divide(g, node.inputs[0])]


def log(x, name=None) -> Node:
    """Natural logarithm."""
    return apply(Log(), as_node(x), name=name)


@dataclass(frozen=True)
class Log1p(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        return np.log1p(x, out=out)

    def grad(self, node, g):
        return [divide(g, add(node.inputs[0], 1))]


def log1p(x, name=None) -> Node:
    """log(1 + x), accurate for small x."""
    return apply(Log1p(), as_node(x), name=name)


@dataclass(frozen=True)
class Cos(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        return np.cos(x, out=out)

    def grad(self, node, g):
        return [neg(multiply(g, sin(node.inputs[0])))]


def cos(x, name=None) -> Node:
    """Cosine (radians)."""
    return apply(Cos(), as_node(x), name=name)


@dataclass(frozen=True)
class Sin(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        return np.sin(x, out=out)

    def grad(self, node, g):
        return [multiply(g, cos(node.inputs[0]))]


def sin(x, name=None) -> Node:
    """Sine (radians)."""
    return apply(Sin(), as_node(x), name=name)


@dataclass(frozen=True)
class Floor(Op):
    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        return np.floor(x, out=out)


def floor(x, name=None) -> Node:
    """Largest integer <= x, in x's dtype; no gradient."""
    return apply(Floor(), as_node(x), name=name)


@dataclass(frozen=True)
class Sqrt(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        return np.sqrt(x, out=out)

    def grad(self, node, g):
        return [divide(multiply(g, 0.5), node)]


def sqrt(x, name=None) -> Node:
    """Square root."""
    return apply(Sqrt(), as_node(x), name=name)


@dataclass(frozen=True)
class Square(Op):
    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        return np.square(x, out=out)

    def grad(self, node, g):
        return [multiply(g, multiply(node.inputs[0], 2))]


def square(x, name=None) -> Node:
    """x * x."""
    return apply(Square(), as_node(x), name=name)


@dataclass(frozen=True)
class Abs(Op):
    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        return np.abs(x, out=out)

    def grad(self, node, g):
        return [multiply(g, sign(node.inputs[0]))]


def abs(x, name=None) -> Node:  # noqa: A001 - mirrors numpy.abs
    """|x|."""
    return apply(Abs(), as_node(x), name=name)


@dataclass(frozen=True)
class Sign(Op):
    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        return np.sign(x, out=out)


def sign(x, name=None) -> Node:
    """-1, 0 or 1 by the sign of x; no gradient."""
    return apply(Sign(), as_node(x), name=name)


def erf_float32(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """erf of float32 values by float32_math's formulas (within 1.6 ulp), as
    in-place NumPy passes over chunks that stay in cache, into `out` if given:
    3.2 ns per element here, against 15 for scipy.special.erf (which computes
    in float64). Scratch buffers are kept per thread: no allocation."""
    x = np.asarray(x, np.float32)
    if out is None or out.dtype != np.float32 or not out.flags.c_contiguous:
        value = erf_float32(x, np.empty(x.shape, np.float32))
        return value if out is None else _copy_into(out, value)
    flat, result = x.reshape(-1), out.reshape(-1)
    scratch = getattr(_ERF_SCRATCH, "buffers", None)
    if scratch is None:
        scratch = _ERF_SCRATCH.buffers = [*np.empty((3, _ERF_CHUNK), np.float32),
                                          *np.empty((2, _ERF_CHUNK), np.int32)]
    with np.errstate(over="ignore", invalid="ignore"):  # the form not selected may overflow
        for start in range(0, flat.size, _ERF_CHUNK):
            stop = min(start + _ERF_CHUNK, flat.size)
            _erf_chunk(flat[start:stop], result[start:stop],
                       *(buffer[:stop - start] for buffer in scratch + _ERF_LIMITS))
    return out


#: Elements per chunk of erf_float32 (measured: 32k beat 64k, 16k and 8k).
_ERF_CHUNK = 1 << 15
#: erf_float32's scratch buffers, one set per thread.
_ERF_SCRATCH = threading.local()
#: ERF_MAX and its square as arrays: np.minimum with a scalar runs 4x slower.
_ERF_LIMITS = [np.full(_ERF_CHUNK, float32_math.ERF_MAX),
               np.full(_ERF_CHUNK, float32_math.ERF_MAX * float32_math.ERF_MAX)]
for _limit in _ERF_LIMITS:
    _limit.setflags(write=False)
_SIGN_BIT = np.int32(-2**31)


def _erf_chunk(x, out, a, u, small, sign, near_zero, limit, limit_squared):
    """float32_math.erf_f32 over one chunk: both forms of erf(|x|), one
    selected, then x's sign. Selection and sign are integer bit operations,
    20 us per 32k elements where np.less, np.copysign and np.copyto with
    `where=` took 70; they give the same bits."""
    a_bits, u_bits = a.view(np.int32), u.view(np.int32)
    np.bitwise_and(x.view(np.int32), _SIGN_BIT, out=sign)   # read x first: out may be x
    np.abs(x, out=a)
    np.multiply(a, a, out=u)
    _poly(u, float32_math.ERF_SMALL, out=small)
    small *= a
    small += a                                          # a + a P(a**2)
    # near_zero: -1 (all bits set) where a < ERF_SPLIT, else 0; a's sign bit
    # is clear (NaN's too), so its bits as integers order like its values
    np.subtract(a_bits, float32_math.ERF_SPLIT.view(np.int32), out=near_zero)
    near_zero >>= 31
    np.minimum(u, limit_squared, out=u)                 # = min(a, max)**2: rounding is monotonic
    np.negative(u, out=u)
    np.exp(u, out=u)                                    # exp(-a**2)
    np.minimum(a, limit, out=a)
    a -= float32_math.ERF_MID
    _poly(a, float32_math.ERF_LARGE, out=out)
    out *= u
    np.subtract(float32_math.ONE, out, out=out)         # 1 - exp(-a**2) R(a - mid)
    out_bits = out.view(np.int32)
    np.bitwise_xor(out_bits, small.view(np.int32), out=u_bits)
    u_bits &= near_zero
    out_bits ^= u_bits                                  # small's bits where near_zero
    out_bits |= sign


def _poly(x, coefficients, out):
    """float32_math.poly in place: coefficients[0] + coefficients[1] x + ..."""
    np.multiply(x, coefficients[-1], out=out)
    for c in coefficients[-2:0:-1]:
        out += c
        out *= x
    out += coefficients[0]
    return out


@functools.cache
def _erf_kernel():
    """float32 (and narrower): erf_float32; float64: scipy's erf when
    installed, else math.erf per element (exact but slow: NumPy has no erf).
    Looked up on first use: importing scipy.special takes 0.4 s."""
    try:
        from scipy.special import erf as wide
    except ImportError:
        wide = np.vectorize(math.erf, otypes=[np.float64])
    return lambda x: erf_float32(x) if x.dtype.itemsize <= 4 else wide(x)


def _copy_into(out: np.ndarray, value: np.ndarray) -> np.ndarray:
    np.copyto(out, value)
    return out


@dataclass(frozen=True)
class Erf(Op):
    writes_out = True

    def infer(self, x):
        return float_infer(x)

    def forward(self, x, out=None):
        if x.dtype == np.float32:
            return erf_float32(x, out)
        value = np.asarray(_erf_kernel()(x), dtype=x.dtype)
        return value if out is None else _copy_into(out, value)

    def grad(self, node, g):
        x = node.inputs[0]
        return [multiply(g, multiply(exp(neg(square(x))), 2 / math.sqrt(math.pi)))]




def erf(x, name=None) -> Node:
    """The Gauss error function."""
    return apply(Erf(), as_node(x), name=name)


# --------------------------------------------------------- comparisons


def _compare_infer(a, b):
    return broadcast_shapes(a.shape, b.shape), np.dtype(bool)


@dataclass(frozen=True)
class Equal(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.equal(a, b, out=out)


@dataclass(frozen=True)
class NotEqual(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.not_equal(a, b, out=out)


@dataclass(frozen=True)
class Less(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.less(a, b, out=out)


@dataclass(frozen=True)
class LessEqual(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.less_equal(a, b, out=out)


@dataclass(frozen=True)
class Greater(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.greater(a, b, out=out)


@dataclass(frozen=True)
class GreaterEqual(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.greater_equal(a, b, out=out)


def equal(a, b, name=None) -> Node:
    """Elementwise a == b, as a bool node."""
    return apply(Equal(), *_pair(a, b), name=name)


def not_equal(a, b, name=None) -> Node:
    """Elementwise a != b, as a bool node."""
    return apply(NotEqual(), *_pair(a, b), name=name)


def less(a, b, name=None) -> Node:
    """Elementwise a < b, as a bool node."""
    return apply(Less(), *_pair(a, b), name=name)


def less_equal(a, b, name=None) -> Node:
    """Elementwise a <= b, as a bool node."""
    return apply(LessEqual(), *_pair(a, b), name=name)


def greater(a, b, name=None) -> Node:
    """Elementwise a > b, as a bool node."""
    return apply(Greater(), *_pair(a, b), name=name)


def greater_equal(a, b, name=None) -> Node:
    """Elementwise a >= b, as a bool node."""
    return apply(GreaterEqual(), *_pair(a, b), name=name)


@dataclass(frozen=True)
class LogicalAnd(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.logical_and(a, b, out=out)


@dataclass(frozen=True)
class LogicalOr(Op):
    writes_out = True

    def infer(self, a, b):
        return _compare_infer(a, b)

    def forward(self, a, b, out=None):
        return np.logical_or(a, b, out=out)


@dataclass(frozen=True)
class LogicalNot(Op):
    writes_out = True

    def infer(self, x):
        return x.shape, np.dtype(bool)

    def forward(self, x, out=None):
        return np.logical_not(x, out=out)


def logical_and(a, b, name=None) -> Node:
    """Elementwise a and b."""
    return apply(LogicalAnd(), *_pair(a, b), name=name)


def logical_or(a, b, name=None) -> Node:
    """Elementwise a or b."""
    return apply(LogicalOr(), *_pair(a, b), name=name)


def logical_not(x, name=None) -> Node:
    """Elementwise not x."""
    return apply(LogicalNot(), as_node(x), name=name)


# ------------------------------------------------------------ selection


@dataclass(frozen=True)
class Where(Op):
    writes_out = True

    def infer(self, cond, a, b):
        if cond.dtype != np.bool_:
            raise ShapeError(f"condition must be bool, got {cond.dtype.name}")
        return broadcast_shapes(cond.shape, a.shape, b.shape), np.result_type(a.dtype, b.dtype)

    def forward(self, cond, a, b, out=None):
        if out is None:
            return np.where(cond, a, b)
        np.copyto(out, b)
        np.copyto(out, a, where=cond)
        return out

    def grad(self, node, g):
        cond = node.inputs[0]
        return [None, where(cond, g, zero(g)), where(cond, zero(g), g)]


def where(cond, a, b, name=None) -> Node:
    """Elementwise `a` where `cond` is True, else `b`."""
    a, b = _pair(a, b)
    return apply(Where(), as_node(cond), a, b, name=name)


@dataclass(frozen=True)
class Clip(Op):
    writes_out = True

    low: float
    high: float

    def infer(self, x):
        if self.low > self.high:
            raise ShapeError(f"low {self.low} is above high {self.high}")
        return x.shape, x.dtype

    def forward(self, x, out=None):
        return np.clip(x, x.dtype.type(self.low), x.dtype.type(self.high), out=out)

    def grad(self, node, g):
        x = node.inputs[0]
        inside = logical_and(greater_equal(x, self.low), less_equal(x, self.high))
        return [where(inside, g, zero(g))]


def clip(x, low, high, name=None) -> Node:
    """x limited to [low, high]; the gradient is zero outside."""
    return apply(Clip(float(low), float(high)), as_node(x), name=name)
