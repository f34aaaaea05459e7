"""A LeNet-5 style CNN on MNIST: two 5x5 convolutions with max pooling, then three dense layers.

    python -m graphnet.examples.mnist_cnn [--epochs 10] [--batch-size 64] [--out out/]

Adam with a cosine-decaying learning rate and light dropout on the dense
layers reaches about 99.1% test accuracy in 10 epochs; writes the training
curves (PNG) into --out.
"""

from __future__ import annotations

import math

import graphnet as gn
from graphnet.examples.mnist_common import parse_args, train_and_report

TRAIN_SIZE = 60_000


def build_model(decay_steps: int) -> gn.Sequential:
    layers = gn.layers
    model = gn.Sequential([
        layers.Reshape((28, 28, 1), input_shape=(28, 28)),
        layers.Conv2D(6, 5, padding="same", activation="relu"),
        layers.MaxPool2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPool2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dropout(0.25),
        layers.Dense(84, activation="relu"),
        layers.Dropout(0.25),
        layers.Dense(10, activation="softmax"),
    ])
    schedule = gn.optim.schedules.CosineDecay(2e-3, decay_steps)
    model.compile(optimizer=gn.optim.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main(argv=None) -> float:
    args = parse_args(argv, __doc__.splitlines()[0], epochs=10, batch_size=64)
    gn.random.seed(args.seed)
    steps = math.ceil(TRAIN_SIZE / args.batch_size) * args.epochs
    return train_and_report(build_model(steps), "mnist_cnn", args)


if __name__ == "__main__":
    main()
