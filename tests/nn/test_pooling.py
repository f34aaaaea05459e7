"""gn.nn.max_pool2d and avg_pool2d: forward against direct loops, shape
rules, ties, closed forms, errors and float64 gradient checks (with second
derivatives)."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.nn.windows import canonical_padding, same_padding
from graphnet.testing import check_gradients


def pool_reference(x, pool, strides, padding, kind):
    """Direct loop over output pixels (tests only); padding never counts."""
    ph, pw = (pool, pool) if isinstance(pool, int) else pool
    strides = (ph, pw) if strides is None else strides
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    pads = canonical_padding(padding)
    if pads == "same":
        pads = (same_padding(x.shape[1], ph, sh), same_padding(x.shape[2], pw, sw))
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=np.nan)
    ho = (xp.shape[1] - ph) // sh + 1
    wo = (xp.shape[2] - pw) // sw + 1
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]), x.dtype)
    reduce = np.nanmax if kind == "max" else np.nanmean
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = reduce(xp[:, i * sh:i * sh + ph, j * sw:j * sw + pw], axis=(1, 2))
    return out


# label, x shape, pool_size, strides, padding
CASES = [
    ("2x2", (2, 4, 6, 3), 2, None, "valid"),
    ("2x2-odd-size", (1, 5, 5, 2), 2, None, "valid"),
    ("3x3-stride2-overlapping", (2, 7, 7, 2), 3, 2, "valid"),
    ("3x3-stride1-same", (1, 5, 6, 2), 3, 1, "same"),
    ("2x2-same-odd-size", (1, 5, 7, 2), 2, None, "same"),
    ("2x3-strides12-same", (2, 5, 7, 2), (2, 3), (1, 2), "same"),
    ("3x3-stride2-explicit", (1, 6, 5, 2), 3, 2, 1),
]
IDS = [c[0] for c in CASES]
POOLS = {"max": gn.nn.max_pool2d, "avg": gn.nn.avg_pool2d}


def run(fetches, feed=None):
    return gn.Session().run(fetches, feed or {})


def distinct(shape, seed=0):
    """Values at least 0.01 apart, so finite differences never flip a maximum."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("label, shape, pool, strides, padding", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_direct_loop(kind, label, shape, pool, strides, padding, dtype):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    xn = gn.placeholder(shape, dtype)
    y = POOLS[kind](xn, pool, strides, padding)
    value = run(y, {xn: x})
    assert value.dtype == dtype and y.shape == value.shape
    np.testing.assert_allclose(value, pool_reference(x, pool, strides, padding, kind), rtol=1e-6)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("label, shape, pool, strides, padding", CASES, ids=IDS)
def test_gradients_match_finite_differences(kind, label, shape, pool, strides, padding):
    check_gradients(lambda x: POOLS[kind](x, pool, strides, padding), [distinct(shape)])


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_gradients_with_sizes_unknown_at_build_time(kind):
    check_gradients(lambda x: POOLS[kind](x, 3, 2, "same"), [distinct((2, 5, 6, 2))], dynamic=True)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("label, shape, pool, strides, padding", [CASES[2], CASES[5]],
                         ids=[IDS[2], IDS[5]])
def test_second_derivatives(kind, label, shape, pool, strides, padding):
    def first_order(x):
        y = POOLS[kind](x, pool, strides, padding)
        return gn.gradients(gn.sum(y * y * y), x)
    check_gradients(first_order, [distinct(shape)], rtol=1e-4)


def test_max_pool_gradient_goes_to_the_first_of_tied_maxima():
    """All-zero windows (after a ReLU) pass the gradient once, not four times."""
    x = gn.placeholder((1, 4, 4, 1), "float64")
    dx = run(gn.gradients(gn.sum(gn.nn.max_pool2d(x, 2)), x), {x: np.zeros((1, 4, 4, 1))})
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_overlapping_max_pool_gradients_accumulate():
    """One large value that is the maximum of every 3x3 window gets them all."""
    image = np.zeros((1, 5, 5, 1))
    image[0, 2, 2, 0] = 9.0
    x = gn.placeholder((1, 5, 5, 1), "float64")
    dx = run(gn.gradients(gn.sum(gn.nn.max_pool2d(x, 3, strides=1)), x), {x: image})
    assert dx[0, 2, 2, 0] == 9 and dx.sum() == 9


def max_pool_grad_reference(x, g, pool, strides, padding):
    """g of each window added at its first maximum in row-major order,
    never at padding (tests only)."""
    ph, pw = (pool, pool) if isinstance(pool, int) else pool
    sh, sw = (ph, pw) if strides is None else (
        (strides, strides) if isinstance(strides, int) else strides)
    pads = canonical_padding(padding)
    if pads == "same":
        pads = (same_padding(x.shape[1], ph, sh), same_padding(x.shape[2], pw, sw))
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=np.nan)
    dxp = np.zeros(xp.shape)
    for n, i, j, c in np.ndindex(g.shape):
        window = xp[n, i * sh:i * sh + ph, j * sw:j * sw + pw, c]
        real = ~np.isnan(window)
        a, b = np.argwhere(real & (window == window[real].max()))[0]   # row-major order
        dxp[n, i * sh + a, j * sw + b, c] += g[n, i, j, c]
    return dxp[:, pads[0][0]:pads[0][0] + x.shape[1], pads[1][0]:pads[1][0] + x.shape[2]]


@pytest.mark.parametrize("label, shape, pool, strides, padding", CASES, ids=IDS)
def test_max_pool_grad_kernel_keeps_buffers_per_shape(label, shape, pool, strides, padding):
    """One NumPy kernel, as a plan step holds it, run on inputs of 3, 5 and
    again 3 images (the second also one pixel larger, so "same" pads it
    differently): ties go to the first maximum in row-major order, never
    to padding, even of -infs; overlapping windows accumulate; the gather
    kernel stays its adjoint."""
    from graphnet.nn.pooling import MaxPool2DGather, MaxPool2DGrad
    op = gn.nn.max_pool2d(gn.placeholder((None, None, None, shape[3])), pool, strides, padding).op
    grad, gather = op.like(MaxPool2DGrad).kernel("numpy"), op.like(MaxPool2DGather).kernel("numpy")
    _, h, w, c = shape
    for run_index, x_shape in enumerate([(3, h, w, c), (5, h + 1, w + 1, c), (3, h, w, c)]):
        rng = np.random.default_rng(run_index)
        x = rng.integers(-1, 2, x_shape).astype(float)   # ties in most windows
        x[0, :2, :2] = -np.inf
        y = pool_reference(x, pool, strides, padding, "max")
        g = rng.standard_normal(y.shape)
        expected = max_pool_grad_reference(x, g, pool, strides, padding)
        out = np.full_like(x, np.nan)
        assert grad(x, y, g, out=out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-12)
        np.testing.assert_allclose(grad(x, y, g), expected, rtol=1e-12)
        v = rng.standard_normal(x.shape)
        np.testing.assert_allclose(np.sum(gather(x, y, v) * g), np.sum(v * expected), rtol=1e-12)


def test_avg_pool_of_a_constant_is_the_constant_even_with_same_padding():
    x = gn.constant(np.full((2, 5, 7, 3), 2.5))
    for padding in ("valid", "same"):
        np.testing.assert_allclose(run(gn.nn.avg_pool2d(x, 3, 2, padding)), 2.5)


def test_avg_pool_gradient_spreads_evenly():
    x = gn.placeholder((1, 4, 4, 1), "float64")
    dx = run(gn.gradients(gn.sum(gn.nn.avg_pool2d(x, 2)), x), {x: np.ones((1, 4, 4, 1))})
    np.testing.assert_allclose(dx, 0.25)


def test_strides_default_to_the_pool_size():
    y = gn.nn.max_pool2d(gn.placeholder((None, 28, 28, 6)), 2)
    assert y.shape == (None, 14, 14, 6)
    assert y.op.strides == (2, 2) and y.name == "max_pool2d"


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_wrong_rank_is_a_build_time_error(kind):
    with pytest.raises(gn.ShapeError, match=rf"{kind}_pool2d '{kind}_pool2d': expects 4-D NHWC "
                                            r"input, got \(None, 28, 28\)"):
        POOLS[kind](gn.placeholder((None, 28, 28)), 2)


def test_window_larger_than_input_is_a_build_time_error():
    with pytest.raises(gn.ShapeError, match="pooling window 3x3 is larger than the padded input 2"):
        gn.nn.max_pool2d(gn.placeholder((None, 2, 8, 1)), 3)


def test_padding_as_large_as_the_window_is_a_build_time_error():
    with pytest.raises(gn.ShapeError, match=r"padding \(\(2, 2\), \(0, 0\)\) must be smaller than "
                                            r"the pooling window 2x2"):
        gn.nn.max_pool2d(gn.placeholder((None, 8, 8, 1)), 2, padding=(2, 0))


def test_bad_pool_size():
    with pytest.raises(ValueError, match="pool_size must be a positive int"):
        gn.nn.avg_pool2d(gn.placeholder((None, 8, 8, 1)), 0)
