"""Keras-style losses built from graph ops.

Functions take `(y_true, y_pred)` and return one loss per sample (averaged
or summed over the last axis), as Keras' loss functions do; classes wrap
them with a reduction and sample weights and return a scalar node:

    loss = gn.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    loss = gn.losses.get("mse")(y, pred, sample_weight=w)

Reductions: "mean" (Keras' sum_over_batch_size: the sum of the weighted
losses divided by their number), "sum", and "none" (the weighted per-sample
losses). Formulas follow Keras 3. Cross-entropies from probabilities clip
them to [1e-7, 1 - 1e-7] so saturated outputs give finite values and
gradients; when `y_pred` is itself a softmax (or sigmoid) node, its logits
are used instead, which is exact (tf.keras did the same).
"""

from __future__ import annotations

import difflib
import re

from graphnet.errors import ShapeError
from graphnet.graph import Node, as_node, name_scope
from graphnet.nn import softmax_cross_entropy, sparse_softmax_cross_entropy
from graphnet.ops import (
    abs,
    cast,
    clip,
    expand_dims,
    log,
    mean,
    softplus,
    square,
    squeeze,
    sum,
    take_along_axis,
    where,
)
from graphnet.ops.activations import Sigmoid, Softmax
from graphnet.serialization import Configurable
from graphnet.shapes import format_shape, normalize_axis

#: Probabilities are clipped to [EPSILON, 1 - EPSILON] (Keras' backend.epsilon()).
EPSILON = 1e-7

REDUCTIONS = ("mean", "sum", "none")
_REDUCTION_ALIASES = {"sum_over_batch_size": "mean", None: "none"}


# ------------------------------------------------------------ inputs


def _float_pred(y_pred, loss: str) -> Node:
    y_pred = as_node(y_pred)
    if y_pred.dtype is None or y_pred.dtype.kind != "f":
        raise ShapeError(f"{loss}: y_pred must be floating-point, got "
                         f"{getattr(y_pred.dtype, 'name', 'no value')}")
    return y_pred


def _same_rank(a: Node, b: Node) -> tuple:
    """Keras' squeeze_or_expand_to_same_rank: line up (batch,) with (batch, 1)."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, expand_dims(b, -1)) if b.ndim == 1 else (squeeze(a, -1), b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (expand_dims(a, -1), b) if a.ndim == 1 else (a, squeeze(b, -1))
    return a, b


def _pair(y_true, y_pred, loss: str) -> tuple:
    """y_pred as a float node and y_true cast to its dtype, at the same rank."""
    y_pred = _float_pred(y_pred, loss)
    y_true = cast(as_node(y_true), y_pred.dtype)
    return _same_rank(y_true, y_pred)


def _logits_of(y_pred: Node, op_type, axis: int | None = None):
    """The input of a softmax (on `axis`) or sigmoid node, else None."""
    if not isinstance(y_pred.op, op_type):
        return None
    if axis is not None and y_pred.op.axis != normalize_axis(axis, y_pred.ndim):
        return None
    return y_pred.inputs[0]


def _clipped(p: Node) -> Node:
    return clip(p, EPSILON, 1.0 - EPSILON)


def _normalized_log(y_pred: Node, axis: int) -> Node:
    """log of y_pred rescaled to sum to one along `axis` and clipped, as Keras."""
    return log(_clipped(y_pred / sum(y_pred, axis=axis, keepdims=True)))


# ---------------------------------------------------- per-sample losses


def mean_squared_error(y_true, y_pred) -> Node:
    """mean((y_pred - y_true) ** 2) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, "mean_squared_error")
    return mean(square(y_pred - y_true), axis=-1)


def mean_absolute_error(y_true, y_pred) -> Node:
    """mean(|y_pred - y_true|) over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred, "mean_absolute_error")
    return mean(abs(y_pred - y_true), axis=-1)


def huber(y_true, y_pred, delta: float = 1.0) -> Node:
    """Mean over the last axis of 0.5 e**2 where |e| <= delta, else delta |e| - 0.5 delta**2."""
    y_true, y_pred = _pair(y_true, y_pred, "huber")
    error = y_pred - y_true
    abs_error = abs(error)
    quadratic = square(error) * 0.5
    linear = abs_error * delta - 0.5 * delta ** 2
    return mean(where(abs_error <= delta, quadratic, linear), axis=-1)


def binary_crossentropy(y_true, y_pred, from_logits: bool = False,
                        label_smoothing: float = 0.0, axis: int = -1) -> Node:
    """Mean over `axis` of -(y log p + (1 - y) log(1 - p)); p = sigmoid(y_pred) when
    from_logits, else y_pred clipped to [1e-7, 1 - 1e-7]. Labels are smoothed
    towards 0.5 by `label_smoothing`."""
    y_true, y_pred = _pair(y_true, y_pred, "binary_crossentropy")
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    logits = y_pred if from_logits else _logits_of(y_pred, Sigmoid)
    if logits is not None:
        # -log sigmoid(x) = softplus(-x) and -log(1 - sigmoid(x)) = softplus(x), stably.
        losses = y_true * softplus(-logits) + (1.0 - y_true) * softplus(logits)
    else:
        p = _clipped(y_pred)
        losses = -(y_true * log(p) + (1.0 - y_true) * log(1.0 - p))
    return mean(losses, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                             label_smoothing: float = 0.0, axis: int = -1) -> Node:
    """-sum(y_true * log p) over `axis`; y_true holds (one-hot) probabilities.

    p = softmax(y_pred) when from_logits (via log_softmax); else y_pred
    rescaled to sum to one and clipped to [1e-7, 1 - 1e-7]. `label_smoothing`
    mixes y_true with the uniform distribution.
    """
    y_pred = _float_pred(y_pred, "categorical_crossentropy")
    y_true = cast(as_node(y_true), y_pred.dtype)
    if label_smoothing:
        classes = y_pred.shape[axis]
        if classes is None:
            raise ShapeError(f"categorical_crossentropy: label smoothing needs a known number "
                             f"of classes; y_pred is {format_shape(y_pred.shape)}")
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / classes
    logits = y_pred if from_logits else _logits_of(y_pred, Softmax, axis)
    if logits is not None:
        return softmax_cross_entropy(logits, y_true, axis=axis)
    return -sum(y_true * _normalized_log(y_pred, axis), axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> Node:
    """-log p[label] over the last axis; y_true holds integer class ids, shaped
    like y_pred without its last axis (or with it as size 1).

    From logits this is `gn.nn.sparse_softmax_cross_entropy`; from
    probabilities, y_pred is rescaled to sum to one and clipped to [1e-7, 1 - 1e-7].
    """
    y_pred = _float_pred(y_pred, "sparse_categorical_crossentropy")
    labels = _class_ids(as_node(y_true), y_pred)
    logits = y_pred if from_logits else _logits_of(y_pred, Softmax, -1)
    if logits is not None:
        return sparse_softmax_cross_entropy(logits, labels)
    picked = take_along_axis(_normalized_log(y_pred, -1), expand_dims(labels, -1), axis=-1)
    return -squeeze(picked, -1)


def _class_ids(labels: Node, y_pred: Node) -> Node:
    """Integer labels with y_pred's rank minus one (Keras squeezes a trailing 1)."""
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = squeeze(labels, -1)
    if labels.dtype.kind not in "iu":
        labels = cast(labels, "int64")
    if labels.ndim != y_pred.ndim - 1:
        raise ShapeError(f"sparse_categorical_crossentropy: labels {format_shape(labels.shape)} "
                         f"should have one axis fewer than y_pred {format_shape(y_pred.shape)}")
    return labels


def kl_divergence(y_true, y_pred) -> Node:
    """sum(y_true * log(y_true / y_pred)) over the last axis, both clipped to [1e-7, 1]."""
    y_true, y_pred = _pair(y_true, y_pred, "kl_divergence")
    y_true = clip(y_true, EPSILON, 1.0)
    y_pred = clip(y_pred, EPSILON, 1.0)
    return sum(y_true * log(y_true / y_pred), axis=-1)


# ------------------------------------------------------------ reduction


def check_reduction(reduction) -> str:
    """The canonical name of `reduction`, or a ValueError listing the valid ones."""
    reduction = _REDUCTION_ALIASES.get(reduction, reduction)
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; valid ones are "
                         f"{', '.join(REDUCTIONS)} (or sum_over_batch_size, None)")
    return reduction


def reduce_loss(values: Node, sample_weight=None, reduction: str = "mean") -> Node:
    """Weight per-sample `values` by `sample_weight`, then reduce them.

    Weights of lower rank line up with the leading axes of `values` (a
    weight per sample also weighs each of its time steps); a trailing size-1
    axis is dropped, as Keras does.
    """
    reduction = check_reduction(reduction)
    if sample_weight is not None:
        values = values * _aligned_weight(cast(as_node(sample_weight), values.dtype), values)
    if reduction == "none":
        return values
    if reduction == "sum":
        return sum(values)
    return mean(values)


def _aligned_weight(weight: Node, values: Node) -> Node:
    if weight.ndim == values.ndim + 1 and weight.shape[-1] == 1:
        weight = squeeze(weight, -1)
    while weight.ndim < values.ndim and weight.ndim > 0:
        weight = expand_dims(weight, -1)
    return weight


# -------------------------------------------------------------- classes


class Loss(Configurable):
    """Base class: `call(y_true, y_pred)` gives per-sample losses; calling the
    loss with an optional `sample_weight` reduces them to a node."""

    config_kind = "losses"

    def __init__(self, reduction: str = "mean", name: str | None = None):
        self.reduction = check_reduction(reduction)
        self.name = name or _snake_case(type(self).__name__)

    def __call__(self, y_true, y_pred, sample_weight=None) -> Node:
        with name_scope(self.name):
            return reduce_loss(self.call(y_true, y_pred), sample_weight, self.reduction)

    def call(self, y_true, y_pred) -> Node:
        raise NotImplementedError(f"{type(self).__name__} must implement call(y_true, y_pred)")

    def __repr__(self):
        return f"<{type(self).__name__} reduction={self.reduction!r}>"


class LossFunctionWrapper(Loss):
    """A Loss from a per-sample function `fn(y_true, y_pred, **kwargs)`."""

    def __init__(self, fn, reduction: str = "mean", name: str | None = None, **kwargs):
        super().__init__(reduction, name or getattr(fn, "__name__", "loss"))
        self.fn = fn
        self.kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)


class MeanSquaredError(LossFunctionWrapper):
    """Mean squared error, reduced."""

    def __init__(self, reduction="mean", name="mean_squared_error"):
        super().__init__(mean_squared_error, reduction, name)


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean absolute error, reduced."""

    def __init__(self, reduction="mean", name="mean_absolute_error"):
        super().__init__(mean_absolute_error, reduction, name)


class Huber(LossFunctionWrapper):
    """Huber loss: quadratic within `delta`, linear outside."""

    def __init__(self, delta: float = 1.0, reduction="mean", name="huber_loss"):
        super().__init__(huber, reduction, name, delta=float(delta))


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary cross-entropy from probabilities, or logits with from_logits=True."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="mean", name="binary_crossentropy"):
        super().__init__(binary_crossentropy, reduction, name, from_logits=bool(from_logits),
                         label_smoothing=float(label_smoothing), axis=axis)


class CategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy against one-hot (or soft) labels."""

    def __init__(self, from_logits: bool = False, label_smoothing: float = 0.0, axis: int = -1,
                 reduction="mean", name="categorical_crossentropy"):
        super().__init__(categorical_crossentropy, reduction, name,
                         from_logits=bool(from_logits), label_smoothing=float(label_smoothing),
                         axis=axis)


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Cross-entropy against integer class ids."""

    def __init__(self, from_logits: bool = False, reduction="mean",
                 name="sparse_categorical_crossentropy"):
        super().__init__(sparse_categorical_crossentropy, reduction, name,
                         from_logits=bool(from_logits))


class KLDivergence(LossFunctionWrapper):
    """Kullback-Leibler divergence of y_pred from y_true."""

    def __init__(self, reduction="mean", name="kl_divergence"):
        super().__init__(kl_divergence, reduction, name)


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --------------------------------------------------------------- lookup

LOSSES = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy, "cce": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "kl_divergence": KLDivergence, "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
}
#: The per-sample loss functions by name, for configs that refer to one.
FUNCTIONS = {fn.__name__: fn for fn in (
    mean_squared_error, mean_absolute_error, huber, binary_crossentropy,
    categorical_crossentropy, sparse_categorical_crossentropy, kl_divergence)}
#: Class names work too, in any case: "SparseCategoricalCrossentropy".
_BY_CLASS_NAME = {cls.__name__.lower(): cls for cls in LOSSES.values()}


def get(identifier, **kwargs) -> Loss:
    """A Loss from a name or alias ("mse", "sparse_categorical_crossentropy", any
    case, class names too) built with `kwargs`; Loss instances pass through and
    plain functions are wrapped."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = LOSSES.get(identifier.lower()) or _BY_CLASS_NAME.get(identifier.lower())
        if cls is not None:
            return cls(**kwargs)
    elif callable(identifier) and not isinstance(identifier, type):
        return LossFunctionWrapper(identifier, **kwargs)
    valid = ", ".join(sorted(LOSSES))
    hint = difflib.get_close_matches(str(identifier).lower(), LOSSES, n=1)
    maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ValueError(f"unknown loss {identifier!r}{maybe}; valid names are: {valid}")


__all__ = [
    "EPSILON", "LOSSES", "REDUCTIONS", "BinaryCrossentropy", "CategoricalCrossentropy", "Huber",
    "KLDivergence", "Loss", "LossFunctionWrapper", "MeanAbsoluteError", "MeanSquaredError",
    "SparseCategoricalCrossentropy", "binary_crossentropy", "categorical_crossentropy",
    "check_reduction", "get", "huber", "kl_divergence", "mean_absolute_error",
    "mean_squared_error", "reduce_loss", "sparse_categorical_crossentropy",
]
