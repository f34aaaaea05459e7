"""Sessions and models under concurrent callers (graphnet/session.py, compiler/plan.py)."""

import threading

import numpy as np
import pytest

import graphnet as gn


def _mlp(optimizer="sgd"):
    gn.random.seed(0)
    model = gn.Sequential([gn.layers.Dense(64, activation="relu", input_shape=(20,)),
                           gn.layers.Dense(64, activation="relu"),
                           gn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def _in_threads(count, work):
    """Run work(i) in `count` threads started together; re-raise the first error."""
    start, errors = threading.Barrier(count), []

    def run(i):
        try:
            start.wait()
            work(i)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("attempt", range(3))
def test_eight_threads_predicting_get_their_own_answers(attempt):
    """The defect: buffers shared by every caller gave 140 wrong outputs of 1,600."""
    model = _mlp()
    rng = np.random.default_rng(attempt)
    inputs = [rng.standard_normal((32, 20)).astype(np.float32) for _ in range(8)]
    expected = [model.predict(x) for x in inputs]
    wrong = []

    def work(i):
        for _ in range(200):
            if not np.array_equal(model.predict(inputs[i]), expected[i]):
                wrong.append(i)
    _in_threads(8, work)
    assert not wrong, f"{len(wrong)} wrong outputs of 1,600"


def test_concurrent_training_steps_run_one_at_a_time():
    x = np.random.default_rng(0).standard_normal((32, 20)).astype(np.float32)
    y = np.arange(32) % 10
    serial, threaded = _mlp(), _mlp()
    threaded.set_weights(serial.get_weights())
    for _ in range(100):
        serial.train_on_batch(x, y)
    _in_threads(4, lambda i: [threaded.train_on_batch(x, y) for _ in range(25)])
    assert threaded.session.run(threaded.optimizer.iterations) == 100
    for a, b in zip(serial.get_weights(), threaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_concurrent_first_runs_compile_one_plan():
    x = gn.placeholder((None, 3), "float32", name="x")
    w = gn.variable(np.ones((3, 2), np.float32), name="w")
    y = gn.tanh(x @ w)
    sess = gn.Session()
    results = [None] * 8

    def work(i):
        results[i] = sess.run(y, {x: np.full((4, 3), i, np.float32)})
    _in_threads(8, work)
    assert len(sess.cache_info()) == 1
    for i, value in enumerate(results):
        np.testing.assert_allclose(value, np.tanh(np.full((4, 2), 3.0 * i)), rtol=1e-6)


# ---------------------------------------------------------- recompiles


def test_each_recompile_says_why(caplog):
    x = gn.placeholder((None, 3), "float32", name="x")
    t = gn.placeholder((None,), "float32", name="t")
    w = gn.variable(np.ones((3, 1), np.float32), name="w")
    out = gn.sum(x @ w, axis=1)
    loss = gn.mean(gn.square(out - t))
    sess = gn.Session()
    with caplog.at_level("INFO", logger="graphnet.session"):
        sess.run(out, {x: np.ones((32, 3))})
        sess.run(out, {x: np.ones((32, 3))})                  # cached: no compile
        sess.run(out, {x: np.ones((17, 3))})
        sess.run([out, loss], {x: np.ones((17, 3)), t: np.ones(17)})
        sess.run(out, {x: np.ones((17, 3)), t: np.ones(17)})
    reasons = [r.reason for r in sess.cache_info()]
    assert reasons == ["first run of 'sum'",
                       "feed 'x' changed shape in axis 0 from 32 to 17",
                       "new fetches ('sum', 'mean')",
                       "feed 't' added"]
    assert all(r.site.startswith("test_threads.py:") for r in sess.cache_info())
    assert "feed 'x' changed shape in axis 0 from 32 to 17" in caplog.text
    assert str(sess.cache_info()[1]).startswith("sum at test_threads.py:")


def test_one_line_compiling_many_plans_warns_once():
    x = gn.placeholder((None,), "float32", name="x")
    y = x * 2.0
    sess = gn.Session()
    with pytest.warns(gn.session.RecompileWarning, match=r"has compiled 9 plans.*"
                                                         r"drop_remainder=True"):
        for n in range(1, 11):
            sess.run(y, {x: np.ones(n)})
    assert len(sess.cache_info()) == 10
