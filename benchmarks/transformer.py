"""Workload 4: one pre-LN Transformer encoder block (d_model 128, 4 heads,
FFN 512 with exact GELU, seq 64, batch 32), trained with Adam on a
mean-squared error against random targets: ms per training step.

    x = x + attention(layer_norm_1(x));  x = x + ffn(layer_norm_2(x))

graphnet's block is `gn.layers.TransformerEncoderLayer` when that layer
exists, else the same maths from graph ops (`gn.nn.layer_norm`,
`gn.nn.attention`, matmuls, `gn.gelu`). PyTorch's is
`torch.nn.TransformerEncoderLayer(norm_first=True, batch_first=True,
dropout=0)`. JAX's (optional) is the same maths in jax.numpy, jitted with
its Adam step. All start from the same weights.

    python -m benchmarks --only transformer
"""

from __future__ import annotations

import numpy as np

import graphnet as gn
from benchmarks.harness import Context, Trainer, compare, product_time, profile, timing_section
from benchmarks.jax_kit import JaxTrainer, adam_update
from graphnet.compiler.kernels import numba_available

D_MODEL, HEADS, FFN, SEQ, BATCH = 128, 4, 512, 64, 32
STEPS = 20
BATCHES = 4  # distinct random batches, cycled
LEARNING_RATE, EPSILON = 1e-3, 1e-7
EPS_LN = 1e-5


def initial_weights(seed: int = 0) -> dict:
    """Glorot-uniform projection kernels (in, out), zero biases, unit LN scales."""
    glorot = gn.init.glorot_uniform
    w = {}
    for i, name in enumerate(("q", "k", "v", "o")):
        w[f"w{name}"] = glorot((D_MODEL, D_MODEL), seed=seed + i)
        w[f"b{name}"] = np.zeros(D_MODEL, np.float32)
    w["w1"], w["b1"] = glorot((D_MODEL, FFN), seed=seed + 4), np.zeros(FFN, np.float32)
    w["w2"], w["b2"] = glorot((FFN, D_MODEL), seed=seed + 5), np.zeros(D_MODEL, np.float32)
    for i in (1, 2):
        w[f"g{i}"], w[f"beta{i}"] = np.ones(D_MODEL, np.float32), np.zeros(D_MODEL, np.float32)
    return w


def make_batches(batch: int = BATCH, seed: int = 0) -> tuple:
    """(inputs, targets), each (BATCHES, batch, SEQ, D_MODEL) standard normal."""
    rng = np.random.default_rng(seed)
    shape = (BATCHES, batch, SEQ, D_MODEL)
    return rng.standard_normal(shape, np.float32), rng.standard_normal(shape, np.float32)


# ------------------------------------------------------------- graphnet


def block_from_layer(x):
    """(output, {weight name: variable}) from gn.layers.TransformerEncoderLayer."""
    layer = gn.layers.TransformerEncoderLayer(D_MODEL, HEADS, FFN, dropout=0.0,
                                              activation="gelu", norm_first=True,
                                              epsilon=EPS_LN)
    out = layer(x, training=True)
    a = layer.attention
    variables = {"wq": a.query_kernel, "bq": a.query_bias, "wk": a.key_kernel,
                 "bk": a.key_bias, "wv": a.value_kernel, "bv": a.value_bias,
                 "wo": a.output_kernel, "bo": a.output_bias,
                 "w1": layer.ffn1.kernel, "b1": layer.ffn1.bias,
                 "w2": layer.ffn2.kernel, "b2": layer.ffn2.bias,
                 "g1": layer.norm1.gamma, "beta1": layer.norm1.beta,
                 "g2": layer.norm2.gamma, "beta2": layer.norm2.beta}
    return out, variables


def block_from_ops(x, weights: dict):
    """(output, {weight name: variable}) built from graph ops."""
    v = {name: gn.variable(value, name=f"block/{name}") for name, value in weights.items()}
    depth = D_MODEL // HEADS

    def heads(t):   # (batch, seq, d) -> (batch, heads, seq, depth)
        return gn.transpose(gn.reshape(t, (-1, SEQ, HEADS, depth)), (0, 2, 1, 3))

    h = gn.nn.layer_norm(x, v["g1"], v["beta1"], eps=EPS_LN)
    q, k, u = (heads(h @ v[f"w{n}"] + v[f"b{n}"]) for n in "qkv")
    a = gn.reshape(gn.transpose(gn.nn.attention(q, k, u), (0, 2, 1, 3)), (-1, SEQ, D_MODEL))
    x = x + (a @ v["wo"] + v["bo"])
    h = gn.nn.layer_norm(x, v["g2"], v["beta2"], eps=EPS_LN)
    return x + (gn.gelu(h @ v["w1"] + v["b1"]) @ v["w2"] + v["b2"]), v


class GraphnetBlock(Trainer):
    """The block, its MSE loss and Adam as one compiled plan, in a plain loop."""

    role = "graphnet"

    def __init__(self, batches, weights, backend=None):
        self.inputs, self.targets = batches
        self.weights = weights
        self.x = gn.placeholder((None, SEQ, D_MODEL), "float32", name="x")
        self.t = gn.placeholder((None, SEQ, D_MODEL), "float32", name="target")
        try:
            out, self.named = block_from_layer(self.x)
            self.label = "graphnet plan (gn.layers.TransformerEncoderLayer)"
        except (AttributeError, TypeError):  # no such layer (yet), or another API
            out, self.named = block_from_ops(self.x, weights)
            self.label = "graphnet plan (graph ops)"
        if backend == "numpy":
            self.role, self.label = "graphnet_numpy", "graphnet plan, NumPy backend"
        loss = gn.mean(gn.square(out - self.t))
        optimizer = gn.optim.Adam(LEARNING_RATE, epsilon=EPSILON)
        train = optimizer.minimize(loss, var_list=list(self.named.values()))
        self.variables = list(self.named.values()) + optimizer.variables()
        shape = self.inputs.shape[1:]
        self.plan = gn.compile([loss, train], feeds=[self.x, self.t], backend=backend,
                               feed_shapes={self.x: shape, self.t: shape})
        self.session = gn.Session()

    def reset(self):
        self.session.initialize(self.variables)
        for name, var in self.named.items():
            self.session.set(var, self.weights[name])

    def step(self, i):
        j = i % BATCHES
        return float(self.session.run(self.plan, {self.x: self.inputs[j],
                                                  self.t: self.targets[j]})[0])


# ----------------------------------------------------------------- NumPy


def numpy_loss(x: np.ndarray, target: np.ndarray, w: dict) -> float:
    """The block's MSE loss in float64 NumPy: the forward check that runs
    without PyTorch (the first step's loss is computed before its update)."""
    try:
        from scipy.special import erf
    except ImportError:  # NOTE: NumPy has no erf; exact but slow
        import math
        erf = np.vectorize(math.erf, otypes=[np.float64])
    w = {k: v.astype(np.float64) for k, v in w.items()}
    x = x.astype(np.float64)

    def norm(h, i):
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        return (h - mean) / np.sqrt(var + EPS_LN) * w[f"g{i}"] + w[f"beta{i}"]

    def heads(t):
        return t.reshape(len(x), SEQ, HEADS, -1).transpose(0, 2, 1, 3)

    h = norm(x, 1)
    q, k, v = (heads(h @ w[f"w{n}"] + w[f"b{n}"]) for n in "qkv")
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    p = np.exp(logits - logits.max(-1, keepdims=True))
    a = (p / p.sum(-1, keepdims=True)) @ v
    x = x + a.transpose(0, 2, 1, 3).reshape(x.shape) @ w["wo"] + w["bo"]
    f = norm(x, 2) @ w["w1"] + w["b1"]
    out = x + (0.5 * f * (1 + erf(f / np.sqrt(2)))) @ w["w2"] + w["b2"]
    return float(np.mean((out - target) ** 2))


# --------------------------------------------------------------- PyTorch


class TorchBlock(Trainer):
    """torch.nn.TransformerEncoderLayer (pre-LN, batch first, no dropout)."""

    role = "torch"
    label = "PyTorch eager (nn.TransformerEncoderLayer)"
    traced = False

    def __init__(self, torch, batches, weights):
        self.torch, self.weights = torch, weights
        self.layer = torch.nn.TransformerEncoderLayer(
            D_MODEL, HEADS, FFN, dropout=0.0, activation="gelu", layer_norm_eps=EPS_LN,
            batch_first=True, norm_first=True)
        self.inputs, self.targets = (torch.from_numpy(b) for b in batches)
        self.optimizer = None

    def reset(self):
        torch, w, layer = self.torch, self.weights, self.layer

        def put(param, value):
            param.copy_(torch.from_numpy(np.ascontiguousarray(value)))

        with torch.no_grad():
            put(layer.self_attn.in_proj_weight, np.concatenate([w["wq"].T, w["wk"].T, w["wv"].T]))
            put(layer.self_attn.in_proj_bias, np.concatenate([w["bq"], w["bk"], w["bv"]]))
            put(layer.self_attn.out_proj.weight, w["wo"].T)
            put(layer.self_attn.out_proj.bias, w["bo"])
            put(layer.linear1.weight, w["w1"].T)
            put(layer.linear1.bias, w["b1"])
            put(layer.linear2.weight, w["w2"].T)
            put(layer.linear2.bias, w["b2"])
            for i, norm in ((1, layer.norm1), (2, layer.norm2)):
                put(norm.weight, w[f"g{i}"])
                put(norm.bias, w[f"beta{i}"])
        self.optimizer = torch.optim.Adam(layer.parameters(), lr=LEARNING_RATE, eps=EPSILON)

    def step(self, i):
        j = i % BATCHES
        self.optimizer.zero_grad()
        out = self.layer(self.inputs[j])
        loss = self.torch.nn.functional.mse_loss(out, self.targets[j])
        loss.backward()
        self.optimizer.step()
        return loss.item()


# ------------------------------------------------------------------- JAX


class JaxBlock(JaxTrainer):
    """JAX jit, written by hand: the block (layer norm with EPS_LN, exact
    GELU), its MSE loss, jax.grad and Adam with graphnet's epsilon
    placement, as one jitted step. The batches live on the device and are
    passed to every step, which picks batch i % BATCHES."""

    label = "JAX jit (hand-written block)"

    def __init__(self, jax, batches, weights):
        self.jax, self.initial = jax, dict(weights)
        self.inputs, self.targets = (jax.device_put(b) for b in batches)
        jnp = jax.numpy
        depth = D_MODEL // HEADS

        def norm(h, g, beta):
            mean = jnp.mean(h, -1, keepdims=True)
            var = jnp.mean(jnp.square(h - mean), -1, keepdims=True)
            return (h - mean) / jnp.sqrt(var + EPS_LN) * g + beta

        def heads(t):  # (batch, seq, d) -> (batch, heads, seq, depth)
            return t.reshape(t.shape[0], SEQ, HEADS, depth).transpose(0, 2, 1, 3)

        def loss_fn(w, x, target):
            h = norm(x, w["g1"], w["beta1"])
            q, k, v = (heads(h @ w[f"w{n}"] + w[f"b{n}"]) for n in "qkv")
            p = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(depth), axis=-1)
            a = (p @ v).transpose(0, 2, 1, 3).reshape(x.shape)
            x = x + (a @ w["wo"] + w["bo"])
            f = jax.nn.gelu(norm(x, w["g2"], w["beta2"]) @ w["w1"] + w["b1"], approximate=False)
            out = x + (f @ w["w2"] + w["b2"])
            return jnp.mean(jnp.square(out - target))

        def train_step(params, state, inputs, targets, j):
            loss, grads = jax.value_and_grad(loss_fn)(params, inputs[j], targets[j])
            params, state = adam_update(jnp, params, grads, state, LEARNING_RATE,
                                        epsilon=EPSILON)
            return params, state, loss

        self.train_step = jax.jit(train_step)

    def batch_args(self, i):
        return self.inputs, self.targets, i % BATCHES


def run(ctx: Context) -> list:
    """The Transformer block's section."""
    steps = 2 if ctx.quick else STEPS
    batch = 4 if ctx.quick else BATCH  # quick: a tiny batch, for smoke runs
    batches, weights = make_batches(batch), initial_weights()
    graphnet = GraphnetBlock(batches, weights)
    trainers = [graphnet]
    if numba_available():
        trainers.append(GraphnetBlock(batches, weights, backend="numpy"))
    if ctx.torch:
        trainers.append(TorchBlock(ctx.torch, batches, weights))
    if ctx.jax:
        trainers.append(JaxBlock(ctx.jax, batches, weights))
    # JAX, when present, is the reference: its Adam is graphnet's, PyTorch's is not
    timings, notes, ok = compare(trainers, steps, ctx.repeats, check_steps=2 if ctx.quick else 5,
                                 reference="jax" if ctx.jax else "torch",
                                 alloc_steps=2 if ctx.quick else 3)
    graphnet.reset()
    first, expected = graphnet.step(0), numpy_loss(batches[0][0], batches[1][0], weights)
    rel = abs(first - expected) / expected
    ok = ok and rel <= 1e-4
    notes.append(f"forward check, first batch's loss from the initial weights: graphnet "
                 f"{first:.6f}, float64 NumPy {expected:.6f} (rel. diff {rel:.1e}) - "
                 + ("ok" if rel <= 1e-4 else "FAILED (tolerance 1e-4)"))
    notes.append(f"timed over {steps} steps per repeat; MSE loss against random targets, "
                 f"{BATCHES} random batches cycled")
    products, total = product_time(graphnet.session, graphnet.plan,
                                   {graphnet.x: batches[0][0], graphnet.t: batches[1][0]},
                                   1 if ctx.quick else 10)
    by_role = {t.trainer.role: t.median / steps for t in timings}
    versus = (f"; the products alone are {products / by_role['torch']:.2f}x PyTorch eager's step"
              if "torch" in by_role else "")
    notes.append(f"where graphnet's step goes (Session.profile, fastest of 3 profiles): its "
                 f"matrix products (BLAS) take {products * 1e3:.1f} of {total * 1e3:.1f} ms, "
                 f"{products / total:.0%}{versus}")
    section = timing_section(
        f"Pre-LN Transformer encoder block (d {D_MODEL}, {HEADS} heads, FFN {FFN} GELU, "
        f"seq {SEQ}, batch {batch}), Adam: one training step",
        timings, "ms", 1000 / steps, notes, ok, key="transformer")
    for t in timings:
        section.figures[f"transformer.{t.trainer.role}"] = t.median / steps
    section.figures["transformer.products"] = products
    if ctx.profile:
        section.details.append(profile(graphnet, steps))
    return [section]
