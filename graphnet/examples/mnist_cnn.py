"""A LeNet-5 style CNN on MNIST: two 5x5 convolutions with max pooling, then three dense layers.

    python -m graphnet.examples.mnist_cnn [--epochs 10] [--batch-size 64] [--augment] [--out out/]

Adam with a cosine-decaying learning rate and light dropout on the dense
layers reaches about 99.1% test accuracy in 10 epochs; writes the training
curves (PNG) into --out. `--augment` puts random translations (up to 10%)
and rotations (up to 18 degrees) in front of the network, active only in
training. Either way the model is also tested on a moved copy of the test
set: every digit shifted by up to 3 pixels and rotated by up to 20 degrees
(the same copy every run), where augmentation should help.
"""

from __future__ import annotations

import math

import numpy as np

import graphnet as gn
from graphnet.data import augmentation
from graphnet.examples.mnist_common import parse_args, train_and_report

TRAIN_SIZE = 60_000


def build_model(decay_steps: int, augment: bool = False, seed: int = 0) -> gn.Sequential:
    layers = gn.layers
    moves = [layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
             layers.RandomRotation(0.05, fill_mode="constant", seed=seed + 1)] if augment else []
    model = gn.Sequential([
        layers.Reshape((28, 28, 1), input_shape=(28, 28)),
        *moves,
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


def moved(images: np.ndarray) -> np.ndarray:
    """The test digits shifted by up to 3 pixels and rotated by up to 20 degrees
    (a fixed draw: the same copy every run)."""
    batch = images[..., None].astype(np.float32)
    batch = augmentation.random_translation(batch, 3 / 28, 3 / 28, fill_mode="constant", rng=1)
    batch = augmentation.random_rotation(batch, 20 / 360, fill_mode="constant", rng=2)
    return batch[..., 0]


def main(argv=None) -> float:
    def options(parser):
        parser.add_argument("--augment", action="store_true",
                            help="random translations and rotations while training")
    args = parse_args(argv, __doc__.splitlines()[0], epochs=10, batch_size=64, extra=options)
    gn.random.seed(args.seed)
    steps = math.ceil(TRAIN_SIZE / args.batch_size) * args.epochs
    name = "mnist_cnn_augment" if args.augment else "mnist_cnn"
    return train_and_report(build_model(steps, args.augment, args.seed), name, args,
                            {"moved digits (shift <= 3 px, rotation <= 20 deg)": moved})


if __name__ == "__main__":
    main()
