"""Workload 3: a LeNet-5 style CNN on MNIST, batch 64, Adam, ms per step.

    conv 5x5x6 (pad same) relu, maxpool 2, conv 5x5x16 (valid) relu,
    maxpool 2, flatten, dense 120 relu, dense 84 relu, dense 10

Variants: graphnet (gn.layers, one compiled plan of [loss, update]), a
straightforward NumPy im2col trainer, PyTorch eager. The weights are
graphnet's initial ones, copied into the others (PyTorch's conv kernels
transposed to (out, in, kh, kw), and the first dense kernel's rows permuted
from NHWC to NCHW flattening order).

    python -m benchmarks --only lenet
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import graphnet as gn
from benchmarks.harness import Context, TorchTrainer, Trainer, compare, profile, timing_section
from benchmarks.numpy_kit import FlatParams, SoftmaxCrossEntropy
from graphnet.compiler.kernels import numba_available

BATCH = 64
STEPS = 50
LEARNING_RATE, EPSILON = 1e-3, 1e-7


def _images(data, i, batch):
    xb, yb = data.batch(i, batch)
    return xb.reshape(batch, 28, 28, 1), yb


class GraphnetLeNet(Trainer):
    """gn.layers called on placeholders, one compiled plan, a plain loop;
    `backend="numpy"` keeps Numba's loops out (the plan NumPy alone runs)."""

    role = "graphnet"
    label = "graphnet plan (gn.layers)"

    def __init__(self, data, batch=BATCH, backend=None):
        self.data, self.batch = data, batch
        if backend == "numpy":
            self.role, self.label = "graphnet_numpy", "graphnet plan, NumPy backend"
        gn.random.seed(0)
        L = gn.layers
        layers = [L.Conv2D(6, 5, padding="same", activation="relu"), L.MaxPool2D(2),
                  L.Conv2D(16, 5, activation="relu"), L.MaxPool2D(2), L.Flatten(),
                  L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10)]
        self.x = gn.placeholder((None, 28, 28, 1), "float32", name="images")
        self.y = gn.placeholder((None,), "int64", name="labels")
        h = self.x
        for layer in layers:
            h = layer(h, training=True)
        loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, self.y))
        optimizer = gn.optim.Adam(LEARNING_RATE, epsilon=EPSILON)
        train = optimizer.minimize(loss)
        self.params = [w for layer in layers for w in layer.weights]
        self.weights = [np.array(p.op.initial_value) for p in self.params]
        self.variables = self.params + optimizer.variables()
        self.plan = gn.compile([loss, train], feeds=[self.x, self.y], backend=backend,
                               feed_shapes={self.x: (batch, 28, 28, 1), self.y: (batch,)})
        self.session = gn.Session()

    def reset(self):
        self.session.initialize(self.variables)

    def step(self, i):
        xb, yb = _images(self.data, i, self.batch)
        return float(self.session.run(self.plan, {self.x: xb, self.y: yb})[0])


class NumpyLeNet(Trainer):
    """im2col by sliding_window_view + one copy, convs as matmuls, col2im as
    25 strided adds, max pooling through a reshape and a mask of each
    window's first maximum; preallocated buffers, flat Adam."""

    role = "numpy"
    label = "NumPy im2col (straightforward)"

    def __init__(self, data, weights, batch=BATCH):
        self.data, self.weights, self.batch = data, weights, batch
        B = batch
        self.flat = FlatParams([w.shape for w in weights], lr=LEARNING_RATE, epsilon=EPSILON)
        self.p = self.flat.values
        self.g = self.flat.grads
        f32 = np.float32
        self.xpad = np.zeros((B, 32, 32, 1), f32)
        self.cols1 = np.empty((B, 28, 28, 5, 5, 1), f32)
        self.win1 = sliding_window_view(self.xpad, (5, 5), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
        self.c1 = np.empty((B, 28, 28, 6), f32)
        self.m1 = np.empty((B, 28, 28, 6), bool)
        self.p1 = np.empty((B, 14, 14, 6), f32)
        self.pm1 = np.empty((B, 14, 2, 14, 2, 6), bool)
        self.free1 = np.empty((B, 14, 14, 6), bool)
        self.cols2 = np.empty((B, 10, 10, 5, 5, 6), f32)
        self.win2 = sliding_window_view(self.p1, (5, 5), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
        self.c2 = np.empty((B, 10, 10, 16), f32)
        self.m2 = np.empty((B, 10, 10, 16), bool)
        self.p2 = np.empty((B, 5, 5, 16), f32)
        self.pm2 = np.empty((B, 5, 2, 5, 2, 16), bool)
        self.free2 = np.empty((B, 5, 5, 16), bool)
        self.z = [np.empty((B, n), f32) for n in (120, 84, 10)]
        self.zm = [np.empty((B, n), bool) for n in (120, 84)]
        self.dz = [np.empty((B, n), f32) for n in (400, 120, 84)]
        self.dc2 = np.empty((B, 10, 10, 16), f32)
        self.dcols2 = np.empty((B, 10, 10, 5, 5, 6), f32)
        self.dp1 = np.empty((B, 14, 14, 6), f32)
        self.dc1 = np.empty((B, 28, 28, 6), f32)
        self.loss = SoftmaxCrossEntropy(B, 10)

    def reset(self):
        self.flat.set(self.weights)

    def step(self, i):
        B = self.batch
        x, y = _images(self.data, i, B)
        k1, b1, k2, b2, w3, b3, w4, b4, w5, b5 = self.p
        gk1, gb1, gk2, gb2, gw3, gb3, gw4, gb4, gw5, gb5 = self.g
        # conv 1 (pad 2) + relu, pool
        self.xpad[:, 2:30, 2:30] = x
        np.copyto(self.cols1, self.win1)
        cols1 = self.cols1.reshape(B * 784, 25)
        c1 = self.c1.reshape(B * 784, 6)
        np.matmul(cols1, k1.reshape(25, 6), out=c1)
        np.add(c1, b1, out=c1)
        np.maximum(c1, 0, out=c1)
        np.greater(c1, 0, out=self.m1.reshape(B * 784, 6))
        windows1 = self.c1.reshape(B, 14, 2, 14, 2, 6)
        np.max(windows1, axis=(2, 4), out=self.p1)
        first_max(windows1, self.p1, self.pm1, self.free1)
        # conv 2 (valid) + relu, pool
        np.copyto(self.cols2, self.win2)
        cols2 = self.cols2.reshape(B * 100, 150)
        c2 = self.c2.reshape(B * 100, 16)
        np.matmul(cols2, k2.reshape(150, 16), out=c2)
        np.add(c2, b2, out=c2)
        np.maximum(c2, 0, out=c2)
        np.greater(c2, 0, out=self.m2.reshape(B * 100, 16))
        windows2 = self.c2.reshape(B, 5, 2, 5, 2, 16)
        np.max(windows2, axis=(2, 4), out=self.p2)
        first_max(windows2, self.p2, self.pm2, self.free2)
        # dense layers
        h = self.p2.reshape(B, 400)
        for k, (w, b, z) in enumerate(zip((w3, w4, w5), (b3, b4, b5), self.z, strict=True)):
            np.matmul(h, w, out=z)
            np.add(z, b, out=z)
            if k < 2:
                np.maximum(z, 0, out=z)
                np.greater(z, 0, out=self.zm[k])
            h = z
        loss = self.loss.forward(h, y)
        # backward through the dense layers
        d = self.loss.grad
        inputs = (self.p2.reshape(B, 400), self.z[0], self.z[1])
        for k, (w, gw, gb) in reversed(list(enumerate(zip((w3, w4, w5), (gw3, gw4, gw5),
                                                          (gb3, gb4, gb5), strict=True)))):
            np.matmul(inputs[k].T, d, out=gw)
            np.sum(d, axis=0, out=gb)
            np.matmul(d, w.T, out=self.dz[k])
            if k > 0:
                np.multiply(self.dz[k], self.zm[k - 1], out=self.dz[k])
            d = self.dz[k]
        # pool 2, relu 2, conv 2
        dc2 = self.dc2.reshape(B, 5, 2, 5, 2, 16)
        np.multiply(self.pm2, d.reshape(B, 5, 5, 16)[:, :, None, :, None], out=dc2)
        np.multiply(self.dc2, self.m2, out=self.dc2)
        dc2 = self.dc2.reshape(B * 100, 16)
        np.matmul(cols2.T, dc2, out=gk2.reshape(150, 16))
        np.sum(dc2, axis=0, out=gb2)
        np.matmul(dc2, k2.reshape(150, 16).T, out=self.dcols2.reshape(B * 100, 150))
        self.dp1.fill(0)
        for a in range(5):
            for b in range(5):
                target = self.dp1[:, a:a + 10, b:b + 10]
                np.add(target, self.dcols2[:, :, :, a, b], out=target)
        # pool 1, relu 1, conv 1 (the input needs no gradient)
        dc1 = self.dc1.reshape(B, 14, 2, 14, 2, 6)
        np.multiply(self.pm1, self.dp1[:, :, None, :, None], out=dc1)
        np.multiply(self.dc1, self.m1, out=self.dc1)
        dc1 = self.dc1.reshape(B * 784, 6)
        np.matmul(cols1.T, dc1, out=gk1.reshape(25, 6))
        np.sum(dc1, axis=0, out=gb1)
        self.flat.adam_step()
        return loss


def first_max(windows, pooled, mask, free):
    """mask = where each 2x2 window's FIRST maximum sits (row-major), as
    graphnet, TensorFlow and PyTorch route the gradient: windows of equal
    values (MNIST's blank background) pass it on once, not four times."""
    np.equal(windows, pooled[:, :, None, :, None], out=mask)
    free.fill(True)
    for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
        tap = mask[:, :, a, :, b]
        np.logical_and(tap, free, out=tap)
        np.greater(free, tap, out=free)  # free and not tap


class TorchLeNet(TorchTrainer):
    """The same network in torch.nn (NCHW), CrossEntropyLoss, torch.optim.Adam."""

    def __init__(self, torch, data, weights, batch=BATCH):
        self.torch, self.data, self.batch = torch, data, batch
        nn = torch.nn
        self.model = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
        k1, b1, k2, b2, w3, b3, w4, b4, w5, b5 = weights
        w3_nchw = w3.reshape(5, 5, 16, 120).transpose(2, 0, 1, 3).reshape(400, 120)
        self.values = [k1.transpose(3, 2, 0, 1), b1, k2.transpose(3, 2, 0, 1), b2,
                       w3_nchw.T, b3, w4.T, b4, w5.T, b5]
        self.x = torch.from_numpy(data.x.reshape(len(data.x), 1, 28, 28))
        self.y = torch.from_numpy(data.y)
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = None


def run(ctx: Context) -> list:
    """The LeNet-5 section."""
    data = ctx.mnist()
    steps = 3 if ctx.quick else STEPS
    batch = 16 if ctx.quick else BATCH  # quick: a tiny batch, for smoke runs
    graphnet = GraphnetLeNet(data, batch)
    trainers = [graphnet, NumpyLeNet(data, graphnet.weights, batch)]
    if numba_available():
        trainers.insert(1, GraphnetLeNet(data, batch, backend="numpy"))
    if ctx.torch:
        trainers.append(TorchLeNet(ctx.torch, data, graphnet.weights, batch))
    timings, notes, ok = compare(trainers, steps, ctx.repeats, check_steps=3 if ctx.quick else 10,
                                 alloc_steps=2 if ctx.quick else 3)
    notes.append(f"timed over {steps} steps per repeat")
    section = timing_section(f"LeNet-5 CNN on MNIST, batch {batch}, Adam: one training step",
                             timings, "ms", 1000 / steps, notes, ok, key="lenet")
    for t in timings:  # figures per step, for the targets
        section.figures[f"lenet.{t.trainer.role}"] = t.median / steps
    if ctx.profile:
        section.details.append(profile(graphnet, steps))
    return [section]
