"""Session: owns variable values and runs compiled plans against them."""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
import weakref
from dataclasses import dataclass

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
    signature and cached; each compile is logged (logger "graphnet.session")
    with its reason, and `cache_info()` lists them. Fetched values are copies.

    Threads: `run` may be called from several threads at once. Runs that only
    read variables (inference, evaluation) run in parallel, each with buffers
    of its own; runs that assign variables (training steps) run one at a time
    per variable store, in the order they take the lock. A read running while
    another thread's step assigns may see some variables before and some
    after that step: serialize them yourself when that matters.
    """

    def __init__(self, values=None, **compile_options):
        # Variable values by node. Models pass the shared `model_values`, so
        # models built on the same layers see the same weights.
        self._values = {} if values is None else values
        self.guard = bool(compile_options.get("guard", False))
        self._plans: dict = {}
        self._compile_options = compile_options
        self._records: list = []                  # CompileRecord per plan, in order
        self._compile_lock = threading.Lock()
        self._update_lock = model_lock if values is model_values else threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, fetches, feed_dict=None):
        """Values of `fetches` (node, list, tuple, dict or Plan) in the same structure."""
        plan, feeds = self._prepare(fetches, feed_dict)
        if plan.stateful:
            with self._update_lock:
                return plan.unflatten(plan(feeds, [self._value(v) for v in plan.variables]))
        return plan.unflatten(plan(feeds, [self._value(v) for v in plan.variables]))

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
            with self._compile_lock:   # one compile per key, however many threads ask
                plan = self._plans.get(key)
                if plan is None:
                    plan = self._compile(fetches, outputs, key, feed_dict)
        return plan

    def _compile(self, fetches, outputs, key, feed_dict) -> Plan:
        shapes = {p: np.shape(v) for p, v in feed_dict.items()}
        reason = recompile_reason(key, [r.key for r in self._records], feed_dict, outputs)
        site = call_site()
        plan = compile(fetches, feed_shapes=shapes, **self._compile_options)
        record = CompileRecord(key, tuple(o.name for o in outputs), reason, site)
        self._records.append(record)
        self._plans[key] = plan
        logger.info("compiled a plan at %s: %s", site, reason)
        compiled_here = sum(r.site == site for r in self._records)
        if compiled_here == SITE_WARNING + 1:
            warnings.warn(
                f"{site} has compiled {compiled_here} plans in this Session (latest: {reason}). "
                "Each new feed shape compiles a plan: pad batches to one size, or drop the "
                "short last batch with Dataset.batch(..., drop_remainder=True)",
                RecompileWarning, stacklevel=2)
        return plan

    def cache_info(self) -> list:
        """Every plan this Session compiled, in order: its fetches, the user's line
        that ran them and why it was compiled (`str()` of each says it)."""
        return list(self._records)

    def _value(self, var: Node) -> np.ndarray:
        value = self._values.get(var)
        if value is None:
            with _init_lock:   # two threads' first runs must share one array
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
#: no graph refers to any more frees its value), and the lock its updates take.
model_values: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
model_lock = threading.Lock()


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


# ------------------------------------------------------------ compiles

#: Plans one call site may compile before a RecompileWarning.
SITE_WARNING = 8
logger = logging.getLogger("graphnet.session")


class RecompileWarning(UserWarning):
    """One line of user code keeps compiling new plans (feed shapes that vary)."""


@dataclass(frozen=True)
class CompileRecord:
    """One compiled plan of a Session: `str()` gives its reason in user terms."""

    key: tuple
    fetches: tuple
    reason: str
    site: str

    def __str__(self) -> str:
        return f"{', '.join(self.fetches)} at {self.site}: {self.reason}"


def recompile_reason(key: tuple, earlier: list, feed_dict: dict, outputs: list) -> str:
    """Why `key` needs a plan of its own, against the keys compiled before."""
    same_fetches = [k for k in earlier if k[:2] == key[:2]]
    if not same_fetches:
        names = ", ".join(f"'{o.name}'" for o in outputs[:4])
        more = f" and {len(outputs) - 4} more" if len(outputs) > 4 else ""
        return f"new fetches ({names}{more})" if earlier else f"first run of {names}{more}"
    before = dict(same_fetches[-1][2])
    now = dict(key[2])
    names = {p.id: p.name for p in feed_dict}
    added = [names[i] for i in now if i not in before]
    if added:
        return f"feed {', '.join(repr(a) for a in added)} added"
    for pid, shape in now.items():
        old = before.get(pid)
        if old is not None and old != shape:
            if len(old) != len(shape):
                return (f"feed '{names[pid]}' changed rank from {len(old)} to {len(shape)} "
                        f"({old} -> {shape})")
            axis = next(i for i, (a, b) in enumerate(zip(old, shape)) if a != b)
            return (f"feed '{names[pid]}' changed shape in axis {axis} from {old[axis]} to "
                    f"{shape[axis]}")
    return "feeds changed"


def call_site() -> str:
    """The user's file:line that led here: the first frame outside graphnet's
    library (its examples count as user code)."""
    package = os.path.dirname(os.path.abspath(__file__))
    examples = os.path.join(package, "examples")

    def library(frame) -> bool:
        path = os.path.abspath(frame.f_code.co_filename)
        return path.startswith(package) and not path.startswith(examples)
    frame = sys._getframe(1)
    while frame is not None and library(frame):
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


#: Serializes the first use of variables (two threads must not make two arrays).
_init_lock = threading.Lock()
