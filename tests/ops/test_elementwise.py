"""Elementwise arithmetic, math, comparisons and selection, driven by one table."""

import math

import numpy as np
import pytest

import graphnet as gn

from .optable import (
    Inputs,
    OpCase,
    forward_params,
    gradient_params,
    np_erf,
    run_forward,
    run_gradient,
)

R = Inputs(seed=1)


def away_from(x, points, margin=0.05):
    """x with entries within `margin` of a kink moved `2 * margin` past it."""
    x = np.array(x)
    for p in points:
        near = np.abs(x - p) < margin
        x[near] = p + np.where(x[near] >= p, 2 * margin, -2 * margin)
    return x


CASES = [
    # arithmetic, with broadcasting and Python scalars
    OpCase("add", gn.add, [R.normal(3, 1), R.normal(4)], np.add, "(3,1)+(4,)"),
    OpCase("add", lambda a, b: a + b, [R.normal(2, 3, 4), R.normal(4)], label="op (2,3,4)+(4,)"),
    OpCase("add", lambda a, b: a + b, [R.normal(2, 1, 3), R.normal(4, 1)], label="(2,1,3)+(4,1)"),
    OpCase("add", lambda a, b: a + b, [R.normal(), R.normal(2, 3)], label="scalar+(2,3)"),
    OpCase("add", lambda a: 2.0 + a, [R.normal(3)], label="2.0+x"),
    OpCase("add", lambda a, b: a + b, [R.normal(3).astype("float32"), R.normal(3)],
           label="float32+float64", dtypes=(), grad=False),
    OpCase("add", lambda a, b: a + b, [R.ints(0, 9, 3, dtype="int32"), R.ints(0, 9, 2, 3)],
           label="int32+int64", grad=False),
    OpCase("subtract", gn.subtract, [R.normal(3, 1), R.normal(4)], np.subtract, "(3,1)-(4,)"),
    OpCase("subtract", lambda a: 1 - a, [R.normal(2, 3)], label="1-x"),
    OpCase("multiply", gn.multiply, [R.normal(2, 3, 4), R.normal(4)], np.multiply,
           "(2,3,4)*(4,)"),
    OpCase("multiply", lambda a, b: a * b, [R.normal(3, 1), R.normal(1, 4)], label="(3,1)*(1,4)"),
    OpCase("multiply", lambda a: a * 3, [R.normal(2, 2)], label="x*3"),
    OpCase("divide", gn.divide, [R.normal(3, 1), R.nonzero(4)], np.divide, "(3,1)/(4,)"),
    OpCase("divide", lambda a: 1 / a, [R.nonzero(2, 3)], label="1/x"),
    OpCase("divide", lambda a, b: a / b, [R.ints(0, 9, 3), R.ints(1, 9, 3)], label="int/int",
           grad=False),
    OpCase("neg", gn.neg, [R.normal(2, 3)], np.negative),
    OpCase("neg", lambda a: -a, [R.normal(3)], label="-x"),
    OpCase("power", gn.power, [R.positive(3, 1), R.uniform(-1.5, 1.5, 4)], np.power,
           "both inputs (3,1)**(4,)"),
    OpCase("power", lambda a: a ** 2, [R.normal(2, 3)], label="x**2"),
    OpCase("power", lambda a: a ** 3, [R.normal(4)], label="x**3 negative base"),
    OpCase("power", lambda a: 2.0 ** a, [R.normal(3)], label="2.0**x"),
    # unary math on safe domains
    OpCase("exp", gn.exp, [R.normal(2, 3)], np.exp),
    OpCase("log", gn.log, [R.positive(2, 3)], np.log),
    OpCase("log1p", gn.log1p, [R.uniform(-0.5, 2, 2, 3)], np.log1p),
    OpCase("sqrt", gn.sqrt, [R.positive(2, 3)], np.sqrt),
    OpCase("square", gn.square, [R.normal(2, 3)], np.square),
    OpCase("abs", gn.abs, [R.nonzero(2, 3)], np.abs),
    OpCase("abs", lambda a: abs(a), [R.nonzero(4)], label="abs(x)"),
    OpCase("sign", gn.sign, [R.nonzero(2, 3)], np.sign),
    OpCase("erf", gn.erf, [R.normal(2, 3)], np_erf),
    OpCase("sin", gn.sin, [R.normal(2, 3) * 3], np.sin),
    OpCase("cos", gn.cos, [R.normal(2, 3) * 3], np.cos),
    OpCase("floor", gn.floor, [away_from(R.normal(2, 3) * 3, range(-9, 10))], np.floor,
           "zero gradient"),
    OpCase("floor", gn.floor, [R.ints(-5, 5, 4)], np.floor, "int", grad=False),
    # selection
    OpCase("maximum", gn.maximum, [R.normal(3, 1), R.normal(4)], np.maximum, "(3,1),(4,)"),
    OpCase("maximum", lambda a: gn.maximum(a, 0.0), [R.nonzero(2, 3)],
           lambda a: np.maximum(a, a.dtype.type(0)), "x,0.0"),
    OpCase("minimum", gn.minimum, [R.normal(3, 1), R.normal(4)], np.minimum, "(3,1),(4,)"),
    OpCase("minimum", lambda a: gn.minimum(1.0, a), [away_from(R.normal(2, 3), [1])],
           lambda a: np.minimum(a.dtype.type(1), a), "1.0,x"),
    OpCase("where", gn.where, [R.bools(3, 1), R.normal(4), R.normal(2, 1, 1)], np.where,
           "broadcast (3,1),(4,),(2,1,1)"),
    OpCase("where", lambda a: gn.where(a > 0, a, 0.1 * a), [R.nonzero(2, 3)],
           lambda a: np.where(a > 0, a, 0.1 * a), "leaky"),
    OpCase("clip", lambda a: gn.clip(a, -0.5, 0.5), [away_from(R.normal(3, 4), [-0.5, 0.5])],
           lambda a: np.clip(a, -0.5, 0.5), "[-0.5,0.5]"),
    OpCase("clip", lambda a: gn.clip(a, 0, 10), [R.ints(-5, 15, 6)],
           lambda a: np.clip(a, 0, 10), "int", grad=False),
]

# comparisons and logic: forward and dtype rule only (no gradient)
_A = R.ints(0, 3, 3, 1).astype(np.float64)
_B = R.ints(0, 3, 4).astype(np.float64)  # small integers, so ties occur
for _op, _np in [("equal", np.equal), ("not_equal", np.not_equal), ("less", np.less),
                 ("less_equal", np.less_equal), ("greater", np.greater),
                 ("greater_equal", np.greater_equal)]:
    CASES.append(OpCase(_op, getattr(gn, _op), [_A, _B], _np, "(3,1),(4,) with ties", grad=False))
CASES += [
    OpCase("less", lambda a, b: a < b, [_A, _B], label="operator <", grad=False),
    OpCase("greater_equal", lambda a: a >= 1, [_B], label="operator >= scalar", grad=False),
    OpCase("logical_and", gn.logical_and, [R.bools(3, 1), R.bools(4)], np.logical_and,
           grad=False),
    OpCase("logical_or", gn.logical_or, [R.bools(3, 1), R.bools(4)], np.logical_or, grad=False),
    OpCase("logical_not", gn.logical_not, [R.bools(2, 3)], np.logical_not, grad=False),
]


@pytest.mark.parametrize("case, dtype, dynamic", forward_params(CASES))
def test_forward(case, dtype, dynamic):
    run_forward(case, dtype, dynamic)


@pytest.mark.parametrize("case, order, dynamic", gradient_params(CASES))
def test_gradient(case, order, dynamic):
    run_gradient(case, order, dynamic)


def test_placeholder_with_none_dims_broadcasts():
    x = gn.placeholder((None, 3), "float32")
    b = gn.placeholder((3,), "float32")
    y = x * b + 1.0
    assert y.shape == (None, 3) and y.dtype == np.float32
    xv, bv = np.ones((5, 3), np.float32), np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(gn.Session().run(y, {x: xv, b: bv}), xv * bv + 1)


def test_none_against_one_stays_none_and_broadcast_gradient_sums_at_run_time():
    # a None size might be 1 at run time, so the gradient's reduction is decided then
    x = gn.placeholder((None, 1), "float64")
    y = gn.placeholder((None, 4), "float64")
    assert (x * y).shape == (None, 4)
    dx, dy = gn.gradients(gn.sum(x * y), [x, y])
    xv, yv = np.arange(3.0).reshape(3, 1), np.ones((3, 4))
    got_dx, got_dy = gn.Session().run([dx, dy], {x: xv, y: yv})
    np.testing.assert_allclose(got_dx, np.full((3, 1), 4.0))
    np.testing.assert_allclose(got_dy, np.broadcast_to(xv, (3, 4)))


def test_maximum_ties_go_to_first_input():
    a, b = gn.constant(np.ones(3)), gn.constant(np.ones(3))
    da, db = gn.Session().run(gn.gradients(gn.sum(gn.maximum(a, b)), [a, b]))
    np.testing.assert_array_equal(da, np.ones(3))
    np.testing.assert_array_equal(db, np.zeros(3))


def test_sign_and_comparisons_pass_no_gradient():
    x = gn.constant(np.array([-1.0, 2.0]))
    g = gn.gradients(gn.sum(gn.sign(x) + gn.where(x > 0, 1.0, 0.0)), x)
    np.testing.assert_array_equal(gn.Session().run(g), np.zeros(2))


def test_power_gradient_with_integer_base_and_float_exponent():
    # d/db a**b for an integer-valued a still has to build (log needs a float)
    a = gn.constant(np.array([2, 3]))
    b = gn.constant(np.array([1.5, 0.5]))
    db = gn.gradients(gn.sum(gn.power(a, b)), b)
    np.testing.assert_allclose(gn.Session().run(db), np.log([2, 3]) * np.power([2, 3], [1.5, 0.5]))


def test_float32_erf_is_within_float32_precision():
    from graphnet.ops.elementwise import erf_float32
    x = np.concatenate([np.linspace(-6, 6, 100_002, dtype=np.float32),
                        np.float32([np.nan, np.inf, -np.inf, -0.0, 1e-40, 1e30])])
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    got = erf_float32(x.reshape(3, -1)).reshape(-1)  # shapes and chunks of 32k elements
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, exact, rtol=2e-7, atol=1e-45)
    assert np.signbit(got[-3])


def test_float32_erf_writes_into_out_even_over_its_input():
    from graphnet.ops.elementwise import Erf, erf_float32
    x = np.linspace(-5, 5, 70_001, dtype=np.float32)   # three chunks, the last one short
    expected = erf_float32(x)
    out = np.empty_like(x)
    assert erf_float32(x, out) is out
    np.testing.assert_array_equal(out, expected)
    strided = np.empty(2 * x.size, np.float32)[::2]
    assert erf_float32(x, strided) is strided
    np.testing.assert_array_equal(strided, expected)
    same = x.copy()
    np.testing.assert_array_equal(erf_float32(same, same), expected)
    wide = np.empty(3)
    assert Erf().forward(np.array([-1.0, 0.5, 2.0]), out=wide) is wide
    np.testing.assert_allclose(wide, [math.erf(v) for v in (-1.0, 0.5, 2.0)], rtol=1e-15)
