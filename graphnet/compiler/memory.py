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


# ------------------------------------------------------------- timeline


@dataclass(frozen=True)
class BufferUse:
    """One node's tenancy of a buffer: written at step `first`, last read at `last`."""

    node: Node
    first: int
    last: int


@dataclass(frozen=True)
class BufferLife:
    """A buffer, its size, and the nodes that use it one after another."""

    buffer: Buffer
    uses: tuple

    @property
    def first(self) -> int:
        return min(u.first for u in self.uses)

    @property
    def last(self) -> int:
        return max(u.last for u in self.uses)


@dataclass(frozen=True)
class MemoryReport:
    """What `Plan.memory()` returns: each buffer's life, the bytes in use after
    every step (`live`), their maximum (`peak`) and the bytes the plan holds
    (`held`: every buffer is allocated once, when the plan is made)."""

    buffers: tuple
    live: tuple
    steps: int

    @property
    def held(self) -> int:
        return sum(b.buffer.nbytes for b in self.buffers)

    @property
    def peak(self) -> int:
        return max(self.live, default=0)

    @property
    def peak_step(self) -> int:
        return self.live.index(self.peak) if self.live else 0

    def __str__(self) -> str:
        lines = [f"{len(self.buffers)} buffers, {format_bytes(self.held)} held; planned peak "
                 f"{format_bytes(self.peak)} in use after step t{self.peak_step} "
                 f"(of {self.steps} steps)",
                 f"{'buffer':<7} {'bytes':>10}  {'shape':<18} steps    nodes"]
        for life in sorted(self.buffers, key=lambda b: -b.buffer.nbytes):
            b = life.buffer
            nodes = ", ".join(f"{u.node.name} [t{u.first}-t{u.last}]" for u in life.uses)
            lines.append(f"{b.name:<7} {b.nbytes:>10,}  {str(b.shape):<18} "
                         f"t{life.first}-t{life.last}  {nodes}")
        return "\n".join(lines)


def timeline(graph: Graph, assigned: dict) -> MemoryReport:
    """The memory report of a plan from `plan_buffers`' assignment."""
    order = graph.nodes
    step_of = {node: i for i, node in enumerate(order)}
    last = _last_reads(graph)
    uses = defaultdict(list)
    for node, buffer in assigned.items():
        uses[buffer].append(BufferUse(node, step_of[node], min(last[node], len(order) - 1)))
    lives = tuple(BufferLife(b, tuple(sorted(u, key=lambda x: x.first)))
                  for b, u in uses.items())
    live = [0] * len(order)
    for life in lives:
        for use in life.uses:
            for step in range(use.first, use.last + 1):
                live[step] += life.buffer.nbytes
    return MemoryReport(lives, tuple(live), len(order))


def format_bytes(n: int) -> str:
    for unit, size in (("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
