"""End to end: small models trained with hand-written assign_sub updates."""

import numpy as np

import graphnet as gn
from graphnet.examples import quickstart


def blobs(n, seed=0):
    """Two well-separated Gaussian blobs in 4-D, labels 0/1."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(-1.5, 1, (n, 4)), rng.normal(1.5, 1, (n, 4))])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    return x.astype(np.float32), y.astype(np.float32)


def test_logistic_regression_separates_blobs():
    x_train, y_train = blobs(200)
    x = gn.placeholder((None, 4), "float32", name="x")
    y = gn.placeholder((None,), "float32", name="y")
    w = gn.variable(np.zeros(4, np.float32), name="w")
    b = gn.variable(np.float32(0), name="b")
    p = gn.sigmoid(gn.matmul(x, w) + b)
    loss = -gn.mean(y * gn.log(p + 1e-7) + (1 - y) * gn.log(1 - p + 1e-7))
    dw, db = gn.gradients(loss, [w, b])
    step = gn.group(gn.assign_sub(w, 0.5 * dw), gn.assign_sub(b, 0.5 * db))
    accuracy = gn.mean(gn.cast(gn.equal(gn.cast(p > 0.5, "float32"), y), "float32"))
    sess = gn.Session()
    first = sess.run(loss, {x: x_train, y: y_train})
    for _ in range(100):
        sess.run(step, {x: x_train, y: y_train})
    last, acc = sess.run([loss, accuracy], {x: x_train, y: y_train})
    assert last < first / 4
    assert acc >= 0.98


def test_two_layer_mlp_learns_spirals():
    # The quickstart's spirals are not linearly separable: the hidden layers must work.
    assert quickstart.main(["--steps", "1500", "--seed", "0"]) >= 0.97


def test_design_md_graph_level_example_trains():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1, (10, 784)).astype(np.float32)
    labels = rng.integers(0, 10, 256)
    images = centers[labels] + rng.normal(0, 0.5, (256, 784)).astype(np.float32)

    x = gn.placeholder((None, 784), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    W = gn.variable(gn.init.glorot_uniform((784, 10), seed=0), name="W")
    b = gn.variable(np.zeros(10, np.float32), name="b")
    logits = x @ W + b
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(logits, y))
    dW, db = gn.gradients(loss, [W, b])
    sgd = gn.group(gn.assign_sub(W, 0.1 * dW), gn.assign_sub(b, 0.1 * db))
    sess = gn.Session()
    plan = gn.compile([loss, sgd], feeds=[x, y])
    first, none = sess.run(plan, {x: images, y: labels})
    for _ in range(20):
        last, _ = sess.run(plan, {x: images, y: labels})
    assert none is None
    assert last < first / 10
