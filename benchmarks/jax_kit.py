"""What the JAX peers share: Adam with graphnet's (Keras 3's) epsilon
placement, written out in jax.numpy, and the `JaxTrainer` base class.

JAX is optional (`pip install jax jaxlib`, CPU): `harness.import_jax` gives
None when it is missing and the workloads skip the JAX rows. Nothing here
imports jax at module level; the module is handed in, as torch is.

Each JAX trainer jits ONE function per training step, `(params, opt state,
batch) -> (params, opt state, loss)`, so forward, backward and the Adam
update are one XLA program. `compare()` runs warm-up steps before anything
is timed, so the jit compile is never inside a timed run; `step` blocks on
the loss, so a timed step is a finished step, not an enqueued one.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Trainer


def adam_init(jnp, params):
    """Adam's state for a pytree of parameters: (m, v, t), zeros."""
    import jax

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return zeros, jax.tree_util.tree_map(jnp.zeros_like, params), jnp.zeros((), jnp.float32)


def adam_update(jnp, params, grads, state, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """One Adam step, graphnet's (Keras 3's) rule, epsilon added to sqrt(v),
    not to sqrt(v_hat) as PyTorch and optax do:

        m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2)
        w -= alpha m / (sqrt(v) + eps),  alpha = lr sqrt(1 - b2^t) / (1 - b1^t)

    Returns (params, state). Traced inside the training step's jit."""
    import jax

    m, v, t = state
    t = t + 1
    alpha = lr * jnp.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    m = jax.tree_util.tree_map(lambda m, g: m + (g - m) * (1 - beta_1), m, grads)
    v = jax.tree_util.tree_map(lambda v, g: v + (g * g - v) * (1 - beta_2), v, grads)
    params = jax.tree_util.tree_map(lambda w, m, v: w - m * alpha / (jnp.sqrt(v) + epsilon),
                                    params, m, v)
    return params, (m, v, t)


class JaxTrainer(Trainer):
    """JAX jit: a subclass sets `jax`, `initial` (a pytree of NumPy arrays,
    our initial weights in the layout its loss expects), `train_step` (the
    jitted step, `(params, state, *batch) -> (params, state, loss)`) and
    `batch_args(i)` (the extra arguments for batch i)."""

    role = "jax"
    label = "JAX jit"
    traced = False  # XLA's buffers are invisible to tracemalloc

    def reset(self):
        jax = self.jax
        # copies: the step returns new buffers, but never alias our NumPy arrays
        self.params = jax.tree_util.tree_map(lambda a: jax.device_put(np.array(a)),
                                             self.initial)
        self.state = adam_init(jax.numpy, self.params)

    def step(self, i):
        self.params, self.state, loss = self.train_step(self.params, self.state,
                                                        *self.batch_args(i))
        return float(loss.block_until_ready())
