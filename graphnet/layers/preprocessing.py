"""Preprocessing layers: Normalization (statistics fitted with `adapt`) and Rescaling.

    norm = gn.layers.Normalization()
    norm.adapt(x_train)                    # per-feature mean and variance
    model = gn.Sequential([norm, gn.layers.Dense(10)])

The statistics are non-trainable weights, so checkpoints save them with the
model and the optimizer leaves them alone.
"""

from __future__ import annotations

import numpy as np

from graphnet import ops
from graphnet.data.dataset import Dataset
from graphnet.errors import ShapeError
from graphnet.graph import Node, constant, set_initial_value
from graphnet.layers.base import Layer
from graphnet.shapes import format_shape, normalize_axes

#: The variance floor: sqrt(max(variance, 1e-14)) keeps the standard deviation
#: at least 1e-7, Keras' epsilon, so a constant feature maps to 0, not NaN.
VARIANCE_FLOOR = 1e-14

#: Rows per chunk when adapt() streams a large array (float64 copies stay small).
_ADAPT_ELEMENTS = 1 << 20


class Normalization(Layer):
    """`(x - mean) / sqrt(max(variance, eps))` per index of the kept `axis`, as Keras 3.

    `axis` names the axes that keep their own statistics (default the last:
    one mean and variance per feature); `None` keeps none (one scalar mean
    and variance). The statistics come from `mean` and `variance` (numbers or
    nested lists broadcast to the kept shape) or from `adapt(x_train)`; the
    `mean` and `variance` attributes hold those in use, as plain lists. `eps`
    is 1e-14, so the standard deviation is at least 1e-7 (Keras' floor). With
    `invert` the layer maps normalized values back: `mean + x * sqrt(...)`.

        >>> norm = gn.layers.Normalization()
        >>> norm.adapt(np.array([[0.0, 10.0], [2.0, 30.0]]))
        >>> norm.mean, norm.variance
        ([1.0, 20.0], [1.0, 100.0])
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization '{self.name}': pass both mean and variance, or "
                             "neither and call adapt()")
        if axis is not None and not isinstance(axis, (int, np.integer)):
            axis = tuple(int(a) for a in axis)
        self.axis = axis if axis is None or isinstance(axis, tuple) else int(axis)
        # Plain numbers or lists, so the layer's config stays JSON-friendly;
        # the arrays themselves live in the weights.
        self.mean = _plain(mean, "mean", self.name)
        self.variance = _plain(variance, "variance", self.name)
        if variance is not None and np.any(np.asarray(variance) < 0):
            raise ValueError(f"Normalization '{self.name}': variance must be >= 0, got "
                             f"{self.variance}")
        self.invert = bool(invert)
        self.mean_weight = self.variance_weight = None

    def get_config(self) -> dict:
        """The constructor's arguments, with the statistics `adapt` found, so a
        reloaded layer builds with them (its weights are then read from the file)."""
        config = super().get_config()
        config.update(mean=self.mean, variance=self.variance)
        return config

    # ------------------------------------------------------------ adapt

    def adapt(self, data, batch_size: int | None = None):
        """Fit `mean` and `variance` to `data`: an array, or a `gn.data.Dataset`
        yielding batches (arrays, or `(x, y)` tuples whose `x` is used).

        Batches are combined in float64 with Chan's parallel update, so the
        result equals the statistics of all the data at once; a large array is
        read `batch_size` rows at a time (by default about a million values).
        Call it before the layer is used: if the layer is already built, its
        weights' initial values are replaced, so Sessions (models) that use
        them afterwards see the new statistics, but a Session that already
        holds their values keeps them (adapt belongs before training).
        """
        if isinstance(data, Node):
            raise TypeError(f"Normalization '{self.name}'.adapt() takes data (an array or a "
                            "gn.data.Dataset), not a graph node")
        def keeps_batch_axis(rank):
            return 0 in self._keep_axes((None,) * rank, "adapt data")

        count, mean, m2, first = 0, None, None, None
        for batch in _batches(data, batch_size, self.name, keeps_batch_axis):
            if first is None:
                first = batch.shape
                keep, reduce = self._axes_for(batch.shape)
            elif batch.ndim != len(first) or any(batch.shape[a] != first[a] for a in keep):
                raise ShapeError(f"Normalization '{self.name}'.adapt(): batches of shape "
                                 f"{format_shape(first)} and {format_shape(batch.shape)} "
                                 f"differ in the kept axes {keep}")
            n = int(np.prod([batch.shape[a] for a in reduce], dtype=np.int64))
            if n == 0:
                continue
            batch_mean = batch.mean(axis=reduce)
            batch_m2 = np.square(batch - batch.mean(axis=reduce, keepdims=True)).sum(axis=reduce)
            if mean is None:
                count, mean, m2 = n, batch_mean, batch_m2
                continue
            # Chan et al.: merge two (count, mean, sum of squared deviations) summaries.
            total = count + n
            delta = batch_mean - mean
            mean = mean + delta * (n / total)
            m2 = m2 + batch_m2 + np.square(delta) * (count * n / total)
            count = total
        if mean is None:
            raise ValueError(f"Normalization '{self.name}'.adapt() got no data")
        self.mean, self.variance = np.asarray(mean).tolist(), np.asarray(m2 / count).tolist()
        if self.built:
            set_initial_value(self.mean_weight, np.asarray(self.mean))
            set_initial_value(self.variance_weight, np.asarray(self.variance))

    def _axes_for(self, shape: tuple) -> tuple:
        """(kept axes, reduced axes) for adapt data of `shape`, checked against
        the built layer's kept sizes."""
        keep = self._keep_axes(shape, "adapt data")
        kept = tuple(shape[a] for a in keep)
        if self.built and kept != self.mean_weight.shape:
            raise ShapeError(f"Normalization '{self.name}' was built for kept sizes "
                             f"{format_shape(self.mean_weight.shape)} (axis={self.axis}); "
                             f"adapt data of shape {format_shape(shape)} has {format_shape(kept)}")
        return keep, tuple(a for a in range(len(shape)) if a not in keep)

    def _keep_axes(self, shape: tuple, what: str) -> tuple:
        """The sorted non-negative axes of `shape` that keep their own statistics."""
        if self.axis is None:
            return ()
        try:
            return normalize_axes(self.axis, len(shape))
        except ShapeError as err:
            raise ShapeError(f"Normalization '{self.name}': axis={self.axis} does not fit "
                             f"{what} of shape {format_shape(shape)}: {err}") from None

    # ------------------------------------------------------------ graph

    def build(self, input_shape):
        keep = self._keep_axes(input_shape, "input")
        kept = tuple(input_shape[a] for a in keep)
        if None in kept:
            raise ShapeError(f"Normalization '{self.name}' keeps statistics for axes {keep} of "
                             f"{format_shape(input_shape)}; their sizes must be known")
        if self.mean is None:
            raise ValueError(f"Normalization '{self.name}' has no statistics: call "
                             f"{self.name}.adapt(x_train) before using it in a model, or pass "
                             "mean= and variance=")
        stats = []
        for what, value in (("mean", self.mean), ("variance", self.variance)):
            try:
                stats.append(np.broadcast_to(np.asarray(value, np.float64), kept))
            except ValueError:
                raise ShapeError(f"Normalization '{self.name}': {what} of shape "
                                 f"{format_shape(np.shape(value))} does not broadcast to the "
                                 f"kept sizes {format_shape(kept)} of input "
                                 f"{format_shape(input_shape)} (axis={self.axis})") from None
        self.mean_weight = self.add_weight("mean", kept, _given(stats[0]), trainable=False)
        self.variance_weight = self.add_weight("variance", kept, _given(stats[1]),
                                               trainable=False)
        self._broadcast_shape = tuple(input_shape[a] if a in keep else 1
                                      for a in range(len(input_shape)))

    def call(self, x, training=False):
        x = ops.cast(x, self.dtype)
        mean = ops.reshape(self.mean_weight, self._broadcast_shape)
        variance = ops.reshape(self.variance_weight, self._broadcast_shape)
        std = ops.sqrt(ops.maximum(variance, VARIANCE_FLOOR))
        if self.invert:
            return mean + x * std
        return (x - mean) / std


class Rescaling(Layer):
    """`x * scale + offset`, e.g. `Rescaling(1 / 255)` for uint8 images (Keras).

    `scale` and `offset` are numbers, or lists broadcast against the input;
    integer inputs are cast to the layer's dtype first.
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _plain(scale, "scale", self.name)
        self.offset = _plain(offset, "offset", self.name)

    def call(self, x, training=False):
        x = ops.cast(x, self.dtype)
        scale = np.asarray(self.scale, self.dtype)
        offset = np.asarray(self.offset, self.dtype)
        for what, value in (("scale", scale), ("offset", offset)):
            try:
                np.broadcast_shapes(value.shape, tuple(1 if d is None else d for d in x.shape))
            except ValueError:
                raise ShapeError(f"Rescaling '{self.name}': {what} of shape "
                                 f"{format_shape(value.shape)} does not broadcast against "
                                 f"input {format_shape(x.shape)}") from None
        return x * (float(scale) if scale.ndim == 0 else constant(scale)) + \
            (float(offset) if offset.ndim == 0 else constant(offset))


def _plain(value, what: str, name: str):
    """A number or nested list of floats (None stays None): config-friendly."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: {what} must be numeric, got {value!r}")
    return array.astype(np.float64).tolist()


def _given(value: np.ndarray):
    """An initializer that returns `value` (cast to the weight's dtype)."""
    def initializer(shape, dtype="float32"):
        return np.array(value, dtype=dtype).reshape(shape)
    return initializer


def _batches(data, batch_size, name, keeps_batch_axis):
    """float64 batches of `data`: a Dataset's x parts, or an array in chunks
    (whole when `keeps_batch_axis(rank)`: the statistics are per row)."""
    if isinstance(data, Dataset):
        for element in data:
            if isinstance(element, (tuple, list)):
                element = element[0]
            if isinstance(element, dict):
                raise TypeError(f"Normalization '{name}'.adapt(): the Dataset yields dicts; "
                                "map it to arrays (or (x, y) tuples) first")
            yield _float64(element, name)
        return
    array = _numeric(data, name)  # converted to float64 chunk by chunk below
    if array.ndim == 0:
        raise ShapeError(f"Normalization '{name}'.adapt() needs an array with a batch axis, "
                         "got a scalar")
    if keeps_batch_axis(array.ndim):  # statistics per row: one chunk
        batch_size = max(len(array), 1)
    elif batch_size is None:
        row = int(np.prod(array.shape[1:], dtype=np.int64)) or 1
        batch_size = max(1, _ADAPT_ELEMENTS // row)
    elif int(batch_size) < 1:
        raise ValueError(f"Normalization '{name}'.adapt(): batch_size must be >= 1, got "
                         f"{batch_size}")
    batch_size = int(batch_size)
    for start in range(0, max(len(array), 1), batch_size):
        yield _float64(array[start:start + batch_size], name)


def _numeric(value, name) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Normalization '{name}'.adapt() needs numeric data, got "
                        f"{array.dtype} values")
    return array


def _float64(value, name) -> np.ndarray:
    return _numeric(value, name).astype(np.float64, copy=False)
