"""Variable updates (assign, assign_add, assign_sub) and group, driven by one table.

Semantics under test: every read of a variable in a run sees its value from
before the run; the fetched value of an assignment is the variable's new value.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

import graphnet as gn

from .optable import Inputs

R = Inputs(seed=6)


@dataclass
class StateCase:
    op: str
    build: Callable      # (variable node, value node or scalar) -> update node
    initial: np.ndarray
    value: object        # an array (fed through a placeholder) or a Python scalar
    expected: Callable   # (initial, value) -> the variable's new value
    label: str = ""
    fetches_none: bool = False  # group's value is None

    @property
    def id(self):
        return f"{self.op}[{self.label}]" if self.label else self.op


CASES = [
    StateCase("assign", gn.assign, R.normal(2, 3), R.normal(2, 3), lambda v, x: x),
    StateCase("assign", gn.assign, R.normal(2, 3), R.normal(3), lambda v, x: v * 0 + x,
              "broadcast row"),
    StateCase("assign", gn.assign, R.normal(2, 3), 5.0, lambda v, x: np.full_like(v, x),
              "scalar"),
    StateCase("assign_add", gn.assign_add, R.normal(2, 3), R.normal(2, 3), lambda v, x: v + x),
    StateCase("assign_add", gn.assign_add, R.normal(2, 3), R.normal(2, 1), lambda v, x: v + x,
              "broadcast column"),
    StateCase("assign_add", gn.assign_add, R.normal(4), 1.5, lambda v, x: v + x, "scalar"),
    StateCase("assign_sub", gn.assign_sub, R.normal(2, 3), R.normal(2, 3), lambda v, x: v - x),
    StateCase("assign_sub", lambda v, x: gn.assign_sub(v, 0.1 * x), R.normal(3),
              R.normal(3), lambda v, x: v - 0.1 * x, "sgd step"),
    StateCase("assign_sub", gn.assign_sub, R.ints(0, 9, 3), R.ints(0, 9, 3),
              lambda v, x: v - x, "int64"),
    StateCase("group", lambda v, x: gn.group(gn.assign_add(v, x)), R.normal(3), R.normal(3),
              lambda v, x: v + x, fetches_none=True),
]
DTYPES = ["float32", "float64"]


def _setup(case, dtype):
    initial = case.initial.astype(dtype) if case.initial.dtype.kind == "f" else case.initial
    var = gn.variable(initial, name="v")
    if isinstance(case.value, np.ndarray):
        value = case.value.astype(initial.dtype)
        node = gn.placeholder(value.shape, value.dtype, name="value")
        feed = {node: value}
    else:
        value = node = case.value
        feed = {}
    return var, initial, node, value, feed


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_update_value_and_rule(case, dtype):
    var, initial, node, value, feed = _setup(case, dtype)
    update = case.build(var, node)
    sess = gn.Session()
    fetched = sess.run(update, feed)
    expected = case.expected(initial, value).astype(initial.dtype)
    if case.fetches_none:
        assert fetched is None and update.shape is None
    else:
        assert (update.shape, update.dtype) == (var.shape, var.dtype)
        assert (fetched.shape, fetched.dtype) == (var.shape, var.dtype)
        np.testing.assert_allclose(fetched, expected, rtol=1e-6)
    np.testing.assert_allclose(sess.get(var), expected, rtol=1e-6)
    sess.run(update, feed)  # a second run updates again, from the new value
    np.testing.assert_allclose(sess.get(var), case.expected(expected, value), rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reads_in_the_same_run_see_the_old_value(case):
    var, initial, node, _, feed = _setup(case, "float64")
    before = var * 2  # built before the update ...
    update = case.build(var, node)
    after = var + 0   # ... and after it: both read the value from before the run
    got_before, got_after, _ = gn.Session().run([before, after, update], feed)
    np.testing.assert_array_equal(got_before, initial * 2)
    np.testing.assert_array_equal(got_after, initial)


def test_update_value_can_depend_on_the_variable():
    w = gn.variable(np.array([1.0, 2.0]))
    sess = gn.Session()
    new = sess.run(gn.assign(w, w * w + 1))
    np.testing.assert_array_equal(new, [2.0, 5.0])
    np.testing.assert_array_equal(sess.get(w), [2.0, 5.0])


def test_assign_from_an_overlapping_view_of_itself():
    w = gn.variable(np.arange(9.0).reshape(3, 3))
    sess = gn.Session()
    sess.run(gn.assign(w, gn.transpose(w)))
    np.testing.assert_array_equal(sess.get(w), np.arange(9.0).reshape(3, 3).T)
    sess.run(gn.assign(w, w[::-1]))
    np.testing.assert_array_equal(sess.get(w), np.arange(9.0).reshape(3, 3).T[::-1])


def test_group_runs_every_update_and_fetches_none():
    a, b = gn.variable(np.zeros(2)), gn.variable(np.ones(3))
    step = gn.group([gn.assign_add(a, 1.0), gn.assign_sub(b, 0.5)], name="step")
    sess = gn.Session()
    assert sess.run([step, step]) == [None, None]
    np.testing.assert_array_equal(sess.get(a), [1.0, 1.0])
    np.testing.assert_array_equal(sess.get(b), [0.5, 0.5, 0.5])


def test_sgd_with_assign_sub_decreases_a_quadratic():
    w = gn.variable(np.array([3.0, -2.0]))
    loss = gn.sum(gn.square(w))
    step = gn.assign_sub(w, 0.25 * gn.gradients(loss, w))
    sess = gn.Session()
    for _ in range(3):
        sess.run(step)
    np.testing.assert_allclose(sess.get(w), np.array([3.0, -2.0]) * 0.5 ** 3)


@pytest.mark.parametrize("build, message", [
    (lambda v: gn.assign(gn.placeholder((3,)), 1.0), "not a variable"),
    (lambda v: gn.assign(v, np.ones(4)), "does not fit"),
    (lambda v: gn.assign_add(v, np.ones((2, 3))), "does not fit"),
    (lambda v: gn.assign(gn.variable(np.zeros(3, np.int64)), np.ones(3)), "cannot store"),
])
def test_bad_updates_raise_at_build_time(build, message):
    with pytest.raises(gn.ShapeError, match=message):
        build(gn.variable(np.zeros(3)))


def test_two_updates_of_one_variable_in_one_run_are_refused():
    v = gn.variable(np.zeros(3))
    with pytest.raises(gn.GraphError, match="assigned twice"):
        gn.Session().run([gn.assign_add(v, 1.0), gn.assign_sub(v, 1.0)])


VIEWS = {  # reads that may alias the variable's memory
    "variable": lambda v: v,
    "slice": lambda v: v[1:],
    "reshape": lambda v: gn.reshape(v, (3, 2)),
    "transpose": lambda v: gn.transpose(v),
    "expand_dims": lambda v: gn.expand_dims(v, 0),
    "broadcast_to": lambda v: gn.broadcast_to(v, (2, 2, 3)),
    "stop_gradient": lambda v: gn.stop_gradient(v),
    "chain": lambda v: gn.reshape(gn.transpose(v)[::-1], (-1,))[1:],
}


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_reader_of_a_view_built_after_the_update_sees_the_old_value(view):
    v = gn.variable(np.zeros((2, 3)))
    alias = view(v)
    update = gn.assign_add(v, 1.0)
    doubled = alias * 2  # reads v's memory through the view, after the update was built
    got, _ = gn.Session().run([doubled, update])
    np.testing.assert_array_equal(got, np.zeros_like(got))


@pytest.mark.parametrize("name", [n for n in VIEWS if n != "chain"])  # chain copies
def test_fetched_view_sees_the_old_value(name):
    view = VIEWS[name]
    v = gn.variable(np.zeros((2, 3)))
    got, _ = gn.Session().run([view(v), gn.assign_add(v, 1.0)])
    np.testing.assert_array_equal(got, np.zeros_like(got))
