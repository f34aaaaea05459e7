"""Workload: data-parallel training on MPI (`gn.distributed.DataParallel`),
1 process against 2 ranks, for the seed MLP (batch 32) and the wide MLP
(batch 256), through `model.fit` on MNIST; then the measured allreduce
latency and bandwidth, and the efficiency they predict for 8, 64 and 512
ranks (graphnet/distributed/scaling.py), checked against 2 ranks.

Each configuration runs in its own `mpiexec -n P` job (this module again,
with --worker); every process gets one BLAS thread (OPENBLAS_NUM_THREADS=1,
so 2 ranks use the 2 cores), plus a 1-process row with 2 BLAS threads.
Rows: strong scaling (the same global batch split over 2 ranks) and weak
scaling (each rank keeps the 1-process batch; the global batch doubles).

    python -m benchmarks --only distributed
    python -m benchmarks.distributed          # this workload alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.harness import Context, Section

WORKLOADS = {"seed": ([784, 128, 64, 10], 32, 400), "wide": ([784, 1024, 1024, 10], 256, 40)}
SIZES_BYTES = [8 << k for k in range(0, 21, 2)]    # 8 B ... 8 MiB
BUCKET_BYTES = 1 << 20
RANKS = (2, 8, 64, 512)


def run(ctx: Context) -> list:
    """The distributed sections (or one saying why they were skipped)."""
    launcher = shutil.which("mpiexec")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        launcher = None
    if launcher is None:
        return [Section("Data-parallel training on MPI", ["skipped"], [[
            "needs mpi4py and mpiexec: pip install 'graphnet[mpi]'"]])]
    quick = ctx.quick
    results, rows = {}, []
    for name, (sizes, batch, steps) in WORKLOADS.items():
        steps = 10 if quick else steps
        configs = [(1, batch, 1), (1, batch, 2), (2, batch, 1), (2, 2 * batch, 1)]
        for procs, global_batch, threads in configs:
            result = _launch(launcher, procs, threads, ["train", name, str(global_batch),
                                                         str(steps), str(ctx.repeats)], ctx)
            results[(name, procs, global_batch, threads)] = result
        base = results[(name, 1, batch, 1)]["images_per_s"]
        for (wname, procs, global_batch, threads), r in results.items():
            if wname != name:
                continue
            kind = "1 process" if procs == 1 else \
                ("strong" if global_batch == batch else "weak")
            comm = r["start"] + r["wait"] + r["metrics"]
            rows.append([f"{name} MLP {'-'.join(map(str, sizes))}", f"{procs}", kind,
                         f"{global_batch} ({global_batch // procs} per rank)", f"{threads}",
                         f"{r['images_per_s']:,.0f}", f"{r['step'] * 1e3:.2f}",
                         "-" if procs == 1 else
                         f"{comm / r['step']:.0%} (wait {r['wait'] / r['step']:.0%})",
                         f"{r['images_per_s'] / base:.2f}x"])
    training = Section(
        "Data-parallel training on MPI: model.fit with DataParallel, images/s",
        ["workload", "processes", "scaling", "global batch", "BLAS threads/process",
         "images/s", "ms/step", "communication share of a step", "vs 1 process, 1 thread"],
        rows, notes=[
            "communication share = (copying gradients into the flat buffer and starting "
            "the bucketed Iallreduce + waiting for it + summing the loss and metrics) / "
            "step time, measured on rank 0; `wait` is the time blocked on the allreduce",
            "timed: one epoch-slice fit of the given steps after a warm-up fit (compile and "
            f"start-up excluded); median of {ctx.repeats} repeats; OPENBLAS_NUM_THREADS set "
            "per row",
            "2 ranks on a 2-core machine share memory bandwidth and caches; this is "
            "a single-node measurement, not a network"])
    cost_result = _launch(launcher, 2, 1, ["allreduce", str(ctx.repeats)], ctx)
    return [training, _model_section(cost_result, results)]


def _model_section(measured: dict, results: dict) -> Section:
    from graphnet.distributed.scaling import AllreduceCost, buckets_of, efficiency
    cost = AllreduceCost.fit_two_ranks(measured["bytes"], measured["seconds"])
    rows = []
    for name, (sizes, batch, _) in WORKLOADS.items():
        params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
        buckets = buckets_of(4 * params, BUCKET_BYTES)
        one = results[(name, 1, batch, 1)]
        weak = results[(name, 2, 2 * batch, 1)]
        compute = one["step"]
        measured_eff = one["step"] / weak["step"]
        for ranks in RANKS:
            low, high = efficiency(cost, compute, buckets, ranks)
            comm = sum(cost.seconds(b, ranks) for b in buckets)
            check = f"measured {measured_eff:.0%}" if ranks == 2 else ""
            rows.append([name, f"{params:,} ({len(buckets)} x <= 1 MiB)", f"{ranks}",
                         f"{comm * 1e3:.3f}", f"{low:.0%} - {high:.0%}", check])
    table = ", ".join(f"{b:,} B: {t * 1e6:.1f} us" for b, t in
                      zip(measured["bytes"], measured["seconds"]))
    return Section(
        "Data-parallel efficiency on paper, from the measured allreduce (weak scaling)",
        ["workload", "parameters (buckets)", "ranks", "allreduce ms/step (model)",
         "efficiency: no overlap - full overlap", "2 ranks, measured"], rows, notes=[
            f"allreduce on 2 ranks (MPI_Allreduce, float32, median of repeats): {table}",
            f"fit t = 2 alpha + n beta: alpha = {cost.alpha * 1e6:.2f} us, beta = "
            f"{cost.beta * 1e9:.3f} ns/B ({cost.bandwidth / 1e9:.2f} GB/s); model "
            "T(n, N) = 2 ceil(log2 N) alpha + 2 (N-1)/N n beta (graphnet/distributed/"
            "scaling.py); compute per step = the 1-process, 1-thread step at the per-rank "
            "batch; overlap window = 2/3 of it",
            "these alpha and beta are shared memory on one node: a cluster's network has "
            "a higher latency and a lower bandwidth, so put its own alpha and beta in "
            "AllreduceCost for a cluster; 2 ranks, measured = 1-process step / 2-rank "
            "step at the same per-rank batch"])


def _launch(launcher, procs: int, threads: int, args: list, ctx: Context) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "result.json")
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        command = [launcher, "-n", str(procs), sys.executable, "-m", "benchmarks.distributed",
                   "--worker", out, *args]
        if ctx.data_path:
            command += ["--data", ctx.data_path]
        if ctx.synthetic:
            command.append("--synthetic")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                              timeout=1800)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
        with open(out) as f:
            return json.load(f)


# ------------------------------------------------------------ the workers


def _train(args, out: str):
    import graphnet as gn
    from benchmarks.harness import load_mnist
    name, global_batch, steps, repeats = args[0], int(args[1]), int(args[2]), int(args[3])
    sizes = WORKLOADS[name][0]
    data = load_mnist(_opt.data, _opt.synthetic)
    x, y = data.x[:steps * global_batch], data.y[:steps * global_batch]
    gn.random.seed(0)
    model = gn.Sequential([gn.layers.Dense(n, activation="relu", input_shape=(784,))
                           if i == 0 else gn.layers.Dense(n, activation="relu")
                           for i, n in enumerate(sizes[1:-1])]
                          + [gn.layers.Dense(sizes[-1], activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    strategy = gn.distributed.DataParallel(bucket_bytes=BUCKET_BYTES)
    model.fit(x[:5 * global_batch], y[:5 * global_batch], batch_size=global_batch,
              shuffle=False, verbose=0, strategy=strategy)      # compile, start-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=global_batch, shuffle=False, verbose=0, strategy=strategy)
        samples.append((time.perf_counter() - start, strategy.stats()))
    seconds, stats = sorted(samples, key=lambda s: s[0])[len(samples) // 2]
    if strategy.rank == 0:
        _write(out, dict(stats, images_per_s=steps * global_batch / seconds,
                         step=seconds / steps))


def _allreduce(args, out: str):
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    repeats = max(int(args[0]), 5) * 4
    seconds = []
    for nbytes in SIZES_BYTES:
        buffer = np.ones(nbytes // 4, np.float32)
        times = []
        for _ in range(repeats + 2):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            times.append(time.perf_counter() - start)
        seconds.append(float(np.median(times[2:])))
    if comm.Get_rank() == 0:
        _write(out, {"bytes": SIZES_BYTES, "seconds": seconds})


def _write(path: str, value: dict):
    with open(path, "w") as f:
        json.dump(value, f)


_opt = None


def main(argv=None) -> int:
    global _opt
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--data")
    parser.add_argument("--synthetic", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    _opt = parser.parse_args(argv)
    if _opt.worker:
        out, kind, *rest = _opt.worker
        {"train": _train, "allreduce": _allreduce}[kind](rest, out)
        return 0
    ctx = Context(repeats=_opt.repeats, quick=_opt.quick, data_path=_opt.data,
                  synthetic=_opt.synthetic)
    for section in run(ctx):
        print(section.markdown(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
