"""Kernels for fused elementwise programs, behind one interface.

`make_kernel(op)` gives a plan step the callable that runs a `Fused` op:
`kernel(*inputs, out=None)`. Two backends:

- "numpy" (always there): the absorbed ops' own ufuncs with `out=` scratch
  buffers, in cache-sized chunks for large arrays (numpy_backend.py);
- "numba" (`pip install graphnet[numba]`): the program compiled into one
  loop, cached on disk per expression and dtypes (numba_backend.py, with
  the loop's source from loops.py). A program whose loop would be slower
  (exp, tanh, ... over large arrays, see cost.py) or that the loop cannot
  express (other broadcasting, unknown sizes) keeps the NumPy backend, and
  `explain()` says why.

`resolve_backend(None)` picks numba when it imports, unless the
environment variable GRAPHNET_BACKEND names a backend (the test suite sets
"numpy", so tests do not wait for compilers).
"""

from __future__ import annotations

import importlib.util
import os

BACKENDS = ("numpy", "numba")


def numba_available() -> bool:
    """True when Numba can be imported."""
    return importlib.util.find_spec("numba") is not None


def resolve_backend(backend: str | None) -> str:
    """"numpy" or "numba": `backend` itself, else $GRAPHNET_BACKEND, else
    numba when installed. Asking for numba without it is an error."""
    chosen = backend or os.environ.get("GRAPHNET_BACKEND") or (
        "numba" if numba_available() else "numpy")
    if chosen not in BACKENDS:
        raise ValueError(f"unknown kernel backend {chosen!r}; choose one of {BACKENDS}")
    if chosen == "numba" and not numba_available():
        if backend is None:
            return "numpy"
        raise ImportError("backend='numba' needs Numba: pip install graphnet[numba]")
    return chosen


def make_kernel(op):
    """The callable that runs fused op `op`, with its own scratch buffers
    (its `kernel` attribute, where it has one, is the kernel object with
    the generated `source`)."""
    from graphnet.compiler.kernels.numpy_backend import NumpyKernel
    if op.backend == "numba":
        from graphnet.compiler.kernels.numba_backend import NumbaKernel
        return NumbaKernel(op).run
    return NumpyKernel(op).runner()
