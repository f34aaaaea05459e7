"""Image ops for augmentation: random parameters, resampling, masks (NHWC batches).

Geometric augmentations (translation, rotation, zoom, cropping) are one
deterministic op, `resample(x, transforms)`, fed per-image affine transforms
that a random op draws each run:

    transforms = random_affine(x, height_shift=0.1, width_shift=0.1)  # (batch, 2, 3)
    y = resample(x, transforms, fill_mode="reflect")       # bilinear by default

A transform maps each output pixel (row, col) to the input position it
samples: `src = transforms[b] @ (row, col, 1)`. Positions outside the image
are filled by `fill_mode`: "constant" (`fill_value`), "nearest" (the edge
pixel), "reflect" (d c b a | a b c d | d c b a) or "wrap" (a b c d | a b c d).
resample is linear in x, so its gradient is the adjoint: each output's
gradient is added back to the input pixels it read, with the same weights.

The NumPy functions that draw parameters and sample (`affine_matrices`,
`crop_matrices`, `flip_masks`, `erasing_mask`, `sample`) are also what
`gn.data.augmentation` uses, so the Dataset.map versions compute exactly
what the layers do from the same seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from graphnet import random as gn_random
from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node, snake_case
from graphnet.shapes import format_shape

FILL_MODES = ("constant", "nearest", "reflect", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")
#: Flip modes and the axes of NHWC images each flips.
FLIP_AXES = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (2, 1)}


def check_images(x: Node, what: str):
    if x.ndim != 4:
        raise ShapeError(f"{what}: expects a batch of images (batch, height, width, channels), "
                         f"got {format_shape(x.shape)}")
    if None in x.shape[1:3]:
        raise ShapeError(f"{what}: the image height and width must be known, got "
                         f"{format_shape(x.shape)}")
    if x.dtype.kind != "f":
        raise ShapeError(f"{what}: images must be floating-point, got {x.dtype.name}; "
                         "rescale them first (e.g. gn.layers.Rescaling(1 / 255))")


def factor_range(factor, name: str, bound: float | None = 1.0) -> tuple:
    """(lower, upper) from a number f, giving (-|f|, |f|), or a pair, as Keras
    reads its factors; each within [-bound, bound] (None: unbounded)."""
    if isinstance(factor, (int, float, np.integer, np.floating)) and not isinstance(factor, bool):
        low, high = -abs(float(factor)), abs(float(factor))
    elif isinstance(factor, (tuple, list)) and len(factor) == 2 and all(
            isinstance(f, (int, float, np.integer, np.floating)) for f in factor):
        low, high = float(factor[0]), float(factor[1])
    else:
        raise ValueError(f"{name}: expected a number or a (lower, upper) pair, got {factor!r}")
    if low > high:
        raise ValueError(f"{name}: lower bound {low} is above upper bound {high}")
    if bound is not None and (low < -bound or high > bound):
        raise ValueError(f"{name}: factors must be within [{-bound:g}, {bound:g}], got "
                         f"({low:g}, {high:g})")
    return low, high


# ------------------------------------------------------------ NumPy side


def affine_matrices(rng, batch: int, size: tuple, out_size: tuple | None = None,
                    translate=((0.0, 0.0), (0.0, 0.0)), rotate=(0.0, 0.0),
                    zoom=((0.0, 0.0), None)) -> np.ndarray:
    """(batch, 2, 3) float64 transforms mapping output (row, col, 1) to input
    positions: a random translation (fractions of height and width), rotation
    (fractions of a full turn, positive counter-clockwise) and zoom (1 + z:
    positive zooms out) about the centres, as Keras draws them."""
    height, width = size
    out_h, out_w = out_size or size
    (ty0, ty1), (tx0, tx1) = translate
    dy = rng.uniform(ty0, ty1, batch) * height
    dx = rng.uniform(tx0, tx1, batch) * width
    angle = rng.uniform(rotate[0], rotate[1], batch) * 2 * math.pi
    zh = 1 + rng.uniform(zoom[0][0], zoom[0][1], batch)
    zw = zh if zoom[1] is None else 1 + rng.uniform(zoom[1][0], zoom[1][1], batch)
    cos, sin = np.cos(angle), np.sin(angle)
    m = np.empty((batch, 2, 3))
    # Output (row, col) reads the input at R @ diag(zh, zw) @ (row, col) about the
    # centres; with rows pointing down this R turns the picture counter-clockwise.
    m[:, 0, 0], m[:, 0, 1] = cos * zh, sin * zw
    m[:, 1, 0], m[:, 1, 1] = -sin * zh, cos * zw
    centre_in = np.array([(height - 1) / 2, (width - 1) / 2])
    centre_out = np.array([(out_h - 1) / 2, (out_w - 1) / 2])
    m[:, :, 2] = centre_in - m[:, :, :2] @ centre_out - np.stack([dy, dx], axis=1)
    return m


def crop_matrices(rng, batch: int, size: tuple, out_size: tuple, padding: int) -> np.ndarray:
    """(batch, 2, 3) transforms that read a random out_size window of each image
    padded by `padding` on every side (integer offsets: no interpolation)."""
    (height, width), (out_h, out_w) = size, out_size
    m = np.zeros((batch, 2, 3))
    m[:, 0, 0] = m[:, 1, 1] = 1.0
    m[:, 0, 2] = rng.integers(0, height + 2 * padding - out_h + 1, batch) - padding
    m[:, 1, 2] = rng.integers(0, width + 2 * padding - out_w + 1, batch) - padding
    return m


def _source_positions(transforms: np.ndarray, out_size: tuple) -> tuple:
    """(rows, cols) of shape (batch, out_h * out_w): where each output pixel samples."""
    out_h, out_w = out_size
    r, c = np.meshgrid(np.arange(out_h), np.arange(out_w), indexing="ij")
    grid = np.stack([r.ravel(), c.ravel(), np.ones(r.size)])       # (3, P)
    src = transforms.astype(np.float64) @ grid                       # (batch, 2, P)
    return src[:, 0], src[:, 1]


def _fold(index: np.ndarray, n: int, fill_mode: str) -> tuple:
    """Integer indices mapped into [0, n) by `fill_mode`, and which are inside the image
    (only "constant" leaves some outside: those read `fill_value`)."""
    if fill_mode == "constant":
        inside = (index >= 0) & (index < n)
        return np.clip(index, 0, n - 1), inside
    if fill_mode == "nearest":
        return np.clip(index, 0, n - 1), None
    if fill_mode == "wrap":
        return np.mod(index, n), None
    period = np.mod(index, 2 * n)            # reflect: d c b a | a b c d | d c b a
    return np.where(period < n, period, 2 * n - 1 - period), None


def _taps(transforms: np.ndarray, size: tuple, out_size: tuple, fill_mode: str,
          interpolation: str, batch: int | None = None) -> list:
    """[(flat input index (batch, P), weight (batch, P))] for each tap: 4 for
    bilinear, 1 for nearest. Weights of taps outside the image (constant
    fill) are 0; `1 - sum(weights)` of each output is its share of fill_value."""
    height, width = size
    rows, cols = _source_positions(transforms, out_size)   # (1 or batch, P)
    batch = batch or transforms.shape[0]
    rows, cols = (np.broadcast_to(a, (batch, a.shape[1])) for a in (rows, cols))
    base = (np.arange(batch) * height * width)[:, None]
    if interpolation == "nearest":
        corners = [(np.floor(rows + 0.5).astype(np.int64),
                    np.floor(cols + 0.5).astype(np.int64), np.ones_like(rows))]
    else:
        r0, c0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
        fr, fc = rows - r0, cols - c0
        corners = [(r0, c0, (1 - fr) * (1 - fc)), (r0, c0 + 1, (1 - fr) * fc),
                   (r0 + 1, c0, fr * (1 - fc)), (r0 + 1, c0 + 1, fr * fc)]
    taps = []
    for r, c, w in corners:
        r, r_in = _fold(r, height, fill_mode)
        c, c_in = _fold(c, width, fill_mode)
        if r_in is not None:
            w = w * (r_in & c_in)
        taps.append((base + r * width + c, w))
    return taps


def sample(images: np.ndarray, transforms: np.ndarray, out_size: tuple | None = None,
           fill_mode: str = "reflect", interpolation: str = "bilinear",
           fill_value: float = 0.0) -> np.ndarray:
    """The resampled batch: each output pixel reads its input position (NumPy)."""
    batch, height, width, channels = images.shape
    out_size = tuple(out_size or (height, width))
    flat = images.reshape(batch * height * width, channels)
    taps = _taps(transforms, (height, width), out_size, fill_mode, interpolation, batch)
    out = np.zeros((batch, out_size[0] * out_size[1], channels), images.dtype)
    total = np.zeros(out.shape[:2])
    for index, weight in taps:
        out += (flat[index] * weight[..., None]).astype(images.dtype, copy=False)
        total += weight
    if fill_mode == "constant" and fill_value:
        out += ((1 - total) * fill_value)[..., None].astype(images.dtype)
    return out.reshape(batch, *out_size, channels)


def sample_adjoint(grads: np.ndarray, transforms: np.ndarray, size: tuple,
                   fill_mode: str, interpolation: str) -> np.ndarray:
    """The gradient of `sample` with respect to the images: each output's
    gradient added back to the pixels it read, with the same weights."""
    batch, out_h, out_w, channels = grads.shape
    height, width = size
    flat = grads.reshape(batch, out_h * out_w, channels)
    out = np.zeros((batch * height * width, channels), np.float64)
    for index, weight in _taps(transforms, size, (out_h, out_w), fill_mode, interpolation,
                               batch):
        for ch in range(channels):
            out[:, ch] += np.bincount(index.ravel(), (flat[..., ch] * weight).ravel(),
                                      minlength=out.shape[0])
    return out.astype(grads.dtype).reshape(batch, height, width, channels)


def erasing_arguments(probability, scale, ratio) -> tuple:
    """(probability, scale, ratio) as floats and pairs, or a ValueError saying which is wrong."""
    scale, ratio = tuple(float(v) for v in scale), tuple(float(v) for v in ratio)
    if not 0 <= probability <= 1:
        raise ValueError(f"erasing: probability must be in [0, 1], got {probability}")
    if len(scale) != 2 or len(ratio) != 2 or not 0 < scale[0] <= scale[1] <= 1 \
            or not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"erasing: expected (lower, upper) pairs with scale within (0, 1] "
                         f"and ratio positive, got scale={scale}, ratio={ratio}")
    return float(probability), scale, ratio


def erasing_mask(rng, batch: int, size: tuple, probability: float, scale: tuple,
                 ratio: tuple, attempts: int = 10) -> np.ndarray:
    """(batch, height, width, 1) bools, True kept and False erased: one rectangle per image
    with `probability`, its area a `scale` fraction of the image and its aspect
    ratio in `ratio` (log-uniform), as torchvision's RandomErasing draws them."""
    height, width = size
    area = rng.uniform(scale[0], scale[1], (batch, attempts)) * height * width
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), (batch, attempts)))
    h = np.round(np.sqrt(area * aspect)).astype(np.int64)
    w = np.round(np.sqrt(area / aspect)).astype(np.int64)
    fits = (h < height) & (w < width) & (h > 0) & (w > 0)
    first = np.argmax(fits, axis=1)
    rows = np.arange(batch)
    h, w, ok = h[rows, first], w[rows, first], fits[rows, first]
    erase = ok & (rng.random(batch) < probability)
    top = np.floor(rng.random(batch) * (height - h + 1)).astype(np.int64)
    left = np.floor(rng.random(batch) * (width - w + 1)).astype(np.int64)
    r = np.arange(height)[None, :, None]
    c = np.arange(width)[None, None, :]
    inside = ((r >= top[:, None, None]) & (r < (top + h)[:, None, None])
              & (c >= left[:, None, None]) & (c < (left + w)[:, None, None]))
    return (~(inside & erase[:, None, None]))[..., None]


def flip_masks(rng, batch: int, count: int) -> np.ndarray:
    """(batch, 1, 1, count) bools, each True with probability 1/2: which images
    to flip along each of `count` axes."""
    return (rng.random((count, batch)) < 0.5).T[:, None, None, :]


# ---------------------------------------------------------------- ops


@dataclass(frozen=True, eq=False)
class RandomOp(Op):
    """Base of ops that draw new numbers each run: never merged with another,
    from graphnet's global generator or, given `seed`, a stream of their own."""

    random = True
    seed: int | None = None

    __eq__, __hash__ = object.__eq__, object.__hash__  # two draws are never the same value

    def __post_init__(self):
        own = None if self.seed is None else gn_random.generator(self.seed)
        object.__setattr__(self, "_generator", own)

    @property
    def rng(self) -> np.random.Generator:
        return gn_random.generator() if self._generator is None else self._generator

    def infer_images(self, x):
        check_images(x, snake_case(type(self).__name__))


@dataclass(frozen=True, eq=False)
class RandomAffine(RandomOp):
    """(batch, 2, 3) transforms for the images of input 0: ranges as in
    `affine_matrices` (translate: two (lower, upper) fractions of height and
    width; rotate: a fraction of a turn; zoom: (heights, widths or None))."""

    translate: tuple = ((0.0, 0.0), (0.0, 0.0))
    rotate: tuple = (0.0, 0.0)
    zoom: tuple = ((0.0, 0.0), None)

    def infer(self, x):
        self.infer_images(x)
        return (x.shape[0], 2, 3), np.dtype("float64")

    def forward(self, x):
        return affine_matrices(self.rng, x.shape[0], x.shape[1:3], None, self.translate,
                               self.rotate, self.zoom)


def random_affine(x, height_shift=0.0, width_shift=0.0, rotation=0.0, height_zoom=0.0,
                  width_zoom=None, seed: int | None = None, name=None) -> Node:
    """(batch, 2, 3) random transforms for the images x, new every run, for
    `resample`. Factors as Keras takes them (a number f for (-f, f), or a
    pair): shifts in fractions of the height and width, rotation in fractions
    of a turn (positive counter-clockwise), zooms as 1 + factor (positive
    zooms out; width_zoom None keeps the aspect ratio).

        >>> t = gn.nn.image.random_affine(x, rotation=0.05, seed=0)
        >>> y = gn.nn.resample(x, t, fill_mode="constant")
    """
    widths = None if width_zoom is None else factor_range(width_zoom, "width_zoom")
    op = RandomAffine(seed=None if seed is None else int(seed),
                      translate=(factor_range(height_shift, "height_shift"),
                                 factor_range(width_shift, "width_shift")),
                      rotate=factor_range(rotation, "rotation"),
                      zoom=(factor_range(height_zoom, "height_zoom"), widths))
    return apply(op, as_node(x), name=name or "random_affine")


@dataclass(frozen=True, eq=False)
class RandomCropOffsets(RandomOp):
    """(batch, 2, 3) transforms reading a random `out_size` window of each image
    of input 0 padded by `padding` on every side (see `crop_matrices`)."""

    out_size: tuple = (1, 1)
    padding: int = 0

    def infer(self, x):
        self.infer_images(x)
        (h, w), (out_h, out_w) = x.shape[1:3], self.out_size
        if out_h > h + 2 * self.padding or out_w > w + 2 * self.padding:
            raise ShapeError(f"random_crop_offsets: expected a window that fits the padded "
                             f"images, got a {out_h}x{out_w} window for {h}x{w} images "
                             f"padded by {self.padding}")
        return (x.shape[0], 2, 3), np.dtype("float64")

    def forward(self, x):
        return crop_matrices(self.rng, x.shape[0], x.shape[1:3], self.out_size, self.padding)


@dataclass(frozen=True)
class Resample(Op):
    """Images (input 0) resampled at the positions of transforms (input 1)."""

    fill_mode: str = "reflect"
    interpolation: str = "bilinear"
    fill_value: float = 0.0
    out_size: tuple | None = None

    def infer(self, x, transforms):
        check_images(x, "resample")
        if transforms.ndim != 3 or transforms.shape[1:] != (2, 3) \
                or transforms.dtype.kind != "f":
            raise ShapeError(f"resample: expected float transforms of shape (batch, 2, 3) or "
                             f"(1, 2, 3), got {transforms.dtype.name} "
                             f"{format_shape(transforms.shape)}")
        if transforms.shape[0] not in (1, None, x.shape[0]) and x.shape[0] is not None:
            raise ShapeError(f"resample: expected one transform per image or one for all, got "
                             f"{transforms.shape[0]} transforms for a batch of {x.shape[0]}")
        out_h, out_w = self.out_size or x.shape[1:3]
        return (x.shape[0], out_h, out_w, x.shape[3]), x.dtype

    def forward(self, x, transforms):
        return sample(x, transforms, self.out_size, self.fill_mode, self.interpolation,
                      self.fill_value)

    def grad(self, node, g):
        x, transforms = node.inputs
        op = ResampleAdjoint(self.fill_mode, self.interpolation, self.out_size)
        return [apply(op, g, transforms, x), None]   # none for the transforms


@dataclass(frozen=True)
class ResampleAdjoint(Op):
    """Resample's gradient: the output gradient (input 0) added back at the
    pixels each output read; shaped like the images (input 2)."""

    fill_mode: str
    interpolation: str
    out_size: tuple | None = None

    def infer(self, g, transforms, like):
        return like.shape, g.dtype

    def forward(self, g, transforms, like):
        return sample_adjoint(g, transforms, like.shape[1:3], self.fill_mode,
                              self.interpolation)

    def grad(self, node, gg):
        _, transforms, _ = node.inputs
        return [apply(Resample(self.fill_mode, self.interpolation, 0.0, self.out_size), gg,
                      transforms), None, None]


def resample(x, transforms, fill_mode: str = "reflect", interpolation: str = "bilinear",
             fill_value: float = 0.0, out_size=None, name=None) -> Node:
    """x (batch, height, width, channels) sampled where `transforms` (batch, 2, 3)
    map each output pixel; see the module docstring for the fill modes."""
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got "
                         f"{interpolation!r}")
    out_size = None if out_size is None else tuple(int(d) for d in out_size)
    return apply(Resample(fill_mode, interpolation, float(fill_value), out_size), as_node(x),
                 as_node(transforms), name=name or "resample")


@dataclass(frozen=True, eq=False)
class RandomFlipMask(RandomOp):
    """(batch, 1, 1, count) bools, each True with probability 1/2 (`flip_masks`)."""

    count: int = 1

    def infer(self, x):
        return (x.shape[0], 1, 1, self.count), np.dtype(bool)

    def forward(self, x):
        return flip_masks(self.rng, x.shape[0], self.count)


@dataclass(frozen=True, eq=False)
class RandomNormalLike(RandomOp):
    """Normal noise with `stddev`, shaped and typed like input 0."""

    stddev: float = 1.0

    def infer(self, x):
        if x.dtype.kind != "f":
            raise ShapeError(f"random_normal_like: expected a floating-point input, got "
                             f"{x.dtype.name}")
        return x.shape, x.dtype

    def forward(self, x):
        return (self.rng.standard_normal(x.shape) * self.stddev).astype(x.dtype)


@dataclass(frozen=True, eq=False)
class RandomErasingMask(RandomOp):
    """(batch, height, width, 1) bool keep-mask of `erasing_mask` for the images of input 0."""

    probability: float = 0.5
    scale: tuple = (0.02, 0.33)
    ratio: tuple = (0.3, 3.3)

    def infer(self, x):
        self.infer_images(x)
        return (x.shape[0], x.shape[1], x.shape[2], 1), np.dtype(bool)

    def forward(self, x):
        return erasing_mask(self.rng, x.shape[0], x.shape[1:3], self.probability,
                            self.scale, self.ratio)
