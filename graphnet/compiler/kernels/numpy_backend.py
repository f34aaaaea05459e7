"""The NumPy backend of fused kernels: the absorbed ops' own `forward`s,
called in order with `out=` scratch buffers that the kernel owns.

The program becomes a straight-line Python function (`NumpyKernel.source`):

    def body(x0, x1, o0, s):
        t0 = k0(x0, x1, out=s[0])     # add
        t1 = k1(t0, out=o0)           # relu

Results are those of the unfused ops, bit for bit: the same kernels run, in
the same dtypes. What fusion buys is memory traffic. Arrays above
`CHUNK_ABOVE` elements run in chunks of `CHUNK_BYTES` per array, so a chain
of passes over each chunk stays in cache (DESIGN.md, "Measured here": a
5-op chain on 4M floats, 5.0 ms -> 3.35 ms; here 5.3 -> 4.1 ms; the
Transformer's GELU gradient on 1M floats 2.3 -> 2.15 ms, while at 256k
elements chunks only cost time). Scratch buffers are
planned once per input-shape signature: results whose lifetimes do not
overlap share one, a result never shares with its own arguments, and the
buffers come from a pool that all the kernels of a thread share.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from graphnet.compiler.kernels.program import constant_value, is_update, ref_index

#: Chunk arrays with more elements than this (2 MiB of float32: more than
#: a core's L2 cache).
CHUNK_ABOVE = 1 << 19
#: About this many bytes of each array per chunk (32k float32 elements).
CHUNK_BYTES = 1 << 17

_BODIES: dict = {}
#: Scratch buffers by (shape, dtype), shared by the kernels built while one
#: pool is active: the kernels of one copy of a plan (compiler/plan.py makes
#: each copy under `private_pool()`), which run one at a time and hold
#: nothing in scratch between calls. Sharing keeps the working set (and cache
#: misses) as small as the unfused plan's (measured: 539 -> 513 us per
#: seed-MLP step). A kernel keeps the pool it was built under, so kernels of
#: two copies of a plan never share a buffer, whichever threads run them.
_SHARED = threading.local()


@contextlib.contextmanager
def private_pool():
    """Kernels built inside share scratch buffers with each other only."""
    saved = getattr(_SHARED, "pools", None)
    _SHARED.pools = {}
    try:
        yield
    finally:
        _SHARED.pools = saved


def _current_pool() -> dict:
    if getattr(_SHARED, "pools", None) is None:
        _SHARED.pools = {}
    return _SHARED.pools


class NumpyKernel:
    """Runs a `Fused` op's program with ufuncs; one instance per plan step.

    `source` is the generated body. A kernel whose input shapes are all
    static (a specialized plan) plans its buffers once; others plan them
    once per input-shape signature."""

    def __init__(self, op):
        self.op = op
        self.body, self.source = _body(op)
        self._layouts: dict = {}
        self._pool = _current_pool()
        static = all(d is not None for _, shape in op.signature for d in shape)
        self._fixed = _Layout(op, tuple(s for _, s in op.signature), self._pool) \
            if static else None

    def __call__(self, *inputs, out=None):
        layout = self._fixed or self._layout(inputs)
        outs = layout.output_arrays(out)
        if layout.chunks and layout.can_chunk(inputs, outs):
            layout.run_chunked(self.body, inputs, outs)
        else:
            self.body(*inputs, *outs, layout.scratch)
        return layout.result(inputs, outs)

    def runner(self):
        """The callable a plan runs: for a static, unchunked layout a small
        generated function that calls the body directly (no per-call
        bookkeeping), else the kernel itself."""
        layout = self._fixed
        if layout is None or layout.chunks:
            return self
        args = [f"x{i}" for i in range(len(self.op.signature))]
        namespace = {"np": np, "body": self.body, "scratch": layout.scratch,
                     "owned": layout.owned}
        lines = [f"def run({', '.join(args + ['out=None'])}):"]
        if layout.owned is not None:
            outs = [f"owned[{k}]" for k in range(len(layout.owned))]
        elif layout.specs and layout.specs[0][0] == "written":
            _, namespace["shape"], namespace["dtype"] = layout.specs[0]
            lines += ["    if out is None:", "        out = np.empty(shape, dtype)"]
            outs = ["out"]
        else:
            outs = []
        lines.append(f"    body({', '.join(args + outs + ['scratch'])})")
        written = iter(outs)
        values = [f"x{s[1]}" if s[0] == "update" else next(written) for s in layout.specs]
        result = "None" if not values else values[0] if len(values) == 1 else \
            f"({', '.join(values)},)"
        lines.append(f"    return {result}")
        exec(compile("\n".join(lines) + "\n", "<fused kernel runner>", "exec"), namespace)  # noqa: S102
        run = namespace["run"]
        run.kernel = self
        return run

    def _layout(self, inputs) -> _Layout:
        key = tuple(x.shape for x in inputs)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = _Layout(self.op, key, self._pool)
        return layout


class _Layout:
    """How one input-shape signature runs: outputs, scratch buffers, chunks."""

    def __init__(self, op, input_shapes: tuple, pool: dict):
        shapes = _temp_shapes(op, input_shapes)
        domain = np.broadcast_shapes(*shapes)
        #: ("update", input index) or ("written", shape, dtype) per output
        self.specs = []
        for ref in op.outputs:
            instr = op.program[ref_index(ref)]
            self.specs.append(("update", ref_index(instr.args[0])) if is_update(instr)
                              else ("written", shapes[ref_index(ref)], instr.dtype))
        written = [s for s in self.specs if s[0] == "written"]
        self.owned = [np.empty(s[1], s[2]) for s in written] if len(self.specs) > 1 else None
        self.scratch = _scratch(op, shapes, pool)
        self.chunks, self.sliced, self.flat = [], [], False
        size = int(np.prod(domain, dtype=np.int64))
        if size > CHUNK_ABOVE and all(s == domain for s in shapes):
            self._plan_chunks(op, list(input_shapes) + [domain] * len(written), domain, size,
                              pool)

    def _plan_chunks(self, op, shapes: list, domain: tuple, size: int, pool: dict):
        """Flat chunks when every array is the domain's shape or a single
        value; else blocks of rows, arrays without the row axis whole."""
        step = max(1, CHUNK_BYTES // max(i.dtype.itemsize for i in op.program))
        self.flat = all(s == domain or int(np.prod(s, dtype=np.int64)) == 1 for s in shapes)
        if self.flat:
            self.sliced = [s == domain for s in shapes]
            length, block = size, (step,)
        else:
            length, row = domain[0], size // max(domain[0], 1)
            step = max(1, step // row)
            self.sliced = [len(s) == len(domain) and s[0] == length > 1 for s in shapes]
            block = (step,) + tuple(domain[1:])
            if length <= step:
                return  # a single block: no chunking
        scratch = _scratch(op, [block] * len(op.program), pool)
        bounds = list(range(0, length, step))
        tail = length - bounds[-1]
        last = scratch if tail == step else [None if b is None else b[:tail] for b in scratch]
        self.chunks = [(slice(lo, lo + step), scratch) for lo in bounds[:-1]]
        self.chunks.append((slice(bounds[-1], length), last))

    def can_chunk(self, inputs, outs) -> bool:
        """Flat chunks need the sliced arrays to flatten into views."""
        arrays = list(inputs) + outs
        return not self.flat or all(
            a.flags.c_contiguous for a, cut in zip(arrays, self.sliced, strict=True) if cut)

    def run_chunked(self, body, inputs, outs):
        arrays = list(inputs) + outs
        if self.flat:
            arrays = [a.reshape(-1) for a in arrays]
        cuts = list(zip(arrays, self.sliced, strict=True))
        for part, scratch in self.chunks:
            body(*[a[part] if cut else a for a, cut in cuts], scratch)

    def output_arrays(self, out) -> list:
        """The arrays the body writes its outputs into (updates write inputs)."""
        if self.owned is not None:
            return self.owned
        if self.specs and self.specs[0][0] == "written":
            _, shape, dtype = self.specs[0]
            return [np.empty(shape, dtype) if out is None else out]
        return []

    def result(self, inputs, outs):
        """The node's value: one array, a tuple of them, or None."""
        if len(self.specs) == 1:
            return outs[0] if outs else inputs[self.specs[0][1]]
        written = iter(outs)
        values = tuple(inputs[s[1]] if s[0] == "update" else next(written) for s in self.specs)
        return values or None


def _temp_shapes(op, input_shapes: tuple) -> list:
    """The run-time shape of each result: its arguments broadcast."""
    known = {f"x{i}": s for i, s in enumerate(input_shapes)}
    known.update((f"c{i}", ()) for i in range(len(op.constants)))
    shapes = []
    for i, instr in enumerate(op.program):
        args = instr.args[:1] if is_update(instr) else instr.args
        known[f"t{i}"] = np.broadcast_shapes(*(known[a] for a in args))
        shapes.append(known[f"t{i}"])
    return shapes


def _scratch(op, shapes: list, shared_pool: dict) -> list:
    """A buffer per result that is neither an output nor an update, reusing
    buffers whose results are dead; never one an argument still holds.
    Buffers come from `shared_pool`, shared with the other kernels of its plan copy."""
    last_use = {}
    for i, instr in enumerate(op.program):
        for a in instr.args:
            last_use[a] = i
    free: dict = {}
    buffers = [None] * len(op.program)
    holder = {}
    taken = {}
    for i, instr in enumerate(op.program):
        ref = f"t{i}"
        if not is_update(instr) and ref not in op.outputs:
            key = (tuple(shapes[i]), instr.dtype)
            pool = free.setdefault(key, [])
            if pool:
                buffers[i] = pool.pop()
            else:
                shared = shared_pool.setdefault(key, [])
                n = taken.get(key, 0)
                if n == len(shared):
                    shared.append(np.empty(*key))
                buffers[i] = shared[n]
                taken[key] = n + 1
            holder[ref] = key
        for a in set(instr.args):
            if a in holder and last_use[a] == i:
                free[holder[a]].append(buffers[ref_index(a)])
    return buffers


def _body(op) -> tuple:
    """(function, source) of the straight-line body; cached per program."""
    key = (op.program, op.constants, op.outputs, len(op.signature))
    if key not in _BODIES:
        _BODIES[key] = _generate(op)
    return _BODIES[key]


def _generate(op) -> tuple:
    namespace = {"np": np, "_into": _into}
    inputs = [f"x{i}" for i in range(len(op.signature))]
    outputs = {}
    for ref in op.outputs:
        if not is_update(op.program[ref_index(ref)]):
            outputs[ref] = f"o{len(outputs)}"
    for i, constant in enumerate(op.constants):
        namespace[f"c{i}"] = np.asarray(constant_value(constant))
    lines = [f"def body({', '.join(inputs + list(outputs.values()) + ['s'])}):"]
    for i, instr in enumerate(op.program):
        namespace[f"k{i}"] = instr.op.forward
        call = f"k{i}({', '.join(instr.args)}"
        dest = outputs.get(f"t{i}", f"s[{i}]")
        if is_update(instr):
            code = f"t{i} = {call})"
        elif instr.op.writes_out:
            code = f"t{i} = {call}, out={dest})"
        else:
            code = f"t{i} = _into({dest}, {call}))"
        lines.append(f"    {code:<40}  # {instr.op.kind}")
    source = "\n".join(lines) + "\n"
    exec(compile(source, f"<fused kernel {op.expression()}>", "exec"), namespace)  # noqa: S102
    return namespace["body"], source


def _into(destination, value):
    """Copy a kernel's freshly allocated result into its buffer."""
    np.copyto(destination, value)
    return destination
