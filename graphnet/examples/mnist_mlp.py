"""The classic MNIST tutorial, on graphnet: a 784-128-64-10 MLP trained with Adam.

    python -m graphnet.examples.mnist_mlp [--epochs 10] [--batch-size 32] [--out out/]

Loads MNIST (see `gn.datasets.mnist.load_data` for where it looks), scales
pixels to [0, 1], trains, evaluates on the test set, and writes the
loss/accuracy curves (PNG) and the model's graph (SVG) into --out.
"""

from __future__ import annotations

import argparse
import os

import graphnet as gn


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default="out", help="folder for the curves and the diagram")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    args = parser.parse_args(argv)

    gn.random.seed(args.seed)
    (x_train, y_train), (x_test, y_test) = gn.datasets.mnist.load_data()
    x_train, x_test = x_train / 255.0, x_test / 255.0

    model = build_model()
    model.summary()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        verbose=args.verbose, seed=args.seed)
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=2)
    print(f"Test accuracy: {test_accuracy:.4f}")

    os.makedirs(args.out, exist_ok=True)
    curves = os.path.join(args.out, "mnist_mlp_curves.png")
    history.plot(curves)
    print(f"Training curves: {curves}")
    try:
        diagram = os.path.join(args.out, "mnist_mlp.svg")
        gn.viz.draw(model, diagram)
        print(f"Model graph: {diagram}")
    except gn.viz.GraphvizNotFoundError as err:  # the .dot file is still written
        print(err)
    return float(test_accuracy)


if __name__ == "__main__":
    main()
