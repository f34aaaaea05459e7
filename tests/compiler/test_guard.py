"""Guard mode (graphnet/compiler/guard.py): the first node that makes NaN or Inf."""

import inspect
import os

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.guard import GuardError

# These tests make NaN and Inf on purpose; NumPy says so with RuntimeWarnings.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not gn.compiler.kernels.numba_available(), reason="numba is not installed"))]


def _planted_nan():
    """A training step whose loss takes the log of a negative number, inside a
    chain the compiler fuses; returns (fetches, x, w, the log's line)."""
    x = gn.placeholder((None, 4), "float32", name="x")
    w = gn.variable(np.ones((4, 3), np.float32), name="w")
    h = gn.tanh(x @ w) * 2.0 + 1.0
    line = inspect.currentframe().f_lineno + 1
    bad = gn.log(h - 2.5)               # h < 2.5 everywhere: NaN
    loss = gn.mean(gn.exp(bad) * 3.0 + 1.0)
    train = gn.optim.SGD(0.1).minimize(loss)
    return [loss, train], x, w, line


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_planted_nan_is_traced_to_its_line_through_fusion(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHNET_CACHE", str(tmp_path))
    fetches, x, w, line = _planted_nan()
    plan = gn.compile(fetches, guard=True, backend=backend)
    assert any(len(step.nodes) > 1 and any(n.op.kind == "log" for n in step.nodes)
               for step in plan.steps), "the log should sit inside a fused kernel"
    sess = gn.Session()
    with pytest.raises(GuardError) as error:
        sess.run(plan, {x: np.full((2, 4), 0.01, np.float32)})
    message = str(error.value)
    assert message.startswith("log 'log' made NaN or Inf from finite inputs")
    assert f"created at {os.path.basename(__file__)}:{line}" in message
    assert "'sub' float32 (2, 3): min -1.42, max -1.42, 0 NaN, 0 Inf" in message
    assert "inside the fused kernel" in message
    assert error.value.node.op.kind == "log"
    np.testing.assert_array_equal(sess.get(w), np.ones((4, 3)))   # no update applied


def test_guard_off_adds_nothing_to_the_plan():
    fetches, x, _, _ = _planted_nan()
    assert "guard_check" not in gn.compile(fetches).source
    assert "guard_check" in gn.compile(fetches, guard=True).source
    values = gn.Session().run(fetches, {x: np.full((2, 4), 0.01, np.float32)})
    assert np.isnan(values[0])      # without guard: a NaN, silently


def test_fed_nan_and_variables_are_named():
    x = gn.placeholder((3,), "float32", name="x")
    with pytest.raises(GuardError, match=r"placeholder 'x' was fed NaN or Inf: float32 \(3,\): "
                                         r"min 1, max 2, 1 NaN, 0 Inf"):
        gn.Session(guard=True).run(x * 2.0, {x: np.array([1.0, np.nan, 2.0], np.float32)})
    y = gn.placeholder((2,), "float32", name="y")
    with pytest.raises(GuardError, match=r"div 'ratio' made NaN or Inf from finite inputs"):
        gn.Session(guard=True).run(gn.divide(y, y - y, name="ratio") + 1.0,
                                   {y: np.ones(2, np.float32)})


def _model(guard=False):
    model = gn.Sequential([gn.layers.Dense(3, input_shape=(4,), activation="relu"),
                           gn.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=gn.optim.SGD(1e30), loss="sparse_categorical_crossentropy",
                  guard=guard)
    return model


def test_model_compile_guard_stops_before_the_update():
    model = _model(guard=True)
    before = model.get_weights()
    x = np.full((8, 4), 3e38, np.float32)     # x @ W overflows
    with pytest.raises(GuardError, match="made NaN or Inf from finite inputs, created at"):
        model.fit(x, np.zeros(8, np.int64), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_fit_reruns_a_nan_batch_in_guard_mode_and_terminate_on_nan_says_why(capsys):
    model = _model()
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    model.fit(x, np.zeros(64, np.int64), epochs=3, verbose=0, batch_size=8,
              callbacks=[gn.callbacks.TerminateOnNaN()])
    out = capsys.readouterr().out
    assert "invalid loss nan, terminating training" in out
    assert model.nan_report is not None and model.nan_report in out
    assert "NaN or Inf" in model.nan_report
