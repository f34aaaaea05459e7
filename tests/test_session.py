"""Session: feeds, fetches, variable store, plan cache (graphnet/session.py)."""

import warnings

import numpy as np
import pytest

import graphnet as gn
from graphnet.errors import FeedError


@pytest.fixture
def affine():
    x = gn.placeholder((None, 3), "float32", name="x")
    w = gn.variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
    return x, w, x @ w


def test_fetch_structures_are_preserved(affine):
    x, w, y = affine
    sess = gn.Session()
    feed = {x: np.ones((2, 3), np.float32)}
    single = sess.run(y, feed)
    as_list = sess.run([y, w], feed)
    as_tuple = sess.run((y,), feed)
    as_dict = sess.run({"out": y, "nested": [w]}, feed)
    expected = np.ones((2, 3)) @ np.arange(6).reshape(3, 2)
    np.testing.assert_allclose(single, expected)
    assert isinstance(as_list, list) and isinstance(as_tuple, tuple)
    np.testing.assert_allclose(as_dict["out"], expected)
    np.testing.assert_allclose(as_dict["nested"][0], np.arange(6).reshape(3, 2))


def test_scalars_come_back_as_numpy_scalars():
    value = gn.Session().run(gn.sum(gn.constant([1.0, 2.0], "float32")))
    assert isinstance(value, np.float32) and value == 3.0


def test_fetched_values_are_copies(affine):
    x, w, _ = affine
    sess = gn.Session()
    got = sess.run(w)
    got[...] = 100
    np.testing.assert_allclose(sess.get(w), np.arange(6).reshape(3, 2))


def test_unfed_placeholder_names_it(affine):
    x, _, y = affine
    with pytest.raises(FeedError, match=r"placeholder 'x' \(None, 3\) float32 needs a value"):
        gn.Session().run(y)


def test_wrong_feed_shape_names_placeholder_and_shapes(affine):
    x, _, y = affine
    with pytest.raises(FeedError, match=r"'x' expects shape \(None, 3\); fed \(2, 4\)"):
        gn.Session().run(y, {x: np.ones((2, 4))})
    with pytest.raises(FeedError, match=r"fed \(3,\)"):
        gn.Session().run(y, {x: np.ones(3)})


def test_uncastable_feed_dtype_is_refused():
    labels = gn.placeholder((None,), "int64", name="labels")
    with pytest.raises(FeedError, match="'labels' is int64; cannot feed a float64"):
        gn.Session().run(labels * 2, {labels: np.array([0.5, 1.5])})
    with pytest.raises(FeedError, match="cannot feed a str32"):
        gn.Session().run(labels * 2, {labels: np.array(["a"])})


def test_feed_key_must_be_a_placeholder(affine):
    x, w, y = affine
    with pytest.raises(FeedError, match="'w' \\(variable\\) is not a placeholder"):
        gn.Session().run(y, {x: np.ones((1, 3)), w: np.zeros((3, 2))})
    with pytest.raises(FeedError, match="'x' is not a placeholder"):
        gn.Session().run(y, {"x": np.ones((1, 3))})


def test_bad_feed_leaves_variables_unchanged(affine):
    x, w, y = affine
    step = gn.assign_sub(w, gn.sum(y))
    sess = gn.Session()
    before = sess.get(w)
    with pytest.raises(FeedError):
        sess.run(step, {x: np.ones((2, 5))})
    np.testing.assert_array_equal(sess.get(w), before)


def test_get_set_and_initialize():
    v = gn.variable(np.zeros(3, np.float32), name="v")
    sess = gn.Session()
    sess.set(v, [1, 2, 3])
    np.testing.assert_array_equal(sess.run(v), [1, 2, 3])
    sess.run(gn.assign_add(v, 1.0))
    np.testing.assert_array_equal(sess.get(v), [2, 3, 4])
    sess.initialize()
    np.testing.assert_array_equal(sess.get(v), [0, 0, 0])
    with pytest.raises(gn.ShapeError, match=r"'v' has shape \(3,\); got \(2,\)"):
        sess.set(v, [1, 2])


def test_sessions_hold_separate_values():
    v = gn.variable(np.zeros(1), name="v")
    a, b = gn.Session(), gn.Session()
    a.run(gn.assign(v, [5.0]))
    assert b.get(v)[0] == 0.0 and a.get(v)[0] == 5.0


def test_updates_read_values_from_before_the_run():
    v = gn.variable(np.array([1.0]), name="v")
    doubled = v * 2
    new = gn.assign(v, v + 10)
    before, after, _ = gn.Session().run([doubled, new, v])
    assert before[0] == 2.0 and after[0] == 11.0


def test_only_needed_nodes_run():
    x = gn.placeholder((2,), name="x")
    unused = gn.placeholder((2,), name="unused")
    _ = x + unused
    out = gn.Session().run(x * 3, {x: np.ones(2)})  # `unused` needs no feed
    np.testing.assert_array_equal(out, [3, 3])


def test_plans_are_cached_per_fetches_and_feed_shapes(affine):
    x, _, y = affine
    sess = gn.Session()
    sess.run(y, {x: np.ones((2, 3))})
    sess.run(y, {x: np.ones((2, 3))})
    assert len(sess._plans) == 1
    sess.run(y, {x: np.ones((5, 3))})
    assert len(sess._plans) == 2


def test_compiled_plan_runs_in_a_session(affine):
    x, w, y = affine
    step = gn.assign_sub(w, 0.5 * gn.gradients(gn.sum(y), w))
    plan = gn.compile([gn.sum(y), gn.group(step)], feeds=[x])
    loss, nothing = gn.Session().run(plan, {x: np.ones((1, 3))})
    assert loss == 15.0 and nothing is None
    assert "def plan(feeds, variables):" in plan.source
    with pytest.raises(gn.GraphError, match="need placeholders \\['x'\\]"):
        gn.compile(y, feeds=[])


def test_profile_times_every_step_and_names_the_slowest():
    x = gn.placeholder((None, 3), "float32", name="x")
    w = gn.variable(np.ones((3, 2), np.float32), name="w")
    loss = gn.sum(gn.exp(x @ w))
    train = gn.assign_sub(w, 0.01 * gn.gradients(loss, [w])[0])
    sess = gn.Session()
    profile = sess.profile([loss, train], {x: np.ones((4, 3), np.float32)}, runs=4)
    assert len(profile.seconds) == len(profile.steps) and profile.runs == 4
    assert all(t >= 0 for t in profile.seconds) and profile.total > 0
    slowest = profile.slowest(3)
    assert len(slowest) == 3 and slowest[0][0] >= slowest[1][0] >= slowest[2][0]
    text = str(profile)
    assert text.startswith(f"{profile.total * 1e3:.3f} ms per run") and "test_session.py" in text
    value = 1.0  # the plan really ran: 1 untimed and 4 timed SGD steps on every entry of w
    for _ in range(5):
        value -= 0.01 * 4 * np.exp(3 * value)
    np.testing.assert_allclose(sess.get(w), np.full((3, 2), value), rtol=1e-4)
    # the plan's own code was timed too, its kernels stubbed out: nothing more ran
    plan = sess.compiled([loss, train], {x: np.ones((4, 3), np.float32)})
    assert profile.code > 0 and profile.calls == plan.kernel_calls == sum(
        s.kernel not in ("feed", "variable", "constant", "group") for s in plan.steps) > 0
    assert f"its {profile.calls} kernel calls stubbed out" in text
    assert plan.code_seconds([np.ones((4, 3), np.float32)], [sess._value(w)], runs=3) > 0
    np.testing.assert_allclose(sess.get(w), np.full((3, 2), value), rtol=1e-4)


def test_profile_checks_feeds_like_run():
    x = gn.placeholder((None, 3), "float32", name="x")
    with pytest.raises(FeedError, match="needs a value"):
        gn.Session().profile(gn.sum(x), {})


# ------------------------------------------------------------ recompile reasons


def _reasons(sess) -> list:
    return [record.reason for record in sess.cache_info()]


def test_recompiles_name_a_changed_dtype_and_added_variables():
    """A line that fetches new nodes is compared with the plan compiled before there."""
    sess = gn.Session()
    w = gn.variable(np.ones(3, np.float32), name="w")
    for dtype, with_w in (("float32", False), ("float64", False), ("float64", True)):
        x = gn.placeholder((None,), dtype, name="x")
        sess.run(gn.mean(x * w if with_w else x), {x: np.ones(3)})
    assert _reasons(sess) == [
        "first run of 'mean'",
        "new fetches ('mean_1'): feed 'x_1' changed dtype from float32 to float64",
        "new fetches ('mean_2'): variable 'w' added"]


def test_recompiles_spot_a_graph_built_again_and_dropped_feeds(caplog):
    x = gn.placeholder((None,), "float32", name="x")
    t = gn.placeholder((None,), "float32", name="t")
    sess = gn.Session()
    with caplog.at_level("INFO", logger="graphnet.session"):
        for _ in range(2):
            loss = gn.mean(gn.square(x - 1.0))           # built anew on every pass
            sess.run(loss, {x: np.ones(4), t: np.ones(4)})
        sess.run(loss, {x: np.ones(4)})
        sess.run([loss], {x: np.ones(4)})
    line = f"test_session.py:{_line_of('sess.run(loss, {x: np.ones(4), t: np.ones(4)})')}"
    assert _reasons(sess) == [
        "first run of 'mean'",
        f"new fetches ('mean_1'): the graph was built again (as for 'mean' at {line}): build "
        "it once and reuse its nodes",
        "feed 't' no longer fed",
        "the same fetches in another structure (list, tuple or dict)"]
    assert f"compiled a plan at {line}: new fetches ('mean_1'): the graph was built" in caplog.text
    assert str(sess.cache_info()[2]) == \
        f"mean_1 at test_session.py:{_line_of('sess.run(loss, {x: np.ones(4)})')}: " \
        "feed 't' no longer fed"


def test_a_line_compiling_many_plans_warns_there_once_with_a_hint():
    x = gn.placeholder((None,), "float32", name="x")
    y = x * 2.0
    sess = gn.Session()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 13):
            sess.run(y, {x: np.ones(n)})
    assert len(caught) == 1 and caught[0].category is gn.session.RecompileWarning
    line = _line_of("sess.run(y, {x: np.ones(n)})")
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
    assert "has compiled 9 plans" in str(caught[0].message)
    assert "pad batches to one size" in str(caught[0].message)
    assert "Dataset.batch(..., drop_remainder=True)" in str(caught[0].message)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(9):
            sess.run(gn.sum(x), {x: np.ones(3)})
    assert "build the graph once" in str(caught[0].message)
    sess.close()
    assert sess.cache_info() == []


def _line_of(text: str) -> int:
    """The line of this file that holds `text` (once, not counting the asking line)."""
    lines = [i for i, line in enumerate(open(__file__), 1)
             if text in line and "_line_of(" not in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def test_a_plan_sees_replaced_values_after_its_cached_lookup():
    """Session.run keeps a plan's variable arrays between runs while the store's
    version stands; replacing an entry (close, a fresh store, arena layouts)
    must be seen by the next run, and a plain dict store is looked up each run."""
    x = gn.placeholder((None, 2), "float32", name="x")
    w = gn.variable(np.ones((2, 1), np.float32), name="w")
    step = gn.assign_add(w, np.ones((2, 1), np.float32))
    feed = {x: np.ones((1, 2), np.float32)}
    sess = gn.Session()
    plan = gn.compile([x @ w, step], feeds=[x])
    assert sess.run(plan, feed)[0][0, 0] == 2.0
    assert sess.run(plan, feed)[0][0, 0] == 4.0      # the cached arrays, updated in place
    sess.close()                                     # every entry dropped: the version moves
    assert sess.run(plan, feed)[0][0, 0] == 2.0
    plain = gn.Session(values={})
    assert plain.run(plan, feed)[0][0, 0] == 2.0
    plain._values[w] = np.full((2, 1), 10, np.float32)   # no version: still seen
    assert plain.run(plan, feed)[0][0, 0] == 20.0
