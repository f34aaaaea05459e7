"""fuse_matmul_bias (graphnet/compiler/passes/patterns.py)."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.ops import MatmulBias

from .graphs import GRAPHS, assert_same_results, only


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_pattern_changes_no_result(name):
    fetches, feed = GRAPHS[name]()
    assert_same_results(fetches, feed, steps=3, disable=only("specialize", "fuse_matmul_bias"))


def kinds(plan) -> list:
    return [type(n.op) for n in plan.graph]


def test_a_dense_layer_without_activation_becomes_one_kernel():
    x = gn.placeholder((4, 3), "float32", name="x")
    w = gn.variable(np.ones((3, 2), np.float32), name="w")
    b = gn.variable(np.arange(2, dtype=np.float32), name="b")
    plan = gn.compile(x @ w + b)
    assert MatmulBias in kinds(plan)
    assert "matmul + bias fused" in plan.explain()
    value = np.arange(12, dtype=np.float32).reshape(4, 3) - 5
    np.testing.assert_allclose(gn.Session().run(plan, {x: value}),
                               value @ np.ones((3, 2)) + np.arange(2))


def test_a_bias_that_feeds_an_activation_is_left_to_elementwise_fusion():
    x = gn.placeholder((4, 3), "float32", name="x")
    w = gn.variable(np.ones((3, 2), np.float32), name="w")
    b = gn.variable(np.arange(2, dtype=np.float32), name="b")
    plan = gn.compile(gn.relu(x @ w + b), backend="numpy")
    assert MatmulBias not in kinds(plan)
    assert any(step.kernel == "fused-numpy" for step in plan.steps)


def test_a_product_read_elsewhere_is_left_alone():
    x = gn.placeholder((4, 3), "float32", name="x")
    w = gn.variable(np.ones((3, 2), np.float32), name="w")
    product = x @ w
    plan = gn.compile([product + 1.0, gn.exp(product)])
    assert MatmulBias not in kinds(plan)


def test_a_bias_of_another_dtype_is_left_alone():
    x = gn.placeholder((4, 3), "float32", name="x")
    w = gn.variable(np.ones((3, 2), np.float32), name="w")
    b = gn.variable(np.zeros(2), name="b")  # float64
    assert MatmulBias not in kinds(gn.compile(x @ w + b))
