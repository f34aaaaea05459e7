"""fuse_elementwise: chains and trees of elementwise nodes become one kernel.

Groups grow in graph order. A fusible node (FUSIBLE: arithmetic, math,
activations, comparisons, selection, casts, and assignments to variables)
joins the groups it takes inputs from when they have its static shape
(inputs of other shapes, such as a bias or a learning rate, broadcast into
the kernel) and when

1. every value of those groups that something outside them uses is used
   after this node: the kernel runs where its last node stood, so its
   outputs are ready for their users (and groups never wait on each other
   in a cycle);
2. a group that assigns variables reads no variable that this run
   assigns (nor a view of one) other than its own targets, whole: a kernel
   that writes a variable in place, chunk by chunk or element by element,
   must read it only at the element it writes, and a kernel that both
   reads another updated variable and writes its own could need to run
   both before and after that variable's update (`a = b; b += a`).

Each group of two or more nodes becomes one `Fused` node (compiler/ops.py)
whose program lists the absorbed ops; values used outside it leave as its
outputs, scalar constants become typed literals of the program. A member
that other kernels would read back, but that is one cheap op away from an
array they can read anyway (`h * 0.5`, `h + bias` in a GELU that its
gradient kernel needs), is computed again by those kernels instead of
written out (`_recompute_cheap_exports`): a full-size write and read saved. An
optimizer's update of one variable (slot updates and parameter update)
becomes one kernel that writes all of them in place. Random ops and every
other op stay as they are.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from graphnet.compiler.kernels import cost, numba_backend, resolve_backend
from graphnet.compiler.kernels.program import Instr
from graphnet.compiler.ops import Fused, FusedOutput
from graphnet.compiler.rewrite import (
    Refusal,
    Rewrite,
    aliases,
    clone,
    describe,
    is_group,
    log,
    make,
    note,
    plural,
    rebuild,
)
from graphnet.graph import Constant, Graph, Node, Variable
from graphnet.ops import activations as act
from graphnet.ops import elementwise as ew
from graphnet.ops.shape import Cast
from graphnet.ops.state import Assignment
from graphnet.shapes import is_static

# ----------------------------------------------------------- what fuses


def _numeric(node: Node) -> bool:
    """Arithmetic NumPy and the loops agree on: no bool arithmetic."""
    return all(n.dtype.kind in "iuf" for n in (node, *node.inputs))


def _floats(node: Node) -> bool:
    return node.dtype.kind == "f" and _numeric(node)


def _any(node: Node) -> bool:
    return True


def _bools(node: Node) -> bool:
    return all(i.dtype == np.bool_ for i in node.inputs)


def _update(node: Node) -> bool:
    target, value = node.inputs
    return (isinstance(target.op, Variable) and node.dtype.kind in "iuf"
            and value.dtype.kind in "biuf")


#: Op class -> the condition on a node of it (dtypes) for fusing it.
FUSIBLE = {
    ew.Add: _numeric, ew.Sub: _numeric, ew.Mul: _numeric, ew.Div: _numeric,
    ew.Neg: _numeric, ew.Maximum: _numeric, ew.Minimum: _numeric, ew.Pow: _floats,
    ew.Exp: _floats, ew.Log: _floats, ew.Log1p: _floats, ew.Sqrt: _floats,
    ew.Cos: _floats, ew.Sin: _floats, ew.Erf: _floats, ew.Floor: _floats,
    ew.Square: _numeric, ew.Abs: _numeric, ew.Sign: _numeric, ew.Clip: _floats,
    act.Relu: _numeric, act.LeakyRelu: _floats, act.Sigmoid: _floats,
    act.Softplus: _floats, act.Tanh: _floats,
    ew.Equal: _any, ew.NotEqual: _any, ew.Less: _any, ew.LessEqual: _any,
    ew.Greater: _any, ew.GreaterEqual: _any,
    ew.LogicalAnd: _bools, ew.LogicalOr: _bools, ew.LogicalNot: _bools,
    ew.Where: _any, Cast: _any, Assignment: _update,
}


def fusible(node: Node) -> bool:
    """True when `node` may join a fused kernel."""
    if node.shape is None or node.dtype is None or node.op.random:
        return False
    if any(n.dtype is None or n.dtype.kind not in "biuf" for n in (node, *node.inputs)):
        return False
    rule = FUSIBLE.get(type(node.op))
    if rule is None and isinstance(node.op, Assignment):
        rule = FUSIBLE[Assignment]
    return rule is not None and rule(node)


def _literal(node: Node) -> bool:
    """A 0-d constant: it goes into the program as a typed scalar."""
    return isinstance(node.op, Constant) and node.op.value.ndim == 0


# ------------------------------------------------------------- grouping


@dataclass(eq=False)
class _Group:
    """Nodes that will run as one kernel, in graph order."""

    members: list
    #: Rule 1, kept as a flag: a node outside the group that uses a member
    #: has run (nodes are visited in graph order), so nothing may join now.
    closed: bool = False
    closed_by: Node | None = None  # the outside reader that closed it, for explain()
    targets: set = field(default_factory=set)  # variables the members assign
    readers: bool = False  # holds a node that rule 2 keeps out of updating groups

    @property
    def shape(self):
        return self.members[0].shape


def find_groups(graph: Graph, refusals: list | None = None) -> list:
    """The groups of two or more nodes to fuse, each in graph order.

    Rule 2 is checked on finished groups (a read of a variable is fine when
    its assignment joins later): the nodes of an updating group that read
    another assigned variable are kept out of updating groups, and the
    grouping runs again (rarely more than once)."""
    assigned = {t for n in graph.nodes if n.op.stateful for t in n.op.targets(n)}
    readers: set = set()
    while True:
        if refusals is not None:
            refusals.clear()
        groups = _grow(graph, readers, refusals)
        offenders = {m for g in groups if g.targets for m in g.members
                     if any(i not in g.targets and aliases(i, assigned) for i in m.inputs)}
        if not offenders:
            return groups
        readers |= offenders


def _grow(graph: Graph, readers: set, refusals: list | None = None) -> list:
    """Groups grown in graph order under rule 1, with `readers` kept out of
    groups that assign. Fusions considered and not made go to `refusals`."""
    position = {n: i for i, n in enumerate(graph.nodes)}
    group_of: dict = {}
    for node in graph.nodes:
        producers = []
        for inp in node.inputs:
            group = group_of.get(inp)
            if group is not None and group not in producers:
                producers.append(group)
        joined = _join(node, producers, position, group_of, readers) if fusible(node) else None
        for group in producers:
            if group is not joined:
                merged = not any(group_of.get(i) is group for i in node.inputs)
                if refusals is not None and not merged and (
                        len(group.members) > 1 or joined is not None):
                    refusals.append(_refusal(node, group, group_of))
                if not group.closed:
                    group.closed, group.closed_by = True, node
    groups = {id(g): g for g in group_of.values()}.values()
    return [g for g in groups if len(g.members) > 1]


def _refusal(node: Node, group: _Group, group_of: dict) -> Refusal:
    """Why `node` did not join the kernel of `group`, one of its producers'."""
    other = next(i for i in node.inputs if group_of.get(i) is group)
    if not fusible(node):
        why = (f"{node.op.kind} is random: it draws new numbers each run" if node.op.random else
               f"{node.op.kind} is not an elementwise op of numbers that kernels fuse")
    elif group.closed:
        why = (f"'{group.closed_by.name}' ({_where(group.closed_by)}) also reads that kernel "
               "and runs first")
    elif group.shape != node.shape:
        why = f"its shape {node.shape} differs from the kernel's {group.shape}"
    else:
        why = ("the kernel assigns variables, and this reads a variable the same run "
               "assigns")
    return Refusal(describe(node), describe(other), why)


def _where(node: Node) -> str:
    return node.origin.rsplit("/", 1)[-1] if node.origin else "?"


def _join(node: Node, producers: list, position: dict, group_of: dict, readers: set):
    """The group `node` joins: its open producer groups of its shape merged
    (all of them, else the largest that may), or a new group of its own."""
    target = node.inputs[0] if isinstance(node.op, Assignment) else None
    candidates = [g for g in producers if not g.closed and g.shape == node.shape]
    candidates.sort(key=lambda g: -len(g.members))
    choices = [candidates] + [[g] for g in candidates] if len(candidates) > 1 else [candidates]
    for chosen in choices:
        assigns = target is not None or any(g.targets for g in chosen)
        if not (assigns and (node in readers or any(g.readers for g in chosen))):
            break
    else:
        chosen = []
    if chosen:
        group = chosen[0]
        for other in chosen[1:]:  # merge the smaller groups into the largest
            group.members = list(heapq.merge(group.members, other.members,
                                             key=position.__getitem__))
            group.targets |= other.targets
            group.readers |= other.readers
            for member in other.members:
                group_of[member] = group
        group.members.append(node)
    else:
        group = _Group([node])
    if target is not None:
        group.targets.add(target)
    group.readers |= node in readers
    group_of[node] = group
    return group


# ------------------------------------------------------ recomputation

#: Ops cheap enough to compute twice rather than store and read back.
CHEAP = (ew.Add, ew.Sub, ew.Mul, ew.Div, ew.Neg)
#: Regrouping rounds at most: each moves an export one cheap op down a chain.
ROUNDS = 8


def _recompute_cheap_exports(graph: Graph) -> tuple:
    """(graph, its groups) once no kernel exports a cheap member to other
    kernels: each such member is cloned for the groups that read it, and
    the graph regrouped (an export moves down the chain, `h * 0.5` -> `h`
    -> the matmul output, so this repeats a few times at most)."""
    recomputed, refusals = 0, []
    for _ in range(ROUNDS):
        groups = find_groups(graph, refusals)
        rewire = _cheap_exports(graph, groups)
        if not rewire:
            break
        graph, clones = _clone_for_users(graph, rewire)
        recomputed += clones
    else:
        groups = find_groups(graph, refusals)
    if recomputed:
        note(f"{plural(recomputed, 'cheap value')} recomputed where read, not stored")
    for refusal in refusals:   # those of the grouping kept
        log(refusal)
    return graph, groups


def _cheap_exports(graph: Graph, groups: list) -> dict:
    """{user id: {member id: key of the user's group}} for members worth
    recomputing: a cheap op of one full-size array (other inputs scalars or
    small broadcast arrays), not fetched, not its kernel's result, and read
    outside its group only by fusible nodes of its shape (which can take a
    clone into their kernel). (A clone may read a variable
    that is updated: the graph orders updates after every read.)"""
    member_of = {m: g for g in groups for m in g.members}
    users, fetched = graph.consumers(), set(graph.outputs)
    rewire: dict = {}
    for group in groups:
        for m in group.members[:-1]:
            outside = [u for u in users[m] if member_of.get(u) is not group]
            if (not outside or m in fetched or not isinstance(m.op, CHEAP)
                    or not all(fusible(u) and u.shape == m.shape for u in outside)
                    or not _one_full_input(m)):
                continue
            for u in outside:
                key = id(member_of[u]) if u in member_of else u.id
                rewire.setdefault(u.id, {})[m.id] = key
    return rewire


def _one_full_input(node: Node) -> bool:
    """One input of node's size; the others at most 1/16 of it (a bias, a
    scalar). Sizes must be known."""
    if not all(is_static(n.shape) for n in (node, *node.inputs)):
        return False
    size = int(np.prod(node.shape))
    sizes = sorted(int(np.prod(i.shape)) for i in node.inputs)
    return sizes[-1] == size and all(16 * n <= size for n in sizes[:-1])


def _clone_for_users(graph: Graph, rewire: dict) -> tuple:
    """(graph, number of clones): each user in `rewire` reads its own
    group's clone of the members named there."""
    clones: dict = {}

    def visit(node: Node):
        wanted = rewire.get(node.id)
        if not wanted:
            return None
        inputs = []
        for inp in node.inputs:
            key = (inp.id, wanted.get(inp.id))
            if key[1] is not None and key not in clones:
                clones[key] = make(inp.op, inp.inputs, like=inp, suffix="recomputed")
            inputs.append(clones.get(key, inp))
        return make(node.op, inputs, like=node)

    return rebuild(graph, visit), len(clones)


# ------------------------------------------------------------ rewriting


def fuse_elementwise(graph: Graph, backend: str | None = None) -> Graph:
    """One kernel per group of elementwise nodes; `backend` "numpy" or
    "numba" (None: numba when installed, see kernels.resolve_backend)."""
    backend = resolve_backend(backend)
    graph, groups = _recompute_cheap_exports(graph)
    if not groups:
        return graph
    root_of = {g.members[-1]: g for g in groups}
    member_of = {m: g for g in groups for m in g.members}
    outputs, users = set(graph.outputs), graph.consumers()
    value: dict = {}     # old node -> node with its value in the new graph
    effect: dict = {}    # fused member -> the fused node (for groups to run)
    report = _Report()
    for node in graph.nodes:
        group = member_of.get(node)
        if group is not None:
            if node in root_of:
                _emit(group, value, effect, (outputs, users), backend, report)
            continue
        inputs = tuple(_input(i, node, value, effect) for i in node.inputs)
        if is_group(node):
            inputs = tuple(dict.fromkeys(inputs))
        same = len(inputs) == len(node.inputs) and all(
            a is b for a, b in zip(inputs, node.inputs, strict=True))
        value[node] = node if same else clone(node, inputs)
    report.write()
    return Graph([value[o] for o in graph.outputs])


def _input(inp: Node, user: Node, value: dict, effect: dict) -> Node:
    """What `user` takes in place of `inp`: a group runs a fused kernel for
    its effect; other users take the value."""
    if is_group(user) and inp in effect:
        return effect[inp]
    return value[inp]


def _emit(group: _Group, value: dict, effect: dict, uses: tuple, backend: str, report):
    """Build the fused node of `group` and map its members to it; `uses` is
    (the graph's outputs, each node's consumers)."""
    (outputs, users), members, inside = uses, group.members, set(group.members)
    root = members[-1]
    refs, inputs, constants = {}, [], []
    for i, m in enumerate(members):
        refs[m] = f"t{i}"
    for m in members:
        for inp in m.inputs:
            if inp in inside or inp in refs:
                continue
            if _literal(inp):
                refs[inp] = f"c{len(constants)}"
                constants.append((inp.dtype.name, inp.op.value.item()))
            else:
                refs[inp] = f"x{len(inputs)}"
                inputs.append(inp)
    program = tuple(Instr(m.op, tuple(refs[i] for i in m.inputs), m.dtype) for m in members)
    leaving = [m for m in members if m in outputs or any(
        u not in inside and not is_group(u) for u in users[m])]
    new_inputs = tuple(value[i] for i in inputs)
    op = Fused(program, tuple(constants), tuple(refs[m] for m in leaving),
               tuple((i.dtype.name, i.shape) for i in new_inputs), root.shape)
    op, why = _choose_backend(op, backend, report)
    op = replace(op, absorbed=_display(members, value))
    fused = Node(op, new_inputs, *_value_type(op), root.name, root.origin)
    log(Rewrite("fused", ", ".join(describe(m) for m in members),
                f"one {op.kernel_kind} kernel '{root.name}'"))
    fused.id = root.id
    for m in members:
        effect[m] = fused
    if len(leaving) == 1:
        value[leaving[0]] = fused
    for index, m in enumerate(leaving if len(leaving) > 1 else []):
        shape, dtype = op.output_types()[index]
        out = Node(FusedOutput(index), (fused,), shape, dtype, m.name, m.origin)
        if m is not root:  # the root's id is the fused node's; this one keeps a new id
            out.id = m.id
        value[m] = out
    report.group(fused, len(members), why)


def _value_type(op: Fused) -> tuple:
    types = op.output_types()
    return types[0] if len(types) == 1 else (None, None)


def _display(members: list, value: dict) -> tuple:
    """Copies of the absorbed nodes wired to the fused node's inputs, so a
    plan diagram can draw what the kernel computes."""
    shown = {}
    for m in members:
        inputs = tuple(shown[i] if i in shown else value.get(i, i) for i in m.inputs)
        shown[m] = Node(m.op, inputs, m.shape, m.dtype, m.name, m.origin)
    return tuple(shown[m] for m in members)


def _choose_backend(op: Fused, backend: str, report) -> tuple:
    """The op with its backend, and why numba was not used (or None)."""
    if backend != "numba":
        return op, None
    why = numba_backend.check(op) or cost.slower_as_loop(op)
    if why is not None:
        return op, why
    loop = replace(op, backend="numba")
    try:
        report.compiled(numba_backend.prepare(loop))
    except Exception as err:  # noqa: BLE001 - a loop that fails to build runs as ufuncs
        return op, f"Numba could not compile its loop ({type(err).__name__}: {err})"
    return loop, None


class _Report:
    """What `explain()` says about this pass: each kernel and its backend."""

    def __init__(self):
        self.lines, self.kinds, self.loads = [], Counter(), Counter()
        self.seconds = Counter()

    def group(self, fused: Node, count: int, why):
        op = fused.op
        self.kinds[op.kernel_kind] += 1
        writes = [t.name for t in op.targets(fused)]
        facts = [plural(count, "op"), f"shape {op.shape}"]
        if writes:
            facts.append("writes " + ", ".join(writes) + " in place")
        fallback = f"; numpy, since {why}" if why else ""
        self.lines.append(f"{fused.name}: {op.describe(fused)}  "
                          f"[{op.kernel_kind}: {', '.join(facts)}{fallback}]")

    def compiled(self, compiled):
        self.loads[compiled.origin] += 1
        self.seconds[compiled.origin] += compiled.seconds

    def write(self):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items()))
        lines = list(self.lines)
        if self.loads:
            parts = [f"{self.loads[k]} {said} in {self.seconds[k]:.2f} s" for k, said in
                     [("compiled", "compiled"), ("disk cache", "loaded from the disk cache")]
                     if self.loads[k]]
            if self.loads["memory"]:
                parts.append(f"{self.loads['memory']} reused")
            lines.append("numba loops: " + ", ".join(parts))
        note(f"{plural(sum(self.kinds.values()), 'kernel')} ({kinds}):\n" +
             "\n".join(f"      {line}" for line in lines))
