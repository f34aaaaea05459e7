"""Activations and (log-)softmax, driven by one table."""

import math
from functools import partial

import numpy as np
import pytest

import graphnet as gn
from graphnet.graph import apply
from graphnet.ops.activations import SMALL_SOFTMAX, Softmax, SoftmaxGrad
from graphnet.testing import check_gradients

from .optable import (
    Inputs,
    OpCase,
    forward_params,
    gradient_params,
    np_erf,
    run_forward,
    run_gradient,
)

R = Inputs(seed=2)
LARGE = np.array([-1000.0, -80.0, -30.0, -0.5, 0.5, 30.0, 80.0, 1000.0])


def np_sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))


def np_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def np_gelu(x, approximate=False):
    if approximate:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + np_erf(x / math.sqrt(2)))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


CASES = [
    OpCase("sigmoid", gn.sigmoid, [R.normal(2, 3)], np_sigmoid),
    OpCase("sigmoid", gn.sigmoid, [LARGE], np_sigmoid, "large |x|", eps=1e-4),
    OpCase("tanh", gn.tanh, [R.normal(2, 3)], np.tanh),
    OpCase("relu", gn.relu, [R.nonzero(2, 3)], lambda x: np.maximum(x, x.dtype.type(0))),
    OpCase("leaky_relu", gn.leaky_relu, [R.nonzero(2, 3)], lambda x: np.where(x > 0, x, 0.2 * x)),
    OpCase("leaky_relu", partial(gn.leaky_relu, alpha=0.01), [R.nonzero(5)],
           lambda x: np.where(x > 0, x, 0.01 * x), "alpha=0.01"),
    OpCase("softplus", gn.softplus, [R.normal(2, 3)], np_softplus),
    OpCase("softplus", gn.softplus, [LARGE], np_softplus, "large |x|", eps=1e-4),
    OpCase("gelu", gn.gelu, [R.normal(2, 3)], np_gelu, "exact"),
    OpCase("gelu", partial(gn.gelu, approximate=True), [R.normal(2, 3)],
           partial(np_gelu, approximate=True), "tanh"),
    OpCase("gelu", gn.gelu, [LARGE[1:-1]], np_gelu, "exact large |x|", eps=1e-4),
]
for _axis in (-1, 0, 1):
    for _op, _np in (("softmax", np_softmax), ("log_softmax", np_log_softmax)):
        CASES.append(OpCase(_op, partial(getattr(gn, _op), axis=_axis), [R.normal(2, 3, 4)],
                            partial(_np, axis=_axis), f"axis={_axis}"))
CASES += [
    OpCase("softmax", gn.softmax, [LARGE.reshape(2, 4)], np_softmax, "large |x|", eps=1e-4),
    OpCase("log_softmax", gn.log_softmax, [LARGE.reshape(2, 4)], np_log_softmax, "large |x|",
           eps=1e-4),
    OpCase("softmax", gn.softmax, [R.normal(5)], np_softmax, "1-D"),
]


@pytest.mark.parametrize("case, dtype, dynamic", forward_params(CASES))
def test_forward(case, dtype, dynamic):
    run_forward(case, dtype, dynamic)


@pytest.mark.parametrize("case, order, dynamic", gradient_params(CASES))
def test_gradient(case, order, dynamic):
    run_gradient(case, order, dynamic)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fn", [gn.sigmoid, gn.softplus, gn.tanh, gn.log_softmax, gn.softmax,
                                gn.gelu, partial(gn.gelu, approximate=True)])
def test_large_inputs_give_finite_values_and_gradients(fn, dtype):
    x = gn.placeholder(LARGE.shape, dtype)
    y = fn(x)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value, grad = gn.Session().run([y, gn.gradients(gn.sum(y * y), x)], {x: LARGE})
    assert value.dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))


def test_sigmoid_and_softplus_limits():
    x = gn.constant(np.array([-1000.0, 1000.0]))
    sig, soft = gn.Session().run([gn.sigmoid(x), gn.softplus(x)])
    np.testing.assert_array_equal(sig, [0.0, 1.0])
    np.testing.assert_array_equal(soft, [0.0, 1000.0])


def test_softmax_rows_sum_to_one_on_any_axis():
    x = gn.constant(np.random.default_rng(0).standard_normal((2, 3, 4)))
    for axis in (0, 1, 2, -1):
        total = gn.Session().run(gn.sum(gn.softmax(x, axis=axis), axis=axis))
        np.testing.assert_allclose(total, 1.0)


# ------------------------------------------------ softmax's backward op


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_grad_op_gradients(axis):
    """SoftmaxGrad(g, y) = y * (g - sum(g * y)) for any y, and its own gradients."""
    g, y = R.normal(3, 5), R.uniform(0.1, 1.0, 3, 5)
    value = gn.Session().run(apply(SoftmaxGrad(axis), gn.constant(g), gn.constant(y)))
    np.testing.assert_allclose(value, y * (g - (g * y).sum(axis, keepdims=True)), rtol=1e-12)
    check_gradients(lambda g, y: apply(SoftmaxGrad(axis), g, y), [g, y])


# ------------------------------------------------ compiled loops (numba)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("x, axis", [
    (R.normal(5), -1),                                   # up to SMALL_SOFTMAX: one loop
    (R.normal(3, 7), -1),
    (R.normal(2, 3, 4, 64) * 30, -1),                    # above: loops around NumPy's exp
    (np.tile(LARGE, (3, 1)), -1),                        # large |x|
    (np.array([[-np.inf, 0.0, 1.0], [2.0, -np.inf, -np.inf]]), -1),  # -inf: masked
    (R.normal(4, 6), 0),                                 # not the last axis: NumPy
])
def test_numba_softmax_loops_match_numpy(x, axis, dtype):
    """Softmax and SoftmaxGrad under the numba backend agree with the NumPy
    kernels, give finite values, and the plan runs them as numba steps."""
    pytest.importorskip("numba")
    assert x.size <= SMALL_SOFTMAX or x.size > 1000   # both softmax loops are tried
    node = gn.placeholder(x.shape, dtype)
    y = gn.softmax(node, axis=axis)
    weights = gn.constant(R.normal(*x.shape), dtype)
    fetches = [y, *gn.gradients(gn.sum(y * weights), [node])]
    values = {}
    for backend in ("numpy", "numba"):
        plan = gn.compile(fetches, feeds=[node], backend=backend, disable=["fuse_elementwise"])
        kinds = {s.nodes[-1].op.kind: s.kernel for s in plan.steps}
        assert kinds["softmax"] == kinds["softmax_grad"] == backend
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            values[backend] = gn.Session().run(plan, {node: x.astype(dtype)})
    tight = dtype == "float64"
    for got, expected in zip(values["numba"], values["numpy"], strict=True):
        assert got.dtype == expected.dtype == dtype and np.all(np.isfinite(got))
        np.testing.assert_allclose(got, expected, rtol=1e-12 if tight else 1e-5,
                                   atol=1e-12 if tight else 1e-6)


def test_numba_softmax_kernels_take_strided_inputs_and_no_out_buffer():
    pytest.importorskip("numba")
    x, g = R.normal(8, 6).astype(np.float32).T, R.normal(8, 6).astype(np.float32).T
    y = Softmax(1).forward(x)
    for op, args in [(Softmax(1), (x,)), (SoftmaxGrad(1), (g, y))]:
        np.testing.assert_allclose(op.kernel("numba")(*args), op.forward(*args),
                                   rtol=1e-6, atol=1e-7, err_msg=op.kind)
