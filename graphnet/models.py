"""Keras-style models: `Sequential` and functional `Model`, with compile/fit/evaluate.

A model builds two graphs from its layers, one for training (dropout on,
batch statistics) and one for inference, plus the loss, the optimizer's
update node and the metrics' per-batch statistics. It runs them through a
Session it owns; the Session compiles each set of fetches once per feed
shape, so a training step never recompiles after the first batch (a smaller
last batch compiles once more).
"""

from __future__ import annotations

import time

import numpy as np

from graphnet import losses as losses_module
from graphnet import metrics as metrics_module
from graphnet import ops, optim
from graphnet.callbacks import History
from graphnet.errors import ShapeError
from graphnet.graph import Node, Placeholder, placeholder, unique_name
from graphnet.layers.base import Layer, call_history
from graphnet.session import Session
from graphnet.shapes import format_shape


def Input(shape, dtype="float32", name=None) -> Node:  # noqa: N802 - Keras' name
    """A symbolic model input; the batch axis is added: `gn.Input((28, 28))`."""
    return placeholder((None,) + tuple(shape), dtype, name=name or "input")


class Model:
    """A functional model from symbolic inputs to outputs built by calling layers:

        inputs = gn.Input((784,))
        outputs = gn.layers.Dense(10, activation="softmax")(inputs)
        model = gn.Model(inputs, outputs)
    """

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = unique_name(name or "model", scoped=False)
        self.session = Session()
        self.stop_training = False
        self.history = None
        self._compiled = None
        self._graphs = None
        if inputs is not None:
            if not isinstance(inputs, Node) or not isinstance(inputs.op, Placeholder):
                raise TypeError("Model inputs must be one gn.Input(...) placeholder")
            self.inputs, self.outputs = inputs, outputs
            self._calls = _trace_calls(inputs, outputs)

    # ------------------------------------------------------------ structure

    @property
    def layers(self) -> list:
        return list(dict.fromkeys(layer for layer, _, _ in self._calls))

    def call(self, x: Node, training: bool = False) -> Node:
        """Rebuild the model's graph on input `x` (replaying the recorded layer calls)."""
        value = {self.inputs: x}
        for layer, source, out in self._calls:
            value[out] = layer(value[source], training=training)
        return value[self.outputs]

    @property
    def built(self) -> bool:
        return all(layer.built for layer in self.layers) and bool(self.layers)

    @property
    def weights(self) -> list:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list:
        return [w for layer in self.layers for w in layer.trainable_weights]

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

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

    def save_weights(self, path):
        """Write every weight to an .npz file, keyed by weight name (atomically)."""
        from graphnet.io_npz import save_arrays
        save_arrays(path, {w.name: self.session.get(w) for w in self.weights})

    def load_weights(self, path):
        """Read weights written by `save_weights`, matching them by name."""
        from graphnet.io_npz import load_arrays
        arrays = load_arrays(path)
        missing = [w.name for w in self.weights if w.name not in arrays]
        if missing:
            raise ValueError(f"{path} lacks weights {missing}")
        for w in self.weights:
            self.session.set(w, arrays[w.name])

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

    def compile(self, optimizer="rmsprop", loss=None, metrics=None):
        """Choose the optimizer, loss and metrics (names or objects)."""
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'")
        loss_name = loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)
        self._compiled = {
            "optimizer": optim.get(optimizer),
            "loss": losses_module.get(loss),
            "loss_name": str(loss_name),
            "metrics": [metrics_module.get(m, str(loss_name)) for m in (metrics or [])],
        }
        self._graphs = None

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
        penalties = [p for layer in self.layers for p in layer.losses]

        def total_loss(out):
            loss = compiled["loss"](y_in, out)
            for p in penalties:
                loss = ops.add(loss, p)
            return loss

        train_loss = total_loss(train_out)
        update = compiled["optimizer"].minimize(train_loss, var_list=self.trainable_weights)
        # Layer-owned state updates (batch norm's moving averages) built by the
        # training call above run in the same step as the optimizer's update.
        state_updates = [u for layer in self.layers for u in getattr(layer, "updates", [])]
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
            seed=None):
        """Train for `epochs` passes over (x, y) or a gn.data.Dataset; returns History."""
        from graphnet.data import Dataset
        if validation_split and validation_data is None:
            if isinstance(x, Dataset):
                raise ValueError("validation_split needs arrays; pass validation_data "
                                 "for a Dataset")
            cut = int(len(x) * (1 - validation_split))  # the last part, as in Keras
            x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
        self._check_labels(y, "fit")
        train = _as_dataset(x, y, batch_size, "fit", shuffle=shuffle, seed=seed)
        val = None if validation_data is None else \
            _as_dataset(*validation_data, batch_size, "validation_data")
        history = History()
        callbacks = list(callbacks or []) + [history]  # last, so it logs what others add
        for cb in callbacks:
            cb.set_model(self)
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin()
        steps = _num_batches(train)
        for epoch in range(initial_epoch, epochs):
            for cb in callbacks:
                cb.on_epoch_begin(epoch)
            start = time.perf_counter()
            logs = self._run_epoch(train, "train", callbacks, verbose == 1,
                                   f"Epoch {epoch + 1}/{epochs}", steps)
            if val is not None:
                logs.update({f"val_{k}": v for k, v in
                             self._run_epoch(val, "test", [], False, "", None).items()})
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs)
            if verbose == 2 or (verbose == 1 and not _tqdm_available()):
                seconds = time.perf_counter() - start
                print(f"Epoch {epoch + 1}/{epochs} - {seconds:.0f}s - " + _format_logs(logs))
            if self.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end()
        self.history = history
        return history

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
        data = x if isinstance(x, Dataset) else Dataset.from_arrays(np.asarray(x)).batch(batch_size)
        outputs = []
        for batch in data:
            xb = batch[0] if isinstance(batch, tuple) else batch
            if self._graphs is None:
                self._build_inference(xb)
            outputs.append(self.session.run(self._graphs["output"], {self._graphs["x"]: xb}))
        if not outputs:
            raise ValueError("predict() got no data")
        return np.concatenate(outputs)

    def train_on_batch(self, x, y):
        """One update on one batch; returns [loss, *metrics] for that batch."""
        return self._one_batch(x, y, "train")

    def test_on_batch(self, x, y):
        """[loss, *metrics] on one batch, without updating."""
        return self._one_batch(x, y, "test")

    def _one_batch(self, x, y, mode):
        x, y = _check_arrays(x, y, mode)
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
        totals = {"loss": 0.0, "count": 0}
        metrics = compiled["metrics"]
        for m in metrics:
            m.reset_state()
        bar = _progress_bar(steps, description) if progress else None
        for index, (xb, yb) in enumerate(data):
            if not getattr(data, "checked", False):  # arrays were checked whole, up front
                xb, yb = _check_arrays(xb, yb, "fit" if mode == "train" else "evaluate")
            if self._graphs is None or "train" not in self._graphs:
                self._build_graphs(xb, yb)
            for cb in callbacks:
                cb.on_batch_begin(index)
            loss = self._run_batch(xb, yb, mode)
            totals["loss"] += loss * len(xb)
            totals["count"] += len(xb)
            logs = {"loss": totals["loss"] / totals["count"]}
            logs.update({m.name: m.result() for m in metrics if not _is_matrix(m)})
            for cb in callbacks:
                cb.on_batch_end(index, {"loss": loss, **logs})
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                bar.update(1)
            if self.stop_training:
                break
        if bar is not None:
            bar.close()
        if totals["count"] == 0:
            raise ValueError(f"{mode}: the data set yielded no batches")
        logs = {"loss": totals["loss"] / totals["count"]}
        logs.update({m.name: m.result() for m in metrics})
        return logs

    def _run_batch(self, xb, yb, mode) -> float:
        graphs = self._graphs[mode]
        fetches = {"loss": graphs["loss"], "metrics": graphs["metrics"]}
        if mode == "train":
            fetches["update"] = graphs["update"]
        out = self.session.run(fetches, {self._graphs["x"]: xb, self._graphs["y"]: yb})
        for metric, stats in zip(self._compiled["metrics"], out["metrics"]):
            metric.accumulate(stats)
        return float(out["loss"])


class Sequential(Model):
    """A stack of layers, each feeding the next:

        model = gn.Sequential([gn.layers.Flatten(input_shape=(28, 28)),
                               gn.layers.Dense(10, activation="softmax")])
    """

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or "sequential")
        self._layers: list = []
        self.inputs = None
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Layer):
        """Append a layer; the first one's `input_shape` builds the model at once."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes layers, got {type(layer).__name__}")
        self._layers.append(layer)
        self._graphs = None
        if self.inputs is None and len(self._layers) == 1 and layer.input_shape is not None:
            self.inputs = self.outputs = Input(layer.input_shape, name="input")
        if self.inputs is not None:
            self.outputs = layer(self.outputs)
            layer.output_shape = self.outputs.shape

    @property
    def layers(self) -> list:
        return list(self._layers)

    def call(self, x: Node, training: bool = False) -> Node:
        for layer in self._layers:
            x = layer(x, training=training)
            layer.output_shape = x.shape
        return x

    def _input_placeholder(self, x: np.ndarray) -> Node:
        if self.inputs is None:
            self.inputs = Input(x.shape[1:], name="input")
        return self.inputs


# ------------------------------------------------------------------ helpers


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
    if x.dtype.kind == "f" and np.isnan(x).any():
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


def _num_batches(data):
    try:
        return len(data)
    except TypeError:
        return None


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
