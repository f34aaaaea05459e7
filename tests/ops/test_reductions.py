"""Reductions over every kind of axis argument, driven by one table."""

from functools import partial

import numpy as np
import pytest

import graphnet as gn

from .optable import Inputs, OpCase, forward_params, gradient_params, run_forward, run_gradient

R = Inputs(seed=3)

AXES = [  # (axis, keepdims)
    (None, False), (None, True), (1, False), (-1, False), (0, True), ((0, 2), False),
    ((-1, 0), True), ((), False),
]
REDUCTIONS = [  # op, NumPy reference, input maker (no ties for max/min, no zeros for prod)
    ("sum", np.sum, R.normal),
    ("mean", np.mean, R.normal),
    ("max", np.max, R.normal),
    ("min", np.min, R.normal),
    ("prod", np.prod, R.nonzero),
]

CASES = [
    OpCase(op, partial(getattr(gn, op), axis=axis, keepdims=keepdims), [make(2, 3, 4)],
           partial(ref, axis=axis, keepdims=keepdims), f"axis={axis},keepdims={keepdims}")
    for op, ref, make in REDUCTIONS for axis, keepdims in AXES
]
CASES += [
    OpCase(op, getattr(gn, op), [make()], ref, "0-d input") for op, ref, make in REDUCTIONS
]
CASES += [  # integer and bool inputs follow NumPy's result dtypes
    OpCase(op, partial(getattr(gn, op), axis=0), [R.ints(-3, 4, 3, 2, dtype=dtype)],
           partial(ref, axis=0), f"{dtype}", grad=False)
    for op, ref, _ in REDUCTIONS for dtype in ("int32", "int64", "uint8")
]
CASES += [
    OpCase("sum", gn.sum, [R.bools(3, 4)], np.sum, "bool", grad=False),
    OpCase("mean", lambda x: gn.mean(x, axis=1), [R.normal(3, 1, 2)],
           lambda x: np.mean(x, axis=1), "size-1 axis"),
]


@pytest.mark.parametrize("case, dtype, dynamic", forward_params(CASES))
def test_forward(case, dtype, dynamic):
    run_forward(case, dtype, dynamic)


@pytest.mark.parametrize("case, order, dynamic", gradient_params(CASES))
def test_gradient(case, order, dynamic):
    run_gradient(case, order, dynamic)


def test_mean_over_a_none_dimension_divides_by_the_run_time_size():
    x = gn.placeholder((None, 3), "float64")
    m = gn.mean(x, axis=0)
    assert m.shape == (3,)
    g = gn.gradients(gn.sum(m), x)
    for rows in (2, 5):
        value, grad = gn.Session().run([m, g], {x: np.ones((rows, 3))})
        np.testing.assert_allclose(value, np.ones(3))
        np.testing.assert_allclose(grad, np.full((rows, 3), 1 / rows))


def test_reduction_shape_rule_keeps_none():
    x = gn.placeholder((None, 3, None), "float32")
    assert gn.sum(x, axis=1).shape == (None, None)
    assert gn.max(x, axis=-1, keepdims=True).shape == (None, 3, 1)
    assert gn.mean(x).shape == ()


@pytest.mark.parametrize("op", ["max", "min"])
def test_ties_share_the_gradient(op):
    x = gn.constant(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    grad = gn.Session().run(gn.gradients(gn.sum(getattr(gn, op)(x, axis=1)), x))
    expected = [[0, 0.5, 0.5], [1 / 3] * 3] if op == "max" else [[1, 0, 0], [1 / 3] * 3]
    np.testing.assert_allclose(grad, expected)


@pytest.mark.parametrize("axis", [3, -4, (0, 0)])
def test_bad_axes_raise_at_build_time(axis):
    with pytest.raises(gn.ShapeError):
        gn.sum(gn.placeholder((2, 3, 4)), axis=axis)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", [((50, 7, 6), (0, 1)), ((300, 3), 0),
                                         ((4, 5, 6, 2), (0, 1, 2))])
def test_sum_over_leading_axes_as_a_matrix_product(shape, axis, keepdims, dtype):
    """The plan's kernel for a bias gradient's sum (ones @ x) agrees with np.sum,
    into a planned buffer and as a fresh array, and for a non-contiguous view."""
    x = gn.placeholder(shape, dtype)
    value = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    expected = np.sum(value.astype(np.float64), axis=axis, keepdims=keepdims)
    total = gn.sum(x, axis=axis, keepdims=keepdims)
    flipped = gn.sum(x[::-1], axis=axis, keepdims=keepdims)  # a strided view
    tol = 1e-5 if dtype == "float32" else 1e-12
    for optimize in (True, False):
        plan = gn.compile([total, flipped], feeds=[x], optimize=optimize)
        for result in plan([value], []):
            assert result.dtype == dtype and result.shape == expected.shape
            np.testing.assert_allclose(result, expected, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", [((32,), None), ((4, 5, 6), None), ((32, 10), 0),
                                         ((50, 7, 6), (0, 1)), ((3, 4), 1), ((200, 100), 0)])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_small_sums_and_means_agree_on_both_backends(op, shape, axis, keepdims, dtype):
    """Under numba, small sums and means over leading axes (a bias gradient,
    the mean of a batch's losses) run as loops; the NumPy backend's mean
    runs np.mean's own steps: bitwise np.mean."""
    x = gn.placeholder(shape, dtype)
    value = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    expected = getattr(np, op)(value, axis=axis, keepdims=keepdims)
    out = getattr(gn, op)(x, axis=axis, keepdims=keepdims)
    for backend in ("numpy", "numba"):
        if backend == "numba" and not gn.compiler.kernels.numba_available():
            continue
        plan = gn.compile([out, out * 1.5], feeds=[x], backend=backend)
        got = plan([value], [])[0]
        assert got.dtype == expected.dtype and got.shape == expected.shape
        if backend == "numpy" and op == "mean":
            np.testing.assert_array_equal(got, expected)
        else:
            tol = 1e-5 if dtype == "float32" else 1e-12
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
