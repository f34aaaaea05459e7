"""prune: keep only what the fetches and the updates need.

A graph already holds only the ancestors of its outputs. What is left to
prune is inside groups: a group's value is None, so of its inputs only the
side effects matter. Each group keeps just the assignments it (transitively)
triggers, and the pure work that fed nothing but the group disappears, such
as a loss grouped with the updates that do not need its value.
"""

from __future__ import annotations

from graphnet.compiler.rewrite import is_group, make, note, plural, rebuild
from graphnet.graph import Graph, Node


def prune(graph: Graph) -> Graph:
    """Groups keep only the stateful nodes they trigger; the rest goes when unused."""
    dropped = 0

    def visit(node: Node):
        nonlocal dropped
        if not is_group(node):
            return None
        effects = _effects(node.inputs)
        same = len(effects) == len(node.inputs) and all(
            a is b for a, b in zip(effects, node.inputs, strict=True))
        if same:
            return None
        dropped += sum(1 for i in node.inputs if not any(i is e for e in effects))
        return make(node.op, effects, like=node)

    before = len(graph)
    graph = rebuild(graph, visit)
    if dropped:
        note(f"groups dropped {plural(dropped, 'pure input')}; "
             f"{plural(before - len(graph), 'node')} became unused")
    return graph


def _effects(inputs) -> list:
    """The first stateful nodes met walking up from `inputs`, in order."""
    found, seen = [], set()
    stack = list(reversed(inputs))
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.op.stateful:
            found.append(node)
        else:
            stack.extend(reversed(node.inputs))
    return found
