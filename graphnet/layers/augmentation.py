"""Data augmentation layers: random changes to images while training, identity at inference.

    model = gn.Sequential([
        gn.layers.Reshape((28, 28, 1), input_shape=(28, 28)),
        gn.layers.RandomTranslation(0.1, 0.1, seed=0),
        gn.layers.RandomRotation(0.05, seed=1),
        gn.layers.Conv2D(32, 3, activation="relu"), ...])

Each layer is graph ops (gn.nn.image), so augmentation runs inside the
compiled plan, batched (one transform per image, no Python loop per image),
with new random numbers every step: from graphnet's global generator
(`gn.random.seed`), or from the layer's own stream when given `seed`. Inputs
are float NHWC batches. The geometric layers take Keras' arguments and
fill modes ("reflect" by default, "constant", "nearest", "wrap").
"""

from __future__ import annotations

import numpy as np

from graphnet import ops
from graphnet.errors import ShapeError
from graphnet.graph import apply, constant
from graphnet.layers.base import Layer
from graphnet.nn import image


class _Augmentation(Layer):
    """Base: `augment(x)` in training, x unchanged otherwise."""

    uses_training = True

    def check_input(self, x):
        image.check_images(x, f"{type(self).__name__} '{self.name}'")

    def call(self, x, training=False):
        return self.augment(x) if training else self.infer(x)

    def augment(self, x):
        raise NotImplementedError

    def infer(self, x):
        return x


class _Geometric(_Augmentation):
    """Shared by translation, rotation and zoom: draw transforms, resample."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in image.FILL_MODES:
            raise ValueError(f"{type(self).__name__}: fill_mode must be one of "
                             f"{image.FILL_MODES}, got {fill_mode!r}")
        if interpolation not in image.INTERPOLATIONS:
            raise ValueError(f"{type(self).__name__}: interpolation must be one of "
                             f"{image.INTERPOLATIONS}, got {interpolation!r}")
        self.fill_mode, self.interpolation = fill_mode, interpolation
        self.seed, self.fill_value = seed, float(fill_value)

    def transforms(self) -> dict:
        """RandomAffine's ranges for this layer."""
        raise NotImplementedError

    def augment(self, x):
        params = apply(image.RandomAffine(seed=self.seed, **self.transforms()), x,
                       name="random_affine")
        return image.resample(x, params, self.fill_mode, self.interpolation, self.fill_value)


class RandomTranslation(_Geometric):
    """Shift each image by a random fraction of its height and width.

    `height_factor` 0.1 shifts by up to 10% of the height up or down; a pair
    (lower, upper) gives the range (negative: up / left), each within [-1, 1].
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._ranges = (image.factor_range(height_factor, "RandomTranslation height_factor"),
                        image.factor_range(width_factor, "RandomTranslation width_factor"))

    def transforms(self):
        return {"translate": self._ranges}


class RandomRotation(_Geometric):
    """Rotate each image about its centre by a random fraction of a full turn:
    `factor` 0.05 is up to +-18 degrees; a pair gives (lower, upper), each
    within [-1, 1]. Positive angles turn the picture counter-clockwise."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = factor
        self._range = image.factor_range(factor, "RandomRotation factor")

    def transforms(self):
        return {"rotate": self._range}


class RandomZoom(_Geometric):
    """Zoom each image about its centre: `height_factor` 0.2 zooms out (positive)
    or in (negative) by up to 20%; a pair gives (lower, upper), each within
    [-1, 1]; `width_factor` None keeps the aspect ratio."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        heights = image.factor_range(height_factor, "RandomZoom height_factor")
        widths = None if width_factor is None else \
            image.factor_range(width_factor, "RandomZoom width_factor")
        self._ranges = (heights, widths)

    def transforms(self):
        return {"zoom": self._ranges}


class RandomCrop(_Augmentation):
    """Pad each side with `padding` zeros, then crop a random height x width
    window (the common "random crop with padding"). At inference: the input
    when height x width is its size, else the centre window."""

    def __init__(self, height: int, width: int, padding: int = 0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width, self.padding, self.seed = int(height), int(width), \
            int(padding), seed
        if min(self.height, self.width) < 1 or self.padding < 0:
            raise ValueError(f"RandomCrop: height and width must be >= 1 and padding >= 0, "
                             f"got {height}, {width}, {padding}")

    def check_input(self, x):
        super().check_input(x)
        h, w = x.shape[1:3]
        if self.height > h + 2 * self.padding or self.width > w + 2 * self.padding:
            raise ShapeError(f"RandomCrop '{self.name}': expected a window that fits the "
                             f"padded images, got a {self.height}x{self.width} window for "
                             f"{h}x{w} images padded by {self.padding}")

    def augment(self, x):
        window = (self.height, self.width)
        offsets = apply(image.RandomCropOffsets(seed=self.seed, out_size=window,
                                                padding=self.padding), x, name="crop_offsets")
        return image.resample(x, offsets, "constant", "nearest", 0.0, out_size=window)

    def infer(self, x):
        h, w = x.shape[1:3]
        if (h, w) == (self.height, self.width):
            return x
        top, left = (h - self.height) // 2, (w - self.width) // 2
        if top >= 0 and left >= 0:
            return x[:, top:top + self.height, left:left + self.width, :]
        centre = constant(np.array([[[1.0, 0.0, top], [0.0, 1.0, left]]]))  # zero padding
        return image.resample(x, centre, "constant", "nearest", 0.0,
                              out_size=(self.height, self.width))


class RandomFlip(_Augmentation):
    """Flip each image with probability 1/2: "horizontal" (left-right),
    "vertical" (up-down) or "horizontal_and_vertical" (each independently)."""

    MODES = tuple(image.FLIP_AXES)

    def __init__(self, mode: str = "horizontal", seed=None, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"RandomFlip: mode must be one of {self.MODES}, got {mode!r}")
        self.mode, self.seed = mode, seed

    def augment(self, x):
        axes = image.FLIP_AXES[self.mode]
        flips = apply(image.RandomFlipMask(seed=self.seed, count=len(axes)), x,
                      name="flip_mask")
        for i, axis in enumerate(axes):
            index = (slice(None),) * axis + (slice(None, None, -1),)
            x = ops.where(flips[:, :, :, i:i + 1], x[index], x)
        return x


class GaussianNoise(_Augmentation):
    """Add normal noise of standard deviation `stddev` while training."""

    def __init__(self, stddev: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        if stddev < 0:
            raise ValueError(f"GaussianNoise: stddev must be >= 0, got {stddev}")
        self.stddev, self.seed = float(stddev), seed

    def check_input(self, x):
        if x.dtype.kind != "f":
            raise ShapeError(f"GaussianNoise '{self.name}': expected floating-point inputs, "
                             f"got {x.dtype.name}")

    def augment(self, x):
        if not self.stddev:
            return x
        return x + apply(image.RandomNormalLike(seed=self.seed, stddev=self.stddev), x,
                         name="noise")


class RandomErasing(_Augmentation):
    """Erase one random rectangle of each image with `probability`, setting it
    to `value`: its area a `scale` fraction of the image, its aspect ratio in
    `ratio` (torchvision's RandomErasing)."""

    def __init__(self, probability: float = 0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3),
                 value: float = 0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.probability, self.scale, self.ratio = image.erasing_arguments(probability, scale,
                                                                           ratio)
        self.value, self.seed = float(value), seed

    def augment(self, x):
        keep = apply(image.RandomErasingMask(seed=self.seed, probability=self.probability,
                                             scale=self.scale, ratio=self.ratio), x,
                     name="erasing_mask")
        return ops.where(keep, x, self.value)
