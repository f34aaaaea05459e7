"""gn.nn.image: resampling against a per-pixel loop, fill modes, random draws, gradients."""

import math

import numpy as np
import pytest

import graphnet as gn
from graphnet.graph import apply
from graphnet.nn import image
from graphnet.testing import check_gradients


def _fold(i, n, mode):
    if mode == "nearest":
        return min(max(i, 0), n - 1)
    if mode == "wrap":
        return i % n
    if mode == "reflect":
        i = i % (2 * n)
        return i if i < n else 2 * n - 1 - i
    return i      # constant: checked by the caller


def reference(x, transforms, mode, interpolation, fill=0.0, out_size=None):
    """One output pixel at a time, from the definitions (tests only)."""
    batch, h, w, c = x.shape
    oh, ow = out_size or (h, w)
    out = np.zeros((batch, oh, ow, c))
    for b in range(batch):
        m = transforms[b if len(transforms) > 1 else 0]
        for r in range(oh):
            for q in range(ow):
                sr = m[0, 0] * r + m[0, 1] * q + m[0, 2]
                sc = m[1, 0] * r + m[1, 1] * q + m[1, 2]
                if interpolation == "nearest":
                    taps = [(math.floor(sr + 0.5), math.floor(sc + 0.5), 1.0)]
                else:
                    r0, c0 = math.floor(sr), math.floor(sc)
                    fr, fc = sr - r0, sc - c0
                    taps = [(r0, c0, (1 - fr) * (1 - fc)), (r0, c0 + 1, (1 - fr) * fc),
                            (r0 + 1, c0, fr * (1 - fc)), (r0 + 1, c0 + 1, fr * fc)]
                for i, j, weight in taps:
                    if mode == "constant" and not (0 <= i < h and 0 <= j < w):
                        out[b, r, q] += weight * fill
                    else:
                        out[b, r, q] += weight * x[b, _fold(i, h, mode), _fold(j, w, mode)]
    return out


def _transforms(rng, batch, size):
    return image.affine_matrices(rng, batch, size, translate=((-0.4, 0.4), (-0.4, 0.4)),
                                 rotate=(-0.2, 0.2), zoom=((-0.3, 0.5), (-0.2, 0.2)))


@pytest.mark.parametrize("mode", image.FILL_MODES)
@pytest.mark.parametrize("interpolation", image.INTERPOLATIONS)
def test_resample_matches_a_per_pixel_loop(mode, interpolation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7, 2))
    transforms = _transforms(rng, 3, (5, 7))
    node = gn.placeholder((None, 5, 7, 2), "float64")
    t = gn.placeholder((None, 2, 3), "float64")
    out = gn.Session().run(image.resample(node, t, mode, interpolation, fill_value=0.5),
                           {node: x, t: transforms})
    np.testing.assert_allclose(out, reference(x, transforms, mode, interpolation, 0.5),
                               rtol=1e-10, atol=1e-12)


def test_resample_to_another_size_with_one_transform_for_all():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 6, 1))
    one = _transforms(rng, 1, (5, 6))
    got = image.sample(x, one, (3, 8), "reflect", "bilinear")
    np.testing.assert_allclose(got, reference(x, one, "reflect", "bilinear", out_size=(3, 8)),
                               rtol=1e-10, atol=1e-12)


def test_exact_shifts_rotations_and_zooms():
    x = np.arange(12, dtype=np.float64).reshape(1, 3, 4, 1)
    down_one = np.array([[[1.0, 0, -1], [0, 1.0, 0]]])   # output row r reads input row r - 1
    got = image.sample(x, down_one, fill_mode="constant", fill_value=-1.0)
    np.testing.assert_array_equal(got[0, :, :, 0], [[-1] * 4, [0, 1, 2, 3], [4, 5, 6, 7]])
    first_rows = {"reflect": [0, 1, 2, 3],     # d c b a | a b c d
                  "nearest": [0, 1, 2, 3],     # a a a a | a b c d
                  "wrap": [8, 9, 10, 11]}      # a b c d | a b c d
    for mode, row in first_rows.items():
        np.testing.assert_array_equal(image.sample(x, down_one, fill_mode=mode)[0, 0, :, 0], row)
    # a quarter turn, counter-clockwise as in Keras, on odd and even sizes
    for n in (3, 4):
        square = np.arange(n * n, dtype=np.float64).reshape(1, n, n, 1)
        quarter = image.affine_matrices(np.random.default_rng(0), 1, (n, n), rotate=(0.25, 0.25))
        for interpolation in image.INTERPOLATIONS:
            np.testing.assert_allclose(image.sample(square, quarter, None, "constant",
                                                    interpolation)[0, :, :, 0],
                                       np.rot90(square[0, :, :, 0], k=1), atol=1e-12)
    # zooming in by half on a ramp (bilinear is exact on linear images): the centre stays
    ramp = np.tile(np.arange(5.0)[:, None, None], (1, 1, 5, 1))
    zoom_in = image.affine_matrices(np.random.default_rng(0), 1, (5, 5),
                                    zoom=((-0.5, -0.5), None))
    np.testing.assert_allclose(image.sample(ramp, zoom_in)[0, :, 0, 0], [1, 1.5, 2, 2.5, 3])
    # Keras' translation: a positive height factor moves the picture down
    shift = image.affine_matrices(np.random.default_rng(0), 1, (3, 4),
                                  translate=((1 / 3, 1 / 3), (0.0, 0.0)))
    np.testing.assert_allclose(shift, down_one, atol=1e-12)


def test_random_affine_draws_one_transform_per_image_and_follows_its_seed():
    x = gn.placeholder((None, 6, 6, 1))
    values = np.zeros((8, 6, 6, 1), np.float32)
    sess = gn.Session()
    draws = image.random_affine(x, 0.2, 0.2, 0.1, seed=3)
    seeded = [sess.run(draws, {x: values}) for _ in range(2)]
    again = sess.run(image.random_affine(x, 0.2, 0.2, 0.1, seed=3), {x: values})
    np.testing.assert_array_equal(seeded[0], again)                 # same seed, same draws
    assert not np.array_equal(seeded[0], seeded[1])                 # new numbers each run
    assert len({t.tobytes() for t in seeded[0]}) == 8               # one per image
    expected = image.affine_matrices(np.random.default_rng(3), 8, (6, 6),
                                     translate=((-0.2, 0.2), (-0.2, 0.2)), rotate=(-0.1, 0.1))
    np.testing.assert_array_equal(seeded[0], expected)
    two = [image.random_affine(x, rotation=0.1), image.random_affine(x, rotation=0.1)]
    first, second = sess.run(two, {x: values})                      # never merged
    assert not np.array_equal(first, second)
    gn.random.seed(5)
    unseeded = sess.run(two[0], {x: values})
    gn.random.seed(5)
    np.testing.assert_array_equal(sess.run(two[0], {x: values}), unseeded)


def test_crop_offsets_read_a_window_of_the_padded_images():
    x = np.random.default_rng(0).random((40, 6, 6, 1))
    node = gn.placeholder((None, 6, 6, 1), "float64")
    offsets = apply(image.RandomCropOffsets(seed=2, out_size=(4, 5), padding=2), node)
    crops = image.resample(node, offsets, "constant", "nearest", out_size=(4, 5))
    m, out = gn.Session().run([offsets, crops], {node: x})
    tops, lefts = m[:, 0, 2].astype(int), m[:, 1, 2].astype(int)
    assert tops.min() == -2 and tops.max() == 6 + 2 - 4      # within the padded image
    assert lefts.min() == -2 and lefts.max() == 6 + 2 - 5
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for b in range(len(x)):
        window = padded[b, tops[b] + 2:tops[b] + 6, lefts[b] + 2:lefts[b] + 7]
        np.testing.assert_array_equal(out[b], window)


def test_erasing_masks_and_flip_masks():
    mask = image.erasing_mask(np.random.default_rng(1), 200, (20, 30), 0.5, (0.02, 0.33),
                              (0.3, 3.3))
    assert mask.dtype == bool and mask.shape == (200, 20, 30, 1)
    erased = (~mask).reshape(200, -1).sum(axis=1)
    assert 0.35 < (erased > 0).mean() < 0.65
    assert erased.max() <= 0.33 * 600 + 40
    for b in np.flatnonzero(erased):               # one rectangle: rows x cols, inside
        rows, cols = np.nonzero(~mask[b, :, :, 0])
        assert erased[b] == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
        assert np.ptp(rows) + 1 < 20 and np.ptp(cols) + 1 < 30
    always = image.erasing_mask(np.random.default_rng(2), 50, (20, 30), 1.0, (0.1, 0.2),
                                (0.5, 2.0))
    assert (~always).reshape(50, -1).sum(axis=1).min() >= 0.1 * 600 * 0.8
    flips = image.flip_masks(np.random.default_rng(0), 400, 2)
    assert flips.shape == (400, 1, 1, 2) and 0.4 < flips.mean() < 0.6
    assert 0.15 < (flips[..., 0] & flips[..., 1]).mean() < 0.35     # independent axes


@pytest.mark.parametrize("mode, interpolation, out_size", [
    ("reflect", "bilinear", None), ("constant", "bilinear", None), ("nearest", "bilinear", None),
    ("wrap", "nearest", None), ("reflect", "bilinear", (3, 6))])
def test_resample_gradients_in_float64(mode, interpolation, out_size):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 5, 2))
    transforms = _transforms(rng, 2, (4, 5))
    check_gradients(lambda a, t: image.resample(a, t, mode, interpolation, 0.3, out_size),
                    [x, transforms], wrt=[0])

    def twice(a, t):   # the adjoint's own gradient (second order)
        y = image.resample(a, t, mode, interpolation, out_size=out_size)
        return gn.gradients(gn.sum(gn.square(y)), a)
    check_gradients(twice, [x, transforms], wrt=[0])


def test_float32_in_float32_out_and_no_gradient_for_transforms():
    x = gn.placeholder((None, 4, 4, 3), "float32")
    t = image.random_affine(x, rotation=0.1, seed=0)
    y = image.resample(x, t)
    dx, dt = gn.gradients(gn.sum(y), [x, t])
    out, grad, zeros = gn.Session().run([y, dx, dt], {x: np.ones((2, 4, 4, 3), np.float32)})
    assert out.dtype == np.float32 and grad.dtype == np.float32
    np.testing.assert_array_equal(zeros, 0)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)    # reflect keeps a constant image


def test_bad_arguments():
    x = gn.placeholder((None, 4, 4), "float32")
    with pytest.raises(gn.ShapeError, match=r"expects a batch of images .* got \(None, 4, 4\)"):
        image.resample(x, gn.placeholder((None, 2, 3), "float64"))
    images = gn.placeholder((5, 4, 4, 1))
    with pytest.raises(gn.ShapeError, match=r"transforms of shape \(batch, 2, 3\).*\(5, 3, 3\)"):
        image.resample(images, gn.placeholder((5, 3, 3)))
    with pytest.raises(gn.ShapeError, match="got 3 transforms for a batch of 5"):
        image.resample(images, gn.placeholder((3, 2, 3)))
    with pytest.raises(gn.ShapeError, match="must be floating-point, got int64"):
        image.random_affine(gn.placeholder((None, 4, 4, 1), "int64"), rotation=0.1)
    with pytest.raises(gn.ShapeError, match="a 9x9 window for 4x4 images padded by 1"):
        apply(image.RandomCropOffsets(out_size=(9, 9), padding=1), images)
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        image.resample(gn.placeholder((None, 4, 4, 1)), gn.placeholder((None, 2, 3)), "mirror")
    with pytest.raises(ValueError, match="lower bound 0.3 is above upper bound 0.1"):
        image.factor_range((0.3, 0.1), "height_factor")
    with pytest.raises(ValueError, match=r"within \[-1, 1\], got \(-1.5, 1.5\)"):
        image.random_affine(images, rotation=1.5)
    with pytest.raises(ValueError, match=r"number or a \(lower, upper\) pair, got \(0.1,\)"):
        image.factor_range((0.1,), "height_factor")
    with pytest.raises(ValueError, match="probability must be in"):
        image.erasing_arguments(1.5, (0.02, 0.33), (0.3, 3.3))
