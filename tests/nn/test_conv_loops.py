"""The convolution ops' Numba loops (Conv2DBackpropInput, Col2Im, and the
direct Conv2D and Conv2DBackpropFilter of few-channel convolutions) against
their NumPy kernels: the same values from plans compiled for either backend,
over strides, padding, dilation, groups and both im2col layouts."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.graph import apply
from graphnet.nn.conv import (
    DIRECT_OUTPUTS,
    Col2Im,
    Conv2D,
    Conv2DBackpropFilter,
    Conv2DBackpropInput,
    Im2Col,
)
from graphnet.testing import check_gradients

from .test_conv import CASES as CONV_CASES
from .test_conv import conv_reference

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


# One input channel, stride 1, few output channels: direct loops (no Im2Col)
DIRECT_CASES = [
    ("lenet-conv1", (3, 28, 28, 1), (5, 5, 1, 6), dict(padding="same")),
    ("valid-odd-sizes", (2, 9, 7, 1), (3, 2, 1, 3), {}),
    ("batch1-one-output", (1, 6, 5, 1), (2, 3, 1, 1), dict(padding="same")),
    ("explicit-padding", (2, 7, 6, 1), (3, 3, 1, 5), dict(padding=((2, 0), (1, 3)))),
    ("dilation2-same", (2, 9, 8, 1), (3, 3, 1, 4), dict(padding="same", dilation=2)),
    ("dilation12-valid", (1, 8, 9, 1), (2, 3, 1, 2), dict(dilation=(1, 2))),
    ("one-tap-row", (2, 5, 6, 1), (1, 5, 1, DIRECT_OUTPUTS), dict(padding="same")),
    ("one-output-row", (2, 3, 7, 1), (3, 3, 1, 7), {}),
]
DIRECT_IDS = [c[0] for c in DIRECT_CASES]
# Convolutions that keep im2col and NumPy's kernels under numba
FALLBACK_CASES = [
    ("three-channels", (2, 7, 7, 3), (3, 3, 3, 4), dict(padding="same")),
    ("many-outputs", (2, 6, 6, 1), (3, 3, 1, DIRECT_OUTPUTS + 1), dict(padding="same")),
    ("stride2", (2, 9, 9, 1), (3, 3, 1, 4), dict(strides=2, padding="same")),
]


def makes_patches(fetches, feeds, backend) -> bool:
    """Whether the plan for `fetches` has an im2col step."""
    plan = gn.compile(fetches, feeds=feeds, backend=backend)
    return any(isinstance(step.nodes[-1].op, Im2Col) for step in plan.steps)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", DIRECT_CASES + FALLBACK_CASES,
                         ids=DIRECT_IDS + [c[0] for c in FALLBACK_CASES])
def test_conv_and_filter_loops_match_numpy(label, x_shape, w_shape, kwargs, dtype):
    """y, dx and dw of a training step: the same on both backends and equal
    to the direct definition; only the direct cases under numba drop the
    Im2Col step."""
    x, w = gn.placeholder(x_shape, dtype), gn.placeholder(w_shape, dtype)
    y = gn.nn.conv2d(x, w, **kwargs)
    gy = gn.placeholder(y.shape, dtype)
    dx, dw = gn.gradients(y, [x, w], grad_ys=[gy])
    assert makes_patches([y, dw], [x, w, gy], "numpy")
    assert makes_patches([y, dw], [x, w, gy], "numba") == (label not in DIRECT_IDS)
    feed = {x: normal(x_shape, dtype, 0), w: normal(w_shape, dtype, 1),
            gy: normal(y.shape, dtype, 2)}
    values = on_both_backends([y, dx, dw], feed, ["conv2d", "conv2d_backprop_filter"])
    assert_agree(values, dtype)
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(values["numba"][0], conv_reference(feed[x], feed[w], **kwargs),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", DIRECT_CASES[1:], ids=DIRECT_IDS[1:])
def test_direct_loops_gradients_match_finite_differences(label, x_shape, w_shape, kwargs):
    """float64 gradients, first and second order, through plans that run
    the direct loops (the default backend, numba)."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    check_gradients(lambda x, w: gn.nn.conv2d(x, w, **kwargs), [x, w])

    def first_order(x, w):
        y = gn.nn.conv2d(x, w, **kwargs)
        return gn.gradients(gn.sum(y * y), [x, w])
    check_gradients(first_order, [x, w], rtol=1e-4)


def test_direct_loops_take_strided_mixed_inputs_with_or_without_out():
    """Strided arrays, a float32 input with a float64 kernel, and the
    planner's `out` buffer, against the NumPy kernels."""
    op = Conv2D((1, 1), "same", (1, 2))
    x = normal((5, 7, 2, 1), np.float32, 0).transpose(2, 1, 0, 3)    # (2, 7, 5, 1), strided
    w = normal((3, 3, 1, 5), np.float64, 1)[::-1]                     # negative strides
    expected = op.forward(x, w)
    assert expected.dtype == np.float64
    np.testing.assert_allclose(op.kernel("numba")(x, w), expected, rtol=1e-12, atol=1e-12)
    out = np.full_like(expected, np.nan)
    assert op.kernel("numba")(x, w, out=out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    g = normal((5, 7, 2, 5), np.float32, 2).transpose(2, 1, 0, 3)    # (2, 7, 5, 5), strided
    backprop = op.like(Conv2DBackpropFilter)
    np.testing.assert_allclose(backprop.kernel("numba")(x, g, w), backprop.forward(x, g, w),
                               rtol=1e-5, atol=1e-5)


def test_direct_loops_keep_buffers_per_size():
    """One plan fed two image sizes and the first again: the kept padded
    copies and output rows are per size (and their borders stay zero)."""
    x = gn.placeholder((None, None, None, 1), "float32")
    w = gn.constant(normal((3, 3, 1, 3), np.float32, 0))
    y = gn.nn.conv2d(x, w, padding="same")
    loss = gn.sum(y * y)
    fetches = [y, gn.gradients(loss, [w])[0]]
    assert not makes_patches(fetches, [x], "numba")
    plan = gn.compile(fetches, feeds=[x], backend="numba")
    session = gn.Session()
    for seed, shape in enumerate([(2, 6, 6, 1), (1, 9, 7, 1), (2, 6, 6, 1)]):
        xv = normal(shape, np.float32, seed + 1)
        got_y, got_dw = session.run(plan, {x: xv})
        expected = conv_reference(xv, w.op.value, padding="same")
        np.testing.assert_allclose(got_y, expected, rtol=1e-5, atol=1e-5)
        dw = Conv2D((1, 1), "same", (1, 1)).like(Conv2DBackpropFilter).forward(
            xv, 2 * expected, w.op.value)
        np.testing.assert_allclose(got_dw, dw, rtol=1e-4, atol=1e-4)


def test_unknown_channel_count_keeps_im2col():
    x = gn.placeholder((None, 8, 8, None), "float32")
    y = gn.nn.conv2d(x, gn.constant(np.ones((3, 3, 1, 2), np.float32)))
    assert makes_patches(y, [x], "numba")
