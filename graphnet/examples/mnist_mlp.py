"""The classic MNIST tutorial, on graphnet: a 784-128-64-10 MLP trained with Adam.

    python -m graphnet.examples.mnist_mlp [--epochs 10] [--batch-size 32] [--out out/]
    mpiexec -n 4 python -m graphnet.examples.mnist_mlp --distributed   # data-parallel on MPI

Loads MNIST (see `gn.datasets.mnist.load_data` for where it looks), scales
pixels to [0, 1], trains, evaluates on the test set, and writes the
loss/accuracy curves (PNG) and the model's graph (SVG) into --out. With
--distributed, every rank trains on its share of each global batch of
--batch-size (`gn.distributed.DataParallel`, needs `pip install 'graphnet[mpi]'`),
and only rank 0 prints and writes files.
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


def train_distributed(model: gn.Model, args) -> float:
    """Data-parallel training on every rank of the MPI job; rank 0 reports."""
    strategy = gn.distributed.DataParallel()
    root = strategy.rank == 0
    (x_train, y_train), (x_test, y_test) = gn.datasets.mnist.load_data()
    x_train, x_test = x_train / 255.0, x_test / 255.0
    if root:
        model.summary()
        per_rank = args.batch_size / strategy.size
        print(f"Data-parallel on {strategy.size} rank(s): global batch {args.batch_size}, "
              f"{per_rank:g} rows per rank")
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                        verbose=args.verbose, seed=args.seed, strategy=strategy)
    _, test_accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    if root:
        stats = strategy.stats()
        print(f"Test accuracy: {test_accuracy:.4f}")
        if strategy.size > 1:
            share = (stats["start"] + stats["wait"] + stats["metrics"]) / stats["step"]
            print(f"{stats['step'] * 1e3:.2f} ms per step, {share:.0%} of it communicating")
        os.makedirs(args.out, exist_ok=True)
        curves = os.path.join(args.out, "mnist_mlp_curves.png")
        history.plot(curves)
        print(f"Training curves: {curves}")
    return float(test_accuracy)


def main(argv=None) -> float:
    def extra(parser):
        parser.add_argument("--distributed", action="store_true",
                            help="data-parallel training over the ranks of an MPI job "
                                 "(mpiexec -n N python -m graphnet.examples.mnist_mlp ...)")
    args = parse_args(argv, __doc__.splitlines()[0], epochs=10, batch_size=32, extra=extra)
    gn.random.seed(args.seed)
    model = build_model()
    if args.distributed:
        accuracy = train_distributed(model, args)
        if gn.distributed.rank() != 0:
            return accuracy
    else:
        accuracy = train_and_report(model, "mnist_mlp", args)
    try:
        diagram = gn.viz.draw(model, os.path.join(args.out, "mnist_mlp.svg"))
        print(f"Model graph: {diagram}")
    except gn.viz.GraphvizNotFoundError as err:  # the .dot file is still written
        print(err)
    return accuracy


if __name__ == "__main__":
    main()
