"""Cross-entropy of logits against labels, one loss per example."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.ops import expand_dims, log_softmax, multiply, neg, one_hot, softmax, subtract, sum
from graphnet.shapes import format_shape


@dataclass(frozen=True)
class SparseSoftmaxCrossEntropy(Op):
    """logsumexp(logits) - logits[label] over the last axis, in one stable kernel.

    Its gradient is the well-known (softmax(logits) - onehot(label)) * g.
    """

    def infer(self, logits, labels):
        if labels.dtype.kind not in "iu":
            raise ShapeError(f"labels must be integer class ids, got {labels.dtype.name}; use "
                             "softmax_cross_entropy for one-hot or soft labels")
        if logits.dtype.kind != "f":
            raise ShapeError(f"logits must be floating-point, got {logits.dtype.name}")
        if labels.ndim != logits.ndim - 1 or any(
                a is not None and b is not None and a != b
                for a, b in zip(labels.shape, logits.shape[:-1])):
            raise ShapeError(f"labels {format_shape(labels.shape)} should have the shape of "
                             f"logits {format_shape(logits.shape)} without its last axis")
        return logits.shape[:-1], logits.dtype

    def forward(self, logits, labels):
        top = logits.max(axis=-1, keepdims=True)
        shifted = logits - top
        total = np.log(np.exp(shifted).sum(axis=-1))
        picked = np.take_along_axis(shifted, labels[..., None].astype(np.intp), axis=-1)[..., 0]
        return (total - picked).astype(logits.dtype, copy=False)

    def grad(self, node, g):
        logits, labels = node.inputs
        depth = logits.shape[-1]
        if depth is None:
            raise ShapeError(f"'{node.name}': the number of classes must be known to "
                             "differentiate sparse_softmax_cross_entropy")
        delta = subtract(softmax(logits), one_hot(labels, depth, logits.dtype))
        return [multiply(delta, expand_dims(g, -1)), None]


def sparse_softmax_cross_entropy(logits, labels, name=None) -> Node:
    """-log softmax(logits)[label] per example; labels are class indices.

    One fused kernel, stable for saturated logits (no inf or NaN).
    """
    return apply(SparseSoftmaxCrossEntropy(), as_node(logits), as_node(labels),
                 name=name or "sparse_softmax_cross_entropy")


def softmax_cross_entropy(logits, labels, axis: int = -1, name=None) -> Node:
    """-sum(labels * log softmax(logits)) per example; labels are probabilities."""
    logits, labels = as_node(logits), as_node(labels)
    return neg(sum(multiply(labels, log_softmax(logits, axis)), axis=axis),
               name=name or "softmax_cross_entropy")
