"""Normalization and Rescaling (graphnet/layers/preprocessing.py): outputs against
NumPy, adapt on arrays and Datasets, the statistics as non-trainable weights,
gradients, configs, and every error path."""

import functools
import json

import numpy as np
import pytest

import graphnet as gn
from graphnet import layers
from graphnet.graph import set_initial_value
from graphnet.serialization import serialize
from graphnet.testing import check_layer


def run(layer, x, dtype="float64"):
    """The layer's output on `x` through a placeholder with a free batch axis."""
    x = np.asarray(x)
    node = gn.placeholder((None,) + x.shape[1:], dtype)
    return gn.Session().run(layer(node), {node: x})


def numpy_stats(x, keep):
    reduce = tuple(a for a in range(x.ndim) if a not in keep)
    return x.mean(axis=reduce), x.var(axis=reduce)


@pytest.fixture
def data(rng):
    return rng.normal([1.0, -2.0, 5.0], [0.5, 3.0, 2.0], (50, 3))


# -------------------------------------------------------------- Normalization


def test_given_statistics_match_numpy(rng):
    x = rng.standard_normal((4, 3))
    mean, variance = [1.0, -2.0, 0.5], [4.0, 0.25, 1.0]
    out = run(layers.Normalization(mean=mean, variance=variance, dtype="float64"), x)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(variance), rtol=1e-12)
    # Scalars broadcast to the kept shape; numpy arrays are stored as plain lists.
    norm = layers.Normalization(mean=np.float32(2.0), variance=np.array(4.0), dtype="float64")
    np.testing.assert_allclose(run(norm, x), (x - 2) / 2, rtol=1e-12)
    assert norm.mean == 2.0 and norm.variance == 4.0 and norm.mean_weight.shape == (3,)


def test_adapt_on_an_array_matches_numpy(data):
    norm = layers.Normalization(dtype="float64")
    norm.adapt(data)
    mean, variance = numpy_stats(data, keep=(1,))
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(norm.variance, variance, rtol=1e-12)
    out = run(norm, data)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 1, rtol=1e-12)


@pytest.mark.parametrize("source", ["dataset-batches", "dataset-xy", "array-batch-size"])
def test_streaming_adapt_equals_the_one_shot_statistics(source, rng):
    # Far-off mean, small spread: the naive sum-of-squares formula would lose digits.
    x = rng.normal(1e6, 1e-2, (103, 4))
    norm = layers.Normalization()
    if source == "dataset-batches":
        norm.adapt(gn.data.Dataset.from_arrays(x).batch(10))
    elif source == "dataset-xy":
        norm.adapt(gn.data.Dataset.from_arrays(x, np.zeros(103)).shuffle(seed=0).batch(16))
    else:
        norm.adapt(x, batch_size=7)
    mean, variance = numpy_stats(x, keep=(1,))
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-14)
    np.testing.assert_allclose(norm.variance, variance, rtol=1e-7)


@pytest.mark.parametrize("axis, keep, shape", [
    (-1, (3,), (3,)),
    ((1, 2), (1, 2), (4, 5)),
    ([-1, 1], (1, 3), (4, 3)),
    (None, (), ()),
], ids=["channels", "two-axes", "list", "scalar"])
def test_per_axis_adapt(axis, keep, shape, rng):
    x = rng.normal(2.0, 3.0, (6, 4, 5, 3)) * rng.uniform(0.5, 2, (4, 5, 3))
    norm = layers.Normalization(axis=axis, dtype="float64")
    norm.adapt(x, batch_size=4)
    mean, variance = numpy_stats(x, keep)
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(norm.variance, variance, rtol=1e-12)
    out = run(norm, x)
    assert norm.mean_weight.shape == shape == norm.variance_weight.shape
    reduce = tuple(a for a in range(4) if a not in keep)
    np.testing.assert_allclose(out.mean(axis=reduce), 0, atol=1e-10)
    np.testing.assert_allclose(out.var(axis=reduce), 1, rtol=1e-10)


def test_batch_axis_statistics_keep_one_chunk(rng):
    # axis=0 keeps a statistic per row (Keras' batched scalars): no chunking by rows.
    x = rng.standard_normal((3, 4))
    norm = layers.Normalization(axis=0)
    norm.adapt(x, batch_size=1)
    np.testing.assert_allclose(norm.mean, x.mean(axis=1), rtol=1e-12)


def test_invert_undoes_normalization(data):
    norm = layers.Normalization(dtype="float64")
    norm.adapt(data)
    inverse = layers.Normalization(mean=norm.mean, variance=norm.variance, invert=True,
                                   dtype="float64")
    np.testing.assert_allclose(run(inverse, run(norm, data)), data, rtol=1e-12)
    np.testing.assert_allclose(run(inverse, np.zeros((1, 3))), [norm.mean], rtol=1e-12)


def test_constant_feature_maps_to_zero():
    x = np.array([[1.0, 2.0], [1.0, 4.0]])
    norm = layers.Normalization(dtype="float64")
    norm.adapt(x)
    out = run(norm, x)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 0], 0)


def test_integer_inputs_are_cast():
    norm = layers.Normalization(mean=1.0, variance=4.0)
    out = run(norm, np.array([[3, 5]], np.uint8), dtype="uint8")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[1.0, 2.0]])


def test_statistics_are_non_trainable_weights(data):
    norm = layers.Normalization()
    norm.adapt(data)
    run(norm, data, "float32")
    assert norm.weights == [norm.mean_weight, norm.variance_weight]
    assert [w.name for w in norm.weights] == ["normalization/mean", "normalization/variance"]
    assert norm.trainable_weights == [] and norm.non_trainable_weights == norm.weights
    assert all(not w.op.trainable and w.dtype == np.float32 for w in norm.weights)
    np.testing.assert_allclose(gn.Session().get(norm.mean_weight), data.mean(axis=0), rtol=1e-6)


def test_normalization_in_a_model_trains_and_predicts(data, rng):
    y = (data @ np.array([0.5, -0.2, 0.3]))[:, None]
    norm = layers.Normalization(input_shape=(3,))
    norm.adapt(data)
    model = gn.Sequential([norm, layers.Dense(1)])
    model.compile(optimizer=gn.optim.SGD(0.1), loss="mse")
    history = model.fit(data, y, epochs=5, batch_size=10, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert norm.mean_weight not in model.trainable_weights
    np.testing.assert_allclose(model.session.get(norm.mean_weight), data.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(model.session.get(norm.variance_weight), data.var(axis=0),
                               rtol=1e-6)
    normalized = gn.Sequential([norm]).predict(data)
    np.testing.assert_allclose(normalized, (data - data.mean(0)) / data.std(0), atol=1e-5)


def test_adapt_after_build_reaches_the_next_session(rng):
    norm = layers.Normalization(dtype="float64")
    norm.adapt(np.array([[0.0], [2.0]]))
    x = gn.placeholder((None, 1), "float64")
    out = norm(x)
    before = gn.Session()
    np.testing.assert_allclose(before.run(out, {x: [[3.0]]}), [[2.0]])
    norm.adapt(np.array([[10.0], [14.0]]))
    np.testing.assert_allclose(gn.Session().run(out, {x: [[14.0]]}), [[1.0]])
    # A Session that already holds the values keeps them (adapt belongs before training).
    np.testing.assert_allclose(before.run(out, {x: [[3.0]]}), [[2.0]])
    assert norm.get_config()["mean"] == [12.0]


def test_set_initial_value_checks_its_arguments():
    var = gn.variable(np.zeros(2, np.float32))
    set_initial_value(var, np.array([1.0, 2.0]))
    assert var.op.initial_value.dtype == np.float32 and var.op.initial_value.tolist() == [1, 2]
    with pytest.raises(gn.ShapeError, match="float32 \\(2,\\); got float64 \\(3,\\)"):
        set_initial_value(var, np.zeros(3))
    with pytest.raises(TypeError, match="expected a variable"):
        set_initial_value(gn.constant(1.0), 2.0)


def test_config_is_json_friendly_and_rebuilds_the_statistics(data):
    norm = layers.Normalization(axis=[-1], mean=np.zeros(3), variance=np.ones(3))
    norm.adapt(data)
    config = norm.get_config()
    json.dumps(serialize(config))
    assert norm.axis == (-1,) and config["invert"] is False
    clone = layers.Normalization.from_config({**config, "name": "clone"})
    out = run(clone, data, "float32")
    np.testing.assert_allclose(out, (data - data.mean(0)) / data.std(0), atol=1e-5)


def test_saved_model_keeps_the_statistics(data, tmp_path):
    norm = layers.Normalization(input_shape=(3,))
    norm.adapt(data)
    model = gn.Sequential([norm])
    model.save(tmp_path / "norm.npz")
    loaded = gn.load_model(tmp_path / "norm.npz")
    np.testing.assert_allclose(loaded.predict(data), model.predict(data), rtol=1e-6)


@pytest.mark.parametrize("invert", [False, True], ids=["forward", "invert"])
@pytest.mark.parametrize("config, shape, kept", [
    ({}, (4, 3), (3,)),
    ({"axis": (1, 2)}, (2, 3, 2), (3, 2)),
    ({"axis": None}, (3, 2), ()),
], ids=["last-axis", "two-axes", "scalar"])
def test_normalization_gradients(config, shape, kept, invert, rng):
    layer = functools.partial(layers.Normalization, invert=invert,
                              mean=rng.standard_normal(kept).tolist(),
                              variance=rng.uniform(0.5, 2.0, kept).tolist(), **config)
    check_layer(layer, rng.standard_normal(shape))


@pytest.mark.parametrize("scale, offset", [(0.5, 1.0), ([0.5, -2.0, 3.0], [0.0, 1.0, -1.0])],
                         ids=["scalar", "per-channel"])
def test_rescaling_values_and_gradients(scale, offset, rng):
    x = rng.standard_normal((4, 2, 3))
    _, out = check_layer(functools.partial(layers.Rescaling, scale, offset), x)
    np.testing.assert_allclose(out[0], x * np.asarray(scale) + np.asarray(offset), rtol=1e-12)


def test_rescaling_casts_images_and_keeps_a_plain_config():
    layer = layers.Rescaling(np.float32(1 / 255), offset=np.array(-0.5))
    out = run(layer, np.array([[0, 255]], np.uint8), dtype="uint8")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[-0.5, 0.5]], rtol=1e-6)
    assert isinstance(layer.scale, float) and isinstance(layer.offset, float)
    json.dumps(serialize(layer.get_config()))


# --------------------------------------------------------------------- errors


def test_missing_statistics_error_names_the_layer_and_adapt():
    with pytest.raises(ValueError, match="Normalization 'features' has no statistics: call "
                                         "features.adapt\\(x_train\\)"):
        gn.Sequential([layers.Normalization(name="features", input_shape=(3,))])


@pytest.mark.parametrize("make, error, message", [
    (lambda: layers.Normalization(mean=1.0), ValueError, "both mean and variance"),
    (lambda: layers.Normalization(variance=1.0), ValueError, "both mean and variance"),
    (lambda: layers.Normalization(mean=0.0, variance=[1.0, -1.0]), ValueError, "variance must"),
    (lambda: layers.Normalization(mean="a", variance=1.0), TypeError, "mean must be numeric"),
    (lambda: layers.Rescaling("half"), TypeError, "scale must be numeric"),
])
def test_constructor_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("layer, shape, message", [
    (layers.Normalization(mean=[0.0, 1.0], variance=[1.0, 1.0]), (None, 3),
     "mean of shape \\(2,\\) does not broadcast to the kept sizes \\(3,\\)"),
    (layers.Normalization(axis=2, mean=0.0, variance=1.0), (None, 3),
     "axis=2 does not fit input of shape \\(None, 3\\)"),
    (layers.Normalization(axis=1, mean=0.0, variance=1.0), (None, None),
     "sizes must be known"),
    (layers.Rescaling([1.0, 2.0]), (None, 3), "scale of shape \\(2,\\) does not broadcast"),
], ids=["mean-shape", "axis-range", "unknown-size", "rescaling-shape"])
def test_build_errors(layer, shape, message):
    with pytest.raises(gn.ShapeError, match=message):
        layer(gn.placeholder(shape))


def test_adapt_errors(data):
    norm = layers.Normalization(name="norm")
    with pytest.raises(TypeError, match="numeric data"):
        norm.adapt(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="not a graph node"):
        norm.adapt(gn.placeholder((None, 3)))
    with pytest.raises(ValueError, match="got no data"):
        norm.adapt(np.zeros((0, 3)))
    with pytest.raises(gn.ShapeError, match="batch axis"):
        norm.adapt(np.float64(1.0))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        norm.adapt(data, batch_size=0)
    with pytest.raises(TypeError, match="yields dicts"):
        norm.adapt(gn.data.Dataset.from_arrays({"a": data}).batch(10))
    ragged = gn.data.Dataset.from_arrays(data[:45]).batch(10).map(lambda b: b[:, :len(b) % 3 + 1])
    with pytest.raises(gn.ShapeError, match="differ in the kept axes"):
        norm.adapt(ragged)
    norm.adapt(data)
    norm(gn.placeholder((None, 3)))
    with pytest.raises(gn.ShapeError, match="built for kept sizes \\(3,\\).*has \\(4,\\)"):
        norm.adapt(np.zeros((5, 4)))
