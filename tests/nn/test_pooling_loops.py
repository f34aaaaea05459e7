"""The pooling ops' Numba loops against their NumPy kernels: the same values
from plans compiled for either backend, with ties, NaN, -inf, overlapping
windows and every kind of padding."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.nn.pooling import AvgPool2D, AvgPool2DGrad, MaxPool2D, MaxPool2DGrad

pytest.importorskip("numba")

# label, x shape, pool_size, strides, padding
CASES = [
    ("2x2", (3, 6, 8, 5), 2, None, "valid"),
    ("2x2-odd-size", (2, 5, 7, 3), 2, None, "valid"),
    ("2x2-same-odd-size", (2, 5, 7, 3), 2, None, "same"),
    ("2x2-stride1-overlapping", (2, 5, 6, 3), 2, 1, "valid"),   # NumPy's kernels
    ("2x2-padding-before", (1, 5, 5, 2), 2, 2, ((1, 0), (1, 0))),
    ("3x3-stride2-overlapping", (2, 7, 7, 3), 3, 2, "valid"),
    ("3x3-stride1-same", (1, 5, 6, 2), 3, 1, "same"),           # NumPy's kernels
    ("3x2-strides21-overlapping", (2, 7, 5, 3), (3, 2), (2, 1), "valid"),
    ("2x3-strides12-same", (2, 5, 7, 2), (2, 3), (1, 2), "same"),
    ("3x3-stride2-explicit", (1, 6, 5, 2), 3, 2, 1),
]
IDS = [c[0] for c in CASES]
POOLS = {"max": gn.nn.max_pool2d, "avg": gn.nn.avg_pool2d}
LOOPED = {"max": ("max_pool2d", "max_pool2d_grad"), "avg": ("avg_pool2d", "avg_pool2d_grad")}


def ties(shape, dtype, seed=0):
    """Small integers: most windows hold tied maxima, many of them zeros."""
    return np.random.default_rng(seed).integers(-2, 3, shape).astype(dtype)


def pool_and_gradient(kind, x_value, g_seed=1, **kwargs):
    """{backend: [y, dx]} from plans compiled for each backend, which run the
    pooling steps with that backend's kernels (NumPy's at stride 1)."""
    x = gn.placeholder(x_value.shape, x_value.dtype.name)
    y = POOLS[kind](x, **kwargs)
    gy = gn.placeholder(y.shape, x_value.dtype.name)
    dx = gn.gradients(y, x, grad_ys=[gy])
    feed = {x: x_value, gy: np.random.default_rng(g_seed).standard_normal(y.shape)
            .astype(x_value.dtype)}
    values = {}
    for backend in ("numpy", "numba"):
        plan = gn.compile([y, dx], feeds=[x, gy], backend=backend)
        kinds = {s.nodes[-1].op.kind: s.kernel for s in plan.steps}
        expected = backend if y.op.strides != (1, 1) else "numpy"
        assert {kinds[k] for k in LOOPED[kind]} == {expected}
        values[backend] = gn.Session().run(plan, feed)
    return values


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label, shape, pool, strides, padding", CASES, ids=IDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_loops_match_numpy_kernels(kind, label, shape, pool, strides, padding, dtype):
    values = pool_and_gradient(kind, ties(shape, dtype), pool_size=pool, strides=strides,
                               padding=padding)
    tight = dtype == "float64"   # overlapping windows add up in another order
    for got, expected in zip(values["numba"], values["numpy"], strict=True):
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=1e-12 if tight else 1e-5,
                                   atol=1e-12 if tight else 1e-6)


@pytest.mark.parametrize("pool, strides", [(2, None), (3, 2)])
def test_max_pool_loops_keep_nan_and_infinity_semantics(pool, strides):
    """NaN wins a window and passes no gradient; a window of -inf next to
    padding gives its gradient to its first real -inf, not to the padding."""
    x = ties((2, 5, 7, 3), "float32")
    x[0, 1, 2, 1] = np.nan
    x[1, :2, :2] = -np.inf
    x[1, 4, :, 0] = -np.inf
    values = pool_and_gradient("max", x, pool_size=pool, strides=strides, padding="same")
    for got, expected in zip(values["numba"], values["numpy"], strict=True):
        np.testing.assert_array_equal(got, expected)
    y, dx = values["numba"]
    assert np.isnan(y[0, 0, 1, 1]) and np.isneginf(y[1, 0, 0, 0])
    assert np.all(dx[1, 0, 0] != 0)   # the top-left window's -inf, not its padding


def test_max_pool_second_derivatives_agree():
    """Second order runs MaxPool2DGather (NumPy) beside the gradient loop."""
    x = gn.placeholder((2, 5, 6, 3), "float64")
    y = gn.nn.max_pool2d(x, 3, 2, "same")
    (dx,) = gn.gradients(gn.sum(y * y * y), [x])
    (ddx,) = gn.gradients(gn.sum(dx * dx), [x])
    feed = {x: np.random.default_rng(0).permutation(180).reshape(2, 5, 6, 3) * 0.01}
    values = [gn.Session().run(gn.compile([dx, ddx], feeds=[x], backend=backend), feed)
              for backend in ("numpy", "numba")]
    for got, expected in zip(*values, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_windows_at_stride_1_keep_the_numpy_kernels():
    x = gn.placeholder((None, 8, 8, 3))
    assert gn.nn.max_pool2d(x, 3, 1).op.backends == gn.nn.avg_pool2d(x, 2, 1).op.backends == ()
    assert gn.nn.max_pool2d(x, 2).op.backends == gn.nn.avg_pool2d(x, 3, (1, 2)).op.backends \
        == ("numba",)


@pytest.mark.parametrize("op", [
    MaxPool2D((2, 2), (2, 2), "same"), MaxPool2D((3, 3), (2, 1), ((1, 1), (1, 1))),
    AvgPool2D((2, 2), (1, 2), "same")], ids=["max2x2", "max3x3", "avg"])
def test_loops_take_strided_inputs_with_or_without_out(op):
    x = ties((3, 4, 5, 7), "float32").transpose(3, 1, 2, 0)   # (7, 4, 5, 3), not contiguous
    y = op.forward(x)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)[..., ::-1]
    grad = op.like(MaxPool2DGrad if isinstance(op, MaxPool2D) else AvgPool2DGrad)
    grad_args = (x, y, g) if isinstance(op, MaxPool2D) else (g, x)
    for o, args in [(op, (x,)), (grad, grad_args)]:
        expected = o.forward(*args)
        np.testing.assert_allclose(o.kernel("numba")(*args), expected, rtol=1e-5, atol=1e-6)
        out = np.full_like(expected, np.nan)
        assert o.kernel("numba")(*args, out=out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
