"""gn.data.augmentation: the layers' augmentations as NumPy functions for Dataset.map."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.data import DataError, Dataset, augmentation

PAIRS = {   # name: (function with its arguments, the layer that must compute the same)
    "translation": (
        lambda x, rng: augmentation.random_translation(x, 0.2, (-0.1, 0.3), rng=rng),
        lambda seed: gn.layers.RandomTranslation(0.2, (-0.1, 0.3), seed=seed)),
    "rotation": (
        lambda x, rng: augmentation.random_rotation(x, 0.1, fill_mode="wrap", rng=rng),
        lambda seed: gn.layers.RandomRotation(0.1, fill_mode="wrap", seed=seed)),
    "zoom": (
        lambda x, rng: augmentation.random_zoom(x, 0.5, 0.3, interpolation="nearest", rng=rng),
        lambda seed: gn.layers.RandomZoom(0.5, 0.3, interpolation="nearest", seed=seed)),
    "zoom_constant": (
        lambda x, rng: augmentation.random_zoom(x, (-0.3, 0.4), fill_mode="constant",
                                                fill_value=0.25, rng=rng),
        lambda seed: gn.layers.RandomZoom((-0.3, 0.4), fill_mode="constant", fill_value=0.25,
                                          seed=seed)),
    "crop": (
        lambda x, rng: augmentation.random_crop(x, 5, 5, padding=2, rng=rng),
        lambda seed: gn.layers.RandomCrop(5, 5, padding=2, seed=seed)),
    "flip": (
        lambda x, rng: augmentation.random_flip(x, "horizontal_and_vertical", rng=rng),
        lambda seed: gn.layers.RandomFlip("horizontal_and_vertical", seed=seed)),
    "noise": (
        lambda x, rng: augmentation.gaussian_noise(x, 0.5, rng=rng),
        lambda seed: gn.layers.GaussianNoise(0.5, seed=seed)),
    "erasing": (
        lambda x, rng: augmentation.random_erasing(x, 0.7, value=-1.0, rng=rng),
        lambda seed: gn.layers.RandomErasing(0.7, value=-1.0, seed=seed)),
}


def _images(batch=6, dtype=np.float32):
    return np.random.default_rng(0).random((batch, 7, 7, 3)).astype(dtype)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_each_function_computes_what_its_layer_does(name):
    function, layer = PAIRS[name]
    x = _images()
    node = gn.placeholder((None, 7, 7, 3), "float32")
    expected = gn.Session().run(layer(11)(node, training=True), {node: x})
    got = function(x, 11)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_seeded_per_image_and_dtype_kept(name):
    function, _ = PAIRS[name]
    x = np.repeat(_images(1, np.float64), 16, axis=0)   # sixteen copies of one image
    first = function(x, 3)
    assert first.dtype == np.float64
    np.testing.assert_array_equal(function(x, 3), first)                 # same seed
    assert not np.array_equal(function(x, 4), first)                     # another seed
    assert len({image.tobytes() for image in first}) > 2                 # each image its own
    rng = np.random.default_rng(3)                                       # a generator: the
    np.testing.assert_array_equal(function(x, rng), first)               # same stream,
    assert not np.array_equal(function(x, rng), first)                   # then new draws
    gn.random.seed(1)                                                    # None: global
    unseeded = function(x, None)
    gn.random.seed(1)
    np.testing.assert_array_equal(function(x, None), unseeded)


def test_in_a_dataset_pipeline_every_epoch_differs():
    x, y = _images(12), np.arange(12)
    rng = np.random.default_rng(0)
    data = Dataset.from_arrays(x, y).batch(4).map(
        lambda xb, yb: (augmentation.random_translation(xb, 0.2, 0.2, rng=rng), yb))
    first, second = [b for b, _ in data], [b for b, _ in data]
    assert [b.shape for b in first] == [(4, 7, 7, 3)] * 3
    assert not np.array_equal(first[0], second[0])


def test_exact_cases():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    down = augmentation.random_translation(x, (0.25, 0.25), 0.0, fill_mode="constant",
                                           fill_value=-1.0)
    np.testing.assert_array_equal(down[0, :, :, 0], np.vstack([[-1] * 4, x[0, :3, :, 0]]))
    turned = augmentation.random_rotation(x, (0.25, 0.25), interpolation="nearest")
    np.testing.assert_array_equal(turned[0, :, :, 0], np.rot90(x[0, :, :, 0]))
    erased = augmentation.random_erasing(np.ones((8, 6, 6, 1)), 1.0, value=3.0, rng=0)
    assert set(np.unique(erased)) == {1.0, 3.0}


def test_bad_batches():
    with pytest.raises(DataError, match="float batch of images"):
        augmentation.random_rotation(np.zeros((4, 7, 7), np.float32), 0.1)
    with pytest.raises(DataError, match="float batch of images"):
        augmentation.random_flip(np.zeros((4, 7, 7, 1), np.uint8))
    with pytest.raises(DataError, match="a 9x9 window does not fit"):
        augmentation.random_crop(_images(), 9, 9)
    with pytest.raises(DataError, match="mode must be one of"):
        augmentation.random_flip(_images(), "sideways")
    with pytest.raises(DataError, match="fill_mode must be one of"):
        augmentation.random_zoom(_images(), 0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match=r"height_factor: .*within \[-1, 1\]"):
        augmentation.random_translation(_images(), 2.0, 0.1)
    with pytest.raises(ValueError, match="probability must be in"):
        augmentation.random_erasing(_images(), 2.0)
