"""gn.nn.image: resampling against a per-pixel loop, fill modes, masks, gradients."""

import math

import numpy as np
import pytest

import graphnet as gn
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


@pytest.mark.parametrize("mode", image.FILL_MODES)
@pytest.mark.parametrize("interpolation", image.INTERPOLATIONS)
def test_resample_matches_a_per_pixel_loop(mode, interpolation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7, 2))
    transforms = image.affine_matrices(rng, 3, (5, 7), translate=((-0.4, 0.4), (-0.4, 0.4)),
                                       rotate=(-0.2, 0.2), zoom=((-0.3, 0.5), None))
    node = gn.placeholder((None, 5, 7, 2), "float64")
    t = gn.placeholder((None, 2, 3), "float64")
    out = gn.Session().run(image.resample(node, t, mode, interpolation, fill_value=0.5),
                           {node: x, t: transforms})
    np.testing.assert_allclose(out, reference(x, transforms, mode, interpolation, 0.5),
                               rtol=1e-10, atol=1e-12)


def test_exact_cases():
    x = np.arange(12, dtype=np.float64).reshape(1, 3, 4, 1)
    down_one = np.array([[[1.0, 0, -1], [0, 1.0, 0]]])   # output row r reads input row r - 1
    got = image.sample(x, down_one, fill_mode="constant", fill_value=-1.0)
    np.testing.assert_array_equal(got[0, :, :, 0], [[-1] * 4, [0, 1, 2, 3], [4, 5, 6, 7]])
    quarter = image.affine_matrices(np.random.default_rng(0), 1, (3, 3), rotate=(0.25, 0.25))
    square = np.arange(9.0).reshape(1, 3, 3, 1)
    np.testing.assert_allclose(image.sample(square, quarter)[0, :, :, 0],
                               np.rot90(square[0, :, :, 0], k=-1), atol=1e-12)
    reflect = image.sample(x, down_one, fill_mode="reflect")
    np.testing.assert_array_equal(reflect[0, 0, :, 0], [0, 1, 2, 3])  # d c b a | a b c d
    wrap = image.sample(x, down_one, fill_mode="wrap")
    np.testing.assert_array_equal(wrap[0, 0, :, 0], [8, 9, 10, 11])


def test_crop_windows_and_erasing_masks():
    rng = np.random.default_rng(3)
    m = image.crop_matrices(rng, 50, (6, 6), (4, 4), padding=2)
    assert m[:, 0, 2].min() >= -2 and m[:, 0, 2].max() <= 4 and set(m[:, 0, 0]) == {1.0}
    mask = image.erasing_mask(np.random.default_rng(1), 200, (20, 30), 0.5, (0.02, 0.33),
                              (0.3, 3.3))
    erased = (mask == 0).reshape(200, -1).sum(axis=1)
    assert 0.35 < (erased > 0).mean() < 0.65
    assert erased.max() <= 0.33 * 600 + 40
    for b in np.flatnonzero(erased):               # one rectangle: rows x cols of zeros
        rows, cols = np.nonzero(mask[b, :, :, 0] == 0)
        assert erased[b] == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)


@pytest.mark.parametrize("mode, interpolation", [("reflect", "bilinear"),
                                                 ("constant", "bilinear"),
                                                 ("wrap", "nearest")])
def test_resample_gradients_in_float64(mode, interpolation):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 5, 2))
    transforms = image.affine_matrices(rng, 2, (4, 5), translate=((-0.3, 0.3), (-0.3, 0.3)),
                                       rotate=(-0.1, 0.1))
    check_gradients(lambda a, t: image.resample(a, t, mode, interpolation), [x, transforms],
                    wrt=[0])

    def twice(a, t):   # the adjoint's own gradient (second order)
        y = image.resample(a, t, mode, interpolation)
        return gn.gradients(gn.sum(gn.square(y)), a)
    check_gradients(twice, [x, transforms], wrt=[0])


def test_bad_arguments():
    x = gn.placeholder((None, 4, 4), "float32")
    with pytest.raises(gn.ShapeError, match=r"expects a batch of images .* got \(None, 4, 4\)"):
        image.resample(x, gn.placeholder((None, 2, 3), "float64"))
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        image.resample(gn.placeholder((None, 4, 4, 1)), gn.placeholder((None, 2, 3)), "mirror")
    with pytest.raises(ValueError, match="lower bound 0.3 is above upper bound 0.1"):
        image.factor_range((0.3, 0.1), "height_factor")
