"""Matrix products, batched and broadcast, driven by one table."""

import numpy as np
import pytest

import graphnet as gn

from .optable import Inputs, OpCase, forward_params, gradient_params, run_forward, run_gradient

R = Inputs(seed=5)

SHAPES = [  # a @ b, as NumPy's matmul does it
    ((3, 4), (4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((1, 3, 4), (2, 4, 2)),
    ((4,), (4, 3)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 3)),
    ((4,), (4,)),
]

CASES = [
    OpCase("matmul", gn.matmul, [R.normal(*a), R.normal(*b)], np.matmul, f"{a}@{b}")
    for a, b in SHAPES
]
CASES += [
    OpCase("matmul", lambda a, b: a @ b, [R.normal(2, 3), R.normal(3, 2)], label="operator @"),
    OpCase("matmul", lambda a: np.ones((2, 3)) @ a, [R.normal(3, 2)], label="ndarray @ node"),
    OpCase("matmul", gn.matmul, [R.normal(2, 3).astype("float32"), R.normal(3, 2)],
           np.matmul, "float32@float64", dtypes=(), grad=False),
    OpCase("matmul", gn.matmul, [R.ints(-3, 3, 2, 3, dtype="int32"), R.ints(-3, 3, 3, 2)],
           np.matmul, "int32@int64", grad=False),
]


@pytest.mark.parametrize("case, dtype, dynamic", forward_params(CASES))
def test_forward(case, dtype, dynamic):
    run_forward(case, dtype, dynamic)


@pytest.mark.parametrize("case, order, dynamic", gradient_params(CASES))
def test_gradient(case, order, dynamic):
    run_gradient(case, order, dynamic)


def test_matmul_shape_rule_with_none_batch():
    x = gn.placeholder((None, 784), "float32")
    w = gn.placeholder((784, 10), "float32")
    assert (x @ w).shape == (None, 10)
    q = gn.placeholder((None, 4, 8, 16), "float32")
    assert (q @ gn.transpose(q, (0, 1, 3, 2))).shape == (None, 4, 8, 8)


@pytest.mark.parametrize("a, b, message", [
    ((None, 784), (128, 64), "inner dimensions 784 != 128"),
    ((2, 3, 4), (5, 4, 2), "batch axes"),
    ((3,), (4,), "784|inner|!="),
])
def test_matmul_shape_errors(a, b, message):
    with pytest.raises(gn.ShapeError, match=message):
        gn.matmul(gn.placeholder(a), gn.placeholder(b))
