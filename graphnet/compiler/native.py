"""A whole plan as one Numba function, where every kernel step has a native form.

At batch 1 a dense network's plan makes a handful of kernel calls of 0.5 to
5 us each, and each call's Python (argument checks, Numba's dispatch, the
plan's line) costs a few tenths of a microsecond: for the seed MLP about a
third of a prediction. So a plan compiled for the numba backend whose every
kernel step can run inside compiled code runs as one Numba function that
calls the steps' loops in order, into the same planned buffers; the plan's
Python keeps only what needs no kernel (feeds, variables, constants, the
feed-shape checks and views of them) and one call.

The native forms, one a row of `FORMS`:

    matmul        one row times a matrix: `row_product`, a loop over k
                  (BLAS cannot be called from a Numba function without SciPy,
                  and at one row its call costs more than the arithmetic)
    matmul_bias   the same, then `add_to_rows`
    fused         the elementwise program's own loop (kernels/loops.py), for
                  kernels with one output that update nothing
    softmax       ops/activations.py's one-loop softmax over the last axis

A plan with any other kernel step (a product of several rows, a reduction,
an optimizer update, ...) keeps its Python, and `explain()` says which step
stopped it. The function's source is written to the kernel cache beside the
fused loops (`gn_plan_<hash>.py`) and compiled when the plan is made, so
Numba's cache keeps the machine code: a plan of the same shapes compiles
once per machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from graphnet.graph import type_string
from graphnet.jit import loop

#: Plan steps that run in the plan's Python before the native call: no kernel,
#: or a view of what the Python side already holds.
PYTHON_SIDE = ("feed", "variable", "constant")


@dataclass(frozen=True)
class Native:
    """A plan's native function, or why it has none (`function` None)."""

    function: object = None
    source: str = ""
    path: str = ""
    steps: int = 0      # kernel steps it runs
    calls: int = 0      # kernel calls a run of the plan makes: it, and feed checks and views
    why_not: str = ""

    def __str__(self) -> str:
        if self.function is None:
            return f"native: off ({self.why_not})"
        return (f"native: the {self.steps} kernel steps run as one Numba function "
                f"({self.path})")


@loop(fastmath={"contract"})   # no reordering: sums run in k's order, as written
def row_product(a, b, out):
    """out = a @ b for a of one row (or a few: the loop keeps no row in registers)."""
    for i in range(a.shape[0]):
        row = out[i]
        row[:] = 0
        for k in range(a.shape[1]):
            scale = a[i, k]
            b_row = b[k]
            for j in range(b.shape[1]):
                row[j] += scale * b_row[j]


@loop
def add_to_rows(x, row):
    """x[i, :] += row for every i."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] += row[j]


def build(steps: list, outputs: list, namespace: dict) -> tuple:
    """(Native, source of the plan's Python) for a numba plan's `steps`;
    the source is None when the plan keeps its own."""
    buffers = {step.target: step.buffer for step in steps}
    python_side, calls, imports, needed, count = {}, [], {}, [], 0
    for step in steps:
        node = step.nodes[-1]
        if step.kernel in PYTHON_SIDE or (node.op.view and step.inputs and
                                          all(i in python_side for i in step.inputs)):
            python_side[step.target] = step
            continue
        if step.kernel == "group":
            return Native(why_not="the plan runs a group of updates"), None
        form = FORMS.get(node.op.kind)
        found = form(node) if form is not None else None
        if isinstance(found, str) or found is None:
            return Native(why_not=found or f"a {node.op.kind} step ('{node.name}')"), None
        lines, callees = found
        count += 1
        arguments = [i if i in python_side else buffers[i] for i in step.inputs] + [step.buffer]
        if None in arguments:
            return Native(why_not=f"'{node.name}' reads or writes a value kept in no buffer"), None
        calls += [f"    {line.format(*arguments)}  # {type_string(node)} {node.name}"
                  for line in lines]
        imports.update(callees)
        needed += [a for a in arguments if a not in needed]
    if not calls:
        return Native(why_not="no kernel steps"), None
    values = [o if o in python_side else buffers[o] for o in outputs]
    if None in values:
        return Native(why_not="an output is kept in no buffer"), None
    types = {name: _numba_type(namespace.get(name), python_side.get(name)) for name in needed}
    native = _compile(calls, imports, needed, types, count)
    if native.function is None:
        return native, None
    views = sum(s.kernel not in PYTHON_SIDE for s in python_side.values())
    native = dataclasses.replace(native, calls=views + 1)
    namespace["native"] = native.function
    lines = ["def plan(feeds, variables):"]
    lines += [f"    {s.target} = {s.code}" for s in steps if s.target in python_side]
    lines.append(f"    native({', '.join(needed)})")
    lines.append(f"    return [{', '.join(values)}]")
    return native, "\n".join(lines) + "\n"


def _matmul(node):
    a, b = node.inputs[:2]
    if not (a.ndim == b.ndim == 2 and a.shape[0] == 1 and a.dtype == b.dtype == node.dtype
            and node.dtype.kind == "f"):
        return f"a product of {a.shape[0]} rows ('{node.name}'), which BLAS runs"
    out = len(node.inputs)   # the output buffer's argument comes after the inputs
    lines = [f"row_product({{0}}, {{1}}, {{{out}}})"]
    if node.op.kind == "matmul_bias":
        if node.inputs[2].shape != (b.shape[1],) or node.inputs[2].dtype != node.dtype:
            return f"a bias of another shape or dtype ('{node.name}')"
        lines.append(f"add_to_rows({{{out}}}, {{2}})")
    return lines, {"row_product": ("graphnet.compiler.native", "row_product"),
                   "add_to_rows": ("graphnet.compiler.native", "add_to_rows")}


def _fused(node):
    from graphnet.compiler.kernels.numba_backend import prepare
    op = node.op
    if op.backend != "numba" or op.stateful or len(op.outputs) != 1:
        return f"a fused kernel with updates or several outputs ('{node.name}')"
    if any(all(d == 1 for d in shape) for _, shape in op.signature):
        return f"a fused kernel with a scalar input ('{node.name}')"
    compiled = prepare(op)
    name = f"loop_{compiled.path.stem[3:]}"
    arguments = ", ".join(f"{{{i}}}" for i in range(len(node.inputs) + 1))
    return [f"{name}({compiled.rows}, {compiled.cols}, {arguments})"], \
        {name: (f"graphnet_kernel_{compiled.path.stem[3:]}", "kernel")}


def _softmax(node):
    x = node.inputs[0]
    if x.ndim != 2 or node.op.axis not in (-1, 1) or x.dtype.kind != "f":
        return f"a softmax over another axis ('{node.name}')"
    return ["softmax_rows({0}, {1})"], {"softmax_rows": ("graphnet.ops.activations",
                                                          "_softmax_rows")}


#: op kind -> form(node): (lines with {i} for argument i, the output buffer
#: last, {callee: (module, name)}), or why the step has none. A fused loop's
#: module is one numba_backend imported (found in sys.modules); the others
#: hold graphnet.jit loops, whose dispatchers the function calls.
FORMS = {"matmul": _matmul, "matmul_bias": _matmul, "fused": _fused, "softmax": _softmax}


def _numba_type(buffer, step):
    """Numba's type of a buffer, or of what a Python-side step holds (a C-ordered array)."""
    import numba
    if buffer is not None:
        return numba.typeof(buffer)
    node = step.nodes[-1]
    return numba.types.Array(numba.from_dtype(node.dtype), node.ndim, "C")


def _compile(calls: list, imports: dict, needed: list, types: dict, count: int) -> Native:
    """The function's module written to the kernel cache, imported, and
    compiled for the arrays the plan holds (feeds and variables C-ordered)."""
    from graphnet.compiler.kernels.numba_backend import _import, _write
    header = ['"""graphnet native plan, generated: the kernel steps of one plan in order."""',
              "", "import sys", "", "import numba", ""]
    loops = {c: m for c, m in imports.items() if not m[0].startswith("graphnet_kernel_")}
    for module in sorted({m for m, _ in loops.values()}):
        names = sorted(name for m, name in loops.values() if m == module)
        header.append(f"from {module} import {', '.join(names)}")
    header.append("")
    for callee, (module, name) in sorted(imports.items()):
        if callee in loops:
            header.append(f"{callee} = {name}.dispatcher()")
        else:
            header.append(f'{callee} = sys.modules["{module}"].{name}')
    body = ["", "", '@numba.njit(error_model="numpy", nogil=True, cache=True)',
            f"def native({', '.join(needed)}):", *calls]
    source = "\n".join(header + body) + "\n"
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    try:
        path = _write(f"plan_{digest}", source)
        function = _import(f"plan_{digest}", path).native
        function.compile(tuple(types[name] for name in needed))
    except Exception as err:  # noqa: BLE001 - any failure keeps the plan's Python
        return Native(why_not=f"Numba could not compile it ({type(err).__name__}: {err})")
    return Native(function, source, path.name, count)
