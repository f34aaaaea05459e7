"""Nodes, names, operators and build-time errors (graphnet/graph.py)."""

from dataclasses import dataclass

import numpy as np
import pytest

import graphnet as gn
from graphnet.errors import GraphError, ShapeError
from graphnet.graph import Op


def test_placeholder_keeps_shape_dtype_and_name():
    x = gn.placeholder((None, 784), "float32", name="x")
    assert x.shape == (None, 784)
    assert x.dtype == np.float32
    assert x.name == "x"


def test_variable_and_constant_record_their_values():
    w = gn.variable(np.ones((2, 3), np.float32), name="w")
    c = gn.constant([1, 2, 3])
    assert (w.shape, w.dtype, w.name) == ((2, 3), np.float32, "w")
    assert c.shape == (3,) and c.dtype == np.int64


def test_names_are_unique_and_scoped():
    a = gn.placeholder((1,), name="a")
    b = gn.placeholder((1,), name="a")
    with gn.name_scope("dense"):
        k = gn.variable(np.zeros(1), name="kernel")
    with gn.name_scope("dense"):
        k2 = gn.variable(np.zeros(1), name="kernel")
        inner = gn.relu(k2)
    assert [a.name, b.name] == ["a", "a_1"]
    assert [k.name, k2.name, inner.name] == ["dense/kernel", "dense_1/kernel", "dense_1/relu"]


def test_operators_build_nodes_with_numpy_promotion():
    x = gn.placeholder((None, 3), "float32")
    assert (x + 1).dtype == np.float32            # Python scalars take the node's dtype
    assert (2.0 * x).op.kind == "mul"
    assert (x / 2).dtype == np.float32
    assert (x ** 2).op.kind == "pow"
    assert (-x).op.kind == "neg"
    assert (x < 0).dtype == np.bool_
    assert (x @ np.ones((3, 4), np.float32)).shape == (None, 4)
    assert (np.ones((1, 3), np.float32) - x).shape == (None, 3)  # ndarray on the left
    assert x[:, 1:].shape == (None, 2)
    assert x.T.shape == (3, None)


def test_equality_is_identity_so_nodes_work_as_keys():
    x = gn.placeholder((2,))
    y = gn.placeholder((2,))
    assert x == x and x != y
    assert {x: 1, y: 2}[y] == 2
    with pytest.raises(TypeError, match="no truth value"):
        bool(x > 0)


def test_shape_error_names_op_shapes_and_user_line():
    x = gn.placeholder((None, 784), name="x")
    w = gn.variable(np.zeros((128, 64), np.float32), name="w")
    with pytest.raises(ShapeError) as err:
        gn.matmul(x, w, name="dense_1/matmul")
    message = str(err.value)
    assert "matmul 'dense_1/matmul'" in message
    assert "(None, 784) @ (128, 64)" in message
    assert "inner dimensions 784 != 128" in message
    assert "test_graph.py:" in message


def test_broadcast_mismatch_is_a_build_time_error():
    with pytest.raises(ShapeError, match=r"add 'add'.*\(3, 4\).*\(5,\).*do not broadcast"):
        gn.placeholder((3, 4)) + gn.placeholder((5,))


def test_float_only_math_rejects_integers():
    with pytest.raises(ShapeError, match="floating-point.*int64"):
        gn.exp(gn.placeholder((2,), "int64"))


def test_graph_listing_shows_types_and_origins():
    x = gn.placeholder((None, 128), name="x")
    h = gn.relu(x)
    listing = str(gn.Graph([h]))
    assert "t1: f32[?,128] = relu(t0)" in listing
    assert "test_graph.py:" in listing


def test_graph_verify_detects_inconsistent_records():
    x = gn.placeholder((2, 3))
    y = gn.relu(x)
    gn.Graph([y]).verify()
    y.shape = (3, 2)
    with pytest.raises(GraphError, match="records"):
        gn.Graph([y]).verify()


def test_cycles_are_reported_by_name():
    x = gn.placeholder((2,), name="x")
    a = gn.relu(x, name="a")
    b = gn.relu(a, name="b")
    a.inputs = (b,)  # only a corrupted graph can have a cycle
    with pytest.raises(GraphError, match="cycle.*'a'.*'b'|cycle.*'b'.*'a'"):
        gn.Graph([b])


def test_fetching_a_non_node_is_an_error():
    with pytest.raises(GraphError, match="cannot fetch"):
        gn.Session().run([gn.constant(1.0), "loss"])


def test_double_assignment_in_one_run_is_refused():
    v = gn.variable(np.zeros(2), name="v")
    with pytest.raises(GraphError, match="assigned twice"):
        gn.Session().run([gn.assign(v, np.ones(2)), gn.assign_add(v, np.ones(2))])


def test_nested_scopes_join_once_and_root_scope_leaves_them():
    with gn.name_scope("block"):
        with gn.name_scope("attn"):
            q = gn.placeholder((1,), name="q")
            with gn.graph.root_scope():
                top = gn.placeholder((1,), name="top")
    assert (q.name, top.name) == ("block/attn/q", "top")


def test_throwaway_names_are_forgotten():
    with gn.graph.throwaway_names():
        gn.placeholder((1,), name="scratch")
    assert gn.placeholder((1,), name="scratch").name == "scratch"


def test_kernel_picks_the_backend_loop_and_gives_each_plan_step_its_own_scratch():
    @dataclass(frozen=True)
    class Probe(Op):
        backends = ("numba",)

        def forward(self, x, scratch=None):
            scratch["runs"] = scratch.get("runs", 0) + 1
            return ("numpy", scratch["runs"])

        def forward_loop(self, x):
            return ("loop", 0)

    op = Probe()
    first, second = op.kernel("numpy"), op.kernel()
    assert [first(0), first(0), second(0)] == [("numpy", 1), ("numpy", 2), ("numpy", 1)]
    assert op.kernel("numba")(0) == ("loop", 0)  # the loop takes no scratch: called as it is
