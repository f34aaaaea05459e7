"""Dataset: batching, shuffling, map, take, determinism, memory use and errors."""

import tracemalloc

import numpy as np
import pytest

import graphnet as gn
from graphnet.data import DataError, Dataset


def rows(n=10):
    """x with row i equal to [i, i], y = i: every batch shows which rows it holds."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], 2, axis=1)
    return x, np.arange(n)


def epoch(ds):
    return list(ds)


def test_single_array_yields_rows_in_order():
    x, _ = rows(5)
    ds = Dataset.from_arrays(x)
    assert len(ds) == 5
    got = epoch(ds)
    assert len(got) == 5 and all(isinstance(e, np.ndarray) for e in got)
    np.testing.assert_array_equal(np.stack(got), x)


@pytest.mark.parametrize("drop, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_batch_sizes_and_drop_remainder(drop, sizes):
    x, y = rows(10)
    ds = Dataset.from_arrays(x, y).batch(4, drop_remainder=drop)
    batches = epoch(ds)
    assert len(ds) == len(sizes)
    assert [len(yb) for _, yb in batches] == sizes
    assert all(xb.shape == (n, 2) and xb.dtype == np.float32
               for (xb, _), n in zip(batches, sizes))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y[:sum(sizes)])


def test_batch_larger_than_data_gives_one_batch_or_none():
    x, y = rows(3)
    assert [len(b) for b in Dataset.from_arrays(y).batch(8)] == [3]
    assert epoch(Dataset.from_arrays(y).batch(8, drop_remainder=True)) == []
    assert len(Dataset.from_arrays(x, y).batch(8, drop_remainder=True)) == 0


def test_tuple_and_dict_structures_are_kept():
    x, y = rows(6)
    (xb, yb), = epoch(Dataset.from_arrays((x, y)).batch(6))
    np.testing.assert_array_equal(xb, x)
    np.testing.assert_array_equal(yb, y)
    batch = next(iter(Dataset.from_arrays({"image": x, "label": y}).batch(4)))
    assert set(batch) == {"image", "label"}
    np.testing.assert_array_equal(batch["label"], [0, 1, 2, 3])
    nested = next(iter(Dataset.from_arrays((x, {"a": y})).batch(2)))
    np.testing.assert_array_equal(nested[1]["a"], [0, 1])


def test_shuffle_is_a_permutation_that_keeps_x_and_y_aligned():
    x, y = rows(50)
    for xb, yb in Dataset.from_arrays(x, y).shuffle(seed=1).batch(7):
        np.testing.assert_array_equal(xb[:, 0], yb)
    seen = np.concatenate([yb for _, yb in Dataset.from_arrays(x, y).shuffle(seed=1).batch(7)])
    assert sorted(seen) == list(range(50)) and list(seen) != list(range(50))


def test_shuffle_draws_a_new_order_every_epoch():
    ds = Dataset.from_arrays(np.arange(100)).shuffle(seed=3).batch(100)
    first, second = next(iter(ds)), next(iter(ds))
    assert not np.array_equal(first, second)
    assert sorted(first) == sorted(second)


def test_same_seed_gives_the_same_sequence_of_epochs():
    def two_epochs(seed):
        ds = Dataset.from_arrays(np.arange(30)).shuffle(seed=seed).batch(8)
        return [b.tolist() for _ in range(2) for b in ds]

    assert two_epochs(5) == two_epochs(5)
    assert two_epochs(5) != two_epochs(6)


def test_shuffle_without_seed_follows_the_global_seed():
    def two_epochs():
        ds = Dataset.from_arrays(np.arange(30)).shuffle().batch(30)
        return [next(iter(ds)).tolist() for _ in range(2)]

    gn.random.seed(11)
    a = two_epochs()
    gn.random.seed(11)
    assert two_epochs() == a
    assert a[0] != a[1]
    # The generator is looked up when an epoch starts, so reseeding later counts too.
    ds = Dataset.from_arrays(np.arange(30)).shuffle().batch(30)
    gn.random.seed(11)
    assert next(iter(ds)).tolist() == a[0]


def test_reshuffle_each_iteration_false_keeps_one_order():
    ds = Dataset.from_arrays(np.arange(20)).shuffle(seed=0, reshuffle_each_iteration=False)
    assert epoch(ds) == epoch(ds) != list(range(20))


def test_shuffle_after_batch_moves_whole_batches():
    ds = Dataset.from_arrays(np.arange(12)).batch(4).shuffle(seed=2)
    batches = [b.tolist() for b in ds]
    assert sorted(batches) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert len(ds) == 3


def test_map_on_batches_unpacks_tuples():
    x, y = rows(10)
    ds = Dataset.from_arrays(x, y).batch(4).map(lambda xb, yb: (xb / 10, yb + 100))
    xb, yb = next(iter(ds))
    np.testing.assert_allclose(xb[:, 0], [0, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(yb, [100, 101, 102, 103])
    assert len(ds) == 3


def test_map_on_examples_then_batch_stacks_them():
    x, y = rows(5)
    ds = Dataset.from_arrays({"x": x, "y": y}).map(lambda e: (e["x"].sum(), e["y"])).batch(2)
    batches = epoch(ds)
    assert [len(b[0]) for b in batches] == [2, 2, 1]
    np.testing.assert_array_equal(batches[0][0], [0.0, 2.0])
    np.testing.assert_array_equal(batches[2][1], [4])


def test_map_with_a_single_array_gets_the_array():
    ds = Dataset.from_arrays(np.arange(6)).batch(3).map(lambda b: b * 2)
    assert [b.tolist() for b in ds] == [[0, 2, 4], [6, 8, 10]]


def test_take_before_and_after_batch():
    x, y = rows(10)
    assert [b.tolist() for b in Dataset.from_arrays(y).take(5).batch(2)] == [[0, 1], [2, 3], [4]]
    ds = Dataset.from_arrays(x, y).batch(3).take(2)
    assert len(ds) == 2 and [yb.tolist() for _, yb in ds] == [[0, 1, 2], [3, 4, 5]]
    assert len(Dataset.from_arrays(y).take(50)) == 10
    assert epoch(Dataset.from_arrays(y).take(0)) == []


def test_take_after_shuffle_takes_new_examples_each_epoch():
    ds = Dataset.from_arrays(np.arange(100)).shuffle(seed=0).take(10)
    a, b = epoch(ds), epoch(ds)
    assert len(a) == len(b) == 10 and a != b


def test_batches_are_new_arrays_so_edits_cannot_touch_the_source():
    x, y = rows(8)
    original = x.copy()

    def scale_in_place(xb, yb):
        xb *= 0
        return xb, yb

    for xb, _ in Dataset.from_arrays(x, y).batch(3).map(scale_in_place):
        assert not np.shares_memory(xb, x)
    for row in Dataset.from_arrays(x).map(np.negative):
        assert not np.shares_memory(row, x)
    for row in Dataset.from_arrays(x):  # single examples are copies too
        row *= 0
    np.testing.assert_array_equal(x, original)


def test_an_epoch_does_not_copy_the_whole_data_set():
    # 8 MB of data; shuffled batching must gather batches by index, so the peak
    # memory of an epoch is a permutation plus a batch, far below one copy.
    x = np.ones((2048, 1024), np.float32)
    y = np.arange(2048)
    ds = Dataset.from_arrays(x, y).shuffle(seed=0).batch(64)
    tracemalloc.start()
    try:
        count = sum(1 for _ in ds)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 32
    assert peak < x.nbytes / 8, f"an epoch allocated {peak} bytes at its peak"


def test_the_source_arrays_are_not_copied_when_the_dataset_is_built():
    x = np.zeros((100, 3))
    ds = Dataset.from_arrays(x)
    assert ds.arrays is x


def test_repr_shows_the_pipeline():
    ds = Dataset.from_arrays(np.zeros((4, 2), np.float32), np.arange(4)).shuffle(seed=1).batch(2)
    assert repr(ds) == ("Dataset.from_arrays(('float32[4, 2]', 'int64[4]'))"
                        ".shuffle(seed=1).batch(2)")


@pytest.mark.parametrize("args, message", [
    ((np.zeros((5, 2)), np.zeros(4)), r"same length .*x\[0\]: 5, x\[1\]: 4"),
    (({"a": np.zeros(3), "b": np.zeros(2)},), r"x\['a'\]: 3, x\['b'\]: 2"),
    ((np.zeros((0, 3)), np.zeros(0)), "no examples"),
    ((np.float32(1.0),), "scalar"),
    (((),), "at least one array"),
    (({},), "at least one array"),
])
def test_from_arrays_errors(args, message):
    with pytest.raises(DataError, match=message):
        Dataset.from_arrays(*args)


@pytest.mark.parametrize("make, message", [
    (lambda ds: ds.batch(0), r"batch_size must be an int >= 1, found 0"),
    (lambda ds: ds.batch(2.5), r"batch_size must be an int >= 1, found 2.5"),
    (lambda ds: ds.batch(True), r"batch_size must be an int >= 1, found True"),
    (lambda ds: ds.take(-1), r"count must be an int >= 0, found -1"),
    (lambda ds: ds.map("upper"), r"needs a callable, found str"),
    (lambda ds: ds.shuffle(seed="0"), r"seed must be an int or None, found '0'"),
])
def test_method_argument_errors(make, message):
    with pytest.raises(DataError, match=message):
        make(Dataset.from_arrays(np.arange(4)))


def test_batching_elements_of_different_shapes_says_so():
    ds = Dataset.from_arrays(np.arange(4)).map(lambda i: np.zeros(int(i) + 1)).batch(2)
    with pytest.raises(DataError, match=r"cannot stack elements of shapes \[\(1,\), \(2,\)\]"):
        next(iter(ds))


def test_data_error_is_a_value_error_and_a_graphnet_error():
    assert issubclass(DataError, ValueError) and issubclass(DataError, gn.GraphnetError)
