"""10,000 training steps of the seed MLP: flat memory, no growth of the plan cache."""

import numpy as np
import pytest

import graphnet as gn


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.slow
def test_ten_thousand_steps_keep_memory_flat():
    rng = np.random.default_rng(0)
    x = rng.random((32 * 50, 784), dtype=np.float32)
    y = rng.integers(0, 10, 32 * 50)
    model = gn.Sequential([
        gn.layers.Dense(128, activation="relu", input_shape=(784,)),
        gn.layers.Dense(64, activation="relu"),
        gn.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    batches = [(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)]
    for xb, yb in batches * 4:                       # warm-up: compile, first allocations
        model.train_on_batch(xb, yb)
    plans, start = len(model.session._plans), _rss_bytes()
    for step in range(10_000):
        model.train_on_batch(*batches[step % len(batches)])
    growth = _rss_bytes() - start
    assert len(model.session._plans) == plans
    assert growth < 1 << 20, f"RSS grew by {growth / 1024:.0f} KiB over 10,000 steps"
