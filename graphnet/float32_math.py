"""float32 exp and erf from arithmetic alone, so that compiled loops vectorize.

Numba without Intel's SVML calls libm's scalar expf and erff once per
element, and a loop that calls them runs one element at a time: 2.4 and 10
ns per element against 0.2 for arithmetic (compiler/kernels/cost.py).
`exp_f32` and `erf_f32` use only +, -, *, comparisons that become selects,
floor and integer bit operations, so LLVM runs a loop that calls them 16
lanes at a time (AVX-512): 0.3 and 0.5 ns per element. The fused-kernel
loops (compiler/kernels/loops.py) copy `SOURCE`, these functions and their
constants, into every kernel that calls them; NumPy's float32 erf runs the
same formulas as array passes (graphnet/ops/elementwise.py); and the functions also
run as plain Python on NumPy float32 scalars.

    exp(x) = 2**k exp(r)   x = k ln 2 + r, |r| <= ln(2) / 2; exp(r) by a
                           polynomial; 2**k added to its exponent bits, the
                           part that would leave the normal range as one
                           multiplication (so subnormal results round once);
    erf(x) = x + x P(x**2)                     for |x| < 0.875,
             sign(x) (1 - exp(-x**2) R(|x|))    for 0.875 <= |x| <= 4
                                               (beyond, erf rounds to 1).

Checked against float64 math.exp and math.erf for every float32 input: in
the loops exp is within 1.01 ulp, erf within 1.16 ulp and 6.9e-8; the NumPy
passes (no fused multiply-add) give erf within 1.53 ulp and 9.1e-8. NaN
propagates, exp overflows to inf and underflows through subnormals to 0,
erf(+-inf) = +-1. (tests/compiler/test_numba_backend.py checks a dense grid.)

The coefficients are minimax fits computed in float64 (Lawson's iteratively
reweighted least squares on 2,000 Chebyshev nodes) and rounded to float32;
`fit_coefficients()` in tests/test_float32_math.py derives them again.
"""

from __future__ import annotations

import inspect

import numpy as np

f32 = np.float32
ZERO, HALF, ONE = f32(0), f32(0.5), f32(1)

#: exp(r) = 1 + r + r**2 q(r) for |r| <= 0.35: q's coefficients, lowest power
#: first (relative error of exp 3.3e-9 before rounding).
EXP_Q = (f32(0.49999994), f32(0.16666515), f32(0.041668456), f32(0.00836941),
         f32(0.0013813161))
LOG2_E = f32(1.442695)
#: ln 2 = LN2_HIGH + LN2_LOW; LN2_HIGH has 16 significant bits, so k * LN2_HIGH
#: is exact for the |k| <= 150 that occur.
LN2_HIGH, LN2_LOW = f32(0.69314575), f32(1.4286068e-06)
#: exp(x) is inf above 88.72 and rounds to 0 below -103.98 in float32.
EXP_MAX, EXP_MIN = f32(89), f32(-104)

#: erf(x) = x + x P(x**2) for |x| < ERF_SPLIT: P's coefficients (relative error
#: 8.5e-9; P(0) = 2 / sqrt(pi) - 1, whose rounding costs less than that of 2 / sqrt(pi)).
ERF_SMALL = (f32(0.12837915), f32(-0.3761255), f32(0.11282456), f32(-0.026791476),
             f32(0.0050321976), f32(-0.00062033307))
#: erfc(a) = exp(-a**2) R(a - ERF_MID) for ERF_SPLIT <= a <= ERF_MAX: R's
#: coefficients (absolute error of erfc 6.0e-9).
ERF_LARGE = (f32(0.21555468), f32(-0.077553794), f32(0.026449718), f32(-0.00886846),
             f32(0.0024732652), f32(-0.00065097486), f32(0.00077452755), f32(0.0003506915),
             f32(0.00014277916))
#: erfc(4) = 1.5e-8 is below half a float32 ulp of 1: erf(x) rounds to 1 from 3.92 on.
ERF_SPLIT, ERF_MID, ERF_MAX = f32(0.875), f32(2.4375), f32(4)


def poly(x, coefficients):
    """coefficients[0] + coefficients[1] x + coefficients[2] x**2 + ... (Horner)."""
    p = coefficients[-1]
    for i in range(len(coefficients) - 2, -1, -1):
        p = p * x + coefficients[i]
    return p


def exp_f32(x):
    """e**x of a float32."""
    x = EXP_MAX if x > EXP_MAX else x   # NaN passes both comparisons unchanged
    x = EXP_MIN if x < EXP_MIN else x
    k = np.floor(x * LOG2_E + HALF)     # x = k ln 2 + r
    r = (x - k * LN2_HIGH) - k * LN2_LOW
    p = ONE + (r + r * r * poly(r, EXP_Q))
    # p 2**k: add m to p's exponent bits, as far as p stays a normal float,
    # then multiply by 2**(k - m), which rounds once even to a subnormal.
    n = np.int32(k)                     # -150 ... 128
    m = min(max(n, -125), 127)
    scaled = np.int32(np.float32(p).view(np.int32) + (m << 23)).view(np.float32)
    result = scaled * np.int32((n - m + 127) << 23).view(np.float32)
    return result if x == x else x      # NaN, which the bit operations would lose


def erf_f32(x):
    """erf of a float32: both forms computed, one selected (a branch would
    stop the loop from vectorizing)."""
    small = x + x * poly(x * x, ERF_SMALL)
    a = abs(x)
    a = ERF_MAX if a > ERF_MAX else a
    large = ONE - exp_f32(-(a * a)) * poly(a - ERF_MID, ERF_LARGE)
    large = -large if x < ZERO else large
    return small if abs(x) < ERF_SPLIT else large


def _source() -> str:
    """This module's constants and functions as Numba source. The functions
    are inlined into the loop that calls them (LLVM left erf a call, which
    stopped vectorization) and so compile with the loop's fast-math flags:
    contraction into fused multiply-adds helps, but reassociation must stay
    off (it could merge the two halves of ln 2, or scale before rounding)."""
    constants = [f"{name} = {_literal(value)}" for name, value in globals().items()
                 if name.isupper()]
    decorator = '@numba.njit(inline="always")'
    functions = [f"{decorator}\n{inspect.getsource(f)}" for f in (poly, exp_f32, erf_f32)]
    title = "# float32 exp and erf from arithmetic, which vectorizes: graphnet/float32_math.py"
    return "\n".join([title, *constants]) + "\n\n\n" + "\n\n".join(functions)


def _literal(value) -> str:
    if isinstance(value, tuple):
        return f"({', '.join(_literal(v) for v in value)})"
    return f"np.float32({value!s})"  # str() of a NumPy float32 round-trips


#: Source for a generated module that imports numba and numpy as np.
SOURCE = _source()
