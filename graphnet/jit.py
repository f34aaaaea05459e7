"""Compiled loops for op kernels that NumPy can only run in many passes (optional).

Some kernels are one pass over memory in a loop but many in NumPy: a
pooling window's maximum and where it sits, a layer norm row's statistics
and normalisation, col2im's scatter. Such an op lists "numba" in its
`backends` and defines `forward_loop`, which runs loops decorated with
`@loop`; a plan compiled with the numba backend calls it (`Op.kernel`).
The NumPy `forward` stays the reference the tests compare them against.

    @loop
    def _scale_rows(x, out):
        for i in range(x.shape[0]):
            ...

`@loop` compiles on first call, so importing graphnet never imports Numba,
with the options measured to vectorize (NumPy's error model, fast math;
DESIGN.md, "Measured here"), and Numba caches the machine code on disk.
Loops are written with float32 data in mind: keep scalars in the arrays'
dtype (`x.dtype.type(0.5)`) or they widen the loop to float64.
"""

from __future__ import annotations

import functools

#: Numba's options for every loop: not `parallel` (its thread wake-ups made
#: training steps 10x slower), `nogil` so threads may share a plan's work.
OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}


def loop(function=None, *, fastmath=True):
    """`function` compiled by Numba on its first call (`@loop` or
    `@loop(fastmath=False)`: keep IEEE semantics, e.g. for NaN-aware maxima)."""
    if function is None:
        return functools.partial(loop, fastmath=fastmath)
    compiled = None

    def dispatcher():
        """The compiled loop itself (Numba's dispatcher), which other compiled
        code can call (compiler/native.py)."""
        nonlocal compiled
        if compiled is None:
            import numba
            compiled = numba.njit(fastmath=fastmath, **OPTIONS)(function)
        return compiled

    @functools.wraps(function)
    def run(*args):
        return (dispatcher() if compiled is None else compiled)(*args)

    run.dispatcher = dispatcher
    return run
