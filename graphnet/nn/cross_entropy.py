"""Cross-entropy of logits against labels, one loss per example."""

from __future__ import annotations

from graphnet.errors import ShapeError
from graphnet.graph import Node, as_node
from graphnet.ops import expand_dims, log_softmax, multiply, neg, squeeze, sum, take_along_axis
from graphnet.shapes import format_shape


def sparse_softmax_cross_entropy(logits, labels, name=None) -> Node:
    """-log softmax(logits)[label] per example; labels are class indices.

    Computed from log_softmax, so saturated logits give finite losses.
    """
    logits, labels = as_node(logits), as_node(labels)
    if labels.dtype.kind not in "iu":
        raise ShapeError(f"sparse_softmax_cross_entropy: labels must be integer class ids, got "
                         f"{labels.dtype.name}; use softmax_cross_entropy for one-hot labels")
    if labels.ndim != logits.ndim - 1:
        raise ShapeError(f"sparse_softmax_cross_entropy: labels {format_shape(labels.shape)} "
                         f"should have one axis fewer than logits {format_shape(logits.shape)}")
    picked = take_along_axis(log_softmax(logits), expand_dims(labels, -1), axis=-1)
    return neg(squeeze(picked, -1), name=name or "sparse_softmax_cross_entropy")


def softmax_cross_entropy(logits, labels, axis: int = -1, name=None) -> Node:
    """-sum(labels * log softmax(logits)) per example; labels are probabilities."""
    logits, labels = as_node(logits), as_node(labels)
    return neg(sum(multiply(labels, log_softmax(logits, axis)), axis=axis),
               name=name or "softmax_cross_entropy")
