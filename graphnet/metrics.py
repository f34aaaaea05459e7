"""Streaming metrics: each batch's statistics are graph nodes; totals add up.

A metric says which per-batch sums it needs (`statistics`, built as graph
nodes from labels and predictions) and how to turn their totals into a value
(`result`). Models fetch the statistics with each step and add them up, so
an epoch's accuracy is exact however the data were batched. Standalone use
works like Keras: `m.update_state(y_true, y_pred); m.result()`.
"""

from __future__ import annotations

import numpy as np

from graphnet import ops
from graphnet.errors import ShapeError
from graphnet.graph import Node, placeholder
from graphnet.serialization import Configurable
from graphnet.shapes import format_shape


class Metric(Configurable):
    """Base class: `statistics` builds per-batch sums, `result` combines totals."""

    config_kind = "metrics"

    name = "metric"

    def __init__(self, name: str | None = None):
        self.name = name or self.name
        self._graph = None
        self.reset_state()

    def statistics(self, y_true: Node, y_pred: Node) -> dict:
        raise NotImplementedError

    def result_from(self, totals: dict) -> float:
        raise NotImplementedError

    # --- standalone, Keras-style use -------------------------------------

    def reset_state(self):
        self.totals = None

    def update_state(self, y_true, y_pred):
        """Add one batch given as arrays."""
        from graphnet.session import Session
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        key = (y_true.dtype, y_true.ndim, y_pred.dtype, y_pred.ndim)
        if self._graph is None or self._graph[0] != key:
            t = placeholder((None,) * y_true.ndim, y_true.dtype)
            p = placeholder((None,) * y_pred.ndim, y_pred.dtype)
            self._graph = (key, t, p, self.statistics(t, p), Session())
        _, t, p, stats, sess = self._graph
        self.accumulate(sess.run(stats, {t: y_true, p: y_pred}))

    def accumulate(self, batch: dict):
        """Add one batch's fetched statistics to the totals."""
        if self.totals is None:
            self.totals = {k: np.array(v, dtype=np.float64) for k, v in batch.items()}
        else:
            for k, v in batch.items():
                self.totals[k] += v

    def result(self) -> float:
        if self.totals is None:
            return 0.0
        return self.result_from(self.totals)


class MeanMetric(Metric):
    """The mean over examples of a per-example value."""

    def values(self, y_true, y_pred) -> Node:
        raise NotImplementedError

    def statistics(self, y_true, y_pred):
        values = ops.cast(self.values(y_true, y_pred), "float64")
        return {"total": ops.sum(values), "count": ops.sum(ops.ones_like(values))}

    def result_from(self, totals):
        return float(totals["total"] / max(totals["count"], 1.0))


def _labels(y_true: Node, y_pred: Node) -> Node:
    """Sparse integer labels of shape y_pred.shape[:-1], with a clear error otherwise."""
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    if y_true.ndim != y_pred.ndim - 1:
        raise ShapeError(f"sparse labels {format_shape(y_true.shape)} should have one axis "
                         f"fewer than predictions {format_shape(y_pred.shape)}")
    return ops.cast(y_true, "int64")


class SparseCategoricalAccuracy(MeanMetric):
    """Fraction of examples whose integer label is the argmax of the prediction."""

    name = "accuracy"

    def values(self, y_true, y_pred):
        return ops.equal(_labels(y_true, y_pred), ops.argmax(y_pred, -1))


class CategoricalAccuracy(MeanMetric):
    """Fraction of examples whose one-hot label's argmax matches the prediction's."""

    name = "accuracy"

    def values(self, y_true, y_pred):
        return ops.equal(ops.argmax(y_true, -1), ops.argmax(y_pred, -1))


class BinaryAccuracy(MeanMetric):
    """Fraction of entries where (prediction > threshold) equals the 0/1 label."""

    name = "accuracy"

    def __init__(self, threshold: float = 0.5, name=None):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true, y_pred):
        predicted = ops.cast(ops.greater(y_pred, self.threshold), "float32")
        return ops.equal(predicted, ops.cast(y_true, "float32"))


class SparseTopKCategoricalAccuracy(MeanMetric):
    """Fraction of examples whose label is among the k highest predictions."""

    def __init__(self, k: int = 5, name=None):
        self.k = k
        super().__init__(name or f"top_{k}_accuracy")

    def values(self, y_true, y_pred):
        labels = ops.expand_dims(_labels(y_true, y_pred), -1)
        true_score = ops.take_along_axis(y_pred, labels, axis=-1)
        higher = ops.sum(ops.cast(ops.greater(y_pred, true_score), "int64"), axis=-1)
        return ops.less(higher, self.k)


class MeanSquaredError(MeanMetric):
    name = "mse"

    def values(self, y_true, y_pred):
        return ops.square(ops.subtract(ops.cast(y_true, y_pred.dtype), y_pred))


class MeanAbsoluteError(MeanMetric):
    name = "mae"

    def values(self, y_true, y_pred):
        return ops.abs(ops.subtract(ops.cast(y_true, y_pred.dtype), y_pred))


class ConfusionMatrix(Metric):
    """Counts of (true class, predicted class) pairs; `result()` is the matrix.

    Predictions are class scores (argmax taken) or, with `num_classes=2` and
    one score per example, probabilities of class 1 cut at `threshold`.
    """

    name = "confusion_matrix"

    def __init__(self, num_classes: int, threshold: float = 0.5, name=None):
        self.num_classes, self.threshold = num_classes, threshold
        super().__init__(name)

    def predicted_classes(self, y_pred: Node) -> Node:
        if self.num_classes == 2 and (y_pred.ndim == 1 or y_pred.shape[-1] == 1):
            scores = y_pred if y_pred.ndim == 1 else ops.squeeze(y_pred, -1)
            return ops.cast(ops.greater(scores, self.threshold), "int64")
        return ops.argmax(y_pred, -1)

    def statistics(self, y_true, y_pred):
        predicted = self.predicted_classes(y_pred)
        if y_true.ndim == predicted.ndim + 1:
            y_true = ops.squeeze(y_true, -1) if y_true.shape[-1] == 1 else ops.argmax(y_true, -1)
        truth = ops.one_hot(ops.cast(y_true, "int64"), self.num_classes, "float64")
        guess = ops.one_hot(predicted, self.num_classes, "float64")
        truth = ops.reshape(truth, (-1, self.num_classes))
        guess = ops.reshape(guess, (-1, self.num_classes))
        return {"matrix": ops.matmul(ops.transpose(truth), guess)}

    def result_from(self, totals):
        return totals["matrix"].astype(np.int64)


class _ConfusionScore(ConfusionMatrix):
    """Precision, recall or F1 from a confusion matrix, with an averaging rule.

    `average="binary"` scores class 1 (scikit-learn's default); "macro"
    averages classes equally, "weighted" by their support, "micro" pools
    every decision.
    """

    AVERAGES = ("binary", "macro", "micro", "weighted")

    def __init__(self, num_classes: int = 2, average: str = "binary", threshold=0.5, name=None):
        if average not in self.AVERAGES:
            raise ValueError(f"average must be one of {self.AVERAGES}, not {average!r}")
        if average == "binary" and num_classes != 2:
            raise ValueError("average='binary' needs num_classes=2; use macro, micro or weighted")
        self.average = average
        super().__init__(num_classes, threshold, name)

    def result_from(self, totals):
        m = totals["matrix"]
        tp = np.diag(m)
        predicted, actual = m.sum(axis=0), m.sum(axis=1)
        if self.average == "micro":
            tp, predicted, actual = tp.sum(keepdims=True), predicted.sum(keepdims=True), \
                actual.sum(keepdims=True)
        per_class = self.score(tp, predicted, actual)
        if self.average == "binary":
            return float(per_class[1])
        if self.average == "weighted":
            return float(np.sum(per_class * actual) / max(actual.sum(), 1))
        return float(per_class.mean())


def _safe_ratio(a, b):
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


class Precision(_ConfusionScore):
    name = "precision"

    @staticmethod
    def score(tp, predicted, actual):
        return _safe_ratio(tp, predicted)


class Recall(_ConfusionScore):
    name = "recall"

    @staticmethod
    def score(tp, predicted, actual):
        return _safe_ratio(tp, actual)


class F1Score(_ConfusionScore):
    name = "f1"

    @staticmethod
    def score(tp, predicted, actual):
        return _safe_ratio(2 * tp, predicted + actual)


class AUC(Metric):
    """Area under the ROC curve of binary predictions, from counts at
    `num_thresholds` evenly spaced thresholds (trapezoidal rule, as Keras)."""

    name = "auc"

    def __init__(self, num_thresholds: int = 1000, name=None):
        self.thresholds = np.concatenate(
            [[-1e-7], np.linspace(0, 1, num_thresholds)[1:-1], [1 + 1e-7]])
        super().__init__(name)

    def statistics(self, y_true, y_pred):
        scores = ops.reshape(ops.cast(y_pred, "float64"), (-1, 1))
        positive = ops.reshape(ops.cast(y_true, "float64"), (-1, 1))
        above = ops.cast(ops.greater_equal(scores, self.thresholds), "float64")
        return {"tp": ops.sum(above * positive, axis=0),
                "fp": ops.sum(above * (1 - positive), axis=0)}

    def result_from(self, totals):
        tp, fp = totals["tp"], totals["fp"]
        tpr = _safe_ratio(tp, np.full_like(tp, tp[0]))
        fpr = _safe_ratio(fp, np.full_like(fp, fp[0]))
        return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2))


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy, "binary_accuracy": BinaryAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError, "auc": AUC,
}


def get(identifier, loss_name: str | None = None) -> Metric:
    """A metric from a name or instance; "accuracy" picks the variant that fits
    the loss, as Keras does."""
    if isinstance(identifier, Metric):
        return identifier
    if identifier in ("accuracy", "acc"):
        loss_name = loss_name or ""
        if "sparse" in loss_name:
            return SparseCategoricalAccuracy()
        if "binary" in loss_name:
            return BinaryAccuracy()
        return CategoricalAccuracy() if "categorical" in loss_name else SparseCategoricalAccuracy()
    try:
        return _BY_NAME[identifier]()
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {identifier!r}; valid names: accuracy, "
                         f"{', '.join(sorted(_BY_NAME))}") from None
