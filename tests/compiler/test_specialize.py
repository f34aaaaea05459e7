"""Plans specialised per feed shape: specialize, static_shapes, and the
Session's plan cache that relies on them."""

import numpy as np
import pytest

import graphnet as gn
import graphnet.session
from graphnet.compiler.passes import specialize, static_shapes
from graphnet.compiler.rewrite import recording
from graphnet.errors import FeedError, GraphError

from .graphs import assert_same_results, mlp_training_step

SHAPE_HELPERS = {"sum_like", "broadcast_like", "reshape_like", "fill_like", "reduced_size"}


def _helpers(plan) -> set:
    return {node.op.kind for node in plan.graph} & SHAPE_HELPERS


def test_specialize_makes_every_size_known():
    x = gn.placeholder((None, 3), name="x")
    y = gn.reshape(gn.tanh(x), (-1,))
    with recording() as notes:
        graph = specialize(gn.Graph([y]), {x: (5, 3)})
    graph.verify()
    assert all(None not in node.shape for node in graph if node is not x)
    assert graph.outputs[0].shape == (15,) and graph.outputs[0].name == y.name
    assert x in graph.nodes  # the placeholder itself stays: feeds find it
    assert notes == ["x (None, 3) -> (5, 3)"]


def test_specialize_skips_shapes_that_say_nothing_new_or_do_not_fit():
    x = gn.placeholder((None, 3), name="x")
    s = gn.placeholder((2,), name="s")
    graph = gn.Graph([gn.sum(x) + gn.sum(s)])
    assert specialize(graph, {x: (4, 5), s: (2,)}) is graph
    with pytest.raises(GraphError, match="must be placeholders"):
        specialize(graph, {gn.exp(s): (2,)})


def test_gradients_lose_their_run_time_shape_helpers_once_shapes_are_known():
    fetches, feed = mlp_training_step()
    generic = gn.compile(fetches)
    assert _helpers(generic) >= {"sum_like", "reduced_size"}
    plan = assert_same_results(fetches, feed)
    assert _helpers(plan) == set()


@pytest.mark.parametrize("build, rule", [
    (lambda x, b: gn.gradients(gn.sum(x + b), b), "sum_like_static"),
    (lambda x, b: gn.gradients(gn.mean(x), x), "reduced_size_static"),
    (lambda x, b: gn.gradients(gn.sum(x), x), "broadcast_like_static"),
    (lambda x, b: gn.gradients(gn.sum(gn.reshape(x, (-1,))), x), "reshape_like_static"),
    (lambda x, b: gn.ones_like(x), "fill_like_static"),
])
def test_each_shape_rule_fires_only_with_known_sizes(build, rule):
    x = gn.placeholder((None, 3), name="x")
    b = gn.variable(np.arange(3, dtype=np.float32), name="b")
    out = build(x, b)
    with recording() as generic_notes:
        static_shapes(gn.Graph([out]))
    with recording() as notes:
        static_shapes(specialize(gn.Graph([out]), {x: (4, 3)}))
    assert rule not in " ".join(generic_notes) and rule in " ".join(notes)
    assert_same_results([out], {x: np.ones((4, 3), np.float32)})


def test_sum_like_becomes_nothing_when_nothing_was_broadcast():
    x = gn.placeholder((None, 3), name="x")
    w = gn.placeholder((None, 3), name="w")
    (dw,) = gn.gradients(gn.sum(x * w), [w])
    assert dw.op.kind == "sum_like"
    plan = gn.compile(dw, feed_shapes={x: (2, 3), w: (2, 3)})
    assert _helpers(plan) == set() and "sum" not in [n.op.kind for n in plan.graph]


def test_a_specialised_plan_refuses_other_shapes_clearly():
    x = gn.placeholder((None, 3), name="x")
    plan = gn.compile(gn.sum(x * 2.0), feeds=[x], feed_shapes={x: (4, 3)})
    assert gn.Session().run(plan, {x: np.ones((4, 3))}) == 24.0
    with pytest.raises(FeedError, match=r"compiled for placeholder 'x' of shape \(4, 3\); "
                                        r"fed \(5, 3\)"):
        gn.Session().run(plan, {x: np.ones((5, 3))})
    generic = gn.compile(gn.sum(x * 2.0), feeds=[x])
    assert gn.Session().run(generic, {x: np.ones((5, 3))}) == 30.0


def test_disable_specialize_gives_a_generic_plan():
    x = gn.placeholder((None, 3), name="x")
    plan = gn.compile(gn.sum(x), feed_shapes={x: (4, 3)}, disable=["specialize"])
    assert gn.Session().run(plan, {x: np.ones((5, 3))}) == 15.0


class CountingCompile:
    def __init__(self, monkeypatch):
        self.calls = []
        real = graphnet.session.compile

        def counting(fetches, **options):
            self.calls.append(options.get("feed_shapes"))
            return real(fetches, **options)

        monkeypatch.setattr(graphnet.session, "compile", counting)


def test_session_compiles_once_per_feed_shape_signature(monkeypatch):
    compiles = CountingCompile(monkeypatch)
    fetches, feed = mlp_training_step(batch=8)
    x = next(p for p in feed if p.name.startswith("x"))
    y = next(p for p in feed if p is not x)
    sess = gn.Session()
    first = sess.run(fetches, feed)
    second = sess.run(fetches, feed)
    assert len(compiles.calls) == 1 and compiles.calls[0][x] == (8, 6)
    assert first[0] != second[0]  # the step ran twice (the loss moved)
    small = {x: feed[x][:3], y: feed[y][:3]}
    sess.run(fetches, small)
    sess.run(fetches, small)
    assert len(compiles.calls) == 2 and compiles.calls[1][x] == (3, 6)
    sess.run(fetches, feed)
    assert len(compiles.calls) == 2


def test_session_feed_errors_are_unchanged_by_specialisation():
    x = gn.placeholder((None, 3), name="x")
    with pytest.raises(FeedError, match=r"'x' expects shape \(None, 3\); fed \(2, 4\)"):
        gn.Session().run(gn.sum(x), {x: np.ones((2, 4))})
