"""Fetch structures (a node, or lists, tuples and dicts of them) to flat lists and back."""

from __future__ import annotations

from graphnet.errors import GraphError
from graphnet.graph import Node


def flatten(fetches) -> tuple:
    """(list of nodes, structure) where structure rebuilds the user's shape."""
    nodes = []

    def walk(item):
        if isinstance(item, Node):
            nodes.append(item)
            return len(nodes) - 1
        if isinstance(item, (list, tuple)):
            return (type(item), [walk(i) for i in item])
        if isinstance(item, dict):
            return (dict, [(k, walk(v)) for k, v in item.items()])
        raise GraphError(f"cannot fetch {type(item).__name__} {item!r}: fetches are graph "
                         "nodes, or lists, tuples and dicts of them")

    structure = walk(fetches)
    return nodes, structure


def unflatten(structure, values: list):
    """The user's fetch structure filled with `values`."""
    if isinstance(structure, int):
        return values[structure]
    kind, items = structure
    if kind is dict:
        return {k: unflatten(v, values) for k, v in items}
    return kind(unflatten(i, values) for i in items)


def structure_key(structure):
    """A hashable form of a structure, for plan caches."""
    if isinstance(structure, int):
        return structure
    kind, items = structure
    if kind is dict:
        return (dict, tuple((k, structure_key(v)) for k, v in items))
    return (kind, tuple(structure_key(i) for i in items))


def snapshot_aliases(graph):
    """The graph's outputs, those that share memory with a variable that the
    same run assigns replaced by snapshots taken before the assignment
    (graph.Graph orders every reader of a variable, views included, before
    its update). Returns `graph.outputs` itself when nothing needs one."""
    from graphnet.graph import Variable, apply, throwaway_names
    from graphnet.ops.state import Snapshot

    assigned = {n.inputs[0] for n in graph if n.op.stateful}
    if not assigned:
        return graph.outputs

    def aliased(node):
        while node.op.view:
            node = node.inputs[0]
        return isinstance(node.op, Variable) and node in assigned

    if not any(aliased(o) for o in graph.outputs):
        return graph.outputs
    with throwaway_names():  # compiling again must not rename the user's nodes
        return [apply(Snapshot(), o, name=f"{o.name}/snapshot") if aliased(o) else o
                for o in graph.outputs]
