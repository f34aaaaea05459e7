"""fuse_matmul_bias and contiguous_reshapes (graphnet/compiler/passes/patterns.py)."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.ops import Contiguous, MatmulBias

from .graphs import GRAPHS, assert_same_results, only


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_pattern_changes_no_result(name):
    fetches, feed = GRAPHS[name]()
    assert_same_results(fetches, feed, steps=3, disable=only("specialize", "fuse_matmul_bias"))
    assert_same_results(fetches, feed, steps=2, disable=only("specialize", "contiguous_reshapes"))


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


def test_reshapes_of_one_transpose_share_one_copy_into_planned_memory():
    x = gn.placeholder((2, 3, 4, 5), "float32", name="x")
    t = gn.transpose(x, (0, 2, 1, 3))
    flat, rows = gn.reshape(t, (2, 4, 15)), gn.reshape(t, (8, 15))
    plan = gn.compile([flat * 2.0, rows + 1.0])
    copies = [s for s in plan.steps if isinstance(s.nodes[-1].op, Contiguous)]
    assert len(copies) == 1 and copies[0].buffer is not None
    assert "copied once" in plan.explain()
    value = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
    got_flat, got_rows = plan([value], [])
    np.testing.assert_array_equal(got_flat, value.transpose(0, 2, 1, 3).reshape(2, 4, 15) * 2)
    np.testing.assert_array_equal(got_rows, value.transpose(0, 2, 1, 3).reshape(8, 15) + 1)


@pytest.mark.parametrize("x_shape, target", [((2, 1, 4), (8,)), ((2, 3, 4), (3, 2, 2, 2))])
def test_a_reshape_numpy_can_do_as_a_view_gets_no_copy(x_shape, target):
    """Moving a size-1 axis, or splitting the last axis, needs no copy."""
    x = gn.placeholder(x_shape, "float32", name="x")
    plan = gn.compile(gn.reshape(gn.transpose(x, (1, 0, 2)), target) * 2.0)
    assert Contiguous not in kinds(plan)
