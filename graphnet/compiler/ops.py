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


@dataclass(frozen=True)
class Fused(Op):
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
    def kernel_kind(self) -> str:
        return "numba" if self.backend == "numba" else "fused-numpy"

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

    def forward(self, *values, out=None):
        return self.kernel()(*values, out=out)

    def grad(self, node, g):
        raise NotImplementedError("fused kernels are made after differentiation; "
                                  "take gradients of the graph before compiling it")


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
