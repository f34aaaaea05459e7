"""The symbolic graph: nodes, the Op base class, sources and a sorted Graph.

A Node is an immutable record of one op applied to input nodes, with a static
shape and dtype inferred when it is built. Ops are small frozen dataclasses:
their declared fields are their attributes, which give equality and hashing
(for CSE) and readable labels such as `Sum{axis=(1,), keepdims=False}`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import itertools
import os
import re
import sys
import weakref

import networkx as nx
import numpy as np

from graphnet.errors import FeedError, GraphError, ShapeError
from graphnet.shapes import check_value_shape, format_shape

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_EXAMPLES_DIR = os.path.join(_PACKAGE_DIR, "examples")


# ----------------------------------------------------------------- ops


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation. Subclasses declare attributes as dataclass fields and
    define `infer` (static shape and dtype), `forward` (NumPy) and `grad`."""

    #: True for assignments: ops whose first input is a variable they update.
    stateful = False
    #: True for ops that draw random numbers: never folded or merged.
    random = False
    #: True when `forward` may return a view of input 0 (reshape, transpose,
    #: slicing): the result aliases that input's memory.
    view = False
    #: True when `forward(*values, out=buffer)` can write its result into a
    #: preallocated array of the output's shape and dtype (and returns it):
    #: the memory planner then hands the op a reused buffer.
    writes_out = False
    #: What a plan reports as the kernel that runs this op (`explain()`, diagrams).
    kernel_kind = "numpy"
    #: Kernel backends, besides NumPy, that the op's `forward_loop` serves:
    #: ("numba",) for a compiled loop (graphnet/jit.py).
    backends = ()

    @property
    def kind(self) -> str:
        """Lower-case op name used in node names, listings and diagrams."""
        return snake_case(type(self).__name__)

    def attributes(self) -> dict:
        """The op's declared attributes, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def label(self) -> str:
        """`Sum{axis=(1,), keepdims=False}`: the kind and its attributes."""
        attrs = ", ".join(f"{k}={_short(v)}" for k, v in self.attributes().items())
        return f"{type(self).__name__}{{{attrs}}}" if attrs else type(self).__name__

    def infer(self, *inputs: Node) -> tuple:
        """Return (shape, dtype) of the output, or raise ShapeError."""
        raise NotImplementedError

    def forward(self, *values: np.ndarray):
        """Compute the output from NumPy input values."""
        raise NotImplementedError

    def grad(self, node: Node, g: Node) -> list:
        """Gradient nodes for each input given the output gradient `g`
        (None where an input has no gradient). Shapes may be broadcast:
        `gradients()` sums each back to its input's shape."""
        return [None] * len(node.inputs)

    def kernel(self, backend: str = "numpy"):
        """The callable a plan runs for this op under kernel `backend`
        ("numpy" or "numba"): `forward_loop` for a backend in `backends`
        (a compiled loop, graphnet/jit.py), else `forward`. One that takes
        `scratch=` gets a dict of its own, so each plan step keeps its
        temporaries between runs (graphnet/scratch.py)."""
        run = self.forward_loop if backend in self.backends else self.forward
        if "scratch" in inspect.signature(run).parameters:
            return functools.partial(run, scratch={})
        return run

    def targets(self, node: Node) -> tuple:
        """The variables `node` updates in place: an assignment's first input
        (a fused update kernel may write several)."""
        return node.inputs[:1] if self.stateful else ()


def snake_case(name: str) -> str:
    """`MaxPool2DGrad` -> `max_pool2d_grad`: words split at lower-to-upper
    case changes and before the last capital of an acronym."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{format_shape(value.shape)}"
    if isinstance(value, np.dtype):
        return value.name
    return repr(value)


# --------------------------------------------------------------- nodes

_ids = itertools.count()


class Node:
    """A symbolic value: `op` applied to `inputs`, with a static shape and dtype.

    Operators build new nodes (`x @ W + b`, `-x`, `x ** 2`, `x < 0`, `x[:, 1:]`).
    `==` keeps Python's identity meaning so nodes work as dict keys; use
    `gn.equal` for an elementwise comparison.
    """

    __slots__ = ("__weakref__", "dtype", "id", "inputs", "name", "op", "origin", "shape")
    __array_ufunc__ = None  # make `ndarray + node` defer to Node.__radd__

    def __init__(self, op: Op, inputs: tuple, shape: tuple, dtype, name: str, origin: str):
        self.op = op
        self.inputs = inputs
        self.shape = shape
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.name = name
        self.origin = origin
        self.id = next(_ids)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def T(self) -> Node:
        from graphnet.ops.shape import transpose
        return transpose(self)

    def __repr__(self) -> str:
        dtype = self.dtype.name if self.dtype is not None else "none"
        shape = format_shape(self.shape) if self.shape is not None else ""
        return f"<{self.op.kind} '{self.name}' {shape} {dtype}>"

    def __bool__(self):
        raise TypeError(
            f"'{self.name}' is symbolic and has no truth value; use gn.where or "
            "comparisons to build conditional values")

    def __hash__(self):
        return object.__hash__(self)

    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __iter__(self):
        raise TypeError(f"'{self.name}' is symbolic and cannot be iterated; index it or "
                        "use gn.split")

    # Operators are bound in graphnet/ops/__init__.py, once the ops exist.


def _user_origin() -> str:
    """file:line of the innermost stack frame of user code: outside the
    graphnet package, or in its examples."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR) \
            and not frame.f_code.co_filename.startswith(_EXAMPLES_DIR):
        frame = frame.f_back
    if frame is None:
        return "<graphnet>"
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


# ------------------------------------------------------------- naming

_scope: list = []
_used_names: dict = {}


@contextlib.contextmanager
def name_scope(name: str, unique: bool = True):
    """Prefix the names of nodes built inside: `with gn.name_scope("block"):`.

    A scope name already used becomes `block_1` unless `unique=False`, which
    re-enters it (a layer called twice keeps its nodes under its own name).
    """
    _scope.append(unique_name(name) if unique else _scoped(name))
    try:
        yield _scope[-1]
    finally:
        _scope.pop()


def unique_name(base: str, scoped: bool = True) -> str:
    """`base` inside the current scope, suffixed `_1`, `_2`, ... when taken."""
    full = _scoped(base) if scoped else base
    count = _used_names.get(full)
    if count is None:
        _used_names[full] = 0
        return full
    while True:
        count += 1
        candidate = f"{full}_{count}"
        if candidate not in _used_names:
            _used_names[full] = count
            _used_names[candidate] = 0
            return candidate


def reserve_name(name: str):
    """Mark `name` as taken, so `unique_name` never hands it out."""
    _used_names.setdefault(name, 0)


def _scoped(base: str) -> str:
    return f"{_scope[-1]}/{base}" if _scope else base


@contextlib.contextmanager
def root_scope():
    """Build names outside every enclosing name scope (e.g. optimizer state)."""
    saved = _scope[:]
    _scope.clear()
    try:
        yield
    finally:
        _scope[:] = saved


@contextlib.contextmanager
def throwaway_names():
    """Forget the names used inside afterwards (for nodes built only to draw)."""
    saved = dict(_used_names)
    try:
        yield
    finally:
        _used_names.clear()
        _used_names.update(saved)


def reset_names():
    """Forget used names, so a fresh model gets `dense`, not `dense_7`."""
    _used_names.clear()


# ----------------------------------------------------- building nodes


def apply(op: Op, *inputs, name: str | None = None) -> Node:
    """Build a node for `op` on `inputs`, inferring its shape and dtype now.

    A ShapeError from the op's rule is re-raised naming the op, the node and
    the user's file:line.
    """
    inputs = tuple(inputs)
    for i, inp in enumerate(inputs):
        if not isinstance(inp, Node):
            raise TypeError(f"{op.kind}: input {i} is {type(inp).__name__}, not a graph node")
    origin = _user_origin()
    node_name = unique_name(name or op.kind)
    try:
        shape, dtype = op.infer(*inputs)
    except ShapeError as err:
        raise ShapeError(f"{op.kind} '{node_name}': {err} (created at {origin})") from None
    return Node(op, inputs, None if shape is None else tuple(shape), dtype, node_name, origin)


@dataclasses.dataclass(frozen=True, eq=False)
class Placeholder(Op):
    """A value fed at run time; None in the shape marks a size fed later."""

    __eq__, __hash__ = object.__eq__, object.__hash__  # each source is unique

    shape: tuple
    dtype: np.dtype

    def infer(self):
        return self.shape, self.dtype


@dataclasses.dataclass(frozen=True, eq=False)
class Variable(Op):
    """A value owned by a Session, initialised from `initial_value`."""

    __eq__, __hash__ = object.__eq__, object.__hash__  # each source is unique

    initial_value: np.ndarray
    trainable: bool = True

    def infer(self):
        return self.initial_value.shape, self.initial_value.dtype


@dataclasses.dataclass(frozen=True, eq=False)
class Constant(Op):
    """A fixed value baked into the graph."""

    __eq__, __hash__ = object.__eq__, object.__hash__  # each source is unique

    value: np.ndarray

    def infer(self):
        return self.value.shape, self.value.dtype

    def forward(self):
        return self.value


SOURCE_OPS = (Placeholder, Variable, Constant)

#: Every variable created so far, so `Session.initialize()` can find them.
all_variables: weakref.WeakSet[Node] = weakref.WeakSet()


def placeholder(shape, dtype="float32", name: str | None = None) -> Node:
    """An input fed at run time: `gn.placeholder((None, 784), "float32", name="x")`."""
    shape = tuple(None if d is None else int(d) for d in shape)
    if any(d is not None and d < 0 for d in shape):
        raise ShapeError(f"placeholder '{name}': negative size in {format_shape(shape)}")
    return apply(Placeholder(shape, np.dtype(dtype)), name=name or "placeholder")


def variable(value, name: str | None = None, trainable: bool = True, dtype=None) -> Node:
    """A trainable (or not) value kept by the Session; `value` is its initial value."""
    initial = np.array(value, dtype=dtype, copy=True)
    if initial.dtype == object:
        raise TypeError(f"variable '{name}': initial value is not numeric")
    initial.setflags(write=False)
    node = apply(Variable(initial, trainable), name=name or "variable")
    all_variables.add(node)
    return node


def set_initial_value(var: Node, value):
    """Replace the value `var` starts from (same shape, cast to its dtype).

    Sessions read a variable's initial value on first use, so those that
    first use `var` afterwards start from `value`; a Session that already
    holds a value for it keeps that value (change it with `Session.set`).
    """
    if not isinstance(var, Node) or not isinstance(var.op, Variable):
        raise TypeError(f"set_initial_value: expected a variable node, got {var!r}")
    array = np.asarray(value)
    if array.shape != var.shape or not np.can_cast(array.dtype, var.dtype, "same_kind"):
        raise ShapeError(f"variable '{var.name}' is {var.dtype.name} {format_shape(var.shape)}; "
                         f"got {array.dtype.name} {format_shape(array.shape)}")
    initial = np.array(array, dtype=var.dtype, copy=True)
    initial.setflags(write=False)
    # Variables compare by identity, so swapping the frozen field changes no key.
    object.__setattr__(var.op, "initial_value", initial)


def constant(value, dtype=None, name: str | None = None) -> Node:
    """A fixed value in the graph: `gn.constant([1.0, 2.0])`."""
    array = np.array(value, dtype=dtype, copy=True)
    if array.dtype == object:
        raise TypeError(f"constant '{name}': value is not numeric")
    array.setflags(write=False)
    return apply(Constant(array), name=name or "const")


def as_node(value, like: Node | None = None) -> Node:
    """A node for `value`: nodes pass through, Python scalars take `like`'s
    dtype the way NumPy treats scalars (`x * 2.0` stays float32)."""
    if isinstance(value, Node):
        return value
    if like is not None and isinstance(value, (bool, int, float)) and like.dtype is not None:
        return constant(value, dtype=np.result_type(like.dtype, value))
    if isinstance(value, float):
        return constant(value, dtype="float32")
    return constant(value)


def check_feed_value(node: Node, value) -> np.ndarray:
    """`value` as an array of the placeholder's dtype, or a FeedError."""
    if type(value) is np.ndarray and value.dtype == node.dtype \
            and check_value_shape(value.shape, node.shape):
        return value   # the common case, checked without casting rules
    array = np.asarray(value)
    if array.dtype == object or not np.can_cast(array.dtype, node.dtype, "same_kind"):
        raise FeedError(
            f"placeholder '{node.name}' is {node.dtype.name}; cannot feed a "
            f"{array.dtype.name} value")
    if not check_value_shape(array.shape, node.shape):
        raise FeedError(
            f"placeholder '{node.name}' expects shape {format_shape(node.shape)}; "
            f"fed {format_shape(array.shape)}")
    return array.astype(node.dtype, copy=False)


# ------------------------------------------------------------ Graph


class Graph:
    """The nodes that some outputs need, sorted so each follows its inputs.

    Assignments run after every other reader of their variable, so all
    reads in one run see the value from before the run's updates.
    """

    def __init__(self, outputs):
        self.outputs = list(outputs)
        for out in self.outputs:
            if not isinstance(out, Node):
                raise GraphError(f"cannot fetch {type(out).__name__} {out!r}: not a graph node")
        self.nodes = _sorted_ancestors(self.outputs)

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    def consumers(self) -> dict:
        """Map each node to the nodes in this graph that use it."""
        users = {node: [] for node in self.nodes}
        for node in self.nodes:
            for inp in node.inputs:
                users[inp].append(node)
        return users

    def verify(self):
        """Re-check order and every node's shape rule; raise GraphError on a mismatch."""
        position = {node: i for i, node in enumerate(self.nodes)}
        for node in self.nodes:
            for inp in node.inputs:
                if position.get(inp, len(self.nodes)) >= position[node]:
                    raise GraphError(f"'{node.name}' comes before its input '{inp.name}'")
            shape, dtype = node.op.infer(*node.inputs)
            if tuple(shape or ()) != tuple(node.shape or ()) or (
                    dtype is not None and np.dtype(dtype) != node.dtype):
                raise GraphError(
                    f"'{node.name}' records {node.shape} {node.dtype} but its rule "
                    f"gives {shape} {dtype}")

    def __str__(self) -> str:
        """One line per node: `t3: f32[?,128] = relu(t2)    # model.py:14`."""
        local = {node: f"t{i}" for i, node in enumerate(self.nodes)}
        lines = []
        for node in self.nodes:
            args = ", ".join(local[i] for i in node.inputs)
            text = f"{local[node]}: {type_string(node)} = {node.op.kind}({args})"
            lines.append(f"{text:<44}# {node.name} {node.origin}")
        outs = ", ".join(local[o] for o in self.outputs)
        return "\n".join(lines + [f"return {outs}"])


def type_string(node: Node) -> str:
    """`f32[?,128]`: short dtype and shape for listings."""
    if node.dtype is None:
        return "()"
    code = {"f": "f", "i": "i", "u": "u", "b": "bool"}.get(node.dtype.kind, node.dtype.kind)
    short = code if code == "bool" else f"{code}{node.dtype.itemsize * 8}"
    dims = ",".join("?" if d is None else str(d) for d in node.shape)
    return f"{short}[{dims}]"


def _sorted_ancestors(outputs) -> list:
    """Topological order (networkx) of the outputs' ancestors, ties by creation."""
    dag = nx.DiGraph()
    stack = list(outputs)
    seen = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        dag.add_node(node)
        for inp in node.inputs:
            dag.add_edge(inp, node)
            stack.append(inp)
    _order_assignments(dag)
    try:
        return list(nx.lexicographical_topological_sort(dag, key=lambda n: n.id))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(dag)
        names = " -> ".join(f"'{a.name}'" for a, _ in cycle)
        raise GraphError(f"the graph has a cycle: {names} -> '{cycle[0][0].name}'") from None


def _order_assignments(dag: nx.DiGraph):
    """Add edges so each assignment follows the other readers of its variable."""
    assigns = [n for n in dag if n.op.stateful]
    targets = {}
    for node in assigns:
        later = None
        for target in node.op.targets(node):
            if target in targets:
                raise GraphError(
                    f"variable '{target.name}' is assigned twice in one run "
                    f"('{targets[target].name}' at {targets[target].origin} and "
                    f"'{node.name}' at {node.origin}); fetch them in separate runs")
            targets[target] = node
            later = nx.descendants(dag, node) if later is None else later
            for reader in _readers(dag, target, node):
                if reader not in later:
                    dag.add_edge(reader, node)


def _readers(dag: nx.DiGraph, target: Node, writer: Node) -> set:
    """Nodes other than `writer` that read `target`'s memory: its consumers,
    and the consumers of any view of it (a transpose of a weight reads the
    weight). An update of another variable that reads `target` is a reader."""
    readers, stack = set(), [target]
    while stack:
        for consumer in dag.successors(stack.pop()):
            if consumer not in readers and consumer is not writer:
                readers.add(consumer)
                if consumer.op.view and consumer.inputs[0] in readers | {target}:
                    stack.append(consumer)
    return readers
