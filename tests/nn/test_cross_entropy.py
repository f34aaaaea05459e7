"""gn.nn cross-entropies keep working next to the new ops: values,
saturated logits, gradients."""

import numpy as np

import graphnet as gn
from graphnet.testing import check_gradients


def test_sparse_and_dense_forms_agree_and_stay_finite_when_saturated():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.5, 0.2, 0.1]])
    labels = np.array([2, 0])
    sparse = gn.nn.sparse_softmax_cross_entropy(gn.constant(logits), gn.constant(labels))
    dense = gn.nn.softmax_cross_entropy(gn.constant(logits), gn.constant(np.eye(3)[labels]))
    a, b = gn.Session().run([sparse, dense])
    assert np.isfinite(a).all() and a[0] == 2000.0
    np.testing.assert_allclose(a, b)


def test_gradients():
    logits = np.random.default_rng(0).standard_normal((4, 3))
    check_gradients(lambda z, y: gn.nn.sparse_softmax_cross_entropy(z, y),
                    [logits, np.array([0, 2, 1, 2])])
    check_gradients(lambda z: gn.nn.softmax_cross_entropy(z, gn.constant(np.full((4, 3), 1 / 3))),
                    [logits])
