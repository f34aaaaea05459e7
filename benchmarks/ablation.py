"""Workload: what each compiler pass buys. The seed MLP's and the Transformer
block's training steps compiled with every pass, with each pass switched off in
turn, and with all of them off; ms per step, interleaved, and the slowdown
against the full pipeline.

    python -m benchmarks --only ablation
"""

from __future__ import annotations

import numpy as np

import graphnet as gn
from benchmarks.harness import Context, Section, interleaved
from benchmarks.transformer import BATCH as BLOCK_BATCH
from benchmarks.transformer import block_from_ops, initial_weights, make_batches
from graphnet.compiler import PASS_NAMES


def _mlp_step(batch: int = 32):
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 784), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    h = x
    for i, (n_in, n_out) in enumerate(((784, 128), (128, 64), (64, 10))):
        w = gn.variable(gn.init.glorot_uniform((n_in, n_out), seed=i), name=f"dense_{i}/kernel")
        b = gn.variable(np.zeros(n_out, np.float32), name=f"dense_{i}/bias")
        h = h @ w + b
        h = gn.relu(h) if n_out != 10 else h
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, y))
    fetches = [loss, gn.optim.Adam(1e-3).minimize(loss)]
    feed = {x: rng.random((batch, 784), dtype=np.float32), y: rng.integers(0, 10, batch)}
    return fetches, feed


def _block_step(batch: int):
    (inputs, targets), weights = make_batches(batch), initial_weights()
    shape = inputs.shape[2:]
    x = gn.placeholder((None,) + shape, "float32", name="x")
    t = gn.placeholder((None,) + shape, "float32", name="target")
    out, named = block_from_ops(x, weights)
    loss = gn.mean(gn.square(out - t))
    fetches = [loss, gn.optim.Adam(1e-3).minimize(loss, var_list=list(named.values()))]
    return fetches, {x: inputs[0], t: targets[0]}


def _ablate(title: str, fetches, feed, steps: int, repeats: int) -> Section:
    shapes = {p: np.shape(v) for p, v in feed.items()}
    variants = {"all passes": gn.compile(fetches, feed_shapes=shapes)}
    for name in PASS_NAMES:
        variants[f"without {name}"] = gn.compile(fetches, feed_shapes=shapes, disable=[name])
    variants["no passes"] = gn.compile(fetches, optimize=False)
    sessions = {name: gn.Session() for name in variants}

    def runner(name):
        plan, sess = variants[name], sessions[name]

        def run():
            # From the initial weights each time: many steps on one batch drive
            # Adam's slots into denormal floats, which slow every kernel.
            sess.initialize(plan.variables)
            for _ in range(steps):
                sess.run(plan, feed)
        return run
    samples = interleaved({name: runner(name) for name in variants}, repeats)
    medians = {name: float(np.median(s)) / steps for name, s in samples.items()}
    full = medians["all passes"]
    rows = [[name, f"{ms * 1e3:.3f}", f"{ms / full:.2f}x", str(len(variants[name].steps))]
            for name, ms in medians.items()]
    notes = [f"medians of {repeats} interleaved repeats of {steps} steps from the initial "
             "weights (each variant has a Session of its own); a slowdown near 1.00x means "
             "the pass does little for this workload, or a later pass does its work too"]
    section = Section(title, ["compiled with", "ms per step", "vs all passes", "plan steps"],
                      rows, notes)
    section.figures.update({f"ablation.{name}": ms for name, ms in medians.items()})
    return section


def run(ctx: Context) -> list:
    steps = 5 if ctx.quick else 20
    mlp = _ablate("Ablation: the seed MLP's training step (batch 32, Adam) with each pass off",
                  *_mlp_step(), steps, ctx.repeats)
    block = _ablate(f"Ablation: the Transformer block's training step (batch "
                    f"{4 if ctx.quick else BLOCK_BATCH}) with each pass off",
                    *_block_step(4 if ctx.quick else BLOCK_BATCH), max(1, steps // 5),
                    ctx.repeats)
    return [mlp, block]
