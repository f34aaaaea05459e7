"""Embedding (graphnet/layers/embedding.py): values, gradients w.r.t. the table."""

import functools

import numpy as np
import pytest

import graphnet as gn
from graphnet import layers
from graphnet.testing import check_layer


def test_gradients_wrt_the_table_with_repeated_ids():
    ids = np.array([[0, 3, 3], [4, 0, 1]])
    layer, (out,) = check_layer(functools.partial(layers.Embedding, 5, 2), ids)
    assert layer.trainable_weights == [layer.embeddings] and out.shape == (2, 3, 2)


def test_rows_are_looked_up_and_repeated_ids_accumulate():
    ids = gn.placeholder((None, 3), "int64")
    emb = layers.Embedding(4, 2, dtype="float64")
    out = emb(ids)
    sess = gn.Session()
    table = np.arange(8.0).reshape(4, 2)
    sess.set(emb.embeddings, table)
    feed = {ids: [[1, 1, 3]]}
    np.testing.assert_array_equal(sess.run(out, feed), table[[[1, 1, 3]]])
    grad = sess.run(gn.gradients(gn.sum(out), emb.embeddings), feed)
    np.testing.assert_array_equal(grad, [[0, 0], [2, 2], [0, 0], [1, 1]])


def test_float_ids_are_refused_with_a_hint():
    with pytest.raises(gn.ShapeError, match=r"Embedding 'embedding' takes integer ids, got "
                                            r"float32; give the Input an integer dtype"):
        layers.Embedding(10, 4)(gn.placeholder((None, 3)))
