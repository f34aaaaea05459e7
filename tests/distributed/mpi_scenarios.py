"""Scenarios that test_mpi.py runs under `mpiexec -n 2`: each rank writes what
it saw into OUT (npz weights, a JSON report per rank), and the test compares.

    mpiexec -n 2 python tests/distributed/mpi_scenarios.py OUT scenario [scenario ...]

The same functions, called with strategy=None in one process, give the
references (test_mpi.py does that in-process).
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

import graphnet as gn

STEPS, BATCH = 50, 64


def data(n: int = STEPS * BATCH, features: int = 784):
    """MNIST's first n images (flattened, in [0, 1]) when it is available, else
    random images of the same shape: the comparison is the same either way."""
    try:
        (x, y), _ = gn.datasets.mnist.load_data()
        x = x[:n].reshape(n, -1).astype(np.float32) / 255
        return x[:, :features], y[:n].astype(np.int64)
    except Exception:  # noqa: BLE001 - no data set here: synthetic data will do
        rng = np.random.default_rng(0)
        return rng.random((n, features), np.float32), rng.integers(0, 10, n)


def build(hidden: int = 64, features: int = 784) -> gn.Sequential:
    gn.reset_names()
    model = gn.Sequential([
        gn.layers.Dense(hidden, activation="relu", input_shape=(features,)),
        gn.layers.Dropout(0.25),
        gn.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(strategy, batch_size=BATCH, examples=STEPS * BATCH, epochs=1, hidden=64,
          features=784, seed=None, callbacks=None):
    """Seed, build, fit (dropout on, shuffled by graphnet's global generator);
    returns (model, history)."""
    x, y = data(examples, features)
    gn.random.seed(0)
    model = build(hidden, features)
    history = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, seed=seed,
                        callbacks=callbacks, strategy=strategy)
    return model, history.history


# ---------------------------------------------------------------- scenarios


def equivalence(out, report):
    """2 ranks at global batch 64 against one process at 64: 50 steps."""
    strategy = gn.distributed.DataParallel()
    model, history = train(strategy)
    report["equivalence"] = {"history": history, "stats": strategy.stats()}
    np.savez(os.path.join(out, f"equivalence_{gn.distributed.rank()}.npz"), *model.get_weights())


def uneven(out, report):
    """Global batch 63 (shards of 32 and 31) over 130 rows: a last batch of 4."""
    model, history = train(gn.distributed.DataParallel(), batch_size=63, examples=130,
                           epochs=2, features=50)
    report["uneven"] = {"history": history}
    np.savez(os.path.join(out, f"uneven_{gn.distributed.rank()}.npz"), *model.get_weights())


def tiny_remainder(out, report):
    """A last global batch of 1 row on 2 ranks is skipped, with a warning on rank 0."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, history = train(gn.distributed.DataParallel(), batch_size=32, examples=65,
                           features=50)
    report["tiny_remainder"] = {"history": history,
                                "warnings": [str(w.message) for w in caught]}


def bad_batch(out, report):
    """A global batch smaller than the number of ranks."""
    report["bad_batch"] = _error_of(lambda: train(gn.distributed.DataParallel(), batch_size=1,
                                                  examples=64, features=50))


def different_graphs(out, report):
    """Rank 1 builds a wider hidden layer than rank 0."""
    hidden = 16 + 8 * gn.distributed.rank()
    report["different_graphs"] = _error_of(lambda: train(
        gn.distributed.DataParallel(), examples=128, hidden=hidden, features=50))


def different_calls(out, report):
    """Rank 1 asks for another number of epochs."""
    epochs = 1 + gn.distributed.rank()
    report["different_calls"] = _error_of(lambda: train(
        gn.distributed.DataParallel(), examples=128, epochs=epochs, features=50))


def resume_run(strategy, out):
    """Two epochs with checkpoints and a CSV log (under a strategy only rank 0
    writes them), load_model from rank 0's checkpoint, a third epoch."""
    rank = 0 if strategy is None else strategy.rank
    checkpoint = gn.callbacks.ModelCheckpoint(os.path.join(out, f"ckpt_rank{rank}.npz"),
                                              monitor="loss")
    log = gn.callbacks.CSVLogger(os.path.join(out, f"log_rank{rank}.csv"))
    x, y = data(320, 50)
    train(strategy, batch_size=32, examples=320, epochs=2, features=50, seed=3,
          callbacks=[checkpoint, log])
    model = gn.load_model(os.path.join(out, "ckpt_rank0.npz"))
    history = model.fit(x, y, batch_size=32, epochs=3, initial_epoch=2, seed=3, verbose=0,
                        strategy=strategy)
    return model, history.history


def resume(out, report):
    model, history = resume_run(gn.distributed.DataParallel(), out)
    report["resume"] = {"history": history}
    np.savez(os.path.join(out, f"resume_{gn.distributed.rank()}.npz"), *model.get_weights())


def graph_level(out, report):
    """allreduce_gradients and broadcast_variables on a hand-built graph."""
    rank, size = gn.distributed.rank(), gn.distributed.size()
    gn.reset_names()
    x, y = data(64, 50)
    xs = gn.placeholder((None, 50), name="x")
    ys = gn.placeholder((None,), "int64", name="y")
    w = gn.variable(gn.init.glorot_uniform((50, 10), seed=rank), name="w")  # differ: broadcast
    b = gn.variable(np.zeros(10, np.float32), name="b")
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(xs @ w + b, ys))
    opt = gn.optim.SGD(0.5)
    pairs = gn.distributed.allreduce_gradients(opt.compute_gradients(loss), bucket_bytes=64)
    step = opt.apply_gradients(pairs)
    sess = gn.Session()
    gn.distributed.broadcast_variables(sess, [w, b])
    lo, hi = gn.distributed.shard_bounds(len(x), rank, size)
    for _ in range(5):
        sess.run(step, {xs: x[lo:hi], ys: y[lo:hi]})
    np.savez(os.path.join(out, f"graph_level_{rank}.npz"), sess.get(w), sess.get(b))


def failing_rank(out, report):
    """Rank 1 raises in its third step; rank 0 is left waiting in the allreduce."""
    class Boom(gn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if gn.distributed.rank() == 1 and batch == 2:
                raise RuntimeError("boom: rank 1 failed on purpose")
    train(gn.distributed.DataParallel(), examples=640, features=50, callbacks=[Boom()])


def dying_rank(out, report):
    """Rank 1 exits without a word in its third step."""
    class Die(gn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if gn.distributed.rank() == 1 and batch == 2:
                os._exit(3)
    train(gn.distributed.DataParallel(), examples=640, features=50, callbacks=[Die()])


def hanging_rank(out, report):
    """Rank 1 stops answering (sleeps); rank 0 gives up after its 2 s timeout."""
    class Hang(gn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if gn.distributed.rank() == 1 and batch == 2:
                time.sleep(600)
    train(gn.distributed.DataParallel(timeout=2.0), examples=640, features=50,
          callbacks=[Hang()])


def _error_of(run) -> dict:
    try:
        run()
    except gn.distributed.DistributedError as err:
        return {"type": type(err).__name__, "message": str(err), "collective": err.collective}
    return {"type": None}


def main(argv):
    out, names = argv[0], argv[1:]
    report = {}
    for name in names:
        globals()[name](out, report)
    rank = gn.distributed.rank()
    with open(os.path.join(out, f"report_{rank}.json"), "w") as f:
        json.dump(report, f, default=float)


if __name__ == "__main__":
    main(sys.argv[1:])
