"""DataParallel: `model.fit(..., strategy=gn.distributed.DataParallel())` on N ranks.

Under `mpiexec -n N`, every rank runs the same script and builds the same
model. `fit` then:

1. checks that the ranks agree on the call (batch size, data length, epochs)
   and that the global batch gives every rank at least one row;
2. builds the training graph with the gradients averaged across ranks
   (`allreduce_gradients`: bucketed, non-blocking, in place);
3. before the first step, hashes the graph the training plan is compiled
   from (ops, attributes, shapes with the batch size open) and the variables'
   shapes on every rank and compares them, then broadcasts every variable the step
   reads (weights, optimizer slots, step counter) from rank 0;
4. iterates the same global batches on every rank (same shuffle) and trains
   each rank on its rows; random draws in the step are the rows' share of the
   global batch's (see sharding.py); gradients are weighted by each rank's
   share of the rows, so the update equals one process's on the whole batch;
5. sums the loss and the metrics' statistics across ranks after each step, so
   logs, history and callbacks' decisions are identical on every rank;
6. runs callbacks that write files (ModelCheckpoint, CSVLogger) and progress
   output on rank 0 only.

The global batch is `batch_size`; a final batch with fewer rows than ranks is
skipped (rank 0 warns with the count). In one process (no mpiexec, or no
mpi4py) DataParallel trains exactly as a plain `fit`.
"""

from __future__ import annotations

import hashlib
import re
import time
import warnings

import numpy as np

from graphnet import random as gn_random
from graphnet.distributed.comm import (
    DEFAULT_TIMEOUT,
    Communicator,
    DistributedError,
    abort_on_uncaught_exception,
)
from graphnet.distributed.ops import BUCKET_BYTES, _allreduce, broadcast_variables
from graphnet.distributed.sharding import ShardedBatches, ShardedGenerator
from graphnet.graph import Graph, Variable, type_string


class DataParallel:
    """Data-parallel training over MPI ranks: pass it to `model.fit(strategy=...)`.

    Args:
        bucket_bytes: gradients are summed in buckets of about this many bytes,
            each started as soon as its gradients are computed.
        timeout: seconds any rank waits for the others before it raises (and,
            under mpiexec, aborts the job).
        communicator: a `Communicator` (default: MPI's world, or one process).

    `stats()` reports the time spent communicating in the last fit.
    """

    def __init__(self, bucket_bytes: int = BUCKET_BYTES, timeout: float = DEFAULT_TIMEOUT,
                 communicator: Communicator | None = None):
        if bucket_bytes <= 0:
            raise ValueError(f"DataParallel: bucket_bytes must be > 0, got {bucket_bytes}")
        if timeout <= 0:
            raise ValueError(f"DataParallel: timeout must be > 0 seconds, got {timeout}")
        if communicator is None:
            from graphnet.distributed import world
            communicator = world()
        self.comm = communicator
        self.comm.timeout = float(timeout)
        self.bucket_bytes = int(bucket_bytes)
        abort_on_uncaught_exception(self.comm)
        self.group = None          # the AllreduceGroup of the training graph
        self._model = None
        self._kept = None          # (model, compiled settings, graphs) built under this strategy
        self._shards: dict = {}
        self._started = False
        self._rows = None          # (lo, hi, global rows) of the batch last run
        self._generators: list = []
        self._seconds = {"steps": 0.0, "metrics": 0.0, "count": 0}

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def size(self) -> int:
        return self.comm.size

    def __repr__(self):
        return f"<DataParallel {self.comm.where()}, buckets of {self.bucket_bytes:,} bytes>"

    # ------------------------------------------------------ fit's hooks

    def begin_fit(self, model, x, train, val, callbacks, verbose, batch_size, epochs,
                  initial_epoch) -> tuple:
        """(train batches, validation batches, callbacks, verbose) for this rank."""
        from graphnet.data import Dataset
        examples = -1 if isinstance(x, Dataset) else len(x)
        self._check_agreement(batch_size, examples, epochs, initial_epoch, len(train))
        last_rows = None
        if examples >= 0:
            if batch_size < self.size:
                raise DistributedError(
                    f"DataParallel ({self.comm.where()}): batch_size {batch_size} is the global "
                    f"batch, split across {self.size} ranks, which leaves ranks with no rows; "
                    f"use batch_size >= {self.size} (a multiple of {self.size} gives every "
                    "rank the same number)", collective=True)
            last_rows = examples - (len(train) - 1) * batch_size
            if last_rows < self.size and self.rank == 0:
                warnings.warn(f"DataParallel: {examples} examples in batches of {batch_size} "
                              f"leave a last batch of {last_rows} rows, fewer than the "
                              f"{self.size} ranks: it is skipped every epoch", stacklevel=3)
        self._model = model
        if self._kept is not None and self._kept[:2] == (model, model._compiled):
            model._graphs = self._kept[2]
        else:
            model._graphs = None      # rebuild the training graph with the allreduce
            self._started = False
        train = self._shards["train"] = ShardedBatches(train, self.rank, self.size, last_rows)
        if val is not None:
            val = self._shards["test"] = ShardedBatches(val, self.rank, self.size)
        if self.size > 1:
            self._install_generators()
        if self.rank != 0:
            callbacks = [cb for cb in callbacks if not getattr(cb, "writes_files", False)]
            verbose = 0
        self._seconds = {"steps": 0.0, "metrics": 0.0, "count": 0}
        if self.group is not None:
            self.group.reset_timing()
        return train, val, callbacks, verbose

    def end_fit(self, model):
        """Detach: later calls on the model without a strategy use graphs of their own."""
        self._kept = (model, model._compiled, model._graphs)
        model._graphs = None
        self._model = None
        if isinstance(gn_random._generator, ShardedGenerator):
            gn_random._generator = gn_random._generator.generator

    def minimize(self, optimizer):
        """What the model calls instead of `optimizer.minimize` to build its update."""
        def minimize(loss, var_list=None, name=None):
            pairs = optimizer.compute_gradients(loss, var_list)
            reduced, self.group = _allreduce(pairs, self.comm, self.bucket_bytes)
            self._find_generators(loss)
            return optimizer.apply_gradients(reduced, name=name)
        return minimize

    def run_step(self, session, fetches: dict, feed: dict, mode: str) -> dict:
        """One step on this rank's rows; the loss and metrics come back summed over ranks."""
        begin = time.perf_counter()
        shards = self._shards.get(mode)
        lo, hi, rows = shards.current if shards is not None and shards.current else \
            (0, len(next(iter(feed.values()))), len(next(iter(feed.values()))) * self.size)
        self._rows = (lo, hi, rows)
        if self.group is not None:
            self.group.scale = (hi - lo) / rows
        if mode == "train" and not self._started:
            self._start(session, fetches)
            self._started = True
        self._activate((lo, hi, rows) if self.size > 1 else None)
        try:
            out = session.run(fetches, feed)
        finally:
            self._activate(None)
        middle = time.perf_counter()
        out = self._reduce_logs(out, hi - lo, rows)
        end = time.perf_counter()
        if mode == "train":
            self._seconds["steps"] += end - begin
            self._seconds["metrics"] += end - middle
            self._seconds["count"] += 1
        return out

    def rows(self, xb) -> int:
        """The rows of the global batch this rank's `xb` came from (for weighting logs)."""
        return len(xb) if self._rows is None else self._rows[2]

    def stats(self) -> dict:
        """Seconds per training step of the last fit: `step`, and within it the
        gradient allreduce's `start` (copy in, post) and `wait` (blocked), and
        the logs' reduction `metrics`; `steps` counted."""
        count = max(self._seconds["count"], 1)
        group = self.group.seconds if self.group is not None else {"start": 0.0, "wait": 0.0}
        return {"steps": self._seconds["count"], "step": self._seconds["steps"] / count,
                "start": group["start"] / count, "wait": group["wait"] / count,
                "metrics": self._seconds["metrics"] / count}

    # --------------------------------------------------------- start-up

    def _check_agreement(self, batch_size, examples, epochs, initial_epoch, batches):
        """Every rank called fit alike, or every rank raises saying how they differ."""
        mine = np.array([batch_size, examples, epochs, initial_epoch, batches], np.int64)
        every = self.comm.allgather(mine, "the check that ranks called fit alike")
        differ = [r for r in range(self.size) if not np.array_equal(every[r], every[0])]
        if differ:
            names = ("batch_size", "examples", "epochs", "initial_epoch", "batches")
            rows = "; ".join(f"rank {r}: " + ", ".join(f"{n}={v}" for n, v in zip(names, every[r]))
                             for r in [0, *differ])
            raise DistributedError(f"DataParallel ({self.comm.where()}): ranks called fit "
                                   f"differently; expected every rank as rank 0, found {rows}",
                                   collective=True)

    def _start(self, session, fetches):
        """Check that every rank built the same training graph, then give every
        rank rank 0's values of the variables it reads and updates."""
        from graphnet.compiler.fetches import flatten
        graph = Graph(flatten(fetches)[0])
        self._check_same_graph(graph_text(graph))
        variables = [n for n in graph if isinstance(n.op, Variable)]
        broadcast_variables(session, variables, communicator=self.comm)

    def _check_same_graph(self, text: str):
        digest = np.frombuffer(hashlib.sha256(text.encode()).digest(), np.uint8)
        every = self.comm.allgather(digest, "the comparison of the ranks' training graphs")
        differ = [r for r in range(self.size) if not np.array_equal(every[r], every[0])]
        if not differ:
            return
        data = np.frombuffer(text.encode(), np.uint8)
        length = self.comm.bcast(np.array([data.size], np.int64), "the graph's length")
        theirs = data.copy() if self.rank == 0 else np.empty(int(length[0]), np.uint8)
        self.comm.bcast(theirs, "rank 0's graph")
        if self.rank in differ:
            first = _first_difference(theirs.tobytes().decode().splitlines(), text.splitlines())
            detail = f"first difference: {first}"
        else:
            detail = f"rank {differ[0]}'s error names the first differing line"
        raise DistributedError(
            f"DataParallel ({self.comm.where()}): the ranks built different training graphs "
            f"(hash of the graph the plan is compiled from and the variables' shapes); ranks "
            f"{', '.join(map(str, differ))} differ from rank 0. Every rank must build the "
            f"same model, optimizer and loss. {detail}", collective=True)

    # ----------------------------------------------------- random draws

    def _find_generators(self, loss):
        """Wrap the generators that random ops of the training graph own."""
        for node in Graph([loss]).nodes:
            own = getattr(node.op, "_generator", None) if node.op.random else None
            if own is not None and not isinstance(own, ShardedGenerator):
                sharded = ShardedGenerator(own)
                object.__setattr__(node.op, "_generator", sharded)
                self._generators.append(sharded)

    def _install_generators(self):
        if not isinstance(gn_random._generator, ShardedGenerator):
            gn_random._generator = ShardedGenerator(gn_random._generator)

    def _activate(self, rows):
        if rows is not None:
            self._install_generators()   # again, in case gn.random.seed replaced it
        if isinstance(gn_random._generator, ShardedGenerator):
            gn_random._generator.rows = rows
        for sharded in self._generators:
            sharded.rows = rows

    # ------------------------------------------------------------- logs

    def _reduce_logs(self, out: dict, local_rows: int, rows: int) -> dict:
        """out's loss as the global batch's mean, its metric statistics as sums over ranks."""
        if self.size == 1:
            return out
        parts = [np.array([float(out["loss"]) * local_rows, local_rows], np.float64)]
        for stats in out["metrics"]:
            parts += [np.asarray(v, np.float64).reshape(-1) for v in stats.values()]
        flat = self.comm.allreduce(np.concatenate(parts), "the sum of the step's loss and "
                                   "metrics over ranks")
        out = dict(out, loss=np.float64(flat[0] / flat[1]))
        at, metrics = 2, []
        for stats in out["metrics"]:
            summed = {}
            for key, value in stats.items():
                size = np.size(value)
                summed[key] = flat[at:at + size].reshape(np.shape(value))
                at += size
            metrics.append(summed)
        out["metrics"] = metrics
        return out


def graph_text(graph: Graph) -> str:
    """What ranks compare before their first step: the graph a training plan is
    compiled from, one line per node (its op with attributes, inputs, dtype and
    shape; the batch size left open, since shards may differ by a row), then
    the variables' dtypes and shapes. Names and memory addresses are left out:
    they may differ between equal programs."""
    local = {node: f"t{i}" for i, node in enumerate(graph)}
    lines = [f"{local[n]} = {n.op.label()}({', '.join(local[i] for i in n.inputs)}) :: "
             f"{type_string(n)}" for n in graph]
    lines += [f"variable {local[n]}: {type_string(n)}" for n in graph
              if isinstance(n.op, Variable)]
    return re.sub(r"0x[0-9a-fA-F]+", "0x?", "\n".join(lines))


def _first_difference(ours: list, theirs: list) -> str:
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return f"graph line {i + 1}: rank 0 has `{a[:160]}`, this rank has `{b[:160]}`"
    return (f"rank 0's graph has {len(ours)} lines, this rank's {len(theirs)}: "
            f"`{(ours + theirs)[min(len(ours), len(theirs))][:160]}`")
