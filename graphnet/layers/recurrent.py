"""Recurrent layers: SimpleRNN, LSTM and GRU, unrolled over a fixed number of steps.

Inputs are (batch, time, features) with the number of steps known when the
graph is built. The input projection `x @ kernel + bias` of every step is one
matmul up front; each step then adds only `h @ recurrent_kernel` and the gate
maths, so the unrolled graph grows by a handful of nodes per step. The first
step starts from zero state, so it skips the recurrent matmul.

Equations, gate order and defaults follow Keras: LSTM gates (i, f, c, o) with
`unit_forget_bias`; GRU gates (z, r, h) with `reset_after=True` (Keras 3).
An optional `mask` (batch, time), True = use the step, keeps the previous
state (and output) at masked steps, like Keras' masking.
"""

from __future__ import annotations

import numpy as np

from graphnet import activations, init, ops
from graphnet.errors import ShapeError
from graphnet.graph import as_node, constant
from graphnet.layers.base import Layer
from graphnet.shapes import format_shape


class _Recurrent(Layer):
    """Shared machinery: weights, unrolling, masking, return_sequences / return_state.

    Subclasses set `gates` (blocks of `units` columns in the kernels) and
    define `step(projected_x, state) -> state`, where state is a tuple whose
    first entry is the output h, or None before the first step.
    """

    gates = 1

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 return_sequences: bool = False, return_state: bool = False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.return_sequences, self.return_state = return_sequences, return_state
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer

    def __call__(self, x, mask=None, training: bool = False):
        """Run over the steps of x (batch, time, features); `mask` (batch, time)
        is optional, True where a step counts."""
        return self.call_with_inputs([x], replay=x if mask is None else None, mask=mask,
                                     training=training)

    def check_input(self, x):
        name = f"{type(self).__name__} '{self.name}'"
        if x.ndim != 3:
            hint = ""
            if x.ndim == 2 and x.shape[1] is not None:
                hint = f"; add Reshape(({x.shape[1]}, 1)) for one feature per step"
            raise ShapeError(f"{name} expects 3-D input (batch, time, features), got "
                             f"{format_shape(x.shape)}{hint}")
        if x.shape[1] is None or x.shape[2] is None:
            raise ShapeError(f"{name} unrolls a fixed number of steps and needs known time "
                             f"and feature sizes, got {format_shape(x.shape)}; pad the "
                             f"sequences to one length and give Input that length")

    def build(self, input_shape):
        width = self.gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], width),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer)
        self.bias = self.add_weight("bias", self.bias_shape(), self.bias_init,
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def bias_init(self, shape, dtype="float32"):
        return init.get(self.bias_initializer)(shape, dtype=dtype)

    def input_bias(self):
        """The bias added to the input projection (None without bias)."""
        return self.bias

    def call(self, x, mask=None, training=False):
        projected = ops.matmul(x, self.kernel)
        if self.input_bias() is not None:
            projected = ops.add(projected, self.input_bias())
        keep = None if mask is None else _as_mask(self, mask, x)
        state, outputs = None, []
        for t in range(x.shape[1]):
            new = self.step(projected[:, t], state)
            if keep is not None:  # masked steps carry the previous state on
                old = state or (constant(0.0, dtype=x.dtype),) * len(new)
                new = tuple(ops.where(keep[:, t:t + 1], n, o) for n, o in
                            zip(new, old, strict=True))
            state = new
            outputs.append(state[0])
        out = ops.stack(outputs, axis=1) if self.return_sequences else state[0]
        return [out, *state] if self.return_state else out

    def recurrent(self, h):
        """h @ recurrent_kernel, or None for the zero state before the first step."""
        return None if h is None else ops.matmul(h, self.recurrent_kernel)

    def step(self, projected, state):
        raise NotImplementedError


def _as_mask(layer, mask, x):
    """A bool (batch, time) mask node, or an error naming the layer."""
    mask = as_node(mask)
    if mask.ndim != 2 or mask.shape[1] not in (None, x.shape[1]):
        raise ShapeError(f"{type(layer).__name__} '{layer.name}': mask must be (batch, time) "
                         f"= {format_shape(x.shape[:2])}, got {format_shape(mask.shape)}")
    return mask if mask.dtype == np.bool_ else ops.not_equal(mask, 0)


def _plus(a, b):
    return a if b is None else ops.add(a, b)


class SimpleRNN(_Recurrent):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""

    def step(self, projected, state):
        h = None if state is None else state[0]
        return (self.activation(_plus(projected, self.recurrent(h))),)


class LSTM(_Recurrent):
    """Long short-term memory (Hochreiter 1997), Keras' equations:

        i, f, c~, o = split(x_t @ kernel + h @ recurrent_kernel + bias)
        c = sigmoid(f) * c + sigmoid(i) * tanh(c~);  h = sigmoid(o) * tanh(c)

    (sigmoid is `recurrent_activation`, tanh `activation`). With
    `unit_forget_bias` the forget block of the bias starts at 1.
    `return_state=True` returns [output, h, c].
    """

    gates = 4

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias: bool = True, **kwargs):
        super().__init__(units, activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.unit_forget_bias = unit_forget_bias

    def bias_init(self, shape, dtype="float32"):
        bias = super().bias_init(shape, dtype)
        if self.unit_forget_bias:
            bias = np.array(bias, copy=True)
            bias[self.units:2 * self.units] = 1
        return bias

    def step(self, projected, state):
        h, c = (None, None) if state is None else state
        i, f, g, o = ops.split(_plus(projected, self.recurrent(h)), 4, axis=-1)
        candidate = ops.multiply(self.recurrent_activation(i), self.activation(g))
        if c is not None:
            candidate = ops.add(ops.multiply(self.recurrent_activation(f), c), candidate)
        c = candidate
        return ops.multiply(self.recurrent_activation(o), self.activation(c)), c


class GRU(_Recurrent):
    """Gated recurrent unit (Cho et al. 2014), Keras' equations, gates (z, r, h):

        z = sigmoid(xz + hz);  r = sigmoid(xr + hr)
        reset_after=True (Keras 3 default):  h~ = tanh(xh + r * (h @ U_h + b_rh))
        reset_after=False:                   h~ = tanh(xh + (r * h) @ U_h)
        h = z * h + (1 - z) * h~

    where x* = x_t @ kernel + input bias and h* = h @ recurrent_kernel
    (+ recurrent bias). With reset_after the bias is (2, 3 * units): row 0
    for the input projection, row 1 for the recurrent one.
    """

    gates = 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 reset_after: bool = True, **kwargs):
        super().__init__(units, activation, **kwargs)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.reset_after = reset_after

    def bias_shape(self):
        width = 3 * self.units
        return (2, width) if self.reset_after else (width,)

    def input_bias(self):
        return self.bias[0] if self.reset_after and self.bias is not None else self.bias

    def step(self, projected, state):
        h = None if state is None else state[0]
        xz, xr, xh = ops.split(projected, 3, axis=-1)
        u = self.units
        if self.reset_after:
            inner = self.recurrent(h)
            if self.bias is not None:
                inner = _plus(self.bias[1], inner)
            hz, hr, hh = (None,) * 3 if inner is None else ops.split(inner, 3, axis=-1)
        else:
            gates = None if h is None else ops.matmul(h, self.recurrent_kernel[:, :2 * u])
            hz, hr = (None, None) if gates is None else ops.split(gates, 2, axis=-1)
        z = self.recurrent_activation(_plus(xz, hz))
        r = self.recurrent_activation(_plus(xr, hr))
        if self.reset_after:
            reset = None if hh is None else ops.multiply(r, hh)
        else:
            reset = None if h is None else \
                ops.matmul(ops.multiply(r, h), self.recurrent_kernel[:, 2 * u:])
        candidate = self.activation(_plus(xh, reset))
        new = ops.multiply(ops.subtract(1.0, z), candidate)
        return (new if h is None else ops.add(ops.multiply(z, h), new),)
