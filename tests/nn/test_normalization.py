"""Fused batch and layer normalization: values against NumPy and against the
same maths in primitive ops, gradients (first and second order) against
finite differences, and shape errors."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.graph import apply
from graphnet.nn.normalization import (
    Normalize,
    NormalizeGammaGrad,
    NormalizeGrad,
    normalize_composite,
)
from graphnet.testing import check_gradients


def run(fetches, feed=None):
    return gn.Session().run(fetches, feed or {})


def normal(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def numpy_normalize(x, axis, eps):
    mean = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


# ------------------------------------------------------------ layer norm


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_matches_numpy(dtype):
    x, gamma, beta = normal(4, 3, 8).astype(dtype), normal(8, seed=1), normal(8, seed=2)
    y = run(gn.nn.layer_norm(gn.constant(x), gn.constant(gamma, dtype), gn.constant(beta, dtype)))
    expected = numpy_normalize(x.astype(np.float64), -1, 1e-5) * gamma + beta
    assert y.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-5)


@pytest.mark.parametrize("axis, param_shape", [(-1, (6,)), ((1, 2), (5, 6)), (1, (5,))])
def test_layer_norm_gradients(axis, param_shape):
    check_gradients(lambda x, g, b: gn.nn.layer_norm(x, g, b, axis=axis),
                    [normal(3, 5, 6), normal(*param_shape, seed=1), normal(*param_shape, seed=2)])


def test_layer_norm_second_derivatives():
    def first_order(x, g, b):
        y = gn.nn.layer_norm(x, g, b)
        return gn.gradients(gn.sum(gn.tanh(y) * x), [x, g, b])
    check_gradients(first_order, [normal(3, 5), normal(5, seed=1), normal(5, seed=2)], rtol=1e-4)


def test_layer_norm_without_scale_and_shift_has_zero_mean_unit_variance():
    y = run(gn.nn.layer_norm(gn.constant(normal(4, 16) * 3 + 1)))
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(-1), 1, rtol=1e-4)


@pytest.mark.parametrize("axis, param_shape", [
    ((1, 2), (4, 3)),     # trailing axes, as layer norm
    ((0, 1), (3,)),       # leading axes, as batch norm (rows folded together)
    ((0, 1), (4, 3)),     # leading axes, parameters per position and channel
    ((0,), (1, 4, 3)),    # leading axes, parameters with a leading 1
    ((1, 2), (1, 1, 3)),  # trailing axes, parameters with leading 1s
    ((1,), (1, 4, 1)),    # neither: the generic path
])
def test_fused_ops_match_the_primitive_composition(axis, param_shape):
    """Value and all three gradients, fused vs written with primitive ops."""
    x_value = normal(6, 4, 3) * 2 + 1
    x = gn.placeholder((None, 4, 3), "float64")
    gamma = gn.constant(normal(*param_shape, seed=1))
    beta = gn.constant(normal(*param_shape, seed=2))
    weights = gn.constant(normal(6, 4, 3, seed=3))
    fused = apply(Normalize(axis, 1e-5), x, gamma, beta)
    composite = normalize_composite(x, gamma, beta, axis, 1e-5)
    outputs = []
    for y in (fused, composite):
        outputs.append(run([y, *gn.gradients(gn.sum(y * weights), [x, gamma, beta])], {x: x_value}))
    for got, expected in zip(*outputs, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert {n.op.kind for n in gn.Graph(gn.gradients(gn.sum(fused), [x, gamma])).nodes} >= {
        "normalize_grad", "normalize_gamma_grad"}


def numpy_layer_norm_grads(x, gamma, g, eps):
    """(dx, dgamma) of sum(layer_norm(x) * g), normalized over the last axis."""
    xhat = numpy_normalize(x, -1, eps)
    inv_std = 1 / np.sqrt(x.var(-1, keepdims=True) + eps)
    h = g * gamma
    dx = inv_std * (h - h.mean(-1, keepdims=True) - xhat * (h * xhat).mean(-1, keepdims=True))
    return dx, (g * xhat).reshape(-1, x.shape[-1]).sum(0)


def test_numpy_kernels_keep_scratch_per_shape_and_dtype():
    """A plan step's NumPy kernels keep scratch buffers between calls: each
    call still gets its own result when batch size and dtype change between."""
    forward, dx, dgamma = (op.kernel("numpy") for op in (
        Normalize((2,), 1e-5), NormalizeGrad((2,), 1e-5), NormalizeGammaGrad((2,), 1e-5)))
    for call, (batch, dtype) in enumerate([(3, "float32"), (5, "float32"), (3, "float64"),
                                           (3, "float32")]):
        x = normal(batch, 4, 8, seed=call) * 2 + 1
        g, gamma, beta = normal(batch, 4, 8, seed=call + 10), normal(8, seed=1), normal(8, seed=2)
        expected_dx, expected_dgamma = numpy_layer_norm_grads(x, gamma, g, 1e-5)
        x, g, gamma, beta = (a.astype(dtype) for a in (x, g, gamma, beta))
        tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == "float32" else {"rtol": 1e-10}
        out = np.empty_like(x)
        assert forward(x, gamma, beta, out=out) is out
        np.testing.assert_allclose(out, numpy_normalize(x.astype(np.float64), -1, 1e-5) * gamma
                                   + beta, **tol)
        np.testing.assert_allclose(dx(x, gamma, g), expected_dx, **tol)
        assert dx(x, gamma, g, out=out) is out
        np.testing.assert_allclose(out, expected_dx, **tol)
        assert dgamma(x, g, gamma).dtype == dtype
        np.testing.assert_allclose(dgamma(x, g, gamma), expected_dgamma, **tol)


def test_layer_norm_parameters_of_the_wrong_size():
    with pytest.raises(gn.ShapeError, match=r"parameter \(5,\) does not broadcast to the input "
                                            r"\(None, 8\)"):
        gn.nn.layer_norm(gn.placeholder((None, 8)), gn.constant(np.ones(5, np.float32)))


# ------------------------------------------------------------ batch norm


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 2)])
def test_batch_norm_training_matches_numpy(shape):
    x = normal(*shape)
    gamma, beta = normal(shape[-1], seed=1), normal(shape[-1], seed=2)
    y, mean, var = run(list(gn.nn.batch_norm_training(gn.constant(x), gn.constant(gamma),
                                                      gn.constant(beta), eps=1e-3)))
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(y, numpy_normalize(x, axes, 1e-3) * gamma + beta, rtol=1e-12)
    np.testing.assert_allclose(mean, x.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(var, x.var(axis=axes), rtol=1e-12)


def test_batch_norm_training_gradients_nhwc():
    check_gradients(lambda x, g, b: gn.nn.batch_norm_training(x, g, b)[0],
                    [normal(3, 2, 3, 4), normal(4, seed=1), normal(4, seed=2)])


def test_batch_norm_training_channels_first_axis():
    x = normal(3, 4, 2, 2)
    gamma = normal(4, seed=1)
    y, mean, _ = run(list(gn.nn.batch_norm_training(gn.constant(x), gn.constant(gamma), axis=1)))
    expected = numpy_normalize(x, (0, 2, 3), 1e-3) * gamma[:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    assert mean.shape == (4,)
    check_gradients(lambda x, g: gn.nn.batch_norm_training(x, g, axis=1)[0],
                    [x, gamma])


def test_batch_norm_training_second_derivatives():
    def first_order(x, g):
        y, _, _ = gn.nn.batch_norm_training(x, g)
        return gn.gradients(gn.sum(y * y * x), [x, g])
    check_gradients(first_order, [normal(5, 3), normal(3, seed=1)], rtol=1e-4)


def test_batch_norm_inference_matches_numpy():
    x, mean, var = normal(4, 3, 3, 5), normal(5, seed=1), np.abs(normal(5, seed=2)) + 0.5
    gamma, beta = normal(5, seed=3), normal(5, seed=4)
    y = run(gn.nn.batch_norm(gn.constant(x), gn.constant(mean), gn.constant(var),
                             gn.constant(gamma), gn.constant(beta), eps=1e-3))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-12)


def test_batch_norm_inference_with_keepdims_statistics():
    x, mean, var = normal(2, 3, 3, 4), normal(1, 1, 1, 4), np.abs(normal(1, 1, 1, 4)) + 0.5
    y = run(gn.nn.batch_norm(gn.constant(x), gn.constant(mean), gn.constant(var)))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-12)


def test_batch_norm_inference_gradients_for_every_input():
    def build(x, mean, var, gamma, beta):
        return gn.nn.batch_norm(x, mean, var, gamma, beta)
    check_gradients(build, [normal(6, 3), normal(3, seed=1), np.abs(normal(3, seed=2)) + 0.5,
                            normal(3, seed=3), normal(3, seed=4)])


def test_batch_norm_inference_second_derivatives():
    def first_order(x, var, gamma):
        y = gn.nn.batch_norm(x, gn.constant(0.5), var, gamma, None)
        return gn.gradients(gn.sum(y * y), [x, var, gamma])
    check_gradients(first_order, [normal(4, 3), np.abs(normal(3, seed=2)) + 0.5,
                                  normal(3, seed=3)], rtol=1e-4)


def test_batch_norm_needs_a_batch_axis():
    with pytest.raises(gn.ShapeError, match=r"expects an input with a batch and a channel axis"):
        gn.nn.batch_norm_training(gn.placeholder((8,)))


def test_batch_norm_is_for_floats():
    with pytest.raises(gn.ShapeError, match="expects a floating-point input, got int64"):
        gn.nn.batch_norm_training(gn.placeholder((None, 8), "int64"))


def test_moments_match_numpy():
    x = normal(5, 4)
    mean, var = run(list(gn.nn.moments(gn.constant(x), axis=0)))
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(var, x.var(0))


# ------------------------------------------------ compiled loops (numba)

NORMALIZE_KINDS = {"normalize", "normalize_grad", "normalize_gamma_grad"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, axis, param_shape", [
    ((5, 7), -1, (7,)),
    ((4, 3, 16), -1, (16,)),
    ((4, 3, 16), -1, (1, 1, 16)),      # parameters with leading 1s
    ((3, 4, 5, 6), (2, 3), (5, 6)),    # two normalized axes
    ((3, 5, 6), (1, 2), (6,)),         # parameters broadcast over a normalized axis
    ((6, 4, 3), (0, 1), (3,)),         # batch norm layout: the loops leave it to NumPy
])
def test_numba_loops_match_numpy(shape, axis, param_shape, dtype):
    """Layer norm and its two backward ops under the numba backend agree with
    the NumPy kernels, and the plan runs them as numba steps (batch norm's
    layout, over axis 0, as numpy steps)."""
    pytest.importorskip("numba")
    x = gn.placeholder(shape, dtype)
    gamma = gn.placeholder(param_shape, dtype)
    beta = gn.placeholder(param_shape, dtype)
    weights = gn.constant(normal(*shape, seed=3), dtype)
    y = gn.nn.layer_norm(x, gamma, beta, axis=axis)
    fetches = [y, *gn.gradients(gn.sum(y * weights), [x, gamma, beta])]
    feed = {x: (normal(*shape) * 3 + 5).astype(dtype),
            gamma: normal(*param_shape, seed=1).astype(dtype),
            beta: normal(*param_shape, seed=2).astype(dtype)}
    values = {}
    for backend in ("numpy", "numba"):
        plan = gn.compile(fetches, feeds=list(feed), backend=backend, disable=["fuse_elementwise"])
        kinds = {s.nodes[-1].op.kind: s.kernel for s in plan.steps}
        looped = "numpy" if 0 in np.atleast_1d(axis) else backend
        assert {kinds[k] for k in NORMALIZE_KINDS} == {looped}
        values[backend] = gn.Session().run(plan, feed)
    tight = dtype == "float64"
    for got, expected in zip(values["numba"], values["numpy"], strict=True):
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_allclose(got, expected, rtol=1e-10 if tight else 1e-4,
                                   atol=1e-10 if tight else 1e-4)


def test_numba_kernels_take_strided_inputs_and_no_out_buffer():
    pytest.importorskip("numba")
    from graphnet.nn.normalization import NormalizeGammaGrad, NormalizeGrad
    x = normal(8, 6).astype(np.float32).T          # (6, 8), not contiguous
    g = normal(8, 6, seed=1).astype(np.float32).T
    gamma, beta = normal(8, seed=2).astype(np.float32), normal(8, seed=3).astype(np.float32)
    for op, args in [(Normalize((1,), 1e-5), (x, gamma, beta)),
                     (NormalizeGrad((1,), 1e-5), (x, gamma, g)),
                     (NormalizeGammaGrad((1,), 1e-5), (x, g, gamma))]:
        np.testing.assert_allclose(op.kernel("numba")(*args), op.forward(*args),
                                   rtol=1e-5, atol=1e-5, err_msg=op.kind)
