"""Which backend runs a fused program faster: a cost rule from measurements.

A Numba loop does the whole program in one pass with one call, and LLVM
vectorizes arithmetic, comparisons and square roots. But without Intel's
SVML, the loop calls libm once per element for log, tanh and the like,
while NumPy runs them as SIMD ufuncs: tanh is 40x slower in the loop. So a
program goes to Numba only when its estimated time there is lower. float32
exp and erf (and sigmoid, made of exp) are the exception: the loop computes
them with graphnet/float32_math.py's arithmetic, which vectorizes.

Nanoseconds per element, measured on the 2-core development machine (1M
elements, Numba 0.68 without SVML, NumPy 2.4; `python -m benchmarks.fusion
--costs`): in the loop, and as the op's NumPy kernel.
"""

from __future__ import annotations

import numpy as np

from graphnet.ops.activations import LeakyRelu, Sigmoid, Softplus, Tanh
from graphnet.ops.elementwise import Cos, Erf, Exp, Log, Log1p, Sin

#: op -> (ns per element in a Numba loop, ns per element as NumPy's kernel), float32
PER_ELEMENT = {
    Exp: (0.3, 0.7),           # float32_math.exp_f32 in the loop
    Log: (2.4, 0.6),
    Log1p: (10.5, 0.65),
    Tanh: (17.7, 0.5),
    Sin: (7.8, 0.85),
    Cos: (7.7, 0.9),
    Erf: (0.5, 8.7),           # float32_math's formulas: one loop, or ~40 NumPy passes
    Sigmoid: (0.35, 6.4),      # NumPy's stable form takes several passes
    Softplus: (14.9, 20.8),
    LeakyRelu: (0.2, 5.2),
}
#: In float64 the loop calls libm where float32 has float32_math: ns per element.
LIBM_FLOAT64 = {Exp: 3.9, Erf: 11.8, Sigmoid: 4.0}
#: Every other op: vectorized in the loop; one pass over memory in NumPy.
OTHER = (0.2, 0.4)
#: Fixed cost of one call: the loop's wrapper, and each NumPy kernel.
LOOP_CALL_US, NUMPY_CALL_US = 1.5, 1.0


def estimate(op) -> tuple:
    """(microseconds as a Numba loop, microseconds as NumPy kernels) for
    one run of fused op `op` (its shape must be static)."""
    size = 1
    for d in op.shape:
        size *= d
    loop = LOOP_CALL_US + size * sum(_cost(i)[0] for i in op.program) / 1000
    numpy = sum(NUMPY_CALL_US + size * _cost(i)[1] / 1000 for i in op.program)
    return loop, numpy


def _cost(instr) -> tuple:
    """(loop, NumPy) ns per element of one program instruction."""
    kind = type(instr.op)
    if kind not in PER_ELEMENT or _svml():
        return OTHER
    loop, numpy = PER_ELEMENT[kind]
    if kind in LIBM_FLOAT64 and instr.dtype != np.float32:
        loop = LIBM_FLOAT64[kind]
    return loop, numpy


def _svml() -> bool:
    """True when Numba vectorizes math functions with Intel's SVML."""
    import numba
    return bool(numba.config.USING_SVML)


def slower_as_loop(op) -> str | None:
    """Why the NumPy backend should run `op`, or None when the loop is faster."""
    loop, numpy = estimate(op)
    if loop <= numpy:
        return None
    slow = sorted({i.op.kind for i in op.program if _cost(i)[0] > _cost(i)[1]})
    return (f"{', '.join(slow)} run faster as NumPy ufuncs (estimated {numpy:,.0f} us "
            f"against {loop:,.0f} us as a loop)")
