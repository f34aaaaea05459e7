"""Threads as users get them (issue #17): each graphnet workload at the
machine's default BLAS threads, with the compiler's per-plan thread choice
(graphnet/compiler/threads.py) on and off, and at one thread.

Variants, interleaved round-robin in one process, from the same weights:

- "choice off": the plan leaves OpenBLAS alone (`plan.threads.fix(None)`),
  so its products use OpenBLAS's default, every core;
- "choice on": the plan times its first runs at 1 thread and at the
  default and settles on the faster (`plan.threads.auto()`; opt-in, as
  GRAPHNET_BLAS_THREADS=auto);
- "1 thread": `plan.threads.fix(1)`, what `--blas-threads 1` gives graphnet;
- JAX jit (seed MLP and Transformer block) with XLA's default threading.

Run it without --blas-threads (that pins every peer to one thread):

    python -m benchmarks.threads_choice [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import lenet, mlp, seed_mlp, transformer, wide_mlp
from benchmarks.harness import Context, Trainer, compare, timing_section

#: How each variant sets its plans' thread choice, and its label suffix.
MODES = {"off": "choice off (default threads)", "auto": "choice on",
         "one": "1 thread"}


class Choice(Trainer):
    """A graphnet trainer whose plans run with one thread choice (`how` in
    MODES), applied to each plan the first time it is seen (plans compiled
    during the first steps included), so that an automatic choice is made
    once and kept across repeats, as in a user's process."""

    traced = True

    def __init__(self, inner: Trainer, how: str, name: str):
        self.inner, self.how = inner, how
        self.role, self.label = f"{name}_{how}", f"graphnet {name}, {MODES[how]}"
        self.seen = set()

    def plans(self) -> list:
        found = [self.inner.plan] if hasattr(self.inner, "plan") else []
        for owner in (self.inner, getattr(self.inner, "model", None)):
            session = getattr(owner, "session", None)
            found += list(getattr(session, "_plans", {}).values())
        return found

    def apply(self):
        for plan in self.plans():
            if id(plan) not in self.seen:
                self.seen.add(id(plan))
                if self.how == "auto":
                    plan.threads.auto()
                else:
                    plan.threads.fix(1 if self.how == "one" else None, f"benchmark: {self.how}")

    def reset(self):
        self.inner.reset()
        self.apply()

    def step(self, i):
        return self.inner.step(i)

    def run(self, steps, on_step=None):
        self.apply()
        loss = self.inner.run(steps, on_step)
        self.apply()
        return loss

    def choices(self) -> str:
        return "; ".join(str(p.threads) for p in self.plans())


def variants(make, name: str) -> list:
    """One Choice per mode, each over a trainer of its own from `make()`."""
    return [Choice(make(), how, name) for how in MODES]


def section(title: str, key: str, trainers: list, steps: int, repeats: int, unit: str,
            scale: float, reference: str, check_steps: int):
    timings, notes, ok = compare(trainers, steps, repeats, check_steps=check_steps,
                                 reference=reference, alloc_steps=0)
    notes.append(f"{steps} steps per timed run")
    for t in timings:
        if isinstance(t.trainer, Choice) and t.trainer.how == "auto":
            notes.append(f"{t.trainer.label}: {t.trainer.choices()}")
    result = timing_section(title, timings, unit, scale, notes, ok, key=key)
    by_role = {t.trainer.role: t for t in timings}
    for name in {t.trainer.role.rsplit("_", 1)[0] for t in timings if "_" in t.trainer.role}:
        off, on = by_role.get(f"{name}_off"), by_role.get(f"{name}_auto")
        one = by_role.get(f"{name}_one")
        if off and on and one:
            result.notes.append(f"{name}: choice on / off {on.median / off.median:.2f}x, "
                                f"choice on / 1 thread {on.median / one.median:.2f}x (medians)")
        jax = by_role.get("jax")
        if on and jax:
            result.notes.append(f"{name}: choice on / JAX jit {on.median / jax.median:.2f}x, "
                                f"choice off / JAX jit {off.median / jax.median:.2f}x")
    return result


def run(ctx: Context) -> list:
    """One section per workload."""
    data = ctx.mnist()
    sections = []
    sizes, batch = seed_mlp.SIZES, seed_mlp.BATCH
    steps = 40 if ctx.quick else len(data.x) // batch
    weights = mlp.initial_weights(sizes)
    trainers = variants(lambda: mlp.GraphnetPlan(data, sizes, batch, weights), "plan")
    trainers += variants(lambda: mlp.GraphnetFit(data, sizes, batch, weights), "fit")
    trainers.append(mlp.NumpyMLP(data, sizes, batch, weights))
    if ctx.jax:
        trainers.append(mlp.JaxMLP(ctx.jax, data, sizes, batch, weights))
    sections.append(section(f"Seed MLP, default threads: one MNIST epoch ({steps} steps)",
                            "threads_seed", trainers, steps, ctx.repeats, "s", 1.0,
                            "numpy", 5 if ctx.quick else 50))

    sizes, batch = wide_mlp.SIZES, 32 if ctx.quick else wide_mlp.BATCH
    steps = 3 if ctx.quick else wide_mlp.STEPS
    weights = mlp.initial_weights(sizes, seed=10)
    trainers = variants(lambda: mlp.GraphnetPlan(data, sizes, batch, weights), "plan")
    trainers.append(mlp.NumpyMLP(data, sizes, batch, weights))
    sections.append(section(f"Wide MLP 784-1024-1024-10, batch {batch}, default threads",
                            "threads_wide", trainers, steps, ctx.repeats, "s per epoch",
                            60000 / batch / steps, "numpy", 3 if ctx.quick else 10))

    batch, steps = (16, 3) if ctx.quick else (lenet.BATCH, lenet.STEPS)
    trainers = variants(lambda: lenet.GraphnetLeNet(data, batch), "plan")
    sections.append(section(f"LeNet-5, batch {batch}, default threads: one training step",
                            "threads_lenet", trainers, steps, ctx.repeats, "ms", 1000 / steps,
                            "plan_off", 3 if ctx.quick else 10))

    batch, steps = (4, 2) if ctx.quick else (transformer.BATCH, transformer.STEPS)
    batches, weights = transformer.make_batches(batch), transformer.initial_weights()
    trainers = variants(lambda: transformer.GraphnetBlock(batches, weights), "plan")
    if ctx.jax:
        trainers.append(transformer.JaxBlock(ctx.jax, batches, weights))
    sections.append(section(f"Transformer block, batch {batch}, default threads: one step",
                            "threads_transformer", trainers, steps, ctx.repeats, "ms",
                            1000 / steps, "jax" if ctx.jax else "plan_off",
                            2 if ctx.quick else 5))
    return sections


def main(argv=None) -> int:
    from benchmarks import harness
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-jax", action="store_true")
    parser.add_argument("--data", help="mnist.npz or its folder")
    args = parser.parse_args(argv)
    jax = None if args.no_jax else harness.import_jax(one_thread=False)[0]
    ctx = Context(repeats=1 if args.quick else args.repeats, quick=args.quick, jax=jax,
                  data_path=args.data)
    print("\n".join(f"- {line}" for line in harness.environment(None, "not used", jax)) + "\n")
    ok = True
    for s in run(ctx):
        print(s.markdown(), flush=True)
        ok = ok and s.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
