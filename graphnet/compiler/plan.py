"""A compiled plan: generated straight-line Python over NumPy kernels."""

from __future__ import annotations

import numpy as np

from graphnet.compiler.fetches import unflatten
from graphnet.errors import GraphError
from graphnet.graph import Constant, Graph, Node, Placeholder, Variable, type_string
from graphnet.ops.state import Group


class Plan:
    """What `Session.run` executes: `plan.source` shows the generated code.

    The generated function takes the fed arrays and the variable arrays (in
    the order of `plan.placeholders` and `plan.variables`) and returns the
    flat outputs; variables are updated in place.
    """

    def __init__(self, graph: Graph, structure, feeds=None, applied=()):
        self.graph = graph
        self.structure = structure
        self.outputs = graph.outputs
        self.placeholders = [n for n in graph if isinstance(n.op, Placeholder)]
        self.variables = [n for n in graph if isinstance(n.op, Variable)]
        self.applied = list(applied)
        if feeds is not None:
            _check_feeds(self.placeholders, feeds)
        self.source, namespace = _generate(graph, self.placeholders, self.variables)
        exec(compile(self.source, "<graphnet plan>", "exec"), namespace)  # noqa: S102
        self._function = namespace["plan"]

    def __call__(self, feed_values: list, variable_values: list) -> list:
        return self._function(feed_values, variable_values)

    def unflatten(self, values: list):
        """Flat output values in the structure the fetches were given in."""
        return unflatten(self.structure, values)

    def explain(self) -> str:
        """The passes applied with node counts, and the plan's size."""
        lines = [f"plan for {len(self.outputs)} fetches: {len(self.graph)} nodes, "
                 f"{len(self.placeholders)} placeholders, {len(self.variables)} variables"]
        for name, before, after in self.applied:
            lines.append(f"  {name}: {before} -> {after} nodes")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Plan {len(self.graph)} nodes -> {len(self.outputs)} outputs>"


def _check_feeds(needed: list, feeds):
    feeds = [feeds] if isinstance(feeds, Node) else list(feeds)
    for f in feeds:
        if not isinstance(f, Node) or not isinstance(f.op, Placeholder):
            raise GraphError(f"feeds must be placeholders; got {f!r}")
    missing = [p.name for p in needed if p not in feeds]
    if missing:
        raise GraphError(f"the fetches need placeholders {missing}, which are not in feeds")


def _generate(graph: Graph, placeholders: list, variables: list) -> tuple:
    """Python source of `plan(feeds, variables)` and the namespace it runs in."""
    local = {node: f"t{i}" for i, node in enumerate(graph)}
    feed_index = {n: i for i, n in enumerate(placeholders)}
    var_index = {n: i for i, n in enumerate(variables)}
    namespace = {"np": np}
    lines = ["def plan(feeds, variables):"]
    for node in graph:
        name = local[node]
        if node in feed_index:
            code = f"{name} = feeds[{feed_index[node]}]"
        elif node in var_index:
            code = f"{name} = variables[{var_index[node]}]"
        elif isinstance(node.op, Constant):
            namespace[f"c{name}"] = node.op.value
            code = f"{name} = c{name}"
        elif isinstance(node.op, Group):
            code = f"{name} = None"
        else:
            kernel = f"{node.op.kind}_{name[1:]}"
            namespace[kernel] = node.op.forward
            code = f"{name} = {kernel}({', '.join(local[i] for i in node.inputs)})"
        lines.append(f"    {code:<40}  # {type_string(node)} {node.name} ({node.origin})")
    lines.append(f"    return [{', '.join(local[o] for o in graph.outputs)}]")
    return "\n".join(lines) + "\n", namespace
