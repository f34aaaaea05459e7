"""A compiled plan: generated straight-line Python over NumPy kernels."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from graphnet.compiler import guard as guard_module
from graphnet.compiler.fetches import unflatten
from graphnet.compiler.kernels.numpy_backend import private_pool
from graphnet.compiler.native import Native
from graphnet.compiler.native import build as native_plan
from graphnet.compiler.ops import ArenaUpdate
from graphnet.compiler.threads import ThreadChoice
from graphnet.errors import GraphError
from graphnet.graph import Constant, Graph, Node, Placeholder, Variable, type_string
from graphnet.ops.state import Group


class Plan:
    """What `Session.run` executes: `plan.source` shows the generated code.

    The generated function takes the fed arrays and the variable arrays (in
    the order of `plan.placeholders` and `plan.variables`) and returns the
    flat outputs; variables are updated in place.

    A plan may run in several threads at once: each concurrent call takes an
    idle copy of the generated function with buffers and kernel scratch of its
    own (made on first need, then kept), and outputs are copied out before
    that copy is handed back. One thread reuses one copy: the cost is a list
    pop and append. Plans that assign variables are serialized by the Session.
    """

    def __init__(self, graph: Graph, structure, feeds=None, applied=(), memory=({}, []),
                 backend: str = "numpy", guard: bool = False):
        self.graph = graph
        self.backend = backend
        self.guard = guard
        self.structure = structure
        self.outputs = graph.outputs
        self.placeholders = [n for n in graph if isinstance(n.op, Placeholder)]
        self.variables = [n for n in graph if isinstance(n.op, Variable)]
        self.applied = list(applied)
        if feeds is not None:
            _check_feeds(self.placeholders, feeds)
        self.buffer_of, self.buffers = memory  # from compiler.memory.plan_buffers
        with private_pool():
            self.steps, outputs, namespace = _steps(graph, self.placeholders, self.variables,
                                                    self.buffer_of, backend)
        self.source = _source(self.steps, outputs, guard=guard)
        #: The whole plan as one Numba function, or why not (compiler/native.py).
        self.native = Native(why_not="the numpy backend" if backend != "numba" else
                             "guard mode checks every step" if guard else "")
        if backend == "numba" and not guard:
            self.native, source = native_plan(self.steps, outputs, namespace)
            self.source = source or self.source
        if guard:
            namespace.update(guard_check=guard_module.check, steps=self.steps)
        exec(compile(self.source, "<graphnet plan>", "exec"), namespace)  # noqa: S102
        self._function = namespace["plan"]
        self._namespace, self._outputs = namespace, outputs
        self._idle = [self._function]   # generated functions not running now
        self.stateful = any(node.op.stateful for node in graph)
        #: Tuples of variables that this plan's arena updates want laid out
        #: back to back, each in one buffer (Session.run does it).
        self.arenas = [run for node in graph if isinstance(node.op, ArenaUpdate)
                       for run in node.op.runs(node)]
        self.threads = ThreadChoice()   # its BLAS thread count (compiler/threads.py)

    def __call__(self, feed_values: list, variable_values: list) -> list:
        """The outputs (copies: never views of buffers a later run overwrites)."""
        try:
            function = self._idle.pop()
        except IndexError:   # another thread runs every copy: make one more
            function = self._new_function()
        threads = self.threads.start()
        try:
            return [_copy(v) for v in function(feed_values, variable_values)]
        finally:
            self.threads.finish(threads)
            self._idle.append(function)

    def _new_function(self):
        """The generated function again, over buffers and kernels of its own."""
        namespace = self._new_namespace()
        namespace["native"] = self.native.function
        if self.guard:
            namespace.update(guard_check=guard_module.check, steps=self.steps)
        exec(compile(self.source, "<graphnet plan>", "exec"), namespace)  # noqa: S102
        return namespace["plan"]

    def _new_namespace(self) -> dict:
        """Kernels, constants and buffers for the plan's code, used by no other call."""
        with private_pool():
            _, _, namespace = _steps(self.graph, self.placeholders, self.variables,
                                     self.buffer_of, self.backend)
        return namespace

    def profile(self, feed_values: list, variable_values: list, runs: int = 10) -> "Profile":
        """Time each step over `runs` runs of the plan (after one untimed run);
        updates happen as in `__call__`: profiling a training step trains.
        Its buffers are its own, so threads running the plan meanwhile are safe.
        A native plan is timed step by step through its kernels' Python."""
        timed = _source(self.steps, self._outputs, timed=True)
        namespace = dict(self._new_namespace(), clock=time.perf_counter)
        exec(compile(timed, "<graphnet plan, timed>", "exec"), namespace)  # noqa: S102
        seconds = [0.0] * len(self.steps)
        namespace["plan"](feed_values, variable_values, [0.0] * len(self.steps))
        for _ in range(runs):
            namespace["plan"](feed_values, variable_values, seconds)
        return Profile(self.steps, [t / runs for t in seconds], runs,
                       self.code_seconds(feed_values, variable_values))

    @property
    def kernel_calls(self) -> int:
        """How many kernel calls one run makes (a native plan: one, and its feed checks)."""
        return self.native.calls if self.native.function else _kernel_calls(self.steps)

    def code_seconds(self, feed_values: list, variable_values: list, runs: int = 200) -> float:
        """Seconds per run of the plan's own Python: its generated function
        with every kernel replaced by a stub that takes the same arguments and
        does nothing (what the lines and calls cost; the kernels' own
        wrappers count as kernel time). Nothing is computed or updated."""
        namespace = dict(self._namespace, native=_stub)
        for step in self.steps:
            if step.kernel not in _NOT_CALLS:
                namespace[step.code.split("(", 1)[0]] = _stub
        source = self.source if self.native.function else _source(self.steps, self._outputs)
        exec(compile(source, "<graphnet plan, stubbed>", "exec"), namespace)  # noqa: S102
        function = namespace["plan"]
        function(feed_values, variable_values)
        start = time.perf_counter()
        for _ in range(runs):
            function(feed_values, variable_values)
        return (time.perf_counter() - start) / runs

    def memory(self):
        """The memory plan: each buffer's size, the nodes sharing it with their
        first and last steps, the bytes in use after each step and their peak.

            >>> print(plan.memory())
        """
        from graphnet.compiler.memory import timeline
        return timeline(self.graph, self.buffer_of)

    def unflatten(self, values: list):
        """Flat output values in the structure the fetches were given in."""
        return unflatten(self.structure, values)

    def explain(self, history: bool = False) -> str:
        """The passes applied with node counts and what each did, and the plan's size.

        `history=True` also lists every rewrite in order (pass, rule, the node
        before and after, with the lines that created them) and every fusion
        that was considered and refused, with the reason.
        """
        lines = [f"plan for {len(self.outputs)} fetches: {len(self.graph)} nodes, "
                 f"{len(self.placeholders)} placeholders, {len(self.variables)} variables"]
        width = max((len(r.name) for r in self.applied), default=0)
        for record in self.applied:
            counts = f"{record.before:>5} -> {record.after:>5} nodes"
            lines.append(f"  {record.name:<{width}}  {counts}  {'; '.join(record.notes)}".rstrip())
        kinds = {}
        for step in self.steps:
            kinds[step.kernel] = kinds.get(step.kernel, 0) + 1
        lines.append("  kernels: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
                     + f"; {self.threads}")   # its BLAS thread count (compiler/threads.py)
        lines.append(f"  {self.native}")
        for run in self.arenas:
            size = sum(int(np.prod(v.shape, dtype=np.int64)) for v in run)
            lines.append(f"  arena: {len(run)} {run[0].dtype.name} variables, {size:,} elements, "
                         f"laid out back to back by the Session: {run[0].name} .. "
                         f"{run[-1].name}")
        if history:
            lines.append("history:")
            for record in self.applied:
                for entry in record.history:
                    kind = "refused" if type(entry).__name__ == "Refusal" else "rewrite"
                    lines.append(f"  {record.name} {kind}: {entry}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<Plan {len(self.graph)} nodes -> {len(self.outputs)} outputs>"


#: Steps whose code calls no kernel (see _steps).
_NOT_CALLS = ("feed", "variable", "constant", "group")


def _kernel_calls(steps: list) -> int:
    return sum(step.kernel not in _NOT_CALLS for step in steps)


def _stub(*inputs, out=None):
    return out


def _copy(value):
    """Fetched values never alias buffers a later run overwrites."""
    if type(value) is np.ndarray:
        return value.copy() if value.ndim else value[()]
    if value is None:
        return None
    array = np.array(value, copy=True)
    return array[()] if array.ndim == 0 else array


def _check_feeds(needed: list, feeds):
    feeds = [feeds] if isinstance(feeds, Node) else list(feeds)
    for f in feeds:
        if not isinstance(f, Node) or not isinstance(f.op, Placeholder):
            raise GraphError(f"feeds must be placeholders; got {f!r}")
    missing = [p.name for p in needed if p not in feeds]
    if missing:
        raise GraphError(f"the fetches need placeholders {missing}, which are not in feeds")


@dataclass(frozen=True)
class PassRecord:
    """What one compiler pass did, for `explain()`."""

    name: str
    before: int
    after: int
    notes: tuple = ()
    seconds: float = 0.0
    history: tuple = ()    # its Rewrites and Refusals, in order (compiler/rewrite.py)


@dataclass(frozen=True)
class Step:
    """One line of a plan: `target = code`, computing `nodes` (the last is
    the result) with a kernel of kind `kernel` ("feed", "variable",
    "constant", "numpy", ...)."""

    target: str
    code: str
    nodes: tuple
    kernel: str
    buffer: str | None = None
    inputs: tuple = ()    # the local names of the node's inputs


def _steps(graph: Graph, placeholders: list, variables: list, buffer_of: dict,
           backend: str) -> tuple:
    """One step per node, and the namespace their code runs in (kernels for
    `backend`, constants and the preallocated buffers named in `buffer_of`)."""
    local = {node: f"t{i}" for i, node in enumerate(graph)}
    feed_index = {n: i for i, n in enumerate(placeholders)}
    var_index = {n: i for i, n in enumerate(variables)}
    namespace = {"np": np}
    steps = []
    for node in graph:
        name = local[node]
        if node in feed_index:
            code, kind = f"feeds[{feed_index[node]}]", "feed"
        elif node in var_index:
            code, kind = f"variables[{var_index[node]}]", "variable"
        elif isinstance(node.op, Constant):
            namespace[f"c{name}"] = node.op.value
            code, kind = f"c{name}", "constant"
        elif isinstance(node.op, Group):
            code, kind = "None", "group"
        else:
            kernel = f"{node.op.kind}_{name[1:]}"
            buffer = buffer_of.get(node)
            if isinstance(node.op, ArenaUpdate):   # told which gradients are written in place
                namespace[kernel] = node.op.kernel(backend, buffer.placed if buffer else ())
            else:
                namespace[kernel] = node.op.kernel(backend)
            args = [local[i] for i in node.inputs]
            if buffer is not None:
                _allocate(namespace, buffer)
                args.append(f"out={buffer.name}")
            kind = backend if backend in node.op.backends else node.op.kernel_kind
            code = f"{kernel}({', '.join(args)})"
        buffer = buffer_of.get(node)
        absorbed = getattr(node.op, "absorbed", ())  # what a fused kernel computes
        steps.append(Step(name, code, (*absorbed, node), kind, buffer and buffer.name,
                          tuple(local[i] for i in node.inputs)))
    return steps, [local[o] for o in graph.outputs], namespace


def _allocate(namespace: dict, buffer):
    """Put `buffer`'s array into the plan's namespace: a new array, or for a
    segment of an arena a view into the arena's."""
    if buffer.name in namespace:
        return
    if buffer.base is None:
        namespace[buffer.name] = np.empty(buffer.shape, buffer.dtype)
        return
    _allocate(namespace, buffer.base)
    size = int(np.prod(buffer.shape, dtype=np.int64))
    flat = namespace[buffer.base.name].reshape(-1)
    namespace[buffer.name] = flat[buffer.offset:buffer.offset + size].reshape(buffer.shape)


def _source(steps: list, outputs: list, timed: bool = False, guard: bool = False) -> str:
    """Python source of `plan(feeds, variables)`: one commented line per step.
    `timed` adds an argument, `seconds`, and adds each step's time to it;
    `guard` checks each step's value for NaN and Inf (compiler/guard.py)."""
    lines = [f"def plan(feeds, variables{', seconds' if timed else ''}):"]
    if timed:
        lines.append("    start = clock()")
    for i, step in enumerate(steps):
        node = step.nodes[-1]
        code = f"{step.target} = {step.code}"
        what = node.op.describe(node) if hasattr(node.op, "describe") else node.name
        lines.append(f"    {code:<40}  # {type_string(node)} {what} ({node.origin})")
        if timed:
            lines.append(f"    end = clock(); seconds[{i}] += end - start; start = end")
        if guard and step.kernel != "group":
            inputs = "".join(f"{name}, " for name in step.inputs)
            lines.append(f"    guard_check(steps[{i}], {step.target}, ({inputs}))")
    lines.append(f"    return [{', '.join(outputs)}]")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Profile:
    """Seconds per run of each step of a plan (`Plan.profile`,
    `Session.profile`); `str()` lists the slowest steps first."""

    steps: list
    seconds: list
    runs: int
    code: float = 0.0   # seconds per run of the plan's own code (Plan.code_seconds)

    @property
    def total(self) -> float:
        return sum(self.seconds)

    @property
    def calls(self) -> int:
        """How many kernel calls one run makes, step by step."""
        return _kernel_calls(self.steps)

    def slowest(self, count: int = 20) -> list:
        """[(seconds, step), ...] of the `count` slowest steps."""
        return sorted(zip(self.seconds, self.steps, strict=True), key=lambda p: -p[0])[:count]

    def __str__(self) -> str:
        lines = [f"{self.total * 1e3:.3f} ms per run over {len(self.steps)} steps "
                 f"(mean of {self.runs} runs); the plan's own code, its {self.calls} kernel "
                 f"calls stubbed out, {self.code * 1e6:.1f} us of that; slowest steps:"]
        for seconds, step in self.slowest():
            node = step.nodes[-1]
            share = seconds / self.total if self.total else 0.0
            lines.append(f"{seconds * 1e3:9.3f} ms {share:6.1%}  [{step.kernel}] {step.target} = "
                         f"{node.op.kind} {node.name} ({node.origin})")
        return "\n".join(lines)
