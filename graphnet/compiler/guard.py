"""Guard mode: stop at the first graph node that makes a NaN or an Inf.

A plan compiled with `guard=True` checks every step's floating-point output
as soon as it is computed (before any assignment of the run, so a failing
training step changes no variable). When a fused kernel produced the bad
value, the nodes it absorbed are evaluated again one by one on the same
inputs, so the error names the node the user wrote, not the kernel:

    GuardError: log 'loss/log' made 3 NaN (of 32 values), created at train.py:14
      its inputs: 'sub' float32 (32,): min -2.1, max 3.4, 0 NaN, 0 Inf
      (inside the fused kernel of step t45 'loss/mean')
"""

from __future__ import annotations

import numpy as np

from graphnet.errors import GraphnetError
from graphnet.graph import Constant, Node
from graphnet.shapes import format_shape


class GuardError(GraphnetError, FloatingPointError):
    """A step made NaN or Inf; `node` is the first graph node that did."""

    def __init__(self, message: str, node: Node | None = None):
        super().__init__(message)
        self.node = node


def finite(value) -> bool:
    """True unless `value` is a floating-point array (or scalar) holding NaN or Inf."""
    array = value if isinstance(value, np.ndarray) else None
    if array is None:
        if isinstance(value, (float, np.floating)):
            return bool(np.isfinite(value))
        if isinstance(value, tuple):   # several outputs of one fused kernel
            return all(finite(v) for v in value)
        return True
    return array.dtype.kind != "f" or bool(np.isfinite(array).all())


def stats(value) -> str:
    """min, max and counts of NaN and Inf of an array, for error messages."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" or array.size == 0:
        return f"{array.dtype.name} {format_shape(array.shape)}"
    if array.dtype.kind != "f":
        return (f"{array.dtype.name} {format_shape(array.shape)}: min {array.min()}, "
                f"max {array.max()}")
    good = array[np.isfinite(array)]
    low, high = (f"{good.min():.4g}", f"{good.max():.4g}") if good.size else ("-", "-")
    return (f"{array.dtype.name} {format_shape(array.shape)}: min {low}, max {high}, "
            f"{int(np.isnan(array).sum())} NaN, {int(np.isinf(array).sum())} Inf")


def check(step, value, inputs: tuple):
    """Raise GuardError if `value`, the output of plan step `step` computed from
    `inputs` (the values of its node's inputs), holds NaN or Inf."""
    if finite(value):
        return
    node = step.nodes[-1]
    if not node.inputs:    # a feed, a variable or a constant
        what = {"placeholder": "was fed", "variable": "holds"}.get(node.op.kind, "holds")
        raise GuardError(f"{node.op.kind} '{node.name}' {what} NaN or Inf: {stats(value)}; "
                         f"created at {node.origin}", node)
    absorbed = step.nodes[:-1]
    if absorbed:
        culprit, culprit_inputs = _first_bad_absorbed(node, absorbed, inputs)
        if culprit is not None:
            raise _error(culprit, culprit_inputs, f"inside the fused kernel of step "
                                                   f"{step.target} '{node.name}'")
    raise _error(node, dict(zip(node.inputs, inputs)), f"plan step {step.target}")


def _first_bad_absorbed(fused: Node, absorbed: tuple, inputs: tuple):
    """Evaluate the absorbed nodes in order on the fused kernel's inputs: the
    first whose inputs are finite and whose value is not, with its inputs."""
    values = dict(zip(fused.inputs, inputs))
    for node in absorbed:
        args = []
        for i in node.inputs:
            if i not in values and isinstance(i.op, Constant):
                values[i] = i.op.value
            args.append(values.get(i))
        if node.op.stateful or any(a is None for a in args):
            continue   # an update inside the kernel: its value input was checked
        with np.errstate(all="ignore"):
            values[node] = node.op.forward(*args)
        if not finite(values[node]) and all(finite(a) for a in args):
            return node, {i: values[i] for i in node.inputs}
    return None, None


def _error(node: Node, inputs: dict, where: str) -> GuardError:
    value_stats = [f"'{i.name}' {stats(v)}" for i, v in inputs.items()]
    bad_inputs = [i for i, v in inputs.items() if not finite(v)]
    if bad_inputs:
        first = bad_inputs[0]
        source = ("fed" if first.op.kind == "placeholder" else
                  "a variable's value" if first.op.kind == "variable" else "computed")
        head = (f"{node.op.kind} '{node.name}' got NaN or Inf from its input '{first.name}' "
                f"({source})")
    else:
        head = f"{node.op.kind} '{node.name}' made NaN or Inf from finite inputs"
    lines = [f"{head}, created at {node.origin}",
             "  its inputs: " + ("; ".join(value_stats) or "none"),
             f"  ({where})"]
    return GuardError("\n".join(lines), node)
