"""gn.nn.dropout: inverted dropout with a run-time training switch, seeded
masks, and a gradient that uses the forward pass's mask."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.nn.dropout import DropoutMask
from graphnet.testing import numeric_gradient


def test_not_training_is_the_identity_node():
    x = gn.placeholder((None, 4))
    assert gn.nn.dropout(x, 0.5, training=False) is x
    assert gn.nn.dropout(x, 0.0, training=True) is x


def test_training_keeps_about_one_minus_rate_and_rescales():
    x = gn.constant(np.ones((200, 100), np.float32))
    y = gn.Session().run(gn.nn.dropout(x, 0.25, training=True))
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01      # 20000 draws: 3 sigma is 0.009
    assert abs(y.mean() - 1.0) < 0.02               # inverted dropout keeps the mean


def test_each_run_draws_a_new_mask_and_the_global_seed_replays_them():
    x = gn.constant(np.ones(64))
    y = gn.nn.dropout(x, 0.5, training=True)
    sess = gn.Session()
    gn.random.seed(7)
    first, second = sess.run(y), sess.run(y)
    assert not np.array_equal(first, second)
    gn.random.seed(7)
    np.testing.assert_array_equal(sess.run(y), first)


def test_an_op_seed_gives_a_reproducible_stream_of_its_own():
    def masks():
        y = gn.nn.dropout(gn.constant(np.ones(64)), 0.5, training=True, seed=3)
        sess = gn.Session()
        return [sess.run(y) for _ in range(2)]
    gn.random.seed(1)
    first = masks()
    gn.random.seed(2)   # the global seed does not matter to a seeded op
    second = masks()
    assert not np.array_equal(first[0], first[1])
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_training_can_be_a_bool_placeholder():
    x = gn.constant(np.ones(1000))
    training = gn.placeholder((), "bool", name="training")
    y = gn.nn.dropout(x, 0.5, training=training)
    sess = gn.Session()
    np.testing.assert_array_equal(sess.run(y, {training: False}), 1.0)
    assert (sess.run(y, {training: True}) == 0).any()


def test_gradient_uses_the_same_mask_as_the_forward_pass():
    x = gn.placeholder((50,), "float64")
    y = gn.nn.dropout(x, 0.4, training=True)
    mask = y.inputs[1]
    values, dx, mask_value = gn.Session().run([y, gn.gradients(gn.sum(y * y), x), mask],
                                              {x: np.arange(50.0)})
    np.testing.assert_allclose(values, np.arange(50.0) * mask_value)
    np.testing.assert_allclose(dx, 2 * values * mask_value)
    assert set(np.unique(mask_value)) == {0.0, 1 / 0.6}


def test_gradient_matches_finite_differences_with_a_fixed_seed():
    x = gn.placeholder((4, 5), "float64")
    y = gn.nn.dropout(gn.tanh(x), 0.5, training=True)
    loss = gn.sum(y * gn.constant(np.arange(20.0).reshape(4, 5)))
    sess = gn.Session()
    x_value = np.random.default_rng(0).standard_normal((4, 5))

    def seeded(fetch, value):
        gn.random.seed(123)          # the same mask on every run
        return sess.run(fetch, {x: value})

    numeric = numeric_gradient(lambda v: seeded(loss, v), x_value)
    np.testing.assert_allclose(seeded(gn.gradients(loss, x), x_value), numeric, rtol=1e-6)
    assert (numeric == 0).any()      # some entries were dropped


def test_the_mask_op_is_random_so_never_merged_or_folded():
    y = gn.nn.dropout(gn.placeholder((3,)), 0.5, training=True)
    assert isinstance(y.inputs[1].op, DropoutMask) and y.inputs[1].op.random
    assert DropoutMask(0.5) != DropoutMask(0.5)


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rate_out_of_range(rate):
    with pytest.raises(ValueError, match=r"dropout rate must be in \[0, 1\)"):
        gn.nn.dropout(gn.placeholder((3,)), rate, training=True)


def test_training_must_be_a_bool_scalar():
    x = gn.placeholder((3,))
    with pytest.raises(gn.ShapeError, match=r"training must be a bool scalar, got float32 \(\)"):
        gn.nn.dropout(x, 0.5, training=gn.placeholder((), "float32"))
    with pytest.raises(TypeError, match="training must be a bool or a bool scalar node"):
        gn.nn.dropout(x, 0.5, training="yes")
