"""Augmentation layers (graphnet/layers/augmentation.py): training only, seeded, per image."""

import functools

import numpy as np
import pytest

import graphnet as gn
from graphnet.testing import check_layer

layers = gn.layers

LAYERS = {
    "RandomTranslation": functools.partial(layers.RandomTranslation, 0.2, 0.2),
    "RandomRotation": functools.partial(layers.RandomRotation, 0.1),
    "RandomZoom": functools.partial(layers.RandomZoom, (-0.2, 0.3)),
    "RandomCrop": functools.partial(layers.RandomCrop, 6, 6, padding=2),
    "RandomFlip": functools.partial(layers.RandomFlip, "horizontal_and_vertical"),
    "GaussianNoise": functools.partial(layers.GaussianNoise, 0.3),
    "RandomErasing": functools.partial(layers.RandomErasing, 1.0),
}


def _images(batch=8, seed=0, dtype="float32"):
    return np.random.default_rng(seed).random((batch, 6, 6, 2)).astype(dtype)


def _run(layer, x, training=True, times=1):
    node = gn.placeholder((None,) + x.shape[1:], x.dtype.name, name="x")
    out = layer(node, training=training)
    sess = gn.Session()
    return [sess.run(out, {node: x}) for _ in range(times)]


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_identity_at_inference_and_dtype_kept(name):
    x = _images()
    (out,) = _run(LAYERS[name](seed=0), x, training=False)
    np.testing.assert_array_equal(out, x)
    (trained,) = _run(LAYERS[name](seed=0), x)
    assert trained.dtype == np.float32 and trained.shape == x.shape
    assert not np.array_equal(trained, x)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_seeded_each_run_new_and_each_image_its_own(name):
    x = np.repeat(_images(1), 16, axis=0)            # sixteen copies of one image
    first, second = _run(LAYERS[name](seed=3), x, times=2)
    again, _ = _run(LAYERS[name](seed=3), x, times=2)
    np.testing.assert_array_equal(first, again)      # same seed, same sequence
    assert not np.array_equal(first, second)         # a new draw every run
    distinct = {out.tobytes() for out in first}
    assert len(distinct) > 2, "every image should get its own transform"
    other, _ = _run(LAYERS[name](seed=4), x, times=2)
    assert not np.array_equal(first, other)


def test_exact_translation_flip_and_erasing():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    shift = layers.RandomTranslation((0.25, 0.25), (0.0, 0.0), fill_mode="constant",
                                     fill_value=-1.0)
    (out,) = _run(shift, x)
    np.testing.assert_array_equal(out[0, :, :, 0], np.vstack([[-1] * 4, x[0, :3, :, 0]]))
    flip = layers.RandomFlip("horizontal", seed=0)
    outs = _run(flip, np.repeat(x, 32, axis=0))[0]
    flipped = np.array([np.array_equal(o, x[0, :, ::-1]) for o in outs])
    same = np.array([np.array_equal(o, x[0]) for o in outs])
    assert (flipped | same).all() and flipped.any() and same.any()
    (erased,) = _run(layers.RandomErasing(1.0, value=-5.0, seed=1), np.ones((4, 8, 8, 1),
                                                                            np.float32))
    assert set(np.unique(erased)) == {-5.0, 1.0}


def test_random_crop_at_inference_takes_the_centre():
    x = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    (out,) = _run(layers.RandomCrop(4, 4), x, training=False)
    np.testing.assert_array_equal(out, x[:, 1:5, 1:5])
    (padded,) = _run(layers.RandomCrop(8, 8, padding=1), x, training=False)
    np.testing.assert_array_equal(padded[0, 1:7, 1:7], x[0])
    assert padded[0, 0].sum() == 0


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_are_the_adjoint_of_what_the_run_drew(name):
    """Each layer is linear in x for the numbers a run draws (fills are zero here),
    so within one run sum(w * y) equals <dL/dx, x>; noise adds <w, noise>."""
    x = np.random.default_rng(1).standard_normal((3, 6, 6, 2))
    node = gn.placeholder((None, 6, 6, 2), "float64", name="x")
    layer = LAYERS[name](seed=7, dtype="float64")
    if name in ("RandomTranslation", "RandomRotation", "RandomZoom"):
        layer.fill_mode = "constant"
    out = layer(node, training=True)
    weights = np.random.default_rng(2).standard_normal((3,) + out.shape[1:])
    loss = gn.sum(out * weights)
    value, grad, y = gn.Session().run([loss, gn.gradients(loss, node), out], {node: x})
    if name == "GaussianNoise":
        np.testing.assert_array_equal(grad, weights)
        return
    assert value == pytest.approx(float((grad * x).sum()), rel=1e-10, abs=1e-10)
    assert float((y * weights).sum()) == pytest.approx(value, rel=1e-12)


def test_flip_gradient_by_check_layer():
    check_layer(functools.partial(layers.RandomFlip, "vertical", seed=2),
                np.random.default_rng(0).standard_normal((3, 4, 4, 1)), training=False)


def test_a_model_trains_with_augmentation_and_predicts_without_it():
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)
    model = gn.Sequential([
        layers.RandomTranslation(0.1, 0.1, seed=0, input_shape=(8, 8, 1)),
        layers.RandomErasing(0.3, seed=1),
        layers.GaussianNoise(0.05, seed=2),
        layers.Conv2D(4, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=0)
    assert np.isfinite(history.history["loss"]).all()
    np.testing.assert_array_equal(model.predict(x), model.predict(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        layers.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="mode must be one of"):
        layers.RandomFlip("diagonal")
    with pytest.raises(ValueError, match="a 9x9 window does not fit 6x6 images padded by 1"):
        layers.RandomCrop(9, 9, padding=1)(gn.placeholder((None, 6, 6, 1)))
    with pytest.raises(gn.ShapeError, match="expects a batch of images"):
        layers.RandomZoom(0.1)(gn.placeholder((None, 6, 6)))
    with pytest.raises(ValueError, match="must be above -1"):
        layers.RandomZoom((-1.0, 0.2))
    with pytest.raises(ValueError, match="probability must be in"):
        layers.RandomErasing(1.5)
