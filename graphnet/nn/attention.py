"""Scaled dot-product attention, composed of primitive ops (fusion is the compiler's job)."""

from __future__ import annotations

import math

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, as_node, constant
from graphnet.ops import matmul, multiply, not_equal, softmax, where
from graphnet.ops.shape import swap_last_axes
from graphnet.shapes import broadcast_shapes, format_shape


def attention(q, k, v, mask=None, name=None) -> Node:
    """softmax(q k^T / sqrt(depth)) v for (batch, heads, seq, depth) q, k, v.

    `mask` (bool, True = attend) broadcasts to (batch, heads, seq_q, seq_k);
    masked logits get a large negative value rather than -inf, so a row with
    nothing to attend to averages v instead of giving NaN.
    """
    q, k, v = as_node(q), as_node(k), as_node(v)
    for label, t in (("q", q), ("k", k), ("v", v)):
        if t.ndim != 4:
            raise ShapeError(f"attention: {label} must be 4-D (batch, heads, seq, depth), "
                             f"got {format_shape(t.shape)}")
        if t.dtype.kind != "f":
            raise ShapeError(f"attention: {label} must be floating-point, got {t.dtype.name}")
    depth = q.shape[3]
    if depth is None:
        raise ShapeError(f"attention: the depth of q {format_shape(q.shape)} must be known "
                         f"when the graph is built")
    if k.shape[3] not in (None, depth):
        raise ShapeError(f"attention: q {format_shape(q.shape)} and k {format_shape(k.shape)} "
                         f"differ in depth")
    if None not in (k.shape[2], v.shape[2]) and k.shape[2] != v.shape[2]:
        raise ShapeError(f"attention: k {format_shape(k.shape)} and v {format_shape(v.shape)} "
                         f"differ in sequence length")
    logits = matmul(multiply(q, 1 / math.sqrt(depth)), swap_last_axes(k))
    if mask is not None:
        mask = as_node(mask)
        if mask.dtype != np.bool_:
            mask = not_equal(mask, 0)
        try:  # a None in the logits' shape matches any size of the mask
            merged = broadcast_shapes(mask.shape, logits.shape)
            fits = len(merged) == logits.ndim and all(
                d is None or d == m for d, m in zip(logits.shape, merged))
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(f"attention: mask {format_shape(mask.shape)} does not broadcast "
                             f"to (batch, heads, seq_q, seq_k) = {format_shape(logits.shape)}")
        # NOTE: -inf would make fully masked rows NaN; this is 0 after softmax.
        blocked = max(-1e9, float(np.finfo(logits.dtype).min))
        logits = where(mask, logits, constant(blocked, dtype=logits.dtype))
    return matmul(softmax(logits, axis=-1), v, name=name or "attention")


def causal_mask(seq: int, name=None) -> Node:
    """(seq, seq) bool constant, True on and below the diagonal: position i
    attends to positions <= i. Broadcasts against (batch, heads, seq, seq)."""
    return constant(np.tril(np.ones((int(seq), int(seq)), bool)), name=name or "causal_mask")
