"""Data-parallel training on MPI (mpi4py): the same graph on every rank,
gradients averaged by a bucketed, non-blocking allreduce.

    # train.py, launched as: mpiexec -n 4 python train.py
    model.fit(x, y, batch_size=64, strategy=gn.distributed.DataParallel())
    # batch_size is the global batch: each of the 4 ranks trains on 16 rows

    # graph level
    pairs = opt.compute_gradients(loss)
    train = opt.apply_gradients(gn.distributed.allreduce_gradients(pairs))
    gn.distributed.broadcast_variables(sess, [v for _, v in pairs])

Without mpiexec, or without mpi4py installed, everything runs as one
process (rank 0 of 1). Install MPI with `pip install 'graphnet[mpi]'`
(mpi4py and mpich from PyPI). See DataParallel for what is equal to a
one-process run, and scaling.py for the cost model.
"""

from __future__ import annotations

from graphnet.distributed.comm import (
    DEFAULT_TIMEOUT,
    Communicator,
    DistributedError,
    abort_on_uncaught_exception,
)
from graphnet.distributed.ops import (
    BUCKET_BYTES,
    AllreduceGroup,
    allreduce_gradients,
    broadcast_variables,
)
from graphnet.distributed.sharding import ShardedGenerator, shard_bounds
from graphnet.distributed.strategy import DataParallel

_world = None


def world() -> Communicator:
    """The job's communicator (MPI's world, or one process), made on first use."""
    global _world
    if _world is None:
        _world = Communicator.world()
        abort_on_uncaught_exception(_world)
    return _world


def rank() -> int:
    """This process's rank (0 without MPI): `if gn.distributed.rank() == 0: model.save(...)`."""
    return world().rank


def size() -> int:
    """The number of ranks (1 without MPI)."""
    return world().size


__all__ = [
    "BUCKET_BYTES", "DEFAULT_TIMEOUT", "AllreduceGroup", "Communicator", "DataParallel",
    "DistributedError", "ShardedGenerator", "allreduce_gradients", "broadcast_variables",
    "rank", "shard_bounds", "size", "world",
]
