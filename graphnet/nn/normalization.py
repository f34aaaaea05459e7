"""Batch and layer normalization as fused kernels with fused backward ops.

One op, Normalize{axis, eps}(x, gamma, beta), covers both: statistics over
`axis` (batch norm: every axis but the channels; layer norm: the feature
axes), then scale and shift. Its backward ops compute dx and dgamma each in
one kernel; their own gradients (second order) are taken through the same
maths written with primitive ops, so they need no kernels of their own.

    Normalize(x, gamma, beta)       y = (x - mean) / sqrt(var + eps) * gamma + beta
    NormalizeGrad(x, gamma, g)      dx
    NormalizeGammaGrad(x, g, gamma) dgamma (summed to gamma's shape)
    BatchNorm(x, mean, var, gamma, beta)  inference form with given statistics
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.ops import mean, multiply, reshape, sqrt, square, squeeze, subtract
from graphnet.ops.elementwise import float_infer
from graphnet.ops.shape import broadcast_like, sum_to_shape
from graphnet.shapes import broadcast_shapes, format_shape, normalize_axes


def _moments(x: np.ndarray, axis: tuple, eps: float) -> tuple:
    """(x - mean, 1 / sqrt(var + eps)) over `axis`, in x's dtype."""
    centered = x - x.mean(axis=axis, keepdims=True)
    var = np.square(centered).mean(axis=axis, keepdims=True)
    var += x.dtype.type(eps)
    return centered, np.reciprocal(np.sqrt(var, out=var), out=var)


def _check_params(x: Node, *params: Node):
    float_infer(x)
    for p in params:
        try:
            fits = broadcast_shapes(x.shape, p.shape) == x.shape
        except ShapeError:
            fits = False
        if not fits:
            raise ShapeError(f"parameter {format_shape(p.shape)} does not broadcast to the "
                             f"input {format_shape(x.shape)}")


@dataclass(frozen=True)
class Normalize(Op):
    """(x - mean) / sqrt(var + eps) * gamma + beta, statistics over `axis`."""

    axis: tuple
    eps: float

    def infer(self, x, gamma, beta):
        _check_params(x, gamma, beta)
        return x.shape, x.dtype

    def forward(self, x, gamma, beta):
        y, inv_std = _moments(x, self.axis, self.eps)
        y *= inv_std
        y *= gamma
        y += beta
        return y

    def grad(self, node, g):
        x, gamma, _ = node.inputs
        return [apply(NormalizeGrad(self.axis, self.eps), x, gamma, g),
                apply(NormalizeGammaGrad(self.axis, self.eps), x, g, gamma), g]


@dataclass(frozen=True)
class NormalizeGrad(Op):
    """dx of Normalize: inv_std * (h - mean(h) - xhat * mean(h * xhat)), h = g * gamma."""

    axis: tuple
    eps: float

    def infer(self, x, gamma, g):
        return x.shape, x.dtype

    def forward(self, x, gamma, g):
        xhat, inv_std = _moments(x, self.axis, self.eps)
        xhat *= inv_std
        h = g * gamma
        dx = h - h.mean(axis=self.axis, keepdims=True)
        h *= xhat
        xhat *= h.mean(axis=self.axis, keepdims=True)
        dx -= xhat
        dx *= inv_std
        return dx.astype(x.dtype, copy=False)

    def grad(self, node, gg):
        return _partials(lambda x, gamma, g: _dx_composite(x, gamma, g, self.axis, self.eps),
                         node.inputs, gg)


@dataclass(frozen=True)
class NormalizeGammaGrad(Op):
    """dgamma of Normalize: g * xhat summed to gamma's shape (input 2)."""

    axis: tuple
    eps: float

    def infer(self, x, g, gamma):
        return gamma.shape, x.dtype

    def forward(self, x, g, gamma):
        xhat, inv_std = _moments(x, self.axis, self.eps)
        xhat *= inv_std
        xhat *= g
        return sum_to_shape(xhat, gamma.shape).astype(x.dtype, copy=False)

    def grad(self, node, gg):
        x, g, _ = node.inputs
        # gg (gamma's shape) broadcast over x is the gradient of g * xhat
        return _partials(lambda x, g: multiply(g, _xhat_composite(x, self.axis, self.eps)),
                         (x, g), broadcast_like(gg, x)) + [None]


# ----------------------------------- the same maths in primitive ops


def _xhat_composite(x, axis, eps):
    centered = subtract(x, mean(x, axis, keepdims=True))
    return centered / sqrt(mean(square(centered), axis, keepdims=True) + eps)


def normalize_composite(x, gamma, beta, axis, eps) -> Node:
    """Normalize written with primitive ops: the reference the fused kernels
    are tested against, and what their second derivatives go through."""
    return _xhat_composite(x, axis, eps) * gamma + beta


def _dx_composite(x, gamma, g, axis, eps):
    xhat = _xhat_composite(x, axis, eps)
    inv_std = 1 / sqrt(mean(square(subtract(x, mean(x, axis, keepdims=True))), axis,
                            keepdims=True) + eps)
    h = g * gamma
    return inv_std * (h - mean(h, axis, keepdims=True) - xhat * mean(h * xhat, axis, keepdims=True))


@dataclass(frozen=True)
class Alias(Op):
    """x itself under a fresh node, so `gradients` wrt it is a partial derivative."""

    def infer(self, x):
        return x.shape, x.dtype

    def forward(self, x):
        return x

    def grad(self, node, g):
        return [g]


def _partials(composite, inputs, gg) -> list:
    """Partial derivatives of <composite(*inputs), gg> wrt each input.

    The composite is built on aliases of the inputs: one input may depend on
    another (g on x, in a gradient graph), and an op's gradient must not
    follow that path, which `gradients` on the inputs themselves would.
    """
    from graphnet.autodiff import gradients  # autodiff imports the ops: import late

    aliases = [apply(Alias(), i) for i in inputs]
    return gradients(composite(*aliases), aliases, grad_ys=gg)


# ---------------------------------------------------------- user API


def _param(p, x: Node, kept: tuple, default: float) -> Node:
    """gamma/beta as a node that broadcasts against x: None gives `default`;
    a vector along one kept axis that is not the last is reshaped."""
    if p is None:
        return as_node(default, like=x)
    p = as_node(p, like=x)
    kept_sizes = tuple(x.shape[a] for a in kept)
    trailing = kept == tuple(range(x.ndim - len(kept), x.ndim))
    if not trailing and p.ndim == len(kept) and p.shape == kept_sizes:
        return reshape(p, [x.shape[a] if a in kept else 1 for a in range(x.ndim)])
    return p


def layer_norm(x, gamma=None, beta=None, axis=-1, eps: float = 1e-5, name=None) -> Node:
    """Layer normalization over `axis` (an int or a tuple), then `* gamma + beta`.

    gamma and beta have the normalized axes' sizes (Keras' LayerNormalization),
    e.g. (d_model,) for the default axis=-1; None means no scale / no shift.
    """
    x = as_node(x)
    axes = normalize_axes(axis, x.ndim)
    gamma, beta = _param(gamma, x, axes, 1.0), _param(beta, x, axes, 0.0)
    return apply(Normalize(axes, float(eps)), x, gamma, beta, name=name or "layer_norm")


def batch_norm_training(x, gamma=None, beta=None, eps: float = 1e-3, axis: int = -1,
                        name=None) -> tuple:
    """Training-mode batch normalization: statistics of this batch over every
    axis but the channel `axis`. Returns (y, batch_mean, batch_variance); the
    variance is the biased one that y uses (as tf.nn.moments), and mean and
    variance have shape (channels,) for updating moving averages."""
    x = as_node(x)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm_training: expects an input with a batch and a channel "
                         f"axis, got {format_shape(x.shape)}")
    channel = normalize_axes(axis, x.ndim)
    axes = tuple(a for a in range(x.ndim) if a not in channel)
    gamma, beta = _param(gamma, x, channel, 1.0), _param(beta, x, channel, 0.0)
    y = apply(Normalize(axes, float(eps)), x, gamma, beta, name=name or "batch_norm")
    batch_mean, batch_var = moments(x, axes)
    return y, batch_mean, batch_var


def moments(x, axis, keepdims: bool = False) -> tuple:
    """(mean, biased variance) of x over `axis`, like tf.nn.moments."""
    x = as_node(x)
    axes = normalize_axes(axis, x.ndim)
    mu = mean(x, axes, keepdims=True)
    var = mean(square(subtract(x, mu)), axes, keepdims=keepdims)
    return (mu if keepdims else squeeze(mu, axes)), var


@dataclass(frozen=True)
class BatchNorm(Op):
    """Inference-form batch norm with given statistics, in one fused kernel:
    (x - mean) * gamma / sqrt(var + eps) + beta. Its gradients are a few
    elementwise products, written with primitive ops."""

    eps: float

    def infer(self, x, mu, var, gamma, beta):
        _check_params(x, mu, var, gamma, beta)
        return x.shape, x.dtype

    def forward(self, x, mu, var, gamma, beta):
        scale = gamma / np.sqrt(var + x.dtype.type(self.eps))
        y = x - mu
        y *= scale
        y += beta
        return y.astype(x.dtype, copy=False)

    def grad(self, node, g):
        x, mu, var, gamma, _ = node.inputs
        inv_std = 1 / sqrt(var + self.eps)
        dx = g * (gamma * inv_std)
        centered_g = g * subtract(x, mu)
        dvar = centered_g * (gamma * -0.5 * inv_std / (var + self.eps))
        return [dx, -dx, dvar, centered_g * inv_std, g]


def batch_norm(x, mean, variance, gamma=None, beta=None, eps: float = 1e-3, name=None) -> Node:
    """Batch normalization with given (moving) statistics, as in inference:
    (x - mean) / sqrt(variance + eps) * gamma + beta; parameters broadcast
    against x, so (channels,) vectors fit NHWC or (batch, features) inputs.
    None for gamma / beta means no scale / no shift (tf.nn.batch_normalization)."""
    x = as_node(x)
    last = (x.ndim - 1,)
    params = [as_node(p, like=x) for p in (mean, variance)] + [
        _param(gamma, x, last, 1.0), _param(beta, x, last, 0.0)]
    return apply(BatchNorm(float(eps)), x, *params, name=name or "batch_norm")
