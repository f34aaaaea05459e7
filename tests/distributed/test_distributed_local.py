"""gn.distributed in one process: no MPI needed. The allreduce ops run on a
local communicator; the sharding, random streams and the cost model are
checked against their definitions."""

import sys

import numpy as np
import pytest

import graphnet as gn
from graphnet.distributed.comm import Communicator, DistributedError
from graphnet.distributed.ops import _allreduce
from graphnet.distributed.scaling import AllreduceCost, buckets_of, efficiency
from graphnet.distributed.sharding import ShardedBatches, ShardedGenerator, shard_bounds


def _mlp_graph():
    x = gn.placeholder((None, 6), name="x")
    y = gn.placeholder((None,), "int64", name="y")
    w1 = gn.variable(gn.init.glorot_uniform((6, 8), seed=0), name="w1")
    b1 = gn.variable(np.zeros(8, np.float32), name="b1")
    w2 = gn.variable(gn.init.glorot_uniform((8, 3), seed=1), name="w2")
    b2 = gn.variable(np.zeros(3, np.float32), name="b2")
    logits = gn.relu(x @ w1 + b1) @ w2 + b2
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(logits, y))
    return x, y, [w1, b1, w2, b2], loss


def _feed(x, y, n=10):
    rng = np.random.default_rng(0)
    return {x: rng.normal(size=(n, 6)).astype(np.float32), y: rng.integers(0, 3, n)}


@pytest.mark.parametrize("bucket_bytes, buckets", [(1, 4), (100, 2), (1 << 20, 1)])
def test_buckets_follow_the_backward_order(bucket_bytes, buckets):
    x, y, params, loss = _mlp_graph()
    grads = gn.gradients(loss, params)
    _, group = _allreduce(grads, Communicator.local(), bucket_bytes, force=True)
    assert len(group.buckets) == buckets
    order = [i for *_, members in group.buckets for i in members]
    assert order == sorted(range(4), key=lambda i: grads[i].id)   # last layer's first
    assert group.flat[np.dtype("float32")].size == sum(np.prod(p.shape) for p in params)


def test_allreduced_gradients_on_one_rank_equal_the_gradients():
    x, y, params, loss = _mlp_graph()
    grads = gn.gradients(loss, params)
    reduced, group = _allreduce(list(zip(grads, params)), Communicator.local(), 200, force=True)
    assert [v for _, v in reduced] == params
    feed = _feed(x, y)
    expected = gn.Session().run(grads, feed)
    for got, want in zip(gn.Session().run([g for g, _ in reduced], feed), expected):
        np.testing.assert_array_equal(got, want)
    group.scale = 0.25      # a strategy's weight for a quarter of the global batch
    for got, want in zip(gn.Session().run([g for g, _ in reduced], feed), expected):
        np.testing.assert_allclose(got, want * 0.25, rtol=1e-6)


def test_each_bucket_starts_right_after_its_gradients_and_waits_before_the_updates():
    x, y, params, loss = _mlp_graph()
    opt = gn.optim.Adam(1e-3)
    reduced, group = _allreduce(opt.compute_gradients(loss), Communicator.local(), 100,
                                force=True)
    step = opt.apply_gradients(reduced)
    plan = gn.compile([loss, step], feed_shapes={x: (10, 6), y: (10,)})
    kinds = [s.nodes[-1].op.kind for s in plan.steps]
    first_start = kinds.index("allreduce_start")
    # the first layer's weight gradient (a matmul) is still to come: communication overlaps it
    assert "matmul" in kinds[first_start:kinds.index("allreduce_start", first_start + 1)]
    last_wait = max(i for i, k in enumerate(kinds) if k == "allreduce_wait")
    assert all(i > last_wait for i, s in enumerate(plan.steps)
               if s.nodes[-1].op.kind not in ("group",) and "adam" in s.code)
    sess = gn.Session()
    before = sess.get(params[0])
    sess.run(plan, _feed(x, y))
    assert not np.array_equal(sess.get(params[0]), before)
    assert group.runs == 1


def test_allreduce_gradients_in_one_process_returns_them_unchanged():
    x, y, params, loss = _mlp_graph()
    grads = gn.gradients(loss, params)
    assert gn.distributed.allreduce_gradients(grads, communicator=Communicator.local()) == grads
    with pytest.raises(TypeError, match="gradient 0 is ndarray"):
        gn.distributed.allreduce_gradients([np.zeros(3)], communicator=Communicator.local())


def test_data_parallel_in_one_process_trains_exactly_as_fit():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 6)).astype(np.float32), rng.integers(0, 3, 100)

    def run(strategy):
        gn.reset_names()
        gn.random.seed(0)
        model = gn.Sequential([gn.layers.Dense(8, activation="relu", input_shape=(6,)),
                               gn.layers.Dropout(0.3), gn.layers.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0, strategy=strategy)
        return model, history.history

    plain, plain_history = run(None)
    strategy = gn.distributed.DataParallel(communicator=Communicator.local())
    ours, our_history = run(strategy)
    assert our_history == plain_history
    for a, b in zip(ours.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert strategy.stats()["steps"] == 14
    # after fit the model trains and evaluates without the strategy
    assert ours._strategy is None
    ours.train_on_batch(x[:4], y[:4])
    assert np.isfinite(ours.evaluate(x, y, verbose=0)[0])


def test_data_parallel_rejects_bad_settings():
    with pytest.raises(ValueError, match="bucket_bytes must be > 0"):
        gn.distributed.DataParallel(bucket_bytes=0, communicator=Communicator.local())
    with pytest.raises(ValueError, match="timeout must be > 0"):
        gn.distributed.DataParallel(timeout=0, communicator=Communicator.local())


def test_callbacks_that_write_files_are_marked():
    assert gn.callbacks.ModelCheckpoint("x.npz").writes_files
    assert gn.callbacks.CSVLogger("x.csv").writes_files
    assert not gn.callbacks.EarlyStopping().writes_files


@pytest.mark.parametrize("rows, size, expected", [
    (64, 2, [(0, 32), (32, 64)]),
    (63, 2, [(0, 32), (32, 63)]),
    (10, 4, [(0, 3), (3, 6), (6, 8), (8, 10)]),
    (3, 4, [(0, 1), (1, 2), (2, 3), (3, 3)]),
])
def test_shard_bounds_split_like_array_split(rows, size, expected):
    bounds = [shard_bounds(rows, r, size) for r in range(size)]
    assert bounds == expected
    parts = np.array_split(np.arange(rows), size)
    assert [(int(p[0]), int(p[-1]) + 1) for p in parts if p.size] == \
        [b for b in bounds if b[1] > b[0]]


def test_sharded_batches_cut_each_global_batch_and_skip_a_tiny_last_one():
    data = gn.data.Dataset.from_arrays(np.arange(9.0)[:, None], np.arange(9)).batch(4)
    ranks = [ShardedBatches(data, r, 2, last_rows=1) for r in range(2)]
    assert [len(s) for s in ranks] == [2, 2]
    got = [[yb.tolist() for _, yb in s] for s in ranks]
    assert got == [[[0, 1], [4, 5]], [[2, 3], [6, 7]]]
    assert ranks[0].dropped == 1 and ranks[1].current == (2, 4, 4)


@pytest.mark.parametrize("method, args, kwargs", [
    ("random", ((5, 3),), {"dtype": np.float32}),
    ("random", (), {"size": (5, 3)}),
    ("normal", (0.0, 1.0, (5, 2)), {}),
    ("integers", (0, 10), {"size": 5}),
])
def test_a_rank_draws_its_rows_of_the_global_batch(method, args, kwargs):
    """Rank 1 of 2 with rows [5, 10) of a global batch of 10 gets exactly those
    rows of what one process draws, and the generator ends where it would."""
    def whole(shape):
        if "size" in kwargs:
            return args, dict(kwargs, size=shape)
        return args[:-1] + (shape,), kwargs
    single = np.random.default_rng(7)
    local_shape = kwargs.get("size", args[-1] if args else None)
    local_shape = (local_shape,) if isinstance(local_shape, int) else local_shape
    a, k = whole((10,) + tuple(local_shape[1:]))
    expected = getattr(single, method)(*a, **k)[5:10]
    sharded = ShardedGenerator(np.random.default_rng(7))
    sharded.rows = (5, 10, 10)
    got = getattr(sharded, method)(*args, **kwargs)
    np.testing.assert_array_equal(got, expected)
    assert sharded.random() == single.random()          # the streams stay in step
    sharded.rows = None
    assert sharded.permutation(4).tolist() == single.permutation(4).tolist()


def test_without_mpi4py_one_process_runs_and_a_launched_job_is_told_what_to_install(
        monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)      # import mpi4py -> ImportError
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(name, raising=False)
    comm = Communicator.world()
    assert (comm.rank, comm.size, comm.is_mpi) == (0, 1, False)
    monkeypatch.setenv("PMI_SIZE", "4")
    with pytest.raises(DistributedError, match=r"one of 4 .* pip install 'graphnet\[mpi\]'"):
        Communicator.world()


def test_cost_model_fits_two_ranks_and_scales_as_written():
    cost = AllreduceCost(alpha=5e-6, beta=1e-10)
    sizes = [8, 1 << 10, 1 << 20, 8 << 20]
    fitted = AllreduceCost.fit_two_ranks(sizes, [cost.seconds(n, 2) for n in sizes])
    assert fitted.alpha == pytest.approx(5e-6, rel=1e-6)
    assert fitted.beta == pytest.approx(1e-10, rel=1e-6)
    # T(n, N) = 2 ceil(log2 N) alpha + 2 (N-1)/N n beta
    assert cost.seconds(1e6, 8) == pytest.approx(2 * 3 * 5e-6 + 2 * 7 / 8 * 1e6 * 1e-10)
    assert cost.seconds(1e6, 1) == 0.0
    assert buckets_of(2_500_000, 1 << 20) == [1 << 20, 1 << 20, 2_500_000 - (2 << 20)]
    low, high = efficiency(cost, 1e-3, buckets_of(4e6, 1 << 20), 64)
    comm = sum(cost.seconds(b, 64) for b in buckets_of(4e6, 1 << 20))
    assert low == pytest.approx(1e-3 / (1e-3 + comm))
    assert low < high <= 1.0
