"""Cross-entropy of logits against labels, one loss per example."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.jit import loop
from graphnet.ops import expand_dims, log_softmax, multiply, neg, one_hot, softmax, subtract, sum
from graphnet.scratch import kept
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


@dataclass(frozen=True)
class SparseSoftmaxCrossEntropyWithGrad(Op):
    """The loss of `SparseSoftmaxCrossEntropy` and its gradient, in one pass
    over the rows of the logits: the compiler's `fuse_cross_entropy` puts
    one in place of that op and of the gradient `(softmax(logits) -
    one_hot(labels)) * scale` (scale broadcast from (rows or 1, classes or
    1); without one, 1). Two outputs, (loss, gradient), which `FusedOutput`
    nodes take apart; `shape` and `dtype` are the logits'.

    `forward` is the composite's arithmetic with the shared steps done once
    (the same bits); under Numba, one loop per row (`_loss_and_grad_rows`).
    """

    shape: tuple
    dtype: np.dtype

    backends = ("numba",)

    def output_types(self) -> list:
        """(shape, dtype) of the loss and of the gradient."""
        return [(self.shape[:-1], self.dtype), (self.shape, self.dtype)]

    def infer(self, logits, labels, scale=None):
        SparseSoftmaxCrossEntropy().infer(logits, labels)
        if logits.shape != self.shape or logits.dtype != self.dtype:
            raise ShapeError(f"made for logits {format_shape(self.shape)} {self.dtype.name}, "
                             f"given {format_shape(logits.shape)} {logits.dtype.name}")
        if scale is not None and scale.dtype != self.dtype:
            raise ShapeError(f"scale must be {self.dtype.name}, given {scale.dtype.name}")
        return None, None

    def forward(self, logits, labels, scale=None, scratch=None):
        loss = kept(scratch, "loss", logits.shape[:-1], logits.dtype)
        grad = kept(scratch, "grad", logits.shape, logits.dtype)
        np.subtract(logits, logits.max(axis=-1, keepdims=True), out=grad)
        picked = np.take_along_axis(grad, labels[..., None].astype(np.intp), axis=-1)[..., 0]
        np.exp(grad, out=grad)
        total = grad.sum(axis=-1, keepdims=True)
        np.subtract(np.log(total[..., 0]), picked, out=loss)
        grad /= total
        grad -= labels[..., None] == np.arange(logits.shape[-1])  # one_hot: none out of range
        if scale is not None:
            grad *= scale
        return loss, grad

    def forward_loop(self, logits, labels, scale=None, scratch=None):
        """forward by `_loss_and_grad_rows`; labels out of range go to
        `forward`, which fails or wraps them as NumPy does."""
        scratch = {} if scratch is None else scratch
        key = (logits.shape, logits.dtype, None if scale is None else scale.shape)
        if key not in scratch:   # the outputs, as the loop sees them, made once per shape
            scratch[key] = _rows_layout(logits.shape, logits.dtype,
                                        None if scale is None else scale.shape)
        layout = scratch[key]
        if layout is None or not logits.flags.c_contiguous:
            return self.forward(logits, labels, scale, scratch)
        loss, grad, rows, matrix = layout
        if scale is not None:
            matrix = scale.reshape(matrix.shape) if scale.shape != matrix.shape else scale
        if logits.ndim != 2:
            logits, labels = logits.reshape(rows[1].shape), labels.reshape(rows[0].shape)
        if _loss_and_grad_rows(logits, labels, matrix, *rows) >= 0:
            return self.forward(logits, labels, scale, scratch)
        return loss, grad

    def grad(self, node, g):
        raise NotImplementedError("made by the compiler after differentiation; take "
                                  "gradients of the graph before compiling it")


def _rows_layout(shape: tuple, dtype, scale_shape) -> tuple | None:
    """(loss, grad, their views as (rows,) and (rows, classes), the scale as
    a (1 or rows, 1 or classes) matrix: ones without a scale) for logits of
    `shape`; None where the loop cannot run (no rows, a scale of other shape)."""
    depth = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    if rows == 0 or depth == 0:
        return None
    loss, grad = np.zeros(shape[:-1], dtype), np.zeros(shape, dtype)
    matrix = np.ones((1, 1), dtype)
    if scale_shape is not None:
        columns = scale_shape[-1] if scale_shape else 1
        count = int(np.prod(scale_shape, dtype=np.int64))
        if columns not in (1, depth) or count // columns not in (1, rows):
            return None
        matrix = np.empty((count // columns, columns), dtype)
    return loss, grad, (loss.reshape(rows), grad.reshape(rows, depth)), matrix


@loop(fastmath=False)   # IEEE NaN and infinities, as NumPy's max, exp and log
def _loss_and_grad_rows(x, labels, scale, loss, grad):
    """Per row r: loss[r] = log(sum(exp(x - max))) - (x[label] - max) and
    grad[r] = (softmax(x[r]) - one_hot(label)) * scale[r or 0]. Returns the
    first row whose label is out of range (nothing after it is written), else -1."""
    rows, depth = x.shape
    one = x.dtype.type(1)
    for r in range(rows):
        label = labels[r]
        if label < 0 or label >= depth:
            return r
        top = x[r, 0]
        for c in range(1, depth):
            top = max(top, x[r, c])
        total = x.dtype.type(0)
        for c in range(depth):
            e = np.exp(x[r, c] - top)
            grad[r, c] = e
            total += e
        loss[r] = np.log(total) - (x[r, label] - top)
        s = r if scale.shape[0] > 1 else 0
        for c in range(depth):
            p = grad[r, c] / total
            if c == label:
                p -= one
            grad[r, c] = p * scale[s, c if scale.shape[1] > 1 else 0]
    return -1


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
