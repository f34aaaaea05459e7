"""Turn a set of fetches into a Plan: sort, rewrite, generate NumPy code.

`PIPELINE` is the ordered list of passes, each a plain `Graph -> Graph`
function whose name `disable=[...]` and `explain()` use. Given the shapes
that will be fed, `specialize` runs first and makes every size known.
"""

from __future__ import annotations

import time

from graphnet.compiler.fetches import flatten, snapshot_aliases
from graphnet.compiler.kernels import resolve_backend
from graphnet.compiler.memory import plan_buffers
from graphnet.compiler.passes import (
    arena_updates,
    contiguous_reshapes,
    cse,
    direct_convolutions,
    fold_constants,
    fuse_cross_entropy,
    fuse_elementwise,
    fuse_matmul_bias,
    prune,
    simplify,
    specialize,
    static_shapes,
)
from graphnet.compiler.plan import PassRecord, Plan
from graphnet.compiler.rewrite import recording
from graphnet.errors import GraphError
from graphnet.graph import Graph

PIPELINE: list = [
    prune,           # keep only what the fetches and the updates need
    static_shapes,   # run-time shape helpers of gradients -> static ops, where sizes are known
    cse,             # merge nodes with equal ops and inputs; constants by value
    fold_constants,  # evaluate subgraphs with no placeholder or variable now
    simplify,        # algebraic identities, one rule a row of simplify.RULES
    cse,             # again: simplified nodes often become equal
    direct_convolutions,  # one-channel convolutions without a patch matrix (numba)
    fuse_cross_entropy,  # sparse softmax cross-entropy and its gradient -> one step
    fuse_elementwise,  # elementwise chains and optimizer updates -> one kernel each
    arena_updates,   # per-variable update kernels of one program -> one over arenas
    fuse_matmul_bias,  # what is left of x @ W + b -> one kernel, the bias added in place
    contiguous_reshapes,  # reshapes of a transposed array -> one copy into a planned buffer
]

#: What `disable=[...]` accepts: the pipeline's names, "specialize", and
#: "plan_memory" (preallocated, reused buffers; see compiler/memory.py).
PASS_NAMES = ["specialize"] + list(dict.fromkeys(p.__name__ for p in PIPELINE)) + ["plan_memory"]


def compile(fetches, feeds=None, optimize: bool = True, disable=(),  # noqa: A001
            feed_shapes: dict | None = None, verify: bool = False,
            backend: str | None = None, guard: bool = False, arenas: bool = True) -> Plan:
    """A runnable plan for `fetches` (a node, list, tuple or dict of nodes).

    `feed_shapes` ({placeholder: shape}) specialises the plan to those shapes:
    every size becomes known and the plan refuses other shapes (Session.run
    passes the shapes it feeds and caches one plan per signature). `disable`
    names passes to skip; `optimize=False` skips them all. `verify=True`
    re-checks the graph after every pass (the tests do). `backend` runs fused
    kernels, and the ops that have compiled loops of their own (pooling,
    normalization, ...), with "numpy" or "numba" (None: numba when
    installed, unless the GRAPHNET_BACKEND environment variable says otherwise).
    `guard=True` checks every step for NaN and Inf and raises a GuardError
    naming the first graph node that made one (see compiler/guard.py).
    `arenas` (on by default) runs the `arena_updates` pass: an optimizer's
    per-variable update kernels become one kernel over arenas that the
    Session lays out (see compiler/passes/arena.py); `arenas=False`, or
    `gn.Session(arenas=False)`, keeps one update kernel per variable.

        >>> plan = gn.compile([loss, train], feeds=[x, y], feed_shapes={x: (32, 784)})
        >>> print(plan.explain())
    """
    unknown = set(disable) - set(PASS_NAMES)
    if unknown:
        raise ValueError(f"unknown passes {sorted(unknown)}; the passes are {PASS_NAMES}")
    backend = resolve_backend(backend)
    outputs, structure = flatten(fetches)
    graph = Graph(outputs)
    snapshots = snapshot_aliases(graph)
    if snapshots is not graph.outputs:
        graph = Graph(snapshots)
    records = []
    steps = [("specialize", lambda g: specialize(g, feed_shapes))] if feed_shapes else []
    configured = {"fuse_elementwise": lambda g: fuse_elementwise(g, backend),
                  "direct_convolutions": lambda g: direct_convolutions(g, backend)}
    steps += [(p.__name__, configured.get(p.__name__, p)) for p in PIPELINE]
    for name, run_pass in steps if optimize else []:
        if name in disable:
            continue
        if name == "arena_updates" and not arenas:
            records.append(PassRecord(name, len(graph), len(graph), (
                "off (arenas=False)",)))
            continue
        before, start = len(graph), time.perf_counter()
        with recording() as notes:
            graph = run_pass(graph)
            history = tuple(notes.history)
        seconds = time.perf_counter() - start
        if verify:
            _verify(graph, name)
        records.append(PassRecord(name, before, len(graph), tuple(notes), seconds, history))
    memory = ({}, [])
    if optimize and "plan_memory" not in disable:
        memory = plan_buffers(graph)
        buffer_of, buffers = memory
        records.append(PassRecord("plan_memory", len(graph), len(graph), (
            f"{len(buffer_of)} steps write into {len(buffers)} preallocated buffers, "
            f"{sum(b.nbytes for b in buffers):,} bytes" + _arena_note(graph, buffers),)))
    return Plan(graph, structure, feeds, records, memory=memory, backend=backend, guard=guard)


def _arena_note(graph: Graph, buffers: list) -> str:
    """How many gradients their producers write into arena updates' buffers."""
    from graphnet.compiler.ops import ArenaUpdate
    wanted = sum(len(n.op.arrays()) * len(n.op.shapes) for n in graph
                 if isinstance(n.op, ArenaUpdate))
    if not wanted:
        return ""
    placed = sum(len(b.placed) for b in buffers)
    return (f"; {placed} of {wanted} gradients written by their producers into the arena "
            "updates' gradient buffers (the rest copied in)")


def _verify(graph: Graph, name: str):
    try:
        graph.verify()
    except GraphError as err:
        raise GraphError(f"after pass {name}: {err}") from None
