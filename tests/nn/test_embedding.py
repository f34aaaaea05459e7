"""gn.nn.embedding_lookup: rows by id, scatter-add gradient."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.testing import check_gradients


def test_lookup_returns_rows_in_the_shape_of_the_ids():
    table = np.arange(12.0).reshape(6, 2)
    ids = np.array([[0, 5, 2], [2, 2, 1]])
    y = gn.nn.embedding_lookup(gn.constant(table), gn.constant(ids))
    assert y.shape == (2, 3, 2)
    np.testing.assert_array_equal(gn.Session().run(y), table[ids])


def test_repeated_ids_accumulate_their_gradients():
    table = gn.variable(np.zeros((5, 3)), name="table")
    ids = gn.placeholder((None,), "int64")
    d_table = gn.gradients(gn.sum(gn.nn.embedding_lookup(table, ids)), table)
    value = gn.Session().run(d_table, {ids: [1, 3, 1, 1]})
    np.testing.assert_array_equal(value[:, 0], [0, 3, 0, 1, 0])


def test_gradient_matches_finite_differences():
    ids = np.array([[0, 3], [3, 3], [4, 1]])
    table = np.random.default_rng(0).standard_normal((5, 4))
    check_gradients(lambda t, i: gn.tanh(gn.nn.embedding_lookup(t, i)), [table, ids])


def test_ids_must_be_integers():
    with pytest.raises(gn.ShapeError, match="ids must be integers, got float32"):
        gn.nn.embedding_lookup(gn.constant(np.zeros((5, 3))), gn.placeholder((None,), "float32"))
