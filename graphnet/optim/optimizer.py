"""The Optimizer base class and gradient clipping.

An optimizer turns a loss into one update node: `opt.minimize(loss)` is
`apply_gradients(compute_gradients(loss))`, a `gn.group` of assignments
(the slot updates, the parameter updates and the step-counter increment)
that the compiler can fuse. Subclasses follow Keras 3: per-variable slots
are created in `build(var_list)` with `add_slot`, and the maths of one
parameter is in `update_step(gradient, variable, learning_rate)`, which
updates slots through `self.assign*` and returns the amount to subtract
from the parameter. The base class applies clipping and decoupled weight
decay around it.
"""

from __future__ import annotations

import re

import numpy as np

from graphnet.autodiff import gradients
from graphnet.errors import ShapeError
from graphnet.graph import (
    Graph,
    Node,
    Variable,
    as_node,
    name_scope,
    root_scope,
    unique_name,
    variable,
)
from graphnet.ops import (
    add,
    assign,
    assign_add,
    assign_sub,
    cast,
    clip,
    group,
    maximum,
    sqrt,
    square,
)
from graphnet.ops import sum as reduce_sum
from graphnet.optim.schedules import LearningRateSchedule
from graphnet.serialization import Configurable
from graphnet.shapes import format_shape


class Optimizer(Configurable):
    """Base class of graphnet's optimizers.

    Args:
        learning_rate: a float (kept in a non-trainable float32 variable that
            `set_learning_rate` changes), a schedule called with the step
            counter, or a scalar float node.
        weight_decay: decoupled weight decay: each step also subtracts
            `learning_rate * weight_decay * w` from every parameter not
            excluded with `exclude_from_weight_decay` (Keras 3's rule).
        clipnorm: clip each gradient to this L2 norm.
        clipvalue: clip each gradient elementwise to [-clipvalue, clipvalue].
        global_clipnorm: scale all gradients together so their joint L2 norm
            is at most this. At most one of the three clipping options is used.
        name: prefix of the optimizer's variables and of its slots' names.
    """

    config_kind = "optimizers"

    default_name = "optimizer"

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None):
        _check_clipping(clipnorm, clipvalue, global_clipnorm)
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.name = unique_name(name or self.default_name, scoped=False)
        self._slots: dict = {}          # parameter -> {slot name: slot variable}
        self._built: set = set()
        self._excluded: set = set()
        self._excluded_names: list = []
        self._pending = None            # slot assignments of the update being built
        with root_scope():
            self.iterations = variable(np.int64(0), name=f"{self.name}/iterations",
                                       trainable=False)
            self._learning_rate = self._make_learning_rate(learning_rate)

    # ------------------------------------------------------ learning rate

    def _make_learning_rate(self, learning_rate) -> Node:
        if isinstance(learning_rate, Node):
            if learning_rate.shape != () or learning_rate.dtype.kind != "f":
                raise ShapeError(f"{self.name}: learning_rate must be a scalar float node, got "
                                 f"{learning_rate.dtype} {format_shape(learning_rate.shape)}")
            return learning_rate
        if isinstance(learning_rate, LearningRateSchedule) or callable(learning_rate):
            return as_node(learning_rate(self.iterations))
        return variable(np.float32(learning_rate), name=f"{self.name}/learning_rate",
                        trainable=False)

    @property
    def learning_rate(self) -> Node:
        """The learning rate as a node: `sess.run(opt.learning_rate)`."""
        return self._learning_rate

    def learning_rate_variable(self) -> Node:
        """The variable holding a float learning rate (TypeError for schedules and nodes)."""
        if not isinstance(self._learning_rate.op, Variable):
            raise TypeError(
                f"{self.name}: the learning rate is computed by '{self._learning_rate.name}' "
                f"({self._learning_rate.op.kind}), not held in a variable; give the optimizer "
                "a float learning rate to set it from Python")
        return self._learning_rate

    def get_learning_rate(self, sess) -> float:
        """The learning rate's current value in `sess`."""
        return float(sess.run(self._learning_rate))

    def set_learning_rate(self, sess, value: float):
        """Set a float learning rate in `sess` (what ReduceLROnPlateau calls)."""
        sess.set(self.learning_rate_variable(), np.float32(value))

    # --------------------------------------------------------------- slots

    def build(self, var_list: list):
        """Create the slots of new parameters with `add_slot`; subclasses override."""

    def add_slot(self, var: Node, slot_name: str, initial_value: float = 0.0) -> Node:
        """A non-trainable variable shaped like `var`, named `<var>/<optimizer>_<slot>`."""
        with root_scope():
            slot = variable(np.full(var.shape, initial_value, var.dtype),
                            name=f"{var.name}/{self.name}_{slot_name}", trainable=False)
        self._slots.setdefault(var, {})[slot_name] = slot
        return slot

    def get_slot(self, var: Node, slot_name: str) -> Node:
        """The slot variable `slot_name` of parameter `var`."""
        try:
            return self._slots[var][slot_name]
        except KeyError:
            known = sorted(self._slots.get(var, {}))
            raise KeyError(f"{self.name} has no slot {slot_name!r} for '{var.name}'; "
                           f"its slots are {known}") from None

    def variables(self) -> list:
        """Every variable the optimizer owns: step counter, learning rate, slots."""
        owned = [self.iterations]
        if isinstance(self._learning_rate.op, Variable):
            owned.append(self._learning_rate)
        return owned + [slot for slots in self._slots.values() for slot in slots.values()]

    def state_variables(self, var_list: list) -> dict:
        """The optimizer's state as checkpoint keys -> variables: "iterations",
        "learning_rate" (when held in a variable) and "slots/<i>/<slot>" for the
        slots of `var_list[i]`, so a checkpoint matches slots by position."""
        state = {"iterations": self.iterations}
        if isinstance(self._learning_rate.op, Variable):
            state["learning_rate"] = self._learning_rate
        for i, var in enumerate(var_list):
            for slot_name, slot in self._slots.get(var, {}).items():
                state[f"slots/{i}/{slot_name}"] = slot
        return state

    def _build_missing(self, var_list: list):
        new = [v for v in var_list if v not in self._built]
        if new:
            self.build(new)
            self._built.update(new)

    # ------------------------------------------------------- weight decay

    def exclude_from_weight_decay(self, var_list=(), var_names=()):
        """Skip weight decay for these variables and names matching these regexes."""
        self._excluded.update(var_list)
        self._excluded_names.extend(var_names)

    def _use_weight_decay(self, var: Node) -> bool:
        if not self.weight_decay or var in self._excluded:
            return False
        return not any(re.search(pattern, var.name) for pattern in self._excluded_names)

    # ------------------------------------------------------------ updates

    def minimize(self, loss: Node, var_list=None, name=None) -> Node:
        """One update node that takes a step down `loss`'s gradient.

        `var_list` None means every trainable variable `loss` depends on.
        """
        return self.apply_gradients(self.compute_gradients(loss, var_list), name=name)

    def compute_gradients(self, loss: Node, var_list=None) -> list:
        """[(gradient or None, variable), ...] as TF1's compute_gradients."""
        if not isinstance(loss, Node):
            raise TypeError(f"{self.name}: loss must be a graph node, got {type(loss).__name__}")
        var_list = trainable_variables(loss) if var_list is None else list(var_list)
        if not var_list:
            raise ValueError(f"{self.name}: '{loss.name}' depends on no trainable variable")
        for var in var_list:
            _check_parameter(var, self.name)
        return list(zip(gradients(loss, var_list, unconnected="none"), var_list))

    def apply_gradients(self, grads_and_vars, name=None) -> Node:
        """One update node from (gradient, variable) pairs; None gradients are skipped."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            raise ValueError(f"{self.name}: no gradients given for any variable")
        var_list = [_check_parameter(v, self.name) for _, v in pairs]
        grads = [_check_gradient(as_node(g), v) for g, v in pairs]
        self._build_missing(var_list)
        with name_scope(f"{self.name}_update"):
            grads = self.clip_gradients(grads)
            updates = [u for g, v in zip(grads, var_list) for u in self._update(g, v)]
            updates.append(assign_add(self.iterations, 1, name="increment_iterations"))
            if name is None:
                return group(updates, name="step")
        return group(updates, name=name)

    def _update(self, gradient: Node, var: Node) -> list:
        """The slot assignments and the parameter's assignment for one variable."""
        self._pending = []
        try:
            lr = cast(self._learning_rate, var.dtype)
            step = self.update_step(gradient, var, lr)
            if self._use_weight_decay(var):
                step = add(step, var * self.weight_decay * lr)
            return self._pending + [assign_sub(var, step)]
        finally:
            self._pending = None

    def update_step(self, gradient: Node, variable: Node, learning_rate: Node) -> Node:
        """Update slots with `self.assign*` and return what to subtract from `variable`."""
        raise NotImplementedError(f"{type(self).__name__} must implement update_step")

    def assign(self, slot: Node, value) -> Node:
        """slot = value in this update; returns the slot's new value."""
        return self._record(assign(slot, value))

    def assign_add(self, slot: Node, value) -> Node:
        """slot += value in this update; returns the slot's new value."""
        return self._record(assign_add(slot, value))

    def assign_sub(self, slot: Node, value) -> Node:
        """slot -= value in this update; returns the slot's new value."""
        return self._record(assign_sub(slot, value))

    def _record(self, update: Node) -> Node:
        if self._pending is None:
            raise RuntimeError(f"{self.name}: assign slots only inside update_step")
        self._pending.append(update)
        return update

    def clip_gradients(self, grads: list) -> list:
        """Apply the configured clipping (clipnorm, global_clipnorm or clipvalue)."""
        if self.clipnorm:
            return [clip_by_norm(g, self.clipnorm) for g in grads]
        if self.global_clipnorm:
            return clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue:
            return [clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"


# ------------------------------------------------------------- clipping


def clip_by_norm(gradient: Node, clip_norm: float) -> Node:
    """gradient * clip_norm / max(||gradient||, clip_norm): its L2 norm at most clip_norm."""
    norm = sqrt(reduce_sum(square(gradient)))
    return gradient * clip_norm / maximum(norm, clip_norm)


def global_norm(grads: list) -> Node:
    """sqrt(sum of squares of every gradient), in their common dtype."""
    dtype = np.result_type(*(g.dtype for g in grads))
    total = None
    for g in grads:
        part = cast(reduce_sum(square(g)), dtype)
        total = part if total is None else add(total, part)
    return sqrt(total)


def clip_by_global_norm(grads: list, clip_norm: float) -> list:
    """All gradients scaled by clip_norm / max(global_norm, clip_norm) (Keras 3's rule)."""
    norm = global_norm(grads)
    scale = as_node(clip_norm, like=norm) / maximum(norm, clip_norm)
    return [g * cast(scale, g.dtype) for g in grads]


# -------------------------------------------------------------- helpers


def trainable_variables(loss: Node) -> list:
    """The trainable float variables `loss` depends on, in creation order."""
    found = [n for n in Graph([loss]).nodes if isinstance(n.op, Variable)
             and n.op.trainable and n.dtype.kind == "f"]
    return sorted(found, key=lambda n: n.id)


def _check_parameter(var, owner: str) -> Node:
    if not isinstance(var, Node) or not isinstance(var.op, Variable):
        raise TypeError(f"{owner}: can only update variables, got {var!r}")
    if var.dtype.kind != "f":
        raise TypeError(f"{owner}: variable '{var.name}' is {var.dtype.name}; only "
                        "floating-point variables can be optimized")
    return var


def _check_gradient(grad: Node, var: Node) -> Node:
    if tuple(grad.shape) != tuple(var.shape):
        raise ShapeError(f"gradient '{grad.name}' {format_shape(grad.shape)} does not match "
                         f"variable '{var.name}' {format_shape(var.shape)}")
    return cast(grad, var.dtype)


def _check_clipping(clipnorm, clipvalue, global_clipnorm):
    given = {k: v for k, v in [("clipnorm", clipnorm), ("clipvalue", clipvalue),
                               ("global_clipnorm", global_clipnorm)] if v is not None}
    if len(given) > 1:
        raise ValueError(f"set at most one of clipnorm, clipvalue and global_clipnorm; "
                         f"got {given}")
    for key, value in given.items():
        if value <= 0:
            raise ValueError(f"{key} must be > 0; got {value}")

