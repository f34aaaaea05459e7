"""Workload: memory. The peak memory of a training step of the seed MLP,
LeNet-5 and the Transformer block, graphnet against PyTorch eager.

Each variant runs in a fresh child process (`python -m benchmarks.memory
--child VARIANT WORKLOAD`), so one's arenas and caches never count against
another's. The child imports its framework, makes the data, then resets
the kernel's high-water mark of its resident memory (/proc/self/clear_refs)
and reports:

- first model: the most resident memory above that point while it builds
  the model, compiles (graphnet: plans and Numba loops) and runs 2 steps,
  the process's one-time costs included;
- one more model: the same model built again in that process: the memory it
  holds after 22 steps (weights, slots, buffers) and its peak while built;
- step peak: the most a steady-state step needs above what is held.

For graphnet the parent also reports what the compiled plan holds (every
intermediate buffer, allocated once) and its planned peak, from
`plan.memory()`, and tracemalloc's peak of a steady-state step (NumPy's and
Python's heaps; the plan allocates next to nothing).

    python -m benchmarks --only memory
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from benchmarks.harness import Context, Section, format_bytes, transient_bytes

WORKLOADS = ("seed", "lenet", "transformer")
TITLES = {"seed": "seed MLP, batch 32", "lenet": "LeNet-5, batch 64",
          "transformer": "Transformer block, batch 32"}
STEPS = 20


def workload_data(workload: str, quick: bool = False):
    """The inputs a workload's trainers read (made before anything is measured)."""
    from benchmarks import harness, transformer
    if workload == "transformer":
        return transformer.make_batches(4 if quick else transformer.BATCH), \
            transformer.initial_weights()
    return harness.load_mnist(synthetic=True, n=2048)


def trainer(variant: str, workload: str, data, torch=None):
    """The benchmark's own trainer for a variant ("graphnet" or "torch") of a workload."""
    from benchmarks import lenet, mlp, transformer
    if workload == "seed":
        sizes, weights = [784, 128, 64, 10], mlp.initial_weights([784, 128, 64, 10])
        return mlp.GraphnetPlan(data, sizes, 32, weights) if variant == "graphnet" else \
            mlp.TorchMLP(torch, data, sizes, 32, weights)
    if workload == "lenet":
        graphnet = lenet.GraphnetLeNet(data, lenet.BATCH)
        return graphnet if variant == "graphnet" else \
            lenet.TorchLeNet(torch, data, graphnet.weights, lenet.BATCH)
    batches, weights = data
    return transformer.GraphnetBlock(batches, weights) if variant == "graphnet" else \
        transformer.TorchBlock(torch, batches, weights)


# ------------------------------------------------------------------ child


def _rss() -> tuple:
    """(resident now, its high-water mark) in bytes, from /proc/self/status."""
    values = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def _reset_peak():
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")   # resets VmHWM to the current resident size


def child(variant: str, workload: str, quick: bool) -> dict:
    """Measured in this process: see the module's docstring."""
    torch = None
    if variant == "torch":
        import torch
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    import graphnet  # noqa: F401  (both sides import it: the baseline covers it)
    data = workload_data(workload, quick)

    def build():
        t = trainer(variant, workload, data, torch)
        t.reset()
        t.run(2)
        return t

    start, _ = _rss()
    _reset_peak()
    first = build()            # pays what a process pays once: JIT, lazy initialisation
    base, first_peak = _rss()
    _reset_peak()
    second = build()           # the same model again: what one more model costs
    before_steps, build_peak = _rss()
    _reset_peak()
    second.run(STEPS)
    after, step_peak = _rss()
    del first
    return {"first": first_peak - start, "build_peak": build_peak - base,
            "held": after - base, "step_peak": step_peak - before_steps}


def _measure(variant: str, workload: str, quick: bool) -> dict:
    command = [sys.executable, "-m", "benchmarks.memory", "--child", variant, workload]
    if quick:
        command.append("--quick")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"memory child {variant} {workload} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------- parent


def run(ctx: Context) -> list:
    if not os.path.exists("/proc/self/clear_refs"):
        return [Section("Memory of a training step", ["workload"], [],
                        ["skipped: needs Linux's /proc/self/status and clear_refs"])]
    variants = {"graphnet": "graphnet", **({"torch": "PyTorch"} if ctx.torch else {})}
    header = ["workload", "graphnet plan buffers (planned peak)", "graphnet step, tracemalloc"]
    for label in variants.values():
        header += [f"{label}: first model", f"{label}: one more model (peak while built)",
                   f"{label}: step peak"]
    rows, figures = [], {}
    for workload in WORKLOADS:
        t = trainer("graphnet", workload, workload_data(workload, ctx.quick))
        report = t.plan.memory()
        traced = transient_bytes(t, 2 if ctx.quick else 5)
        title = "Transformer block, batch 4 (quick)" if ctx.quick and workload == "transformer" \
            else TITLES[workload]
        row = [title, f"{format_bytes(report.held)} ({format_bytes(report.peak)})",
               format_bytes(traced)]
        for variant in variants:
            m = _measure(variant, workload, ctx.quick)
            row += [format_bytes(m["first"]),
                    f"{format_bytes(m['held'])} ({format_bytes(m['build_peak'])})",
                    format_bytes(m["step_peak"])]
            figures.update({f"memory.{workload}.{variant}.{k}": float(n) for k, n in m.items()})
        figures[f"memory.{workload}.graphnet.plan"] = float(report.held)
        rows.append(row)
    notes = ["resident memory (RSS) of a fresh child process per variant; first model: the "
             "peak above the process after importing its framework and making the data, while "
             "it builds the model, compiles and runs 2 steps (one-time costs included: Numba "
             "compiling graphnet's fused loops with LLVM, PyTorch's lazy initialisation); one "
             "more model: the same model built again in that process, held after "
             f"2 + {STEPS} steps (weights, optimizer slots, plan buffers or cached "
             "activations) and its peak while being built; step peak: the most a step needs "
             "above what is held",
             "plan buffers: every intermediate of the compiled step, allocated once when the "
             "plan is made and reused every step (the memory planner shares a buffer between "
             "values whose lifetimes do not overlap); tracemalloc: the most a steady-state step "
             "allocates on NumPy's and Python's heaps"]
    if not ctx.torch:
        notes.append("PyTorch columns skipped: torch not importable or --no-torch")
    return [Section("Memory of a training step", header, rows, notes, figures)]


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], "--quick" in sys.argv)))
    else:
        sys.exit("usage: python -m benchmarks.memory --child graphnet|torch seed|lenet|"
                 "transformer [--quick]  (run the workload with python -m benchmarks "
                 "--only memory)")
