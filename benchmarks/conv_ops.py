"""The LeNet-5 convolution and pooling ops one by one (forward + backward,
batch 64): the breakdown behind the LeNet workload's step time.

The cases and the code that builds each variant are `benchmarks/nn_ops.py`'s
(also runnable alone as `python -m benchmarks.nn_ops`); this module times
them interleaved and reports them as one of the suite's tables.

    python -m benchmarks --only ops
"""

from __future__ import annotations

import numpy as np

from benchmarks import nn_ops
from benchmarks.harness import Context, Section, interleaved


def cases(torch) -> list:
    """[(name, {variant: callable})] for every conv and pool of nn_ops."""
    rng = np.random.default_rng(0)
    out = []
    for name, x_shape, w_shape, pad, need_dx in nn_ops.CONVS:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
        kernels, session = nn_ops.graphnet_conv(x, w, pad, need_dx)
        fns = {"numpy": lambda x=x, w=w, p=pad, d=need_dx: nn_ops.numpy_conv(x, w, p, d),
               "kernels": kernels, "session": session}
        if torch:
            fns["torch"] = nn_ops.torch_conv(torch, x, w, pad, need_dx)
        out.append((name + (" (fwd+dw+dx)" if need_dx else " (fwd+dw)"), fns))
    for name, x_shape, p in nn_ops.POOLS:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        kernels, session = nn_ops.graphnet_pool(x, p)
        fns = {"numpy": lambda x=x, p=p: nn_ops.numpy_max_pool(x, p),
               "kernels": kernels, "session": session}
        if torch:
            fns["torch"] = nn_ops.torch_pool(torch, x, p)
        out.append((name + " (fwd+dx)", fns))
    return out


def run(ctx: Context) -> list:
    """One table: ms per call of each op for each variant, with ratios."""
    calls = 2 if ctx.quick else 10
    repeats = 1 if ctx.quick else 3 * ctx.repeats
    header = ["op (batch 64)", "NumPy ref (ms)", "graphnet kernels (ms)", "graphnet session (ms)"]
    if ctx.torch:
        header += ["PyTorch (ms)", "session vs PyTorch"]
    header.append("session vs NumPy ref")
    rows = []
    for name, fns in cases(ctx.torch):
        batched = {k: (lambda f=f: [f() for _ in range(calls)]) for k, f in fns.items()}
        medians = {k: 1000 * float(np.median(v)) / calls
                   for k, v in interleaved(batched, repeats).items()}
        row = [name] + [f"{medians[k]:.3f}" for k in ("numpy", "kernels", "session")]
        if ctx.torch:
            row += [f"{medians['torch']:.3f}", f"{medians['session'] / medians['torch']:.2f}x"]
        row.append(f"{medians['session'] / medians['numpy']:.2f}x")
        rows.append(row)
    notes = [f"medians of {repeats} samples of {calls} calls; 'kernels' calls graphnet's op "
             "kernels directly, 'session' runs a compiled plan through Session.run (feed checks, "
             "copies of fetched values); see benchmarks/nn_ops.py"]
    return [Section("LeNet-5 conv and pool ops, forward + backward", header, rows, notes)]
