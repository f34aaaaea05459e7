"""A smoke run of the benchmark suite: `python -m benchmarks --quick` on
tiny sizes, without PyTorch or the MNIST file, one BLAS thread (busy
shared machines make two-thread BLAS crawl). It checks that every
workload runs, that its variants agree (the suite exits 1 when a
cross-check fails) and that the report has the expected rows. Times are
never asserted: they belong to the benchmark's own report.

JAX is an optional peer: where it is installed the smoke run includes its
rows; its absence is simulated (and --no-jax tried) either way."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_ROWS = [
    "| graphnet model.fit |", "| graphnet plan |", "| graphnet plan, passes off |",
    "| hand-written NumPy |", "| BLAS floor (matmuls only) |",
    "| graphnet plan (gn.layers) |", "| NumPy im2col (straightforward) |",
    "| conv1 28x28x1 -> 5x5x6 same (fwd+dw) |", "| maxpool2 10x10x16 2x2 (fwd+dx) |",
    "| chain |", "| MLP step |", "| graphnet GPT (train_on_batch) |",
    "| graphnet generate (cached decode plan) |",
]
EXPECTED_TITLES = [
    "### Seed MLP 784-128-64-10", "### Wide MLP 784-1024-1024-10",
    "### LeNet-5 CNN on MNIST", "### Pre-LN Transformer encoder block",
    "### LeNet-5 conv and pool ops", "### Compile time versus graph size",
    "### Baby GPT (4 layers", "### Baby GPT: generating 20 tokens", "### Baby GPT scaling",
    "### Inference: seed MLP 784-128-64-10", "### Inference: LeNet-5",
    "### Checkpoints: saving and loading a whole model",
    "### Data-parallel training on MPI", "### Data-parallel efficiency on paper",
    "### Seed MLP, default threads",
    "### Memory of a training step", "### Ablation: the seed MLP", "### Ablation: the Transformer",
    "### Targets from the issues",
]
HAS_JAX = importlib.util.find_spec("jax") is not None


def run_benchmarks(args, tmp_path, prelude=""):
    """(subprocess result, report text) of `python -m benchmarks ARGS --out ...`,
    with `prelude` (Python) run in the process first."""
    out = tmp_path / "results.md"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
    code = (f"{prelude}\nimport sys\nfrom benchmarks.__main__ import main\n"
            f"sys.exit(main({[*args, '--out', str(out)]!r}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, out.read_text()


def test_quick_run_reports_every_workload(tmp_path):
    result, report = run_benchmarks(["--quick", "--no-torch", "--synthetic",
                                     "--blas-threads", "1"], tmp_path)
    assert report.startswith("## graphnet benchmarks")
    for title in EXPECTED_TITLES:
        assert title in report, title
    for row in EXPECTED_ROWS:
        assert row in report, row
    assert report.count("| graphnet plan |") == 4  # seed, wide and the two inference tables
    assert report.count("| graphnet plan, per-variable updates |") == 2  # seed and wide
    assert "cross-check" in report and "forward check" in report and "FAILED" not in report
    assert "thread variables: OPENBLAS_NUM_THREADS=1" in report and "numpy " in report
    assert "| chain |" in result.stdout
    assert report.count("| graphnet model.predict |") == 2    # the two inference tables
    assert "| seed MLP, batch 32 |" in report                  # the memory table
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "seed.graphnet" in json.loads((tmp_path / "results.json").read_text())["figures"]
    if HAS_JAX:  # the JAX peer, on one thread, cross-checked in both of its workloads
        # seed and Transformer, each also in the default-threads tables (benchmarks/threads_choice)
        assert report.count("| JAX jit |") == 2
        assert report.count("| JAX jit (hand-written block) |") == 2
        assert report.count("vs JAX (median / best)") == 4
        assert "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false" in report
        assert "; JAX jit " in report and "cross-check, mean loss over 2 steps" \
            " from the same initial weights: JAX jit (hand-written block)" in report
    else:
        assert "jax not importable (rows skipped)" in report


@pytest.mark.parametrize("how", ["simulated", "--no-jax"])
def test_quick_run_without_jax(tmp_path, how):
    """Without JAX (an import that fails, or --no-jax) its rows and column are skipped."""
    if how == "simulated":  # sys.modules[name] = None makes `import name` raise ImportError
        block_jax = "import sys\nsys.modules['jax'] = None"
        result, report = run_benchmarks(["--quick", "--no-torch", "--synthetic", "--blas-threads",
                                         "1", "--only", "seed,transformer"], tmp_path, block_jax)
        assert "JAX is not importable" in result.stdout
        assert "jax not importable (rows skipped)" in report
        assert "XLA_FLAGS" not in report and "already imported" not in result.stdout
    else:
        _, report = run_benchmarks(["--quick", "--no-torch", "--synthetic", "--blas-threads", "1",
                                    "--only", "seed", "--no-jax"], tmp_path)
        assert "jax skipped (--no-jax)" in report
    assert "JAX jit" not in report and "vs JAX" not in report and "FAILED" not in report
    assert "| graphnet plan |" in report and "| hand-written NumPy |" in report


def test_unknown_workload_is_refused():
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown workloads" in result.stderr


def test_chart_draws_the_ratios_measured(tmp_path):
    from benchmarks.chart import ratios, write_chart
    figures = {"seed.graphnet": 0.5, "seed.torch": 1.0, "seed.floor": 0.25,
               "lenet.graphnet": 3.0, "lenet.torch": float("nan"), "infer_mlp.graphnet.1": 2e-5}
    panels = ratios(figures)
    assert panels == {"vs PyTorch eager": [("seed MLP epoch (training)", 0.5)],
                      "vs BLAS floor (matmuls only)": [("seed MLP epoch", 2.0)]}
    assert write_chart(figures, str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").stat().st_size > 1000
    assert not write_chart({"seed.graphnet": 1.0}, str(tmp_path / "none.png"))
    assert not (tmp_path / "none.png").exists()
