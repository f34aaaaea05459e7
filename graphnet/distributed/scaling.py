"""A model on paper of data-parallel efficiency, from measured allreduce costs.

An allreduce of n bytes over N ranks, with MPICH's algorithm for large
messages (reduce-scatter then allgather, Rabenseifner's), costs

    T(n, N) = 2 ceil(log2 N) alpha + 2 (N - 1) / N * n * beta

(alpha: the latency of one message step, beta: seconds per byte). On 2
ranks that is 2 alpha + n beta, so a straight line fitted to 2-rank
measurements of t against n gives alpha = intercept / 2 and beta = slope.

A step sends every bucket once: C(N) = sum over buckets of T(bytes_k, N).
With the per-rank batch fixed (weak scaling) the compute time per step Tc
does not change with N, and the efficiency lies between

    no overlap:    Tc / (Tc + C(N))
    full overlap:  Tc / (Tc + max(C(N) - backward, T(last bucket, N)))

where `backward` is the part of the step that the buckets' communication
can hide behind (the backward pass after the first bucket is ready, about
two thirds of Tc for an MLP), and the last bucket, started when the
backward pass ends, can never be hidden.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AllreduceCost:
    """alpha (s per message step) and beta (s per byte) of one allreduce."""

    alpha: float
    beta: float

    @classmethod
    def fit_two_ranks(cls, sizes_bytes, seconds) -> AllreduceCost:
        """From 2-rank timings of allreduces of `sizes_bytes`: t = 2 alpha + n beta,
        fitted for relative error (weights 1/t), so the small messages, which
        measure alpha, count as much as the large ones, which measure beta."""
        n = np.asarray(sizes_bytes, np.float64)
        t = np.asarray(seconds, np.float64)
        slope, intercept = np.polyfit(n, t, 1, w=1 / t)
        return cls(alpha=max(float(intercept), 0.0) / 2, beta=max(float(slope), 0.0))

    def seconds(self, nbytes: float, ranks: int) -> float:
        """T(n, N): one allreduce of `nbytes` over `ranks` ranks (0 for one rank)."""
        if ranks <= 1:
            return 0.0
        steps = math.ceil(math.log2(ranks))
        return 2 * steps * self.alpha + 2 * (ranks - 1) / ranks * nbytes * self.beta

    @property
    def bandwidth(self) -> float:
        """Bytes per second (1 / beta)."""
        return math.inf if self.beta == 0 else 1.0 / self.beta


def buckets_of(total_bytes: int, bucket_bytes: int) -> list:
    """Bucket sizes in bytes for `total_bytes` of gradients in buckets of `bucket_bytes`."""
    full, rest = divmod(int(total_bytes), int(bucket_bytes))
    return [bucket_bytes] * full + ([rest] if rest else [])


def efficiency(cost: AllreduceCost, compute: float, buckets: list, ranks: int,
               backward_share: float = 2 / 3) -> tuple:
    """(no-overlap, full-overlap) efficiency of one step on `ranks` ranks:
    `compute` seconds of work per rank, gradients sent in `buckets` (bytes)."""
    comm = sum(cost.seconds(b, ranks) for b in buckets)
    last = cost.seconds(buckets[-1], ranks) if buckets else 0.0
    exposed = max(comm - backward_share * compute, last)
    return compute / (compute + comm), compute / (compute + exposed)
