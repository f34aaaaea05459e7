"""Workload 1, the seed: Flatten 784 -> Dense 128 relu -> Dense 64 relu ->
Dense 10 softmax, sparse categorical cross-entropy, Adam 1e-3, batch 32,
one epoch of MNIST (1,875 steps).

Variants: graphnet's model.fit; graphnet's compiled plan of [loss, update]
in a plain loop (framework overhead without the model API); the same plan
with every compiler pass off; the hand-written NumPy trainer; the BLAS
floor; PyTorch eager and JAX jit (optional peers). All start from the same
weights and see the same batches in the same order.

    python -m benchmarks --only seed
"""

from __future__ import annotations

from benchmarks.harness import Context, compare, per_call_costs, profile, timing_section
from benchmarks.mlp import (
    BlasFloor,
    GraphnetFit,
    GraphnetPlan,
    JaxMLP,
    NumpyMLP,
    TorchMLP,
    initial_weights,
)

SIZES = [784, 128, 64, 10]
BATCH = 32


def run(ctx: Context) -> list:
    """The seed workload's section."""
    data = ctx.mnist()
    steps = 20 if ctx.quick else len(data.x) // BATCH
    weights = initial_weights(SIZES)
    trainers = [GraphnetFit(data, SIZES, BATCH, weights),
                GraphnetPlan(data, SIZES, BATCH, weights),
                GraphnetPlan(data, SIZES, BATCH, weights, arenas=False),
                GraphnetPlan(data, SIZES, BATCH, weights, optimize=False),
                NumpyMLP(data, SIZES, BATCH, weights),
                BlasFloor(data, SIZES, BATCH, weights)]
    if ctx.torch:
        trainers.append(TorchMLP(ctx.torch, data, SIZES, BATCH, weights))
    if ctx.jax:
        trainers.append(JaxMLP(ctx.jax, data, SIZES, BATCH, weights))
    timings, notes, ok = compare(trainers, steps, ctx.repeats, check_steps=5 if ctx.quick else 50)
    losses = ", ".join(f"{t.trainer.label} {t.loss:.4f}" for t in timings if t.loss == t.loss)
    notes.append(f"mean training loss of the last timed run ({steps} steps): {losses}")
    by_role = {t.trainer.role: t.median for t in timings}
    speedup = by_role["graphnet_nopasses"] / by_role["graphnet"]
    notes.append(f"compiler passes on vs off: {speedup:.2f}x faster with passes")
    plan_trainer = trainers[1]
    xb, yb = data.batch(0, BATCH)
    note, costs = per_call_costs(plan_trainer.session, plan_trainer.plan,
                                 {plan_trainer.x: xb, plan_trainer.y: yb},
                                 20 if ctx.quick else 400, 3 * ctx.repeats)
    notes.append(f"per training step, {note}")
    notes.append(f"data: {data.source}, shuffled once (seed 0); every variant sees the same "
                 "batches in the same order")
    what = f"one MNIST epoch ({steps} steps)" if steps * BATCH == len(data.x) \
        else f"{steps} steps (quick)"
    section = timing_section(
        f"Seed MLP 784-128-64-10, batch {BATCH}, Adam: {what}",
        timings, "s", 1.0, notes, ok, key="seed")
    section.figures.update({f"seed.overhead.{part}": seconds for part, seconds in costs.items()})
    if ctx.profile:
        section.details.append(profile(trainers[1], min(steps, 200)))
    return [section]
