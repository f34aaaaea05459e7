"""Ops that only the compiler inserts into graphs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from graphnet.compiler.kernels import make_kernel
from graphnet.compiler.kernels.program import infer_types, is_update, ref_index, render
from graphnet.errors import FeedError, ShapeError
from graphnet.graph import Op
from graphnet.ops.linalg import Matmul
from graphnet.shapes import broadcast_shapes, check_value_shape, format_shape


@dataclass(frozen=True)
class SpecifyShape(Op):
    """The fed value of placeholder `feed`, promised to have `shape`.

    `specialize` puts one after each fed placeholder, so every node below
    knows its sizes; the kernel keeps the promise, refusing other shapes
    (a plan is compiled per feed-shape signature; Session.run compiles one
    per signature itself).
    """

    shape: tuple
    feed: str

    view = True  # its value is its input's

    def infer(self, x):
        if not check_value_shape(self.shape, x.shape):
            raise ShapeError(f"{format_shape(self.shape)} does not fit "
                             f"{format_shape(x.shape)}")
        return self.shape, x.dtype

    def forward(self, x):
        if x.shape != self.shape:
            raise FeedError(
                f"this plan was compiled for placeholder '{self.feed}' of shape "
                f"{format_shape(self.shape)}; fed {format_shape(x.shape)}. Compile "
                "again for the new shape, or use Session.run, which compiles one plan "
                "per feed shape")
        return x

    def grad(self, node, g):
        return [g]


class ProgramOp(Op):
    """What Fused and ArenaUpdate share: a program of elementwise
    instructions (kernels/program.py) that a kernel runs on `backend`,
    made by the compiler after differentiation."""

    @property
    def kernel_kind(self) -> str:
        return "numba" if self.backend == "numba" else "fused-numpy"

    def forward(self, *values, out=None):
        return self.kernel()(*values, out=out)

    def grad(self, node, g):
        raise NotImplementedError(f"{self.kind} kernels are made after differentiation; "
                                  "take gradients of the graph before compiling it")


@dataclass(frozen=True)
class Fused(ProgramOp):
    """Elementwise nodes run as one kernel: `fuse_elementwise` makes these.

    `program` holds one `Instr` per absorbed node (see kernels/program.py);
    all of them have the static `shape` of the group, and the inputs
    (`signature`: dtype name and shape of each) broadcast to it. The values
    named in `outputs` leave the kernel: one is the node's value, several
    make a tuple that `FusedOutput` nodes take apart, none (a pure update)
    gives None. Assignments in the program update their target input in
    place, so a fused optimizer step is stateful and `targets` lists every
    variable it writes. `backend` picks the kernel: "numpy" (ufuncs with
    out=, in cache-sized chunks) or "numba" (one compiled loop).
    """

    program: tuple
    constants: tuple
    outputs: tuple
    signature: tuple
    shape: tuple
    backend: str = "numpy"
    #: The nodes this kernel stands for (with inputs rewired), for diagrams.
    absorbed: tuple = field(default=(), compare=False, repr=False)

    writes_out = True

    @property
    def kind(self) -> str:
        return "fused"

    @property
    def stateful(self) -> bool:
        return any(is_update(instr) for instr in self.program)

    def label(self) -> str:
        """`Fused{relu(x0 + x1)}`."""
        return f"Fused{{{self.expression()}}}"

    def expression(self, names=None) -> str:
        """The program as text; `names(i)` prints input i (default `x{i}`)."""
        return render(self.program, self.constants, self.outputs, names or (lambda i: f"x{i}"))

    def describe(self, node) -> str:
        """The program with the inputs' short names: `relu(matmul + bias)`."""
        return self.expression(lambda i: node.inputs[i].name.rsplit("/", 1)[-1])

    def output_types(self) -> list:
        """(shape, dtype) of each output."""
        return [(self.shape, self.program[ref_index(ref)].dtype) for ref in self.outputs]

    def targets(self, node) -> tuple:
        return tuple(node.inputs[ref_index(i.args[0])] for i in self.program if is_update(i))

    def infer(self, *inputs):
        found = tuple((i.dtype.name, i.shape) for i in inputs)
        if found != self.signature:
            raise ShapeError(f"compiled for inputs {self.signature}, given {found}")
        types = infer_types(self.program, self.constants, inputs)
        for (shape, dtype), instr in zip(types, self.program, strict=True):
            if shape != self.shape or dtype != instr.dtype:
                raise ShapeError(f"{instr.op.kind} gives {format_shape(shape)} {dtype.name}, "
                                 f"not {format_shape(self.shape)} {instr.dtype.name}")
        outputs = self.output_types()
        return outputs[0] if len(outputs) == 1 else (None, None)

    def kernel(self, backend: str = "numpy"):
        """A fresh kernel on the op's own backend: each plan step owns its
        buffers (kernels/__init__.py)."""
        return make_kernel(self)


@dataclass(frozen=True)
class FusedOutput(Op):
    """Output `index` of a fused kernel that has several."""

    index: int

    def infer(self, fused):
        return fused.op.output_types()[self.index]

    def forward(self, values):
        return values[self.index]


@dataclass(frozen=True)
class MatmulBias(Op):
    """x @ w + b in one step: the product goes straight into the output
    buffer and the bias is added there in place (the dense layer's pattern)."""

    writes_out = True

    def infer(self, x, w, b):
        shape, dtype = Matmul().infer(x, w)
        if broadcast_shapes(b.shape, shape) != shape:
            raise ShapeError(f"bias {format_shape(b.shape)} does not broadcast to "
                             f"{format_shape(shape)}")
        return shape, np.result_type(dtype, b.dtype)

    def forward(self, x, w, b, out=None):
        out = np.matmul(x, w, out=out)
        out += b
        return out


@dataclass(frozen=True)
class Contiguous(Op):
    """A copy of x in C order, into a planned buffer: what NumPy would
    allocate for a reshape of a transposed view, made once."""

    writes_out = True

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x, out=None):
        if out is None:
            return np.array(x, order="C", copy=True)
        np.copyto(out, x)
        return out

    def grad(self, node, g):
        return [g]


@dataclass(frozen=True)
class ArenaUpdate(ProgramOp):
    """One optimizer program run over many variables at once: `arena_updates`
    makes these from per-variable update kernels that share their program.

    `program` and `constants` are those of one variable's `Fused` update.
    `spec` says, for each program input `x<p>`, (role, dtype name, shape):
    "variable" and "array" inputs come once per variable (a segment, of the
    shape in `shapes`), "shared" ones (a learning rate, a bias correction)
    once for all, of `shape`. The node's inputs are position by position:
    the segments of x0, then x1's, and so on.

    At run time the variables of each "variable" input are expected to lie
    back to back in one arena (Session lays them out so, `runs()` says
    which), and the "array" inputs (gradients) in `out`, a buffer with one
    row per "array" input whose segments the memory planner hands to the
    gradients' producers: then the whole program is one pass over flat
    arrays. Otherwise the kernel copies what is missing, or runs each
    variable on its own (compiler/kernels/arena.py).
    """

    program: tuple
    constants: tuple
    spec: tuple
    shapes: tuple
    backend: str = "numpy"
    #: The nodes the kernel stands for (with inputs rewired), for diagrams and guard.
    absorbed: tuple = field(default=(), compare=False, repr=False)

    stateful = True

    @property
    def kind(self) -> str:
        return "arena_update"

    @property
    def size(self) -> int:
        """Elements per segmented input: the variables' sizes added up."""
        return sum(int(np.prod(s, dtype=np.int64)) for s in self.shapes)

    def slots(self) -> list:
        """(role, first input index, count) of each program input."""
        found, index = [], 0
        for role, _, _ in self.spec:
            count = 1 if role == "shared" else len(self.shapes)
            found.append((role, index, count))
            index += count
        return found

    def arrays(self) -> list:
        """The program inputs that have the "array" role, in order (rows of `out`)."""
        return [p for p, (role, _, _) in enumerate(self.spec) if role == "array"]

    def runs(self, node) -> list:
        """The variables each "variable" input reads, as tuples that the
        Session lays out contiguously (one arena each)."""
        return [tuple(node.inputs[start:start + count])
                for role, start, count in self.slots() if role == "variable"]

    def targets(self, node) -> tuple:
        slots = self.slots()
        positions = sorted({ref_index(i.args[0]) for i in self.program if is_update(i)})
        return tuple(n for p in positions
                     for n in node.inputs[slots[p][1]:slots[p][1] + slots[p][2]])

    def infer(self, *inputs):
        slots = self.slots()
        expected = sum(count for _, _, count in slots)
        if len(inputs) != expected:
            raise ShapeError(f"expects {expected} inputs, given {len(inputs)}")
        for (role, dtype, shape), (_, start, count) in zip(self.spec, slots, strict=True):
            wanted = [shape] if role == "shared" else list(self.shapes)
            for node, want in zip(inputs[start:start + count], wanted, strict=True):
                if node.dtype.name != dtype or tuple(node.shape) != tuple(want):
                    raise ShapeError(f"compiled for {dtype} {format_shape(tuple(want))}, "
                                     f"given {node.dtype.name} {format_shape(node.shape)} "
                                     f"'{node.name}'")
        return None, None

    def label(self) -> str:
        return f"ArenaUpdate{{{len(self.shapes)} x {self.expression()}}}"

    def expression(self, names=None) -> str:
        return render(self.program, self.constants, (), names or (lambda i: f"x{i}"))

    def describe(self, node) -> str:
        """`6 variables, 109,386 float32: adam_m += ...` in the first variable's names."""
        slots = self.slots()
        first = self.expression(lambda p: node.inputs[slots[p][1]].name.rsplit("/", 1)[-1])
        dtype = self.spec[0][1]
        return f"{len(self.shapes)} variables, {self.size:,} {dtype}: {first}"

    def kernel(self, backend: str = "numpy", placed: tuple = ()):
        """A fresh kernel; `placed` names the (array input, segment) pairs
        that the memory planner lets their producers write into `out`."""
        from graphnet.compiler.kernels.arena import ArenaKernel
        return ArenaKernel(self, placed)
