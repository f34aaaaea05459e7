"""Streaming metrics against scikit-learn on random predictions (graphnet/metrics.py)."""

import numpy as np
import pytest

import graphnet as gn

sk = pytest.importorskip("sklearn.metrics")

RNG = np.random.default_rng(0)
LABELS = RNG.integers(0, 4, 300)
SCORES = RNG.random((300, 4))
BINARY = RNG.integers(0, 2, 300)
PROBS = RNG.random(300)


def streamed(metric, y_true, y_pred, cuts=(0, 70, 190, 300)):
    """Feed the metric in uneven batches, as a model's epoch would."""
    metric.reset_state()
    for a, b in zip(cuts[:-1], cuts[1:]):
        metric.update_state(y_true[a:b], y_pred[a:b])
    return metric.result()


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize("metric, reference", [
    (gn.metrics.Precision, sk.precision_score),
    (gn.metrics.Recall, sk.recall_score),
    (gn.metrics.F1Score, sk.f1_score),
])
def test_multiclass_scores_match_sklearn(metric, reference, average):
    got = streamed(metric(4, average), LABELS, SCORES)
    assert got == pytest.approx(reference(LABELS, SCORES.argmax(1), average=average))


@pytest.mark.parametrize("metric, reference", [
    (gn.metrics.Precision, sk.precision_score),
    (gn.metrics.Recall, sk.recall_score),
    (gn.metrics.F1Score, sk.f1_score),
])
def test_binary_scores_match_sklearn(metric, reference):
    got = streamed(metric(), BINARY, PROBS)
    assert got == pytest.approx(reference(BINARY, PROBS > 0.5))


def test_accuracies_match_sklearn():
    assert streamed(gn.metrics.SparseCategoricalAccuracy(), LABELS, SCORES) == pytest.approx(
        sk.accuracy_score(LABELS, SCORES.argmax(1)))
    onehot = np.eye(4)[LABELS]
    assert streamed(gn.metrics.CategoricalAccuracy(), onehot, SCORES) == pytest.approx(
        sk.accuracy_score(LABELS, SCORES.argmax(1)))
    assert streamed(gn.metrics.BinaryAccuracy(), BINARY, PROBS) == pytest.approx(
        sk.accuracy_score(BINARY, PROBS > 0.5))
    assert streamed(gn.metrics.SparseTopKCategoricalAccuracy(2), LABELS, SCORES) == \
        pytest.approx(sk.top_k_accuracy_score(LABELS, SCORES, k=2))


def test_confusion_matrix_matches_sklearn():
    got = streamed(gn.metrics.ConfusionMatrix(4), LABELS, SCORES)
    np.testing.assert_array_equal(got, sk.confusion_matrix(LABELS, SCORES.argmax(1)))


def test_regression_metrics_match_sklearn():
    truth, guess = RNG.normal(size=300), RNG.normal(size=300)
    assert streamed(gn.metrics.MeanSquaredError(), truth, guess) == pytest.approx(
        sk.mean_squared_error(truth, guess))
    assert streamed(gn.metrics.MeanAbsoluteError(), truth, guess) == pytest.approx(
        sk.mean_absolute_error(truth, guess))


def test_auc_is_close_to_sklearn():
    got = streamed(gn.metrics.AUC(), BINARY, PROBS)
    assert got == pytest.approx(sk.roc_auc_score(BINARY, PROBS), abs=2e-3)
    separable = np.where(BINARY == 1, 0.8, 0.2) + RNG.normal(0, 0.05, 300)
    assert streamed(gn.metrics.AUC(), BINARY, np.clip(separable, 0, 1)) == pytest.approx(1.0)


def test_accuracy_name_follows_the_loss_and_unknown_names_list_valid_ones():
    assert isinstance(gn.metrics.get("accuracy", "binary_crossentropy"), gn.metrics.BinaryAccuracy)
    assert isinstance(gn.metrics.get("accuracy", "categorical_crossentropy"),
                      gn.metrics.CategoricalAccuracy)
    with pytest.raises(ValueError, match="unknown metric 'acuracy'; valid names: accuracy"):
        gn.metrics.get("acuracy")
