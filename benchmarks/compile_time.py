"""Compile time versus graph size: chains and MLP training steps, 10 to 2,000 nodes.

    python -m benchmarks.compile_time [--repeats 7] [--sizes 10 30 100 300 1000 2000]

For each graph it times `gn.compile` as Session.run calls it (specialised to
the fed shapes, all passes) and with optimize=False, and splits the optimized
time into building the sorted Graph, the passes, and generating the plan
(best of --repeats runs each: the machine is shared).
The last line fits time ~ nodes**k over the sizes from 100 up: k should stay
near 1 (linear), well below 2 (quadratic).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import graphnet as gn


def chain(target: int):
    """x -> a long chain of elementwise ops -> sum, about `target` nodes."""
    gn.reset_names()
    x = gn.placeholder((None, 16), "float32", name="x")
    steps = [(gn.tanh, 1), (lambda v: v * 1.01, 2), (lambda v: v + 0.1, 2), (gn.sigmoid, 1)]
    h, nodes, i = x, 2, 0  # the placeholder and the final sum
    while nodes < target:
        step, added = steps[i % len(steps)]
        h, nodes, i = step(h), nodes + added, i + 1
    return [gn.sum(h)], {x: (32, 16)}


def mlp(target: int):
    """An MLP training step (loss, gradients, SGD assign_sub updates) of
    about `target` nodes: as many 8-unit layers as fit (at least one)."""
    one, two = (len(gn.Graph(_mlp(n)[0])) for n in (1, 2))
    layers = max(1, 1 + (target - one) // (two - one))
    return _mlp(layers)


def _mlp(layers: int):
    gn.reset_names()
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 8), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    h, params = x, []
    for i in range(layers):
        w = gn.variable(rng.normal(size=(8, 8)).astype(np.float32), name=f"w{i}")
        b = gn.variable(np.zeros(8, np.float32), name=f"b{i}")
        h = gn.relu(h @ w + b)
        params += [w, b]
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, y))
    grads = gn.gradients(loss, params)
    step = gn.group([gn.assign_sub(p, 0.1 * g) for p, g in zip(params, grads, strict=True)])
    return [loss, step], {x: (32, 8), y: (32,)}


def best_of(repeats: int, fn) -> float:
    """The fastest of `repeats` runs: the least disturbed by other processes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(kind: str, build, target: int, repeats: int) -> dict:
    fetches, shapes = build(target)
    nodes = len(gn.Graph(fetches))
    plans = [gn.compile(fetches, feed_shapes=shapes) for _ in range(repeats)]
    plan = plans[0]
    graph_s = best_of(repeats, lambda: gn.Graph(fetches))
    total_s = best_of(repeats, lambda: gn.compile(fetches, feed_shapes=shapes))
    plain_s = best_of(repeats, lambda: gn.compile(fetches, optimize=False))
    passes_s = min(sum(r.seconds for r in p.applied) for p in plans)
    return dict(kind=kind, nodes=nodes, after=len(plan.graph), total=total_s, plain=plain_s,
                graph=graph_s, passes=passes_s, codegen=max(total_s - graph_s - passes_s, 0.0))


def slope(rows: list) -> float:
    big = [r for r in rows if r["nodes"] >= 100]
    if len(big) < 2:
        return float("nan")
    nodes, seconds = [r["nodes"] for r in big], [r["total"] for r in big]
    return float(np.polyfit(np.log(nodes), np.log(seconds), 1)[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300, 1000, 2000])
    args = parser.parse_args(argv)
    print(f"{'graph':<6} {'nodes':>6} {'after':>6} {'compile ms':>11} {'us/node':>8} "
          f"{'no-opt ms':>10} {'Graph ms':>9} {'passes ms':>10} {'codegen ms':>11}")
    for kind, build in [("chain", chain), ("mlp", mlp)]:
        rows = []
        for size in args.sizes:
            r = measure(kind, build, size, args.repeats)
            rows.append(r)
            print(f"{kind:<6} {r['nodes']:>6} {r['after']:>6} {r['total'] * 1e3:>11.2f} "
                  f"{r['total'] / r['nodes'] * 1e6:>8.1f} {r['plain'] * 1e3:>10.2f} "
                  f"{r['graph'] * 1e3:>9.2f} {r['passes'] * 1e3:>10.2f} "
                  f"{r['codegen'] * 1e3:>11.2f}")
        print(f"{kind}: compile time ~ nodes ** {slope(rows):.2f} (100 nodes and up)")


if __name__ == "__main__":
    main()
