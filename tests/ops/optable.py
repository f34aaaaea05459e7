"""The runner behind the op tables: each tests/ops module lists `CASES`, one
`OpCase` a row, and every row drives three checks:

- forward: the kernel's value against a NumPy reference, for float32 and
  float64 inputs, on placeholders of the inputs' shapes and on placeholders
  whose sizes are all None;
- the op's static shape and dtype rule against the real output (and, for
  float32, that no float64 node creeps into the backward pass);
- gradients: float64 central differences against `gn.gradients`, and against
  the gradient of the gradient (second order).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pytest

import graphnet as gn
from graphnet.testing import check_gradients


@dataclass
class OpCase:
    """One row: `build(*nodes)` against `reference(*arrays)` on `inputs`."""

    op: str                             # the exported op this row covers
    build: Callable                     # nodes -> node, or a list of nodes
    inputs: list                        # float64, integer or bool arrays
    reference: Callable | None = None   # arrays -> array(s); None: `build` itself
    label: str = ""                     # what is special about the row
    dtypes: tuple = ("float32", "float64")  # float inputs are cast to each; () keeps them
    grad: bool = True                   # run the finite-difference checks
    dynamic: bool = True                # also build on all-None placeholders
    eps: float = 1e-6
    rtol: float = 1e-5
    atol: float = 1e-7

    @property
    def id(self) -> str:
        return f"{self.op}[{self.label}]" if self.label else self.op


class Inputs:
    """Seeded test arrays, float64 unless said otherwise."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def normal(self, *shape) -> np.ndarray:
        return np.asarray(self.rng.standard_normal(shape))

    def uniform(self, low, high, *shape) -> np.ndarray:
        return np.asarray(self.rng.uniform(low, high, shape))

    def positive(self, *shape) -> np.ndarray:
        """In [0.5, 2]: safe for log, sqrt, division and powers."""
        return self.uniform(0.5, 2.0, *shape)

    def nonzero(self, *shape) -> np.ndarray:
        """|x| in [0.2, 1.5] with random signs: away from kinks at 0."""
        return self.uniform(0.2, 1.5, *shape) * self.rng.choice([-1.0, 1.0], shape)

    def ints(self, low, high, *shape, dtype="int64") -> np.ndarray:
        return np.asarray(self.rng.integers(low, high, shape), dtype=dtype)

    def bools(self, *shape) -> np.ndarray:
        return np.asarray(self.rng.random(shape) < 0.5)


def np_erf(x):
    """NumPy has no erf; math.erf elementwise, in x's dtype."""
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(np.asarray(x).dtype)


# ------------------------------------------------------------ params


def forward_params(cases) -> list:
    """(case, dtype, dynamic) for every forward run of the table."""
    params = []
    for case in cases:
        has_float = any(np.asarray(a).dtype.kind == "f" for a in case.inputs)
        for dtype in (case.dtypes if has_float and case.dtypes else (None,)):
            for dynamic in (False, True) if case.dynamic else (False,):
                name = f"{case.id}-{dtype or 'as_given'}{'-dynamic' if dynamic else ''}"
                params.append(pytest.param(case, dtype, dynamic, id=name))
    return params


def gradient_params(cases) -> list:
    """(case, order, dynamic) for every gradient check of the table: first order
    on static and all-None placeholders, second order on static ones."""
    params = []
    for case in cases:
        for order in (1, 2) if case.grad else ():
            for dynamic in (False, True) if case.dynamic and order == 1 else (False,):
                name = f"{case.id}-order{order}{'-dynamic' if dynamic else ''}"
                params.append(pytest.param(case, order, dynamic, id=name))
    return params


# ------------------------------------------------------------ checks


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _with_dtype(array, dtype):
    array = np.asarray(array)
    return array.astype(dtype) if dtype is not None and array.dtype.kind == "f" else array


def run_forward(case: OpCase, dtype, dynamic: bool):
    """Kernel value vs the reference, and the static rule vs the real output."""
    arrays = [_with_dtype(a, dtype) for a in case.inputs]
    nodes = [gn.placeholder((None,) * a.ndim if dynamic else a.shape, a.dtype, name=f"in{i}")
             for i, a in enumerate(arrays)]
    outs = _as_list(case.build(*nodes))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        expected = _as_list((case.reference or case.build)(*arrays))
        values = gn.Session().run(outs, dict(zip(nodes, arrays, strict=True)))
    assert len(values) == len(expected), f"{case.id}: {len(values)} outputs, NumPy {len(expected)}"
    for node, value, want in zip(outs, values, expected, strict=True):
        value, want = np.asarray(value), np.asarray(want)
        assert node.dtype == value.dtype, (
            f"{case.id}: dtype rule gives {node.dtype}, kernel gives {value.dtype}")
        assert value.dtype == want.dtype, (
            f"{case.id}: kernel gives {value.dtype}, NumPy gives {want.dtype}")
        if dynamic:
            assert len(node.shape) == value.ndim and all(
                d is None or d == v for d, v in zip(node.shape, value.shape, strict=True)), (
                f"{case.id}: shape rule gives {node.shape}, kernel gives {value.shape}")
        else:
            assert node.shape == value.shape, (
                f"{case.id}: shape rule gives {node.shape}, kernel gives {value.shape}")
        assert value.shape == want.shape, f"{case.id}: shape {value.shape}, NumPy {want.shape}"
        if value.dtype.kind == "f":
            tight = value.dtype == np.float64
            np.testing.assert_allclose(value, want, rtol=1e-10 if tight else 2e-6,
                                       atol=1e-12 if tight else 1e-6, err_msg=case.id)
        else:
            np.testing.assert_array_equal(value, want, err_msg=case.id)
    if dtype == "float32" and case.grad:
        check_backward_stays_float32(case, nodes, outs)


def check_backward_stays_float32(case: OpCase, nodes: list, outs: list):
    """No float64 node creeps into the backward pass of a float32 graph."""
    xs = [n for n in nodes if n.dtype == np.float32]
    ys = [o for o in outs if o.dtype == np.float32]
    if xs and ys:
        grads = gn.gradients(ys, xs)
        wide = [f"{n.op.kind} '{n.name}'" for n in gn.Graph(grads) if n.dtype == np.float64]
        assert not wide, f"{case.id}: float64 nodes in a float32 backward pass: {wide}"


def run_gradient(case: OpCase, order: int, dynamic: bool):
    """float64 finite differences against the symbolic gradient; at order 2, against
    the gradient of the gradient (Hessian-vector products)."""
    build = case.build if order == 1 else partial(_weighted_gradients, case)
    check_gradients(build, case.inputs, dynamic=dynamic, eps=case.eps, rtol=case.rtol,
                    atol=case.atol, name=f"{case.id} order {order}")


def _weighted_gradients(case: OpCase, *nodes) -> list:
    """Gradients of a fixed random weighting of the case's outputs: a node to
    differentiate again."""
    outs = _as_list(case.build(*nodes))
    rng = np.random.default_rng(1)
    weights = [gn.constant(rng.standard_normal(o.shape), dtype=o.dtype) for o in outs]
    return gn.gradients(outs, [n for n in nodes if n.dtype.kind == "f"], grad_ys=weights)
