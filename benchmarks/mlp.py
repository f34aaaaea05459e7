"""MLP trainers shared by the seed and wide workloads, one class per variant.

All of them train `784 -> hidden... -> 10` (ReLU between, softmax
cross-entropy on the logits, Adam lr 1e-3, beta 0.9/0.999, epsilon 1e-7)
from the same initial weights (`initial_weights`) over the same batches of
a `harness.Mnist`, and report the loss of every step.
"""

from __future__ import annotations

import numpy as np

import graphnet as gn
from benchmarks.harness import TorchTrainer, Trainer
from benchmarks.jax_kit import JaxTrainer, adam_update
from benchmarks.numpy_kit import FlatParams, SoftmaxCrossEntropy

LEARNING_RATE = 1e-3
EPSILON = 1e-7  # graphnet's (and Keras') Adam default; PyTorch is given the same


def initial_weights(sizes: list, seed: int = 0) -> list:
    """[W0, b0, W1, b1, ...]: Glorot-uniform kernels (in, out), zero biases."""
    weights = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        weights.append(gn.init.glorot_uniform((fan_in, fan_out), seed=seed + i))
        weights.append(np.zeros(fan_out, np.float32))
    return weights


def _shapes(sizes: list) -> list:
    return [s for a, b in zip(sizes, sizes[1:], strict=False) for s in ((a, b), (b,))]


# ------------------------------------------------------------- graphnet


class GraphnetPlan(Trainer):
    """graphnet at the graph level: one compiled plan of [loss, Adam update],
    run by a Session in a plain loop over the batches. `optimize=False`
    compiles with every pass off; `arenas=False` keeps one optimizer update
    kernel per variable instead of one over parameter arenas (the default)."""

    role = "graphnet"

    def __init__(self, data, sizes, batch, weights, optimize=True, arenas=True):
        self.data, self.batch = data, batch
        self.label = "graphnet plan" if optimize else "graphnet plan, passes off"
        self.role = "graphnet" if optimize else "graphnet_nopasses"
        if not arenas:   # per-variable updates, as before parameter arenas (#17)
            self.label, self.role = "graphnet plan, per-variable updates", "graphnet_per_variable"
        self.x = gn.placeholder((None, sizes[0]), "float32", name="x")
        self.y = gn.placeholder((None,), "int64", name="y")
        h, self.params = self.x, []
        for i in range(len(sizes) - 1):
            w = gn.variable(weights[2 * i], name=f"dense_{i}/kernel")
            b = gn.variable(weights[2 * i + 1], name=f"dense_{i}/bias")
            self.params += [w, b]
            h = h @ w + b
            if i < len(sizes) - 2:
                h = gn.relu(h)
        self.loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(h, self.y))
        optimizer = gn.optim.Adam(LEARNING_RATE, epsilon=EPSILON)
        train = optimizer.minimize(self.loss)
        self.variables = self.params + optimizer.variables()
        self.plan = gn.compile([self.loss, train], feeds=[self.x, self.y], optimize=optimize,
                               feed_shapes={self.x: (batch, sizes[0]), self.y: (batch,)},
                               arenas=arenas)
        self.session = gn.Session()

    def reset(self):
        self.session.initialize(self.variables)

    def step(self, i):
        xb, yb = self.data.batch(i, self.batch)
        return float(self.session.run(self.plan, {self.x: xb, self.y: yb})[0])

    def parameters(self):
        return [self.session.get(p) for p in self.params]


class GraphnetFit(Trainer):
    """graphnet through its Keras-style API: Sequential([Flatten, Dense...])
    and `model.fit(x, y, batch_size, shuffle=False, verbose=0)` over the
    already shuffled images (no metrics, as the other variants compute none)."""

    role = "graphnet_fit"
    label = "graphnet model.fit"

    def __init__(self, data, sizes, batch, weights):
        self.data, self.batch, self.weights = data, batch, weights
        self.images = data.x.reshape(len(data.x), 28, 28)
        layers = [gn.layers.Flatten(input_shape=(28, 28))]
        layers += [gn.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
        layers.append(gn.layers.Dense(sizes[-1], activation="softmax"))
        self.model = gn.Sequential(layers)
        self.optimizer = gn.optim.Adam(LEARNING_RATE, epsilon=EPSILON)
        self.model.compile(optimizer=self.optimizer, loss="sparse_categorical_crossentropy")

    def reset(self):
        self.model.session.initialize(self.model.weights + self.optimizer.variables())
        self.model.set_weights(self.weights)

    def run(self, steps, on_step=None):
        n = steps * self.batch
        callbacks = [_EveryBatch(on_step)] if on_step else None
        history = self.model.fit(self.images[:n], self.data.y[:n], batch_size=self.batch,
                                 epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        return float(history.history["loss"][-1])

    def parameters(self):
        return self.model.get_weights()


class _EveryBatch(gn.callbacks.Callback):
    """Calls a function after every training batch."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def on_batch_end(self, batch, logs=None):
        self.function()


# ----------------------------------------------------------------- NumPy


class NumpyMLP(Trainer):
    """The hand-written NumPy trainer: manual backprop, preallocated buffers,
    `out=` everywhere, fused softmax cross-entropy, one flat Adam update."""

    role = "numpy"
    label = "hand-written NumPy"

    def __init__(self, data, sizes, batch, weights):
        self.data, self.batch, self.weights = data, batch, weights
        self.flat = FlatParams(_shapes(sizes), lr=LEARNING_RATE, epsilon=EPSILON)
        self.w, self.b = self.flat.values[0::2], self.flat.values[1::2]
        self.gw, self.gb = self.flat.grads[0::2], self.flat.grads[1::2]
        self.z = [np.empty((batch, n), np.float32) for n in sizes[1:]]   # activations
        self.dz = [np.empty((batch, n), np.float32) for n in sizes[1:-1]]
        self.mask = [np.empty((batch, n), bool) for n in sizes[1:-1]]
        self.loss = SoftmaxCrossEntropy(batch, sizes[-1])

    def reset(self):
        self.flat.set(self.weights)

    def step(self, i):
        x, y = self.data.batch(i, self.batch)
        last = len(self.w) - 1
        h = x
        for k, (w, b, z) in enumerate(zip(self.w, self.b, self.z, strict=True)):
            np.matmul(h, w, out=z)
            np.add(z, b, out=z)
            if k < last:
                np.maximum(z, 0, out=z)
                np.greater(z, 0, out=self.mask[k])
            h = z
        loss = self.loss.forward(h, y)
        d = self.loss.grad
        for k in range(last, -1, -1):
            h_in = x if k == 0 else self.z[k - 1]
            np.matmul(h_in.T, d, out=self.gw[k])
            np.sum(d, axis=0, out=self.gb[k])
            if k > 0:
                dh = self.dz[k - 1]
                np.matmul(d, self.w[k].T, out=dh)
                np.multiply(dh, self.mask[k - 1], out=dh)
                d = dh
        self.flat.adam_step()
        return loss

    def parameters(self):
        return [v.copy() for v in self.flat.values]


class BlasFloor(Trainer):
    """Only the matrix products of forward and backward, into preallocated
    outputs: no bias, activation, loss or optimizer. The floor no NumPy
    trainer can go below."""

    role = "floor"
    label = "BLAS floor (matmuls only)"

    def __init__(self, data, sizes, batch, weights):
        self.data, self.batch = data, batch
        self.w = [w.copy() for w in weights[0::2]]
        self.gw = [np.empty_like(w) for w in self.w]
        self.z = [np.empty((batch, n), np.float32) for n in sizes[1:]]
        self.dz = [np.empty((batch, n), np.float32) for n in sizes[1:]]

    def step(self, i):
        x, _ = self.data.batch(i, self.batch)
        h = x
        for w, z in zip(self.w, self.z, strict=True):
            np.matmul(h, w, out=z)
            h = z
        d = self.z[-1]
        for k in range(len(self.w) - 1, -1, -1):
            np.matmul((x if k == 0 else self.z[k - 1]).T, d, out=self.gw[k])
            if k > 0:
                np.matmul(d, self.w[k].T, out=self.dz[k - 1])
                d = self.dz[k - 1]
        return float("nan")

    def run(self, steps, on_step=None):
        super().run(steps, on_step)
        return float("nan")


# --------------------------------------------------------------- PyTorch


class TorchMLP(TorchTrainer):
    """PyTorch eager: torch.nn.Sequential of Linear/ReLU, CrossEntropyLoss,
    torch.optim.Adam (default implementation), weights copied from ours."""

    def __init__(self, torch, data, sizes, batch, weights):
        self.torch, self.data, self.batch, self.weights = torch, data, batch, weights
        nn = torch.nn
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.model = nn.Sequential(*layers)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        self.values = [w.T if i % 2 == 0 else w for i, w in enumerate(weights)]
        self.x = torch.from_numpy(data.x)
        self.y = torch.from_numpy(data.y)
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = None

    def parameters(self):
        out = []
        for lin in self.linears:
            out += [lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy()]
        return out


# ------------------------------------------------------------------- JAX


class JaxMLP(JaxTrainer):
    """JAX jit, written by hand: the MLP's loss in jax.numpy, jax.grad, and
    Adam with graphnet's epsilon placement, as one jitted step. The images
    are put on the device once and passed to every step (arguments, not
    closed-over constants), which slices batch i out of them
    (lax.dynamic_slice), as the other trainers take views."""

    def __init__(self, jax, data, sizes, batch, weights):
        self.jax, self.batch, self.steps = jax, batch, len(data.x) // batch
        self.initial = list(weights)
        self.x = jax.device_put(data.x)
        self.y = jax.device_put(data.y.astype(np.int32))
        jnp, lax = jax.numpy, jax.lax

        def loss_fn(params, x, y):
            h = x
            for k in range(0, len(params), 2):
                h = h @ params[k] + params[k + 1]
                if k < len(params) - 2:
                    h = jax.nn.relu(h)
            logp = jax.nn.log_softmax(h)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        def train_step(params, state, images, labels, start):
            x = lax.dynamic_slice_in_dim(images, start, batch)
            y = lax.dynamic_slice_in_dim(labels, start, batch)
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            params, state = adam_update(jnp, params, grads, state, LEARNING_RATE,
                                        epsilon=EPSILON)
            return params, state, loss

        self.train_step = jax.jit(train_step)

    def batch_args(self, i):
        return self.x, self.y, (i % self.steps) * self.batch
