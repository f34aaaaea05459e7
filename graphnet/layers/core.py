"""Dense, Flatten, Reshape, Activation and Dropout layers."""

from __future__ import annotations

import numpy as np

from graphnet import activations, nn, ops
from graphnet.errors import ShapeError
from graphnet.layers.base import Layer
from graphnet.shapes import format_shape


class Dense(Layer):
    """activation(x @ kernel + bias) over the last axis of x."""

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def check_input(self, x):
        if x.ndim < 2 or x.shape[-1] is None:
            raise ShapeError(f"Dense '{self.name}' needs input with a known last axis and a "
                             f"batch axis, got {format_shape(x.shape)}")

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units),
                                      self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def call(self, x, training=False):
        y = ops.matmul(x, self.kernel)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(y)


class Flatten(Layer):
    """Everything but the batch axis as one axis: (None, 28, 28) -> (None, 784)."""

    def check_input(self, x):
        if x.ndim < 1 or None in x.shape[1:]:
            raise ShapeError(f"Flatten '{self.name}' needs known sizes after the batch axis, "
                             f"got {format_shape(x.shape)}")

    def call(self, x, training=False):
        return ops.reshape(x, (-1, int(np.prod(x.shape[1:], dtype=np.int64))))


class Reshape(Layer):
    """Reshape each example: `Reshape((28, 28, 1))`; one size may be -1."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def call(self, x, training=False):
        size = int(np.prod(x.shape[1:], dtype=np.int64)) if None not in x.shape[1:] else None
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        if size is not None and (size % known if -1 in self.target_shape else size != known):
            raise ShapeError(f"Reshape '{self.name}' cannot reshape examples of shape "
                             f"{format_shape(x.shape[1:])} to {format_shape(self.target_shape)}")
        target = self.target_shape
        if -1 in target:  # the batch axis takes reshape's one -1, so resolve this one here
            if size is None:
                raise ShapeError(f"Reshape '{self.name}' needs known sizes after the batch axis "
                                 f"to infer -1 in {format_shape(target)}, got "
                                 f"{format_shape(x.shape)}")
            target = tuple(size // known if d == -1 else d for d in target)
        return ops.reshape(x, (-1,) + target)


class Activation(Layer):
    """An activation function as a layer: `Activation("relu")`."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def call(self, x, training=False):
        return self.activation(x)


class Dropout(Layer):
    """Zero a fraction `rate` of inputs in training, scaling the rest by 1/(1-rate)."""

    uses_training = True

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate, self.seed = float(rate), seed

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        return nn.dropout(x, self.rate, training=True, seed=self.seed)
