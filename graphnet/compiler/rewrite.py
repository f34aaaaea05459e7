"""Rewriting graphs. Nodes are immutable, so a pass rebuilds what changed.

`rebuild(graph, visit)` walks the graph in order. Each node whose inputs were
rewritten is cloned first (same op, name, origin and id, shape and dtype
re-inferred), then `visit` may return a replacement for it. Nodes that rules
build come from `make`, named after and located at the node they stand for,
so listings, plans and errors keep pointing at the user's code.

Ids order ties in the graph's topological sort, so a clone or a replacement
keeps the id of the node it stands for: the rewritten plan keeps the user's
order (and with it where assignments fall relative to reads).

`apply_rules` is the engine behind the table-driven passes (simplify,
static_shapes): one rule a row, each `rule(node) -> Node | None`.

What a rewrite is in the middle of (the nodes `make` built, the rules that
fired, where notes go) is kept per thread, so threads may compile at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from graphnet.errors import GraphError, ShapeError
from graphnet.graph import Constant, Graph, Node, Op
from graphnet.ops.shape import ConcatPart, SumLike
from graphnet.ops.state import Group
from graphnet.shapes import format_shape


class _State(threading.local):
    """One thread's rewriting in progress."""

    def __init__(self):
        self.made: list = []               # nodes built by `make` since this visit began
        self.fired: list = []              # rules that fired on the node being visited
        self.notes: list | None = None     # where `note` writes (None: nowhere)
        self.history: list | None = None   # where `log` writes rewrites and refusals


_state = _State()


# ------------------------------------------------------------ building


def clone(node: Node, inputs: tuple) -> Node:
    """`node` on new inputs: same op, name, origin and id, shape re-inferred."""
    new = _build(node.op, inputs, node.name, node.origin)
    new.id = node.id
    return new


def make(op: Op, inputs, like: Node, suffix: str | None = None) -> Node:
    """A node built by a rewrite of `like`: its name (plus `/suffix` for
    helper nodes) and origin, with shape and dtype inferred now."""
    name = like.name if suffix is None else f"{like.name}/{suffix}"
    node = _build(op, tuple(inputs), name, like.origin)
    _state.made.append(node)
    return node


def _build(op: Op, inputs: tuple, name: str, origin: str) -> Node:
    try:
        shape, dtype = op.infer(*inputs)
    except ShapeError as err:
        raise ShapeError(f"{op.kind} '{name}': {err} (created at {origin})") from None
    return Node(op, inputs, None if shape is None else tuple(shape), dtype, name, origin)


def same_type(a: Node, b: Node) -> bool:
    """Same static shape and dtype (None sizes must sit in the same places)."""
    return a.shape == b.shape and a.dtype == b.dtype


def refines(new: Node, old: Node) -> bool:
    """new's type is old's, with some unknown sizes made known."""
    if old.shape is None or new.shape is None:
        return old.shape is new.shape and old.dtype == new.dtype
    return new.dtype == old.dtype and len(new.shape) == len(old.shape) and all(
        o is None or o == n for n, o in zip(new.shape, old.shape, strict=True))


# ----------------------------------------------------------- rebuilding


def rebuild(graph: Graph, visit=None) -> Graph:
    """The graph with each node given its rewritten inputs, then `visit(node)`'s
    replacement where it returns one. Unchanged graphs come back as they are."""
    mapping: dict = {}
    changed = False
    for node in graph.nodes:
        inputs = tuple(mapping[i] for i in node.inputs)
        new = node
        if any(a is not b for a, b in zip(inputs, node.inputs, strict=True)):
            new = clone(node, inputs)
        if visit is not None:
            _state.made.clear()
            _state.fired.clear()
            replacement = visit(new)
            if replacement is not None and replacement is not new:
                if not refines(replacement, new):
                    raise GraphError(
                        f"compiler bug: '{node.name}' {_type(new)} was rewritten to "
                        f"{replacement.op.kind} '{replacement.name}' {_type(replacement)}")
                log(Rewrite(", ".join(_state.fired), describe(new), describe(replacement)))
                _take_place(replacement, new)
                new = replacement
            _state.made.clear()
        mapping[node] = new
        changed = changed or new is not node
    if not changed:
        return graph
    return Graph([mapping[o] for o in graph.outputs])


def _take_place(replacement: Node, old: Node):
    """A replacement built for `old` takes its id, so it sorts where old did,
    unless old lives on as an input of the new nodes."""
    made = _state.made
    if any(n is replacement for n in made) and not any(i is old for n in made for i in n.inputs):
        replacement.id = old.id


def _type(node: Node) -> str:
    if node.shape is None:
        return "(no value)"
    return f"{format_shape(node.shape)} {node.dtype.name}"


# ---------------------------------------------------------------- rules


def apply_rules(graph: Graph, rules: list, counts: Counter | None = None) -> Graph:
    """Rewrite each node with the first matching rule, until none fires.

    `rules` is a table of `(op class or tuple of classes, rule)`; a rule takes
    a node (inputs already rewritten) and returns a replacement or None. A
    replacement must have the node's static shape and dtype; one that does
    not is ignored, so a rule like `x * 1 -> x` need not re-check broadcasting.
    `counts` gains one per rule firing, by the rule's name.

    Nor may a replacement alias a variable that the graph assigns unless the
    node did: `(v + 0) -> v` would let a value read before the update change
    with it, since assignments update variables in place.
    """
    table: dict = {}
    counts = Counter() if counts is None else counts
    assigned = {node.inputs[0] for node in graph if node.op.stateful}

    def rules_for(op_type) -> list:
        if op_type not in table:
            table[op_type] = [rule for classes, rule in rules if issubclass(op_type, classes)]
        return table[op_type]

    def visit(node: Node):
        current = node
        for _ in range(32):  # a bound, in case two rules undo each other
            for rule in rules_for(type(current.op)):
                result = rule(current)
                if (result is not None and result is not current and same_type(result, current)
                        and not (assigned and aliases(result, assigned)
                                 and not aliases(current, assigned))):
                    counts[rule.__name__] += 1
                    _state.fired.append(rule.__name__)
                    current = result
                    break
            else:
                break
        return current

    return rebuild(graph, visit)


# ---------------------------------------------------------------- facts


def is_pure(op: Op) -> bool:
    """Safe to merge, fold or drop: no side effect and no randomness.

    Assignments set `stateful`, random ops (dropout, sampling) set `random`.
    """
    return not op.stateful and not op.random


#: Kernels that may return a view of input 0 without setting `Op.view` (yet).
_UNMARKED_VIEWS = (SumLike, ConcatPart)


def aliases(node: Node, variables: set) -> bool:
    """True when node's value may share memory with one of `variables`."""
    while node not in variables:
        if not (node.op.view or isinstance(node.op, _UNMARKED_VIEWS)):
            return False
        node = node.inputs[0]
    return True


def is_group(node: Node) -> bool:
    """A `gn.group` node: runs its inputs, has no value."""
    return isinstance(node.op, Group)


def frozen(value) -> np.ndarray:
    """A read-only copy, as constants hold their values."""
    array = np.array(value, copy=True)
    array.setflags(write=False)
    return array


# ---------------------------------------------------------------- notes


class Notes(list):
    """What passes `note`d, in order; `.history` holds the Rewrites and
    Refusals they `log`ged."""

    def __init__(self):
        super().__init__()
        self.history: list = []


@contextlib.contextmanager
def recording():
    """Collect what passes `note` (and `log`) in this thread while active, as
    Notes; `explain()` prints them."""
    notes = Notes()
    saved = _state.notes, _state.history
    _state.notes, _state.history = notes, notes.history
    try:
        yield notes
    finally:
        _state.notes, _state.history = saved


@dataclass(frozen=True)
class Rewrite:
    """One node replaced by a pass: by which rules (if a rule table), from what to what."""

    rule: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.rule + ': ' if self.rule else ''}{self.before} -> {self.after}"


@dataclass(frozen=True)
class Refusal:
    """A fusion considered and not made, and why, in the user's terms."""

    node: str
    other: str
    reason: str

    def __str__(self) -> str:
        return f"{self.node} not fused with {self.other}: {self.reason}"


def log(entry):
    """Add a Rewrite or Refusal to the history `explain(history=True)` lists."""
    if _state.history is not None:
        _state.history.append(entry)


def describe(node: Node) -> str:
    """`relu 'dense/relu' (model.py:14)`: a node as the user would find it."""
    if isinstance(node.op, Constant):
        value = node.op.value
        shown = f"{value.item():g}" if value.ndim == 0 and value.dtype.kind in "biuf" else \
            f"{value.dtype.name}{format_shape(value.shape)}"
        return f"constant {shown}"
    return f"{node.op.kind} '{node.name}' ({_short(node.origin)})"


def _short(origin: str) -> str:
    """`model.py:14` from `/home/me/model.py:14`."""
    return origin.rsplit("/", 1)[-1] if origin else "?"


def note(text: str):
    """Tell `explain()` what the running pass did (ignored outside compile)."""
    if _state.notes is not None and text:
        _state.notes.append(text)


def plural(n: int, word: str) -> str:
    """`1 node`, `3 nodes`."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def note_counts(counts: Counter):
    """`name x3, other x1`, most frequent first."""
    if counts:
        note(", ".join(f"{name} x{n}" for name, n in counts.most_common()))
