"""prune, cse and fold_constants: what each removes, and what each must keep."""

from dataclasses import dataclass

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.passes import cse, fold_constants, prune
from graphnet.compiler.passes.fold import FOLD_LIMIT
from graphnet.compiler.rewrite import recording
from graphnet.graph import Constant, Op, apply

from .graphs import assert_same_results


def _kinds(graph) -> list:
    return [node.op.kind for node in graph]


# ----------------------------------------------------------------- prune


def test_prune_drops_pure_work_that_only_a_group_needed():
    v = gn.variable(np.zeros(2, np.float32), name="v")
    x = gn.placeholder((2,), name="x")
    metric = gn.sum(gn.exp(x))                      # grouped, but nobody needs its value
    step = gn.group(metric, gn.assign_add(v, x), name="step")
    with recording() as notes:
        pruned = prune(gn.Graph([step]))
    pruned.verify()
    assert "exp" not in _kinds(pruned) and "sum" not in _kinds(pruned)
    assert notes and "dropped 1 pure input;" in notes[0]
    assert_same_results([step, v], {x: np.ones(2, np.float32)}, disable=["cse", "simplify"])


def test_prune_keeps_assignments_hidden_inside_pure_nodes_and_nested_groups():
    v = gn.variable(np.zeros(2, np.float32), name="v")
    w = gn.variable(np.zeros(2, np.float32), name="w")
    doubled = gn.assign_add(v, 1.0) * 2.0           # a pure node over an assignment
    inner = gn.group(gn.assign_add(w, 3.0), gn.sum(doubled))
    step = gn.group(inner, doubled)
    pruned = prune(gn.Graph([step]))
    kinds = _kinds(pruned)
    assert kinds.count("assign_add") == 2 and "mul" not in kinds
    sess = gn.Session()
    sess.run(gn.compile(step, disable=["specialize"]))
    np.testing.assert_array_equal(sess.get(v), [1, 1])
    np.testing.assert_array_equal(sess.get(w), [3, 3])


def test_prune_keeps_fetched_values_that_are_also_grouped():
    x = gn.placeholder((2,), name="x")
    v = gn.variable(np.zeros(2, np.float32), name="v")
    loss = gn.sum(x * 2.0)
    step = gn.group(loss, gn.assign_add(v, x))
    pruned = prune(gn.Graph([loss, step]))
    assert pruned.outputs[0] is loss and "sum" in _kinds(pruned)


def test_prune_leaves_graphs_without_groups_alone():
    x = gn.placeholder((2,), name="x")
    graph = gn.Graph([gn.exp(x)])
    assert prune(graph) is graph


# ------------------------------------------------------------------- cse


def test_cse_merges_equal_ops_on_equal_inputs_and_constants_by_value():
    x = gn.placeholder((None, 3), name="x")
    a = gn.sum(x * 2.0, axis=1)
    b = gn.sum(x * 2.0, axis=1)
    c = gn.sum(x * 2.0, axis=0)                     # another attribute: not merged
    with recording() as notes:
        merged = cse(gn.Graph([a, b, c]))
    merged.verify()
    assert merged.outputs[0] is merged.outputs[1] and merged.outputs[2] is not merged.outputs[0]
    assert _kinds(merged).count("constant") == 1 and _kinds(merged).count("mul") == 1
    assert notes == ["merged 5 nodes (2 constants)"]  # 2.0 twice, x * 2.0 twice, a sum


def test_cse_keeps_constants_that_differ_in_dtype_shape_or_value():
    consts = [gn.constant(1.0, "float32"), gn.constant(1.0, "float64"),
              gn.constant([1.0], "float32"), gn.constant(2.0, "float32")]
    merged = cse(gn.Graph(consts))
    assert len({id(o) for o in merged.outputs}) == 4


def test_cse_never_merges_placeholders_variables_or_assignments():
    x1, x2 = gn.placeholder((2,), name="x1"), gn.placeholder((2,), name="x2")
    v1 = gn.variable(np.zeros(2), name="v1")
    v2 = gn.variable(np.zeros(2), name="v2")
    one = gn.constant(1.0, "float64")
    graph = gn.Graph([x1, x2, v1, v2, gn.assign_add(v1, one), gn.assign_add(v2, one)])
    assert cse(graph) is graph


@dataclass(frozen=True)
class Noise(Op):
    """A stand-in random op: a fresh draw on every run."""

    random = True

    def infer(self, like):
        return like.shape, like.dtype

    def forward(self, like):
        return np.random.default_rng().random(like.shape).astype(like.dtype)


def test_random_ops_are_neither_merged_nor_folded():
    c = gn.constant(np.zeros(3, np.float32))
    a, b = apply(Noise(), c), apply(Noise(), c)
    graph = fold_constants(cse(gn.Graph([a, b])))
    assert _kinds(graph).count("noise") == 2
    first, second = gn.Session().run([a, b])
    assert not np.array_equal(first, second)


def test_cse_merges_what_two_gradient_calls_build_twice():
    x = gn.placeholder((None, 3), name="x")
    w = gn.variable(np.ones((3, 3), np.float32), name="w")
    loss = gn.sum(gn.tanh(x @ w))
    first, second = gn.gradients(loss, w), gn.gradients(loss, w)
    merged = cse(gn.Graph([first, second]))
    assert merged.outputs[0] is merged.outputs[1]
    assert_same_results([first, second], {x: np.ones((2, 3), np.float32)},
                        disable=["simplify", "fold_constants"])


# ---------------------------------------------------------- fold_constants


def test_fold_evaluates_constant_subgraphs_once():
    x = gn.placeholder((3,), name="x")
    scale = gn.exp(gn.constant([0.0, 1.0, 2.0])) * 2.0 + 1.0
    out = x * scale
    with recording() as notes:
        folded = fold_constants(gn.Graph([out]))
    folded.verify()
    assert _kinds(folded) == ["placeholder", "constant", "mul"]
    np.testing.assert_allclose(folded.nodes[1].op.value, np.exp([0, 1, 2]) * 2 + 1, rtol=1e-6)
    assert folded.nodes[1].name == scale.name and folded.nodes[1].origin == scale.origin
    assert notes == ["folded 3 nodes into constants"]


def test_fold_leaves_anything_that_reads_a_placeholder_or_variable():
    x = gn.placeholder((3,), name="x")
    v = gn.variable(np.ones(3, np.float32), name="v")
    graph = gn.Graph([gn.exp(x), gn.exp(v), gn.zeros_like(x)])
    assert fold_constants(graph) is graph


def test_fold_does_not_blow_a_broadcast_up_into_a_big_constant():
    big = gn.broadcast_to(gn.constant(0.0), (64, 64))
    assert 64 * 64 > FOLD_LIMIT
    graph = gn.Graph([big])
    assert fold_constants(graph) is graph
    small = gn.Graph([gn.broadcast_to(gn.constant(0.0), (4, 4))])
    assert _kinds(fold_constants(small)) == ["constant"]


def test_fold_may_rewrite_a_big_constant_into_one_no_bigger():
    value = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    graph = gn.Graph([gn.transpose(gn.constant(value))])
    (folded,) = fold_constants(graph).nodes
    np.testing.assert_array_equal(folded.op.value, value.T)
    assert not folded.op.value.flags.writeable


def test_fold_leaves_failing_kernels_to_run_time():
    bad = gn.reshape(gn.constant(np.zeros(4, np.float32)), (2, 2))
    graph = gn.Graph([gn.take_along_axis(bad, gn.constant(np.full((2, 1), 5)), axis=1)])
    assert fold_constants(graph).nodes[-1].op.kind == "take_along_axis"
    with pytest.raises(IndexError):
        gn.Session().run(graph.outputs[0])


def test_folded_constants_are_computed_like_the_kernel_would():
    out = gn.constant(np.float32(1.0)) / gn.constant(np.float32(3.0))
    (folded,) = fold_constants(gn.Graph([out])).nodes
    assert isinstance(folded.op, Constant) and folded.dtype == np.float32
    assert folded.op.value == np.float32(1.0) / np.float32(3.0)
