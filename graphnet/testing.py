"""Helpers for testing ops, graphs and models: numerical gradients checked
against `gn.gradients` (in the spirit of PyTensor's `verify_grad`).

    >>> import numpy as np, graphnet as gn
    >>> from graphnet.testing import check_gradients
    >>> _ = check_gradients(lambda x, y: gn.tanh(x) * y, [np.ones((3, 1)), np.ones(4)])
"""

from __future__ import annotations

import numpy as np

from graphnet.autodiff import gradients
from graphnet.compiler import compile
from graphnet.graph import Node, constant, placeholder
from graphnet.session import Session


def numeric_gradient(f, x, eps: float = 1e-6) -> np.ndarray:
    """d f(x) / dx of a scalar function `f` by float64 central differences."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f(x.copy())
        x[index] = original - eps
        minus = f(x.copy())
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(build, inputs, wrt=None, eps: float = 1e-6, rtol: float = 1e-5,
                    atol: float = 1e-7, dynamic: bool = False, seed: int = 0,
                    name: str | None = None) -> list:
    """Check `gn.gradients` of `build(*nodes)` against central differences.

    Each array in `inputs` becomes a placeholder of its shape and dtype (every
    size None when `dynamic`); `build` returns a float node or a list of them,
    whose elements are weighted by fixed random numbers so none can hide.
    `wrt` holds the indices of the inputs to check (default: every float64
    one). Raises AssertionError naming the op, the input and the errors;
    returns the symbolic gradients.
    """
    arrays = [np.asarray(a) for a in inputs]
    nodes = [placeholder((None,) * a.ndim if dynamic else a.shape, a.dtype, name=f"input{i}")
             for i, a in enumerate(arrays)]
    built = build(*nodes)
    outs = list(built) if isinstance(built, (list, tuple)) else [built]
    label = name or ", ".join(f"{o.op.kind} '{o.name}'" for o in outs)
    wrt = [i for i, a in enumerate(arrays) if a.dtype == np.float64] if wrt is None else list(wrt)
    for i in wrt:
        if arrays[i].dtype != np.float64:
            raise TypeError(f"{label}: input {i} is {arrays[i].dtype.name}; check float64 inputs")
    for out in outs:
        if not isinstance(out, Node) or out.dtype is None or out.dtype.kind != "f":
            raise TypeError(f"{label}: build must return float nodes, got {out!r}")

    session = Session()
    feed = dict(zip(nodes, arrays, strict=True))
    forward = compile(outs)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(np.shape(v)) for v in session.run(forward, feed)]
    grad_ys = [constant(w, dtype=o.dtype) for w, o in zip(weights, outs, strict=True)]
    symbolic = session.run(gradients(outs, [nodes[i] for i in wrt], grad_ys=grad_ys), feed)

    def objective(i, x):
        values = session.run(forward, {**feed, nodes[i]: x})
        return sum(float(np.sum(np.asarray(v, np.float64) * w))
                   for v, w in zip(values, weights, strict=True))

    for i, got in zip(wrt, symbolic, strict=True):
        where = f"gradient check of {label}, input {i} {arrays[i].shape}"
        got = np.asarray(got)
        if got.shape != arrays[i].shape or got.dtype != arrays[i].dtype:
            raise AssertionError(f"{where}: gradient is {got.dtype.name}{got.shape}, expected "
                                 f"{arrays[i].dtype.name}{arrays[i].shape}")
        expected = numeric_gradient(lambda x, i=i: objective(i, x), arrays[i], eps)
        _compare(where, got, expected, rtol, atol)
    return [np.asarray(g) for g in symbolic]


def _compare(where: str, got: np.ndarray, expected: np.ndarray, rtol: float, atol: float):
    """Raise an AssertionError with the largest errors unless got ~ expected."""
    error = np.abs(got - expected)
    bad = ~np.isfinite(got) | (error > atol + rtol * np.abs(expected))
    if not bad.any():
        return
    relative = error / np.maximum(np.maximum(np.abs(got), np.abs(expected)), 1e-12)
    worst = np.unravel_index(np.argmax(np.where(bad, error, -1)), got.shape)
    raise AssertionError(
        f"{where}: symbolic and numeric gradients differ at {int(bad.sum())} of {got.size} "
        f"entries; max abs error {np.nanmax(error):.3g}, max rel error "
        f"{np.nanmax(relative):.3g} (rtol={rtol}, atol={atol}); worst at index "
        f"{tuple(int(i) for i in worst)}: symbolic {float(got[worst]):.6g}, "
        f"numeric {float(expected[worst]):.6g}")
