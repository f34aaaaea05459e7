"""Session: owns variable values and runs compiled plans against them."""

from __future__ import annotations

import weakref

import numpy as np

from graphnet.compiler import compile
from graphnet.compiler.fetches import flatten, structure_key
from graphnet.compiler.plan import Plan
from graphnet.errors import FeedError, ShapeError
from graphnet.graph import Node, Placeholder, Variable, all_variables, check_feed_value
from graphnet.shapes import format_shape


class Session:
    """Holds variable values and runs fetches: `sess.run(loss, {x: xb, y: yb})`.

    Variables are initialised from their initial values on first use (or by
    `initialize()`). Plans are compiled once per fetch structure and feed
    signature and cached. Fetched values are copies.
    """

    def __init__(self, values=None, **compile_options):
        # Variable values by node. Models pass the shared `model_values`, so
        # models built on the same layers see the same weights.
        self._values = {} if values is None else values
        self.guard = bool(compile_options.get("guard", False))
        self._plans: dict = {}
        self._compile_options = compile_options

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, fetches, feed_dict=None):
        """Values of `fetches` (node, list, tuple, dict or Plan) in the same structure."""
        plan, feeds = self._prepare(fetches, feed_dict)
        outputs = plan(feeds, [self._value(v) for v in plan.variables])
        return plan.unflatten([_copy(v) for v in outputs])

    def profile(self, fetches, feed_dict=None, runs: int = 10):
        """Where a run of `fetches` spends its time, step by step: a Profile
        whose str() lists the slowest steps with their kernels and source
        lines. The plan runs `runs + 1` times, updates included.

            >>> print(sess.profile([loss, train], {x: xb, y: yb}))
        """
        plan, feeds = self._prepare(fetches, feed_dict)
        return plan.profile(feeds, [self._value(v) for v in plan.variables], runs)

    def _prepare(self, fetches, feed_dict) -> tuple:
        """(plan, fed values in its order), with the feeds checked."""
        feed_dict = dict(feed_dict or {})
        for key in feed_dict:
            if not isinstance(key, Node) or not isinstance(key.op, Placeholder):
                what = f"'{key.name}' ({key.op.kind})" if isinstance(key, Node) else repr(key)
                raise FeedError(f"feed key {what} is not a placeholder; only placeholders "
                                "can be fed")
        plan = fetches if isinstance(fetches, Plan) else self._plan_for(fetches, feed_dict)
        feeds = []
        for ph in plan.placeholders:
            if ph not in feed_dict:
                raise FeedError(f"placeholder '{ph.name}' {format_shape(ph.shape)} "
                                f"{ph.dtype.name} needs a value: add it to feed_dict "
                                f"(created at {ph.origin})")
            feeds.append(check_feed_value(ph, feed_dict[ph]))
        return plan, feeds

    def _plan_for(self, fetches, feed_dict) -> Plan:
        outputs, structure = flatten(fetches)
        signature = tuple(sorted((p.id, np.shape(v)) for p, v in feed_dict.items()))
        key = (structure_key(structure), tuple(n.id for n in outputs), signature)
        plan = self._plans.get(key)
        if plan is None:
            shapes = {p: np.shape(v) for p, v in feed_dict.items()}
            plan = self._plans[key] = compile(fetches, feed_shapes=shapes, **self._compile_options)
        return plan

    def _value(self, var: Node) -> np.ndarray:
        value = self._values.get(var)
        if value is None:
            value = self._values[var] = np.array(var.op.initial_value, copy=True)
        return value

    def initialize(self, variables=None):
        """(Re)set variables to their initial values: all known ones by default."""
        targets = list(all_variables) + list(self._values) if variables is None else variables
        for var in targets:
            _require_variable(var)
            self._values[var] = np.array(var.op.initial_value, copy=True)

    def get(self, var: Node) -> np.ndarray:
        """A copy of a variable's current value."""
        _require_variable(var)
        return self._value(var).copy()

    def set(self, var: Node, value):
        """Overwrite a variable's value (same shape; a castable dtype)."""
        _require_variable(var)
        array = np.asarray(value)
        if array.shape != var.shape:
            raise ShapeError(f"variable '{var.name}' has shape {format_shape(var.shape)}; "
                             f"got {format_shape(array.shape)}")
        if not np.can_cast(array.dtype, var.dtype, "same_kind"):
            raise ShapeError(f"variable '{var.name}' is {var.dtype.name}; got {array.dtype.name}")
        np.copyto(self._value(var), array, casting="same_kind")

    def save(self, path, var_list=None):
        """Write variables to a checkpoint (.npz, .safetensors or a folder), keyed by
        name, atomically: `var_list` or every variable this session holds a value for."""
        from graphnet.io import checkpoint
        variables = _checkpoint_variables(self, var_list, "save")
        arrays = {var.name: self._value(var) for var in variables}
        checkpoint.write(path, arrays, {"kind": "variables"})

    def restore(self, path, var_list=None):
        """Read variables written by `save`, matched by name: those in `var_list`,
        or every variable of this process named in the file. Everything is
        checked before any value changes."""
        from graphnet.io import checkpoint
        arrays, _ = checkpoint.read(path)
        if var_list is None:
            # After gn.reset_names() a name can return; the newest variable holds it.
            by_name = {var.name: var for var in sorted(all_variables, key=lambda v: v.id)}
            unknown = sorted(name for name in arrays if name not in by_name)
            if unknown:
                raise checkpoint.CheckpointError(
                    f"{path} holds {unknown[0]!r}, which names no variable of this program; "
                    "pass var_list= to restore a subset")
            variables = [by_name[name] for name in arrays]
        else:
            variables = _checkpoint_variables(self, var_list, "restore")
        for var in variables:
            if var.name not in arrays:
                raise checkpoint.CheckpointError(f"{path} has no value for variable "
                                                 f"'{var.name}' {format_shape(var.shape)}")
            value = arrays[var.name]
            if value.shape != var.shape or not np.can_cast(value.dtype, var.dtype, "same_kind"):
                raise checkpoint.CheckpointError(
                    f"{path}: '{var.name}' is {value.dtype.name} {format_shape(value.shape)} "
                    f"in the file; the variable is {var.dtype.name} {format_shape(var.shape)}")
        for var in variables:
            self.set(var, arrays[var.name])

    def close(self):
        """Drop variable values and cached plans."""
        self._values.clear()
        self._plans.clear()


#: The variable store every Model's Session shares (weakly keyed: a variable
#: no graph refers to any more frees its value).
model_values: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _checkpoint_variables(sess, var_list, what: str) -> list:
    if var_list is None:
        variables = sorted(sess._values.keys(), key=lambda v: v.id)
        if not variables:
            raise ValueError(f"Session.{what}: the session holds no variable values yet; run "
                             "something first or pass var_list=")
        return variables
    variables = list(var_list)
    for var in variables:
        _require_variable(var)
    names = [v.name for v in variables]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Session.{what}: var_list names {duplicates[0]!r} twice")
    return variables


def _require_variable(var):
    if not isinstance(var, Node) or not isinstance(var.op, Variable):
        raise TypeError(f"expected a variable node, got {var!r}")


def _copy(value):
    """Fetched values never alias buffers a later run overwrites."""
    if value is None:
        return None
    array = np.array(value, copy=True)
    return array[()] if array.ndim == 0 else array
