"""graphnet's benchmark suite: `python -m benchmarks` (see `benchmarks/__main__.py`).

Every workload runs graphnet and its peers (a hand-written NumPy trainer, the
BLAS floor, PyTorch eager) side by side in one process and reports medians
and ratios, because the machines are shared and absolute times drift.

This module imports nothing heavy, so `__main__` can set thread variables
before NumPy is loaded.
"""
