"""The expression program of a fused elementwise kernel.

A program is a tuple of `Instr`, one per absorbed graph node, in graph
order. Each names its arguments by reference: `x0` is input 0 of the fused
node, `t3` the result of instruction 3, `c1` the typed scalar constant 1.
Programs are frozen and hashable, so fused nodes compare for CSE and the
kernel caches key on them, and they print as readable expressions:

    relu(x0 + x1)
    t0 = x1 += (x0 - x1) * 0.1; t1 = x2 += (square(x0) - x2) * 0.001; ...
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from graphnet.graph import Op
from graphnet.ops.activations import LeakyRelu
from graphnet.ops.elementwise import (
    Add,
    Clip,
    Div,
    Equal,
    Greater,
    GreaterEqual,
    Less,
    LessEqual,
    LogicalAnd,
    LogicalOr,
    Mul,
    Neg,
    NotEqual,
    Pow,
    Sub,
)
from graphnet.ops.shape import Cast
from graphnet.ops.state import Assign, AssignAdd, Assignment, AssignSub


@dataclass(frozen=True)
class Instr:
    """One step of a fused program: `op` applied to `args`, giving `dtype`."""

    op: Op
    args: tuple
    dtype: np.dtype


def ref_index(ref: str) -> int:
    """`t12` -> 12."""
    return int(ref[1:])


def constant_value(constant: tuple):
    """(dtype name, Python value) -> the NumPy scalar it stands for."""
    dtype, value = constant
    return np.dtype(dtype).type(value)


def is_update(instr: Instr) -> bool:
    """True for an assignment: it writes input `args[0]` in place."""
    return isinstance(instr.op, Assignment)


def infer_types(program: tuple, constants: tuple, inputs: tuple) -> list:
    """(shape, dtype) of every instruction's result, from the input nodes,
    by the absorbed ops' own shape rules."""
    values = {f"c{i}": _typed((), np.dtype(c[0])) for i, c in enumerate(constants)}
    values.update((f"x{i}", node) for i, node in enumerate(inputs))
    types = []
    for i, instr in enumerate(program):
        shape, dtype = instr.op.infer(*(values[a] for a in instr.args))
        values[f"t{i}"] = _typed(tuple(shape), np.dtype(dtype))
        types.append((tuple(shape), np.dtype(dtype)))
    return types


def _typed(shape: tuple, dtype: np.dtype):
    """A stand-in node with just a shape and dtype, for the ops' shape rules."""
    return SimpleNamespace(shape=shape, dtype=dtype, ndim=len(shape), name="fused value",
                           op=None)


# ------------------------------------------------------------- printing

#: Infix ops: symbol and precedence (Python's: higher binds tighter).
INFIX = {Pow: ("**", 6), Mul: ("*", 5), Div: ("/", 5), Add: ("+", 4), Sub: ("-", 4),
         Less: ("<", 3), LessEqual: ("<=", 3), Greater: (">", 3), GreaterEqual: (">=", 3),
         Equal: ("==", 3), NotEqual: ("!=", 3), LogicalAnd: ("and", 2), LogicalOr: ("or", 1)}
UPDATES = {Assign: "=", AssignAdd: "+=", AssignSub: "-="}
ATOM = 9  # names, numbers, calls: never parenthesized


def render(program: tuple, constants: tuple, outputs: tuple, names) -> str:
    """The program as one line of `;`-separated statements. A result used
    once inlines into its user; outputs and shared results become `t3 = ...`;
    after an update `x1 += ...`, `x1` stands for the new value. `names(i)` is
    how input i prints (`x0`, or a node's short name)."""
    uses = {}
    for instr in program:
        for a in instr.args:
            uses[a] = uses.get(a, 0) + 1
    text, statements = {}, []
    for i, instr in enumerate(program):
        ref = f"t{i}"
        args = [_arg(a, text, constants, names) for a in instr.args]
        expr, precedence = _expression(instr, args)
        if is_update(instr):
            statements.append(expr)
            text[ref] = (names(ref_index(instr.args[0])), ATOM)
        elif i == len(program) - 1:
            statements.append(expr)
        elif ref in outputs or uses.get(ref, 0) > 1:
            statements.append(f"{ref} = {expr}")
            text[ref] = (ref, ATOM)
        else:
            text[ref] = (expr, precedence)
    return "; ".join(statements)


def _arg(ref: str, text: dict, constants: tuple, names) -> tuple:
    """(text, precedence) of an argument."""
    if ref[0] == "x":
        return names(ref_index(ref)), ATOM
    if ref[0] == "c":
        value = str(constant_value(constants[ref_index(ref)]))
        return value, 7 if value.startswith("-") else ATOM
    return text[ref]


def _expression(instr: Instr, args: list) -> tuple:
    """(text, precedence) of one instruction over its arguments' texts."""
    op = instr.op
    if type(op) in UPDATES:
        return f"{args[0][0]} {UPDATES[type(op)]} {args[1][0]}", 0
    if type(op) in INFIX:
        symbol, precedence = INFIX[type(op)]
        left_needs = precedence + (1 if isinstance(op, Pow) else 0)
        right_needs = precedence + (0 if isinstance(op, Pow) else 1)
        return (f"{_wrap(args[0], left_needs)} {symbol} {_wrap(args[1], right_needs)}",
                precedence)
    if isinstance(op, Neg):
        return f"-{_wrap(args[0], 7)}", 7
    texts = [a[0] for a in args]
    if isinstance(op, Cast):
        return f"{op.dtype.name}({texts[0]})", ATOM
    if isinstance(op, LeakyRelu):
        texts.append(str(op.alpha))
    if isinstance(op, Clip):
        texts += [str(op.low), str(op.high)]
    return f"{op.kind}({', '.join(texts)})", ATOM


def _wrap(arg: tuple, needs: int) -> str:
    """The argument's text, in parentheses if it binds looser than `needs`."""
    text, precedence = arg
    return text if precedence >= needs else f"({text})"
