"""Turn a set of fetches into a Plan: sort, rewrite, generate NumPy code.

`PIPELINE` is the ordered list of passes, each a plain `Graph -> Graph`
function whose name `disable=[...]` and `explain()` use.
"""

from __future__ import annotations

from graphnet.compiler.fetches import flatten
from graphnet.compiler.plan import Plan
from graphnet.graph import Graph

PIPELINE: list = []


def compile(fetches, feeds=None, optimize: bool = True, disable=()) -> Plan:  # noqa: A001
    """A runnable plan for `fetches` (a node, list, tuple or dict of nodes)."""
    unknown = set(disable) - {p.__name__ for p in PIPELINE}
    if unknown:
        raise ValueError(f"unknown passes {sorted(unknown)}; the passes are "
                         f"{[p.__name__ for p in PIPELINE]}")
    outputs, structure = flatten(fetches)
    graph = Graph(outputs)
    applied = []
    for compiler_pass in PIPELINE if optimize else []:
        if compiler_pass.__name__ not in disable:
            before = len(graph)
            graph = compiler_pass(graph)
            applied.append((compiler_pass.__name__, before, len(graph)))
    return Plan(graph, structure, feeds, applied)
