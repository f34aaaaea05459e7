"""Ctrl-C during fit stops between whole steps (graphnet/models/model.py)."""

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import graphnet as gn

SETUP = textwrap.dedent("""
    import numpy as np
    import graphnet as gn

    def data():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4096, 32)).astype(np.float32)
        return x, (x[:, :3].sum(1) > 0).astype(np.int64)

    def model():
        gn.random.seed(0)
        m = gn.Sequential([gn.layers.Dense(256, activation="relu", input_shape=(32,)),
                           gn.layers.Dense(256, activation="relu"),
                           gn.layers.Dense(2, activation="softmax")])
        m.compile(optimizer=gn.optim.Adam(1e-3), loss="sparse_categorical_crossentropy")
        return m
""")

CHILD = SETUP + textwrap.dedent("""
    import sys
    class Report(gn.callbacks.Callback):
        def on_train_begin(self, logs=None):
            print("training", flush=True)
        def on_train_end(self, logs=None):
            self.model.save(sys.argv[1])
            print("ended", flush=True)
    x, y = data()
    history = model().fit(x, y, epochs=200, batch_size=32, verbose=0, seed=0,
                          callbacks=[Report()])
    print("returned", len(history.history.get("loss", [])), flush=True)
""")


def _steps(model):
    return int(model.session.run(model.optimizer.iterations))


@pytest.mark.parametrize("delay", [0.3, 0.77, 1.31])
def test_sigint_stops_after_a_whole_step(tmp_path, delay):
    path = tmp_path / "interrupted.npz"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "training"
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, out
    assert "Interrupted in epoch" in out and "ended" in out and "returned" in out
    interrupted = gn.load_model(path)
    steps = _steps(interrupted)
    assert steps > 0

    # the same run, uninterrupted, stopped after that many steps
    scope = {}
    exec(SETUP, scope)
    reference = scope["model"]()

    class StopAfter(gn.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if _steps(self.model) == steps:
                self.model.stop_training = True
    reference.fit(*scope["data"](), epochs=200, batch_size=32, verbose=0, seed=0,
                  callbacks=[StopAfter()])
    assert _steps(reference) == steps
    for a, b in zip(interrupted.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
