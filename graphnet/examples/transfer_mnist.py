"""Transfer learning on MNIST: pretrain on digits 0-4, transfer to 5-9 from a few labels.

    python -m graphnet.examples.transfer_mnist [--labels 100 300 1000] [--seeds 3]

1. Pretrain a small CNN (conv 32, conv 64, dense 128 "features", head) on
   every training image of digits 0-4 and save it (`model.save`).
2. In a fresh process, load it (`gn.load_model`) and learn digits 5-9 from
   only N labelled images (N/5 per digit), three ways:
     (a) scratch:   the same network trained from random weights;
     (b) frozen:    the pretrained base frozen, a new head trained on top;
     (c) fine-tune: (b), then the top block (conv 64 and dense 128)
                    unfrozen and trained on at a 10x lower learning rate.
   Test accuracy on every test image of 5-9, averaged over seeds.

Writes the pretrained model and a table of results (Markdown) into --out.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time

import numpy as np

import graphnet as gn

LEARNING_RATE = 1e-3
STEPS = 300          # training steps for each small-data run
BATCH = 32


def cnn(classes: int, name: str = "cnn") -> gn.Sequential:
    """conv 32, conv 64, dense 128 ("features"), then a softmax head."""
    layers = gn.layers
    return gn.Sequential([
        layers.Reshape((28, 28, 1), input_shape=(28, 28), name="image"),
        layers.Conv2D(32, 3, activation="relu", name="conv1"),
        layers.MaxPool2D(2, name="pool1"),
        layers.Conv2D(64, 3, activation="relu", name="conv2"),
        layers.MaxPool2D(2, name="pool2"),
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="features"),
        layers.Dense(classes, activation="softmax", name="head"),
    ], name=name)


def digits(x, y, low: int):
    """The images of digits low..low+4, labelled 0-4."""
    keep = (y >= low) & (y < low + 5)
    return x[keep], (y[keep] - low).astype(np.int64)


def few_labels(x, y, count: int, seed: int):
    """`count` training images, the same number of each of the five classes."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([rng.choice(np.flatnonzero(y == c), count // 5, replace=False)
                           for c in range(5)])
    return x[rows], y[rows]


def compile_for(model, learning_rate):
    model.compile(optimizer=gn.optim.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def train(model, x, y, seed: int, steps: int):
    epochs = max(1, math.ceil(steps / math.ceil(len(x) / BATCH)))
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0, seed=seed)


def pretrain(path: str, epochs: int, seed: int, limit: int | None = None):
    (x_train, y_train), (x_test, y_test) = gn.datasets.mnist.load_data()
    x, y = digits(x_train / 255.0, y_train, 0)
    x, y = x[:limit], y[:limit]
    gn.random.seed(seed)
    model = cnn(5, "pretrained")
    compile_for(model, LEARNING_RATE)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, seed=seed)
    _, accuracy = model.evaluate(*digits(x_test / 255.0, y_test, 0), batch_size=256, verbose=0)
    print(f"pretrained on digits 0-4 ({len(x)} images, {epochs} epochs): "
          f"test accuracy {accuracy:.4f}")
    model.save(path)


def transfer(base_path: str, x, y, x_test, y_test, seed: int, steps: int = STEPS) -> dict:
    """Test accuracies of scratch, frozen and fine-tune on (x, y)."""
    results = {}
    gn.random.seed(seed)
    scratch = cnn(5, "scratch")
    compile_for(scratch, LEARNING_RATE)
    train(scratch, x, y, seed, steps)
    results["scratch"] = scratch.evaluate(x_test, y_test, batch_size=256, verbose=0)[1]

    base = gn.load_model(base_path, compile=False)
    features = gn.Model(base.inputs, base.get_layer("features").output, name="base")
    features.trainable = False
    model = gn.Sequential([features, gn.layers.Dense(5, activation="softmax", name="new_head")])
    compile_for(model, LEARNING_RATE)
    train(model, x, y, seed, steps)
    results["frozen"] = model.evaluate(x_test, y_test, batch_size=256, verbose=0)[1]

    features.trainable = True
    for layer in features.layers:           # unfreeze the top block only
        layer.trainable = layer.name in ("conv2", "features")
    compile_for(model, LEARNING_RATE / 10)
    train(model, x, y, seed, steps)
    results["fine-tune"] = model.evaluate(x_test, y_test, batch_size=256, verbose=0)[1]
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=STEPS,
                        help="training steps of each small-data run")
    parser.add_argument("--pretrain-limit", type=int, default=None,
                        help="pretrain on the first N images only (for quick checks)")
    parser.add_argument("--out", default="out")
    parser.add_argument("--pretrain-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    base_path = os.path.join(args.out, "mnist_0_4_cnn.safetensors")
    if args.pretrain_only:
        pretrain(base_path, args.pretrain_epochs, seed=0, limit=args.pretrain_limit)
        return {}
    start = time.perf_counter()
    if not os.path.exists(base_path):   # pretrain in another process; load it here
        subprocess.run([sys.executable, "-m", "graphnet.examples.transfer_mnist",
                        "--pretrain-only", "--out", args.out,
                        "--pretrain-epochs", str(args.pretrain_epochs)]
                       + ([] if args.pretrain_limit is None else
                          ["--pretrain-limit", str(args.pretrain_limit)]), check=True)
    (x_train, y_train), (x_test, y_test) = gn.datasets.mnist.load_data()
    x5, y5 = digits(x_train / 255.0, y_train, 5)
    x5_test, y5_test = digits(x_test / 255.0, y_test, 5)
    table = {}
    for count in args.labels:
        runs = [transfer(base_path, *few_labels(x5, y5, count, seed), x5_test, y5_test, seed,
                         args.steps) for seed in range(args.seeds)]
        table[count] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        print(f"{count:>5} labels: " + ", ".join(f"{k} {v:.4f}" for k, v in
                                                   table[count].items()), flush=True)
    lines = ["| labels | (a) scratch | (b) frozen base + new head | (c) then fine-tune top |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {n} | {r['scratch']:.2%} | {r['frozen']:.2%} | {r['fine-tune']:.2%} |"
              for n, r in table.items()]
    report = os.path.join(args.out, "transfer_mnist.md")
    with open(report, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"({args.seeds} seeds; {time.perf_counter() - start:.0f} s; table in {report})")
    return table


if __name__ == "__main__":
    main()
