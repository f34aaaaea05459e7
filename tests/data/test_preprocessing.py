"""graphnet.data.preprocessing: min-max scaling, one-hot and lookups, stratified
splits, dropping and imputing missing values: expected outputs and every error."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.data import DataError
from graphnet.data import preprocessing as pp

NAN = np.nan


# -------------------------------------------------------------- min-max scaling


def test_minmax_scaler_fits_train_and_applies_to_test():
    train = np.array([[0.0, 10.0, 5.0], [2.0, 30.0, 5.0], [4.0, 20.0, 5.0]])
    scaler = pp.MinMaxScaler().fit(train)
    np.testing.assert_allclose(scaler.transform(train),
                               [[0, 0, 0], [0.5, 1, 0], [1, 0.5, 0]])  # constant column -> 0
    np.testing.assert_allclose(scaler.transform([[6.0, 0.0, 7.0]]), [[1.5, -0.5, 2.0]])
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(train)), train)
    np.testing.assert_array_equal(scaler.data_min_, [0, 10, 5])
    np.testing.assert_array_equal(scaler.data_max_, [4, 30, 5])


def test_minmax_scaler_range_dtypes_and_feature_shapes():
    x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    out = pp.MinMaxScaler(feature_range=(-1, 1)).fit_transform(x)
    assert out.dtype == np.float32 and out.shape == (3, 2, 2)
    np.testing.assert_allclose(out[:, 0, 0], [-1, 0, 1])
    assert pp.MinMaxScaler().fit_transform(np.array([[1], [3]], np.uint8)).dtype == np.float64


@pytest.mark.parametrize("axis, expected", [
    (0, [[0, 0], [1, 1]]),
    (1, [[0, 1], [0, 1]]),
    (None, [[0, 1 / 3], [2 / 3, 1]]),
])
def test_minmax_scale_axes(axis, expected):
    np.testing.assert_allclose(pp.minmax_scale(np.array([[1.0, 2.0], [3.0, 4.0]]), axis=axis),
                               expected)


def test_minmax_scale_constant_data_and_range():
    np.testing.assert_array_equal(pp.minmax_scale(np.full((2, 2), 7.0), (2, 5)), 2)


@pytest.mark.parametrize("call, message", [
    (lambda: pp.MinMaxScaler(feature_range=(1, 1)), "min < max"),
    (lambda: pp.MinMaxScaler().transform([[1.0]]), "not fitted"),
    (lambda: pp.MinMaxScaler().inverse_transform([[1.0]]), "not fitted"),
    (lambda: pp.MinMaxScaler().fit(np.zeros((2, 3))).transform(np.zeros((2, 4))),
     "fitted on rows of shape \\(3,\\), got data of shape \\(2, 4\\)"),
    (lambda: pp.MinMaxScaler().fit(np.zeros((0, 3))), "at least one row"),
    (lambda: pp.MinMaxScaler().fit([[1.0, NAN]]), "NaN values \\(columns \\[1\\]\\)"),
    (lambda: pp.MinMaxScaler().fit([["a"]]), "numeric data"),
    (lambda: pp.minmax_scale(np.zeros(0)), "needs data"),
    (lambda: pp.minmax_scale([1.0, NAN]), "impute_missing"),
])
def test_minmax_errors(call, message):
    with pytest.raises(DataError, match=message):
        call()


# ---------------------------------------------------------------------- labels


def test_one_hot():
    np.testing.assert_array_equal(pp.one_hot([0, 2, 1], 4),
                                  [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]])
    inferred = pp.one_hot(np.array([[1.0, 0.0]]), dtype="int64")  # whole floats are labels
    assert inferred.shape == (1, 2, 2) and inferred.dtype == np.int64
    np.testing.assert_array_equal(inferred, [[[0, 1], [1, 0]]])
    assert pp.one_hot(2, 3).tolist() == [0, 0, 1]
    assert pp.one_hot(np.zeros(0, int), 3).shape == (0, 3)


@pytest.mark.parametrize("labels, kwargs, message", [
    ([0, 3], {"num_classes": 3}, "in \\[0, 3\\); 1 are not, e.g. 3 at index \\(1,\\)"),
    ([[0, -1]], {}, "e.g. -1 at index \\(0, 1\\)"),
    ([0.5, 1.0], {}, "1 non-integer values, e.g. 0.5"),
    ([NAN], {}, "non-integer"),
    (["cat"], {}, "StringLookup"),
    ([0], {"num_classes": 0}, "positive integer"),
    ([0], {"num_classes": 2.0}, "positive integer"),
    ([], {}, "pass num_classes"),
])
def test_one_hot_errors(labels, kwargs, message):
    with pytest.raises(DataError, match=message):
        pp.one_hot(labels, **kwargs)


def test_integer_lookup_maps_sorted_values_and_back():
    lookup = pp.IntegerLookup().adapt(np.array([42, 7, 7, 3.0]))
    assert lookup.vocabulary == [3, 7, 42] and lookup.vocabulary_size == 3
    ids = lookup(np.array([[7, 42], [3, 3]]))
    assert ids.dtype == np.int64 and ids.tolist() == [[1, 2], [0, 0]]
    assert lookup.inverse(ids).tolist() == [[7, 42], [3, 3]]
    assert lookup.transform([42]).tolist() == [2] and lookup.fit is not None


def test_string_lookup_vocabulary_order_and_oov():
    lookup = pp.StringLookup(vocabulary=["dog", "cat", "bird"])  # given order is kept
    assert lookup(["cat", "bird", "dog"]).tolist() == [1, 2, 0]
    assert lookup.inverse([2, 0]).tolist() == ["bird", "dog"]
    oov = pp.StringLookup(num_oov_indices=1).fit(np.array(["b", "a"], dtype=object))
    assert oov(["a", "zebra", "b"]).tolist() == [1, 0, 2]
    assert oov.vocabulary_size == 3 and oov.get_vocabulary() == ["[UNK]", "a", "b"]
    assert oov.inverse([0, 2]).tolist() == ["[UNK]", "b"]
    assert pp.IntegerLookup(num_oov_indices=1).fit([5]).inverse([0, 1]).tolist() == [-1, 5]
    assert pp.StringLookup().fit_transform(["y", "x", "y"]).tolist() == [1, 0, 1]


@pytest.mark.parametrize("call, message", [
    (lambda: pp.IntegerLookup().adapt([1, 2])([3, 1, 4]), "2 values are not in the "
     "vocabulary, e.g. \\[3, 4\\].*num_oov_indices=1"),
    (lambda: pp.IntegerLookup()([1]), "no vocabulary yet; call adapt"),
    (lambda: pp.IntegerLookup().vocabulary, "no vocabulary yet"),
    (lambda: pp.StringLookup().inverse([0]), "no vocabulary yet"),
    (lambda: pp.IntegerLookup(vocabulary=[1, 2, 1]), "repeats 1"),
    (lambda: pp.IntegerLookup(vocabulary=[]), "vocabulary is empty"),
    (lambda: pp.IntegerLookup(num_oov_indices=2), "must be 0 .* or 1"),
    (lambda: pp.IntegerLookup().adapt(["a"]), "integer labels"),
    (lambda: pp.IntegerLookup().adapt([1.5]), "non-integer"),
    (lambda: pp.StringLookup().adapt([1, 2]), "string labels.*IntegerLookup"),
    (lambda: pp.StringLookup().adapt(["a"]).inverse([1]), "ids must be in \\[0, 1\\), got 1"),
    (lambda: pp.Lookup().adapt([1, 2])(["a"]), "holds int64 values, got <U1 labels"),
    (lambda: pp.Lookup().adapt([None]), "numbers or strings"),
])
def test_lookup_errors(call, message):
    with pytest.raises(DataError, match=message):
        call()


# -------------------------------------------------------- stratified split


def test_split_is_exported_from_both_places():
    assert pp.train_test_split is gn.data.train_test_split


def test_stratified_split_keeps_class_proportions():
    y = np.repeat([0, 1, 2, 3, 4], [50, 30, 15, 4, 1])
    x = np.arange(len(y))
    x_train, x_test, y_train, y_test = pp.train_test_split(x, y, test_size=0.2, stratify=y,
                                                           seed=0)
    assert np.bincount(y_test, minlength=5).tolist() == [10, 6, 3, 1, 0]
    assert np.bincount(y_train, minlength=5).tolist() == [40, 24, 12, 3, 1]
    np.testing.assert_array_equal(y[x_train], y_train)
    np.testing.assert_array_equal(y[x_test], y_test)
    assert sorted(np.concatenate([x_train, x_test]).tolist()) == x.tolist()
    again = pp.train_test_split(x, test_size=0.2, stratify=y, seed=0)
    np.testing.assert_array_equal(again[1], x_test)
    other = pp.train_test_split(x, test_size=0.2, stratify=y, seed=1)
    assert other[1].tolist() != x_test.tolist()


def test_stratified_split_gives_small_classes_a_test_row():
    y = np.array(["a"] * 18 + ["b", "b"])       # 10% of 2 rows rounds to 0: lifted to 1
    _, y_test = pp.train_test_split(y, test_size=0.1, stratify=y, seed=0)
    assert sorted(y_test.tolist()) == ["a", "b"]
    labels = np.array([[0, 1]] * 4 + [[1, 0]] * 4)  # one-hot rows stratify too
    _, test = pp.train_test_split(np.arange(8), test_size=2, stratify=labels, seed=0)
    assert sorted(labels[test].argmax(axis=1).tolist()) == [0, 1]


def test_stratified_split_without_shuffle_takes_each_class_tail():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    train, test = pp.train_test_split(np.arange(8), test_size=0.25, shuffle=False, stratify=y)
    assert test.tolist() == [6, 7] and train.tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("stratify, test_size, message", [
    (np.zeros(5), 0.5, "one label per row \\(6\\)"),
    ([0, 0, 1, 1, 2, 2], 2, "2 test rows of 6 cannot give each of the 3 classes"),
    ([0, 0, 0, 1, 1, 2], 5, "5 test rows of 6 cannot"),  # each class keeps a train row
])
def test_stratified_split_errors(stratify, test_size, message):
    with pytest.raises(DataError, match=message):
        pp.train_test_split(np.arange(6), test_size=test_size, stratify=np.asarray(stratify))


# ---------------------------------------------------------------- cleaning


def test_drop_missing_rows_and_report():
    x = np.array([[1.0, NAN, 3.0], [4.0, 5.0, 6.0], [NAN, NAN, 1.0], [7.0, 8.0, 9.0]])
    y = np.array([0.0, 1.0, 2.0, NAN])
    clean, y_clean, report = pp.drop_missing(x, y)
    np.testing.assert_array_equal(clean, [[4, 5, 6]])
    assert y_clean.tolist() == [1.0]
    assert report.dropped_rows.tolist() == [0, 2, 3] and report.dropped == 3
    assert report.kept == 1 and report.nan_per_column.tolist() == [1, 2, 0]
    assert report.nan_in_y == 1
    assert str(report) == ("drop_missing: dropped 3 of 4 rows (75.0%), kept 1\n"
                           "  rows: 0, 2, 3\n"
                           "  NaN per column: column 0: 1, column 1: 2\n"
                           "  NaN in y: 1")
    only_first, report = pp.drop_missing(x, columns=[0])
    assert len(only_first) == 3 and report.dropped_rows.tolist() == [2]


def test_drop_missing_without_missing_values():
    x = np.arange(6).reshape(3, 2)
    clean, report = pp.drop_missing(x)
    np.testing.assert_array_equal(clean, x)
    assert str(report) == "drop_missing: no missing values; kept all 3 rows"
    clean, report = pp.drop_missing(np.array([1.0, NAN, 2.0]))
    assert clean.tolist() == [1.0, 2.0] and report.nan_per_column.tolist() == [1]


def test_drop_missing_report_lists_at_most_ten_rows():
    report = pp.drop_missing(np.full(12, NAN))[1]
    assert "rows: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ... (12 in all)" in str(report)


@pytest.mark.parametrize("strategy, fill_value, filled", [
    ("mean", None, [[1, 2, 3], [3, 4, 3], [2, 3, 3], [2, 3, 3]]),
    ("median", None, [[1, 2, 3], [3, 4, 3], [2, 3, 3], [2, 3, 3]]),
    ("most_frequent", None, [[1, 2, 3], [3, 4, 3], [2, 2, 3], [1, 2, 3]]),  # ties: smallest
    ("constant", None, [[1, 2, 3], [3, 4, 3], [2, 0, 3], [0, 0, 3]]),
    ("constant", -1.5, [[1, 2, 3], [3, 4, 3], [2, -1.5, 3], [-1.5, -1.5, 3]]),
])
def test_impute_missing_strategies(strategy, fill_value, filled):
    x = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 3.0], [2.0, NAN, 3.0], [NAN, NAN, 3.0]])
    out, report = pp.impute_missing(x, strategy, fill_value)
    np.testing.assert_allclose(out, filled)
    assert np.isnan(x).sum() == 3  # the input is not changed
    assert report.filled_per_column.tolist() == [1, 2, 0] and report.filled == 3
    assert report.fill_values[:2].tolist() == [out[3, 0], out[3, 1]]


def test_impute_report_text():
    out, report = pp.impute_missing(np.array([[1.0, NAN], [3.0, 4.5], [NAN, NAN]]), "median")
    assert str(report) == ("impute (median): filled 3 missing values in 2 of 2 columns\n"
                           "  column 0: 1 with 2\n"
                           "  column 1: 2 with 4.5")
    assert str(pp.impute_missing(np.ones(3))[1]) == "impute (mean): no missing values"


def test_simple_imputer_applies_train_statistics_to_test():
    imputer = pp.SimpleImputer("mean").fit(np.array([[1.0, 10.0], [3.0, NAN]], np.float32))
    np.testing.assert_array_equal(imputer.statistics_, [2.0, 10.0])
    test = np.array([[NAN, NAN], [5.0, 6.0]], np.float32)
    out = imputer.transform(test)
    assert out.dtype == np.float32 and out.tolist() == [[2.0, 10.0], [5.0, 6.0]]
    assert imputer.report(test).filled_per_column.tolist() == [1, 1]
    assert pp.SimpleImputer("median").fit_transform(np.array([1.0, NAN, 5.0])).tolist() == \
        [1.0, 3.0, 5.0]
    ints = np.array([[1, 2]])
    np.testing.assert_array_equal(pp.SimpleImputer().fit_transform(ints), ints)


@pytest.mark.parametrize("call, message", [
    (lambda: pp.drop_missing(np.array([["a"]])), "numeric array"),
    (lambda: pp.drop_missing(np.zeros((2, 2, 2))), "1-D or 2-D"),
    (lambda: pp.drop_missing(np.zeros((3, 2)), np.zeros(2)), "one row per row of x \\(3\\)"),
    (lambda: pp.drop_missing(np.zeros((3, 2)), columns=[2]), "indices into the 2 columns"),
    (lambda: pp.drop_missing(np.zeros((3, 2)), columns=[]), "indices into"),
    (lambda: pp.impute_missing(np.zeros((2, 2)), "mode"), "unknown strategy 'mode'"),
    (lambda: pp.impute_missing(np.array([[1.0, NAN]]), "median"), "columns 1 have no values"),
    (lambda: pp.impute_missing(np.zeros(2), "constant", "x"), "fill_value must be a number"),
    (lambda: pp.SimpleImputer().transform(np.zeros(2)), "not fitted"),
    (lambda: pp.SimpleImputer().fit(np.zeros((2, 2))).transform(np.zeros((2, 3))),
     "fitted on 2 columns, got data of shape \\(2, 3\\)"),
])
def test_cleaning_errors(call, message):
    with pytest.raises(DataError, match=message):
        call()
