"""Whole plans as one Numba function (compiler/native.py): which plans get
one, that they compute what the step-by-step plans compute, and that
everything around a plan (feed checks, threads, profiles) still holds."""

import threading

import numpy as np
import pytest

import graphnet as gn
from graphnet.errors import FeedError

pytest.importorskip("numba")


def dense_net(dtype="float32", flatten=False):
    """(input, probabilities) of a 3-layer MLP with relu and softmax."""
    rng = np.random.default_rng(0)
    shape = (None, 4, 5) if flatten else (None, 20)
    x = gn.placeholder(shape, dtype, name="x")
    h = gn.reshape(x, (-1, 20)) if flatten else x
    for i, (n_in, n_out) in enumerate([(20, 16), (16, 8), (8, 3)]):
        w = gn.constant(rng.normal(0, 0.5, (n_in, n_out)).astype(dtype), name=f"w{i}")
        b = gn.variable(rng.normal(0, 0.1, n_out).astype(dtype), name=f"b{i}")
        h = h @ w + b
        h = gn.relu(h) if i < 2 else gn.softmax(h)
    return x, h


def both(fetches, x, value):
    """(native plan, its values, the NumPy backend's values)."""
    shapes = {x: value.shape}
    native = gn.compile(fetches, feeds=[x], feed_shapes=shapes, backend="numba")
    reference = gn.compile(fetches, feeds=[x], feed_shapes=shapes, backend="numpy")
    session = gn.Session()
    return native, session.run(native, {x: value}), session.run(reference, {x: value})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("flatten", [False, True], ids=["rows", "flattened-input"])
def test_a_dense_net_at_batch_one_runs_as_one_function(numba_cache, dtype, flatten):
    x, probs = dense_net(dtype, flatten)
    value = np.random.default_rng(1).normal(size=(1, 4, 5) if flatten else (1, 20)).astype(dtype)
    plan, got, expected = both([probs, x], x, value)
    assert plan.native.function is not None and plan.native.steps == 6
    assert "native(" in plan.source and "native: the 6 kernel steps" in plan.explain()
    tight = dtype == "float64"
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-12 if tight else 1e-5,
                               atol=1e-12 if tight else 1e-6)
    assert got[0].dtype == dtype
    np.testing.assert_array_equal(got[1], value)   # a fetched feed comes back as fed


def test_plans_that_cannot_run_natively_say_why(numba_cache):
    x, probs = dense_net()
    batch = gn.compile(probs, feeds=[x], feed_shapes={x: (4, 20)}, backend="numba")
    assert batch.native.function is None
    assert "native: off (a product of 4 rows" in batch.explain()
    loss = gn.mean(probs)
    train = gn.optim.SGD(0.1).minimize(loss)
    step = gn.compile([loss, train], feeds=[x], feed_shapes={x: (1, 20)}, backend="numba")
    assert step.native.function is None and "native: off" in step.explain()
    numpy = gn.compile(probs, feeds=[x], feed_shapes={x: (1, 20)}, backend="numpy")
    assert "native: off (the numpy backend)" in numpy.explain()
    guarded = gn.compile(probs, feeds=[x], feed_shapes={x: (1, 20)}, backend="numba",
                         guard=True)
    assert guarded.native.function is None


def test_a_native_plan_checks_its_feeds_and_takes_any_layout(numba_cache):
    x, probs = dense_net()
    plan = gn.compile(probs, feeds=[x], feed_shapes={x: (1, 20)}, backend="numba")
    session = gn.Session()
    with pytest.raises(FeedError, match="compiled for placeholder 'x' of shape"):
        session.run(plan, {x: np.zeros((2, 20), np.float32)})
    wide = np.random.default_rng(2).normal(size=(1, 40)).astype(np.float32)
    strided = wide[:, ::2]                      # not C-ordered: another specialization
    expected = session.run(plan, {x: np.ascontiguousarray(strided)})
    np.testing.assert_allclose(session.run(plan, {x: strided}), expected, rtol=1e-6)


def test_variables_set_between_runs_are_read(numba_cache):
    x, probs = dense_net()
    plan = gn.compile(probs, feeds=[x], feed_shapes={x: (1, 20)}, backend="numba")
    reference = gn.compile(probs, feeds=[x], feed_shapes={x: (1, 20)}, backend="numpy")
    session = gn.Session()
    value = np.ones((1, 20), np.float32)
    before = session.run(plan, {x: value})
    bias = next(v for v in plan.variables if v.name == "b2")
    session.set(bias, np.array([5.0, 0.0, -5.0], np.float32))
    after = session.run(plan, {x: value})
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, session.run(reference, {x: value}), rtol=1e-5)


def test_threads_share_a_native_plan_and_profiles_still_work(numba_cache):
    x, probs = dense_net()
    plan = gn.compile(probs, feeds=[x], feed_shapes={x: (1, 20)}, backend="numba")
    session = gn.Session()
    values = [np.random.default_rng(s).normal(size=(1, 20)).astype(np.float32)
              for s in range(4)]
    expected = [session.run(plan, {x: v}) for v in values]
    found, barrier = {}, threading.Barrier(4)

    def worker(i):
        barrier.wait()
        found[i] = [session.run(plan, {x: values[i]}) for _ in range(50)]
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for got in found[i]:
            np.testing.assert_array_equal(got, expected[i])
    profile = session.profile(plan, {x: values[0]}, runs=2)
    assert profile.calls == 7 and profile.total > 0   # step by step: 6 kernels, 1 feed check
    assert plan.kernel_calls == 2   # the feed check and the native function
    assert plan.code_seconds([values[0]], [session.get(v) for v in plan.variables]) > 0
