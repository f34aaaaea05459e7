"""A smoke run of the benchmark suite: `python -m benchmarks --quick` on
tiny sizes, without PyTorch or the MNIST file, one BLAS thread (busy
shared machines make two-thread BLAS crawl). It checks that every
workload runs, that its variants agree (the suite exits 1 when a
cross-check fails) and that the report has the expected rows. Times are
never asserted: they belong to the benchmark's own report."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

EXPECTED_ROWS = [
    "| graphnet model.fit |", "| graphnet plan |", "| graphnet plan, passes off |",
    "| hand-written NumPy |", "| BLAS floor (matmuls only) |",
    "| graphnet plan (gn.layers) |", "| NumPy im2col (straightforward) |",
    "| conv1 28x28x1 -> 5x5x6 same (fwd+dw) |", "| maxpool2 10x10x16 2x2 (fwd+dx) |",
    "| chain |", "| MLP step |",
]
EXPECTED_TITLES = [
    "### Seed MLP 784-128-64-10", "### Wide MLP 784-1024-1024-10",
    "### LeNet-5 CNN on MNIST", "### Pre-LN Transformer encoder block",
    "### LeNet-5 conv and pool ops", "### Compile time versus graph size",
    "### Targets from the issues",
]


def test_quick_run_reports_every_workload(tmp_path):
    out = tmp_path / "results.md"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-torch", "--synthetic",
         "--blas-threads", "1", "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = out.read_text()
    assert report.startswith("## graphnet benchmarks")
    for title in EXPECTED_TITLES:
        assert title in report, title
    for row in EXPECTED_ROWS:
        assert row in report, row
    assert report.count("| graphnet plan |") == 2  # seed and wide
    assert "cross-check" in report and "forward check" in report and "FAILED" not in report
    assert "thread variables: OPENBLAS_NUM_THREADS=1" in report and "numpy " in report
    assert "| chain |" in result.stdout


def test_unknown_workload_is_refused():
    result = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown workloads" in result.stderr
