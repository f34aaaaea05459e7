"""The kernel of an `ArenaUpdate`: one optimizer program over a whole model.

The program is the per-variable one (kernels/program.py); here it runs over
flat arrays whose length is the variables' sizes added up:

    numba:  loop(1, n, grads, m_arena, v_arena, alpha, w_arena)   # one call
    numpy:  the program's ufuncs once over the flat arrays (in cache-sized
            chunks when large, as numpy_backend.py does)

The flat arrays are the arenas themselves: each "variable" input's
variables must be views that lie back to back in one buffer (the Session
lays them out so; `flat_view` checks it, and the check is kept until the
arrays change), and each "array" input (a gradient) must be in its row of
`out`, where the memory planner lets most gradients be written by their
producers; the others are copied in first. When the variables are not laid
out so, each variable runs on its own: the same arithmetic, more calls.

The same loop (the same source, so the same machine code) serves one
variable or the whole arena, so results do not depend on the layout.
"""

from __future__ import annotations

import operator

import numpy as np

from graphnet.compiler.kernels.numpy_backend import NumpyKernel


def address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def flat_view(arrays) -> np.ndarray | None:
    """One 1-D view of `arrays` laid back to back in one C-contiguous buffer,
    in order, or None when they are not."""
    first = arrays[0]
    base = first if first.base is None else first.base
    if not isinstance(base, np.ndarray) or not base.flags.c_contiguous:
        return None
    at = address(first)
    start = at - address(base)
    total = 0
    for a in arrays:
        if (a.base is not base and a is not base) or a.dtype != base.dtype \
                or not a.flags.c_contiguous or address(a) != at:
            return None
        at += a.nbytes
        total += a.size
    if start % base.itemsize:
        return None
    start //= base.itemsize
    return base.reshape(-1)[start:start + total]


class ArenaKernel:
    """Runs an `ArenaUpdate` op; one instance per plan step.

    `placed` lists (array input, segment) pairs whose values the planner
    made the producers write into `out`; a placed value found elsewhere is
    copied all the same."""

    def __init__(self, op, placed: tuple = ()):
        from graphnet.compiler.ops import Fused
        self.op = op
        self.slots = op.slots()
        self.sizes = [int(np.prod(s, dtype=np.int64)) for s in op.shapes]
        self.bounds = np.cumsum([0] + self.sizes).tolist()
        self.total = self.bounds[-1]
        self.rows = {p: r for r, p in enumerate(op.arrays())}
        self.placed = set(placed)
        spec = op.spec
        flat = tuple((d, (self.total,) if role != "shared" else tuple(s)) for role, d, s in spec)
        loose = tuple((d, (None,) if role != "shared" else tuple(s)) for role, d, s in spec)
        self.flat_op = Fused(op.program, op.constants, (), flat, (self.total,), op.backend)
        self.loop = None
        if op.backend == "numba":
            from graphnet.compiler.kernels import numba_backend
            self.loop = numba_backend.prepare(self.flat_op).function
        self.whole = None if self.loop is not None else NumpyKernel(self.flat_op)
        self.loose_op = Fused(op.program, op.constants, (), loose, (None,), "numpy")
        self.each = None    # a NumpyKernel of loose_op, made when first needed
        self.variable_inputs = [start + k for role, start, count in self.slots
                                if role == "variable" for k in range(count)]
        self.shared = [(p, start) for p, (role, start, _) in enumerate(self.slots)
                       if role == "shared"]
        self._held, self._flats = [], None    # the variable arrays last checked, their views
        self._out, self._args, self._copies, self._stale = None, [], [], True
        self._own = None

    def __call__(self, *inputs, out=None):
        held = [inputs[i] for i in self.variable_inputs]
        if len(held) != len(self._held) or not all(map(operator.is_, held, self._held)):
            self._check(held)
        if self._flats is None:
            return self._each(inputs)
        if out is None and self.rows:
            out = self._own_arena()
        if out is not self._out or self._stale:
            self._bind(out)
        for index, placed, segment in self._copies:
            value = inputs[index]
            if not placed or value.base is not out:   # not written there by its producer
                np.copyto(segment, value)
        args = list(self._args)
        for p, start in self.shared:
            args[p] = inputs[start].reshape(-1) if self.loop is not None else inputs[start]
        if self.loop is not None:
            self.loop(1, self.total, *args)
        else:
            self.whole(*args)
        return None

    def _check(self, held: list):
        """Find the flat view of each "variable" input's arena (None if one is not)."""
        count = len(self.sizes)
        flats = [flat_view(held[i:i + count]) for i in range(0, len(held), count)]
        self._held = held
        self._flats = None if any(f is None for f in flats) else flats
        self._stale = True

    def _own_arena(self) -> np.ndarray:
        """A gradient arena of the kernel's own, when the plan gives none."""
        if self._own is None:
            dtype = self.op.spec[next(iter(self.rows))][1]
            self._own = np.empty((len(self.rows), self.total), dtype)
        return self._own

    def _bind(self, out):
        """The loop's arguments but the shared ones, and where each "array"
        input's segment lies in `out`."""
        self._out, self._stale = out, False
        flats, args = iter(self._flats), []
        for p, (role, _, _) in enumerate(self.slots):
            args.append(next(flats) if role == "variable" else
                        out[self.rows[p]] if role == "array" else None)
        self._args = args
        self._copies = [(self.slots[p][1] + k, (p, k) in self.placed,
                         out[r, self.bounds[k]:self.bounds[k + 1]].reshape(shape))
                        for p, r in self.rows.items() for k, shape in enumerate(self.op.shapes)]

    def _each(self, inputs):
        """Each variable on its own (the variables are not in arenas)."""
        shared = {p: inputs[start] for p, (role, start, _) in enumerate(self.slots)
                  if role == "shared"}
        for k in range(len(self.sizes)):
            args = [shared[p] if role == "shared" else inputs[start + k]
                    for p, (role, start, _) in enumerate(self.slots)]
            if self.loop is not None and all(
                    a.flags.c_contiguous for a, (role, _, _) in zip(args, self.slots, strict=True)
                    if role != "shared"):
                self.loop(1, self.sizes[k], *[a.reshape(-1) for a in args])
            else:
                if self.each is None:
                    self.each = NumpyKernel(self.loose_op)
                self.each(*args)
        return None

