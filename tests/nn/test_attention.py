"""gn.nn.attention and causal_mask: values against NumPy, masks, fully
masked rows, gradients and shape errors."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.testing import check_gradients


def numpy_attention(q, k, v, mask=None):
    logits = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        logits = np.where(mask, logits, -1e9)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    return weights / weights.sum(-1, keepdims=True) @ v


def qkv(b=2, h=3, sq=4, sk=5, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, h, sq, d)), rng.standard_normal((b, h, sk, d)),
            rng.standard_normal((b, h, sk, d)))


def run(fetches, feed=None):
    return gn.Session().run(fetches, feed or {})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_numpy_without_mask(dtype):
    q, k, v = (a.astype(dtype) for a in qkv())
    out = run(gn.nn.attention(gn.constant(q), gn.constant(k), gn.constant(v)))
    assert out.dtype == dtype and out.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(out, numpy_attention(q, k, v), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mask_shape", [(4, 5), (2, 1, 1, 5), (2, 3, 4, 5)])
def test_matches_numpy_with_broadcast_masks(mask_shape):
    q, k, v = qkv()
    mask = np.random.default_rng(1).random(mask_shape) < 0.7
    mask[..., 0] = True
    out = run(gn.nn.attention(gn.constant(q), gn.constant(k), gn.constant(v), gn.constant(mask)))
    np.testing.assert_allclose(out, numpy_attention(q, k, v, mask), rtol=1e-10)


def test_causal_mask_hides_the_future():
    q, k, v = qkv(sq=4, sk=4)
    mask = gn.nn.causal_mask(4)
    assert mask.shape == (4, 4) and mask.dtype == np.bool_
    out = run(gn.nn.attention(gn.constant(q), gn.constant(k), gn.constant(v), mask))
    np.testing.assert_allclose(out[:, :, 0], v[:, :, 0], rtol=1e-12)  # row 0 sees only key 0
    np.testing.assert_allclose(out, numpy_attention(q, k, v, np.tril(np.ones((4, 4), bool))))


def test_fully_masked_rows_average_the_values_instead_of_nan():
    q, k, v = qkv()
    mask = np.ones((4, 5), bool)
    mask[2] = False
    out = run(gn.nn.attention(gn.constant(q), gn.constant(k), gn.constant(v), gn.constant(mask)))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, :, 2], v.mean(axis=2), rtol=1e-10)


def test_gradients_without_mask():
    check_gradients(gn.nn.attention, list(qkv(b=1, h=2, sq=3, sk=4, d=3)))


def test_gradients_with_mask():
    mask = np.tril(np.ones((3, 4), bool))
    mask[0] = False   # one fully masked row, too
    check_gradients(gn.nn.attention, [*qkv(b=1, h=2, sq=3, sk=4, d=3), mask])


def test_integer_masks_count_as_true_where_nonzero():
    q, k, v = qkv()
    mask = np.tril(np.ones((4, 5), np.int64))
    out = run(gn.nn.attention(gn.constant(q), gn.constant(k), gn.constant(v), gn.constant(mask)))
    np.testing.assert_allclose(out, numpy_attention(q, k, v, mask.astype(bool)), rtol=1e-10)


@pytest.mark.parametrize("shapes, message", [
    (((2, 4, 6), (2, 5, 6), (2, 5, 6)),
     r"q must be 4-D \(batch, heads, seq, depth\), got \(2, 4, 6\)"),
    (((1, 2, 4, 6), (1, 2, 5, 8), (1, 2, 5, 6)), r"differ in depth"),
    (((1, 2, 4, 6), (1, 2, 5, 6), (1, 2, 7, 6)), r"differ in sequence length"),
])
def test_shape_errors(shapes, message):
    q, k, v = (gn.placeholder(s) for s in shapes)
    with pytest.raises(gn.ShapeError, match=message):
        gn.nn.attention(q, k, v)


def test_mask_of_the_wrong_shape():
    q, k, v = (gn.placeholder((None, 2, 4, 6)) for _ in range(3))
    with pytest.raises(gn.ShapeError, match=r"mask \(3, 4\) does not broadcast to \(batch, heads, "
                                            r"seq_q, seq_k\) = \(None, 2, 4, 4\)"):
        gn.nn.attention(q, k, v, gn.constant(np.ones((3, 4), bool)))
