"""Gradient averaging as graph ops: a bucketed, non-blocking, in-place allreduce.

`allreduce_gradients(grads)` gathers the gradients into buckets of about
`bucket_bytes`, in the order the backward pass computes them (node creation
order: the last layer's gradients first). Each bucket gets three kinds of
node:

    start_k  = AllreduceStart(g_a, g_b, ...)   # copy g * scale into the bucket's slice
                                               # of one flat buffer, MPI_Iallreduce it
    wait_k   = AllreduceWait(start_k)          # MPI_Test until done (with a deadline)
    g_a'     = BucketSlice(wait_k)             # a view: the summed gradient, reshaped

A plan runs nodes in a topological order that breaks ties by node id, so
each start node takes an id just after its last gradient's: it runs as soon
as that gradient exists, and its communication proceeds while the plan
computes the gradients of earlier layers. The waits, made last, run after the
whole backward pass, just before the updates that read them. (MPICH moves a
message only inside MPI calls, so each start also polls the requests still
in flight, and the waits poll until done.)

`scale` multiplies each rank's gradient as it is copied in: 1/size averages
equal shards; a strategy sets rows_r / rows_total per step when shards differ,
so the sum is always the gradient of the whole global batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from graphnet.distributed.comm import Communicator
from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, Variable, apply
from graphnet.shapes import format_shape

#: Default bucket size: gradients are sent in groups of about this many bytes.
BUCKET_BYTES = 1 << 20


class AllreduceGroup:
    """What the nodes of one `allreduce_gradients` call share: the flat
    buffers (one per dtype), the buckets, the requests in flight, the scale
    and the time spent communicating.

    `buckets[k]` is (dtype, start, stop, members); `members` index `grads`,
    and `slots[i]` is gradient i's (bucket, offset within the bucket).
    """

    def __init__(self, comm: Communicator, grads: list, bucket_bytes: int):
        if bucket_bytes <= 0:
            raise ValueError(f"bucket_bytes must be > 0, got {bucket_bytes}")
        self.comm = comm
        self.shapes = [g.shape for g in grads]
        self.scale = 1.0 / comm.size
        self.buckets, self.slots = [], [None] * len(grads)
        used: dict = {}          # dtype -> elements placed so far
        current = None           # [dtype, start, stop, members]
        for i in sorted(range(len(grads)), key=lambda i: grads[i].id):
            dtype, size = grads[i].dtype, int(np.prod(grads[i].shape, dtype=np.int64))
            full = current is not None and \
                (current[2] - current[1]) * dtype.itemsize >= bucket_bytes
            if current is None or current[0] != dtype or full:
                if current is not None:
                    self.buckets.append(tuple(current))
                start = used.get(dtype, 0)
                current = [dtype, start, start, []]
            self.slots[i] = (len(self.buckets), current[2] - current[1])
            current[2] += size
            current[3].append(i)
            used[dtype] = current[2]
        if current is not None:
            self.buckets.append(tuple(current))
        self.buckets = [(d, a, b, tuple(m)) for d, a, b, m in self.buckets]
        self.flat = {dtype: np.zeros(n, dtype) for dtype, n in used.items()}
        self.requests = [None] * len(self.buckets)
        self.seconds = {"start": 0.0, "wait": 0.0}
        self.runs = 0

    def view(self, bucket: int) -> np.ndarray:
        """Bucket `bucket`'s slice of its dtype's flat buffer."""
        dtype, start, stop, _ = self.buckets[bucket]
        return self.flat[dtype][start:stop]

    def start(self, bucket: int, grads) -> np.ndarray:
        begin = time.perf_counter()
        buffer = self.view(bucket)
        scale = buffer.dtype.type(self.scale)
        for i, g in zip(self.buckets[bucket][3], grads):
            offset = self.slots[i][1]
            part = buffer[offset:offset + np.size(g)]
            np.multiply(np.reshape(g, -1), scale, out=part)
        self.requests[bucket] = self.comm.iallreduce(buffer)
        for request in self.requests[:bucket]:   # progress the earlier buckets
            if request is not None:
                request.Test()
        self.seconds["start"] += time.perf_counter() - begin
        return buffer

    def wait(self, bucket: int) -> np.ndarray:
        begin = time.perf_counter()
        self.comm.wait(self.requests[bucket],
                       f"the allreduce of gradient bucket {bucket} ({self.describe(bucket)})")
        self.requests[bucket] = None
        self.seconds["wait"] += time.perf_counter() - begin
        if bucket == len(self.buckets) - 1:
            self.runs += 1
        return self.view(bucket)

    def describe(self, bucket: int) -> str:
        dtype, start, stop, members = self.buckets[bucket]
        return f"{len(members)} gradients, {stop - start:,} {dtype.name} values"

    def reset_timing(self):
        self.seconds = {"start": 0.0, "wait": 0.0}
        self.runs = 0

    def __repr__(self):
        return (f"AllreduceGroup({len(self.slots)} gradients in {len(self.buckets)} buckets, "
                f"{sum(b.nbytes for b in self.flat.values()):,} bytes)")


@dataclass(frozen=True, eq=False)
class AllreduceStart(Op):
    """Copy a bucket's gradients (times the group's scale) into its slice of
    the flat buffer and start summing it across ranks; the value is that slice."""

    random = True   # never folded, merged or fused: it communicates
    group: AllreduceGroup
    bucket: int

    __eq__, __hash__ = object.__eq__, object.__hash__  # each one communicates: never merged

    def infer(self, *grads):
        dtype, start, stop, members = self.group.buckets[self.bucket]
        for i, g in zip(members, grads):
            if g.shape != self.group.shapes[i] or g.dtype != dtype:
                raise ShapeError(f"gradient {i} is {g.dtype.name} {format_shape(g.shape)}; "
                                 f"bucket {self.bucket} holds {dtype.name} "
                                 f"{format_shape(self.group.shapes[i])}")
        return (stop - start,), dtype

    def forward(self, *grads):
        return self.group.start(self.bucket, grads)


@dataclass(frozen=True, eq=False)
class AllreduceWait(Op):
    """Wait for a bucket's sum (polling, with the communicator's deadline);
    the value is the bucket's slice, now summed over ranks."""

    random = True   # never folded, merged or fused: it communicates
    view = True
    group: AllreduceGroup
    bucket: int

    __eq__, __hash__ = object.__eq__, object.__hash__  # each one communicates: never merged

    def infer(self, started):
        return started.shape, started.dtype

    def forward(self, started):
        return self.group.wait(self.bucket)


@dataclass(frozen=True)
class BucketSlice(Op):
    """One gradient's part of a summed bucket, in its own shape (a view)."""

    view = True
    offset: int
    shape: tuple

    def infer(self, bucket):
        return self.shape, bucket.dtype

    def forward(self, bucket):
        size = int(np.prod(self.shape, dtype=np.int64))
        return bucket[self.offset:self.offset + size].reshape(self.shape)


def allreduce_gradients(grads, bucket_bytes: int = BUCKET_BYTES,
                        communicator: Communicator | None = None):
    """Gradients averaged over every rank, as graph nodes: one bucketed,
    non-blocking allreduce per bucket, in place on a flat buffer.

    `grads` is a list of gradient nodes (None stays None) or of (gradient,
    variable) pairs as `optimizer.compute_gradients` returns; the result has
    the same form. In a one-process run the gradients come back unchanged.

        >>> pairs = opt.compute_gradients(loss)
        >>> train = opt.apply_gradients(gn.distributed.allreduce_gradients(pairs))

    Each rank must feed equal shards for this to be the full batch's
    gradient (DataParallel handles unequal ones by weighting).
    """
    comm = communicator if communicator is not None else _world()
    reduced, _ = _allreduce(grads, comm, bucket_bytes)
    return reduced


def _allreduce(grads, comm: Communicator, bucket_bytes: int, force: bool = False) -> tuple:
    """(the averaged gradients in the form given, their AllreduceGroup or None)."""
    items = list(grads)
    pairs = bool(items) and all(isinstance(i, tuple) and len(i) == 2 for i in items)
    nodes = [g for g, _ in items] if pairs else items
    for i, g in enumerate(nodes):
        if g is not None and not isinstance(g, Node):
            raise TypeError(f"allreduce_gradients: gradient {i} is {type(g).__name__}, not a "
                            "graph node")
    present = [i for i, g in enumerate(nodes) if g is not None]
    if not present or (comm.size == 1 and not force):
        return list(items), None
    group = AllreduceGroup(comm, [nodes[i] for i in present], bucket_bytes)
    out = list(nodes)
    for k, (_, _, _, members) in enumerate(group.buckets):
        inputs = [nodes[present[i]] for i in members]
        start = apply(AllreduceStart(group, k), *inputs, name=f"allreduce_start_{k}")
        # Runs right after its last gradient: see the module docstring.
        start.id = max(g.id for g in inputs) + 0.5
        done = apply(AllreduceWait(group, k), start, name=f"allreduce_wait_{k}")
        for i in members:
            out[present[i]] = apply(BucketSlice(group.slots[i][1], group.shapes[i]), done,
                                    name="averaged_gradient")
    if pairs:
        return [(g, v) for g, (_, v) in zip(out, items)], group
    return out, group


def broadcast_variables(session, variables, root: int = 0,
                        communicator: Communicator | None = None):
    """Overwrite `variables` in `session` on every rank with root's values
    (what every rank does before its first step, so all start alike)."""
    comm = communicator if communicator is not None else _world()
    if comm.size == 1:
        return
    for var in variables:
        if not isinstance(var, Node) or not isinstance(var.op, Variable):
            raise TypeError(f"broadcast_variables: expected variable nodes, got {var!r}")
        value = np.array(session.get(var), order="C")   # a 0-d array stays 0-d
        comm.bcast(value, f"the broadcast of variable '{var.name}' from rank {root}", root)
        session.set(var, value)


def _world() -> Communicator:
    from graphnet.distributed import world
    return world()
