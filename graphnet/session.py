"""Session: owns variable values and runs compiled plans against them."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import threading
import warnings
import weakref

import numpy as np

from graphnet.compiler import compile
from graphnet.compiler.fetches import flatten, structure_key
from graphnet.compiler.kernels.arena import flat_view
from graphnet.compiler.plan import Plan
from graphnet.errors import FeedError, ShapeError
from graphnet.graph import Graph, Node, Placeholder, Variable, all_variables, check_feed_value
from graphnet.shapes import format_shape


class Session:
    """Holds variable values and runs fetches: `sess.run(loss, {x: xb, y: yb})`.

    Variables are initialised from their initial values on first use (or by
    `initialize()`). Plans are compiled once per fetch structure and feed
    signature and cached; each compile is logged (logger "graphnet.session")
    with its reason, and `cache_info()` lists them. Fetched values are copies.

    Memory: a plan whose optimizer update runs over arenas (the compiler's
    `arena_updates` pass; `plan.arenas`) has the variables of each arena
    laid out back to back in one buffer, each variable's value a view into
    it, the first time this Session runs it: values move, never change.
    `set`, `initialize` and `restore` write into those views.

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
        self._values = ValueStore() if values is None else values
        # Per plan, the store's version and the plan's variable values at it: a
        # steady-state run reuses the list instead of looking each variable up.
        self._plan_values = weakref.WeakKeyDictionary()
        self.guard = bool(compile_options.get("guard", False))
        self._plans: dict = {}
        self._compile_options = compile_options
        self._records: list = []                  # CompileRecord per plan, in order
        self._compile_lock = threading.Lock()
        self._update_lock = model_lock if values is model_values else threading.Lock()
        self._arranged = weakref.WeakSet()   # plans whose arenas are laid out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, fetches, feed_dict=None):
        """Values of `fetches` (node, list, tuple, dict or Plan) in the same structure."""
        plan, feeds = self._prepare(fetches, feed_dict)
        if plan.stateful:
            with self._update_lock:
                if plan.arenas and plan not in self._arranged:
                    self._arrange(plan)
                return plan.unflatten(plan(feeds, self._variable_values(plan)))
        return plan.unflatten(plan(feeds, self._variable_values(plan)))

    def _variable_values(self, plan: Plan) -> list:
        """The arrays of `plan.variables`, in order. Kept per plan while the store's
        version stands (a value replaced or added bumps it); stores without a
        version (a plain dict passed as `values`) are looked up every run."""
        version = getattr(self._values, "version", None)
        cached = self._plan_values.get(plan)
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        values = [self._value(v) for v in plan.variables]
        if version is not None:
            self._plan_values[plan] = (self._values.version, values)
        return values

    def profile(self, fetches, feed_dict=None, runs: int = 10):
        """Where a run of `fetches` spends its time, step by step: a Profile
        whose str() lists the slowest steps with their kernels and source
        lines. The plan runs `runs + 1` times, updates included.

            >>> print(sess.profile([loss, train], {x: xb, y: yb}))
        """
        plan, feeds = self._prepare(fetches, feed_dict)
        if plan.arenas and plan not in self._arranged:
            with self._update_lock:
                self._arrange(plan)
        return plan.profile(feeds, [self._value(v) for v in plan.variables], runs)

    def _arrange(self, plan: Plan):
        """Lay out each of `plan.arenas` back to back in one new buffer (one
        arena per tuple), copying the values in; runs already laid out so
        stay where they are."""
        for run in plan.arenas:
            values = [self._value(v) for v in run]
            if flat_view(values) is not None:
                continue
            arena = np.empty(sum(v.size for v in values), run[0].dtype)
            offset = 0
            for var, value in zip(run, values, strict=True):
                view = arena[offset:offset + value.size].reshape(value.shape)
                np.copyto(view, value)
                self._values[var] = view
                offset += value.size
        self._arranged.add(plan)

    def _prepare(self, fetches, feed_dict) -> tuple:
        """(plan, fed values in its order), with the feeds checked."""
        if type(feed_dict) is not dict:
            feed_dict = dict(feed_dict or {})
        if isinstance(fetches, Plan):
            plan = fetches
            if len(feed_dict) != len(plan.placeholders):  # else every key is one of the plan's
                _check_feed_keys(feed_dict)
        else:
            _check_feed_keys(feed_dict)
            plan = self._plan_for(fetches, feed_dict)
        feeds = []
        for ph in plan.placeholders:
            value = feed_dict.get(ph, _MISSING)
            if value is _MISSING:
                _check_feed_keys(feed_dict)   # a key that is no placeholder is the first error
                raise FeedError(f"placeholder '{ph.name}' {format_shape(ph.shape)} "
                                f"{ph.dtype.name} needs a value: add it to feed_dict "
                                f"(created at {ph.origin})")
            feeds.append(check_feed_value(ph, value))
        return plan, feeds

    def compiled(self, fetches, feed_dict=None) -> Plan:
        """The plan `run(fetches, feed_dict)` executes: compiled on first use and
        cached as `run` caches it. A loop that runs the same fetches on feeds of
        one shape can keep it and call `run(plan, feed_dict)`, which skips
        looking the plan up each time."""
        return self._plan_for(fetches, dict(feed_dict or {}))

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
        site, stacklevel = _user_frame()
        plan = compile(fetches, feed_shapes=shapes, **self._compile_options)
        record = CompileRecord.of(plan, key, outputs, feed_dict, site)
        record = dataclasses.replace(record, reason=recompile_reason(record, self._records))
        self._records.append(record)
        self._plans[key] = plan
        logger.info("compiled a plan at %s: %s", site, record.reason)
        compiled_here = sum(r.site == site for r in self._records)
        if compiled_here == SITE_WARNING + 1:
            warnings.warn(f"{site} has compiled {compiled_here} plans in this Session (latest: "
                          f"{record.reason}). {_recompile_hint(record.reason)}",
                          RecompileWarning, stacklevel=stacklevel)
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
            value = self._values.get(var)
            if value is not None and value.shape == np.shape(var.op.initial_value):
                np.copyto(value, var.op.initial_value)   # in place: it may be in an arena
            else:
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
        self._records.clear()
        self._arranged = weakref.WeakSet()


#: The variable store every Model's Session shares (weakly keyed: a variable
#: no graph refers to any more frees its value), and the lock its updates take.
class _Versioned:
    """A mapping that counts the changes to its entries in `version`, so that
    a Session can tell whether the arrays it looked up for a plan still stand.
    (Writes into an array in place are not changes of the entry.)"""

    version = 0

    def __setitem__(self, key, value):
        self.version += 1
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self.version += 1
        super().__delitem__(key)

    def pop(self, key, *default):
        self.version += 1
        return super().pop(key, *default)

    def popitem(self):
        self.version += 1
        return super().popitem()

    def setdefault(self, key, default=None):
        self.version += 1
        return super().setdefault(key, default)

    def update(self, other=(), **kwargs):
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def clear(self):
        self.version += 1
        super().clear()


class ValueStore(_Versioned, dict):
    """A Session's own variable values, by variable node."""


class SharedValueStore(_Versioned, weakref.WeakKeyDictionary):
    """Variable values shared by every Model's Session, weakly keyed."""


model_values: SharedValueStore = SharedValueStore()
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


_MISSING = object()


def _check_feed_keys(feed_dict: dict):
    """A FeedError for the first key that is not a placeholder."""
    for key in feed_dict:
        if not isinstance(key, Node) or not isinstance(key.op, Placeholder):
            what = f"'{key.name}' ({key.op.kind})" if isinstance(key, Node) else repr(key)
            raise FeedError(f"feed key {what} is not a placeholder; only placeholders "
                            "can be fed")


def _require_variable(var):
    if not isinstance(var, Node) or not isinstance(var.op, Variable):
        raise TypeError(f"expected a variable node, got {var!r}")


# ------------------------------------------------------------ compiles

#: Plans one call site may compile before a RecompileWarning.
SITE_WARNING = 8
logger = logging.getLogger("graphnet.session")


class RecompileWarning(UserWarning):
    """One line of user code keeps compiling new plans (feed shapes that vary)."""


@dataclasses.dataclass(frozen=True)
class CompileRecord:
    """One compiled plan of a Session: `str()` gives its reason in user terms."""

    key: tuple
    fetches: tuple          # the fetched nodes' names
    reason: str
    site: str               # the user's file:line that ran them
    fed: tuple = ()         # (placeholder id, name) of each feed given
    placeholders: tuple = ()    # (name, dtype) of each placeholder the plan reads
    variables: tuple = ()   # names of the variables it reads or assigns
    digest: int = 0         # the fetched graph's ops and names, without name counters

    @classmethod
    def of(cls, plan: Plan, key: tuple, outputs: list, feed_dict: dict, site: str):
        """The record of `plan`, compiled for `outputs` and `feed_dict` (no reason yet)."""
        nodes = Graph(outputs).nodes
        return cls(key, tuple(o.name for o in outputs), "", site,
                   fed=tuple((p.id, p.name) for p in feed_dict),
                   placeholders=tuple((p.name, p.dtype.name) for p in plan.placeholders),
                   variables=tuple(v.name for v in plan.variables),
                   digest=hash(tuple((n.op.kind, _unnumbered(n.name), n.shape) for n in nodes)))

    def __str__(self) -> str:
        return f"{', '.join(self.fetches)} at {self.site}: {self.reason}"


def recompile_reason(record: CompileRecord, earlier: list) -> str:
    """Why `record`'s plan was compiled, against the plans compiled before:
    new fetches (and what changed in the graph), a feed added or dropped, or
    a fed shape that changed."""
    same = [r for r in earlier if r.key[1] == record.key[1]]   # the same fetched nodes
    if same:
        alike = [r for r in same if r.key[0] == record.key[0]]
        if not alike and any(r.key[2] == record.key[2] for r in same):
            return "the same fetches in another structure (list, tuple or dict)"
        return _feed_change((alike or same)[-1], record)
    names = ", ".join(f"'{n}'" for n in record.fetches[:4])
    if len(record.fetches) > 4:
        names += f" and {len(record.fetches) - 4} more"
    if not earlier:
        return f"first run of {names}"
    before = _counterpart(record, earlier)
    change = _graph_change(before, record) if before else ""
    return f"new fetches ({names}){': ' + change if change else ''}"


def _counterpart(record: CompileRecord, earlier: list):
    """The plan compiled before that new fetches most likely replace: the
    latest of the same graph built again, else the latest from the same line,
    else the latest fetching a node of the same name (up to the counters a
    graph built again adds to names), else None."""
    for candidates in ([r for r in earlier if r.digest == record.digest],
                       [r for r in earlier if r.site == record.site]):
        if candidates:
            return candidates[-1]
    names = {_unnumbered(n) for n in record.fetches}
    alike = [r for r in earlier if names & {_unnumbered(n) for n in r.fetches}]
    return alike[-1] if alike else None


def _feed_change(before: CompileRecord, now: CompileRecord) -> str:
    """What differs in the feeds of two runs of the same fetches."""
    old, new = dict(before.key[2]), dict(now.key[2])
    names = dict(before.fed) | dict(now.fed)
    added = [names[i] for i in new if i not in old]
    if added:
        return f"feed {', '.join(repr(a) for a in added)} added"
    dropped = [names[i] for i in old if i not in new]
    if dropped:
        return f"feed {', '.join(repr(d) for d in dropped)} no longer fed"
    for pid, shape in new.items():
        was = old[pid]
        if was != shape:
            if len(was) != len(shape):
                return (f"feed '{names[pid]}' changed rank from {len(was)} to {len(shape)} "
                        f"({was} -> {shape})")
            axis = next(i for i, (a, b) in enumerate(zip(was, shape)) if a != b)
            return (f"feed '{names[pid]}' changed shape in axis {axis} from {was[axis]} to "
                    f"{shape[axis]}")
    return "feeds changed"


def _graph_change(before: CompileRecord, now: CompileRecord) -> str:
    """What differs between the graph of a plan compiled before and that of
    new fetches that replace it ("" when nothing stands out)."""
    changes = []
    dtypes = {_unnumbered(name): dtype for name, dtype in before.placeholders}
    for name, dtype in now.placeholders:
        was = dtypes.get(_unnumbered(name), dtype)
        if was != dtype:
            changes.append(f"feed '{name}' changed dtype from {was} to {dtype}")
    added = [v for v in now.variables if v not in set(before.variables)]
    if added:
        shown = ", ".join(f"'{v}'" for v in added[:3])
        more = f" and {len(added) - 3} more" if len(added) > 3 else ""
        changes.append(f"variable{'s' if len(added) > 1 else ''} {shown}{more} added")
    if not changes and before.digest == now.digest:
        return (f"the graph was built again (as for '{before.fetches[0]}' at {before.site}): "
                "build it once and reuse its nodes")
    where = "" if before.site == now.site else \
        f" (compared with '{before.fetches[0]}' at {before.site})"
    return "; ".join(changes) + where if changes else ""


def _unnumbered(name: str) -> str:
    """`dense/mean` from `dense_3/mean_2`: a name without the counters that
    building the same graph again adds."""
    return re.sub(r"_\d+(?=/|$)", "", name)


def _recompile_hint(reason: str) -> str:
    if "changed shape" in reason or "changed rank" in reason:
        return ("Each new feed shape compiles a plan: pad batches to one size, or drop the "
                "short last batch with Dataset.batch(..., drop_remainder=True)")
    return ("Each new set of fetches compiles a plan: build the graph once and fetch the "
            "same nodes each time")


def call_site() -> str:
    """The user's file:line that led here: the first frame outside graphnet's
    library (its examples count as user code)."""
    return _user_frame()[0]


def _user_frame() -> tuple:
    """(`file.py:line` of the first frame outside graphnet's library, the
    `stacklevel` that points `warnings.warn` there from the caller)."""
    package = os.path.dirname(os.path.abspath(__file__))
    examples = os.path.join(package, "examples")

    def library(frame) -> bool:
        path = os.path.abspath(frame.f_code.co_filename)
        return path.startswith(package) and not path.startswith(examples)
    frame, level = sys._getframe(1), 1
    while frame is not None and library(frame):
        frame, level = frame.f_back, level + 1
    if frame is None:
        return "?", 1
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}", level


#: Serializes the first use of variables (two threads must not make two arrays).
_init_lock = threading.Lock()
