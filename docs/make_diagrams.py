"""Regenerate the README's diagrams of the seed MLP: `python docs/make_diagrams.py`.

Builds the seed MLP (784-128-64-10, ReLU, sparse softmax cross-entropy) by
hand from ops, one name scope per layer, and renders with Graphviz `dot`:

    docs/seed_mlp.svg        the forward graph, one cluster per layer
    docs/seed_mlp_grads.svg  the same loss with the generated backward graph
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # run from a checkout without installing

import graphnet as gn  # noqa: E402 - imported after the path is set


def dense(h, units_in: int, units_out: int, activation=None):
    """`activation(h @ kernel + bias)` in its own name scope (`dense`, `dense_1`, ...)."""
    with gn.name_scope("dense"):
        kernel = gn.variable(gn.init.glorot_uniform((units_in, units_out), seed=0),
                             name="kernel")
        bias = gn.variable(np.zeros(units_out, np.float32), name="bias")
        h = gn.matmul(h, kernel) + bias
        return activation(h) if activation else h


def seed_mlp():
    """The loss node of the seed MLP on a batch of flattened MNIST images."""
    x = gn.placeholder((None, 784), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    h = dense(x, 784, 128, gn.relu)
    h = dense(h, 128, 64, gn.relu)
    logits = dense(h, 64, 10)
    return gn.mean(gn.nn.sparse_softmax_cross_entropy(logits, y), name="loss")


def main(out_dir: pathlib.Path = DOCS):
    loss = seed_mlp()
    written = [
        gn.viz.draw(loss, out_dir / "seed_mlp.svg", title="seed MLP: forward graph"),
        gn.viz.draw(loss, out_dir / "seed_mlp_grads.svg", show_grads=True,
                    title="seed MLP: forward and generated backward graph"),
    ]
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
