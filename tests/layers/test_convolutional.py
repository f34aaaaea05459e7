"""Conv2D, MaxPool2D, AvgPool2D, GlobalAveragePooling2D (graphnet/layers/convolutional.py):
float64 gradient checks, closed forms and rank errors."""

import functools

import numpy as np
import pytest

import graphnet as gn
from graphnet import layers
from graphnet.testing import check_layer


def image(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("config, shape", [
    ({"filters": 2, "kernel_size": 3}, (2, 5, 5, 2)),
    ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (1, 6, 5, 2)),
    ({"filters": 3, "kernel_size": (2, 3), "strides": (2, 1), "padding": 1}, (2, 4, 5, 1)),
    ({"filters": 2, "kernel_size": 2, "dilation_rate": 2, "activation": "tanh"}, (1, 5, 5, 2)),
    ({"filters": 2, "kernel_size": 1, "use_bias": False}, (2, 3, 3, 3)),
], ids=["valid", "stride2-same", "rect-stride-explicit-pad", "dilated-tanh", "1x1-no-bias"])
def test_conv2d_gradients(config, shape, rng):
    layer, (out,) = check_layer(functools.partial(layers.Conv2D, **config), image(rng, *shape))
    assert out.shape[-1] == config["filters"]


@pytest.mark.parametrize("cls", [layers.MaxPool2D, layers.AvgPool2D])
@pytest.mark.parametrize("config", [
    {"pool_size": 2},
    {"pool_size": 3, "strides": 1},                 # overlapping windows
    {"pool_size": 2, "strides": 2, "padding": "same"},
], ids=["2x2", "overlapping", "same"])
def test_pool_gradients(cls, config, rng):
    x = image(rng, 2, 5, 5, 2)
    if cls is layers.MaxPool2D:  # distinct values keep the max away from ties
        x = rng.permutation(x.size).reshape(x.shape) / 10.0
    check_layer(functools.partial(cls, **config), x)


def test_global_average_pooling_gradients_and_value(rng):
    x = image(rng, 2, 3, 4, 5)
    _, (out,) = check_layer(layers.GlobalAveragePooling2D, x)
    np.testing.assert_allclose(out, x.mean(axis=(1, 2)))


def run(node, feed, weights=()):
    sess = gn.Session()
    for var, value in weights:
        sess.set(var, value)
    return sess.run(node, feed)


def test_identity_1x1_kernel_returns_the_input(rng):
    x = gn.placeholder((None, 4, 4, 3), "float64")
    conv = layers.Conv2D(3, 1, kernel_initializer=lambda shape, dtype: np.eye(3).reshape(shape),
                         dtype="float64")
    value = image(rng, 2, 4, 4, 3)
    np.testing.assert_allclose(run(conv(x), {x: value}), value)


def test_known_convolution_sums_each_window_plus_bias():
    x = gn.placeholder((None, 3, 3, 1), "float64")
    conv = layers.Conv2D(1, 2, kernel_initializer="ones", bias_initializer="ones",
                         dtype="float64")
    value = np.arange(9.0).reshape(1, 3, 3, 1)
    expected = np.array([[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]]) + 1
    np.testing.assert_allclose(run(conv(x), {x: value})[0, ..., 0], expected)


def test_pools_on_a_known_image():
    x = gn.placeholder((None, 4, 4, 1), "float64")
    value = np.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_allclose(run(layers.MaxPool2D(2)(x), {x: value})[0, ..., 0],
                               [[5, 7], [13, 15]])
    np.testing.assert_allclose(run(layers.AvgPool2D(2)(x), {x: value})[0, ..., 0],
                               [[2.5, 4.5], [10.5, 12.5]])


def test_conv2d_on_flat_input_says_how_to_reshape():
    with pytest.raises(gn.ShapeError, match=r"Conv2D 'conv2d' expects 4-D NHWC input, got "
                                            r"\(None, 784\); add Reshape\(\(28, 28, 1\)\)"):
        layers.Conv2D(8, 3)(gn.placeholder((None, 784)))


@pytest.mark.parametrize("cls", [layers.MaxPool2D, layers.AvgPool2D,
                                 layers.GlobalAveragePooling2D])
def test_pools_name_the_layout_they_expect(cls):
    with pytest.raises(gn.ShapeError, match=r"expects 4-D NHWC input, got \(None, 28, 28\); "
                                            r"add Reshape\(\(28, 28, 1\)\)"):
        cls()(gn.placeholder((None, 28, 28)))
