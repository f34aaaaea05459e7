"""specialize and static_shapes: plans for concrete feed shapes.

`specialize(graph, feed_shapes)` puts a SpecifyShape after each fed
placeholder whose fed shape says more than its declared one, so every node
below re-infers with concrete sizes (and the plan refuses other shapes).
Session.run compiles one plan per feed-shape signature this way.

`static_shapes` then turns the run-time shape helpers that gradients emit
(`*_like` ops, which take their shape from a second input at run time) into
static ops, or removes them, wherever the sizes are now known.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from graphnet.compiler.ops import SpecifyShape
from graphnet.compiler.rewrite import apply_rules, make, note, note_counts, rebuild
from graphnet.errors import GraphError
from graphnet.graph import Constant, Graph, Node, Placeholder
from graphnet.ops.reductions import ReducedSize, Sum
from graphnet.ops.shape import BroadcastLike, BroadcastTo, FillLike, Reshape, ReshapeLike, SumLike
from graphnet.shapes import check_value_shape, format_shape, is_static


def specialize(graph: Graph, feed_shapes: dict) -> Graph:
    """Promise the concrete `feed_shapes` ({placeholder: shape}) to the graph.

    Shapes that do not fit their placeholder are skipped: running the plan
    with them fails with the Session's usual feed error.
    """
    for key in feed_shapes:
        if not isinstance(key, Node) or not isinstance(key.op, Placeholder):
            raise GraphError(f"feed_shapes keys must be placeholders; got {key!r}")
    promised = []

    def visit(node: Node):
        if not isinstance(node.op, Placeholder) or node not in feed_shapes:
            return None
        shape = tuple(int(d) for d in feed_shapes[node])
        if shape == node.shape or not check_value_shape(shape, node.shape):
            return None
        promised.append(f"{node.name} {format_shape(node.shape)} -> {format_shape(shape)}")
        return make(SpecifyShape(shape, node.name), (node,), like=node, suffix="shape")

    graph = rebuild(graph, visit)
    if promised:
        note("; ".join(promised))
    return graph


def static_shapes(graph: Graph) -> Graph:
    """Run-time shape helpers become static ops where sizes are known."""
    counts = Counter()
    graph = apply_rules(graph, SHAPE_RULES, counts)
    note_counts(counts)
    return graph


# One rule a row: `rule(node) -> replacement | None` (see rewrite.apply_rules).


def sum_like_static(node):
    """sum_like(x, like) -> sum(x, broadcast axes) reshaped to like, or x."""
    x, like = node.inputs
    if not (is_static(x.shape) and is_static(like.shape)) or x.ndim < like.ndim:
        return None
    if x.shape == like.shape:
        return x
    lead = x.ndim - like.ndim
    if any(b not in (1, a) for a, b in zip(x.shape[lead:], like.shape, strict=True)):
        return None  # not a broadcast of like's shape: leave the error to run time
    axes = tuple(range(lead)) + tuple(
        lead + i for i, (a, b) in enumerate(zip(x.shape[lead:], like.shape, strict=True))
        if b == 1 and a != 1)
    summed = make(Sum(axes, True), (x,), like=node, suffix="sum") if axes else x
    if summed.shape == like.shape:
        return summed
    return make(Reshape(like.shape), (summed,), like=node)


def broadcast_like_static(node):
    """broadcast_like(x, like) -> broadcast_to(x, like.shape), or x."""
    x, like = node.inputs
    if not is_static(like.shape):
        return None
    if x.shape == like.shape:
        return x
    return make(BroadcastTo(like.shape), (x,), like=node)


def reshape_like_static(node):
    """reshape_like(x, like) -> reshape(x, like.shape), or x."""
    x, like = node.inputs
    if not is_static(like.shape):
        return None
    if x.shape == like.shape:
        return x
    return make(Reshape(like.shape), (x,), like=node)


def fill_like_static(node):
    """fill_like(like) -> a constant, broadcast (a free view) when not a scalar."""
    if not is_static(node.shape):
        return None
    scalar = np.asarray(node.op.value, dtype=node.op.dtype)
    scalar.setflags(write=False)
    if not node.shape:
        return make(Constant(scalar), (), like=node)
    value = make(Constant(scalar), (), like=node, suffix="value")
    return make(BroadcastTo(node.shape), (value,), like=node)


def reduced_size_static(node):
    """reduced_size(x) -> the number of elements, a constant."""
    dims = [node.inputs[0].shape[a] for a in node.op.axis]
    if None in dims:
        return None
    value = np.asarray(np.prod(dims, dtype=np.int64), dtype=node.op.dtype)
    value.setflags(write=False)
    return make(Constant(value), (), like=node)


SHAPE_RULES = [
    (SumLike, sum_like_static),              # sum_like(x, like) -> sum(x, axes) or x
    (BroadcastLike, broadcast_like_static),  # broadcast_like(x, like) -> broadcast_to(x, s) or x
    (ReshapeLike, reshape_like_static),      # reshape_like(x, like) -> reshape(x, s) or x
    (FillLike, fill_like_static),            # fill_like(like) -> broadcast_to(c, s)
    (ReducedSize, reduced_size_static),      # reduced_size(x) -> n
]
