"""Which backend runs a fused program faster: a cost rule from measurements.

A Numba loop does the whole program in one pass with one call, and LLVM
vectorizes arithmetic, comparisons and square roots. But without Intel's
SVML, the loop calls libm once per element for exp, log, tanh and the like,
while NumPy runs them as SIMD ufuncs: tanh is 40x slower in the loop. So a
program goes to Numba only when its estimated time there is lower.

Nanoseconds per float32 element, measured on the 2-core development machine
(1M elements, Numba 0.68 without SVML, NumPy 2.4, SciPy's erf; see
benchmarks/fusion.py): in the loop, and as the op's NumPy kernel.
"""

from __future__ import annotations

from graphnet.ops.activations import LeakyRelu, Sigmoid, Softplus, Tanh
from graphnet.ops.elementwise import Cos, Erf, Exp, Log, Log1p, Sin

#: op -> (ns per element in a Numba loop, ns per element as NumPy's kernel)
PER_ELEMENT = {
    Exp: (2.4, 0.45),
    Log: (2.6, 0.4),
    Log1p: (10.9, 0.45),
    Tanh: (16.4, 0.4),
    Sin: (6.7, 0.5),
    Cos: (6.7, 0.55),
    Erf: (10.4, 15.0),         # scipy.special.erf is no faster than libm's
    Sigmoid: (3.4, 14.9),      # NumPy's stable form takes eight passes
    Softplus: (16.0, 22.1),
    LeakyRelu: (0.2, 4.6),
}
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
    loop = LOOP_CALL_US + size * sum(_cost(i.op)[0] for i in op.program) / 1000
    numpy = sum(NUMPY_CALL_US + size * _cost(i.op)[1] / 1000 for i in op.program)
    return loop, numpy


def _cost(op) -> tuple:
    if type(op) in PER_ELEMENT and not _svml():
        return PER_ELEMENT[type(op)]
    return OTHER


def _svml() -> bool:
    """True when Numba vectorizes math functions with Intel's SVML."""
    import numba
    return bool(numba.config.USING_SVML)


def slower_as_loop(op) -> str | None:
    """Why the NumPy backend should run `op`, or None when the loop is faster."""
    loop, numpy = estimate(op)
    if loop <= numpy:
        return None
    slow = sorted({i.op.kind for i in op.program if type(i.op) in PER_ELEMENT})
    return (f"{', '.join(slow)} run faster as NumPy ufuncs (estimated {numpy:,.0f} us "
            f"against {loop:,.0f} us as a loop)")
