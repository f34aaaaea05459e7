"""Losses against NumPy references, float64 gradient checks, saturated inputs,
reductions, sample weights and lookup by name."""

import numpy as np
import pytest

import graphnet as gn
from graphnet import losses
from graphnet.testing import check_gradients

EPS = 1e-7
rng = np.random.default_rng(1234)


# ----------------------------------------------------- NumPy references


def np_log_softmax(z, axis=-1):
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def np_softplus(x):
    return np.logaddexp(0.0, x)


def ref_mse(t, p):
    return np.mean((p - t) ** 2, axis=-1)


def ref_mae(t, p):
    return np.mean(np.abs(p - t), axis=-1)


def ref_huber(t, p, delta=1.0):
    e = np.abs(p - t)
    return np.mean(np.where(e <= delta, 0.5 * e ** 2, delta * e - 0.5 * delta ** 2), axis=-1)


def ref_bce(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p)), axis=-1)


def ref_bce_logits(t, z):
    return np.mean(t * np_softplus(-z) + (1 - t) * np_softplus(z), axis=-1)


def ref_cce(t, p, axis=-1):
    p = np.clip(p / p.sum(axis=axis, keepdims=True), EPS, 1 - EPS)
    return -np.sum(t * np.log(p), axis=axis)


def ref_cce_logits(t, z, axis=-1):
    return -np.sum(t * np_log_softmax(z, axis), axis=axis)


def ref_sparse(labels, p):
    p = np.clip(p / p.sum(axis=-1, keepdims=True), EPS, 1 - EPS)
    return -np.log(np.take_along_axis(p, labels[..., None], axis=-1))[..., 0]


def ref_sparse_logits(labels, z):
    return -np.take_along_axis(np_log_softmax(z), labels[..., None], axis=-1)[..., 0]


def ref_kl(t, p):
    t, p = np.clip(t, EPS, 1), np.clip(p, EPS, 1)
    return np.sum(t * np.log(t / p), axis=-1)


# ------------------------------------------------------------- data


def probabilities(shape):
    """Rows that sum to one, each entry well inside (eps, 1 - eps)."""
    x = rng.uniform(0.2, 1.0, shape)
    return x / x.sum(axis=-1, keepdims=True)


def one_hot(labels, depth):
    return np.eye(depth)[labels]


SHAPE = (5, 4)
LABELS = rng.integers(0, 4, 5)
REAL_T, REAL_P = rng.normal(size=SHAPE), rng.normal(size=SHAPE)
BINARY_T = rng.integers(0, 2, SHAPE).astype(np.float64)
BINARY_P = rng.uniform(0.05, 0.95, SHAPE)
LOGITS = rng.normal(size=SHAPE) * 2
SOFT_T, SOFT_P = probabilities(SHAPE), probabilities(SHAPE)

# name: (graphnet function of (y_true, y_pred), reference, y_true, y_pred)
CASES = {
    "mse": (losses.mean_squared_error, ref_mse, REAL_T, REAL_P),
    "mae": (losses.mean_absolute_error, ref_mae, REAL_T, REAL_P),
    "huber": (losses.huber, ref_huber, REAL_T, REAL_P),
    "huber_delta": (lambda t, p: losses.huber(t, p, delta=0.3),
                    lambda t, p: ref_huber(t, p, 0.3), REAL_T, REAL_P),
    "bce": (losses.binary_crossentropy, ref_bce, BINARY_T, BINARY_P),
    "bce_soft_targets": (losses.binary_crossentropy, ref_bce, SOFT_T, BINARY_P),
    "bce_logits": (lambda t, p: losses.binary_crossentropy(t, p, from_logits=True),
                   ref_bce_logits, BINARY_T, LOGITS),
    "cce": (losses.categorical_crossentropy, ref_cce, one_hot(LABELS, 4), SOFT_P),
    "cce_soft": (losses.categorical_crossentropy, ref_cce, SOFT_T, SOFT_P * 3.0),
    "cce_logits": (lambda t, p: losses.categorical_crossentropy(t, p, from_logits=True),
                   ref_cce_logits, SOFT_T, LOGITS),
    "kl": (losses.kl_divergence, ref_kl, SOFT_T, SOFT_P),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_numpy_reference(name):
    fn, ref, t, p = CASES[name]
    got = gn.Session().run(fn(gn.constant(t), gn.constant(p)))
    np.testing.assert_allclose(got, ref(t, p), rtol=1e-12, atol=1e-14)
    assert got.shape == (SHAPE[0],)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradients_match_central_differences(name):
    fn, _, t, p = CASES[name]
    check_gradients(fn, [t, p], rtol=1e-5, atol=1e-8, name=name)


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_crossentropy(from_logits):
    pred = LOGITS if from_logits else SOFT_P
    ref = ref_sparse_logits if from_logits else ref_sparse
    labels = LABELS.astype(np.int64)

    def fn(y, p):
        return losses.sparse_categorical_crossentropy(y, p, from_logits=from_logits)

    got = gn.Session().run(fn(gn.constant(labels), gn.constant(pred)))
    np.testing.assert_allclose(got, ref(labels, pred), rtol=1e-12)
    check_gradients(fn, [labels, pred], rtol=1e-5, atol=1e-8)


def test_sparse_labels_may_be_float_or_have_a_trailing_axis():
    labels = LABELS.astype(np.int64)
    expected = ref_sparse(labels, SOFT_P)
    sess = gn.Session()
    for y in (labels[:, None], labels.astype(np.float32), labels.astype(np.uint8)):
        got = sess.run(losses.sparse_categorical_crossentropy(gn.constant(y), SOFT_P))
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    with pytest.raises(gn.ShapeError, match="one axis fewer"):
        losses.sparse_categorical_crossentropy(gn.constant(np.zeros((5, 2), np.int64)),
                                               gn.constant(np.ones((5, 4))))


def test_categorical_crossentropy_on_another_axis():
    t, z = probabilities((3, 4)).T, rng.normal(size=(4, 3))
    sess = gn.Session()
    got = sess.run(losses.categorical_crossentropy(t, gn.constant(z), from_logits=True, axis=0))
    np.testing.assert_allclose(got, ref_cce_logits(t, z, axis=0), rtol=1e-12)
    p = np.exp(np_log_softmax(z, 0))
    got = sess.run(losses.categorical_crossentropy(t, gn.constant(p), axis=0))
    np.testing.assert_allclose(got, ref_cce(t, p, axis=0), rtol=1e-12)


def test_label_smoothing():
    t, sess = one_hot(LABELS, 4), gn.Session()
    got = sess.run(losses.categorical_crossentropy(t, gn.constant(LOGITS), from_logits=True,
                                                   label_smoothing=0.2))
    np.testing.assert_allclose(got, ref_cce_logits(t * 0.8 + 0.05, LOGITS), rtol=1e-12)
    got = sess.run(losses.binary_crossentropy(BINARY_T, gn.constant(BINARY_P),
                                              label_smoothing=0.2))
    np.testing.assert_allclose(got, ref_bce(BINARY_T * 0.8 + 0.1, BINARY_P), rtol=1e-12)


# ------------------------------------------------------ saturated inputs


def _finite_value_and_gradient(loss_fn, y_true, y_pred):
    pred = gn.placeholder(y_pred.shape, y_pred.dtype, name="pred")
    loss = gn.sum(loss_fn(gn.constant(y_true), pred))
    value, grad = gn.Session().run([loss, gn.gradients(loss, pred)], {pred: y_pred})
    assert np.isfinite(value), value
    assert np.all(np.isfinite(grad)), grad
    return value, grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saturated_probabilities_give_finite_values_and_gradients(dtype):
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype)
    wrong = one_hot(np.array([1, 2]), 3)
    value, _ = _finite_value_and_gradient(losses.categorical_crossentropy, wrong, probs)
    assert value == pytest.approx(-2 * np.log(EPS), rel=1e-3)
    _finite_value_and_gradient(
        losses.sparse_categorical_crossentropy, np.array([1, 2]), probs)
    _finite_value_and_gradient(losses.binary_crossentropy, wrong, probs)
    _finite_value_and_gradient(losses.kl_divergence, wrong, probs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saturated_logits_give_exact_finite_values(dtype):
    z = np.array([[1000.0, 0.0, -1000.0], [-800.0, 800.0, 0.0]], dtype)
    wrong = one_hot(np.array([2, 0]), 3)
    value, grad = _finite_value_and_gradient(
        lambda t, p: losses.categorical_crossentropy(t, p, from_logits=True), wrong, z)
    assert value == pytest.approx(3600.0)
    np.testing.assert_allclose(grad, np.exp(np_log_softmax(z.astype(float))) - wrong, atol=1e-6)
    value, _ = _finite_value_and_gradient(
        lambda t, p: losses.sparse_categorical_crossentropy(t, p, from_logits=True),
        np.array([2, 0]), z)
    assert value == pytest.approx(3600.0)
    value, _ = _finite_value_and_gradient(
        lambda t, p: losses.binary_crossentropy(t, p, from_logits=True), wrong, z)
    np.testing.assert_allclose(value, ref_bce_logits(wrong, z.astype(float)).sum(), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_and_sigmoid_outputs_use_their_logits(dtype):
    z = np.array([[1000.0, 0.0, -1000.0], [-800.0, 800.0, 0.0]], dtype)
    labels = np.array([2, 0])
    value, grad = _finite_value_and_gradient(
        lambda t, p: losses.sparse_categorical_crossentropy(t, gn.softmax(p)), labels, z)
    assert value == pytest.approx(3600.0)  # not the clipped 2 * -log(1e-7)
    np.testing.assert_allclose(grad, np.exp(np_log_softmax(z.astype(float)))
                               - one_hot(labels, 3), atol=1e-6)
    value, _ = _finite_value_and_gradient(
        lambda t, p: losses.categorical_crossentropy(t, gn.softmax(p)), one_hot(labels, 3), z)
    assert value == pytest.approx(3600.0)
    value, _ = _finite_value_and_gradient(
        lambda t, p: losses.binary_crossentropy(t, gn.sigmoid(p)), one_hot(labels, 3), z)
    np.testing.assert_allclose(value, ref_bce_logits(one_hot(labels, 3), z.astype(float)).sum(),
                               rtol=1e-6)


# ------------------------------------------------ reductions and weights


def test_reductions_and_sample_weights():
    per_sample = ref_mse(REAL_T, REAL_P)
    weights = rng.uniform(0, 2, SHAPE[0])
    sess = gn.Session()
    t, p = gn.constant(REAL_T), gn.constant(REAL_P)
    cases = {
        "mean": (None, per_sample.mean()),
        "sum": (None, per_sample.sum()),
        "none": (None, per_sample),
    }
    for reduction, (_, expected) in cases.items():
        loss = losses.MeanSquaredError(reduction=reduction)
        np.testing.assert_allclose(sess.run(loss(t, p)), expected, rtol=1e-12)
        weighted = sess.run(loss(t, p, sample_weight=weights))
        full = per_sample * weights
        expected_weighted = {"mean": full.sum() / SHAPE[0], "sum": full.sum(),
                             "none": full}[reduction]
        np.testing.assert_allclose(weighted, expected_weighted, rtol=1e-12)
    mse = losses.MeanSquaredError(reduction="sum_over_batch_size")
    np.testing.assert_allclose(sess.run(mse(t, p, sample_weight=weights[:, None])),
                               (per_sample * weights).mean(), rtol=1e-12)
    np.testing.assert_allclose(sess.run(mse(t, p, sample_weight=2.0)),
                               2 * per_sample.mean(), rtol=1e-12)


def test_sample_weight_per_sample_weighs_every_time_step():
    z = rng.normal(size=(2, 3, 4))
    labels = rng.integers(0, 4, (2, 3))
    weights = np.array([1.0, 0.0])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    got = gn.Session().run(loss(labels, gn.constant(z), sample_weight=weights))
    expected = (ref_sparse_logits(labels, z) * weights[:, None]).sum() / 6
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_dynamic_batch_and_column_targets():
    y = gn.placeholder((None,), "float32", name="y")
    pred = gn.placeholder((None, 1), "float32", name="pred")
    loss = losses.MeanSquaredError()(y, pred)
    value = gn.Session().run(loss, {y: [1.0, 2.0, 3.0], pred: [[1.0], [2.0], [5.0]]})
    assert value == pytest.approx(4.0 / 3.0)


@pytest.mark.parametrize("cls, fn, kwargs, t, p", [
    (losses.MeanAbsoluteError, losses.mean_absolute_error, {}, REAL_T, REAL_P),
    (losses.Huber, losses.huber, {"delta": 0.5}, REAL_T, REAL_P),
    (losses.BinaryCrossentropy, losses.binary_crossentropy, {"from_logits": True},
     BINARY_T, LOGITS),
    (losses.CategoricalCrossentropy, losses.categorical_crossentropy, {}, SOFT_T, SOFT_P),
    (losses.SparseCategoricalCrossentropy, losses.sparse_categorical_crossentropy,
     {"from_logits": True}, LABELS, LOGITS),
    (losses.KLDivergence, losses.kl_divergence, {}, SOFT_T, SOFT_P),
])
def test_classes_reduce_their_functions(cls, fn, kwargs, t, p):
    sess = gn.Session()
    expected = sess.run(fn(t, gn.constant(p), **kwargs)).mean()
    loss = cls(**kwargs)(t, gn.constant(p))
    assert loss.shape == ()
    np.testing.assert_allclose(sess.run(loss), expected, rtol=1e-12)


def test_invalid_reduction_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid ones are mean, sum, none"):
        losses.MeanSquaredError(reduction="average")


def test_integer_predictions_are_rejected():
    with pytest.raises(gn.ShapeError, match="y_pred must be floating-point"):
        losses.mean_squared_error(np.ones(3), gn.constant(np.ones(3, np.int64)))


# --------------------------------------------------------------- lookup


@pytest.mark.parametrize("name, cls", [
    ("mse", losses.MeanSquaredError), ("MSE", losses.MeanSquaredError),
    ("mean_squared_error", losses.MeanSquaredError), ("mae", losses.MeanAbsoluteError),
    ("huber", losses.Huber), ("binary_crossentropy", losses.BinaryCrossentropy),
    ("categorical_crossentropy", losses.CategoricalCrossentropy),
    ("sparse_categorical_crossentropy", losses.SparseCategoricalCrossentropy),
    ("SparseCategoricalCrossentropy", losses.SparseCategoricalCrossentropy),
    ("kld", losses.KLDivergence), ("kl_divergence", losses.KLDivergence),
])
def test_get_by_name(name, cls):
    assert type(losses.get(name)) is cls


def test_get_passes_instances_wraps_functions_and_explains_unknown_names():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(loss) is loss
    assert losses.get("sparse_categorical_crossentropy", from_logits=True).kwargs == {
        "from_logits": True}
    wrapped = losses.get(lambda t, p: gn.abs(p - t))
    assert gn.Session().run(wrapped(np.zeros(3), gn.constant(np.arange(3.0)))) == 1.0
    with pytest.raises(ValueError, match="did you mean 'mse'.*valid names are: bce, "):
        losses.get("mze")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        losses.get(3)
