"""arena_updates: one update kernel over arenas gives what the per-variable kernels give.

Each optimizer trains a small MLP (float32 layers, one frozen, and a float64
scale) for several steps with the pass on and off, on both kernel
backends: the NumPy backend runs the same ufuncs on the same elements and
must agree bit for bit; the Numba backend runs the same loop, but an element
may fall in the vectorized body in one layout and in the scalar tail in the
other, where LLVM contracts differently: last bits only (rtol 2e-5).
"""


import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.kernels.arena import flat_view
from graphnet.compiler.ops import ArenaUpdate

from .graphs import GRAPHS, assert_same_results


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Each kernel backend (numba only when installed)."""
    if request.param == "numba":
        request.getfixturevalue("numba_cache")
    return request.param


OPTIMIZERS = {
    "sgd": lambda: gn.optim.SGD(0.1),
    "momentum": lambda: gn.optim.Momentum(0.05),
    "nesterov": lambda: gn.optim.Nesterov(0.05),
    "rmsprop": lambda: gn.optim.RMSprop(0.01),
    "rmsprop_centered_momentum": lambda: gn.optim.RMSprop(0.01, momentum=0.5, centered=True),
    "adagrad": lambda: gn.optim.Adagrad(0.1),
    "adam": lambda: gn.optim.Adam(0.01),
    "adam_amsgrad": lambda: gn.optim.Adam(0.01, amsgrad=True),
    "adamw": lambda: _adamw(),
    "adam_global_clipnorm": lambda: gn.optim.Adam(0.01, global_clipnorm=0.5),
    "sgd_clipvalue": lambda: gn.optim.SGD(0.1, clipvalue=0.01),
}


def _adamw():
    opt = gn.optim.AdamW(0.01, weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["bias"])
    return opt


def _model(seed: int = 0):
    """An MLP whose first layer is frozen, with a float64 scale variable."""
    rng = np.random.default_rng(seed)
    x = gn.placeholder((None, 6), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    sizes = [6, 7, 5, 3]
    params = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
        params.append(gn.variable(rng.normal(0, 0.5, (a, b)).astype(np.float32),
                                  name=f"dense_{i}/kernel"))
        params.append(gn.variable(rng.normal(0, 0.1, b).astype(np.float32),
                                  name=f"dense_{i}/bias"))
    scale = gn.variable(rng.normal(1, 0.1, (3,)), name="scale")        # float64
    offset = gn.variable(rng.normal(0, 0.1, (1, 3)), name="offset")     # float64
    h = x
    for i in range(3):
        h = h @ params[2 * i] + params[2 * i + 1]
        h = gn.relu(h) if i < 2 else h
    logits = gn.cast(gn.cast(h, "float64") * scale + offset, "float32")
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(logits, y))
    trained = params[2:] + [scale, offset]       # dense_0 is frozen
    feeds = [{x: rng.normal(size=(8, 6)).astype(np.float32),
              y: rng.integers(0, 3, 8).astype(np.int64)} for _ in range(3)]
    return loss, trained, params + [scale, offset], feeds


def _train(fetches, feeds, variables, steps: int = 5, **options):
    plan = gn.compile(fetches, feed_shapes={p: np.shape(v) for p, v in feeds[0].items()},
                      verify=True, arenas=True, **options)
    sess = gn.Session()
    losses = [sess.run(plan, feeds[i % len(feeds)])[0] for i in range(steps)]
    return plan, sess, losses, [sess.get(v) for v in variables]


def _assert_same(got, expected, backend):
    for g, e in zip(got, expected, strict=True):
        if backend == "numpy":
            np.testing.assert_array_equal(g, e)
        else:
            np.testing.assert_allclose(g, e, rtol=2e-5, atol=1e-8)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_arena_updates_match_per_variable_updates(name, backend):
    loss, trained, every, feeds = _model()
    optimizer = OPTIMIZERS[name]()
    train = optimizer.minimize(loss, var_list=trained)
    state = every + optimizer.variables()
    plan, sess, losses, values = _train([loss, train], feeds, state, backend=backend)
    _, _, ref_losses, ref_values = _train([loss, train], feeds, state, backend=backend,
                                          disable=["arena_updates"])
    _assert_same(losses, ref_losses, backend)
    _assert_same(values, ref_values, backend)
    arenas = [n for n in plan.graph if isinstance(n.op, ArenaUpdate)]
    assert arenas, plan.explain()
    assert all(v not in n.op.targets(n) for n in arenas for v in every[:2])  # frozen
    dtypes = {n.op.spec[0][1] for n in arenas}
    assert "float32" in dtypes
    for run in plan.arenas:     # the Session laid each arena out
        assert flat_view([sess._value(v) for v in run]) is not None


def test_multi_optimizer_gets_an_arena_per_optimizer(backend):
    rng = np.random.default_rng(1)
    x = gn.placeholder((None, 4), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    layers = [gn.layers.Dense(6, activation="relu"), gn.layers.Dense(5, activation="relu"),
              gn.layers.Dense(3)]
    h = x
    for layer in layers:
        h = layer(h)
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, y))
    adam, sgd = gn.optim.Adam(0.01), gn.optim.SGD(0.1, momentum=0.9)
    multi = gn.optim.MultiOptimizer([(adam, layers[:2]), (sgd, layers[2:])])
    train = multi.minimize(loss)
    state = [w for layer in layers for w in layer.weights] + multi.variables()
    feeds = [{x: rng.normal(size=(8, 4)).astype(np.float32),
              y: rng.integers(0, 3, 8).astype(np.int64)} for _ in range(2)]
    plan, _, losses, values = _train([loss, train], feeds, state, backend=backend)
    _, _, ref_losses, ref_values = _train([loss, train], feeds, state, backend=backend,
                                          disable=["arena_updates"])
    _assert_same(losses, ref_losses, backend)
    _assert_same(values, ref_values, backend)
    assert len([n for n in plan.graph if isinstance(n.op, ArenaUpdate)]) == 2


def test_session_keeps_working_on_arenas(tmp_path):
    """get, set, initialize, save and restore see and change the arena views."""
    loss, trained, every, feeds = _model(2)
    optimizer = gn.optim.Adam(0.01)
    train = optimizer.minimize(loss, var_list=trained)
    sess = gn.Session(arenas=True)
    for i in range(3):
        sess.run([loss, train], feeds[i])
    plan = sess._plans[next(iter(sess._plans))]
    assert plan.arenas
    w = trained[0]
    run = next(r for r in plan.arenas if w in r)
    before = sess._value(w)
    sess.set(w, np.ones(w.shape, np.float32))
    assert sess._value(w) is before and flat_view([sess._value(v) for v in run]) is not None
    np.testing.assert_array_equal(sess.get(w), 1)
    sess.save(tmp_path / "vars.npz", var_list=every)
    sess.initialize(every + optimizer.variables())
    np.testing.assert_array_equal(sess.get(w), w.op.initial_value)
    assert flat_view([sess._value(v) for v in run]) is not None
    sess.restore(tmp_path / "vars.npz", var_list=every)
    np.testing.assert_array_equal(sess.get(w), 1)
    # a fresh session, trained from the initial values again, agrees with this one
    sess.initialize(every + optimizer.variables())
    other = gn.Session(arenas=True)
    for i in range(3):
        np.testing.assert_array_equal(sess.run([loss, train], feeds[i])[0],
                                      other.run([loss, train], feeds[i])[0])


def test_plan_run_outside_a_session_updates_each_variable(backend):
    """Variables not laid out in arenas: the kernel runs them one by one."""
    loss, trained, every, feeds = _model(3)
    optimizer = gn.optim.Adam(0.01)
    train = optimizer.minimize(loss, var_list=trained)
    state = every + optimizer.variables()
    plan, _, losses, values = _train([loss, train], feeds, state, steps=3, backend=backend)
    arrays = {v: np.array(v.op.initial_value, copy=True) for v in plan.variables}
    got = []
    for i in range(3):
        feed = feeds[i]
        got.append(plan([feed[p] for p in plan.placeholders],
                        [arrays[v] for v in plan.variables])[0])
    _assert_same(got, losses, backend)
    _assert_same([arrays.get(v, v.op.initial_value) for v in state], values, backend)


def test_explain_names_the_arenas():
    loss, trained, _, feeds = _model(4)
    train = gn.optim.Adam(0.01).minimize(loss, var_list=trained)
    plan = gn.compile([loss, train], feed_shapes={p: np.shape(v) for p, v in feeds[0].items()},
                      arenas=True)
    text = plan.explain()
    assert "arena_updates" in text and "arena kernel" in text
    assert "laid out back to back" in text
    assert "gradients written by their producers" in text


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_the_pipeline_with_arenas_preserves_results_on_every_test_graph(graph, backend):
    fetches, feed = GRAPHS[graph]()
    assert_same_results(fetches, feed, steps=3, rtol=2e-5, backend=backend, arenas=True)


def test_arenas_are_on_by_default_and_arenas_false_turns_them_off():
    loss, trained, _, feeds = _model(5)
    train = gn.optim.Adam(0.01).minimize(loss, var_list=trained)
    shapes = {p: np.shape(v) for p, v in feeds[0].items()}
    assert gn.compile([loss, train], feed_shapes=shapes).arenas
    plan = gn.compile([loss, train], feed_shapes=shapes, arenas=False)
    assert not plan.arenas
    assert not any(isinstance(n.op, ArenaUpdate) for n in plan.graph)
    assert "off (arenas=False)" in plan.explain()
    assert not gn.Session(arenas=False).compiled([loss, train], feeds[0]).arenas
