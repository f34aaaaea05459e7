"""The rewriting infrastructure and the compile() interface around the passes."""

from collections import Counter

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler import PASS_NAMES, PIPELINE
from graphnet.compiler.rewrite import apply_rules, clone, make, rebuild, recording
from graphnet.errors import GraphError
from graphnet.ops.elementwise import Add, Neg


def test_clone_keeps_op_name_origin_and_id_and_reinfers_the_shape():
    x = gn.placeholder((None, 3), name="x")
    s = gn.placeholder((4, 3), name="s")
    y = gn.tanh(x, name="act")
    copy = clone(y, (s,))
    assert (copy.op, copy.name, copy.origin, copy.id) == (y.op, "act", y.origin, y.id)
    assert copy.shape == (4, 3) and copy.inputs == (s,)


def test_rebuild_returns_unchanged_graphs_as_they_are():
    x = gn.placeholder((2,), name="x")
    graph = gn.Graph([gn.exp(x) + 1.0])
    assert rebuild(graph) is graph
    assert rebuild(graph, lambda node: None) is graph


def test_rebuild_clones_what_depends_on_a_replacement_and_keeps_the_order():
    x = gn.placeholder((2,), name="x")
    a = gn.exp(x, name="a")
    b = gn.neg(a, name="b")
    c = gn.sqrt(b, name="c")

    def visit(node):
        return make(Neg(), (node.inputs[0],), like=node) if node is a else None

    graph = rebuild(gn.Graph([c]), visit)
    graph.verify()
    assert [n.name for n in graph] == ["x", "a", "b", "c"]
    assert [n.op.kind for n in graph] == ["placeholder", "neg", "neg", "sqrt"]
    new_a = graph.nodes[1]
    assert new_a.id == a.id and new_a.origin == a.origin  # it took a's place


def test_rebuild_refuses_a_replacement_of_another_type():
    x = gn.placeholder((2,), name="x")
    y = gn.placeholder((3,), name="y")
    graph = gn.Graph([gn.exp(x)])
    with pytest.raises(GraphError, match="compiler bug: 'exp' \\(2,\\) float32 was rewritten"):
        rebuild(graph, lambda node: y if node.op.kind == "exp" else None)


def test_apply_rules_ignores_replacements_of_another_shape_and_counts_firings():
    x = gn.placeholder((3,), name="x")
    m = gn.placeholder((2, 3), name="m")

    def add_to_first(node):
        return node.inputs[0]

    counts = Counter()
    graph = apply_rules(gn.Graph([x + m, m + x]), [(Add, add_to_first)], counts)
    assert graph.outputs[0].op.kind == "add" and graph.outputs[1] is m
    assert counts == {"add_to_first": 1}


def test_apply_rules_rewrites_chains_to_a_fixed_point():
    x = gn.placeholder((3,), name="x")

    def neg_neg(node):
        return node.inputs[0].inputs[0] if node.inputs[0].op.kind == "neg" else None

    deep = x
    for _ in range(6):
        deep = gn.neg(deep)
    counts = Counter()
    graph = apply_rules(gn.Graph([deep]), [(Neg, neg_neg)], counts)
    assert graph.outputs[0] is x and counts["neg_neg"] == 3


def test_pipeline_is_a_list_of_named_functions():
    names = [p.__name__ for p in PIPELINE]
    assert names[:5] == ["prune", "static_shapes", "cse", "fold_constants", "simplify"]
    assert PASS_NAMES[0] == "specialize" and set(names) <= set(PASS_NAMES)


def test_disable_and_optimize_off():
    x = gn.placeholder((None, 3), name="x")
    out = gn.sum(x * 1.0 + 0.0)
    assert gn.compile(out, optimize=False).applied == []
    applied = [r.name for r in gn.compile(out, disable=["simplify", "cse"]).applied]
    assert applied == ["prune", "static_shapes", "fold_constants", "direct_convolutions",
                       "fuse_cross_entropy",
                       "fuse_elementwise", "arena_updates", "fuse_matmul_bias",
                       "contiguous_reshapes",
                       "plan_memory"]
    with pytest.raises(ValueError, match="unknown passes \\['simplfy'\\]"):
        gn.compile(out, disable=["simplfy"])


def test_explain_reports_counts_and_what_each_pass_did():
    x = gn.placeholder((None, 3), name="x")
    out = gn.sum(gn.exp(gn.constant(0.0, "float32")) * x * 1.0) + gn.sum(x * 1.0)
    plan = gn.compile(out, feed_shapes={x: (2, 3)}, verify=True)
    text = plan.explain()
    lines = text.splitlines()
    assert lines[0].startswith("plan for 1 fetches:")
    passes = lines[1:len(PIPELINE) + 3]   # then the kernels and further facts
    assert [line.split()[0] for line in passes] == ["specialize"] + [
        p.__name__ for p in PIPELINE] + ["plan_memory"]
    line_of = {line.split()[0]: line for line in passes}
    assert "x (None, 3) -> (2, 3)" in text and "times_one x" in text
    assert "folded 1 node into constants" in text
    assert [line for line in passes if line.split()[0] == "cse"][1].endswith(
        "merged 1 node")  # the second cse: sum(x) twice
    assert "off (arenas=False)" in gn.compile(out, feed_shapes={x: (2, 3)},
                                              arenas=False).explain()
    assert "preallocated buffers" in line_of["plan_memory"]
    assert lines[len(PIPELINE) + 3].startswith("  kernels: ")
    for record in plan.applied:
        assert f"{record.before:>5} -> {record.after:>5} nodes" in text


def test_verify_runs_after_every_pass_and_names_it(monkeypatch):
    import graphnet.compiler as compiler

    def broken(graph):
        graph.nodes.reverse()
        return graph

    monkeypatch.setattr(compiler, "PIPELINE", [broken])
    x = gn.placeholder((2,), name="x")
    with pytest.raises(GraphError, match="after pass broken: 'exp' comes before"):
        gn.compile(gn.exp(x), verify=True, disable=[])


def test_notes_outside_compile_go_nowhere():
    from graphnet.compiler.rewrite import note
    note("nobody listens")  # no error
    with recording() as notes:
        note("heard")
    assert notes == ["heard"]


def test_optimized_plans_keep_the_users_names_and_lines():
    x = gn.placeholder((None, 3), name="x")
    hidden = gn.tanh(x * 1.0, name="hidden")  # this line is what the plan must cite
    plan = gn.compile(hidden, feed_shapes={x: (2, 3)})
    line = next(line for line in plan.source.splitlines() if "hidden" in line)
    assert "test_rewrite.py:" in line and "tanh" in line
    np.testing.assert_allclose(gn.Session().run(plan, {x: np.ones((2, 3))}), np.tanh(1.0),
                               rtol=1e-6)


def test_threads_compiling_at_once_get_the_plans_one_thread_gets():
    """Rewrites in progress (nodes made, rules fired, notes) are per thread:
    shared, they once gave threads each other's node ids and notes."""
    import sys
    import threading

    def build(i):
        x = gn.placeholder((None, 4), "float32", name=f"x{i}")
        w = gn.variable(np.ones((4, 4), np.float32), name=f"w{i}")
        h = x
        for _ in range(3):
            h = gn.tanh(gn.relu(h @ w * 1.0 + 0.0) - (-h)) * gn.exp(gn.log(gn.sigmoid(h)))
        loss = gn.mean(gn.square(h))
        return [loss, gn.assign_sub(w, 0.1 * gn.gradients(loss, [w])[0])]

    def compiled(fetches):
        plan = gn.compile(fetches, backend="numpy")
        return plan.source, plan.explain(history=True)

    graphs = [build(i) for i in range(6)]
    serial = [compiled(g) for g in graphs]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)   # switch threads often, so any sharing shows
    try:
        threaded = [None] * len(graphs)
        threads = [threading.Thread(target=lambda i=i: threaded.__setitem__(
            i, compiled(graphs[i]))) for i in range(len(graphs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert threaded == serial
