"""Fused elementwise kernels: fusion off, the NumPy backend, the Numba backend.

    python -m benchmarks.fusion                 # about a minute
    python -m benchmarks.fusion --quick         # a smoke run, seconds
    python -m benchmarks.fusion --profile       # plus cProfile of the seed step
    python -m benchmarks.fusion --costs         # only the per-element costs, below

Each workload is compiled three ways, all other passes on: without
`fuse_elementwise`, fused on the NumPy backend, fused on the Numba backend
(skipped when Numba is not installed). Variants are timed round-robin, and
each figure is the median over repeats of the mean time per call.

1. The seed MLP training step, graph level: Flatten 784 -> Dense 128 relu ->
   Dense 64 relu -> Dense 10, sparse softmax cross-entropy, Adam, batch 32;
   `gn.compile([loss, train])` run by a Session in a loop over random batches.
2. Adam's update alone for the seed MLP's 109,386 float32 parameters (six
   tensors, gradients fed), against the best NumPy sequence written by hand
   (in-place ufuncs over one flat buffer: DESIGN.md's ~183 us figure).
3. A 5-op chain on 4M float32 elements (DESIGN.md: 5.0 ms unfused, 3.35 ms
   in 32k-element chunks), with the NumPy backend chunked and not.
4. Bias add + ReLU on a 32x128 batch (DESIGN.md: 2.7 us as two NumPy calls,
   0.43 us as one jitted loop).

5. With --costs, instead: nanoseconds per element of each math function
   that compiler/kernels/cost.py prices, in a Numba loop and as NumPy
   kernels (1M elements of float32 and float64): the program `f(x * 0.5)`
   is timed on both backends, and the time of `x * 0.5 + 1.0` less one
   ordinary op (cost.OTHER) is taken off.

The environment is left alone (thread variables are printed as found).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import gc
import io
import os
import pstats
import time

import numpy as np

import graphnet as gn
from graphnet.compiler.kernels import cost, make_kernel, numba_available, numpy_backend
from graphnet.compiler.ops import Fused

SEED_SIZES = [784, 128, 64, 10]
BATCH = 32


def variants() -> dict:
    """name -> compile options."""
    out = {"fusion off": {"disable": ["fuse_elementwise"]}, "fused numpy": {"backend": "numpy"}}
    if numba_available():
        out["fused numba"] = {"backend": "numba"}
    return out


def timed(functions: dict, calls: int, repeats: int) -> dict:
    """{name: median seconds per call}, timing the functions round-robin."""
    for fn in functions.values():
        fn()
    samples = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            gc.collect()
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - start) / calls)
    return {name: float(np.median(s)) for name, s in samples.items()}


# -------------------------------------------------------------- workloads


def seed_step(options: dict):
    """(run one step, plan) for the seed MLP at the graph level."""
    gn.reset_names()
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 784), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    h = x
    for i, (fan_in, fan_out) in enumerate(zip(SEED_SIZES, SEED_SIZES[1:], strict=False)):
        w = gn.variable(gn.init.glorot_uniform((fan_in, fan_out), seed=i), name=f"dense_{i}/kernel")
        b = gn.variable(np.zeros(fan_out, np.float32), name=f"dense_{i}/bias")
        h = h @ w + b
        h = gn.relu(h) if fan_out != 10 else h
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, y))
    train = gn.optim.Adam(1e-3).minimize(loss)
    plan = gn.compile([loss, train], feeds=[x, y], feed_shapes={x: (BATCH, 784), y: (BATCH,)},
                      **options)
    images = rng.random((64 * BATCH, 784), dtype=np.float32)
    labels = rng.integers(0, 10, 64 * BATCH)
    sess, counter = gn.Session(), iter(range(1 << 62))

    def step():
        i = next(counter) % 64
        sess.run(plan, {x: images[i * BATCH:(i + 1) * BATCH], y: labels[i * BATCH:(i + 1) * BATCH]})
    return step, plan


def adam_update(options: dict):
    """(run one update, plan) for Adam over the seed MLP's parameters."""
    gn.reset_names()
    rng = np.random.default_rng(0)
    shapes = [s for a, b in zip(SEED_SIZES, SEED_SIZES[1:], strict=False) for s in ((a, b), (b,))]
    params = [gn.variable(rng.normal(size=s).astype(np.float32)) for s in shapes]
    grads = [gn.placeholder(s, "float32") for s in shapes]
    train = gn.optim.Adam(1e-3).apply_gradients(list(zip(grads, params, strict=True)))
    plan = gn.compile(train, feeds=grads, feed_shapes={g: g.shape for g in grads}, **options)
    feed = {g: rng.normal(size=g.shape).astype(np.float32) for g in grads}
    sess = gn.Session()
    return (lambda: sess.run(plan, feed)), plan


def hand_adam(n: int):
    """The best NumPy sequence: Adam over one flat buffer, in place."""
    rng = np.random.default_rng(0)
    w, g = rng.normal(size=n).astype(np.float32), rng.normal(size=n).astype(np.float32)
    m, v, t1, t2 = (np.zeros(n, np.float32) for _ in range(4))
    b1, b2, eps = np.float32(0.1), np.float32(0.001), np.float32(1e-7)
    state = {"t": 0}

    def update():
        state["t"] += 1
        alpha = np.float32(1e-3 * np.sqrt(1 - 0.999 ** state["t"]) / (1 - 0.9 ** state["t"]))
        np.subtract(g, m, out=t1)
        np.multiply(t1, b1, out=t1)
        np.add(m, t1, out=m)                  # m += (g - m) * (1 - beta_1)
        np.square(g, out=t1)
        np.subtract(t1, v, out=t1)
        np.multiply(t1, b2, out=t1)
        np.add(v, t1, out=v)                  # v += (g^2 - v) * (1 - beta_2)
        np.sqrt(v, out=t1)
        np.add(t1, eps, out=t1)
        np.multiply(m, alpha, out=t2)
        np.divide(t2, t1, out=t2)
        np.subtract(w, t2, out=w)             # w -= alpha m / (sqrt(v) + eps)
    return update


CHAINS = {  # two 5-op chains: memory-bound arithmetic, and with math functions
    "(((x * 0.5 - 1) * x + 2) * x": lambda x: ((x * 0.5 - 1.0) * x + 2.0) * x,
    "tanh(exp(x * 0.5 - 1) + x) * 2": lambda x: gn.tanh(gn.exp(x * 0.5 - 1.0) + x) * 2.0,
}


def chain(options: dict, n: int, expression: str):
    """(run, plan) for a 5-op chain on n float32 elements."""
    gn.reset_names()
    x = gn.placeholder((n,), "float32", name="x")
    out = CHAINS[expression](x)
    plan = gn.compile(out, feeds=[x], feed_shapes={x: (n,)}, **options)
    feed = {x: np.random.default_rng(0).normal(size=n).astype(np.float32)}
    return (lambda: plan([feed[x]], [])), plan


def bias_relu(options: dict):
    gn.reset_names()
    x = gn.placeholder((32, 128), "float32", name="x")
    b = gn.placeholder((128,), "float32", name="b")
    plan = gn.compile(gn.relu(x + b), feeds=[x, b], **options)
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(32, 128)).astype(np.float32),
              rng.normal(size=128).astype(np.float32)]
    return (lambda: plan(values, [])), plan


COSTED = {"exp": gn.exp, "erf": gn.erf, "sigmoid": gn.sigmoid, "softplus": gn.softplus,
          "tanh": gn.tanh, "log": gn.log, "log1p": gn.log1p, "sin": gn.sin, "cos": gn.cos,
          "leaky_relu": lambda x: gn.leaky_relu(x, 0.1)}


def per_element_costs(repeats: int, n: int = 1 << 20) -> str:
    """A table of ns per element of each COSTED function, loop and NumPy."""
    kernels = {}
    for dtype in ("float32", "float64"):
        rng = np.random.default_rng(0)
        normal, positive = rng.normal(0, 2, n).astype(dtype), rng.uniform(0.1, 4, n).astype(dtype)
        for name, f in {"base": lambda x: x + 1.0, **COSTED}.items():
            gn.reset_names()
            x = gn.placeholder((n,), dtype, name="x")
            plan = gn.compile(f(x * 0.5), feeds=[x], backend="numpy")
            value = positive if name in ("log", "log1p") else normal
            [op] = [s.nodes[-1].op for s in plan.steps if isinstance(s.nodes[-1].op, Fused)]
            out = np.empty(n, dtype)
            for backend in ("numba", "numpy"):
                kernel = make_kernel(dataclasses.replace(op, backend=backend))
                kernels[dtype, name, backend] = lambda k=kernel, v=value, o=out: k(v, out=o)
    times = timed(kernels, 10, repeats)
    rows = ["### ns per element (cost.py's PER_ELEMENT)", "",
            "| op | float32 loop | float32 NumPy | float64 loop | float64 NumPy |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for name in COSTED:
        cells = []
        for dtype in ("float32", "float64"):
            for backend, other in zip(("numba", "numpy"), cost.OTHER):
                extra = times[dtype, name, backend] - times[dtype, "base", backend]
                cells.append(f"{extra * 1e9 / n + other:.2f}")
        rows.append(f"| {name} | {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


@contextlib.contextmanager
def chunking(enabled: bool):
    saved = numpy_backend.CHUNK_ABOVE
    numpy_backend.CHUNK_ABOVE = saved if enabled else 1 << 62
    try:
        yield
    finally:
        numpy_backend.CHUNK_ABOVE = saved


# ---------------------------------------------------------------- report


def table(title: str, times: dict, unit: str, base: str, note: str = "") -> str:
    scale = {"us": 1e6, "ms": 1e3}[unit]
    rows = [f"### {title}", "", f"| variant | {unit} | vs {base} |", "| --- | ---: | ---: |"]
    for name, seconds in times.items():
        rows.append(f"| {name} | {seconds * scale:,.2f} | {times[base] / seconds:.2f}x |")
    return "\n".join(rows + ([f"\n{note}"] if note else []) + [""])


def compile_notes(plan) -> str:
    record = next((r for r in plan.applied if r.name == "fuse_elementwise"), None)
    lines = "; ".join(record.notes).splitlines() if record else []
    return next((line.strip() for line in lines if "numba loops" in line), "")


def profile_text(step, calls: int) -> str:
    step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        step()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(10)
    text = out.getvalue()
    return text[text.find("   ncalls"):].rstrip()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fusion",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few calls, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 7)")
    parser.add_argument("--profile", action="store_true", help="cProfile the seed step")
    parser.add_argument("--costs", action="store_true",
                        help="only ns per element of math functions (needs Numba)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 7)
    scale = 0.05 if args.quick else 1.0
    calls = lambda n: max(2, int(n * scale))  # noqa: E731
    threads = ", ".join(f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS",
                        "OMP_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT") if k in os.environ)
    print(f"# Fused elementwise kernels\n\nnumpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{threads or 'thread variables unset'}; numba "
          f"{'installed' if numba_available() else 'not installed'}\n")
    if args.costs:
        print(per_element_costs(repeats))
        return

    steps = {name: seed_step(opts) for name, opts in variants().items()}
    times = timed({k: v[0] for k, v in steps.items()}, calls(300), repeats)
    print(table("Seed MLP training step (784-128-64-10, batch 32, Adam)", times, "us",
                "fusion off", compile_notes(steps.get("fused numba", (0, None))[1])
                if "fused numba" in steps else ""))

    updates = {name: adam_update(opts)[0] for name, opts in variants().items()}
    updates["hand NumPy, flat buffer"] = hand_adam(109_386)
    times = timed(updates, calls(1000), repeats)
    print(table("Adam update of 109,386 float32 parameters (6 tensors; Session.run)", times,
                "us", "fusion off"))

    n = 4_000_000
    for expression in CHAINS:
        chains = {name: chain(opts, n, expression)[0] for name, opts in variants().items()}
        with chunking(False):
            chains["fused numpy, not chunked"] = chain({"backend": "numpy"}, n, expression)[0]
        times = timed(chains, calls(40), repeats)
        backend = chain({"backend": "numba"}, n, expression)[1].steps[-1].kernel \
            if numba_available() else "numpy"
        print(table(f"5-op chain {expression} on 4M float32", times, "ms", "fusion off",
                    f"chunks of {numpy_backend.CHUNK_BYTES // 4:,} float32 elements above "
                    f"{numpy_backend.CHUNK_ABOVE:,} elements; backend=\"numba\" ran it as "
                    f"{backend} (cost rule, compiler/kernels/cost.py)"))

    small = {name: bias_relu(opts)[0] for name, opts in variants().items()}
    times = timed(small, calls(20000), repeats)
    print(table("Bias add + ReLU on 32x128 (plan called directly)", times, "us", "fusion off"))

    if args.profile:
        for name, (step, _) in steps.items():
            print(f"### cProfile of the seed step, {name} ({calls(300)} steps)\n\n```\n"
                  f"{profile_text(step, calls(300))}\n```\n")


if __name__ == "__main__":
    main()
