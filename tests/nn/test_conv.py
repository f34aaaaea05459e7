"""gn.nn.conv2d: forward against a direct loop, shape rules, closed forms,
build-time errors, and float64 gradient checks of first and second order."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.nn.windows import canonical_padding, same_padding
from graphnet.testing import check_gradients


def conv_reference(x, w, strides=1, padding="valid", dilation=1, groups=1):
    """Direct definition: a loop over output pixels (tests only)."""
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    kh, kw, cg, cout = w.shape
    pads = canonical_padding(padding)
    if pads == "same":
        pads = (same_padding(x.shape[1], dh * (kh - 1) + 1, sh),
                same_padding(x.shape[2], dw * (kw - 1) + 1, sw))
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    ho = (xp.shape[1] - dh * (kh - 1) - 1) // sh + 1
    wo = (xp.shape[2] - dw * (kw - 1) - 1) // sw + 1
    og = cout // groups
    out = np.zeros((x.shape[0], ho, wo, cout), np.result_type(x, w))
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            window = xp[:, rows, cols]
            for o in range(cout):
                group = o // og
                part = window[..., group * cg:(group + 1) * cg]
                out[:, i, j, o] = np.sum(part * w[..., o], axis=(1, 2, 3))
    return out


# label, x shape, kernel shape, conv2d keyword arguments
CASES = [
    ("stride1-valid", (2, 5, 6, 3), (3, 3, 3, 2), {}),
    ("stride2-same", (2, 7, 6, 2), (3, 3, 2, 3), dict(strides=2, padding="same")),
    ("stride2-valid-nonsquare", (1, 7, 8, 2), (3, 2, 2, 2), dict(strides=2)),
    ("explicit-padding", (2, 5, 5, 2), (2, 3, 2, 2), dict(padding=((1, 2), (0, 1)))),
    ("int-padding-strides12", (1, 6, 7, 2), (3, 3, 2, 2), dict(padding=1, strides=(1, 2))),
    ("dilation2-same", (1, 7, 7, 2), (3, 3, 2, 2), dict(padding="same", dilation=2)),
    ("dilation2-valid-nonsquare", (2, 7, 8, 1), (2, 3, 1, 3), dict(dilation=2)),
    ("one-channel-same", (2, 9, 9, 1), (3, 3, 1, 2), dict(padding="same")),
    ("one-channel-stride2-same", (1, 10, 12, 1), (3, 2, 1, 2), dict(strides=2, padding="same")),
    ("groups2", (1, 5, 5, 4), (3, 3, 2, 4), dict(groups=2, padding="same")),
    ("even-kernel-same", (1, 4, 5, 2), (2, 4, 2, 1), dict(padding="same")),
]
IDS = [c[0] for c in CASES]


def arrays(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape)


def run(fetches, feed=None):
    return gn.Session().run(fetches, feed or {})


@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_direct_loop(label, x_shape, w_shape, kwargs, dtype):
    x, w = (a.astype(dtype) for a in arrays(x_shape, w_shape))
    xn = gn.placeholder(x_shape, dtype)
    y = run(gn.nn.conv2d(xn, gn.constant(w), **kwargs), {xn: x})
    assert y.dtype == dtype
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y, conv_reference(x, w, **kwargs), rtol=tol, atol=tol)


@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", CASES, ids=IDS)
def test_static_shape_matches_output(label, x_shape, w_shape, kwargs):
    x, w = arrays(x_shape, w_shape)
    static = gn.placeholder(x_shape, "float64")
    dynamic = gn.placeholder((None, None, None, x_shape[3]), "float64")
    y_static = gn.nn.conv2d(static, gn.constant(w), **kwargs)
    y_dynamic = gn.nn.conv2d(dynamic, gn.constant(w), **kwargs)
    value = run(y_static, {static: x})
    assert y_static.shape == value.shape
    assert y_dynamic.shape == (None, None, None, w_shape[3])
    np.testing.assert_allclose(run(y_dynamic, {dynamic: x}), value)


@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", CASES, ids=IDS)
def test_gradients_match_finite_differences(label, x_shape, w_shape, kwargs):
    check_gradients(lambda x, w: gn.nn.conv2d(x, w, **kwargs), list(arrays(x_shape, w_shape)))


def test_gradients_with_sizes_unknown_at_build_time():
    kwargs = dict(strides=2, padding="same", dilation=1)
    check_gradients(lambda x, w: gn.nn.conv2d(x, w, **kwargs),
                    list(arrays((2, 5, 6, 2), (3, 3, 2, 2))), dynamic=True)


SECOND_ORDER = [CASES[1], CASES[5], CASES[8], CASES[9]]


@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", SECOND_ORDER,
                         ids=[c[0] for c in SECOND_ORDER])
def test_second_derivatives(label, x_shape, w_shape, kwargs):
    """The backprop ops' own gradients (each expressed with the others)."""
    def first_order(x, w):
        y = gn.nn.conv2d(x, w, **kwargs)
        return gn.gradients(gn.sum(y * y), [x, w])
    check_gradients(first_order, list(arrays(x_shape, w_shape)), rtol=1e-4)


# label, x shape, kernel shape, conv2d keyword arguments: both im2col layouts
IM2COL_CASES = [CASES[1], CASES[3], CASES[5], CASES[7], CASES[8]]


def _im2col_op(kwargs):
    from graphnet.nn.conv import Conv2D, Im2Col
    return gn.nn.conv2d(gn.placeholder((1, 8, 8, 1)), gn.constant(np.ones((1, 1, 1, 1))),
                        **kwargs).op.like(Im2Col), Conv2D


@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", IM2COL_CASES,
                         ids=[c[0] for c in IM2COL_CASES])
def test_im2col_matmul_is_the_convolution_and_col2im_its_adjoint(label, x_shape, w_shape, kwargs):
    from graphnet.nn.conv import Col2Im
    im2col, _ = _im2col_op(kwargs)
    x, w = arrays(x_shape, w_shape)
    cols = im2col.forward(x, w)
    rows = cols.shape[0] == x_shape[0] * np.prod(conv_reference(x, w, **kwargs).shape[1:3])
    y = (cols if rows else cols.T) @ w.reshape(-1, w_shape[3])
    np.testing.assert_allclose(y.reshape(conv_reference(x, w, **kwargs).shape),
                               conv_reference(x, w, **kwargs), atol=1e-12)
    buffer = np.full_like(cols, np.nan)
    assert im2col.forward(x, w, out=buffer) is buffer
    np.testing.assert_array_equal(buffer, cols)
    # <im2col(x), c> = <x, col2im(c)>
    c = np.random.default_rng(1).standard_normal(cols.shape)
    col2im = im2col.like(Col2Im)
    dx = col2im.forward(c, w, x)
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * dx), rtol=1e-12)
    out = np.full_like(x, np.nan)
    assert col2im.forward(c, w, x, out=out) is out
    np.testing.assert_allclose(out, dx, atol=1e-12)


@pytest.mark.parametrize("label, x_shape, w_shape, kwargs", IM2COL_CASES[:3],
                         ids=[c[0] for c in IM2COL_CASES[:3]])
def test_im2col_and_col2im_gradients(label, x_shape, w_shape, kwargs):
    from graphnet.graph import apply
    from graphnet.nn.conv import Col2Im
    im2col, _ = _im2col_op(kwargs)
    x, w = arrays(x_shape, w_shape)
    kernel = gn.constant(w)
    check_gradients(lambda x: apply(im2col, x, kernel), [x])
    cols = im2col.forward(x, w)
    check_gradients(lambda c: apply(im2col.like(Col2Im), c, kernel, gn.constant(x)), [cols])


def test_training_step_copies_the_windows_of_x_once():
    from graphnet.nn.conv import Conv2DBackpropFilter, Im2Col
    x = gn.placeholder((4, 9, 9, 2), "float64")
    w = gn.variable(np.ones((3, 3, 2, 3)))
    y = gn.nn.conv2d(x, w, padding="same")
    (dw,) = gn.gradients(gn.sum(y * y), [w])
    assert isinstance(dw.op, Conv2DBackpropFilter) and dw.inputs[3] is y.inputs[2]
    assert isinstance(y.inputs[2].op, Im2Col)


def test_out_buffers_receive_the_results():
    from graphnet.nn.conv import Conv2DBackpropInput
    x, w = arrays((2, 6, 7, 3), (3, 3, 3, 4))
    for kwargs in [{}, dict(padding="same"), dict(groups=1, strides=2)]:
        y = gn.nn.conv2d(gn.constant(x), gn.constant(w), **kwargs)
        op = y.op
        cols = y.inputs[2].op.forward(x, w)
        expected = op.forward(x, w)
        out = np.full_like(expected, np.nan)
        assert op.forward(x, w, cols, out=out) is out
        np.testing.assert_allclose(out, expected, atol=1e-12)
        g = np.ones_like(expected)
        dx = op.like(Conv2DBackpropInput).forward(g, w, x)
        out = np.full_like(x, np.nan)
        assert op.like(Conv2DBackpropInput).forward(g, w, x, out=out) is out
        np.testing.assert_allclose(out, dx, atol=1e-12)


def test_one_plan_fed_several_sizes_pads_each_correctly():
    """The im2col step keeps its zero-padded copy of x per input size; a
    plan run on 5x5, 6x6 and again 5x5 images gives each its convolution."""
    x = gn.placeholder((None, None, None, 2), "float32")
    w_value = np.random.default_rng(1).standard_normal((3, 3, 2, 4)).astype(np.float32)
    y = gn.nn.conv2d(x, gn.constant(w_value), strides=2, padding="same")
    plan = gn.compile(y, feeds=[x])
    for size in (5, 6, 5):
        x_value = np.random.default_rng(size).standard_normal((2, size, size, 2))
        x_value = x_value.astype(np.float32)
        np.testing.assert_allclose(plan([x_value], [])[0],
                                   conv_reference(x_value, w_value, 2, "same"), rtol=1e-5,
                                   atol=1e-5)


def backprop_input_reference(g, w, x_shape, strides=1, padding="valid", dilation=1, groups=1):
    """dx of conv_reference by its definition: each output pixel's gradient
    spread over its window, weighted by the kernel (tests only)."""
    sh, sw = (strides, strides) if isinstance(strides, int) else strides
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    kh, kw, cg, cout = w.shape
    pads = canonical_padding(padding)
    if pads == "same":
        pads = (same_padding(x_shape[1], dh * (kh - 1) + 1, sh),
                same_padding(x_shape[2], dw * (kw - 1) + 1, sw))
    n, h, width, _ = x_shape
    dxp = np.zeros((n, h + sum(pads[0]), width + sum(pads[1]), x_shape[3]))
    og = cout // groups
    for i in range(g.shape[1]):
        for j in range(g.shape[2]):
            rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            for k in range(groups):
                spread = np.einsum("no,abco->nabc", g[:, i, j, k * og:(k + 1) * og],
                                   w[..., k * og:(k + 1) * og])
                dxp[:, rows, cols, k * cg:(k + 1) * cg] += spread
    return dxp[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + width]


# label, x shape (without batch), kernel shape, conv2d keyword arguments
BACKPROP_CASES = [
    ("lenet-conv2", (14, 14, 6), (5, 5, 6, 16), {}),
    ("one-channel-same", (9, 9, 1), (3, 3, 1, 2), dict(padding="same")),
    ("dilation2-explicit", (7, 8, 2), (3, 2, 2, 3), dict(padding=((1, 2), (0, 1)), dilation=2)),
    ("groups2-same", (5, 5, 4), (3, 3, 2, 4), dict(groups=2, padding="same")),
    ("kernel-row-3x1", (6, 5, 3), (3, 1, 3, 2), {}),
    ("stride2-same", (7, 6, 2), (3, 3, 2, 3), dict(strides=2, padding="same")),
    ("1x1", (4, 5, 3), (1, 1, 3, 2), {}),
]


@pytest.mark.parametrize("blocks", ["one", "many"])
@pytest.mark.parametrize("label, x_hwc, w_shape, kwargs", BACKPROP_CASES,
                         ids=[c[0] for c in BACKPROP_CASES])
def test_backprop_input_kernel_keeps_buffers_per_shape(label, x_hwc, w_shape, kwargs, blocks,
                                                       monkeypatch):
    """One kernel, as a plan step holds it, run on batches of 3, 5 and again
    3 images: each result is right, whether written into `out` or returned
    (then not a view of a kept buffer), in one block of images or several."""
    from graphnet.nn import conv
    if blocks == "many":
        monkeypatch.setattr(conv, "BLOCK", 1)   # one image per block
    op = gn.nn.conv2d(gn.placeholder((None, *x_hwc)), gn.constant(np.ones(w_shape)),
                      **kwargs).op.like(conv.Conv2DBackpropInput)
    kernel = op.kernel("numpy")
    w = np.random.default_rng(0).standard_normal(w_shape)
    results = []
    for run_index, batch in enumerate([3, 5, 3]):
        x = np.zeros((batch, *x_hwc))
        g = np.random.default_rng(run_index).standard_normal(conv_reference(x, w, **kwargs).shape)
        expected = backprop_input_reference(g, w, x.shape, **kwargs)
        out = np.full_like(x, np.nan)
        assert kernel(g, w, x, out=out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
        results.append((kernel(g, w, x), expected))
    for got, expected in results:   # earlier results untouched by later runs
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_identity_1x1_kernel_returns_input():
    x, _ = arrays((2, 4, 5, 3), (1, 1, 1, 1))
    y = run(gn.nn.conv2d(gn.constant(x), gn.constant(np.eye(3)[None, None])))
    np.testing.assert_allclose(y, x)


def test_box_filter_on_ones_counts_window_sizes():
    y = run(gn.nn.conv2d(gn.constant(np.ones((1, 4, 4, 1))), gn.constant(np.ones((3, 3, 1, 1))),
                         padding="same"))
    expected = [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


def test_known_3x3_kernel_is_a_cross_correlation():
    """A kernel that picks the pixel below-right: no flip, as in TensorFlow."""
    image = np.arange(25.0).reshape(1, 5, 5, 1)
    kernel = np.zeros((3, 3, 1, 1))
    kernel[2, 2] = 1
    y = run(gn.nn.conv2d(gn.constant(image), gn.constant(kernel)))
    np.testing.assert_array_equal(y[0, :, :, 0], image[0, 2:, 2:, 0])


def test_same_padding_puts_the_odd_pixel_at_the_end_like_tensorflow():
    image = np.arange(16.0).reshape(1, 4, 4, 1)
    y = run(gn.nn.conv2d(gn.constant(image), gn.constant(np.ones((2, 2, 1, 1))), padding="same"))
    padded = np.pad(image[0, :, :, 0], ((0, 1), (0, 1)))
    expected = padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]
    np.testing.assert_array_equal(y[0, :, :, 0], expected)


@pytest.mark.parametrize("size, stride", [(28, 1), (28, 2), (7, 2), (14, 3)])
def test_same_padding_output_is_ceil_of_size_over_stride(size, stride):
    x = gn.placeholder((None, size, size, 1))
    y = gn.nn.conv2d(x, gn.constant(np.ones((5, 5, 1, 2), np.float32)), strides=stride,
                     padding="same")
    assert y.shape == (None, -(-size // stride), -(-size // stride), 2)


def test_float32_gradients_keep_float32():
    x = gn.placeholder((None, 6, 6, 2), "float32")
    w = gn.variable(np.ones((3, 3, 2, 4), np.float32))
    dx, dw = gn.gradients(gn.sum(gn.nn.conv2d(x, w, strides=2, padding="same")), [x, w])
    dxv, dwv = run([dx, dw], {x: np.ones((3, 6, 6, 2), np.float32)})
    assert dxv.dtype == dwv.dtype == np.float32
    assert dxv.shape == (3, 6, 6, 2) and dwv.shape == (3, 3, 2, 4)


def test_node_names_and_labels_read_well():
    kernel = gn.constant(np.ones((3, 3, 1, 2), np.float32))
    y = gn.nn.conv2d(gn.placeholder((None, 8, 8, 1)), kernel)
    assert y.name == "conv2d"
    assert y.op.label() == ("Conv2D{strides=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), "
                            "groups=1}")


# ------------------------------------------------------------ errors


def test_flat_input_names_the_expected_layout():
    x = gn.placeholder((None, 784))
    with pytest.raises(gn.ShapeError, match=r"conv2d 'conv2d': expects 4-D NHWC input, got "
                                            r"\(None, 784\) \(created at test_conv.py:\d+\)"):
        gn.nn.conv2d(x, gn.constant(np.ones((5, 5, 1, 6), np.float32)))


def test_channel_mismatch_names_both_shapes():
    x = gn.placeholder((None, 28, 28, 3))
    with pytest.raises(gn.ShapeError, match=r"input \(None, 28, 28, 3\) has 3 channels but the "
                                            r"kernel \(5, 5, 1, 6\) takes 1"):
        gn.nn.conv2d(x, gn.constant(np.ones((5, 5, 1, 6), np.float32)))


@pytest.mark.parametrize("x_shape, w_shape, kwargs, message", [
    ((None, 8, 8, 1), (3, 3, 1), {}, r"expects a 4-D kernel \(kh, kw, in, out\), got \(3, 3, 1\)"),
    ((None, 4, 4, 1), (5, 5, 1, 2), {}, r"kernel window 5x5 is larger than the padded input 4"),
    ((None, 8, 8, 1), (3, 3, 1, 2), dict(dilation=4), r"kernel window 9x9 is larger"),
    ((None, 8, 8, 4), (3, 3, 2, 3), dict(groups=2), r"3 output channels do not split into 2"),
    ((None, 8, 8, 4), (3, 3, 4, 4), dict(groups=2), r"takes 4 per group x 2 groups"),
])
def test_shape_errors_at_build_time(x_shape, w_shape, kwargs, message):
    x = gn.placeholder(x_shape)
    with pytest.raises(gn.ShapeError, match=message):
        gn.nn.conv2d(x, gn.constant(np.ones(w_shape, np.float32)), **kwargs)


def test_integer_input_is_refused():
    with pytest.raises(gn.ShapeError, match="expects a floating-point input, got int64"):
        gn.nn.conv2d(gn.placeholder((1, 4, 4, 1), "int64"), gn.constant(np.ones((1, 1, 1, 1))))


@pytest.mark.parametrize("kwargs, message", [
    (dict(padding="full"), "padding must be 'valid', 'same'"),
    (dict(padding=-1), "padding must not be negative"),
    (dict(strides=0), "strides must be a positive int"),
    (dict(dilation=(1, 2, 3)), "dilation must be a positive int or a pair"),
    (dict(groups=0), "groups must be a positive int"),
])
def test_bad_arguments(kwargs, message):
    x = gn.placeholder((None, 8, 8, 1))
    with pytest.raises(ValueError, match=message):
        gn.nn.conv2d(x, gn.constant(np.ones((3, 3, 1, 1), np.float32)), **kwargs)
