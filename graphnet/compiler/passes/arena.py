"""arena_updates: an optimizer's per-variable update kernels -> one kernel over arenas.

After fuse_elementwise an optimizer step is one fused update kernel per
variable, each running the same program (Adam's, say) on its own gradient,
slots and parameter: a model of 6 tensors pays 6 kernel calls, and small
ones are mostly call. Kernels that run the same program become one
`ArenaUpdate` node (compiler/ops.py), which runs that program once over
flat arrays: the parameters, each slot and the gradients, each laid out
back to back (DESIGN.md, "Memory model"):

- the Session keeps the variables of each "variable" input (the
  parameters, Adam's m, Adam's v, ...) in one arena, each variable a view
  into it, in the order the kernel lists them (`Plan.arenas`);
- plan_memory gives each gradient's producer (a matmul, a bias sum) its
  segment of a gradient arena to write into, so no gradient is copied
  (compiler/memory.py); one that cannot be placed so is copied in.

The kernel checks both at run time and, when the variables are not laid
out so (a plan run outside a Session), runs each variable on its own: the
same loop, so the same numbers (compiler/kernels/arena.py).

Which kernels merge (`_candidate`):

1. pure updates (no value leaves the kernel), read only by `gn.group`
   nodes and not fetched;
2. every input has the kernel's shape (a segment: the variable, its
   slots, its gradient) or is a single value that all merged kernels share
   (the learning rate, Adam's step size): other broadcasting stays as is;
3. no input but its own targets reads a variable that the run assigns, and
   no input depends on another update;
4. a variable lies in one arena only.

Kernels merge when their programs, constants, backends, the role and
dtype of each input and the shared inputs are the same: one arena kernel
per optimizer (a MultiOptimizer's optimizers each get theirs), per dtype,
and per program variant (AdamW's decayed and excluded variables). Frozen
variables have no update kernel, so they are in no arena.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from graphnet.compiler.kernels.program import is_update, ref_index
from graphnet.compiler.ops import ArenaUpdate, Fused
from graphnet.compiler.rewrite import (
    Rewrite,
    aliases,
    clone,
    describe,
    is_group,
    log,
    note,
    plural,
    rebuild,
)
from graphnet.graph import Graph, Node, Variable
from graphnet.shapes import is_static


def arena_updates(graph: Graph) -> Graph:
    """One `ArenaUpdate` per set of update kernels that share their program
    (each keeps its kernels' backend)."""
    users, outputs = graph.consumers(), set(graph.outputs)
    assigned = {t for n in graph.nodes if n.op.stateful for t in n.op.targets(n)}
    tainted = _after_updates(graph)
    updates, keys = 0, {}
    for node in graph.nodes:
        if isinstance(node.op, Fused) and node.op.stateful:
            updates += 1
            key = _candidate(node, users, outputs, assigned, tainted)
            if key is not None:
                keys.setdefault(key, []).append(node)
    groups = _one_arena_per_variable([g for g in keys.values() if len(g) > 1])
    arena_of, lines = {}, []
    for members in groups:
        arena = _arena_node(members)
        if arena is None:
            continue
        for m in members:
            arena_of[m] = arena
        lines.append(_line(arena))
        log(Rewrite("arena", ", ".join(describe(m) for m in members),
                    f"one {arena.op.kernel_kind} kernel '{arena.name}'"))
    if not arena_of:
        return graph
    merged = len(arena_of)
    note(f"{plural(merged, 'update kernel')} -> {plural(len(lines), 'arena kernel')}"
         f"{f' ({updates - merged} left per variable)' if updates > merged else ''}:\n" +
         "\n".join(f"      {line}" for line in lines))

    def visit(node: Node):
        if node in arena_of:
            return arena_of[node]
        if is_group(node):
            unique = tuple(dict.fromkeys(node.inputs))
            if len(unique) < len(node.inputs):
                return clone(node, unique)
        return None

    # Members map to their arena node, which runs where the last of them stood.
    return rebuild(graph, visit)


def _after_updates(graph: Graph) -> set:
    """Nodes that depend on an update (their value comes after one)."""
    after: set = set()
    for node in graph.nodes:
        if node.op.stateful or any(i in after for i in node.inputs):
            after.add(node)
    return after


def _candidate(node: Node, users: dict, outputs: set, assigned: set, tainted: set):
    """The grouping key of update kernel `node`, or None when it may not merge."""
    op = node.op
    if op.outputs or node in outputs or not all(is_group(u) for u in users[node]):
        return None
    if op.shape is None or not is_static(op.shape):
        return None
    targets = set(op.targets(node))
    roles, shared = [], []
    for inp in node.inputs:
        if inp in tainted or (inp not in targets and aliases(inp, assigned)):
            return None
        if inp.shape == op.shape:
            roles.append(("variable" if isinstance(inp.op, Variable) else "array",
                          inp.dtype.name, None))
        elif inp.shape is not None and is_static(inp.shape) and int(np.prod(inp.shape)) == 1:
            roles.append(("shared", inp.dtype.name, tuple(inp.shape)))
            shared.append(inp)
        else:
            return None
    if any(roles[t][0] != "variable" for t in _target_positions(op)):
        return None
    if len({d for role, d, _ in roles if role == "array"}) > 1:
        return None
    return op.program, op.constants, op.backend, tuple(roles), tuple(shared)


def _target_positions(op) -> list:
    return sorted({ref_index(i.args[0]) for i in op.program if is_update(i)})


def _variables(node: Node) -> list:
    return [i for i in node.inputs if isinstance(i.op, Variable) and i.shape == node.op.shape]


def _one_arena_per_variable(groups: list) -> list:
    """The groups without members whose variables another member reads too
    (a variable cannot lie in two arenas)."""
    counts = Counter(v for members in groups for m in members for v in _variables(m))
    shared = {v for v, n in counts.items() if n > 1}
    kept = [[m for m in members if not shared & set(_variables(m))] for members in groups]
    return [members for members in kept if len(members) > 1]


def _arena_node(members: list):
    """The ArenaUpdate node standing for `members` (None if its loop fails to build)."""
    first, last = members[0], members[-1]
    spec, inputs = [], []
    for p, inp in enumerate(first.inputs):
        if inp.shape == first.op.shape:
            role = "variable" if isinstance(inp.op, Variable) else "array"
            spec.append((role, inp.dtype.name, None))
            inputs.extend(m.inputs[p] for m in members)
        else:
            spec.append(("shared", inp.dtype.name, tuple(inp.shape)))
            inputs.append(inp)
    absorbed = tuple(a for m in members for a in m.op.absorbed)
    op = ArenaUpdate(first.op.program, first.op.constants, tuple(spec),
                     tuple(m.op.shape for m in members), first.op.backend, absorbed=absorbed)
    if op.backend == "numba":
        from graphnet.compiler.kernels.arena import ArenaKernel
        try:
            ArenaKernel(op)   # compiles (or loads) the loop now, as fuse_elementwise does
        except Exception:  # noqa: BLE001 - then the kernels stay per variable
            return None
    scope = last.name.rsplit("/", 1)[0] + "/" if "/" in last.name else ""
    node = Node(op, tuple(inputs), None, None, f"{scope}arena_update", last.origin)
    node.id = max(m.id for m in members)
    return node


def _line(node: Node) -> str:
    """What explain() says about one arena kernel."""
    op = node.op
    runs = op.runs(node)
    names = [f"{run[0].name} .. {run[-1].name}" for run in runs]
    gradients = len(op.arrays())
    return (f"{node.name}: {op.describe(node)}  [{op.kernel_kind}: arenas {'; '.join(names)}"
            f"{f'; {gradients} gradient arena' if gradients else ''}]")

