"""cse: common subexpression elimination.

Two nodes are one when their ops are equal (same class, equal dataclass
attributes) and their inputs are the same nodes; constants are one when
their dtype, shape and bytes agree. Assignments and random ops are never
merged (two dropout masks must differ), nor placeholders and variables.
"""

from __future__ import annotations

import hashlib

from graphnet.compiler.rewrite import is_pure, note, plural, rebuild
from graphnet.graph import Constant, Graph, Node, Placeholder, Variable


def cse(graph: Graph) -> Graph:
    """Merge nodes that compute the same thing; the first one stays."""
    seen: dict = {}
    merged = {"constants": 0, "others": 0}

    def visit(node: Node):
        key = _key(node)
        if key is None:
            return None
        first = seen.setdefault(key, node)
        if first is node:
            return None
        merged["constants" if isinstance(node.op, Constant) else "others"] += 1
        return first

    graph = rebuild(graph, visit)
    total = merged["constants"] + merged["others"]
    if total:
        constants = f" ({plural(merged['constants'], 'constant')})" if merged["constants"] else ""
        note(f"merged {plural(total, 'node')}{constants}")
    return graph


def _key(node: Node):
    """What makes two nodes the same, or None for nodes never merged."""
    op = node.op
    if isinstance(op, Constant):
        value = op.value
        digest = hashlib.blake2b(value.tobytes(), digest_size=20).digest()
        return ("constant", value.dtype.str, value.shape, digest)
    if isinstance(op, (Placeholder, Variable)) or not is_pure(op):
        return None
    key = (op, node.inputs)
    try:
        hash(key)
    except TypeError:  # an attribute that cannot be hashed: leave the node alone
        return None
    return key
