"""`to_dot`: what can be drawn, and how each target becomes a diagram.

A node or list of nodes draws its ancestors (plus the generated backward
graph with `show_grads=True`); a compiled Plan draws its steps; any other
object with a `to_dot(**options)` method (the hook for models) draws itself.
"""

from __future__ import annotations

from collections import Counter

import graphviz

from graphnet import graph as graph_module
from graphnet.autodiff import gradients
from graphnet.compiler.memory import format_bytes
from graphnet.compiler.plan import Plan
from graphnet.graph import Graph, Node, Variable
from graphnet.viz import style
from graphnet.viz.diagram import StepGroup, build


def to_dot(target, *, show_grads: bool = False, collapse=(), depth: int | None = None,
           show_buffers: bool = False, show_memory: bool = False, legend: bool = True,
           title: str | None = None, rankdir: str = "TB") -> graphviz.Digraph:
    """A `graphviz.Digraph` of a node, a list of nodes, a compiled plan or a model.

    `show_grads=True` adds the gradient graph of the target (a loss) with
    respect to the trainable variables it uses. `collapse=["dense_1"]`
    (shell patterns allowed) or `depth=1` fold name scopes into one box each.
    `show_buffers=True` (plans only) annotates each step with its kernel and
    buffer; `show_memory=True` (plans only) adds the bytes in use after each
    step and the planned peak (`plan.memory()`). `rankdir="LR"` lays the graph
    out left to right.

        >>> dot = gn.viz.to_dot(loss, depth=1)
        >>> print(dot.source)
    """
    options = {"collapse": collapse, "depth": depth, "legend": legend, "title": title,
               "rankdir": rankdir}
    if isinstance(target, Plan):
        if show_grads:
            raise ValueError("show_grads does not apply to a compiled plan, which draws what "
                             "it computes; compile the gradients with it: "
                             "gn.compile([loss, *gn.gradients(loss, variables)])")
        return plan_diagram(target, show_buffers=show_buffers, show_memory=show_memory,
                            **options)
    if show_buffers or show_memory:
        flag = "show_buffers" if show_buffers else "show_memory"
        raise ValueError(f"{flag} applies to compiled plans: "
                         f"gn.viz.draw(gn.compile(loss), 'plan.svg', {flag}=True)")
    if not isinstance(target, (Node, list, tuple, dict)) and callable(
            getattr(target, "to_dot", None)):
        # NOTE: models do not define this hook yet; one would pass the options on
        # to `gn.viz.to_dot(self.outputs, ...)` or to its loss graph.
        return target.to_dot(show_grads=show_grads, **options)
    outputs = _as_nodes(target)
    if show_grads:
        outputs = outputs + backward_nodes(outputs)
    return build(Graph(outputs).nodes, outputs, **options)


def backward_nodes(outputs: list) -> list:
    """The gradients of the floating-point outputs with respect to every
    trainable float variable among their ancestors, as new graph nodes."""
    losses = [n for n in outputs if n.dtype is not None and n.dtype.kind == "f"
              and style.category(n) not in ("update", "variable")]
    variables = [n for n in Graph(outputs).nodes if isinstance(n.op, Variable)
                 and n.op.trainable and n.dtype.kind == "f"]
    if not losses or not variables:
        names = ", ".join(f"'{n.name}'" for n in outputs)
        raise ValueError(f"show_grads: nothing to differentiate; it needs a floating-point "
                         f"target that depends on trainable float variables, and {names} "
                         f"gives {len(losses)} such targets and {len(variables)} such "
                         "variables")
    # Drawing should not rename the user's later nodes (`gradients_1/...`), so
    # the names used by these throwaway gradient nodes are forgotten again.
    with graph_module.throwaway_names():
        grads = gradients(losses, variables, unconnected="none")
    return [g for g in grads if g is not None]


def plan_diagram(plan: Plan, *, show_buffers: bool = False, show_memory: bool = False,
                 title=None, **options) -> graphviz.Digraph:
    """The plan's nodes; each step of several nodes (a fused kernel) is a
    cluster labelled with its kernel kind."""
    memory = plan.memory() if show_memory else None
    nodes = list(plan.graph.nodes)
    known = set(nodes)
    for step in plan.steps:
        nodes += [n for n in step.nodes if n not in known]
        known.update(step.nodes)
    shared = Counter(_buffer(s) for s in plan.steps if _buffer(s) is not None)
    groups, notes = [], {}
    for index, step in enumerate(plan.steps):
        storage = buffer_note(step, shared) if show_buffers else None
        if memory is not None and step.buffer is not None:
            live = f"{format_bytes(memory.live[index])} in use"
            storage = f"{storage}, {live}" if storage else live
        if len(step.nodes) > 1:
            label = f"{step.target}: fused {step.kernel} kernel"
            groups.append(StepGroup(step.target, label + (f", {storage}" if storage else ""),
                                    tuple(step.nodes)))
        elif show_buffers or storage:
            notes[step.nodes[-1]] = " \u00b7 ".join(
                [step.target, step.kernel] + ([storage] if storage else []))
    kernels = Counter(step.kernel for step in plan.steps)
    summary = ", ".join(f"{kind} {count}" for kind, count in kernels.most_common())
    heading = title or f"compiled plan: {len(plan.steps)} steps ({summary})"
    if memory is not None and not title:
        heading += (f"; buffers hold {format_bytes(memory.held)}, planned peak "
                    f"{format_bytes(memory.peak)} after {plan.steps[memory.peak_step].target}")
    return build(nodes, plan.outputs, groups=groups, notes=notes, title=heading, **options)


def buffer_note(step, shared: Counter) -> str | None:
    """`buffer b2 (shared by 3 steps)`, once the memory planner gives Step a
    `buffer` field; None until then (a step's `target` names its result)."""
    buffer = _buffer(step)
    if buffer is None:
        return None
    reuse = f" (shared by {shared[buffer]} steps)" if shared[buffer] > 1 else ""
    return f"buffer {buffer}{reuse}"


def _buffer(step):
    return getattr(step, "buffer", None)


def _as_nodes(target) -> list:
    """`target` (a node, or a list, tuple or dict of them) as a non-empty list of
    nodes, or a TypeError that says what can be drawn."""
    if isinstance(target, dict):
        target = list(target.values())
    items = list(target) if isinstance(target, (list, tuple)) else [target]
    for item in items:
        if not isinstance(item, Node):
            raise TypeError(
                f"gn.viz cannot draw {type(item).__name__} {item!r:.60}; it draws a graph node, "
                "a list of nodes, a compiled plan (gn.compile(...)) or an object with a "
                "to_dot() method")
    if not items:
        raise ValueError("gn.viz: nothing to draw: the list of nodes is empty")
    return items
