"""Conv2D and the 2-D pooling layers (NHWC, TensorFlow's conventions)."""

from __future__ import annotations

import math

from graphnet import activations, nn, ops
from graphnet.errors import ShapeError
from graphnet.layers.base import Layer
from graphnet.nn.windows import pair
from graphnet.shapes import format_shape


def check_nhwc(layer: Layer, x):
    """A 4-D (batch, height, width, channels) input, or an error that says how to get one."""
    if x.ndim == 4:
        return
    hint = "; add a Reshape((height, width, channels)) layer first"
    if x.ndim == 2 and x.shape[1] is not None and math.isqrt(x.shape[1]) ** 2 == x.shape[1]:
        side = math.isqrt(x.shape[1])
        hint = f"; add Reshape(({side}, {side}, 1))"
    elif x.ndim == 3:
        hint = f"; add Reshape({x.shape[1:] + (1,)}) for one channel"
    raise ShapeError(f"{type(layer).__name__} '{layer.name}' expects 4-D NHWC input, got "
                     f"{format_shape(x.shape)}{hint}")


class Conv2D(Layer):
    """activation(conv2d(x, kernel) + bias) with a (kh, kw, in, filters) kernel."""

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid", dilation_rate=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), pair(kernel_size, "kernel_size")
        self.strides, self.padding, self.dilation_rate = strides, padding, dilation_rate
        self.activation, self.use_bias = activations.get(activation), use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer

    def check_input(self, x):
        check_nhwc(self, x)
        if x.shape[-1] is None:
            raise ShapeError(f"Conv2D '{self.name}' needs a known channel count, got "
                             f"{format_shape(x.shape)}")

    def build(self, input_shape):
        shape = self.kernel_size + (input_shape[-1], self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer,
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def call(self, x, training=False):
        y = nn.conv2d(x, self.kernel, self.strides, self.padding, self.dilation_rate)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return self.activation(y)


class _Pool2D(Layer):
    pool = None

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.padding = pool_size, strides, padding

    def check_input(self, x):
        check_nhwc(self, x)

    def call(self, x, training=False):
        return type(self).pool(x, self.pool_size, self.strides, self.padding)


class MaxPool2D(_Pool2D):
    """The largest value of each pool_size window (strides default to pool_size)."""

    pool = staticmethod(nn.max_pool2d)


class AvgPool2D(_Pool2D):
    """The mean of each pool_size window (strides default to pool_size)."""

    pool = staticmethod(nn.avg_pool2d)


class GlobalAveragePooling2D(Layer):
    """The mean over height and width: (N, H, W, C) -> (N, C)."""

    def check_input(self, x):
        check_nhwc(self, x)

    def call(self, x, training=False):
        return ops.mean(x, axis=(1, 2))


MaxPooling2D, AveragePooling2D = MaxPool2D, AvgPool2D
