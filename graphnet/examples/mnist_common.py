"""What the MNIST examples share: command-line options, data, training and reports."""

from __future__ import annotations

import argparse
import os

import graphnet as gn


def parse_args(argv, description: str, epochs: int, batch_size: int,
               extra=None) -> argparse.Namespace:
    """The examples' options; `extra(parser)` adds an example's own."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--out", default="out", help="folder for the curves and diagrams")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    return parser.parse_args(argv)


def train_and_report(model: gn.Model, name: str, args: argparse.Namespace,
                     extra_tests: dict | None = None) -> float:
    """Train on MNIST scaled to [0, 1], print the test accuracy, save the curves.

    `extra_tests` maps a name to a function of the test images giving other
    images (a shifted copy, say); the accuracy on each is printed too.
    """
    (x_train, y_train), (x_test, y_test) = gn.datasets.mnist.load_data()
    x_train, x_test = x_train / 255.0, x_test / 255.0
    model.summary()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        verbose=args.verbose, seed=args.seed)
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=2)
    print(f"Test accuracy: {test_accuracy:.4f}")
    for label, make in (extra_tests or {}).items():
        _, accuracy = model.evaluate(make(x_test), y_test, batch_size=256, verbose=0)
        print(f"Test accuracy, {label}: {accuracy:.4f}")
        model.extra_accuracy = {**getattr(model, "extra_accuracy", {}), label: accuracy}
    os.makedirs(args.out, exist_ok=True)
    curves = os.path.join(args.out, f"{name}_curves.png")
    history.plot(curves)
    print(f"Training curves: {curves}")
    return float(test_accuracy)
