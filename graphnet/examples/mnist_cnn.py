"""A LeNet-5 style CNN on MNIST: two 5x5 convolutions with max pooling, then three dense layers.

    python -m graphnet.examples.mnist_cnn [--epochs 10] [--batch-size 64] [--out out/]

Reaches about 99% test accuracy; writes the training curves (PNG) into --out.
"""

from __future__ import annotations

import argparse
import os

import graphnet as gn


def build_model() -> gn.Sequential:
    layers = gn.layers
    model = gn.Sequential([
        layers.Reshape((28, 28, 1), input_shape=(28, 28)),
        layers.Conv2D(6, 5, padding="same", activation="relu"),
        layers.MaxPool2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default="out", help="folder for the training curves")
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
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=2)
    print(f"Test accuracy: {test_accuracy:.4f}")
    os.makedirs(args.out, exist_ok=True)
    curves = os.path.join(args.out, "mnist_cnn_curves.png")
    history.plot(curves)
    print(f"Training curves: {curves}")
    return float(test_accuracy)


if __name__ == "__main__":
    main()
