"""Embedding lookup: rows of a table by integer id."""

from __future__ import annotations

from graphnet.errors import ShapeError
from graphnet.graph import Node, as_node
from graphnet.ops import gather
from graphnet.shapes import format_shape


def embedding_lookup(table, ids, name=None) -> Node:
    """table[ids]: one row of the (vocabulary, dim) table per id, shape
    ids.shape + (dim,). The gradient scatter-adds into the table's rows, so
    repeated ids accumulate."""
    table, ids = as_node(table), as_node(ids)
    if table.ndim < 1:
        raise ShapeError(f"embedding_lookup: expects a table with a vocabulary axis, got "
                         f"{format_shape(table.shape)}")
    if ids.dtype.kind not in "iu":
        raise ShapeError(f"embedding_lookup: ids must be integers, got {ids.dtype.name}; "
                         f"use gn.cast(ids, 'int64')")
    return gather(table, ids, axis=0, name=name or "embedding_lookup")
