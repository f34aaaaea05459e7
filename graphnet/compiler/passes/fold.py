"""fold_constants: evaluate at compile time what needs no placeholder or variable.

A node is folded when all its inputs are constants (after folding its own
inputs) and its op is pure. Rules that keep folding safe:

- random ops (`op.random`) and assignments (`op.stateful`) never fold: a
  random op must draw new numbers on every run;
- a folded value may not hold more than FOLD_LIMIT elements or than its
  largest constant input, whichever is more, so folding never turns a cheap
  broadcast view (`broadcast_to(0.0, (4096, 4096))`) into a huge array;
- a kernel that raises, or whose result disagrees with the node's static
  shape or dtype, is left to run (and fail) at run time, as unoptimized.
"""

from __future__ import annotations

import numpy as np

from graphnet.compiler.rewrite import frozen, is_group, is_pure, make, note, plural, rebuild
from graphnet.graph import Constant, Graph, Node
from graphnet.shapes import num_elements

#: Folded values may hold this many elements even when their inputs hold fewer.
FOLD_LIMIT = 1024


def fold_constants(graph: Graph) -> Graph:
    """Replace constant-only subgraphs by their values."""
    folded = 0

    def visit(node: Node):
        nonlocal folded
        value = evaluate(node)
        if value is None:
            return None
        folded += 1
        return make(Constant(frozen(value)), (), like=node)

    graph = rebuild(graph, visit)
    if folded:
        note(f"folded {plural(folded, 'node')} into constants")
    return graph


def evaluate(node: Node):
    """The node's value if it may be folded now, else None."""
    if (not node.inputs or is_group(node) or not is_pure(node.op)
            or not all(isinstance(i.op, Constant) for i in node.inputs)):
        return None
    values = [i.op.value for i in node.inputs]
    size = num_elements(node.shape)
    if size is None or size > max([FOLD_LIMIT] + [v.size for v in values]):
        return None
    try:
        with np.errstate(all="ignore"):
            value = np.asarray(node.op.forward(*values))
    except Exception:  # noqa: BLE001 - the same error will surface at run time
        return None
    if value.shape != node.shape or value.dtype != node.dtype:
        return None
    return value
