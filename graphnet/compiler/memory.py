"""Memory planning: each node that can write into a given array gets a
preallocated buffer, and buffers are reused once every reader is done.

A buffer is free again after the last step that reads its node, or reads a
view of it (a transpose of an activation keeps the activation alive).
Outputs live to the end of the run (the Session copies them out). A node
never writes into a buffer that its own inputs are still using, so kernels
need no care about overlapping memory.

An arena update (compiler/passes/arena.py) reads the gradients of many
variables as one flat array: it gets a buffer of its own with a row per
gradient input, and each gradient's producer (found through reshapes and
squeezes, which are views) writes straight into its segment of that row.
Those segments are never reused; a gradient that no producer can write in
place (a view of something else, a value shared by two segments) is
copied in by the kernel.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from graphnet.graph import Graph, Node
from graphnet.ops.shape import ExpandDims, Flatten, Reshape, ReshapeLike, Squeeze, Unflatten
from graphnet.shapes import is_static

#: Views that only reshape: a value written into a segment stays there through them.
RESHAPES = (Reshape, ReshapeLike, Squeeze, ExpandDims, Flatten, Unflatten)


@dataclass(frozen=True)
class Buffer:
    """A preallocated array `name` of `shape` and `dtype`; with a `base`, a
    view of the base's elements from `offset` on (a segment of an arena).
    An arena update's buffer lists in `placed` the (gradient input,
    segment) pairs that their producers write in place."""

    name: str
    shape: tuple
    dtype: np.dtype
    base: Buffer | None = None
    offset: int = 0
    placed: tuple = ()

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def plan_buffers(graph: Graph) -> tuple:
    """({node: Buffer}, [Buffer, ...]) for the nodes whose kernels take `out=`."""
    order = graph.nodes
    last = _last_reads(graph)
    free = defaultdict(list)
    released = defaultdict(list)
    assigned, arenas = _gradient_arenas(graph)
    buffers = list(dict.fromkeys(arenas.values()))
    for step, node in enumerate(order):
        if node in assigned:
            pass    # an arena update, or a gradient written into its segment
        elif _wants_buffer(node):
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


def _gradient_arenas(graph: Graph) -> tuple:
    """({node: Buffer} for arena updates and the gradients written into
    their buffers, {arena update: its Buffer})."""
    from graphnet.compiler.ops import ArenaUpdate
    assigned, arenas = {}, {}
    for node in graph.nodes:
        op = node.op
        if not isinstance(op, ArenaUpdate) or not op.arrays():
            continue
        rows, slots = op.arrays(), op.slots()
        bounds = np.cumsum([0] + [int(np.prod(s, dtype=np.int64)) for s in op.shapes]).tolist()
        views, placed = [], []
        for r, p in enumerate(rows):
            for k in range(len(op.shapes)):
                writer = _writer(node.inputs[slots[p][1] + k])
                if writer is not None and writer not in assigned:
                    assigned[writer] = None    # filled in below, once the arena exists
                    views.append((writer, r * op.size + bounds[k]))
                    placed.append((p, k))
        arena = Buffer(f"a{len(arenas)}", (len(rows), op.size), np.dtype(op.spec[rows[0]][1]),
                       placed=tuple(placed))
        arenas[node] = assigned[node] = arena
        for i, (writer, offset) in enumerate(views):
            assigned[writer] = Buffer(f"{arena.name}_{i}", writer.shape, writer.dtype, arena,
                                      offset)
    return assigned, arenas


def _writer(value: Node):
    """The node that computes `value` into a buffer of its own, through
    reshape-like views of the same size (None: there is none)."""
    node = value
    while not _wants_buffer(node):
        if not (isinstance(node.op, RESHAPES) and node.inputs):
            return None
        node = node.inputs[0]
    if node.dtype != value.dtype or node.shape is None or \
            int(np.prod(node.shape, dtype=np.int64)) != int(np.prod(value.shape, dtype=np.int64)):
        return None
    return node


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
    for node, buffer in assigned.items():   # a segment of an arena counts as the arena
        uses[buffer.base or buffer].append(
            BufferUse(node, step_of[node], min(last[node], len(order) - 1)))
    lives = tuple(BufferLife(b, tuple(sorted(u, key=lambda x: x.first)))
                  for b, u in uses.items())
    live = [0] * len(order)
    for life in lives:
        steps = {s for use in life.uses for s in range(use.first, use.last + 1)}
        for step in steps:
            live[step] += life.buffer.nbytes
    return MemoryReport(lives, tuple(live), len(order))


def format_bytes(n: int) -> str:
    for unit, size in (("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
