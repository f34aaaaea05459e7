"""L1, L2 and L1L2 penalties: values, gradients, lookup and adding them to a loss."""

import numpy as np
import pytest

import graphnet as gn
from graphnet import regularizers
from graphnet.testing import check_gradients

W = np.random.default_rng(7).normal(size=(3, 4))


@pytest.mark.parametrize("regularizer, expected", [
    (regularizers.L1(0.1), 0.1 * np.abs(W).sum()),
    (regularizers.L2(0.2), 0.2 * (W ** 2).sum()),
    (regularizers.L1L2(l1=0.1, l2=0.2), 0.1 * np.abs(W).sum() + 0.2 * (W ** 2).sum()),
    (regularizers.L1L2(), 0.0),
    (regularizers.L1(), 0.01 * np.abs(W).sum()),
    (regularizers.L2(), 0.01 * (W ** 2).sum()),
])
def test_penalty_values_and_gradients(regularizer, expected):
    penalty = regularizer(gn.constant(W))
    assert penalty.shape == ()
    np.testing.assert_allclose(gn.Session().run(penalty), expected, rtol=1e-12)
    check_gradients(regularizer, [W], rtol=1e-6, atol=1e-9)


def test_penalty_keeps_the_weight_dtype():
    w = gn.variable(W.astype(np.float32), name="kernel")
    assert regularizers.L2(1e-3)(w).dtype == np.float32


def test_add_penalties_to_a_loss_and_train():
    kernel = gn.variable(np.ones(3), name="dense/kernel")
    bias = gn.variable(np.ones(2, np.float32), name="dense/bias")
    data_loss = gn.sum(gn.square(kernel - 2.0))
    penalties = [regularizers.L2(0.5)(kernel), regularizers.L1(0.25)(bias)]
    loss = regularizers.add_penalties(data_loss, penalties)
    sess = gn.Session()
    assert sess.run(loss) == pytest.approx(3.0 + 1.5 + 0.5)
    total = regularizers.apply_regularization(regularizers.L2(0.5), [kernel, kernel])
    assert sess.run(total) == pytest.approx(3.0)
    train = gn.optim.SGD(0.1).minimize(loss)
    for _ in range(200):
        sess.run(train)
    # minimum of (k - 2)**2 + 0.5 k**2 is k = 4/3; the L1 term drives the bias to 0
    np.testing.assert_allclose(sess.get(kernel), 4 / 3, rtol=1e-6)
    np.testing.assert_allclose(sess.get(bias), 0.0, atol=0.03)
    with pytest.raises(ValueError, match="no loss and no penalties"):
        regularizers.add_penalties(None, [])


def test_get_by_name():
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    assert regularizers.get("L1", l1=0.5).l1 == 0.5
    assert isinstance(regularizers.get("l1_l2"), regularizers.L1L2)
    assert regularizers.get(None) is None
    reg = regularizers.L1()
    assert regularizers.get(reg) is reg
    assert repr(regularizers.L1L2(0.1, 0.2)) == "L1L2(l1=0.1, l2=0.2)"
    with pytest.raises(ValueError, match="did you mean 'l2'.*valid names are: l1, l1_l2"):
        regularizers.get("l2x")
    with pytest.raises(ValueError, match="must be >= 0"):
        regularizers.L2(-1.0)
