"""BatchNormalization and LayerNormalization."""

from __future__ import annotations

from graphnet import nn, ops
from graphnet.errors import ShapeError
from graphnet.layers.base import Layer
from graphnet.shapes import format_shape, normalize_axis


class BatchNormalization(Layer):
    """Normalize each channel (the last axis) by batch statistics in training and
    by moving averages in inference; training also updates the averages:
    moving = momentum * moving + (1 - momentum) * batch (Keras' rule)."""

    uses_training = True

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum, self.epsilon, self.center, self.scale = momentum, epsilon, center, scale
        self.updates: list = []

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ShapeError(f"BatchNormalization '{self.name}' needs a known channel axis, "
                             f"got {format_shape(input_shape)}")
        self.gamma = self.add_weight("gamma", (channels,), "ones") if self.scale else None
        self.beta = self.add_weight("beta", (channels,), "zeros") if self.center else None
        self.moving_mean = self.add_weight("moving_mean", (channels,), "zeros", trainable=False)
        self.moving_variance = self.add_weight("moving_variance", (channels,), "ones",
                                               trainable=False)

    def call(self, x, training=False):
        if not self.trainable:  # a frozen batch norm infers and keeps its averages (Keras)
            self.updates = []
        if not training or not self.trainable:
            return nn.batch_norm(x, self.moving_mean, self.moving_variance, self.gamma,
                                 self.beta, self.epsilon)
        y, mean, variance = nn.batch_norm_training(x, self.gamma, self.beta, self.epsilon)
        keep = self.momentum
        self.updates = [
            ops.assign(self.moving_mean, self.moving_mean * keep + mean * (1 - keep)),
            ops.assign(self.moving_variance, self.moving_variance * keep + variance * (1 - keep)),
        ]
        return y


class LayerNormalization(Layer):
    """Normalize each example over `axis` (default the last), then scale and shift."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon, self.center, self.scale = axis, epsilon, center, scale

    def build(self, input_shape):
        axes = (self.axis,) if isinstance(self.axis, int) else tuple(self.axis)
        axes = sorted(normalize_axis(a, len(input_shape)) for a in axes)
        shape = tuple(input_shape[a] for a in axes)
        if None in shape or 0 in axes:
            raise ShapeError(f"LayerNormalization '{self.name}' normalizes axes {self.axis} of "
                             f"{format_shape(input_shape)}; they must be known, non-batch axes")
        self.axes = tuple(axes)
        self.gamma = self.add_weight("gamma", shape, "ones") if self.scale else None
        self.beta = self.add_weight("beta", shape, "zeros") if self.center else None

    def call(self, x, training=False):
        return nn.layer_norm(x, self.gamma, self.beta, axis=self.axes, eps=self.epsilon)
