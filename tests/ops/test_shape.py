"""Reshaping, joining, slicing, indexing and re-typing ops, driven by one table."""

from functools import partial

import numpy as np
import pytest

import graphnet as gn

from .optable import Inputs, OpCase, forward_params, gradient_params, run_forward, run_gradient

R = Inputs(seed=4)


def np_split(x, sizes, axis):
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


# basic indices that work the same on nodes and arrays
INDICES = [
    np.s_[1], np.s_[-1], np.s_[1:], np.s_[::-1], np.s_[:, ::-2], np.s_[..., 1],
    np.s_[None, 0], np.s_[1, None, ..., -2:], np.s_[:, 1:3, ::2], np.s_[-1:0:-1, ..., None],
    np.s_[...], np.s_[0, 1, 2],
]

CASES = [
    OpCase("unflatten", partial(gn.unflatten, axis=2, sizes=(2, 3)), [R.normal(2, 3, 6)],
           lambda x: x.reshape(2, 3, 2, 3), "split heads"),
    OpCase("unflatten", partial(gn.unflatten, axis=0, sizes=(3, 1)), [R.normal(3, 2)],
           lambda x: x.reshape(3, 1, 2), "first axis"),
    OpCase("flatten", partial(gn.flatten, start=2), [R.normal(2, 3, 2, 4)],
           lambda x: x.reshape(2, 3, 8), "merge heads"),
    OpCase("flatten", gn.flatten, [R.normal(2, 3, 4)], lambda x: x.reshape(24), "all axes"),
    OpCase("flatten", partial(gn.flatten, start=0, end=1), [R.normal(2, 3, 4)],
           lambda x: x.reshape(6, 4), "leading axes"),
    OpCase("reshape", partial(gn.reshape, shape=(4, 6)), [R.normal(2, 3, 4)],
           partial(np.reshape, shape=(4, 6)), "(4,6)", dynamic=False),
    OpCase("reshape", partial(gn.reshape, shape=(-1, 4)), [R.normal(2, 3, 4)],
           partial(np.reshape, shape=(-1, 4)), "(-1,4)"),
    OpCase("reshape", partial(gn.reshape, shape=(2, -1)), [R.normal(2, 3, 4)],
           partial(np.reshape, shape=(2, -1)), "(2,-1)"),
    OpCase("reshape", partial(gn.reshape, shape=(-1,)), [R.normal(3, 2)],
           partial(np.reshape, shape=(-1,)), "flatten"),
    OpCase("reshape", partial(gn.reshape, shape=()), [R.normal(1, 1)],
           partial(np.reshape, shape=()), "to scalar", dynamic=False),
    OpCase("transpose", gn.transpose, [R.normal(2, 3, 4)], np.transpose, "reverse"),
    OpCase("transpose", partial(gn.transpose, perm=(1, 0, 2)), [R.normal(2, 3, 4)],
           partial(np.transpose, axes=(1, 0, 2)), "(1,0,2)"),
    OpCase("transpose", partial(gn.transpose, perm=(-1, 0, 1)), [R.normal(2, 3, 4)],
           partial(np.transpose, axes=(-1, 0, 1)), "(-1,0,1)"),
    OpCase("transpose", lambda x: x.T, [R.normal(3, 4)], lambda x: x.T, ".T"),
    OpCase("expand_dims", partial(gn.expand_dims, axis=0), [R.normal(2, 3)],
           partial(np.expand_dims, axis=0), "0"),
    OpCase("expand_dims", partial(gn.expand_dims, axis=-1), [R.normal(2, 3)],
           partial(np.expand_dims, axis=-1), "-1"),
    OpCase("expand_dims", partial(gn.expand_dims, axis=(0, 2)), [R.normal(2, 3)],
           partial(np.expand_dims, axis=(0, 2)), "(0,2)"),
    OpCase("squeeze", gn.squeeze, [R.normal(1, 3, 1)], np.squeeze, "all", dynamic=False),
    OpCase("squeeze", partial(gn.squeeze, axis=-1), [R.normal(1, 3, 1)],
           partial(np.squeeze, axis=-1), "-1"),
    OpCase("squeeze", partial(gn.squeeze, axis=(0, 2)), [R.normal(1, 3, 1)],
           partial(np.squeeze, axis=(0, 2)), "(0,2)"),
    OpCase("broadcast_to", partial(gn.broadcast_to, shape=(2, 3, 4)), [R.normal(3, 1)],
           partial(np.broadcast_to, shape=(2, 3, 4)), "(3,1)->(2,3,4)"),
    OpCase("broadcast_to", partial(gn.broadcast_to, shape=(2, 3)), [R.normal()],
           partial(np.broadcast_to, shape=(2, 3)), "scalar->(2,3)"),
    OpCase("concat", lambda a, b, c: gn.concat([a, b, c], axis=1),
           [R.normal(2, 1, 3), R.normal(2, 3, 3), R.normal(2, 2, 3)],
           lambda a, b, c: np.concatenate([a, b, c], axis=1), "axis=1"),
    OpCase("concat", lambda a, b: gn.concat([a, b], axis=-1), [R.normal(2, 3), R.normal(2, 1)],
           lambda a, b: np.concatenate([a, b], axis=-1), "axis=-1"),
    OpCase("concat", lambda a, b: gn.concat([a, b]), [R.normal(2, 3).astype("float32"),
                                                     R.normal(2, 3)],
           lambda a, b: np.concatenate([a, b]), "float32,float64", dtypes=(), grad=False),
    OpCase("stack", lambda a, b: gn.stack([a, b]), [R.normal(2, 3), R.normal(2, 3)],
           lambda a, b: np.stack([a, b]), "axis=0"),
    OpCase("stack", lambda a, b, c: gn.stack([a, b, c], axis=-1),
           [R.normal(2, 3), R.normal(2, 3), R.normal(2, 3)],
           lambda a, b, c: np.stack([a, b, c], axis=-1), "axis=-1"),
    OpCase("split", lambda x: gn.split(x, 3, axis=1), [R.normal(2, 6)],
           lambda x: np.split(x, 3, axis=1), "3 parts", dynamic=False),
    OpCase("split", lambda x: gn.split(x, [1, 3, 2], axis=-1), [R.normal(2, 6)],
           partial(np_split, sizes=[1, 3, 2], axis=-1), "sizes"),
    OpCase("split", lambda x: gn.split(x, [2, 1]), [R.normal(3, 2)],
           partial(np_split, sizes=[2, 1], axis=0), "sizes axis=0"),
]
CASES += [
    OpCase("getitem", lambda x, i=index: x[i], [R.normal(3, 4, 5)], label=repr(index))
    for index in INDICES
]
CASES += [
    OpCase("getitem", partial(gn.getitem, index=np.s_[::-1, 2]), [R.normal(4, 3)],
           lambda x: x[::-1, 2], "gn.getitem"),
    OpCase("gather", gn.gather, [R.normal(4, 3), np.array([3, 0, 3, 3, 1])],
           lambda x, i: np.take(x, i, axis=0), "repeated indices"),
    OpCase("gather", partial(gn.gather, axis=1), [R.normal(2, 4, 3), np.array([[1, 1], [-1, 0]])],
           lambda x, i: np.take(x, i, axis=1), "axis=1 2-D negative indices"),
    OpCase("gather", partial(gn.gather, axis=-1), [R.normal(2, 3), np.array(2, dtype="int32")],
           lambda x, i: np.take(x, i, axis=-1), "scalar index int32"),
    OpCase("take_along_axis", partial(gn.take_along_axis, axis=-1),
           [R.normal(3, 4), np.array([[0, 0, 3], [1, 2, 1], [3, 3, 3]])],
           partial(np.take_along_axis, axis=-1), "axis=-1 repeated"),
    OpCase("take_along_axis", partial(gn.take_along_axis, axis=0),
           [R.normal(3, 2), np.array([[2, 0], [2, 2]])],
           partial(np.take_along_axis, axis=0), "axis=0 repeated"),
    OpCase("one_hot", partial(gn.one_hot, depth=4), [np.array([[0, 3], [1, -1]])],
           lambda i: (i[..., None] == np.arange(4)).astype("float32"), "out of range", grad=False),
    OpCase("one_hot", partial(gn.one_hot, depth=3, dtype="float64"), [np.array([2, 0, 2])],
           lambda i: np.eye(3)[i], "float64", grad=False),
    OpCase("cast", partial(gn.cast, dtype="int32"), [R.normal(2, 3) * 3],
           lambda x: x.astype("int32"), "float->int32", grad=False),
    OpCase("cast", partial(gn.cast, dtype="float64"), [R.ints(0, 5, 3)],
           lambda x: x.astype("float64"), "int->float64", grad=False),
    OpCase("cast", partial(gn.cast, dtype="bool"), [R.normal(4)],
           lambda x: x.astype(bool), "float->bool", grad=False),
    OpCase("cast", lambda x: gn.cast(gn.cast(x, "float32"), "float64"), [R.normal(2, 3)],
           lambda x: x.astype("float32").astype("float64"), "via float32", eps=1e-2,
           rtol=1e-4, atol=1e-4),
    OpCase("cast", lambda x: gn.cast(gn.cast(x, "int64"), "float64") + x, [R.normal(2, 3) * 3],
           lambda x: x.astype("int64") + x, "via int64", dtypes=("float64",)),
    # stop_gradient's forward is the identity; its zero gradient is tested below
    OpCase("stop_gradient", gn.stop_gradient, [R.normal(2, 3)], lambda x: x, grad=False),
    OpCase("zeros_like", gn.zeros_like, [R.normal(2, 3)], np.zeros_like),
    OpCase("ones_like", gn.ones_like, [R.normal(2, 3)], np.ones_like),
    OpCase("ones_like", partial(gn.ones_like, dtype="int32"), [R.normal(2)],
           lambda x: np.ones_like(x, dtype="int32"), "int32", grad=False),
]


@pytest.mark.parametrize("case, dtype, dynamic", forward_params(CASES))
def test_forward(case, dtype, dynamic):
    run_forward(case, dtype, dynamic)


@pytest.mark.parametrize("case, order, dynamic", gradient_params(CASES))
def test_gradient(case, order, dynamic):
    run_gradient(case, order, dynamic)


def test_stop_gradient_has_zero_gradient():
    x = gn.placeholder((2, 3), "float64")
    y = gn.sum(x * gn.stop_gradient(x))  # d/dx = x, not 2x
    grad = gn.Session().run(gn.gradients(y, x), {x: np.full((2, 3), 3.0)})
    np.testing.assert_array_equal(grad, np.full((2, 3), 3.0))
    only = gn.Session().run(gn.gradients(gn.sum(gn.stop_gradient(x)), x), {x: np.ones((2, 3))})
    np.testing.assert_array_equal(only, np.zeros((2, 3)))


def test_second_derivative_of_slicing():
    # GetItem's gradient (ScatterSlice) has GetItem as its own gradient
    x = gn.placeholder((4, 3), "float64")
    g = gn.gradients(gn.sum(gn.square(x[::-2, 1:])), x)
    h = gn.gradients(gn.sum(g * g), x)
    xv = np.random.default_rng(0).standard_normal((4, 3))
    mask = np.zeros((4, 3))
    mask[::-2, 1:] = 1
    np.testing.assert_allclose(gn.Session().run(h, {x: xv}), 8 * xv * mask)


def test_second_derivative_through_a_cast_to_int_is_zero():
    x = gn.placeholder((3,), "float64")
    g = gn.gradients(gn.sum(gn.cast(gn.cast(x, "int64"), "float64") + x), x)  # ones
    h = gn.gradients(gn.sum(g * g), x)
    np.testing.assert_array_equal(gn.Session().run(h, {x: np.ones(3)}), np.zeros(3))


def test_gather_gradient_adds_repeated_indices():
    x = gn.placeholder((3,), "float64")
    g = gn.gradients(gn.sum(gn.gather(x, np.array([2, 2, 0, 2]))), x)
    np.testing.assert_array_equal(gn.Session().run(g, {x: np.zeros(3)}), [1, 0, 3])


def test_take_along_axis_gradient_adds_repeated_indices():
    x = gn.placeholder((2, 3), "float64")
    g = gn.gradients(gn.sum(gn.take_along_axis(x, np.array([[1, 1], [0, 2]]), axis=1)), x)
    np.testing.assert_array_equal(gn.Session().run(g, {x: np.zeros((2, 3))}),
                                  [[0, 2, 0], [1, 0, 1]])


def test_shape_rules_with_none_dims():
    x = gn.placeholder((None, 3, 4), "float32")
    assert gn.reshape(x, (-1, 12)).shape == (None, 12)
    assert gn.reshape(x, (-1,)).shape == (None,)
    assert gn.transpose(x).shape == (4, 3, None)
    assert gn.expand_dims(x, 1).shape == (None, 1, 3, 4)
    assert x[:, 1:, None].shape == (None, 2, 1, 4)
    assert x[::-1, ..., 0].shape == (None, 3)
    assert gn.concat([x, x], axis=0).shape == (None, 3, 4)
    assert gn.concat([x, x], axis=1).shape == (None, 6, 4)
    assert gn.stack([x, x], axis=-1).shape == (None, 3, 4, 2)
    assert [p.shape for p in gn.split(x, 2, axis=2)] == [(None, 3, 2)] * 2
    assert gn.gather(x, gn.placeholder((None,), "int64"), axis=1).shape == (None, None, 4)
    assert gn.one_hot(gn.placeholder((None,), "int64"), 10).shape == (None, 10)
    value = gn.Session().run(gn.reshape(x, (-1, 12)), {x: np.ones((5, 3, 4), np.float32)})
    assert value.shape == (5, 12)


@pytest.mark.parametrize("build", [
    lambda x: gn.reshape(x, (5, 5)),
    lambda x: gn.reshape(x, (-1, -1)),
    lambda x: gn.reshape(x, (-1, 5)),
    lambda x: gn.transpose(x, (0, 0, 1)),
    lambda x: gn.transpose(x, (0, 1, 3)),
    lambda x: gn.transpose(x, (1, 2, 3)),  # 3 is out of range, not axis 0
    lambda x: gn.transpose(x, (0, 1)),
    lambda x: gn.squeeze(x, 0),
    lambda x: gn.broadcast_to(x, (3, 4)),
    lambda x: gn.concat([x, gn.placeholder((2, 3))]),
    lambda x: gn.split(x, 4, axis=1),
    lambda x: gn.split(x, [1, 2], axis=0),
    lambda x: x[2],
    lambda x: x[0, 0, 0, 0],
    lambda x: x[..., 0, ...],
    lambda x: gn.gather(x, gn.constant([0.5])),
    lambda x: gn.take_along_axis(x, gn.constant(np.zeros((2, 3), int)), axis=0),
])
def test_bad_shapes_raise_at_build_time(build):
    with pytest.raises(gn.ShapeError):
        build(gn.placeholder((2, 3, 4), "float32"))


def test_getitem_rejects_advanced_indexing():
    with pytest.raises(TypeError, match="gn.gather"):
        gn.placeholder((3,))[np.array([0, 1])]
