"""`python -m benchmarks`: graphnet against its peers, side by side in one run.

    python -m benchmarks                         # everything (several minutes)
    python -m benchmarks --only seed,wide --repeats 3
    python -m benchmarks --quick --no-torch      # a smoke run, seconds
    python -m benchmarks --only seed,transformer --blas-threads 1 --torch-threads 1
    python -m benchmarks --out benchmarks/results.md

Prints Markdown tables of medians and ratios against the peers measured in
the same run (hand-written NumPy, the BLAS floor, PyTorch eager, JAX jit),
then the speed targets of the compiler and layer issues with the measured
figures. PyTorch and JAX are optional peers (`pip install torch`, `pip
install jax jaxlib`): their rows are skipped when they are not importable,
or with --no-torch / --no-jax. The environment is left alone: thread
variables are reported as found, unless `--blas-threads` asks to set them.
Exits with status 1 when a cross-check between variants fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

WORKLOADS = {  # name -> module in benchmarks/, in the order they run
    "seed": "seed_mlp",
    "wide": "wide_mlp",
    "lenet": "lenet",
    "transformer": "transformer",
    "gpt": "gpt",
    "bert": "bert",
    "checkpoint": "checkpoint",
    "inference": "inference",
    "distributed": "distributed",
    "threads": "threads_choice",
    "memory": "memory",
    "ablation": "ablation",
    "ops": "conv_ops",
    "compile": "compile_report",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated workloads out of {', '.join(WORKLOADS)} "
                             "(default: all)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per variant; medians are reported (default 5, "
                             "1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run: few steps, small compile graphs, 2,048 images")
    parser.add_argument("--out", help="also write the report to this Markdown file")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    parser.add_argument("--torch-threads", type=int, default=2,
                        help="torch.set_num_threads for the PyTorch rows (default 2)")
    parser.add_argument("--no-jax", action="store_true",
                        help="skip the JAX jit rows (optional peer: pip install jax jaxlib)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="set OPENBLAS/OMP/MKL_NUM_THREADS to this before NumPy loads; "
                             "1 also keeps JAX on one thread via XLA_FLAGS "
                             "(default: leave the environment alone)")
    parser.add_argument("--data", help="mnist.npz or its folder (default: graphnet's loader: "
                                       "$GRAPHNET_DATA, then the cache)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random images of MNIST's shape instead of MNIST")
    parser.add_argument("--profile", action="store_true",
                        help="add a cProfile of graphnet's step to each workload")
    args = parser.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in args.only if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}")
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    return args


def set_blas_threads(n: int):
    """Thread variables for OpenBLAS, OpenMP and MKL; they only take effect
    before NumPy is first imported, so later this falls back to threadpoolctl."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(n)
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            print(f"warning: NumPy was already loaded; --blas-threads {n} may not apply")
            return
        threadpool_limits(n)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.blas_threads:
        set_blas_threads(args.blas_threads)

    import importlib

    from benchmarks import harness
    from benchmarks.targets import targets_section

    torch = None if args.no_torch else harness.import_torch(args.torch_threads)
    jax, jax_threading = (None, "") if args.no_jax else harness.import_jax(
        one_thread=args.blas_threads == 1)
    ctx = harness.Context(repeats=args.repeats, quick=args.quick, torch=torch, jax=jax,
                          data_path=args.data, synthetic=args.synthetic, profile=args.profile)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    head = ["## graphnet benchmarks", "",
            f"`{harness.command_line()}`, started {started}; medians of {args.repeats} "
            f"repeat(s), variants interleaved round-robin."]
    skipped = "skipped (--no-torch)" if args.no_torch else "not importable (rows skipped)"
    jax_skipped = "skipped (--no-jax)" if args.no_jax else "not importable (rows skipped)"
    head += [f"- {line}" for line in harness.environment(torch, skipped, jax, jax_skipped,
                                                                  jax_threading)]
    head.append("- the machine is shared: absolute times are noisy, the ratios within one "
                "run are what to compare")
    print("\n".join(head) + "\n", flush=True)

    sections = []
    for name in args.only:
        module = importlib.import_module(f"benchmarks.{WORKLOADS[name]}")
        start = time.perf_counter()
        for section in module.run(ctx):
            section.notes.append(f"workload took {time.perf_counter() - start:.0f} s in all")
            sections.append(section)
            print(section.markdown(), flush=True)

    summary = targets_section(sections)
    if summary.rows:
        print(summary.markdown())
        sections.append(summary)
    tail = f"- load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    print(tail)
    if args.out:
        text = "\n".join(head) + "\n\n" + "\n".join(s.markdown() for s in sections) + "\n" + tail
        _write_atomic(args.out, text + "\n")
        print(f"written to {args.out}")
        _write_chart(sections, os.path.splitext(args.out)[0] + ".png", started)
    failed = [s.title for s in sections if not s.ok]
    if failed:
        print(f"CROSS-CHECK FAILED in: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _write_chart(sections: list, path: str, started: str):
    """The figures (JSON) and the ratios as a bar chart next to the report
    (benchmarks/chart.py; `python -m benchmarks.chart X.json` redraws)."""
    import json
    import math

    from benchmarks.chart import write_chart
    figures = {k: v for s in sections for k, v in s.figures.items()
               if isinstance(v, (int, float)) and math.isfinite(v)}
    subtitle = f"{harness_command()}, {started}"
    stem = os.path.splitext(path)[0]
    _write_atomic(stem + ".json", json.dumps({"subtitle": subtitle, "figures": figures},
                                             indent=1, sort_keys=True) + "\n")
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.tmp.png")
    if write_chart(figures, temporary, subtitle):
        os.replace(temporary, path)
        print(f"chart written to {path}")


def harness_command() -> str:
    from benchmarks.harness import command_line
    return command_line()


def _write_atomic(path: str, text: str):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


if __name__ == "__main__":
    sys.exit(main())
