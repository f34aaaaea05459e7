"""Augmentation as NumPy functions on a batch of images, for `Dataset.map`:

    rng = np.random.default_rng(0)
    ds = Dataset.from_arrays(x, y).shuffle(seed=0).batch(64).map(
        lambda xb, yb: (augmentation.random_translation(xb, 0.1, 0.1, rng=rng), yb))

Each function takes an NHWC float batch and changes every image differently,
without a Python loop per image. `rng` is a np.random.Generator or an int
seed (None: graphnet's global generator). They compute what the layers of
the same names do inside a model (they share gn.nn.image's kernels); use the
layers to augment inside the compiled graph, these to augment in the input
pipeline.
"""

from __future__ import annotations

import numpy as np

from graphnet import random as gn_random
from graphnet.data.dataset import DataError
from graphnet.nn import image


def _rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return gn_random.generator(None if rng is None else int(rng))


def _images(images, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype.kind != "f":
        raise DataError(f"{what}: expects a float batch of images (batch, height, width, "
                        f"channels), got {images.dtype} {images.shape}")
    return images


def _geometric(images, what, rng, fill_mode, interpolation, fill_value, **ranges):
    images = _images(images, what)
    if fill_mode not in image.FILL_MODES or interpolation not in image.INTERPOLATIONS:
        raise DataError(f"{what}: fill_mode must be one of {image.FILL_MODES} and "
                        f"interpolation one of {image.INTERPOLATIONS}, got {fill_mode!r}, "
                        f"{interpolation!r}")
    transforms = image.affine_matrices(_rng(rng), len(images), images.shape[1:3], **ranges)
    return image.sample(images, transforms, None, fill_mode, interpolation, fill_value)


def random_translation(images, height_factor, width_factor, fill_mode="reflect",
                       interpolation="bilinear", fill_value=0.0, rng=None) -> np.ndarray:
    """Shift each image by up to `height_factor` / `width_factor` of its size."""
    ranges = (image.factor_range(height_factor, "height_factor"),
              image.factor_range(width_factor, "width_factor"))
    return _geometric(images, "random_translation", rng, fill_mode, interpolation, fill_value,
                      translate=ranges)


def random_rotation(images, factor, fill_mode="reflect", interpolation="bilinear",
                    fill_value=0.0, rng=None) -> np.ndarray:
    """Rotate each image about its centre by up to `factor` of a full turn."""
    return _geometric(images, "random_rotation", rng, fill_mode, interpolation, fill_value,
                      rotate=image.factor_range(factor, "factor"))


def random_zoom(images, height_factor, width_factor=None, fill_mode="reflect",
                interpolation="bilinear", fill_value=0.0, rng=None) -> np.ndarray:
    """Zoom each image out (positive) or in (negative) by up to the factors."""
    widths = None if width_factor is None else image.factor_range(width_factor, "width_factor")
    return _geometric(images, "random_zoom", rng, fill_mode, interpolation, fill_value,
                      zoom=(image.factor_range(height_factor, "height_factor"), widths))


def random_crop(images, height: int, width: int, padding: int = 0, rng=None) -> np.ndarray:
    """A random height x width window of each image padded by `padding` zeros."""
    images = _images(images, "random_crop")
    batch, h, w = images.shape[:3]
    if min(height, width) < 1 or padding < 0:
        raise DataError(f"random_crop: height and width must be >= 1 and padding >= 0, got "
                        f"{height}, {width}, {padding}")
    if height > h + 2 * padding or width > w + 2 * padding:
        raise DataError(f"random_crop: a {height}x{width} window does not fit {h}x{w} images "
                        f"padded by {padding}")
    transforms = image.crop_matrices(_rng(rng), batch, (h, w), (height, width), int(padding))
    return image.sample(images, transforms, (height, width), "constant", "nearest")


def random_flip(images, mode: str = "horizontal", rng=None) -> np.ndarray:
    """Flip each image with probability 1/2, left-right and/or up-down."""
    images = _images(images, "random_flip")
    if mode not in image.FLIP_AXES:
        raise DataError(f"random_flip: mode must be one of {tuple(image.FLIP_AXES)}, got "
                        f"{mode!r}")
    axes = image.FLIP_AXES[mode]
    flips = image.flip_masks(_rng(rng), len(images), len(axes))
    for i, axis in enumerate(axes):
        images = np.where(flips[..., i:i + 1], np.flip(images, axis), images)
    return images


def gaussian_noise(images, stddev: float, rng=None) -> np.ndarray:
    """Images plus normal noise of standard deviation `stddev`."""
    images = np.asarray(images)
    if images.dtype.kind != "f":
        raise DataError(f"gaussian_noise: expects floating-point values, got {images.dtype}")
    noise = _rng(rng).standard_normal(images.shape) * stddev
    return (images + noise).astype(images.dtype)


def random_erasing(images, probability=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0,
                   rng=None) -> np.ndarray:
    """Erase one random rectangle of each image with `probability` (set it to `value`)."""
    images = _images(images, "random_erasing")
    probability, scale, ratio = image.erasing_arguments(probability, scale, ratio)
    keep = image.erasing_mask(_rng(rng), len(images), images.shape[1:3], probability, scale,
                              ratio)
    return np.where(keep, images, np.asarray(value, images.dtype))
