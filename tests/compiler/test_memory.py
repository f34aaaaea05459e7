"""The memory planner: preallocated buffers reused by liveness (graphnet/compiler/memory.py)."""

import tracemalloc

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.memory import plan_buffers

from .graphs import GRAPHS, assert_same_results, shapes_of


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_buffers_change_no_result(name):
    fetches, feed = GRAPHS[name]()
    plan = assert_same_results(fetches, feed, steps=3)
    assert plan.buffers, "the planner gave no step a buffer"


def test_a_chain_reuses_buffers():
    x = gn.placeholder((4, 5), "float32", name="x")
    h = x
    for _ in range(8):
        h = gn.exp(h * 0.5) - 1.0
    buffer_of, buffers = plan_buffers(gn.Graph([h]))
    assert len(buffer_of) == 24 and len(buffers) == 2  # two buffers serve the whole chain
    out = gn.Session().run(h, {x: np.ones((4, 5), np.float32)})
    expected = np.ones((4, 5), np.float32)
    for _ in range(8):
        expected = np.exp(expected * 0.5) - 1.0
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_a_view_keeps_its_base_alive():
    x = gn.placeholder((3, 4), "float64", name="x")
    a = gn.exp(x)
    view = gn.transpose(a)                       # aliases a's buffer
    later = gn.sum(gn.sqrt(gn.exp(-x) + 1.0))   # buffers that must not reuse a's
    out = gn.matmul(view, gn.ones_like(x)) + later
    value = np.arange(12.0).reshape(3, 4) / 10
    expected = np.exp(value).T @ np.ones((3, 4)) + np.sqrt(np.exp(-value) + 1).sum()
    got = gn.Session().run(out, {x: value})
    np.testing.assert_allclose(got, expected)


def test_fetched_values_are_not_overwritten_by_the_next_run():
    x = gn.placeholder((2,), "float32", name="x")
    y = gn.exp(x)
    sess = gn.Session()
    first = sess.run(y, {x: np.zeros(2, np.float32)})
    second = sess.run(y, {x: np.ones(2, np.float32)})
    np.testing.assert_allclose(first, [1, 1])
    np.testing.assert_allclose(second, [np.e, np.e], rtol=1e-6)


def test_plan_memory_can_be_disabled():
    fetches, feed = GRAPHS["mlp_sgd"]()
    plan = gn.compile(fetches, feed_shapes=shapes_of(feed), disable=["plan_memory"])
    assert plan.buffers == [] and all(s.buffer is None for s in plan.steps)
    assert "out=" not in plan.source


def test_a_steady_state_training_step_allocates_no_buffers():
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 784), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    h = x
    params = []
    for fan_in, fan_out in [(784, 128), (128, 64), (64, 10)]:
        w = gn.variable(rng.normal(0, 0.05, (fan_in, fan_out)).astype(np.float32))
        b = gn.variable(np.zeros(fan_out, np.float32))
        h = h @ w + b
        h = gn.relu(h) if fan_out != 10 else h
        params += [w, b]
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, y))
    step = gn.optim.Adam(1e-3).minimize(loss, params)
    feed = {x: rng.random((32, 784), dtype=np.float32), y: rng.integers(0, 10, 32)}
    # The planner's buffers alone: fused kernels own theirs (tests/compiler/test_fuse.py).
    sess = gn.Session(disable=["fuse_elementwise"])
    for _ in range(2):
        sess.run([loss, step], feed)
    plan = next(iter(sess._plans.values()))
    buffer_bytes = sum(b.nbytes for b in plan.buffers)

    tracemalloc.start()
    try:
        for _ in range(3):
            sess.run([loss, step], feed)
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Only small temporaries (row maxima, Python objects) remain: no array of
    # the size of an activation or a gradient is allocated per step.
    assert buffer_bytes > 1_000_000
    assert peak < 0.05 * buffer_bytes, f"peak {peak:,} bytes of {buffer_bytes:,}"
    assert retained < 16_384


# ------------------------------------------------------------- timeline


def _mlp_step(batch=32):
    x = gn.placeholder((batch, 784), "float32", name="x")
    y = gn.placeholder((batch,), "int64", name="y")
    w1 = gn.variable(gn.init.glorot_uniform((784, 128)), name="w1")
    w2 = gn.variable(gn.init.glorot_uniform((128, 10)), name="w2")
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(gn.relu(x @ w1) @ w2, y))
    return gn.compile([loss, gn.optim.Adam().minimize(loss)]), x, y


def test_memory_report_matches_the_buffers_the_plan_holds():
    plan, x, y = _mlp_step()
    report = plan.memory()
    held = sum(value.nbytes for name, value in plan._namespace.items()
               if name in {b.name for b in plan.buffers})
    assert report.held == held == sum(b.nbytes for b in plan.buffers)
    assert 0 < report.peak <= report.held
    # every node that writes into a buffer appears once, inside its buffer's life
    uses = [u for life in report.buffers for u in life.uses]
    assert sorted(u.node.id for u in uses) == sorted(n.id for n in plan.buffer_of)
    for life in report.buffers:   # tenants of one region (an arena's segments are regions)
        for region in {plan.buffer_of[u.node] for u in life.uses}:
            spans = [(u.first, u.last) for u in life.uses if plan.buffer_of[u.node] is region]
            assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), "tenants overlap"
    # the live bytes at the peak are the buffers whose tenants span that step
    step = report.peak_step
    assert report.peak == sum(life.buffer.nbytes for life in report.buffers
                              if any(u.first <= step <= u.last for u in life.uses))
    text = str(report)
    assert text.startswith(f"{len(plan.buffers)} buffers, ") and "planned peak" in text


def test_draw_plan_with_memory(tmp_path):
    plan, _, _ = _mlp_step()
    source = gn.viz.to_dot(plan, show_memory=True).source
    assert "planned peak" in source and "in use" in source
    with pytest.raises(ValueError, match="show_memory applies to compiled plans"):
        gn.viz.to_dot(plan.outputs[0], show_memory=True)
