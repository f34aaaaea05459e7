"""The functional `Model`, base of `Sequential`: compile, fit, evaluate, predict, save.

A model builds two graphs from its layers, one for training (dropout on,
batch statistics) and one for inference, plus the loss, the optimizer's
update node and the metrics' per-batch statistics. It runs them through a
Session it owns; the Session compiles each set of fetches once per feed
shape, so a training step never recompiles after the first batch (a smaller
last batch compiles once more).

A model is also a layer: called on a node inside another model it replays
its layers there, on the same weights. Every model's Session keeps its
variable values in one shared store (`graphnet.session.model_values`), so a
feature extractor built from another model's layers sees that model's
trained weights.
"""

from __future__ import annotations

import math
import signal
import threading
import time

import numpy as np

from graphnet import losses as losses_module
from graphnet import metrics as metrics_module
from graphnet import ops, optim
from graphnet.callbacks import Callback, History
from graphnet.errors import ShapeError
from graphnet.graph import Node, Placeholder, placeholder
from graphnet.layers.base import Layer, call_history, layer_name
from graphnet.session import Session, model_values
from graphnet.shapes import format_shape


def Input(shape, dtype="float32", name=None) -> Node:  # noqa: N802 - Keras' name
    """A symbolic model input; the batch axis is added: `gn.Input((28, 28))`."""
    return placeholder((None,) + tuple(shape), dtype, name=name or "input")


class Model(Layer):
    """A functional model from symbolic inputs to outputs built by calling layers:

        inputs = gn.Input((784,))
        outputs = gn.layers.Dense(10, activation="softmax")(inputs)
        model = gn.Model(inputs, outputs)

    A model is a layer too: `gn.Sequential([feature_model, gn.layers.Dense(5)])`.
    """

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        # Not Layer.__init__: a model's weights, losses and `built` come from its layers.
        self.name = layer_name(name, "model" if type(self) is Model else type(self).__name__)
        self.input_shape = None
        self.dtype = np.dtype("float32")
        self._trainable = bool(trainable)
        self._first_call = None
        self.session = Session(values=model_values)
        self.stop_training = False
        self.history = None
        self._compiled = None
        self._graphs = None
        self.nan_report = None  # why the last NaN loss in fit happened (guard mode's finding)
        self._strategy = None   # a gn.distributed strategy while fit runs under one
        self._build_lock = threading.RLock()  # threads building the graphs take turns
        self.inputs = self.outputs = None
        self._calls = []
        if inputs is not None:
            if not isinstance(inputs, Node) or not isinstance(inputs.op, Placeholder):
                raise TypeError("Model inputs must be one gn.Input(...) placeholder, got "
                                f"{inputs!r}")
            if not isinstance(outputs, Node):
                raise TypeError(f"Model outputs must be one graph node, got {outputs!r}")
            self.inputs, self.outputs = inputs, outputs
            self._calls = _trace_calls(inputs, outputs)

    # ------------------------------------------------------------ structure

    @property
    def layers(self) -> list:
        """The model's layers in call order (a nested model counts as one layer)."""
        return list(dict.fromkeys(layer for layer, _, _ in self._calls))

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by name or by position in `layers`: `model.get_layer("features")`."""
        layers = self.layers
        if (name is None) == (index is None):
            raise ValueError("get_layer() takes either name= or index=, not both or neither")
        if index is not None:
            if not -len(layers) <= index < len(layers):
                raise IndexError(f"{self.name} has {len(layers)} layers; no index {index}")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.name} has no layer named {name!r}; its layers are "
                         f"{[layer.name for layer in layers]}")

    def call(self, x: Node, training: bool = False) -> Node:
        """Rebuild the model's graph on input `x` (replaying the recorded layer calls)."""
        value = {self.inputs: x}
        for layer, source, out in self._calls:
            value[out] = layer(value[source], training=training)
        return value[self.outputs]

    def check_input(self, x: Node):
        expected = self.inputs.shape if self.inputs is not None else None
        if expected is None:
            return
        fits = x.ndim == len(expected) and all(
            a is None or b is None or a == b for a, b in zip(x.shape[1:], expected[1:]))
        if not fits:
            raise ShapeError(f"model '{self.name}' takes inputs of shape "
                             f"{format_shape(expected)}, got {format_shape(x.shape)}")

    @property
    def input(self) -> Node:
        """The model's input placeholder (`gn.Input`)."""
        if self.inputs is None:
            return super().input
        return self.inputs

    @property
    def output(self) -> Node:
        """The model's output node (inference mode)."""
        if self.outputs is None:
            return super().output
        return self.outputs

    @property
    def built(self) -> bool:
        return all(layer.built for layer in self.layers) and bool(self.layers)

    @built.setter
    def built(self, value):
        """Layer.__call__ marks a model built once `build` made its graph; nothing to keep."""

    @property
    def uses_training(self) -> bool:
        return any(layer.uses_training for layer in self.layers)

    @property
    def weights(self) -> list:
        return list(dict.fromkeys(w for layer in self.layers for w in layer.weights))

    @property
    def trainable_weights(self) -> list:
        if not self.trainable:
            return []
        return list(dict.fromkeys(w for layer in self.layers for w in layer.trainable_weights))

    @property
    def losses(self) -> list:
        return [p for layer in self.layers for p in layer.losses]

    @property
    def updates(self) -> list:
        """State updates of the last training call (batch norm's moving averages)."""
        return [u for layer in self.layers for u in getattr(layer, "updates", [])]

    @Layer.trainable.setter
    def trainable(self, value: bool):
        """Freeze or unfreeze every layer of the model, nested models included."""
        self._trainable = bool(value)
        for layer in self.layers:
            layer.trainable = value

    def count_params(self) -> int:
        return int(sum(np.prod(w.shape, dtype=np.int64) for w in self.weights))

    def get_weights(self) -> list:
        """Copies of every weight's value, in layer order."""
        self._require_built("get_weights")
        return [self.session.get(w) for w in self.weights]

    def set_weights(self, values):
        """Set every weight from a list like `get_weights()` returns."""
        self._require_built("set_weights")
        values = list(values)
        if len(values) != len(self.weights):
            raise ValueError(f"{self.name} has {len(self.weights)} weights; "
                             f"got {len(values)} arrays")
        for w, v in zip(self.weights, values):
            self.session.set(w, v)

    # -------------------------------------------------------- checkpoints

    def save(self, path):
        """Write the whole model: architecture, compile settings, weights and the
        optimizer's state (.npz, .safetensors, or a folder), atomically.
        `gn.load_model(path)` rebuilds it, and `fit` continues exactly."""
        from graphnet.models import saving
        saving.save_model(self, path)

    def save_weights(self, path):
        """Write every weight (.npz, .safetensors or a folder), atomically, with the
        model's layer structure so `load_weights` can match by structure or by name."""
        from graphnet.models import saving
        saving.save_weights(self, path)

    def load_weights(self, path, by_name: bool = False, skip_mismatch: bool = False,
                     strict: bool = False):
        """Read weights from `save_weights` or `save`: matched by structure (layer
        order, then each layer's weights in order), or by layer name with
        `by_name=True`; `skip_mismatch=True` skips weights whose shapes differ.

        A compiled model also takes the optimizer state of a `save` file; when
        that state does not fit the compiled optimizer, the weights load and
        the optimizer starts fresh with a warning, or nothing loads under
        `strict=True`. Everything is checked before any weight changes."""
        from graphnet.models import saving
        saving.load_weights(self, path, by_name=by_name, skip_mismatch=skip_mismatch,
                            strict=strict)

    def get_config(self) -> dict:
        """The functional graph: its layers' configs and which call feeds which."""
        from graphnet.models import saving
        return saving.functional_config(self)

    @classmethod
    def from_config(cls, config: dict):
        from graphnet.models import saving
        return saving.functional_from_config(cls, config)

    def summary(self, print_fn=print):
        """Print a table of layers, output shapes and parameter counts."""
        self._require_built("summary")
        rows = [(f"{layer.name} ({type(layer).__name__})", format_shape(layer.output_shape),
                 f"{layer.count_params():,}") for layer in self.layers]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in
                  enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        rule = "-" * (sum(widths) + 4)
        trainable = sum(int(np.prod(w.shape)) for w in self.trainable_weights)
        total = self.count_params()
        text = [f'Model: "{self.name}"', rule, line.format("Layer (type)", "Output Shape",
                                                           "Param #"), rule]
        text += [line.format(*r) for r in rows]
        text += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                 f"Non-trainable params: {total - trainable:,}"]
        print_fn("\n".join(text))

    def to_dot(self, show_grads: bool = False, **options):
        """A Graphviz diagram of the model: its inference graph, scoped by layer;
        with `show_grads=True`, the training loss and its gradients."""
        from graphnet.viz import to_dot
        self._require_built("to_dot")
        if show_grads:
            if self._graphs is None or "train" not in self._graphs:
                raise ValueError(f"{self.name} has no training graph yet: show_grads needs a "
                                 "compiled model that has seen data (fit or train_on_batch)")
            return to_dot(self._graphs["train"]["loss"], show_grads=True, **options)
        return to_dot(self.outputs, **options)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.to_dot(depth=1)._repr_mimebundle_(include, exclude)

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"{self.name} is not built yet, so {what} has nothing to show: give "
                             "the first layer an input_shape, or call fit/predict first")

    # ------------------------------------------------------------- compile

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, guard: bool = False):
        """Choose the optimizer, loss and metrics (names or objects).

        Compile again after changing `trainable` flags: the new training graph
        updates only the trainable weights. `optimizer` may be a
        `gn.optim.MultiOptimizer` to give parts of the model their own rules.
        `guard=True` checks every step of every run for NaN and Inf and stops
        at the first graph node that makes one, before that step's updates
        (a GuardError naming the node and the line that created it).
        """
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        loss_name = loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)
        self._compiled = {
            "optimizer": optim.get(optimizer),
            "loss": losses_module.get(loss),
            "loss_name": str(loss_name),
            "metrics": [metrics_module.get(m, str(loss_name)) for m in (metrics or [])],
            # as given, for the checkpoint's compile settings
            "loss_arg": loss, "metric_args": list(metrics or []),
        }
        self._graphs = None
        if guard != self.session.guard:
            self.session = Session(values=model_values, guard=guard)

    @property
    def optimizer(self):
        return self._require_compiled()["optimizer"]

    @property
    def learning_rate(self) -> float:
        """The optimizer's current learning rate (settable, for callbacks)."""
        return self.optimizer.get_learning_rate(self.session)

    @learning_rate.setter
    def learning_rate(self, value: float):
        self.optimizer.set_learning_rate(self.session, value)

    def _require_compiled(self):
        if self._compiled is None:
            raise RuntimeError(f"{self.name} must be compiled first: model.compile(optimizer, "
                               "loss, metrics)")
        return self._compiled

    def _build_graphs(self, x: np.ndarray, y: np.ndarray):
        """Placeholders, training and inference graphs, loss, update and metric nodes."""
        compiled = self._require_compiled()
        x_in = self._input_placeholder(x)
        y_in = placeholder((None,) + y.shape[1:], "int64" if y.dtype.kind in "iub" else "float32",
                           name="labels")
        train_out = self.call(x_in, training=True)
        infer_out = train_out if not any(layer.uses_training for layer in self.layers) \
            else self.call(x_in, training=False)
        _check_output_fits_labels(train_out, y_in, compiled["loss_name"])
        penalties = self.losses

        def total_loss(out):
            loss = compiled["loss"](y_in, out)
            for p in penalties:
                loss = ops.add(loss, p)
            return loss

        train_loss = total_loss(train_out)
        optimizer = compiled["optimizer"]
        if hasattr(optimizer, "bind"):  # a MultiOptimizer finds its layers by name
            optimizer.bind(self)
        if not self.trainable_weights:
            raise ValueError(f"{self.name}: every weight is frozen (trainable=False), so "
                             "training has nothing to update; unfreeze some layers and "
                             "compile() again")
        strategy = self._strategy   # gn.distributed: gradients averaged across ranks
        minimize = optimizer.minimize if strategy is None else strategy.minimize(optimizer)
        update = minimize(train_loss, var_list=self.trainable_weights)
        # Layer-owned state updates (batch norm's moving averages) built by the
        # training call above run in the same step as the optimizer's update.
        state_updates = self.updates
        if state_updates:
            update = ops.group(update, *state_updates, name="train_step")
        eval_loss = train_loss if infer_out is train_out else total_loss(infer_out)
        self._graphs = {
            "x": x_in, "y": y_in, "output": infer_out,
            "train": {"loss": train_loss, "update": update,
                      "metrics": [m.statistics(y_in, train_out) for m in compiled["metrics"]]},
            "test": {"loss": eval_loss,
                     "metrics": [m.statistics(y_in, infer_out) for m in compiled["metrics"]]},
        }

    def _input_placeholder(self, x: np.ndarray) -> Node:
        return self.inputs

    def _check_labels(self, y, what: str):
        """Class ids for a sparse loss: whole numbers within the output's classes."""
        loss_name = self._require_compiled()["loss_name"]
        if y is None or "sparse" not in loss_name or not isinstance(y, np.ndarray) or not y.size:
            return
        if y.ndim == 2 and y.shape[1] > 1 and np.isin(y, (0, 1)).all() and \
                (y.sum(axis=1) == 1).all():
            raise ValueError(
                f"{what}: labels look one-hot (shape {y.shape}), but {loss_name!r} takes class "
                "ids; use loss='categorical_crossentropy', or pass class ids "
                "(y.argmax(axis=1))")
        if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and np.any(y != np.round(y))):
            raise ValueError(f"{what}: {loss_name!r} takes integer class ids as labels; y is "
                             f"{y.dtype.name} with values such as {y.flat[0]!r}")
        outputs = getattr(self, "outputs", None)
        classes = outputs.shape[-1] if isinstance(outputs, Node) and outputs.ndim else None
        low, high = y.min(), y.max()
        if low < 0 or (classes is not None and high >= classes):
            raise ValueError(f"{what}: labels run from {low} to {high}, but the model has "
                             f"{classes} output classes (ids 0 to {classes - 1})")

    # ------------------------------------------------------------ training

    def fit(self, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            seed=None, strategy=None):
        """Train for `epochs` passes over (x, y) or a gn.data.Dataset; returns History.

        `strategy=gn.distributed.DataParallel()` trains on every rank of an MPI
        job (`mpiexec -n N`): `batch_size` is the global batch, split across ranks.

        Ctrl-C (SIGINT) stops training between steps: the step in progress
        completes, `on_train_end` runs, and fit returns the history so far
        (a second Ctrl-C interrupts at once).
        """
        from graphnet.data import Dataset
        if validation_split and validation_data is None:
            if isinstance(x, Dataset):
                raise ValueError("validation_split needs arrays; pass validation_data "
                                 "for a Dataset")
            cut = int(len(x) * (1 - validation_split))  # the last part, as in Keras
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        self._check_labels(y, "fit")
        train = _training_batches(x, y, batch_size, shuffle, seed, initial_epoch)
        val = validation_data if validation_data is None or isinstance(validation_data, Dataset) \
            else _as_dataset(*validation_data, batch_size, "validation_data")
        callbacks = list(callbacks or [])
        if strategy is not None:   # this rank's rows of each batch; rank 0 writes files
            train, val, callbacks, verbose = strategy.begin_fit(
                self, x, train, val, callbacks, verbose, batch_size, epochs, initial_epoch)
            self._strategy = strategy
        history = History()
        callbacks = callbacks + [history]  # last, so it logs what others add
        for cb in callbacks:
            cb.set_model(self)
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin()
        steps = _num_batches(train)
        try:
            with _StopOnInterrupt(self) as interrupt:
                self._fit_epochs(train, val, callbacks, initial_epoch, epochs, verbose, steps,
                                 interrupt)
        finally:
            if strategy is not None:
                self._strategy = None
                strategy.end_fit(self)
        for cb in callbacks:
            cb.on_train_end()
        self.history = history
        return history

    def _fit_epochs(self, train, val, callbacks, initial_epoch, epochs, verbose, steps,
                    interrupt):
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            start = time.perf_counter()
            logs = self._run_epoch(train, "train", callbacks, verbose == 1,
                                   f"Epoch {epoch + 1}/{epochs}", steps)
            if interrupt.received:
                print(f"Interrupted in epoch {epoch + 1}: training stopped after a whole step")
                return
            if val is not None:
                logs.update({f"val_{k}": v for k, v in
                             self._run_epoch(val, "test", [], False, "", None).items()})
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if verbose == 2 or (verbose == 1 and not _tqdm_available()):
                seconds = time.perf_counter() - start
                print(f"Epoch {epoch + 1}/{epochs} - {seconds:.0f}s - " + _format_logs(logs))
            if self.stop_training:
                return

    def evaluate(self, x=None, y=None, batch_size=32, verbose=1):
        """[loss, *metrics] over (x, y) (just the loss when there are no metrics)."""
        self._check_labels(y, "evaluate")
        data = _as_dataset(x, y, batch_size, "evaluate")
        logs = self._run_epoch(data, "test", [], verbose == 1, "Evaluate", _num_batches(data))
        if verbose == 2:
            print(_format_logs(logs))
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=32, verbose=0):
        """Model outputs for x, batch by batch, concatenated."""
        from graphnet.data import Dataset
        if isinstance(x, Dataset):
            batches = (batch[0] if isinstance(batch, tuple) else batch for batch in x)
        else:   # an array is cut into views: plans never write into their feeds
            x = np.asarray(x)
            if x.ndim == 0:
                raise ValueError(f"predict() needs examples along a first axis; got a scalar {x!r}")
            batches = (x[start:start + batch_size] for start in range(0, len(x), batch_size))
        outputs = [self._predict_batch(xb) for xb in batches]
        if not outputs:
            raise ValueError("predict() got no data")
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs)

    def _predict_batch(self, xb):
        """The outputs for one batch (at batch 1 the lookup by fetches that
        Session.run does costs as much as the model: the plan is kept)."""
        if self._graphs is None:
            with self._build_lock:
                if self._graphs is None:
                    self._build_inference(xb)
        feed = {self._graphs["x"]: xb}
        return self.session.run(self._kept_plan(self._graphs, self._graphs["output"], feed), feed)

    def _kept_plan(self, graphs: dict, fetches, feed: dict):
        """The plan of `fetches` for feeds shaped as `feed`'s, kept in `graphs`
        (so it goes when they are rebuilt) per shape and dtype: a steady-state
        loop runs it without the lookup by fetches Session.run does."""
        plans = graphs.setdefault("plans", {})
        key = tuple((v.shape, v.dtype) if isinstance(v, np.ndarray)
                    else (np.shape(v), getattr(v, "dtype", None)) for v in feed.values())
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = self.session.compiled(fetches, feed)
        return plan

    def train_on_batch(self, x, y):
        """One update on one batch; returns [loss, *metrics] for that batch."""
        return self._one_batch(x, y, "train")

    def test_on_batch(self, x, y):
        """[loss, *metrics] on one batch, without updating."""
        return self._one_batch(x, y, "test")

    def _one_batch(self, x, y, mode):
        x, y = _check_arrays(x, y, mode)
        self._check_labels(y, f"{mode}_on_batch")
        if self._graphs is None or "train" not in self._graphs:
            with self._build_lock:
                if self._graphs is None or "train" not in self._graphs:
                    self._build_graphs(x, y)
        metrics = self._compiled["metrics"]
        for m in metrics:
            m.reset_state()
        logs = {"loss": self._run_batch(x, y, mode)}
        logs.update({m.name: m.result() for m in metrics})
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def _build_inference(self, xb):
        self._graphs = self._graphs or {}
        x_in = self._input_placeholder(np.asarray(xb))
        self._graphs.update(x=x_in, output=self.call(x_in, training=False))

    def _run_epoch(self, data, mode, callbacks, progress, description, steps) -> dict:
        """Run every batch of `data` in `mode`; return the epoch's logs."""
        compiled = self._require_compiled()
        total_loss, total_rows = 0.0, 0
        metrics = compiled["metrics"]
        for m in metrics:
            m.reset_state()
        # Only the callbacks that override a batch hook are called per batch,
        # and the running logs are made only for them or the progress bar.
        begin = [cb for cb in callbacks if _overrides(cb, "on_batch_begin")]
        end = [cb for cb in callbacks if _overrides(cb, "on_batch_end")]
        bar = _progress_bar(steps, description) if progress else None
        checked = getattr(data, "checked", False)   # arrays were checked whole, up front
        what = "fit" if mode == "train" else "evaluate"
        for index, (xb, yb) in enumerate(data):
            if not checked:
                xb, yb = _check_arrays(xb, yb, what)
            if self._graphs is None or "train" not in self._graphs:
                self._build_graphs(xb, yb)
            for cb in begin:
                cb.on_batch_begin(index)
            loss = self._run_batch(xb, yb, mode)
            rows = len(xb) if self._strategy is None else self._strategy.rows(xb)  # global
            total_loss += loss * rows
            total_rows += rows
            if end or bar is not None:
                logs = {"loss": total_loss / total_rows}
                logs.update({m.name: m.result() for m in metrics if not _is_matrix(m)})
                for cb in end:
                    cb.on_batch_end(index, {"loss": loss, **logs})
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                    bar.update(1)
            if self.stop_training:
                break
        if bar is not None:
            bar.close()
        if total_rows == 0 and self.stop_training:
            return {}
        if total_rows == 0:
            raise ValueError(f"{mode}: the data set yielded no batches")
        logs = {"loss": total_loss / total_rows}
        logs.update({m.name: m.result() for m in metrics})
        return logs

    def _run_batch(self, xb, yb, mode) -> float:
        graphs = self._graphs[mode]
        fetches = graphs.get("fetches")
        if fetches is None:
            fetches = graphs["fetches"] = {"loss": graphs["loss"], "metrics": graphs["metrics"]}
            if mode == "train":
                fetches["update"] = graphs["update"]
        feed = {self._graphs["x"]: xb, self._graphs["y"]: yb}
        if self._strategy is not None:
            out = self._strategy.run_step(self.session, fetches, feed, mode)
        else:
            out = self.session.run(self._kept_plan(graphs, fetches, feed), feed)
        for metric, stats in zip(self._compiled["metrics"], out["metrics"]):
            metric.accumulate(stats)
        loss = float(out["loss"])
        if mode == "train" and not math.isfinite(loss) and not self.session.guard:
            self.nan_report = self._diagnose(graphs["loss"], feed)
        return loss

    def _diagnose(self, loss: Node, feed: dict) -> str:
        """Why a batch's loss was NaN or Inf: its loss run again in guard mode."""
        from graphnet.compiler.guard import GuardError
        try:
            Session(values=model_values, guard=True).run(loss, feed)
        except GuardError as err:
            report = str(err)
            if err.node is not None and err.node.op.kind == "variable":
                report += ("\n  (this step's update wrote it; compile(..., guard=True) stops "
                           "at the first bad node before any update)")
            return report
        return "guard mode found no NaN or Inf when running the batch's loss again"


# ------------------------------------------------------------------ helpers


class _StopOnInterrupt:
    """While fit runs, the first SIGINT asks the model to stop after the step in
    progress instead of raising KeyboardInterrupt inside it (which could leave
    some variables updated and others not). Only the main thread gets signals;
    elsewhere this does nothing."""

    def __init__(self, model):
        self.model, self.received, self.previous = model, False, None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = True
        self.model.stop_training = True
        signal.signal(signal.SIGINT, self.previous)  # a second Ctrl-C interrupts at once

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _trace_calls(inputs: Node, outputs: Node) -> list:
    """[(layer, input node, output node)] from inputs to outputs, in call order."""
    calls, stack, seen = [], [outputs], set()
    while stack:
        node = stack.pop()
        if node is inputs or node in seen:
            continue
        seen.add(node)
        if node not in call_history:
            raise ValueError(f"'{node.name}' was not made by calling a layer on the model's "
                             "inputs; a functional Model is built only from layer calls")
        layer, source = call_history[node]
        layer.output_shape = node.shape
        calls.append((layer, source, node))
        stack.append(source)
    return sorted(calls, key=lambda c: c[2].id)


def _check_output_fits_labels(out: Node, y: Node, loss_name: str):
    """A build-time error, naming the shapes, when outputs cannot meet the labels."""
    sparse = "sparse" in loss_name
    expected_rank = y.ndim + 1 if sparse else y.ndim
    if out.ndim == expected_rank:
        return
    hint = ""
    if out.ndim > expected_rank:
        hint = (" The model's output still has the input's spatial axes: Dense acts on the "
                "last axis only, so add gn.layers.Flatten() before the first Dense layer.")
    raise ShapeError(
        f"loss {loss_name!r}: the model's output {format_shape(out.shape)} does not fit labels "
        f"{format_shape(y.shape)}; expected an output of rank {expected_rank} such as "
        f"{format_shape(y.shape + ((out.shape[-1],) if sparse else ()))}.{hint}")


def _check_arrays(x, y, what):
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{what}: x and y have different lengths ({len(x)} and {len(y)})")
    if len(x) == 0:
        raise ValueError(f"{what}: no data (x is empty)")
    # min propagates NaN and only NaN: a quarter of isnan(x).any()'s time, no mask allocated
    if x.dtype.kind == "f" and x.size and np.isnan(x.min()):
        raise ValueError(f"{what}: x contains NaN (first at index "
                         f"{np.argwhere(np.isnan(x))[0].tolist()}); clean the data first")
    return x, y


def _as_dataset(x, y, batch_size, what, shuffle=False, seed=None):
    """Batches of (x, y): a Dataset passes through, arrays are checked once."""
    from graphnet.data import Dataset
    if isinstance(x, Dataset):
        return x
    if x is None or y is None:
        raise ValueError(f"{what}() needs x and y arrays, or a gn.data.Dataset as x")
    data = Dataset.from_arrays(*_check_arrays(x, y, what))
    data = (data.shuffle(seed) if shuffle else data).batch(batch_size)
    data.checked = True
    return data


def _training_batches(x, y, batch_size, shuffle, seed, initial_epoch):
    """The training data as batches, positioned at `initial_epoch`.

    Arrays are checked once. With `shuffle` and an int `seed`, epoch e's order
    is the (e+1)-th permutation drawn from `seed`, whatever epoch the run started
    at: a run resumed at `initial_epoch` sees the same batches as one that
    never stopped. With `seed=None` the orders come from graphnet's global
    generator (`gn.random.seed`).
    """
    from graphnet.data import Dataset
    if isinstance(x, Dataset):
        return x
    if x is None or y is None:
        raise ValueError("fit() needs x and y arrays, or a gn.data.Dataset as x")
    data = Dataset.from_arrays(*_check_arrays(x, y, "fit"))
    if shuffle:
        data = data.shuffle(seed)
        if seed is not None:
            data.skip_epochs(initial_epoch)
    data = data.batch(batch_size)
    data.checked = True
    return data


def _num_batches(data):
    try:
        return len(data)
    except TypeError:
        return None


def _overrides(callback, hook: str) -> bool:
    """Whether `callback`'s class defines `hook` (the base class's does nothing)."""
    return getattr(type(callback), hook) is not getattr(Callback, hook)


def _is_matrix(metric) -> bool:
    return isinstance(metric, metrics_module.ConfusionMatrix) and \
        type(metric) is metrics_module.ConfusionMatrix


def _format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if np.ndim(v) == 0)


def _tqdm_available() -> bool:
    try:
        import tqdm  # noqa: F401
        return True
    except ImportError:
        return False


def _progress_bar(steps, description):
    if not _tqdm_available():
        return None
    from tqdm.auto import tqdm
    return tqdm(total=steps, desc=description, unit="step")
