"""BatchNormalization and LayerNormalization (graphnet/layers/normalization.py):
gradients in training and inference mode, normalised outputs, and the moving
averages that Model.fit updates."""

import functools

import numpy as np
import pytest

import graphnet as gn
from graphnet import layers
from graphnet.testing import check_layer

RNG = np.random.default_rng(0)
STATS = {"moving_mean": RNG.standard_normal(3), "moving_variance": RNG.uniform(0.5, 2, 3),
         "gamma": RNG.uniform(0.5, 2, 3), "beta": RNG.standard_normal(3)}


@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 3)], ids=["dense", "nhwc"])
def test_batch_norm_gradients(training, shape, rng):
    check_layer(layers.BatchNormalization, rng.standard_normal(shape), training=training,
                weights=STATS)


@pytest.mark.parametrize("config, shape, gamma_shape", [
    ({}, (2, 4, 3), (3,)),
    ({"axis": (-2, -1)}, (2, 4, 3), (4, 3)),
    ({"center": False, "scale": False}, (3, 5), None),
], ids=["last-axis", "two-axes", "no-params"])
def test_layer_norm_gradients(config, shape, gamma_shape, rng):
    gamma = None if gamma_shape is None else {"gamma": rng.uniform(0.5, 2, gamma_shape)}
    check_layer(functools.partial(layers.LayerNormalization, **config),
                rng.standard_normal(shape), weights=gamma)


def test_batch_norm_training_output_is_normalised_per_channel(rng):
    x = gn.placeholder((None, 2, 2, 3), "float64")
    bn = layers.BatchNormalization(epsilon=1e-6, dtype="float64")
    value = rng.normal([1.0, -2.0, 5.0], [0.5, 3.0, 2.0], (8, 2, 2, 3))
    out = gn.Session().run(bn(x, training=True), {x: value})
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-9)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, rtol=1e-5)
    assert len(bn.updates) == 2


def test_layer_norm_output_is_normalised_per_example(rng):
    x = gn.placeholder((None, 6), "float64")
    value = rng.normal(3.0, 2.0, (4, 6))
    out = gn.Session().run(layers.LayerNormalization(epsilon=1e-9, dtype="float64")(x),
                           {x: value})
    np.testing.assert_allclose(out.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(out.std(axis=1), 1, rtol=1e-6)


def bn_model(momentum):
    bn = layers.BatchNormalization(momentum=momentum, epsilon=1e-3, input_shape=(3,))
    model = gn.Sequential([bn])
    model.compile(optimizer=gn.optim.SGD(0.0), loss="mse")
    return model, bn


def test_fit_updates_moving_statistics_by_the_momentum_rule(rng):
    model, bn = bn_model(momentum=0.9)
    batches = [rng.normal([1, -2, 4], [1, 2, 0.5], (16, 3)).astype(np.float32)
               for _ in range(3)]
    mean, var = np.zeros(3), np.ones(3)
    for xb in batches:
        model.fit(xb, np.zeros_like(xb), batch_size=16, epochs=1, shuffle=False, verbose=0)
        mean = 0.9 * mean + 0.1 * xb.mean(axis=0)
        var = 0.9 * var + 0.1 * xb.var(axis=0)   # the biased batch variance, as Keras
        np.testing.assert_allclose(model.session.get(bn.moving_mean), mean, rtol=1e-5)
        np.testing.assert_allclose(model.session.get(bn.moving_variance), var, rtol=1e-5)


def test_inference_uses_the_moving_statistics(rng):
    model, bn = bn_model(momentum=0.5)
    xb = rng.normal(2.0, 3.0, (32, 3)).astype(np.float32)
    model.fit(xb, np.zeros_like(xb), batch_size=32, epochs=1, verbose=0)
    mean, var = model.session.get(bn.moving_mean), model.session.get(bn.moving_variance)
    np.testing.assert_allclose(mean, 0.5 * xb.mean(axis=0), rtol=1e-5)
    expected = (xb - mean) / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(model.predict(xb), expected, rtol=1e-4, atol=1e-5)
    evaluated = model.evaluate(xb, np.zeros_like(xb), verbose=0)
    np.testing.assert_allclose(evaluated, np.mean(expected ** 2), rtol=1e-4)
    # evaluation and prediction leave the moving statistics alone
    np.testing.assert_array_equal(model.session.get(bn.moving_mean), mean)
