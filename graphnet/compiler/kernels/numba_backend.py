"""The Numba backend: each fused program compiled into one loop, cached on disk.

The loop's source (kernels/loops.py) is written to the kernel cache,
`$GRAPHNET_CACHE/kernels`, else `$XDG_CACHE_HOME/graphnet/kernels`, else
`~/.cache/graphnet/kernels`, as `gn_<hash>.py`, named by a hash of the
source (which spells out the expression, dtypes and broadcasting). It is
imported from there, so `numba.njit(cache=True)` keeps the machine code
beside it: a pattern compiles once per machine, and later processes load it
in milliseconds. Loops are not `parallel=True`: its thread wake-ups made
training steps 10x slower (DESIGN.md, "Measured here").

`prepare(op)` compiles (or loads) a program's loop ahead of time, which is
how `fuse_elementwise` reports compile times; `NumbaKernel(op)` runs it,
behind a small generated wrapper that checks shapes and hands off to the
NumPy backend whenever an array is not as compiled (another shape, a
non-contiguous output or in-place target).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphnet.compiler.kernels.loops import Unsupported, loop_source
from graphnet.compiler.kernels.numpy_backend import NumpyKernel
from graphnet.compiler.kernels.program import is_update, ref_index

#: Compiled loops of this process, by source hash.
_LOOPS: dict = {}


@dataclass(frozen=True)
class Compiled:
    """A loop ready to run, and what getting it cost."""

    function: object
    source: str
    path: Path
    rows: int
    cols: int
    seconds: float
    origin: str    # "compiled", "disk cache" or "memory"


def kernel_dir() -> Path:
    """Where generated kernels and Numba's machine code for them live."""
    if os.environ.get("GRAPHNET_CACHE"):
        root = Path(os.environ["GRAPHNET_CACHE"]).expanduser()
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "graphnet"
    return root / "kernels"


def check(op) -> str | None:
    """None when the loop can run `op`, else why not."""
    try:
        loop_source(op)
    except Unsupported as why:
        return str(why)
    return None


def prepare(op) -> Compiled:
    """`op`'s loop, compiled now (or loaded from the disk cache)."""
    source, rows, cols, _ = loop_source(op)
    digest = hashlib.sha256(source.encode()).hexdigest()[:20]
    known = _LOOPS.get(digest)
    if known is not None:
        return Compiled(known.function, source, known.path, rows, cols, 0.0, "memory")
    start = time.perf_counter()
    path = _write(digest, source)
    module = _import(digest, path)
    misses = sum(module.kernel.stats.cache_misses.values())
    module.kernel.compile(_signature(op))
    compiled_now = sum(module.kernel.stats.cache_misses.values()) > misses
    seconds = time.perf_counter() - start
    compiled = Compiled(module.kernel, source, path, rows, cols, seconds,
                        "compiled" if compiled_now else "disk cache")
    _LOOPS[digest] = compiled
    return compiled


def _signature(op) -> tuple:
    """The argument types the wrapper passes: C-contiguous arrays of their
    own rank, one-element arrays for scalars."""
    import numba

    def array(dtype, rank):
        return numba.types.Array(numba.from_dtype(np.dtype(dtype)), rank, "C")
    outputs = [r for r in op.outputs if not is_update(op.program[ref_index(r)])]
    inputs = [array(d, 1 if _scalar(s) else len(s)) for d, s in op.signature]
    return (numba.types.int64, numba.types.int64, *inputs,
            *(array(op.program[ref_index(r)].dtype, len(op.shape)) for r in outputs))


def _scalar(shape: tuple) -> bool:
    return all(d == 1 for d in shape)


def _write(digest: str, source: str) -> Path:
    """The source in the kernel cache (written once: Numba's cache checks
    the file's time stamp), or in a temporary folder when that is read-only."""
    for folder in (kernel_dir(), Path(tempfile.gettempdir()) / "graphnet-kernels"):
        path = folder / f"gn_{digest}.py"
        try:
            if not path.exists():
                folder.mkdir(parents=True, exist_ok=True)
                partial = folder / f".gn_{digest}.{os.getpid()}.tmp"
                partial.write_text(source)
                os.replace(partial, path)
            return path
        except OSError:
            continue
    raise OSError(f"cannot write fused kernels to {kernel_dir()} nor a temporary folder")


def _import(digest: str, path: Path):
    name = f"graphnet_kernel_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- running


class NumbaKernel:
    """Runs a `Fused` op's compiled loop; one instance per plan step.

    `source` is the loop's module, `wrapper` the Python around it."""

    def __init__(self, op):
        compiled = prepare(op)
        self.op, self.source, self.path = op, compiled.source, compiled.path
        self.fallback = None
        self.run, self.wrapper = _wrap(op, compiled, self._numpy)
        self.run.kernel = self

    def __call__(self, *inputs, out=None):
        return self.run(*inputs, out=out)

    def _numpy(self, *inputs, out=None):
        if self.fallback is None:
            self.fallback = NumpyKernel(self.op)
        return self.fallback(*inputs, out=out)


def _wrap(op, compiled: Compiled, fallback) -> tuple:
    """(function, source) of the wrapper: check shapes, pick the output
    arrays, flatten everything, call the loop, return the node's value."""
    n = len(op.signature)
    args = [f"x{i}" for i in range(n)]
    namespace = {"np": np, "loop": compiled.function, "fallback": fallback}
    shapes = " or ".join(f"x{i}.shape != {tuple(s)!r}" for i, (_, s) in enumerate(op.signature))
    targets = sorted({ref_index(i.args[0]) for i in op.program if is_update(i)})
    written = [r for r in op.outputs if not is_update(op.program[ref_index(r)])]
    contiguous = [f"x{t}" for t in targets]
    lines = [f"def run({', '.join(args + ['out=None'])}):"]
    if len(op.outputs) == 1 and written:
        namespace["dtype"] = op.program[ref_index(written[0])].dtype
        lines += ["    if out is None:", f"        out = np.empty({tuple(op.shape)!r}, dtype)"]
        contiguous.append("out")
        outs = ["out"]
    else:
        outs = [f"owned[{k}]" for k in range(len(written))]
        namespace["owned"] = [np.empty(op.shape, op.program[ref_index(r)].dtype)
                              for r in written]
    checks = [shapes] if shapes else []
    checks += [f"not {a}.flags.c_contiguous" for a in contiguous]
    if checks:
        lines += [f"    if {' or '.join(checks)}:",
                  f"        return fallback({', '.join(args + ['out=out'])})"]
    flat = [f"x{i}.reshape(-1)" if _scalar(shape) else f"x{i}"
            for i, (_, shape) in enumerate(op.signature)] + outs
    lines.append(f"    loop({compiled.rows}, {compiled.cols}, {', '.join(flat)})")
    values, k = [], 0
    for ref in op.outputs:
        instr = op.program[ref_index(ref)]
        if is_update(instr):
            values.append(instr.args[0])
        else:
            values.append(outs[k])
            k += 1
    result = "None" if not values else values[0] if len(values) == 1 else \
        f"({', '.join(values)},)"
    lines.append(f"    return {result}")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<numba wrapper {compiled.path.name}>", "exec"), namespace)  # noqa: S102
    return namespace["run"], source
