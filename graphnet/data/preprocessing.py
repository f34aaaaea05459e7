"""Preprocessing on NumPy arrays: scaling, label encoding, splitting and cleaning.

    from graphnet.data import preprocessing as pp
    x, y, report = pp.drop_missing(x, y)          # or pp.impute_missing(x, "median")
    print(report)
    x_train, x_test, y_train, y_test = pp.train_test_split(x, y, stratify=y, seed=0)
    scaler = pp.MinMaxScaler().fit(x_train)       # statistics from the train rows only
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    lookup = pp.StringLookup().adapt(y_train)     # "cat", "dog" -> 0, 1
    y_train = pp.one_hot(lookup(y_train))

Statistics are always fitted on training data and then applied to other
data, as scikit-learn's `fit`/`transform` and Keras' `adapt` do. Per-feature
scaling inside a model is `gn.layers.Normalization`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from graphnet.data.dataset import DataError
from graphnet.data.split import train_test_split

__all__ = [
    "DropReport", "ImputeReport", "IntegerLookup", "Lookup", "MinMaxScaler", "SimpleImputer",
    "StringLookup", "drop_missing", "impute_missing", "minmax_scale", "one_hot",
    "train_test_split",
]


# ------------------------------------------------------------ min-max scaling


def _float_array(x, what: str) -> np.ndarray:
    """`x` as a float array (float32 stays float32, the rest become float64)."""
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} needs numeric data, got {array.dtype} values")
    return array if array.dtype.kind == "f" else array.astype(np.float64)


def _check_no_nan(array: np.ndarray, what: str):
    if np.isnan(array).any():
        columns = np.flatnonzero(np.isnan(array.reshape(len(array), -1)).any(axis=0)) \
            if array.ndim > 1 else [0]
        raise DataError(f"{what}: the data has NaN values (columns "
                        f"{np.asarray(columns)[:10].tolist()}); "
                        "clean it first with drop_missing or impute_missing")


def _check_range(feature_range) -> tuple:
    low, high = (float(v) for v in feature_range)
    if not low < high:
        raise DataError(f"feature_range must be (min, max) with min < max, got {feature_range}")
    return low, high


def _scale_params(low_data, high_data, feature_range) -> tuple:
    """(scale, shift) with x * scale + shift mapping [low_data, high_data] onto the range.
    A constant feature (zero range) gets range 1, so it maps to the range's minimum."""
    low, high = feature_range
    span = high_data - low_data
    span = np.where(span == 0, 1.0, span)
    scale = (high - low) / span
    return scale, low - low_data * scale


class MinMaxScaler:
    """Scale each feature (everything but the first axis) to `feature_range`,
    with the minimum and maximum of the data given to `fit`, as scikit-learn does.

        >>> MinMaxScaler().fit_transform(np.array([[1.0, 5.0], [3.0, 5.0]]))
        array([[0., 0.],
               [1., 0.]])
    """

    def __init__(self, feature_range=(0, 1)):
        self.feature_range = _check_range(feature_range)
        self.data_min_ = self.data_max_ = self.scale_ = self.min_ = None

    def fit(self, x) -> MinMaxScaler:
        """Learn each feature's minimum and maximum; returns self."""
        x = _float_array(x, "MinMaxScaler.fit")
        if x.ndim == 0 or len(x) == 0:
            raise DataError(f"MinMaxScaler.fit needs at least one row, got shape {x.shape}")
        _check_no_nan(x, "MinMaxScaler.fit")
        self.data_min_, self.data_max_ = x.min(axis=0), x.max(axis=0)
        self.scale_, self.min_ = _scale_params(self.data_min_.astype(np.float64),
                                               self.data_max_.astype(np.float64),
                                               self.feature_range)
        return self

    def transform(self, x) -> np.ndarray:
        """`x * scale_ + min_`: the fitted features mapped onto `feature_range`."""
        x = self._check(x, "transform")
        return (x * self.scale_ + self.min_).astype(x.dtype, copy=False)

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def inverse_transform(self, x) -> np.ndarray:
        """Undo `transform`: `(x - min_) / scale_`."""
        x = self._check(x, "inverse_transform")
        return ((x - self.min_) / self.scale_).astype(x.dtype, copy=False)

    def _check(self, x, method: str) -> np.ndarray:
        if self.scale_ is None:
            raise DataError(f"MinMaxScaler.{method}: the scaler is not fitted; call fit(x_train) "
                            "first")
        x = _float_array(x, f"MinMaxScaler.{method}")
        if x.shape[1:] != self.scale_.shape:
            raise DataError(f"MinMaxScaler.{method}: fitted on rows of shape "
                            f"{self.scale_.shape}, got data of shape {x.shape}")
        return x


def minmax_scale(x, feature_range=(0, 1), axis=0) -> np.ndarray:
    """Scale `x` to `feature_range` along `axis` in one go (`axis=0`: each
    feature over the rows; `axis=1`: each row; None: the whole array).

        >>> minmax_scale(np.array([0.0, 5.0, 10.0]))
        array([0. , 0.5, 1. ])
    """
    x = _float_array(x, "minmax_scale")
    if x.size == 0:
        raise DataError(f"minmax_scale needs data, got shape {x.shape}")
    _check_no_nan(x, "minmax_scale")
    low = x.min(axis=axis, keepdims=True).astype(np.float64)
    high = x.max(axis=axis, keepdims=True).astype(np.float64)
    scale, shift = _scale_params(low, high, _check_range(feature_range))
    return (x * scale + shift).astype(x.dtype, copy=False)


# ------------------------------------------------------------------- labels


def _integer_labels(labels, what: str) -> np.ndarray:
    """`labels` as int64, or a DataError for values that are not whole numbers."""
    array = np.asarray(labels)
    if array.dtype.kind in "biu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        whole = np.isfinite(array) & (array == np.round(array))
        if whole.all():
            return array.astype(np.int64)
        bad = array[~whole]
        raise DataError(f"{what} needs integer labels; found {bad.size} non-integer values, "
                        f"e.g. {bad.reshape(-1)[0].item()!r}")
    raise DataError(f"{what} needs integer labels, got {array.dtype} values; map other labels "
                    "to ids with StringLookup or IntegerLookup first")


def one_hot(labels, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Integer labels 0..num_classes-1 as one-hot rows: shape `labels.shape + (num_classes,)`.

    `num_classes` defaults to the largest label + 1.

        >>> one_hot([0, 2], 3)
        array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    ids = _integer_labels(labels, "one_hot")
    if num_classes is None:
        if ids.size == 0:
            raise DataError("one_hot: no labels to infer num_classes from; pass num_classes")
        num_classes = int(ids.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise DataError(f"one_hot: num_classes must be a positive integer, got {num_classes!r}")
    bad = (ids < 0) | (ids >= num_classes)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(f"one_hot: labels must be in [0, {num_classes}); {int(bad.sum())} are "
                        f"not, e.g. {int(ids[where])} at index {where}")
    out = np.zeros(ids.shape + (int(num_classes),), dtype=dtype)
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    return out


class Lookup:
    """Map label values to ids 0..n-1 (in sorted order after `adapt`) and back.

    `vocabulary` fixes the values in id order; otherwise `adapt(labels)` (or
    `fit`) learns the distinct values, sorted. Unseen values are an error,
    or with `num_oov_indices=1` map to id 0 (Keras' out-of-vocabulary index;
    the vocabulary then starts at 1) and back to `oov_token`.

        >>> lookup = StringLookup().adapt(["dog", "cat", "dog"])
        >>> lookup(["cat", "dog"]), lookup.vocabulary
        (array([0, 1]), ['cat', 'dog'])
    """

    #: What the values must be: "int" (IntegerLookup), "str" (StringLookup) or None (any).
    kind: str | None = None
    default_oov_token = None

    def __init__(self, vocabulary=None, num_oov_indices: int = 0, oov_token=None):
        if num_oov_indices not in (0, 1):
            raise DataError(f"{type(self).__name__}: num_oov_indices must be 0 (unseen values "
                            f"are an error) or 1, got {num_oov_indices!r}")
        self.num_oov_indices = int(num_oov_indices)
        self.oov_token = self.default_oov_token if oov_token is None else oov_token
        self._values = None
        if vocabulary is not None:
            values = self._labels(vocabulary, "vocabulary").reshape(-1)
            distinct, counts = np.unique(values, return_counts=True)
            if (counts > 1).any():
                raise DataError(f"{type(self).__name__}: vocabulary repeats "
                                f"{distinct[counts > 1][0].item()!r}")
            self._set(values)

    def adapt(self, labels) -> Lookup:
        """Learn the distinct values of `labels` (any shape), sorted; returns self."""
        self._set(np.unique(self._labels(labels, "adapt")))
        return self

    fit = adapt

    def __call__(self, labels) -> np.ndarray:
        """The ids of `labels` (an int64 array of the same shape)."""
        values = self._labels(labels, "transform")
        self._require_vocabulary("transform")
        if (values.dtype.kind == "U") != (self._values.dtype.kind == "U"):
            raise DataError(f"{type(self).__name__}: the vocabulary holds {self._values.dtype} "
                            f"values, got {values.dtype} labels")
        position = np.clip(np.searchsorted(self._sorted, values), 0, len(self._sorted) - 1)
        found = self._sorted[position] == values
        if not found.all():
            unseen = np.unique(values[~found])
            if not self.num_oov_indices:
                raise DataError(f"{type(self).__name__}: {unseen.size} values are not in the "
                                f"vocabulary, e.g. {unseen[:5].tolist()}; adapt on data that "
                                "has them, or pass num_oov_indices=1 to map them to id 0")
        ids = self._sorted_ids[position] + self.num_oov_indices
        return np.where(found, ids, 0).astype(np.int64)

    transform = __call__

    def fit_transform(self, labels) -> np.ndarray:
        return self.adapt(labels)(labels)

    def inverse(self, ids) -> np.ndarray:
        """The values of `ids` (id 0 is `oov_token` with `num_oov_indices=1`)."""
        self._require_vocabulary("inverse")
        ids = _integer_labels(ids, f"{type(self).__name__}.inverse")
        size = self.vocabulary_size
        bad = (ids < 0) | (ids >= size)
        if bad.any():
            raise DataError(f"{type(self).__name__}.inverse: ids must be in [0, {size}), got "
                            f"{int(ids[bad].reshape(-1)[0])}")
        table = self._values
        if self.num_oov_indices:
            table = np.concatenate([np.asarray([self.oov_token]), table])
        return table[ids]

    inverse_transform = inverse

    @property
    def vocabulary(self) -> list:
        """The known values in id order (out-of-vocabulary id excluded)."""
        self._require_vocabulary("vocabulary")
        return self._values.tolist()

    @property
    def vocabulary_size(self) -> int:
        """How many ids there are: the vocabulary plus `num_oov_indices`."""
        self._require_vocabulary("vocabulary_size")
        return len(self._values) + self.num_oov_indices

    def get_vocabulary(self) -> list:
        """Keras' form: every id's value, the out-of-vocabulary token first if any."""
        return [self.oov_token] * self.num_oov_indices + self.vocabulary

    def _set(self, values: np.ndarray):
        if values.size == 0:
            raise DataError(f"{type(self).__name__}: the vocabulary is empty")
        self._values = values
        order = np.argsort(values, kind="stable")
        self._sorted, self._sorted_ids = values[order], order

    def _require_vocabulary(self, what: str):
        if self._values is None:
            raise DataError(f"{type(self).__name__}.{what}: no vocabulary yet; call "
                            "adapt(labels) first or pass vocabulary=")

    def _labels(self, labels, what: str) -> np.ndarray:
        name = f"{type(self).__name__}.{what}"
        if self.kind == "int":
            return _integer_labels(labels, name)
        array = np.asarray(labels)
        if array.dtype == object and all(isinstance(v, str) for v in array.reshape(-1)):
            array = array.astype(str)
        if self.kind == "str" and array.dtype.kind != "U":
            raise DataError(f"{name} needs string labels, got {array.dtype} values; use "
                            "IntegerLookup for integers")
        if array.dtype.kind not in "biufU":
            raise DataError(f"{name} needs numbers or strings, got {array.dtype} values")
        return array


class IntegerLookup(Lookup):
    """Integer labels (e.g. 3, 7, 42) to ids 0..n-1; see `Lookup`."""

    kind = "int"
    default_oov_token = -1


class StringLookup(Lookup):
    """String labels (e.g. "cat", "dog") to ids 0..n-1; see `Lookup`."""

    kind = "str"
    default_oov_token = "[UNK]"


# ----------------------------------------------------------------- cleaning


def _table(x, what: str) -> np.ndarray:
    """`x` as a 1-D or 2-D numeric array (rows first)."""
    array = np.asarray(x)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} needs a numeric array, got {array.dtype} values")
    if array.ndim not in (1, 2):
        raise DataError(f"{what} needs a 1-D or 2-D (rows, columns) array, got shape "
                        f"{array.shape}")
    return array


def _columns_of(array: np.ndarray) -> np.ndarray:
    return array if array.ndim == 2 else array[:, None]


def _listing(items, limit: int = 10) -> str:
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


@dataclasses.dataclass
class DropReport:
    """What `drop_missing` removed: counts, row indices and NaNs per column."""

    rows: int                 # rows before
    dropped_rows: np.ndarray  # indices of the rows removed
    nan_per_column: np.ndarray
    nan_in_y: int = 0

    @property
    def dropped(self) -> int:
        return len(self.dropped_rows)

    @property
    def kept(self) -> int:
        return self.rows - self.dropped

    def __str__(self):
        if not self.dropped:
            return f"drop_missing: no missing values; kept all {self.rows} rows"
        share = 100 * self.dropped / self.rows
        lines = [f"drop_missing: dropped {self.dropped} of {self.rows} rows ({share:.1f}%), "
                 f"kept {self.kept}",
                 f"  rows: {_listing(self.dropped_rows.tolist())}"]
        counts = [f"column {c}: {int(n)}" for c, n in enumerate(self.nan_per_column) if n]
        if counts:
            lines.append(f"  NaN per column: {_listing(counts)}")
        if self.nan_in_y:
            lines.append(f"  NaN in y: {self.nan_in_y}")
        return "\n".join(lines)


def drop_missing(x, y=None, columns=None):
    """Remove the rows of `x` (and `y`) that have NaN in `x`'s `columns` (default
    all) or in `y`. Returns `(x, report)`, or `(x, y, report)` with `y`.

        >>> x, y, report = drop_missing(x, y)
        >>> print(report)
    """
    x = _table(x, "drop_missing")
    table = _columns_of(x)
    nan = np.isnan(table) if x.dtype.kind == "f" else np.zeros(table.shape, bool)
    selected = nan
    if columns is not None:
        columns = np.atleast_1d(np.asarray(columns))
        if columns.dtype.kind not in "iu" or columns.size == 0 or \
                ((columns < -table.shape[1]) | (columns >= table.shape[1])).any():
            raise DataError(f"drop_missing: columns must be indices into the {table.shape[1]} "
                            f"columns of x, got {columns.tolist()}")
        selected = nan[:, columns]
    missing = selected.any(axis=1)
    nan_in_y = 0
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(x):
            raise DataError(f"drop_missing: y needs one row per row of x ({len(x)}), got shape "
                            f"{y.shape}")
        if y.dtype.kind == "f":
            y_nan = np.isnan(y.reshape(len(y), -1)).any(axis=1)
            nan_in_y = int(y_nan.sum())
            missing = missing | y_nan
    report = DropReport(len(x), np.flatnonzero(missing), nan.sum(axis=0), nan_in_y)
    keep = ~missing
    return (x[keep], report) if y is None else (x[keep], y[keep], report)


@dataclasses.dataclass
class ImputeReport:
    """What an imputer filled: per column, how many values and with what."""

    strategy: str
    filled_per_column: np.ndarray
    fill_values: np.ndarray

    @property
    def filled(self) -> int:
        return int(self.filled_per_column.sum())

    def __str__(self):
        if not self.filled:
            return f"impute ({self.strategy}): no missing values"
        columns = np.flatnonzero(self.filled_per_column)
        lines = [f"impute ({self.strategy}): filled {self.filled} missing values in "
                 f"{len(columns)} of {len(self.filled_per_column)} columns"]
        lines += [f"  column {c}: {int(self.filled_per_column[c])} with "
                  f"{self.fill_values[c]:.6g}" for c in columns[:20]]
        if len(columns) > 20:
            lines.append(f"  ... {len(columns) - 20} more columns")
        return "\n".join(lines)


class SimpleImputer:
    """Fill NaNs column by column with a statistic of the data given to `fit`
    ("mean", "median", "most_frequent") or with `fill_value` ("constant",
    default 0), like scikit-learn's SimpleImputer: fit on train, then fill
    train and test alike.

        >>> imputer = SimpleImputer("median").fit(x_train)
        >>> x_train, x_test = imputer.transform(x_train), imputer.transform(x_test)
    """

    STRATEGIES = ("mean", "median", "most_frequent", "constant")

    def __init__(self, strategy: str = "mean", fill_value=None):
        if strategy not in self.STRATEGIES:
            raise DataError(f"SimpleImputer: unknown strategy {strategy!r}; choose one of "
                            f"{', '.join(self.STRATEGIES)}")
        self.strategy, self.fill_value = strategy, fill_value
        self.statistics_ = None

    def fit(self, x) -> SimpleImputer:
        """Compute each column's fill value; returns self."""
        x = _table(x, "SimpleImputer.fit")
        table = _columns_of(x).astype(np.float64)
        if self.strategy == "constant":
            value = 0.0 if self.fill_value is None else self.fill_value
            if not isinstance(value, (int, float, np.integer, np.floating)) or \
                    isinstance(value, bool):
                raise DataError(f"SimpleImputer: fill_value must be a number, got {value!r}")
            self.statistics_ = np.full(table.shape[1], float(value))
            return self
        empty = np.flatnonzero(np.isnan(table).all(axis=0))
        if len(empty):
            raise DataError(f"SimpleImputer: columns {_listing(empty.tolist())} have no values "
                            f"to compute a {self.strategy} from; drop them or use "
                            "strategy='constant'")
        if self.strategy == "mean":
            self.statistics_ = np.nanmean(table, axis=0)
        elif self.strategy == "median":
            self.statistics_ = np.nanmedian(table, axis=0)
        else:
            self.statistics_ = np.array([_most_frequent(c[~np.isnan(c)]) for c in table.T])
        return self

    def transform(self, x) -> np.ndarray:
        """A copy of `x` with every NaN replaced by its column's fill value."""
        x, nan = self._check(x, "transform")
        out = x.copy()
        table = _columns_of(out)
        rows, cols = np.nonzero(nan)
        table[rows, cols] = self.statistics_[cols]
        return out

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def report(self, x) -> ImputeReport:
        """What `transform(x)` fills: per column, how many values and with what."""
        _, nan = self._check(x, "report")
        return ImputeReport(self.strategy, nan.sum(axis=0), self.statistics_.copy())

    def _check(self, x, method: str) -> tuple:
        if self.statistics_ is None:
            raise DataError(f"SimpleImputer.{method}: not fitted; call fit(x_train) first")
        x = _table(x, f"SimpleImputer.{method}")
        table = _columns_of(x)
        if table.shape[1] != len(self.statistics_):
            raise DataError(f"SimpleImputer.{method}: fitted on {len(self.statistics_)} "
                            f"columns, got data of shape {x.shape}")
        nan = np.isnan(table) if x.dtype.kind == "f" else np.zeros(table.shape, bool)
        return x, nan


def _most_frequent(values: np.ndarray) -> float:
    """The most common value; the smallest of those tied (scikit-learn's rule)."""
    distinct, counts = np.unique(values, return_counts=True)
    return float(distinct[np.argmax(counts)])


def impute_missing(x, strategy: str = "mean", fill_value=None) -> tuple:
    """Fill NaNs in `x` with its own column statistics: returns `(filled, report)`.
    To apply train statistics to test data use `SimpleImputer`.

        >>> filled, report = impute_missing(np.array([[1.0, np.nan], [3.0, 4.0]]))
        >>> filled.tolist(), report.filled
        ([[1.0, 4.0], [3.0, 4.0]], 1)
    """
    imputer = SimpleImputer(strategy, fill_value).fit(x)
    return imputer.transform(x), imputer.report(x)
