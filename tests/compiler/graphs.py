"""Real graphs for compiler tests, and the optimized-versus-unoptimized check.

Each builder returns (fetches, feed_dict); fetches may include update nodes,
so `run_both` runs each plan in its own Session for several steps and also
compares the variables at the end.
"""

from __future__ import annotations

import numpy as np

import graphnet as gn
from graphnet.compiler import PASS_NAMES

RNG_SEED = 0


def _mlp_params(rng, sizes):
    params = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = gn.variable(rng.normal(0, 0.5, (fan_in, fan_out)).astype(np.float32), name=f"w{i}")
        b = gn.variable(rng.normal(0, 0.1, fan_out).astype(np.float32), name=f"b{i}")
        params += [w, b]
    return params


def mlp_training_step(momentum: bool = False, batch: int = 8):
    """x -> relu -> tanh -> logits, mean sparse softmax cross-entropy, SGD
    (or momentum) updates with assign_sub, grouped as one train node."""
    rng = np.random.default_rng(RNG_SEED)
    x = gn.placeholder((None, 6), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    params = _mlp_params(rng, [6, 5, 4, 3])
    h = x
    for i, act in enumerate([gn.relu, gn.tanh, None]):
        h = h @ params[2 * i] + params[2 * i + 1]
        h = act(h) if act else h
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, y), name="loss")
    grads = gn.gradients(loss, params)
    updates = []
    for p, g in zip(params, grads, strict=True):
        if momentum:
            v = gn.variable(np.zeros(p.shape, np.float32), name=f"{p.name}_velocity")
            new_v = gn.assign(v, 0.9 * v + g)
            updates.append(gn.assign_sub(p, 0.1 * new_v))
        else:
            updates.append(gn.assign_sub(p, 0.1 * g))
    feed = {x: rng.normal(size=(batch, 6)).astype(np.float32),
            y: rng.integers(0, 3, batch).astype(np.int64)}
    if momentum:  # the loss only rides along in the group: prune drops it
        return [gn.group(loss, updates, name="train"), grads[0]], feed
    return [loss, gn.group(updates, name="train"), grads[0]], feed


def softmax_cross_entropy_graph(batch: int = 5):
    """Soft-label cross-entropy of logits and its gradients, dynamic batch."""
    rng = np.random.default_rng(RNG_SEED)
    logits = gn.placeholder((None, 4), "float32", name="logits")
    labels = gn.placeholder((None, 4), "float32", name="labels")
    loss = gn.mean(gn.nn.softmax_cross_entropy(logits, labels))
    probs = gn.softmax(logits)
    (dlogits,) = gn.gradients(loss, [logits])
    p = rng.random((batch, 4)).astype(np.float32)
    feed = {logits: rng.normal(size=(batch, 4)).astype(np.float32),
            labels: p / p.sum(1, keepdims=True)}
    return [loss, probs, dlogits], feed


def broadcasting_graph():
    """Broadcasts in every direction, reductions and shape ops, with gradients."""
    rng = np.random.default_rng(RNG_SEED)
    x = gn.placeholder((None, 1, 4), "float32", name="x")
    b = gn.variable(rng.normal(size=(3, 1)).astype(np.float32), name="b")
    c = gn.constant(rng.normal(size=(4,)).astype(np.float32), name="c")
    h = gn.tanh(x + b * c)                                 # (None, 3, 4)
    m = gn.mean(h, axis=1, keepdims=True) - gn.max(h, axis=-1, keepdims=True)
    t = gn.transpose(gn.reshape(m * 1.0 + 0.0, (-1, 4)), (1, 0))
    out = gn.sum(gn.square(t)) + gn.sum(gn.stop_gradient(h) * h)
    grads = gn.gradients(out, [x, b])
    update = gn.assign_sub(b, 0.01 * grads[1])
    feed = {x: rng.normal(size=(2, 1, 4)).astype(np.float32)}
    return [out, grads[0], update], feed


def static_shape_graph():
    """A fully static graph: constants to fold, scalars to merge, gradients."""
    rng = np.random.default_rng(RNG_SEED)
    x = gn.placeholder((3, 4), "float32", name="x")
    w = gn.variable(rng.normal(size=(4, 2)).astype(np.float32), name="w")
    scale = gn.constant(2.0) * gn.constant(3.0) + gn.constant(1.0)
    h = gn.sigmoid(x @ w) * scale
    loss = gn.sum(gn.log(gn.exp(h)) * 0.5) + gn.mean(gn.exp(gn.log(h)))
    dw = gn.gradients(loss, w)
    feed = {x: rng.normal(size=(3, 4)).astype(np.float32)}
    return [loss, dw, gn.assign_add(w, -0.05 * dw)], feed


def attention_graph(batch: int = 2, seq: int = 3, heads: int = 2, depth: int = 2):
    """Self-attention with heads split off and merged back (reshapes of
    transposes), a projection with bias, gradients and an SGD update."""
    rng = np.random.default_rng(RNG_SEED)
    width = heads * depth
    x = gn.placeholder((None, seq, width), "float32", name="x")
    w = gn.variable(rng.normal(0, 0.5, (width, width)).astype(np.float32), name="w")
    b = gn.variable(rng.normal(0, 0.1, width).astype(np.float32), name="b")

    def split(t):
        return gn.transpose(gn.reshape(t, (-1, seq, heads, depth)), (0, 2, 1, 3))

    h = x @ w + b
    a = gn.nn.attention(split(h), split(x), split(h * 0.5))
    merged = gn.reshape(gn.transpose(a, (0, 2, 1, 3)), (-1, seq, width))
    loss = gn.mean(gn.square(merged @ w + b))
    dw, db = gn.gradients(loss, [w, b])
    train = gn.group([gn.assign_sub(w, 0.1 * dw), gn.assign_sub(b, 0.1 * db)])
    feed = {x: rng.normal(size=(batch, seq, width)).astype(np.float32)}
    return [loss, merged, db, train], feed


def conv_graph(batch: int = 2):
    """A convolution of one channel into three (the numba backend runs it
    without a patch matrix), relu, a 2-channel convolution after it, an MSE
    loss and SGD on both kernels."""
    rng = np.random.default_rng(RNG_SEED)
    x = gn.placeholder((None, 6, 5, 1), "float32", name="x")
    w1 = gn.variable(rng.normal(0, 0.5, (3, 3, 1, 3)).astype(np.float32), name="w1")
    w2 = gn.variable(rng.normal(0, 0.5, (2, 2, 3, 2)).astype(np.float32), name="w2")
    h = gn.relu(gn.nn.conv2d(x, w1, padding="same"))
    loss = gn.mean(gn.square(gn.nn.conv2d(h, w2)))
    grads = gn.gradients(loss, [w1, w2])
    train = gn.group([gn.assign_sub(w, 0.1 * g) for w, g in zip([w1, w2], grads, strict=True)])
    feed = {x: rng.normal(size=(batch, 6, 5, 1)).astype(np.float32)}
    return [loss, grads[0], train], feed


GRAPHS = {
    "mlp_sgd": lambda: mlp_training_step(momentum=False),
    "mlp_momentum": lambda: mlp_training_step(momentum=True),
    "softmax_xent": softmax_cross_entropy_graph,
    "broadcasting": broadcasting_graph,
    "static": static_shape_graph,
    "attention": attention_graph,
    "conv": conv_graph,
}


def shapes_of(feed: dict) -> dict:
    return {p: np.shape(v) for p, v in feed.items()}


def only(*names) -> list:
    """`disable=` list that leaves just `names` on."""
    return [n for n in PASS_NAMES if n not in names]


def assert_same_results(fetches, feed, steps: int = 2, rtol=1e-5, atol=1e-6, **options):
    """Run the optimized plan (with `options`) and the unoptimized one in
    separate sessions for `steps` runs; fetched values and variables agree.
    Returns the optimized plan."""
    options.setdefault("feed_shapes", shapes_of(feed))
    plan = gn.compile(fetches, verify=True, **options)
    reference = gn.compile(fetches, optimize=False)
    sess, ref_sess = gn.Session(), gn.Session()
    for _ in range(steps):
        got, expected = sess.run(plan, feed), ref_sess.run(reference, feed)
        assert_nested_close(got, expected, rtol, atol)
    for var in reference.variables:
        np.testing.assert_allclose(sess.get(var), ref_sess.get(var), rtol=rtol, atol=atol,
                                   err_msg=f"variable {var.name}")
    return plan


def assert_nested_close(got, expected, rtol, atol):
    if isinstance(expected, (list, tuple)):
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert_nested_close(g, e, rtol, atol)
    elif expected is None:
        assert got is None
    else:
        got, expected = np.asarray(got), np.asarray(expected)
        assert got.shape == expected.shape and got.dtype == expected.dtype, (
            f"{got.dtype}{got.shape} != {expected.dtype}{expected.shape}")
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
