"""Updates of variables, the ops that optimizers emit, and grouping.

An assignment runs after every other op of the same run that reads its
variable, so reads see the value from before the run; its own value is the
variable's new value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, Variable, apply, as_node
from graphnet.shapes import broadcast_shapes, format_shape


@dataclass(frozen=True)
class Assignment(Op):
    """Shared rule: the target is a variable and the value fits it."""

    stateful = True

    def infer(self, target, value):
        if not isinstance(target.op, Variable):
            raise ShapeError(f"target '{target.name}' is a {target.op.kind}, not a variable")
        try:
            fits = broadcast_shapes(value.shape, target.shape) == target.shape
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(f"value {format_shape(value.shape)} does not fit variable "
                             f"'{target.name}' {format_shape(target.shape)}")
        if not np.can_cast(value.dtype, target.dtype, "same_kind"):
            raise ShapeError(f"cannot store {value.dtype.name} into {target.dtype.name} "
                             f"variable '{target.name}'")
        return target.shape, target.dtype


@dataclass(frozen=True)
class Assign(Assignment):
    def forward(self, target, value):
        np.copyto(target, value, casting="same_kind")
        return target


@dataclass(frozen=True)
class AssignAdd(Assignment):
    def forward(self, target, value):
        np.add(target, value, out=target, casting="same_kind")
        return target


@dataclass(frozen=True)
class AssignSub(Assignment):
    def forward(self, target, value):
        np.subtract(target, value, out=target, casting="same_kind")
        return target


def _assign(op, var, value, name):
    var = as_node(var)
    return apply(op, var, as_node(value, like=var), name=name)


def assign(var, value, name=None) -> Node:
    """Set `var` to `value` when run; the node's value is the new value."""
    return _assign(Assign(), var, value, name)


def assign_add(var, value, name=None) -> Node:
    """var += value when run."""
    return _assign(AssignAdd(), var, value, name)


def assign_sub(var, value, name=None) -> Node:
    """var -= value when run: `gn.assign_sub(W, 0.1 * dW)` is one SGD step."""
    return _assign(AssignSub(), var, value, name)


@dataclass(frozen=True)
class Group(Op):
    """Runs its inputs for their effects; its fetched value is None."""

    def infer(self, *inputs):
        return None, None

    def forward(self, *values):
        return None


def group(*nodes, name=None) -> Node:
    """One node that runs all `nodes` (e.g. a training step's updates)."""
    flat = [n for item in nodes for n in (item if isinstance(item, (list, tuple)) else [item])]
    return apply(Group(), *flat, name=name or "group")


@dataclass(frozen=True)
class Snapshot(Op):
    """A copy of x taken when it runs: fetches of a variable (or a view of
    one) that the same run updates show the value from before the update."""

    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        if out is None:
            return np.array(x, copy=True)
        np.copyto(out, x)
        return out
