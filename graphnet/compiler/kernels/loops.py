"""Python source of one Numba loop per fused program (no Numba needed here).

The loop runs over the group's static shape, flattened. Inputs broadcast in
one of four ways, found by splitting the shape into rows x columns:

    full     every element            x0[i]
    row      one value per column     x1[c]   (a bias over a batch)
    column   one value per row        x2[r]
    scalar   one value                x3[0], read once before the loop

With no row or column input the loop is a single `for i in range(n)`.
Arrays arrive in their own shapes and are flattened inside (`ravel`, a view
of a C-contiguous array); scalars arrive as one-element arrays.
Every scalar is typed: float32 stays float32 (`np.float32(0.1)`, never a
Python float), which is what lets LLVM vectorize the loop (DESIGN.md,
"Measured here"). For the same reason float32 exp and erf call
graphnet/float32_math.py's versions, whose source the kernel carries,
instead of libm's. Each op's numba form lives in FORMS, one row per op.
"""

from __future__ import annotations

import numpy as np

from graphnet import float32_math
from graphnet.compiler.kernels.program import constant_value, is_update, ref_index, render
from graphnet.ops.activations import LeakyRelu, Relu, Sigmoid, Softplus, Tanh
from graphnet.ops.elementwise import (
    Abs,
    Add,
    Clip,
    Cos,
    Div,
    Equal,
    Erf,
    Exp,
    Floor,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    Log,
    Log1p,
    LogicalAnd,
    LogicalNot,
    LogicalOr,
    Maximum,
    Minimum,
    Mul,
    Neg,
    NotEqual,
    Pow,
    Sign,
    Sin,
    Sqrt,
    Square,
    Sub,
    Where,
)
from graphnet.ops.shape import Cast
from graphnet.ops.state import Assign, AssignAdd, AssignSub

#: Numba's fast-math flags for the loops: all but "nnan" and "ninf", so NaN
#: and inf behave as in NumPy (relu(nan) is nan, clip keeps inf), and
#: "reassoc", which let LLVM undo float32_math's order of operations (exp
#: went from 1 to 4.6 ulp). Measured on the 110k-parameter Adam loop: 36 us
#: with these, 31 us with fastmath=True, 36 us with none (on a later day 43
#: us with "reassoc" and without); what vectorizes the loop is float32
#: scalars and error_model="numpy".
FASTMATH = ("afn", "arcp", "contract", "nsz")

#: dtypes the loops handle (Numba has no float16 arithmetic).
DTYPES = {"float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
          "uint32", "uint64", "bool"}


class Unsupported(Exception):
    """The program has something the loop does not do; the reason says what."""


# ---------------------------------------------------------------- forms
# Each form takes the instruction, its arguments as (text, dtype) and a
# function `k(dtype, value)` naming a typed module-level constant; it
# returns (statements before, expression). Arguments arrive unconverted;
# `to(arg, dtype)` converts explicitly where NumPy would.


def to(arg: tuple, dtype: np.dtype) -> str:
    """Argument text converted to `dtype` (unchanged when it has it)."""
    text, have = arg
    if have == dtype:
        return text
    if dtype == np.bool_:
        return f"({text} != 0)"
    return f"np.{dtype.name}({text})"


def _binary(symbol):
    def form(instr, args, k):
        a, b = (to(x, instr.dtype) for x in args)
        return [], f"{a} {symbol} {b}"
    return form


def _compare(symbol):
    def form(instr, args, k):
        common = np.result_type(args[0][1], args[1][1])
        a, b = (to(x, common) for x in args)
        return [], f"{a} {symbol} {b}"
    return form


def _call(function):
    def form(instr, args, k):
        return [], f"{function}({to(args[0], instr.dtype)})"
    return form


def _math(function):
    def form(instr, args, k):
        return [], f"{_math_name(function, instr.dtype)}({to(args[0], instr.dtype)})"
    return form


def _math_name(function: str, dtype: np.dtype) -> str:
    """`exp_f32` for float32 (float32_math's, which vectorizes), else `math.exp`."""
    return f"{function}_f32" if dtype == np.float32 else f"math.{function}"


def _pow(instr, args, k):
    a, b = (to(x, instr.dtype) for x in args)
    return [], f"{a} ** {b}"


def _extremum(keep):
    # NumPy's maximum/minimum return NaN when either argument is NaN.
    def form(instr, args, k):
        a, b = (to(x, instr.dtype) for x in args)
        return [], f"{a} if ({a} {keep} {b} or {a} != {a}) else {b}"
    return form


def _relu(instr, args, k):
    a, zero = args[0][0], k(instr.dtype, 0)
    return [], f"{zero} if {a} < {zero} else {a}"  # np.maximum(x, 0): nan stays nan


def _leaky_relu(instr, args, k):
    a = args[0][0]
    return [], f"{a} if {a} > {k(instr.dtype, 0)} else {a} * {k(instr.dtype, instr.op.alpha)}"


def _sigmoid(instr, args, k):
    # As Sigmoid.forward: exp of -|x| only, so nothing overflows.
    a, e = args[0][0], f"e_{instr.name}"
    one, zero = k(instr.dtype, 1), k(instr.dtype, 0)
    return ([f"{e} = {_math_name('exp', instr.dtype)}(-abs({a}))"],
            f"{one} / ({one} + {e}) if {a} >= {zero} else {e} / ({one} + {e})")


def _softplus(instr, args, k):
    # As np.logaddexp(0, x): max(x, 0) + log1p(exp(-|x|)). libm's exp, since
    # log1p keeps the loop scalar anyway: 16 ns per element, 20 with exp_f32.
    a, zero = args[0][0], k(instr.dtype, 0)
    return [], f"({a} if {a} > {zero} else {zero}) + math.log1p(math.exp(-abs({a})))"


def _clip(instr, args, k):
    a, low, high = args[0][0], k(instr.dtype, instr.op.low), k(instr.dtype, instr.op.high)
    return [], f"{low} if {a} < {low} else ({high} if {a} > {high} else {a})"


def _where(instr, args, k):
    cond = to(args[0], np.dtype(bool))
    a, b = (to(x, instr.dtype) for x in args[1:])
    return [], f"{a} if {cond} else {b}"


def _cast(instr, args, k):
    return [], to(args[0], instr.dtype)


def _update(symbol):
    # Assignments compute in the promoted type and store in the variable's,
    # as np.add(target, value, out=target, casting="same_kind") does.
    def form(instr, args, k):
        if symbol is None:
            return [], to(args[1], instr.dtype)
        common = np.result_type(args[0][1], args[1][1])
        value = f"{to(args[0], common)} {symbol} {to(args[1], common)}"
        return [], to((f"({value})", common), instr.dtype)
    return form


FORMS = {
    Add: _binary("+"),                 # a + b
    Sub: _binary("-"),                 # a - b
    Mul: _binary("*"),                 # a * b
    Div: _binary("/"),                 # a / b in the result's float type
    Pow: _pow,                         # a ** b
    Neg: lambda i, a, k: ([], f"-{a[0][0]}"),
    Maximum: _extremum(">="),          # NaN-propagating, as NumPy
    Minimum: _extremum("<="),
    Exp: _math("exp"),                 # float32: float32_math.exp_f32
    Log: _call("math.log"),
    Log1p: _call("math.log1p"),
    Sqrt: _call("math.sqrt"),
    Cos: _call("math.cos"),
    Sin: _call("math.sin"),
    Tanh: _call("math.tanh"),
    Erf: _math("erf"),                 # float32: float32_math.erf_f32
    Floor: _call("np.floor"),
    Square: lambda i, a, k: ([], f"{a[0][0]} * {a[0][0]}"),
    Abs: _call("abs"),
    Sign: _call("np.sign"),
    Relu: _relu,                       # max(x, 0)
    LeakyRelu: _leaky_relu,            # x if x > 0 else alpha * x
    Sigmoid: _sigmoid,                 # 1 / (1 + exp(-x)), split by sign
    Softplus: _softplus,               # log(1 + exp(x)), stable
    Clip: _clip,
    Less: _compare("<"),
    LessEqual: _compare("<="),
    Greater: _compare(">"),
    GreaterEqual: _compare(">="),
    Equal: _compare("=="),
    NotEqual: _compare("!="),
    LogicalAnd: lambda i, a, k: ([], f"{a[0][0]} and {a[1][0]}"),
    LogicalOr: lambda i, a, k: ([], f"{a[0][0]} or {a[1][0]}"),
    LogicalNot: lambda i, a, k: ([], f"not {a[0][0]}"),
    Where: _where,                     # a if cond else b
    Cast: _cast,
    Assign: _update(None),             # x = value
    AssignAdd: _update("+"),           # x += value
    AssignSub: _update("-"),           # x -= value
}


# --------------------------------------------------------------- layout


def split(shape: tuple, input_shapes: tuple) -> tuple:
    """(rows, cols, pattern per input) for a loop over `shape`, where each
    input is "full", "row", "column" or "scalar"; Unsupported otherwise."""
    if any(d is None for d in shape):
        raise Unsupported("sizes are known only at run time")
    for k in range(len(shape) + 1):
        patterns = [_pattern(s, shape, k) for s in input_shapes]
        if None not in patterns:
            rows = int(np.prod(shape[:k], dtype=np.int64))
            return rows, int(np.prod(shape[k:], dtype=np.int64)), tuple(patterns)
    raise Unsupported("inputs broadcast in a way the loop does not index")


def _pattern(shape: tuple, domain: tuple, k: int):
    if any(d is None for d in shape):
        return None
    if int(np.prod(shape, dtype=np.int64)) == 1:
        return "scalar"
    padded = (1,) * (len(domain) - len(shape)) + tuple(shape)
    if padded == domain:
        return "full"
    ones = lambda dims: all(d == 1 for d in dims)  # noqa: E731
    if ones(padded[:k]) and padded[k:] == domain[k:]:
        return "row"
    if padded[:k] == domain[:k] and ones(padded[k:]):
        return "column"
    return None


# --------------------------------------------------------------- source


def loop_source(op) -> tuple:
    """(source, rows, cols, patterns) of a module whose `kernel(rows, cols,
    x0, ..., o0, ...)` runs `op`'s program; Unsupported when it cannot."""
    dtypes = [np.dtype(d) for d, _ in op.signature]
    for d in dtypes + [i.dtype for i in op.program]:
        if d.name not in DTYPES:
            raise Unsupported(f"no loop for {d.name}")
    for instr in op.program:
        if type(instr.op) not in FORMS:
            raise Unsupported(f"no loop form for {instr.op.kind}")
    rows, cols, patterns = split(op.shape, tuple(s for _, s in op.signature))
    nested = any(p in ("row", "column") for p in patterns)
    constants = _Constants()
    names = [constants.name(np.dtype(d), v) for d, v in op.constants]
    index = {"full": "i", "row": "c", "column": "r"}
    before, body = [], []
    values = {}
    for i, (pattern, dtype) in enumerate(zip(patterns, dtypes, strict=True)):
        if pattern == "scalar":
            before.append(f"a{i} = x{i}[0]")
        elif any(f"x{i}" in instr.args for instr in op.program):
            before.append(f"x{i} = x{i}.ravel()")
            body.append(f"a{i} = x{i}[{index[pattern]}]")
        values[f"x{i}"] = (f"a{i}", dtype)
    for i, c in enumerate(op.constants):
        values[f"c{i}"] = (names[i], np.dtype(c[0]))
    stores = []
    outputs = [r for r in op.outputs if not is_update(op.program[ref_index(r)])]
    for i, instr in enumerate(op.program):
        lines, expr = FORMS[type(instr.op)](_Named(instr, f"t{i}"),
                                            [values[a] for a in instr.args], constants.name)
        body += lines + [f"t{i} = {expr}"]
        values[f"t{i}"] = (f"t{i}", instr.dtype)
        if is_update(instr):
            stores.append(f"{instr.args[0]}[i] = t{i}")
    stores += [f"o{n}[i] = {ref}" for n, ref in enumerate(outputs)]
    before += [f"o{n} = o{n}.ravel()" for n in range(len(outputs))]
    params = ["rows", "cols"] + [f"x{i}" for i in range(len(dtypes))] + \
        [f"o{n}" for n in range(len(outputs))]
    if nested:
        loop = ["for r in range(rows):", "    for c in range(cols):",
                "        i = r * cols + c"]
        indent = "        "
    else:
        loop = ["for i in range(rows * cols):"]
        indent = "    "
    header = _header(op, patterns, dtypes)
    if any("_f32(" in line for line in body):  # the kernel calls float32_math's functions
        header += ["", float32_math.SOURCE.rstrip(), "", ""]
    lines = header + constants.lines() + [
        "", "",
        f"@numba.njit(fastmath={{{', '.join(map(repr, FASTMATH))}}}, error_model=\"numpy\", "
        "cache=True)",
        f"def kernel({', '.join(params)}):"]
    lines += [f"    {s}" for s in before + loop]
    lines += [f"    {indent}{s}" for s in body + stores]
    return "\n".join(lines) + "\n", rows, cols, patterns


def _header(op, patterns, dtypes) -> list:
    described = ", ".join(f"x{i} {d.name} {p}" for i, (p, d) in
                          enumerate(zip(patterns, dtypes, strict=True)))
    expression = render(op.program, op.constants, op.outputs, lambda i: f"x{i}")
    return [f'"""graphnet fused kernel, generated: {expression}', "",
            f"Inputs: {described}.", '"""', "", "import math", "", "import numba",
            "import numpy as np", ""]


class _Named:
    """An instruction with the name of its result, for forms' helper names."""

    def __init__(self, instr, name):
        self.op, self.args, self.dtype, self.name = instr.op, instr.args, instr.dtype, name


class _Constants:
    """Typed module-level constants: `k0 = np.float32(0.1)`."""

    def __init__(self):
        self.scalars: dict = {}  # (dtype, repr) -> (name, NumPy scalar)

    def name(self, dtype: np.dtype, value) -> str:
        scalar = constant_value((np.dtype(dtype).name, value))
        key = (scalar.dtype.name, repr(scalar.item()))  # repr tells -0.0 from 0.0
        if key not in self.scalars:
            self.scalars[key] = (f"k{len(self.scalars)}", scalar)
        return self.scalars[key][0]

    def lines(self) -> list:
        return [f"{name} = {_typed_literal(scalar)}" for name, scalar in self.scalars.values()]


def _typed_literal(scalar) -> str:
    """`np.float32(0.1)`: source text that gives back exactly `scalar`."""
    kind = scalar.dtype.kind
    if kind == "b":
        return f"np.bool_({bool(scalar)})"
    if kind == "f" and not np.isfinite(scalar):
        return f'np.{scalar.dtype.name}("{scalar!s}")'
    return f"np.{scalar.dtype.name}({scalar!s})"  # str() of a NumPy float round-trips
