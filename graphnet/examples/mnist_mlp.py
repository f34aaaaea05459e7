"""The classic MNIST tutorial, on graphnet: a 784-128-64-10 MLP trained with Adam.

    python -m graphnet.examples.mnist_mlp [--epochs 10] [--batch-size 32] [--out out/]

Loads MNIST (see `gn.datasets.mnist.load_data` for where it looks), scales
pixels to [0, 1], trains, evaluates on the test set, and writes the
loss/accuracy curves (PNG) and the model's graph (SVG) into --out.
"""

from __future__ import annotations

import os

import graphnet as gn
from graphnet.examples.mnist_common import parse_args, train_and_report


def build_model() -> gn.Sequential:
    model = gn.Sequential([
        gn.layers.Flatten(input_shape=(28, 28)),
        gn.layers.Dense(128, activation="relu"),
        gn.layers.Dense(64, activation="relu"),
        gn.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None) -> float:
    args = parse_args(argv, __doc__.splitlines()[0], epochs=10, batch_size=32)
    gn.random.seed(args.seed)
    model = build_model()
    accuracy = train_and_report(model, "mnist_mlp", args)
    try:
        diagram = gn.viz.draw(model, os.path.join(args.out, "mnist_mlp.svg"))
        print(f"Model graph: {diagram}")
    except gn.viz.GraphvizNotFoundError as err:  # the .dot file is still written
        print(err)
    return accuracy


if __name__ == "__main__":
    main()
