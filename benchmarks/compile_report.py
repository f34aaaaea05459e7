"""Workload 5: compile time versus graph size, as a table of the suite.

The graphs and the measurements are `benchmarks/compile_time.py`'s (also
runnable alone: `python -m benchmarks.compile_time`): chains of elementwise
ops and MLP training steps of 10 to 2,000 nodes, compiled as Session.run
compiles them. The growth exponent k of time ~ nodes**k is fitted from 100
nodes up: near 1 is linear, 2 quadratic.

    python -m benchmarks --only compile
"""

from __future__ import annotations

import math

from benchmarks import compile_time
from benchmarks.harness import Context, Section

SIZES = [10, 30, 100, 300, 1000, 2000]
QUICK_SIZES = [10, 100]


def run(ctx: Context) -> list:
    """One table: per graph, nodes and the split of its compile time."""
    sizes = QUICK_SIZES if ctx.quick else SIZES
    repeats = 1 if ctx.quick else max(3, ctx.repeats)
    header = ["graph", "nodes", "after passes", "compile (ms)", "us per node",
              "optimize=False (ms)", "Graph (ms)", "passes (ms)", "codegen (ms)"]
    rows, figures, notes = [], {}, []
    biggest, exponents = [], []
    for kind, build in (("chain", compile_time.chain), ("MLP step", compile_time.mlp)):
        measured = [compile_time.measure(kind, build, size, repeats) for size in sizes]
        for r in measured:
            rows.append([kind, str(r["nodes"]), str(r["after"]), f"{r['total'] * 1e3:.1f}",
                         f"{r['total'] / r['nodes'] * 1e6:.0f}", f"{r['plain'] * 1e3:.1f}",
                         f"{r['graph'] * 1e3:.1f}", f"{r['passes'] * 1e3:.1f}",
                         f"{r['codegen'] * 1e3:.1f}"])
            if r["nodes"] >= 1900:
                biggest.append(r["total"])
        k = compile_time.slope(measured)
        if not math.isnan(k):
            exponents.append(k)
            notes.append(f"{kind}: compile time ~ nodes ** {k:.2f} (fitted from 100 nodes up)")
    if biggest:
        figures["compile.2000"] = max(biggest)
    if exponents:
        figures["compile.exponent"] = max(exponents)
    notes.append(f"best of {repeats} compiles each (the least disturbed by other processes); "
                 "see benchmarks/compile_time.py")
    return [Section("Compile time versus graph size", header, rows, notes, figures)]
