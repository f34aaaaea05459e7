"""Augmentation layers (graphnet/layers/augmentation.py): training only, seeded, per image."""

import functools
import itertools
import json

import numpy as np
import pytest

import graphnet as gn
from graphnet.nn import image
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


def _images(batch=8, seed=0, dtype="float32", size=(6, 6, 2)):
    return np.random.default_rng(seed).random((batch, *size)).astype(dtype)


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
    json.dumps(LAYERS[name](seed=0).get_config())    # constructor arguments are JSON-friendly


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
    gn.random.seed(7)                                 # seed=None: the global generator
    (unseeded,) = _run(LAYERS[name](), x)
    gn.random.seed(7)
    np.testing.assert_array_equal(_run(LAYERS[name](), x)[0], unseeded)


def _fixed(height_factor, width_factor, **kwargs):
    """A translation by exactly those fractions (a range of one value)."""
    return layers.RandomTranslation((height_factor, height_factor),
                                    (width_factor, width_factor), **kwargs)


def test_translation_by_one_pixel_with_constant_fill():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    (down,) = _run(_fixed(0.25, 0.0, fill_mode="constant", fill_value=-1.0), x)
    np.testing.assert_array_equal(down[0, :, :, 0], np.vstack([[-1] * 4, x[0, :3, :, 0]]))
    (left,) = _run(_fixed(0.0, -0.25, fill_mode="constant", fill_value=-1.0), x)
    np.testing.assert_array_equal(left[0, :, :, 0],
                                  np.hstack([x[0, :, 1:, 0], [[-1]] * 4]))


PAD_MODES = {"constant": "constant", "nearest": "edge", "reflect": "symmetric", "wrap": "wrap"}


@pytest.mark.parametrize("fill_mode", image.FILL_MODES)
@pytest.mark.parametrize("interpolation", image.INTERPOLATIONS)
def test_whole_pixel_shifts_match_numpy_pad(fill_mode, interpolation):
    """Shifting down 2 and right 1 is np.pad with the matching mode, then a slice."""
    x = _images(2, size=(5, 6, 3))
    layer = _fixed(2 / 5, 1 / 6, fill_mode=fill_mode, interpolation=interpolation,
                   fill_value=0.5)
    (out,) = _run(layer, x)
    extra = {"constant_values": 0.5} if fill_mode == "constant" else {}
    padded = np.pad(x, ((0, 0), (2, 0), (1, 0), (0, 0)), mode=PAD_MODES[fill_mode], **extra)
    np.testing.assert_allclose(out, padded[:, :5, :6], atol=1e-6)


@pytest.mark.parametrize("fill_mode", image.FILL_MODES)
def test_half_pixel_shift_is_the_mean_of_two_rows(fill_mode):
    x = _images(2, size=(5, 4, 1))
    (out,) = _run(_fixed(0.1, 0.0, fill_mode=fill_mode), x)        # half a row down
    padded = np.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)), mode=PAD_MODES[fill_mode])
    np.testing.assert_allclose(out, (padded[:, :5] + padded[:, 1:]) / 2, atol=1e-6)
    (nearest,) = _run(_fixed(0.1, 0.0, fill_mode=fill_mode, interpolation="nearest"), x)
    np.testing.assert_array_equal(nearest, x)                      # 0.5 rounds up: no move


def test_quarter_turn_and_zoom_out():
    square = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1)
    for interpolation in image.INTERPOLATIONS:                     # counter-clockwise (Keras)
        (turned,) = _run(layers.RandomRotation((0.25, 0.25), interpolation=interpolation),
                         square)
        np.testing.assert_allclose(turned[0, :, :, 0], np.rot90(square[0, :, :, 0]), atol=1e-4)
    (small,) = _run(layers.RandomZoom((1.0, 1.0), fill_mode="constant", fill_value=-1), square)
    expected = np.full((5, 5), -1.0)
    expected[1:4, 1:4] = square[0, ::2, ::2, 0]                    # half size, centred
    np.testing.assert_allclose(small[0, :, :, 0], expected, atol=1e-5)


def test_flips():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    copies = np.repeat(x, 64, axis=0)
    variants = {"horizontal": [x[0], x[0, :, ::-1]], "vertical": [x[0], x[0, ::-1]],
                "horizontal_and_vertical": [x[0], x[0, :, ::-1], x[0, ::-1], x[0, ::-1, ::-1]]}
    for mode, allowed in variants.items():
        (outs,) = _run(layers.RandomFlip(mode, seed=0), copies)
        seen = [[np.array_equal(o, a) for a in allowed] for o in outs]
        assert all(any(s) for s in seen), mode                     # only those variants
        assert all(np.any(seen, axis=0)), mode                     # and every one of them


def test_random_crop_reads_windows_of_the_padded_images():
    x = _images(12, size=(6, 6, 1))
    (out,) = _run(layers.RandomCrop(4, 5, padding=1, seed=0), x)
    assert out.shape == (12, 4, 5, 1)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    offsets = set()
    for b in range(len(x)):
        found = [(i, j) for i, j in itertools.product(range(5), range(4))
                 if np.array_equal(out[b], padded[b, i:i + 4, j:j + 5])]
        assert found, f"image {b} is not a window of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 3


def test_random_crop_at_inference_takes_the_centre():
    x = np.arange(36, dtype=np.float32).reshape(1, 6, 6, 1)
    (out,) = _run(layers.RandomCrop(4, 4), x, training=False)
    np.testing.assert_array_equal(out, x[:, 1:5, 1:5])
    (padded,) = _run(layers.RandomCrop(8, 8, padding=1), x, training=False)
    np.testing.assert_array_equal(padded[0, 1:7, 1:7], x[0])
    assert padded[0, 0].sum() == 0 and padded.dtype == np.float32


def test_erasing_sets_one_rectangle_inside_each_image_to_value():
    x = _images(16, size=(8, 10, 2))
    (out,) = _run(layers.RandomErasing(1.0, value=-5.0, seed=1), x)
    for b in range(len(x)):
        erased = np.all(out[b] == -5.0, axis=-1)
        rows, cols = np.nonzero(erased)
        assert rows.size, f"image {b} was not erased"
        h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert erased.sum() == h * w and h < 8 and w < 10          # one rectangle inside
        assert 0.02 * 80 * 0.5 <= h * w <= 0.33 * 80 * 1.5
        np.testing.assert_array_equal(out[b][~erased], x[b][~erased])
    (never,) = _run(layers.RandomErasing(0.0, seed=1), x)
    np.testing.assert_array_equal(never, x)


@pytest.fixture
def fixed_draws(monkeypatch):
    """Every random op draws the same numbers each run, so a layer is a fixed
    function of x for the length of a central-difference check."""
    monkeypatch.setattr(image.RandomOp, "rng",
                        property(lambda op: np.random.default_rng(1234)))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_by_central_differences(name, fixed_draws):
    x = np.random.default_rng(1).standard_normal((3, 6, 6, 2))
    check_layer(functools.partial(LAYERS[name], seed=7), x, training=True)


@pytest.mark.parametrize("fill_mode", image.FILL_MODES)
def test_geometric_gradients_by_central_differences(fill_mode, fixed_draws):
    x = np.random.default_rng(2).standard_normal((2, 5, 4, 1))
    check_layer(functools.partial(layers.RandomRotation, 0.2, fill_mode=fill_mode,
                                  fill_value=0.7), x, training=True)


def test_a_model_trains_with_augmentation_and_predicts_without_it():
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int64)

    def head():
        return [layers.Conv2D(4, 3, activation="relu"), layers.Flatten(),
                layers.Dense(2, activation="softmax")]
    model = gn.Sequential([
        layers.RandomTranslation(0.1, 0.1, seed=0, input_shape=(8, 8, 1)),
        layers.RandomFlip("horizontal", seed=1),
        layers.RandomErasing(0.3, seed=2),
        layers.GaussianNoise(0.05, seed=3),
        *head(),
    ])
    model.compile(optimizer=gn.optim.Adam(1e-2), loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0, seed=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    predicted = model.predict(x)
    assert predicted.dtype == np.float32
    np.testing.assert_array_equal(predicted, model.predict(x))
    bare = gn.Sequential(head())                     # the same network, no augmentation
    bare.build((None, 8, 8, 1))
    bare.set_weights(model.get_weights())
    np.testing.assert_allclose(bare.predict(x), predicted, rtol=1e-6)


def test_bad_arguments():
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        layers.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="interpolation must be one of"):
        layers.RandomTranslation(0.1, 0.1, interpolation="bicubic")
    with pytest.raises(ValueError, match="mode must be one of"):
        layers.RandomFlip("diagonal")
    with pytest.raises(gn.ShapeError, match="a 9x9 window for 6x6 images padded by 1"):
        layers.RandomCrop(9, 9, padding=1)(gn.placeholder((None, 6, 6, 1)))
    with pytest.raises(gn.ShapeError, match="expects a batch of images"):
        layers.RandomZoom(0.1)(gn.placeholder((None, 6, 6)))
    with pytest.raises(gn.ShapeError, match="must be floating-point, got int64"):
        layers.RandomFlip()(gn.placeholder((None, 6, 6, 1), "int64"))
    with pytest.raises(gn.ShapeError, match="expected floating-point inputs, got int32"):
        layers.GaussianNoise(0.1)(gn.placeholder((None, 3), "int32"))
    with pytest.raises(ValueError, match=r"RandomZoom height_factor: .*within \[-1, 1\]"):
        layers.RandomZoom((-1.5, 0.2))
    with pytest.raises(ValueError, match="RandomTranslation width_factor: lower bound"):
        layers.RandomTranslation(0.1, (0.2, -0.2))
    with pytest.raises(ValueError, match="RandomRotation factor: expected a number or"):
        layers.RandomRotation("0.1")
    with pytest.raises(ValueError, match="probability must be in"):
        layers.RandomErasing(1.5)
    with pytest.raises(ValueError, match="scale within"):
        layers.RandomErasing(scale=(0.5, 0.1))
    with pytest.raises(ValueError, match="stddev must be >= 0"):
        layers.GaussianNoise(-1.0)
