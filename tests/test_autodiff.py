"""gradients(): fan-out, higher order, unconnected and integer paths (graphnet/autodiff.py)."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.errors import GradientError


def run(nodes, feed=None):
    return gn.Session().run(nodes, feed or {})


def test_fan_out_sums_contributions():
    x = gn.variable(np.array(3.0), name="x")
    y = x * x + 2 * x  # x used three times
    assert run(gn.gradients(y, x)) == pytest.approx(8.0)


def test_broadcast_gradients_are_summed_back():
    x = gn.placeholder((None, 3), "float64")
    b = gn.variable(np.zeros(3), name="b")
    s = gn.variable(np.array(2.0), name="s")
    loss = gn.sum((x + b) * s)
    db, ds = run(gn.gradients(loss, [b, s]), {x: np.ones((4, 3))})
    np.testing.assert_allclose(db, [8, 8, 8])
    assert ds == pytest.approx(12.0)


def test_second_derivative_of_tanh_matches_closed_form():
    x = gn.placeholder((5,), "float64")
    first = gn.gradients(gn.sum(gn.tanh(x)), x)
    second = gn.gradients(gn.sum(first), x)
    xs = np.linspace(-2, 2, 5)
    t = np.tanh(xs)
    d1, d2 = run([first, second], {x: xs})
    np.testing.assert_allclose(d1, 1 - t ** 2)
    np.testing.assert_allclose(d2, -2 * t * (1 - t ** 2))


def test_hessian_vector_product_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    a = a + a.T
    x = gn.placeholder((4,), "float64")
    v = gn.placeholder((4,), "float64")
    f = 0.5 * gn.sum(x * gn.matmul(gn.constant(a), x)) + gn.sum(gn.exp(x))
    grad = gn.gradients(f, x)
    hvp = gn.gradients(gn.sum(grad * v), x)
    xs, vs = rng.normal(size=4), rng.normal(size=4)
    expected = a @ vs + np.exp(xs) * vs  # Hessian is A + diag(exp(x))
    np.testing.assert_allclose(run(hvp, {x: xs, v: vs}), expected, rtol=1e-10)


def test_grad_ys_weights_outputs():
    x = gn.placeholder((3,), "float64")
    w = gn.placeholder((3,), "float64")
    g = gn.gradients(x * x, x, grad_ys=w)
    np.testing.assert_allclose(run(g, {x: [1, 2, 3], w: [1, 0, 2]}), [2, 0, 12])


def test_unconnected_gives_zeros_or_none():
    x = gn.placeholder((None, 2), "float32")
    other = gn.variable(np.ones((2, 2), np.float32), name="other")
    y = gn.sum(x * 2)
    zeros = gn.gradients(y, other)
    np.testing.assert_array_equal(run(zeros), np.zeros((2, 2)))
    assert gn.gradients(y, [other], unconnected="none") == [None]


def test_stop_gradient_blocks_the_path():
    x = gn.placeholder((2,), "float64")
    y = gn.sum(gn.stop_gradient(x) * x)
    np.testing.assert_allclose(run(gn.gradients(y, x), {x: [1.0, 2.0]}), [1.0, 2.0])


def test_integer_path_is_not_differentiable_and_says_so():
    x = gn.placeholder((3,), "float32", name="x")
    y = gn.sum(gn.cast(gn.cast(x, "int64", name="to_int"), "float32"))
    with pytest.raises(GradientError, match="only through integer-valued 'to_int'"):
        gn.gradients(y, x)


def test_integer_inputs_and_outputs_are_refused():
    i = gn.placeholder((3,), "int64", name="i")
    with pytest.raises(GradientError, match="'i' is int64"):
        gn.gradients(gn.sum(gn.cast(i, "float32")), i)
    with pytest.raises(GradientError, match="int64"):
        gn.gradients(gn.sum(i), gn.placeholder((1,)))


def test_gradient_nodes_live_in_a_gradients_scope():
    x = gn.placeholder((3,), name="x")
    g = gn.gradients(gn.sum(gn.relu(x)), x)
    assert g.name.startswith("gradients/")


def test_mixed_precision_gradient_has_input_dtype():
    x32 = gn.placeholder((3,), "float32")
    w64 = gn.variable(np.ones(3), name="w64")
    g = gn.gradients(gn.sum(x32 * w64), x32)
    assert g.dtype == np.float32
