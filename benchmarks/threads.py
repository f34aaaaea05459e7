"""Concurrency: the single-thread cost of thread-safe plans, and what two threads gain.

    python -m benchmarks.threads [--repeats 5]

1. A seed-MLP training step (784-128-64-10, batch 32, Adam) and a predict
   call, one thread: ms per call (run this at two revisions to compare).
2. `model.predict` on a 784-1024-1024-10 MLP at batch 256: the same 64
   batches predicted by one thread, then split between two threads, on this
   machine's cores; the speedup is time(1 thread) / time(2 threads).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import numpy as np

import graphnet as gn


def _mlp(sizes, optimizer="adam"):
    gn.random.seed(0)
    layers = [gn.layers.Dense(sizes[1], activation="relu", input_shape=(sizes[0],))]
    layers += [gn.layers.Dense(n, activation="relu") for n in sizes[2:-1]]
    layers.append(gn.layers.Dense(sizes[-1], activation="softmax"))
    model = gn.Sequential(layers)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def single_thread(repeats: int) -> dict:
    model = _mlp((784, 128, 64, 10))
    rng = np.random.default_rng(0)
    x = rng.random((32, 784), dtype=np.float32)
    y = rng.integers(0, 10, 32)
    for _ in range(50):
        model.train_on_batch(x, y)
        model.predict(x)
    steps, predicts = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(500):
            model.train_on_batch(x, y)
        steps.append((time.perf_counter() - start) / 500)
        start = time.perf_counter()
        for _ in range(500):
            model.predict(x)
        predicts.append((time.perf_counter() - start) / 500)
    return {"step_ms": statistics.median(steps) * 1e3,
            "predict_ms": statistics.median(predicts) * 1e3}


def two_threads(repeats: int) -> dict:
    model = _mlp((784, 1024, 1024, 10))
    batches = [np.random.default_rng(i).random((256, 784), dtype=np.float32) for i in range(64)]
    model.predict(batches[0], batch_size=256)

    def work(part):
        for xb in part:
            model.predict(xb, batch_size=256)

    def timed(parts):
        threads = [threading.Thread(target=work, args=(p,)) for p in parts]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - start

    one = statistics.median(timed([batches]) for _ in range(repeats))
    two = statistics.median(timed([batches[0::2], batches[1::2]]) for _ in range(repeats))
    return {"one_thread_s": one, "two_threads_s": two, "speedup": one / two}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    threads = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS",
                                                       "OMP_NUM_THREADS")}
    print(f"cores: {os.cpu_count()}, BLAS thread variables: {threads}")
    single = single_thread(args.repeats)
    print(f"seed MLP, one thread: train_on_batch {single['step_ms']:.3f} ms, "
          f"predict {single['predict_ms']:.3f} ms (medians of {args.repeats} x 500 calls)")
    pair = two_threads(args.repeats)
    print(f"784-1024-1024-10 predict, 64 batches of 256: one thread {pair['one_thread_s']:.2f} s, "
          f"two threads {pair['two_threads_s']:.2f} s: speedup {pair['speedup']:.2f}x")
    return single, pair


if __name__ == "__main__":
    main()
