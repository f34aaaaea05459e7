"""Convolution and pooling at LeNet-5 shapes (batch 64, float32): ms per
forward + backward for graphnet, a straightforward NumPy im2col reference
and PyTorch eager (when importable), with ratios from the same run.

    python -m benchmarks.nn_ops [--repeat 50] [--profile]
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m benchmarks.nn_ops   # one thread each

graphnet is timed two ways: the op kernels called directly ("kernels") and
a compiled plan run by a Session ("session": adds feed checks and copies of
the fetched values). The first conv's input is data, so its backward is the
kernel gradient only; the second conv also computes the input gradient, as
in training. Each figure is the best of --repeat calls. The script changes
nothing in the environment; the thread settings it ran with are printed. On
a shared 2-core machine, one thread each gives the steadiest ratios: with
two, BLAS and PyTorch threads that wait for a busy core can cost 10x.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import graphnet as gn
from graphnet.nn.conv import Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput
from graphnet.nn.pooling import MaxPool2D, MaxPool2DGrad
from graphnet.nn.windows import canonical_padding

BATCH = 64
CONVS = [  # name, x shape, kernel shape, padding, input gradient needed
    ("conv1 28x28x1 -> 5x5x6 same", (BATCH, 28, 28, 1), (5, 5, 1, 6), 2, False),
    ("conv2 14x14x6 -> 5x5x16 valid", (BATCH, 14, 14, 6), (5, 5, 6, 16), 0, True),
]
POOLS = [  # name, x shape, pool
    ("maxpool1 28x28x6 2x2", (BATCH, 28, 28, 6), 2),
    ("maxpool2 10x10x16 2x2", (BATCH, 10, 10, 16), 2),
]


def best_ms(fn, repeat: int) -> float:
    """Fastest wall time of fn() in milliseconds, after three warm-up calls:
    on a shared machine the minimum is the figure least disturbed by others."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


# ------------------------------------------------- NumPy references


def numpy_conv(x, w, pad, need_dx):
    """Textbook im2col: sliding_window_view, reshape (a copy), one matmul;
    backward: matmuls, and col2im as one strided add per kernel tap."""
    kh, kw, c, o = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))   # N, Ho, Wo, C, kh, kw
    n, ho, wo = windows.shape[:3]
    cols = windows.reshape(n * ho * wo, c * kh * kw)
    w2 = w.transpose(2, 0, 1, 3).reshape(c * kh * kw, o)
    y = (cols @ w2).reshape(n, ho, wo, o)
    g2 = np.ones_like(y).reshape(-1, o)
    dw = (cols.T @ g2).reshape(c, kh, kw, o).transpose(1, 2, 0, 3)
    if need_dx:
        dcols = (g2 @ w2.T).reshape(n, ho, wo, c, kh, kw)
        dxp = np.zeros_like(xp)
        for a in range(kh):
            for b in range(kw):
                dxp[:, a:a + ho, b:b + wo] += dcols[..., a, b]
        return y, dw, dxp[:, pad:pad + x.shape[1], pad:pad + x.shape[2]]
    return y, dw


def numpy_max_pool(x, p):
    """Reshape into windows, max; backward: the mask of window maxima."""
    n, h, w, c = x.shape
    windows = x.reshape(n, h // p, p, w // p, p, c)
    y = windows.max(axis=(2, 4))
    mask = windows == y[:, :, None, :, None]
    dx = (mask * np.ones_like(y)[:, :, None, :, None]).reshape(x.shape)
    return y, dx


# ---------------------------------------------------------- graphnet


def graphnet_conv(x, w, pad, need_dx):
    """(kernels, session) callables for forward + backward."""
    op = Conv2D((1, 1), canonical_padding(pad), (1, 1), 1)
    y = op.forward(x, w)
    g = np.ones_like(y)

    def kernels():
        op.forward(x, w)
        op.like(Conv2DBackpropFilter).forward(x, g, w)
        if need_dx:
            op.like(Conv2DBackpropInput).forward(g, w, x)

    xn = gn.placeholder((None, *x.shape[1:]), "float32")
    wn = gn.variable(w)
    gn_ = gn.placeholder((None, *y.shape[1:]), "float32")
    yn = gn.nn.conv2d(xn, wn, padding=pad)
    grads = gn.gradients(yn, [xn, wn] if need_dx else [wn], grad_ys=gn_)
    sess = gn.Session()
    fetches = [yn, *grads]
    return kernels, lambda: sess.run(fetches, {xn: x, gn_: g})


def graphnet_pool(x, p):
    op = MaxPool2D((p, p), (p, p), ((0, 0), (0, 0)))
    y = op.forward(x)
    g = np.ones_like(y)

    def kernels():
        out = op.forward(x)
        op.like(MaxPool2DGrad).forward(x, out, g)

    xn = gn.placeholder((None, *x.shape[1:]), "float32")
    gn_ = gn.placeholder((None, *y.shape[1:]), "float32")
    yn = gn.nn.max_pool2d(xn, p)
    fetches = [yn, gn.gradients(yn, xn, grad_ys=gn_)]
    sess = gn.Session()
    return kernels, lambda: sess.run(fetches, {xn: x, gn_: g})


# ----------------------------------------------------------- PyTorch


def torch_module():
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_conv(torch, x, w, pad, need_dx):
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(need_dx)
    wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))).requires_grad_(True)

    def step():
        y = torch.nn.functional.conv2d(xt, wt, padding=pad)
        y.backward(torch.ones_like(y))
    return step


def torch_pool(torch, x, p):
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_(True)

    def step():
        y = torch.nn.functional.max_pool2d(xt, p)
        y.backward(torch.ones_like(y))
    return step


# -------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per entry")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the graphnet session runs and print the top entries")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    torch = torch_module()
    threads = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
               if k in os.environ}
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs, thread settings {threads or 'default'}")
    if torch is None:
        print("PyTorch not importable: its column is skipped (pip install torch to compare)")
    else:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    rows, sessions = [], []
    for name, x_shape, w_shape, pad, need_dx in CONVS:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
        kernels, session = graphnet_conv(x, w, pad, need_dx)
        peer = torch_conv(torch, x, w, pad, need_dx) if torch else None
        rows.append((name + (" (fwd+dw+dx)" if need_dx else " (fwd+dw)"),
                     lambda x=x, w=w, pad=pad, d=need_dx: numpy_conv(x, w, pad, d),
                     kernels, session, peer))
        sessions.append(session)
    for name, x_shape, p in POOLS:
        x = rng.standard_normal(x_shape, dtype=np.float32)
        kernels, session = graphnet_pool(x, p)
        peer = torch_pool(torch, x, p) if torch else None
        rows.append((name + " (fwd+dx)", lambda x=x, p=p: numpy_max_pool(x, p),
                     kernels, session, peer))
        sessions.append(session)

    header = f"{'ms per call (best of --repeat)':<42}"
    header += f"{'numpy ref':>10}{'kernels':>10}{'session':>10}"
    header += f"{'torch':>10}{'session/torch':>15}" if torch else ""
    print(header)
    for name, ref, kernels, session, peer in rows:
        t_ref, t_k, t_s = (best_ms(f, args.repeat) for f in (ref, kernels, session))
        line = f"{name:<42}{t_ref:>10.3f}{t_k:>10.3f}{t_s:>10.3f}"
        if peer is not None:
            t_peer = best_ms(peer, args.repeat)
            line += f"{t_peer:>10.3f}{t_s / t_peer:>15.2f}"
        print(line)

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeat):
            for session in sessions:
                session()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
