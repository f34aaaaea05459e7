"""Hooks into `Model.fit`: early stopping, checkpoints, learning-rate control, logs.

A callback gets `on_train_begin/end`, `on_epoch_begin/end(epoch, logs)` and
`on_batch_begin/end(batch, logs)`; `self.model` is the model being trained.
Set `model.stop_training = True` to stop after the current epoch.
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from graphnet.optim import schedules


class Callback:
    """Base class: every hook does nothing."""

    #: True for callbacks that write files: under gn.distributed only rank 0 runs them.
    writes_files = False

    def __init__(self):
        self.model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...


class History(Callback):
    """Per-epoch logs: `history.history["loss"]`, `["val_accuracy"]`, ..."""

    def __init__(self):
        super().__init__()
        self.history: dict = {}
        self.epoch: list = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def plot(self, path=None, **kwargs):
        """Loss and metric curves per epoch, train and validation together, as a PNG
        at `path`; without a path, a matplotlib Figure (shown inline in a notebook)."""
        from graphnet.viz import plot_curves
        return plot_curves(self.history, path, **kwargs)


class _Monitor(Callback):
    """Shared logic of callbacks that watch one logged quantity for improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', not {mode!r}")
        if mode == "auto":
            mode = "max" if any(k in monitor for k in ("acc", "auc", "precision", "recall", "f1")) \
                else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def current(self, logs):
        if self.monitor not in (logs or {}):
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, which is not "
                           f"logged; logged: {sorted(logs or {})}")
        return logs[self.monitor]

    def improved(self, value) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved for `patience` epochs."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=False):
        super().__init__(monitor, mode, min_delta)
        self.patience, self.restore_best_weights = patience, restore_best_weights
        self.wait, self.best_weights, self.stopped_epoch = 0, None, None

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.best_weights, self.stopped_epoch = 0, None, None

    def on_epoch_end(self, epoch, logs=None):
        value = self.current(logs)
        if self.improved(value):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model after each epoch, or only when `monitor` improves.

    `filepath` may contain `{epoch}` and logged names: "ckpt-{epoch:02d}.npz"
    (.npz, .safetensors or a folder). The whole model is saved, optimizer state
    included, so `gn.load_model` resumes training from it; with
    `save_weights_only=True` only the weights (`model.save_weights`).
    """

    writes_files = True

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 save_weights_only=False):
        super().__init__(monitor, mode, 0.0)
        self.filepath, self.save_best_only = str(filepath), save_best_only
        self.save_weights_only = save_weights_only

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self.current(logs)
            if not self.improved(value):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start to `schedule(epoch, lr)`."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.learning_rate
        self.model.learning_rate = float(self.schedule(epoch, lr))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.learning_rate


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by `factor` after `patience` epochs without
    improvement; the rule is `gn.optim.schedules.ReduceLROnPlateau`'s."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4,
                 min_lr=0.0, cooldown=0, mode="auto"):
        super().__init__(monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.options = dict(factor=factor, patience=patience, min_delta=min_delta,
                            cooldown=cooldown, min_lr=min_lr, mode=self.mode)
        self.rule = None

    def on_train_begin(self, logs=None):
        self.rule = schedules.ReduceLROnPlateau(self.model.optimizer, **self.options)

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = self.rule.update(self.model.session, self.current(logs))


class CSVLogger(Callback):
    """Append one CSV row of logs per epoch to `filename`."""

    writes_files = True

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = str(filename), separator, append
        self.keys = None

    def on_train_begin(self, logs=None):
        if not self.append and os.path.exists(self.filename):
            os.remove(self.filename)
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        new_file = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0
        if self.keys is None:
            self.keys = sorted(logs)
        with open(self.filename, "a", newline="") as f:
            writer = csv.writer(f, delimiter=self.separator)
            if new_file:
                writer.writerow(["epoch", *self.keys])
            writer.writerow([epoch, *(logs.get(k, "") for k in self.keys)])


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch's loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            report = getattr(self.model, "nan_report", None)
            print(f"Batch {batch}: invalid loss {loss}, terminating training"
                  + (f"\n{report}" if report else ""))
            self.model.stop_training = True
