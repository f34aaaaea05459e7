"""Dense, Flatten, Reshape, Activation, Dropout (graphnet/layers/core.py), and the
check_layer helper that the layer tests use."""

import numpy as np
import pytest

import graphnet as gn
from graphnet import layers
from graphnet.testing import check_layer


def run(node, feed):
    return gn.Session().run(node, feed)


def test_dense_builds_named_weights_and_computes_affine_map():
    x = gn.placeholder((None, 3), "float64")
    dense = layers.Dense(2, activation="relu", kernel_initializer="ones", dtype="float64")
    y = dense(x)
    assert [w.name for w in dense.weights] == ["dense/kernel", "dense/bias"]
    assert y.shape == (None, 2) and dense.count_params() == 8
    np.testing.assert_allclose(run(y, {x: [[1, 2, -4]]}), [[0, 0]])
    np.testing.assert_allclose(run(y, {x: [[1, 2, 4]]}), [[7, 7]])


def test_dense_acts_on_the_last_axis_of_3d_input():
    x = gn.placeholder((None, 5, 3))
    assert layers.Dense(4)(x).shape == (None, 5, 4)


def test_a_layer_called_twice_shares_weights_and_scope():
    dense = layers.Dense(2)
    a, b = dense(gn.placeholder((None, 3))), dense(gn.placeholder((None, 3)))
    assert len(dense.weights) == 2
    assert a.name.startswith("dense/") and b.name.startswith("dense/")


def test_dense_needs_a_known_last_axis():
    with pytest.raises(gn.ShapeError, match=r"Dense 'dense'.*got \(None,\)"):
        layers.Dense(2)(gn.placeholder((None,)))


def test_flatten_and_reshape():
    x = gn.placeholder((None, 28, 28))
    flat = layers.Flatten()(x)
    assert flat.shape == (None, 784)
    image = layers.Reshape((28, 28, 1))(flat)
    assert image.shape == (None, 28, 28, 1)
    value = np.arange(2 * 784, dtype=np.float32).reshape(2, 28, 28)
    np.testing.assert_array_equal(run(image, {x: value}), value[..., None])
    with pytest.raises(gn.ShapeError, match=r"Reshape 'reshape' cannot reshape .*\(784,\)"):
        layers.Reshape((5, 5), name="reshape")(flat)


@pytest.mark.parametrize("name, reference", [
    ("linear", lambda v: v),
    ("relu", lambda v: np.maximum(v, 0)),
    ("sigmoid", lambda v: 1 / (1 + np.exp(-v))),
    ("tanh", np.tanh),
    ("softmax", lambda v: np.exp(v) / np.exp(v).sum(-1, keepdims=True)),
    ("leaky_relu", lambda v: np.where(v > 0, v, 0.2 * v)),
    ("elu", lambda v: np.where(v > 0, v, np.exp(v) - 1)),
    ("swish", lambda v: v / (1 + np.exp(-v))),
    ("gelu", lambda v: v * 0.5 * (1 + np.vectorize(__import__("math").erf)(v / np.sqrt(2)))),
])
def test_activation_names(name, reference):
    x = gn.placeholder((None, 4), "float64")
    value = np.array([[-3.0, -0.5, 0.5, 3.0]])
    np.testing.assert_allclose(run(layers.Activation(name)(x), {x: value}), reference(value),
                               rtol=1e-6)


def test_elu_has_finite_gradients_for_large_inputs():
    x = gn.placeholder((3,), "float64")
    grad = gn.gradients(gn.sum(gn.activations.elu(x)), x)
    np.testing.assert_allclose(run(grad, {x: [-1000.0, 0.5, 1000.0]}), [0, 1, 1])


# ------------------------------------------------- gradient checks (float64)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("factory, x", [
    (lambda dtype: layers.Dense(3, activation="tanh", dtype=dtype), RNG.standard_normal((4, 5))),
    (lambda dtype: layers.Dense(2, use_bias=False, dtype=dtype), RNG.standard_normal((2, 3, 4))),
    (lambda dtype: layers.Activation("gelu", dtype=dtype), RNG.standard_normal((3, 4))),
    (lambda dtype: layers.Flatten(dtype=dtype), RNG.standard_normal((2, 3, 2))),
    (lambda dtype: layers.Reshape((2, -1), dtype=dtype), RNG.standard_normal((2, 6))),
    (lambda dtype: layers.Dropout(0.5, dtype=dtype), RNG.standard_normal((2, 6))),
], ids=["dense-tanh", "dense-3d-no-bias", "activation", "flatten", "reshape", "dropout-inference"])
def test_gradients_wrt_inputs_and_weights(factory, x):
    check_layer(factory, x)


def test_check_layer_catches_a_wrong_weight_gradient(rng):
    class Frozen(layers.Layer):
        """x * w with the gradient to w cut: the helper must notice."""

        def build(self, input_shape):
            self.w = self.add_weight("w", input_shape[1:], "ones")

        def call(self, x, training=False):
            return x * gn.stop_gradient(self.w)

    with pytest.raises(AssertionError, match=r"Frozen 'frozen' w.r.t. 'frozen/w'"):
        check_layer(lambda dtype: Frozen(dtype=dtype), rng.standard_normal((2, 3)))

