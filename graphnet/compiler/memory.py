"""Memory planning: each node that can write into a given array gets a
preallocated buffer, and buffers are reused once every reader is done.

A buffer is free again after the last step that reads its node, or reads a
view of it (a transpose of an activation keeps the activation alive).
Outputs live to the end of the run (the Session copies them out). A node
never writes into a buffer that its own inputs are still using, so kernels
need no care about overlapping memory.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from graphnet.graph import Graph, Node
from graphnet.shapes import is_static


@dataclass(frozen=True)
class Buffer:
    """A preallocated array `name` of `shape` and `dtype`."""

    name: str
    shape: tuple
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def plan_buffers(graph: Graph) -> tuple:
    """({node: Buffer}, [Buffer, ...]) for the nodes whose kernels take `out=`."""
    order = graph.nodes
    last = _last_reads(graph)
    free = defaultdict(list)
    released = defaultdict(list)
    assigned, buffers = {}, []
    for step, node in enumerate(order):
        if _wants_buffer(node):
            key = (node.shape, node.dtype)
            if free[key]:
                buffer = free[key].pop()
            else:
                buffer = Buffer(f"b{len(buffers)}", node.shape, node.dtype)
                buffers.append(buffer)
            assigned[node] = buffer
            released[last[node]].append(buffer)
        for buffer in released.pop(step, []):
            free[(buffer.shape, buffer.dtype)].append(buffer)
    return assigned, buffers


def _wants_buffer(node: Node) -> bool:
    return (node.op.writes_out and not node.op.stateful and node.dtype is not None
            and node.shape is not None and is_static(node.shape))


def _last_reads(graph: Graph) -> dict:
    """The index of the last step that reads each node's memory (or the end)."""
    order = graph.nodes
    end = len(order)
    last = {node: step for step, node in enumerate(order)}
    for step, node in enumerate(order):
        for inp in node.inputs:
            last[inp] = max(last[inp], step)
    for out in graph.outputs:
        last[out] = end
    for node in reversed(order):  # a view keeps what it views alive
        if node.op.view and node.inputs:
            base = node.inputs[0]
            last[base] = max(last[base], last[node])
    return last
