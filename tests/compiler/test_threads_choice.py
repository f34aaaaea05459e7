"""The per-plan BLAS thread choice (compiler/threads.py): settings, the
automatic choice from measured times (on a fake BLAS and a fake clock),
restoring the user's count, honouring the user's limits, and equal results
on the real BLAS whatever the count."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler import threads


class FakeController:
    """A BLAS thread-count controller that records every count set."""

    def __init__(self, n):
        self.n, self.history = n, []

    def get_num_threads(self):
        return self.n

    def set_num_threads(self, n):
        self.n = n
        self.history.append(n)


class FakeClock:
    """`time.perf_counter` that advances only when a test says so."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def fake(monkeypatch):
    """A 4-thread fake BLAS and a fake clock in place of the real ones."""
    controller = FakeController(4)
    monkeypatch.setattr(threads, "_blas", threads.Blas([controller]))
    monkeypatch.setattr(threads, "_blas_looked", True)
    clock = FakeClock()
    monkeypatch.setattr(threads, "time", clock)
    for name in threads.BLAS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(threads.ENV, "auto")   # the choice is opt-in
    return controller, clock


def run(choice, controller, clock, cost):
    """One run bracketed as Plan.__call__ does; it takes cost[count in force]
    seconds. Returns the count in force during the run."""
    token = choice.start()
    in_force = controller.n
    clock.now += cost[in_force]
    choice.finish(token)
    return in_force


def test_settings_parse():
    assert threads._setting(None) == "off"     # opt-in: results repeat by default
    assert threads._setting("auto") == "auto"
    assert threads._setting(" Off ") == "off"
    assert threads._setting("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match=threads.ENV):
            threads._setting(bad)


@pytest.mark.parametrize("costs, expected", [
    ({1: 2e-3, 4: 1e-3}, 4),      # more threads twice as fast: chosen
    ({1: 1e-3, 4: 2e-3}, 1),      # slower with more threads
    ({1: 1e-3, 4: 0.98e-3}, 1),   # 2% faster is within the margin: one thread
])
def test_auto_settles_on_the_faster(fake, costs, expected):
    controller, clock = fake
    choice = threads.ThreadChoice()
    assert choice.mode == "auto" and choice.count is None
    assert "not measured yet" in str(choice)
    seen = [run(choice, controller, clock, costs) for _ in range(400)]
    assert choice.count == expected
    assert seen[:threads.WARMUP] == [4] * threads.WARMUP     # warm-up runs left alone
    assert set(seen[threads.WARMUP:threads.WARMUP + 4 * threads.BLOCK]) == {1, 4}
    assert seen[-50:] == [expected] * 50                    # settled
    assert controller.n == 4                                # the user's count, back
    assert f"BLAS threads: {expected} of 4 (measured:" in str(choice)


def test_tuning_needs_enough_time_per_candidate(fake):
    controller, clock = fake
    choice = threads.ThreadChoice()
    tiny = {1: 1e-6, 4: 1.5e-6}   # tiny runs: blocks until MAX_BLOCKS
    runs = 0
    while choice.count is None:
        run(choice, controller, clock, tiny)
        runs += 1
    assert runs == threads.WARMUP + 2 * threads.MAX_BLOCKS * threads.BLOCK
    assert choice.count == 1


def test_count_restored_after_each_run_and_after_an_error(fake):
    controller, clock = fake
    choice = threads.ThreadChoice(1)
    assert choice.mode == "fixed" and str(choice).startswith("BLAS threads: 1 of 4")
    assert run(choice, controller, clock, {1: 1e-3, 4: 1e-3}) == 1
    assert controller.n == 4 and controller.history == [1, 4]
    token = choice.start()
    try:
        raise RuntimeError
    except RuntimeError:
        pass
    finally:
        choice.finish(token)
    assert controller.n == 4


def test_environment_settings(fake, monkeypatch):
    controller, clock = fake
    monkeypatch.setenv(threads.ENV, "off")
    choice = threads.ThreadChoice()
    assert choice.mode == "off" and "left alone (GRAPHNET_BLAS_THREADS=off)" in str(choice)
    assert choice.start() is None
    monkeypatch.setenv(threads.ENV, "2")
    choice = threads.ThreadChoice()
    assert run(choice, controller, clock, {2: 1e-3, 4: 1e-3}) == 2 and controller.n == 4
    monkeypatch.setenv(threads.ENV, "auto")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    choice = threads.ThreadChoice()
    assert choice.mode == "off" and "OPENBLAS_NUM_THREADS=4 is set" in str(choice)


def test_a_limit_set_by_the_user_is_kept(fake):
    controller, clock = fake
    choice = threads.ThreadChoice()
    for _ in range(400):
        run(choice, controller, clock, {1: 1e-3, 4: 3e-3})
    assert choice.count == 1
    controller.set_num_threads(3)     # e.g. threadpool_limits(3) around the user's loop
    controller.history.clear()
    assert run(choice, controller, clock, {3: 1e-3}) == 3
    assert controller.history == [] and controller.n == 3
    assert choice.limited and "limit set outside graphnet" in str(choice)
    choice.fix(2)                     # an explicit choice for this plan wins
    assert run(choice, controller, clock, {2: 1e-3}) == 2 and controller.n == 3


def test_concurrent_runs_switch_once(fake):
    controller, _ = fake
    choice = threads.ThreadChoice(1)
    first, second = choice.start(), choice.start()
    assert controller.n == 1 and controller.history == [1]
    choice.finish(first)               # the first to finish puts the count back ...
    choice.finish(second)              # ... once
    assert controller.history == [1, 4] and threads._blas.active == 0


def _mlp_plan():
    gn.random.seed(0)
    x = gn.placeholder((None, 256), "float32", name="x")
    w1 = gn.variable(gn.init.glorot_uniform((256, 512), seed=1), name="w1")
    w2 = gn.variable(gn.init.glorot_uniform((512, 64), seed=2), name="w2")
    out = gn.relu(x @ w1) @ w2
    plan = gn.compile(out, feeds=[x], feed_shapes={x: (128, 256)})
    return plan, np.random.default_rng(0).random((128, 256), dtype=np.float32), \
        [np.asarray(w1.op.initial_value), np.asarray(w2.op.initial_value)]


def test_plan_explains_its_choice(fake):
    plan, xb, values = _mlp_plan()
    assert isinstance(plan.threads, threads.ThreadChoice)
    assert "BLAS threads: chosen from this plan's run times" in plan.explain()
    plan.threads.fix(1)
    plan([xb], values)
    assert "BLAS threads: 1 of 4 (plan.threads.fix)" in plan.explain()
    plan._idle = [lambda feeds, variables: 1 / 0]   # a run that raises
    with pytest.raises(ZeroDivisionError):
        plan([xb], values)
    assert fake[0].n == 4


def test_results_equal_whatever_the_real_thread_count():
    pytest.importorskip("threadpoolctl")
    blas = threads.blas()
    if blas is None:
        pytest.skip("no BLAS threadpoolctl knows")
    plan, xb, values = _mlp_plan()
    expected = xb.astype(np.float64) @ values[0]
    expected = np.maximum(expected, 0) @ values[1]
    before = blas.get()
    results = []
    for setting in (None, 1, max(2, blas.baseline)):
        plan.threads.fix(setting)
        for _ in range(3):
            results.append(plan([xb], values)[0])
            assert blas.get() == before
    plan.threads.auto()
    for _ in range(60):
        results.append(plan([xb], values)[0])
        assert blas.get() == before
    for result in results:   # BLAS rounds differently with other thread counts
        np.testing.assert_allclose(result, expected, rtol=1e-4, atol=1e-4)


def test_a_real_threadpool_limit_is_kept():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = threads.blas()
    if blas is None or blas.baseline < 2:
        pytest.skip("needs a BLAS with two threads or more")
    plan, xb, values = _mlp_plan()
    plan.threads.auto()
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        for _ in range(5):
            plan([xb], values)
            assert blas.get() == 1
    assert blas.get() == blas.baseline


def test_a_clear_loser_is_dropped_at_once_and_the_choice_is_measured_again(fake):
    controller, clock = fake
    choice = threads.ThreadChoice()
    busy = {1: 1e-3, 4: 50e-3}        # two threads on a busy machine
    for _ in range(threads.WARMUP + 2 * threads.BLOCK):
        run(choice, controller, clock, busy)
    assert choice.count == 1
    for _ in range(threads.RETUNE):   # then the machine quiets down
        run(choice, controller, clock, {1: 2e-3, 4: 1e-3})
    assert choice.count is None and "measuring again after 2,000 runs at 1" in str(choice)
    for _ in range(400):
        run(choice, controller, clock, {1: 2e-3, 4: 1e-3})
    assert choice.count == 4 and controller.n == 4
