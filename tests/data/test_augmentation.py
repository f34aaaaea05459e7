"""gn.data.augmentation: the layers' augmentations as NumPy functions for Dataset.map."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.data import DataError, Dataset, augmentation

PAIRS = [   # (function with its arguments, the layer that must compute the same)
    (lambda x, rng: augmentation.random_translation(x, 0.2, (-0.1, 0.3), rng=rng),
     lambda seed: gn.layers.RandomTranslation(0.2, (-0.1, 0.3), seed=seed)),
    (lambda x, rng: augmentation.random_rotation(x, 0.1, fill_mode="wrap", rng=rng),
     lambda seed: gn.layers.RandomRotation(0.1, fill_mode="wrap", seed=seed)),
    (lambda x, rng: augmentation.random_zoom(x, 0.2, 0.1, interpolation="nearest", rng=rng),
     lambda seed: gn.layers.RandomZoom(0.2, 0.1, interpolation="nearest", seed=seed)),
    (lambda x, rng: augmentation.random_crop(x, 5, 5, padding=2, rng=rng),
     lambda seed: gn.layers.RandomCrop(5, 5, padding=2, seed=seed)),
    (lambda x, rng: augmentation.random_flip(x, rng=rng),
     lambda seed: gn.layers.RandomFlip(seed=seed)),
    (lambda x, rng: augmentation.gaussian_noise(x, 0.5, rng=rng),
     lambda seed: gn.layers.GaussianNoise(0.5, seed=seed)),
    (lambda x, rng: augmentation.random_erasing(x, 0.7, rng=rng),
     lambda seed: gn.layers.RandomErasing(0.7, seed=seed)),
]


def _images(batch=6):
    return np.random.default_rng(0).random((batch, 7, 7, 3)).astype(np.float32)


@pytest.mark.parametrize("function, layer", PAIRS)
def test_each_function_computes_what_its_layer_does(function, layer):
    x = _images()
    node = gn.placeholder((None, 7, 7, 3), "float32")
    expected = gn.Session().run(layer(11)(node, training=True), {node: x})
    got = function(x, 11)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_in_a_dataset_pipeline_every_epoch_differs():
    x, y = _images(12), np.arange(12)
    rng = np.random.default_rng(0)
    data = Dataset.from_arrays(x, y).batch(4).map(
        lambda xb, yb: (augmentation.random_translation(xb, 0.2, 0.2, rng=rng), yb))
    first, second = [b for b, _ in data], [b for b, _ in data]
    assert [b.shape for b in first] == [(4, 7, 7, 3)] * 3
    assert not np.array_equal(first[0], second[0])


def test_bad_batches():
    with pytest.raises(DataError, match="float batch of images"):
        augmentation.random_rotation(np.zeros((4, 7, 7), np.float32), 0.1)
    with pytest.raises(DataError, match="a 9x9 window does not fit"):
        augmentation.random_crop(_images(), 9, 9)
    with pytest.raises(DataError, match="mode must be one of"):
        augmentation.random_flip(_images(), "sideways")
