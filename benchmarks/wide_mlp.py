"""Workload 2: a wide MLP 784-1024-1024-10 at batch 256 with Adam, where
matrix products dominate: graphnet's compiled plan, the hand-written NumPy
trainer, the BLAS floor and PyTorch eager, over a fixed number of steps,
reported per epoch-equivalent (60,000 / 256 = 234.4 steps).

    python -m benchmarks --only wide
"""

from __future__ import annotations

from benchmarks.harness import Context, compare, profile, timing_section
from benchmarks.mlp import BlasFloor, GraphnetPlan, NumpyMLP, TorchMLP, initial_weights

SIZES = [784, 1024, 1024, 10]
BATCH = 256
STEPS = 50


def run(ctx: Context) -> list:
    """The wide MLP's section."""
    data = ctx.mnist()
    steps = 3 if ctx.quick else STEPS
    batch = 32 if ctx.quick else BATCH  # quick: a tiny batch, for smoke runs
    epoch_steps = 60000 / batch
    weights = initial_weights(SIZES, seed=10)
    trainers = [GraphnetPlan(data, SIZES, batch, weights),
                GraphnetPlan(data, SIZES, batch, weights, arenas=False),
                NumpyMLP(data, SIZES, batch, weights),
                BlasFloor(data, SIZES, batch, weights)]
    if ctx.torch:
        trainers.append(TorchMLP(ctx.torch, data, SIZES, batch, weights))
    timings, notes, ok = compare(trainers, steps, ctx.repeats, check_steps=3 if ctx.quick else 10,
                                 alloc_steps=2 if ctx.quick else 3)
    notes.append(f"timed over {steps} steps, scaled to one epoch ({epoch_steps:.1f} steps); "
                 f"{trainers[2].flat.size:,} parameters, flat Adam in "
                 f"{len(trainers[2].flat.chunks)} chunks")
    section = timing_section(f"Wide MLP 784-1024-1024-10, batch {batch}, Adam",
                             timings, "s per epoch", epoch_steps / steps, notes, ok, key="wide")
    if ctx.profile:
        section.details.append(profile(trainers[0], steps))
    return [section]
