"""The convolution ops' Numba loops (Conv2DBackpropInput, Col2Im) against
their NumPy kernels: the same values from plans compiled for either backend,
over strides, padding, dilation, groups and both im2col layouts."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.graph import apply
from graphnet.nn.conv import Col2Im, Conv2DBackpropInput, Im2Col

from .test_conv import CASES as CONV_CASES

pytest.importorskip("numba")

# test_conv's cases, and LeNet's second convolution
CASES = CONV_CASES + [("lenet-conv2", (3, 14, 14, 6), (5, 5, 6, 16), {})]
IDS = [c[0] for c in CASES]


def normal(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def on_both_backends(fetches, feed, looped):
    """{backend: values} from plans compiled for each backend, checking that
    the steps of kinds `looped` run that backend's kernels."""
    values = {}
    for backend in ("numpy", "numba"):
        plan = gn.compile(fetches, feeds=list(feed), backend=backend)
        kinds = {s.nodes[-1].op.kind: s.kernel for s in plan.steps}
        assert {kinds[k] for k in looped} == {backend}
        values[backend] = gn.Session().run(plan, feed)
    return values


def assert_agree(values, dtype):
    tight = dtype == "float64"
    for got, expected in zip(values["numba"], values["numpy"], strict=True):
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=1e-10 if tight else 1e-4,
                                   atol=1e-10 if tight else 1e-4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", CASES, ids=IDS)
def test_backprop_input_loop_matches_numpy(label, x_shape, w_shape, kwargs, dtype):
    x, w = gn.placeholder(x_shape, dtype), gn.placeholder(w_shape, dtype)
    y = gn.nn.conv2d(x, w, **kwargs)
    gy = gn.placeholder(y.shape, dtype)
    dx, dw = gn.gradients(y, [x, w], grad_ys=[gy])
    feed = {x: normal(x_shape, dtype, 0), w: normal(w_shape, dtype, 1),
            gy: normal(y.shape, dtype, 2)}
    assert_agree(on_both_backends([dx, dw], feed, ["conv2d_backprop_input"]), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label, x_shape, w_shape, kwargs",
                         [c for c in CASES if c[0] != "groups2"],
                         ids=[i for i in IDS if i != "groups2"])
def test_col2im_loop_matches_numpy(label, x_shape, w_shape, kwargs, dtype):
    """Col2Im, the gradient of Im2Col, in both patch-matrix layouts."""
    x = gn.placeholder(x_shape, dtype)
    kernel = gn.constant(np.zeros(w_shape, dtype))
    op = gn.nn.conv2d(x, kernel, **kwargs).op.like(Im2Col)
    cols = apply(op, x, kernel)
    gcols = gn.placeholder(cols.shape, dtype)
    dx = gn.gradients(cols, x, grad_ys=[gcols])
    feed = {x: normal(x_shape, dtype, 0), gcols: normal(cols.shape, dtype, 1)}
    assert_agree(on_both_backends([dx], feed, ["col2im"]), dtype)


def test_loops_take_strided_inputs_with_or_without_out():
    x = np.zeros((2, 9, 8, 3), np.float32)
    w = normal((3, 5, 4, 3), np.float32, 0).transpose(0, 1, 3, 2)   # (3, 5, 3, 4), strided
    backprop = Conv2DBackpropInput((1, 2), "same", (1, 1))
    g = normal((4, 4, 9, 2), np.float32, 1).transpose(3, 2, 1, 0)   # (2, 9, 4, 4), strided
    col2im = backprop.like(Col2Im)
    cols = normal((3 * 5 * 3, 2 * 9 * 4), np.float32, 2).T          # rows layout, strided
    for op, args in [(backprop, (g, w, x)), (col2im, (cols, w, x))]:
        expected = op.forward(*args)
        np.testing.assert_allclose(op.kernel("numba")(*args), expected, rtol=1e-5, atol=1e-5)
        out = np.full_like(expected, np.nan)
        assert op.kernel("numba")(*args, out=out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
