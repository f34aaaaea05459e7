"""float32_math: its coefficients are the fits its docstring names, and its
functions run as plain Python on NumPy scalars. The compiled loops that use
them are checked in tests/compiler/test_numba_backend.py."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from graphnet import float32_math as fm


def minimax(f, lo, hi, degree, weight, variable=lambda x: x, nodes=2000, iterations=100):
    """(c, max error): the polynomial sum c[k] variable(x)**k closest to f on
    [lo, hi] in max |weight(x) (poly - f(x))|, by Lawson's iteratively
    reweighted least squares on Chebyshev nodes."""
    x = (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    basis = np.vander(variable(x), degree + 1, increasing=True) * weight(x)[:, None]
    target = f(x) * weight(x)
    u = np.full(nodes, 1 / nodes)
    for _ in range(iterations):
        root = np.sqrt(u)
        c = np.linalg.lstsq(basis * root[:, None], target * root, rcond=None)[0]
        error = np.abs(basis @ c - target)
        u = u * error / np.sum(u * error)
    return c, error.max()


def fit_coefficients() -> dict:
    """name -> (float64 coefficients, max weighted error) of each fit, derived again."""
    special = pytest.importorskip("scipy.special")
    split, mid, top = (float(v) for v in (fm.ERF_SPLIT, fm.ERF_MID, fm.ERF_MAX))
    return {
        # exp(r) = 1 + r + r**2 q(r), relative error of exp
        "EXP_Q": minimax(lambda r: (np.expm1(r) - r) / r**2, -0.35, 0.35, 4,
                         lambda r: r**2 / np.exp(r)),
        # erf(x) = x + x P(x**2), relative error of erf
        "ERF_SMALL": minimax(lambda x: special.erf(x) / x - 1, 0, split, 5,
                             lambda x: x / special.erf(x), lambda x: x * x),
        # erfc(a) = exp(-a**2) R(a - mid), absolute error of erfc
        "ERF_LARGE": minimax(special.erfcx, split, top, 8, lambda a: np.exp(-a * a),
                             lambda a: a - mid),
    }


def test_coefficients_are_the_documented_minimax_fits():
    for name, (fitted, error) in fit_coefficients().items():
        stored = np.array(getattr(fm, name), np.float64)
        np.testing.assert_allclose(stored, fitted, rtol=1e-6, atol=1e-12, err_msg=name)
        assert error < 1e-8, name


def test_ln2_split_and_limits():
    assert float(fm.LN2_HIGH) + float(fm.LN2_LOW) == pytest.approx(math.log(2), abs=1e-13)
    assert float(fm.LN2_HIGH) * 2**16 == int(float(fm.LN2_HIGH) * 2**16)  # 16 bits
    assert math.exp(float(fm.EXP_MAX)) > float(np.finfo(np.float32).max)
    assert math.exp(float(fm.EXP_MIN)) < 2.0**-150            # rounds to 0 in float32
    assert np.float32(1 - math.erfc(float(fm.ERF_MAX))) == 1


@pytest.mark.parametrize("x", [-100.0, -87.5, -10.0, -1e-3, 0.0, 0.3, 1.0, 20.0, 88.0])
def test_exp_as_plain_python(x):
    with np.errstate(over="ignore", under="ignore"):
        got = fm.exp_f32(np.float32(x))
    assert got.dtype == np.float32
    assert got == pytest.approx(math.exp(x), rel=2.5e-7, abs=2.0**-149)


@pytest.mark.parametrize("x", [-5.0, -0.9, -1e-30, 0.0, 0.2, 0.875, 2.0, 3.95, 1e30])
def test_erf_as_plain_python(x):
    with np.errstate(over="ignore", invalid="ignore"):
        got = fm.erf_f32(np.float32(x))
    assert got.dtype == np.float32
    assert got == pytest.approx(math.erf(float(np.float32(x))), rel=2.5e-7, abs=1e-45)


def test_source_defines_everything_the_functions_use():
    space = {"np": np, "numba": SimpleNamespace(njit=lambda **options: lambda f: f)}
    exec(fm.SOURCE, space)  # noqa: S102 - what a generated kernel module runs
    for x in (np.float32(0.5), np.float32(-2.0)):
        assert space["erf_f32"](x) == fm.erf_f32(x)
        assert space["exp_f32"](x) == fm.exp_f32(x)
