"""Callbacks driving Model.fit (graphnet/callbacks.py)."""

import csv

import numpy as np
import pytest

import graphnet as gn
from graphnet import callbacks

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 4)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1).astype(np.float32)[:, None]


def regression(lr=0.05, optimizer=None):
    model = gn.Sequential([gn.layers.Dense(1, input_shape=(4,))])
    model.compile(optimizer or gn.optim.SGD(lr), "mse")
    return model


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(f"epoch_begin {epoch}")

    def on_batch_end(self, batch, logs=None):
        self.events.append(f"batch_end {batch}")

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(f"epoch_end {epoch} {sorted(logs)}")

    def on_train_end(self, logs=None):
        self.events.append("train_end")


def test_hooks_are_called_in_order():
    recorder = Recorder()
    regression().fit(X, Y, epochs=2, batch_size=48, verbose=0, callbacks=[recorder],
                     validation_data=(X, Y))
    assert recorder.events == [
        "train_begin", "epoch_begin 0", "batch_end 0", "batch_end 1",
        "epoch_end 0 ['loss', 'val_loss']", "epoch_begin 1", "batch_end 0", "batch_end 1",
        "epoch_end 1 ['loss', 'val_loss']", "train_end"]


def test_batch_hooks_of_subclasses_see_every_batch_with_running_logs():
    # fit calls only the batch hooks a callback's class overrides, inherited ones too.
    class Begin(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.events = []

        def on_batch_begin(self, batch, logs=None):
            self.events.append(f"begin {batch}")

    class BeginAndEnd(Begin):
        def on_batch_end(self, batch, logs=None):
            self.events.append(f"end {batch} {sorted(logs)} {logs['loss'] > 0}")

    first, second = Begin(), BeginAndEnd()
    regression().fit(X, Y, epochs=1, batch_size=32, verbose=0, callbacks=[first, second])
    assert first.events == ["begin 0", "begin 1", "begin 2"]
    assert second.events == [event for batch in range(3) for event in
                             (f"begin {batch}", f"end {batch} ['loss'] True")]


def test_early_stopping_stops_and_restores_the_best_weights():
    model = regression(lr=0.5)  # too large: the loss grows after a few epochs
    stop = callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    history = model.fit(X, Y, epochs=50, batch_size=96, verbose=0, callbacks=[stop])
    losses = history.history["loss"]
    assert len(losses) < 50 and stop.stopped_epoch == len(losses) - 1
    assert model.evaluate(X, Y, verbose=0) == pytest.approx(min(losses), rel=0.5)


def test_model_checkpoint_saves_only_improvements(tmp_path):
    model = regression()
    path = tmp_path / "best.npz"
    saved = []

    class Spy(callbacks.ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            before = path.stat().st_mtime_ns if path.exists() else None
            super().on_epoch_end(epoch, logs)
            saved.append(path.exists() and path.stat().st_mtime_ns != before)

    model.fit(X, Y, epochs=3, batch_size=32, verbose=0,
              callbacks=[Spy(path, monitor="loss", save_best_only=True)])
    assert saved[0] and path.exists()
    model.load_weights(path)


def test_model_checkpoint_saves_a_resumable_model_or_weights_only(tmp_path):
    model = regression(optimizer=gn.optim.Adam(0.01))
    model.fit(X, Y, epochs=2, batch_size=32, verbose=0, seed=0, callbacks=[
        callbacks.ModelCheckpoint(tmp_path / "model-{epoch}.npz", monitor="loss"),
        callbacks.ModelCheckpoint(tmp_path / "weights-{epoch}.npz", monitor="loss",
                                  save_weights_only=True)])
    resumed = gn.load_model(tmp_path / "model-1.npz")
    assert resumed.session.run(resumed.optimizer.iterations) == len(X) // 32 + (len(X) % 32 > 0)
    with pytest.raises(gn.io.CheckpointError, match="holds weights only"):
        gn.load_model(tmp_path / "weights-2.npz")
    resumed.load_weights(tmp_path / "weights-2.npz")
    np.testing.assert_array_equal(resumed.get_weights()[0], model.get_weights()[0])


def test_learning_rate_scheduler_sets_each_epochs_rate():
    model = regression(lr=0.1)
    seen = []

    def schedule(epoch, lr):
        seen.append(lr)
        return 0.1 / (epoch + 1)

    history = model.fit(X, Y, epochs=3, verbose=0,
                        callbacks=[callbacks.LearningRateScheduler(schedule)])
    assert seen == pytest.approx([0.1, 0.1, 0.05])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_reduce_lr_on_plateau_cuts_the_rate():
    # A falling loss never improves in "max" mode: a plateau after the first epoch.
    cut = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, mode="max")
    history = regression(lr=0.08).fit(X, Y, epochs=5, verbose=0, callbacks=[cut])
    assert history.history["learning_rate"] == pytest.approx([0.08, 0.08, 0.04, 0.04, 0.02])


def test_csv_logger_writes_a_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    regression().fit(X, Y, epochs=3, verbose=0, callbacks=[callbacks.CSVLogger(path)])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "loss"] and [r[0] for r in rows[1:]] == ["0", "1", "2"]


@pytest.mark.filterwarnings("ignore:overflow", "ignore:invalid value")
def test_terminate_on_nan_stops_a_diverging_run():
    model = regression(lr=1e6)
    history = model.fit(X, Y, epochs=20, batch_size=8, verbose=0,
                        callbacks=[callbacks.TerminateOnNaN()])
    assert len(history.history["loss"]) < 20 or not np.isfinite(history.history["loss"][-1])
    assert model.stop_training


def test_a_monitor_that_is_not_logged_says_what_is():
    with pytest.raises(KeyError, match="monitors 'val_loss'.*logged: \\['loss'\\]"):
        regression().fit(X, Y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping()])
