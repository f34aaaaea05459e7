"""Slices at run-time positions (positions, read_at, write_at), driven by one table."""

from functools import partial

import numpy as np
import pytest

import graphnet as gn

from .optable import Inputs, OpCase, forward_params, gradient_params, run_forward, run_gradient

R = Inputs(seed=11)


def _write(x, update, index, axis):
    out = x.copy()
    moved, src = np.moveaxis(out, axis, 0), np.moveaxis(update, axis, 0)
    moved[int(index):int(index) + src.shape[0]] = src
    return out


def _read(x, index, size, axis):
    return np.moveaxis(np.moveaxis(x, axis, 0)[int(index):int(index) + size], 0, axis)


CASES = [
    OpCase("positions", gn.positions, [R.normal(2, 5)], lambda x: np.arange(5),
           "axis=1", grad=False),
    OpCase("positions", lambda x, p: gn.positions(x, axis=0, offset=p),
           [R.normal(3, 2), np.array(4)], lambda x, p: np.arange(3) + 4, "with an offset",
           grad=False),
    OpCase("read_at", partial(gn.read_at, size=2, axis=2), [R.normal(2, 3, 6, 4), np.array(3)],
           partial(_read, size=2, axis=2), "a cache window"),
    OpCase("read_at", partial(gn.read_at, size=1, axis=0), [R.normal(4), np.array(0, "int32")],
           partial(_read, size=1, axis=0), "1-D first entry"),
    OpCase("write_at", partial(gn.write_at, axis=2),
           [R.normal(2, 3, 6, 4), R.normal(2, 3, 1, 4), np.array(5)],
           partial(_write, axis=2), "one decode step at the end"),
    OpCase("write_at", partial(gn.write_at, axis=1),
           [R.normal(2, 5), R.normal(2, 3), np.array(1)],
           partial(_write, axis=1), "a prefill window"),
]


@pytest.mark.parametrize("case, dtype, dynamic", forward_params(CASES))
def test_forward(case, dtype, dynamic):
    run_forward(case, dtype, dynamic)


@pytest.mark.parametrize("case, order, dynamic", gradient_params(CASES))
def test_gradient(case, order, dynamic):
    run_gradient(case, order, dynamic)


def test_one_plan_serves_every_position():
    cache = gn.placeholder((1, 4), "float32")
    p = gn.placeholder((), "int64")
    out = gn.write_at(cache, gn.ones_like(gn.read_at(cache, p, 1, axis=1)), p, axis=1)
    sess = gn.Session()
    for position in range(4):
        value = sess.run(out, {cache: np.zeros((1, 4), np.float32), p: position})
        np.testing.assert_array_equal(value, np.eye(4, dtype=np.float32)[position][None])
    assert len(sess._plans) == 1


def test_positions_outside_the_axis_are_named():
    x = gn.placeholder((2, 4), "float32")
    p = gn.placeholder((), "int64")
    with pytest.raises(IndexError, match=r"write_at: positions 3..4 are outside an axis of "
                                         r"length 4"):
        gn.Session().run(gn.write_at(x, x[:, :2], p, axis=1), {x: np.zeros((2, 4)), p: 3})
    with pytest.raises(gn.ShapeError, match="position must be a scalar integer"):
        gn.read_at(x, gn.placeholder((1,), "int64"), 1, axis=1)
    with pytest.raises(gn.ShapeError, match="does not fit x"):
        gn.write_at(x, gn.placeholder((3, 1), "float32"), p, axis=1)
