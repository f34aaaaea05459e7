"""Build a graph, take gradients and train a tiny MLP with hand-written SGD.

    python -m graphnet.examples.quickstart [--steps 300] [--seed 0]

The data are two interleaved spirals: no straight line separates them, so a
hidden layer has to learn the shape.
"""

from __future__ import annotations

import argparse

import numpy as np

import graphnet as gn


def spirals(n: int, seed: int) -> tuple:
    """n points on each of two interleaved spirals, with labels 0 and 1."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.05, 1, n)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.02, (2 * n, 2))
    y = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    return x.astype(np.float32), y


def build(hidden: int, seed: int) -> dict:
    """The graph: a 2-hidden-layer MLP, its loss, accuracy and an SGD step."""
    x = gn.placeholder((None, 2), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    lr = gn.placeholder((), "float32", name="lr")
    params = []
    h = x
    for i, (fan_in, fan_out) in enumerate([(2, hidden), (hidden, hidden), (hidden, 2)]):
        with gn.name_scope(f"dense_{i}" if i else "dense"):
            w = gn.variable(gn.init.he_normal((fan_in, fan_out), seed=seed + i), name="kernel")
            b = gn.variable(np.zeros(fan_out, np.float32), name="bias")
            h = h @ w + b
            if i < 2:
                h = gn.tanh(h)
        params += [w, b]
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, y), name="loss")
    correct = gn.equal(gn.cast(h[:, 1] > h[:, 0], "int64"), y)
    accuracy = gn.mean(gn.cast(correct, "float32"), name="accuracy")
    grads = gn.gradients(loss, params)
    step = gn.group([gn.assign_sub(p, lr * g) for p, g in zip(params, grads)], name="sgd")
    return dict(x=x, y=y, lr=lr, loss=loss, accuracy=accuracy, step=step)


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    x_train, y_train = spirals(500, args.seed)
    g = build(hidden=32, seed=args.seed)
    sess = gn.Session()
    train = gn.compile([g["loss"], g["step"]], feeds=[g["x"], g["y"], g["lr"]])
    print(train.source.count("\n"), "lines of generated NumPy; first of them:")
    print("\n".join(train.source.splitlines()[:8]))
    rng = np.random.default_rng(args.seed)
    for step in range(args.steps):
        batch = rng.choice(len(x_train), 64, replace=False)
        feed = {g["x"]: x_train[batch], g["y"]: y_train[batch], g["lr"]: 0.3}
        loss, _ = sess.run(train, feed)
        if step % max(1, args.steps // 5) == 0:
            print(f"step {step:5d}  loss {loss:.4f}")
    loss, accuracy = sess.run([g["loss"], g["accuracy"]], {g["x"]: x_train, g["y"]: y_train})
    print(f"final loss {loss:.4f}  training accuracy {accuracy:.3f}")
    return float(accuracy)


if __name__ == "__main__":
    main()
