"""Batch and layer normalization as fused kernels with fused backward ops.

One op, Normalize{axis, eps}(x, gamma, beta), covers both: statistics over
`axis` (batch norm: every axis but the channels; layer norm: the feature
axes), then scale and shift. Its backward ops compute dx and dgamma each in
one kernel; their own gradients (second order) are taken through the same
maths written with primitive ops, so they need no kernels of their own.

Under the numba backend the three ops run compiled row loops in the layer
norm layout (trailing axes reduced): each row's statistics, then the
outputs, in passes over a row while it sits in cache; 3-5x faster than
NumPy's whole-array passes. Other layouts (batch norm) keep NumPy's kernels.

Under the NumPy backend the layer norm layout runs whole-array passes that
write into `out` and into scratch buffers the plan step keeps (`kernel`),
with row sums from BLAS mat-vecs and einsum: no temporaries per step.

    Normalize(x, gamma, beta)       y = (x - mean) / sqrt(var + eps) * gamma + beta
    NormalizeGrad(x, gamma, g)      dx
    NormalizeGammaGrad(x, g, gamma) dgamma (summed to gamma's shape)
    BatchNorm(x, mean, var, gamma, beta)  inference form with given statistics
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.jit import loop
from graphnet.ops import mean, multiply, reshape, sqrt, square, squeeze, subtract
from graphnet.ops.elementwise import float_infer
from graphnet.ops.shape import broadcast_like, sum_to_shape
from graphnet.scratch import kept, ones
from graphnet.shapes import broadcast_shapes, format_shape, normalize_axes


class _Layout:
    """How the kernels see x: as a 2-D matrix with the reduced axes on one
    side, so statistics are one BLAS or einsum call with no temporary and
    elementwise loops run along long rows.

    "rows" (batch norm: leading axes reduced) folds `fold` rows of C
    channels into one row of fold * C values, with per-channel vectors tiled
    to match: NumPy loops over 6 channels at a time were 4x slower.
    "cols" (layer norm: trailing axes reduced) is (rows, features).
    "generic" (any other axes) leaves x as it is.
    """

    def __init__(self, shape: tuple, axis: tuple, param_shapes):
        n, k = len(shape), len(axis)
        self.shape, self.axis, self.mode = shape, axis, "generic"
        if axis == tuple(range(k)) and all(_constant_over(p, n, axis) for p in param_shapes):
            self.mode, self.inner = "rows", shape[k:]
            rows, channels = int(np.prod(shape[:k])), int(np.prod(shape[k:]))
            self.fold = next(f for f in range(max(256 // channels, 1), 0, -1) if rows % f == 0)
            self.count, self.matrix = rows, (rows // self.fold, self.fold * channels)
        elif axis == tuple(range(n - k, n)) and all(
                _constant_over(p, n, range(n - k)) for p in param_shapes):
            self.mode, self.inner = "cols", shape[n - k:]
            self.count = int(np.prod(self.inner))
            self.matrix = (int(np.prod(shape[:n - k])), self.count)

    def view(self, a: np.ndarray) -> np.ndarray:
        """A full-size array in this layout."""
        return a if self.mode == "generic" else a.reshape(self.matrix)

    def back(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(self.shape)

    def param(self, p: np.ndarray) -> np.ndarray:
        """gamma or beta, broadcastable against `view(x)`."""
        if self.mode == "generic":
            return p
        p = p.reshape(p.shape[max(p.ndim - len(self.inner), 0):])  # drop leading 1s
        flat = np.broadcast_to(p, self.inner).ravel()
        return np.tile(flat, self.fold) if self.mode == "rows" else flat

    def mean(self, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        """mean(a) or mean(a * b) over the reduced axes, broadcastable against views."""
        if self.mode == "generic":
            return (a if b is None else a * b).mean(axis=self.axis, keepdims=True)
        side = 0 if self.mode == "rows" else 1
        if b is None:
            ones = np.ones(a.shape[side], a.dtype)
            total = ones @ a if side == 0 else a @ ones
        else:
            total = np.einsum("ij,ij->j" if side == 0 else "ij,ij->i", a, b)
        total /= a.dtype.type(self.count)
        if side == 1:
            return total[:, None]
        return np.tile(total.reshape(self.fold, -1).sum(axis=0), self.fold)

    def sum_to(self, a: np.ndarray, b: np.ndarray, shape: tuple) -> np.ndarray:
        """sum(a * b) down to a parameter's `shape` (dgamma)."""
        if self.mode == "generic":
            return sum_to_shape(a * b, shape)
        return self.columns_to(np.einsum("ij,ij->j", a, b), shape)

    def columns_to(self, total: np.ndarray, shape: tuple) -> np.ndarray:
        """Sums over the rows of the matrix view, summed down to a parameter's `shape`."""
        if self.mode == "rows":
            total = total.reshape(self.fold, -1).sum(axis=0)
        trailing = shape[max(len(shape) - len(self.inner), 0):]   # without leading 1s
        return sum_to_shape(total.reshape(self.inner), trailing).reshape(shape)

    def centered(self, x: np.ndarray, eps: float, out=None) -> tuple:
        """(view(x) - mean, 1 / sqrt(var + eps)); the first is a fresh array,
        or `view(out)`."""
        xv = self.view(x)
        centered = np.subtract(xv, self.mean(xv), out=None if out is None else self.view(out))
        var = self.mean(centered, centered)
        var += x.dtype.type(eps)
        return centered, np.reciprocal(np.sqrt(var, out=var), out=var)


@functools.lru_cache(maxsize=256)
def _layout(shape: tuple, axis: tuple, param_shapes: tuple) -> _Layout:
    """_Layout(...), cached: building one takes longer than a small kernel runs."""
    return _Layout(shape, axis, param_shapes)


def _constant_over(shape: tuple, rank: int, axes) -> bool:
    """True when a parameter of `shape`, broadcast to `rank` axes, has size 1 on `axes`."""
    padded = (1,) * (rank - len(shape)) + tuple(shape)
    return all(padded[a] == 1 for a in axes)


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
class _Statistics(Op):
    """What the three kernels share: the axes of the statistics, and eps."""

    axis: tuple
    eps: float

    @property
    def backends(self) -> tuple:
        """The numba loops run the layer norm layout (trailing axes); batch
        norm, whose statistics span the batch axis 0, keeps NumPy's kernels."""
        return () if 0 in self.axis else ("numba",)


@dataclass(frozen=True)
class Normalize(_Statistics):
    """(x - mean) / sqrt(var + eps) * gamma + beta, statistics over `axis`."""

    writes_out = True

    def infer(self, x, gamma, beta):
        _check_params(x, gamma, beta)
        return x.shape, x.dtype

    def forward(self, x, gamma, beta, out=None, scratch=None):
        layout = _layout(x.shape, self.axis, (gamma.shape, beta.shape))
        if _loop_fits(layout, x, gamma, beta):   # layer norm layout, one dtype
            out = np.empty(x.shape, x.dtype) if out is None else out
            _normalize_passes(layout.view(x), layout.param(gamma), layout.param(beta),
                              self.eps, layout.view(out), scratch)
            return out
        y, inv_std = layout.centered(x, self.eps, out)
        gamma = layout.param(gamma)
        scale = inv_std * gamma
        if scale.size < y.size:   # batch norm: one scale per channel
            y *= scale
        else:                     # layer norm: inv_std per row, gamma per column
            y *= inv_std
            y *= gamma
        y += layout.param(beta)
        return layout.back(y)

    def forward_loop(self, x, gamma, beta, out=None, scratch=None):
        """forward by `_normalize_rows` in the layer norm layout."""
        layout = _layout(x.shape, self.axis, (gamma.shape, beta.shape))
        if not _loop_fits(layout, x):
            return self.forward(x, gamma, beta, out=out, scratch=scratch)
        xv, out = layout.view(x), np.empty(x.shape, x.dtype) if out is None else out
        _normalize_rows(xv, *_statistics(xv, self.eps), _row_param(layout, gamma, x),
                        _row_param(layout, beta, x), layout.view(out))
        return out

    def grad(self, node, g):
        x, gamma, _ = node.inputs
        return [apply(NormalizeGrad(self.axis, self.eps), x, gamma, g),
                apply(NormalizeGammaGrad(self.axis, self.eps), x, g, gamma), g]


@dataclass(frozen=True)
class NormalizeGrad(_Statistics):
    """dx of Normalize: inv_std * (h - mean(h) - xhat * mean(h * xhat)), h = g * gamma."""

    writes_out = True

    def infer(self, x, gamma, g):
        return x.shape, x.dtype

    def forward(self, x, gamma, g, out=None, scratch=None):
        layout = _layout(x.shape, self.axis, (gamma.shape,))
        if _loop_fits(layout, x, gamma, g):
            out = np.empty(x.shape, x.dtype) if out is None else out
            _normalize_grad_passes(layout.view(x), layout.param(gamma), layout.view(g),
                                   self.eps, layout.view(out), scratch)
            return out
        xhat, inv_std = layout.centered(x, self.eps)
        xhat *= inv_std
        h = layout.view(g) * layout.param(gamma)
        h_xhat = layout.mean(h, xhat)
        h -= layout.mean(h)
        xhat *= h_xhat
        h -= xhat
        if out is None:
            h *= inv_std
            return layout.back(h).astype(x.dtype, copy=False)
        np.multiply(h, inv_std, out=layout.view(out))
        return out

    def forward_loop(self, x, gamma, g, out=None, scratch=None):
        """forward by `_normalize_grad_rows` in the layer norm layout."""
        layout = _layout(x.shape, self.axis, (gamma.shape,))
        if not _loop_fits(layout, x, g):
            return self.forward(x, gamma, g, out=out, scratch=scratch)
        xv, out = layout.view(x), np.empty(x.shape, x.dtype) if out is None else out
        _normalize_grad_rows(xv, *_statistics(xv, self.eps), _row_param(layout, gamma, x),
                             layout.view(g), layout.view(out))
        return out

    def grad(self, node, gg):
        return _partials(lambda x, gamma, g: _dx_composite(x, gamma, g, self.axis, self.eps),
                         node.inputs, gg)


@dataclass(frozen=True)
class NormalizeGammaGrad(_Statistics):
    """dgamma of Normalize: g * xhat summed to gamma's shape (input 2)."""

    def infer(self, x, g, gamma):
        return gamma.shape, x.dtype

    def forward(self, x, g, gamma, scratch=None):
        layout = _layout(x.shape, self.axis, (gamma.shape,))
        if _loop_fits(layout, x, g):
            total = _gamma_grad_passes(layout.view(x), layout.view(g), self.eps, scratch)
            return layout.columns_to(total, gamma.shape).astype(x.dtype, copy=False)
        xhat, inv_std = layout.centered(x, self.eps)
        xhat *= inv_std
        return layout.sum_to(xhat, layout.view(g), gamma.shape).astype(x.dtype, copy=False)

    def forward_loop(self, x, g, gamma, scratch=None):
        """forward by `_gamma_grad_rows` in the layer norm layout."""
        layout = _layout(x.shape, self.axis, (gamma.shape,))
        if not _loop_fits(layout, x, g):
            return self.forward(x, g, gamma, scratch=scratch)
        xv, total = layout.view(x), np.zeros(layout.count)   # float64: a sum over every row
        _gamma_grad_rows(xv, *_statistics(xv, self.eps), layout.view(g), total)
        return layout.columns_to(total, gamma.shape).astype(x.dtype)

    def grad(self, node, gg):
        x, g, _ = node.inputs
        # gg (gamma's shape) broadcast over x is the gradient of g * xhat
        return _partials(lambda x, g: multiply(g, _xhat_composite(x, self.axis, self.eps)),
                         (x, g), broadcast_like(gg, x)) + [None]


# ------------------------------------------ row passes (NumPy backend)
# x is a (rows, features) matrix; each step is one NumPy pass over it.
# Per-row factors are applied by broadcasting, so that no pass needs an
# (rows, features) temporary beyond the kept `centered` buffer.


def _centered_rows(x: np.ndarray, eps: float, centered: np.ndarray, scratch) -> np.ndarray:
    """Write x - mean (per row) into `centered`; return 1 / sqrt(var + eps) per
    row, a scratch vector. The variance is that of the centered values: the
    mean of the squares less the squared mean would cancel."""
    rows, n = x.shape[0], x.dtype.type(x.shape[1])
    stat = kept(scratch, "row statistic", (rows,), x.dtype)
    mean = np.matmul(x, ones(x.shape[1], x.dtype), out=stat)
    mean /= n
    np.subtract(x, mean[:, None], out=centered)
    inv_std = np.einsum("ij,ij->i", centered, centered, out=stat)   # mean is used up
    inv_std /= n
    inv_std += x.dtype.type(eps)
    return np.reciprocal(np.sqrt(inv_std, out=inv_std), out=inv_std)


def _normalize_passes(x, gamma, beta, eps, out, scratch):
    """out = (x - mean) * inv_std * gamma + beta, per row."""
    inv_std = _centered_rows(x, eps, out, scratch)
    out *= inv_std[:, None]
    out *= gamma
    out += beta


def _normalize_grad_passes(x, gamma, g, eps, out, scratch):
    """dx = inv_std * (h - mean(h) - xhat * mean(h * xhat)), h = g * gamma,
    xhat = c * inv_std with c = x - mean, rearranged so that each per-row
    factor takes one pass: dx = inv_std * h + a * c + b with
    a = -inv_std**3 * mean(h * c) and b = -inv_std * mean(h)."""
    rows, n = x.shape[0], x.dtype.type(x.shape[1])
    c = kept(scratch, "centered", x.shape, x.dtype)
    inv_std = _centered_rows(x, eps, c, scratch)
    h = np.multiply(g, gamma, out=out)
    a = np.einsum("ij,ij->i", h, c, out=kept(scratch, "a", (rows,), x.dtype))
    b = np.matmul(h, ones(x.shape[1], x.dtype), out=kept(scratch, "b", (rows,), x.dtype))
    a *= inv_std
    a *= inv_std
    a *= inv_std
    a *= -1 / n
    b *= inv_std
    b *= -1 / n
    out *= inv_std[:, None]
    c *= a[:, None]
    out += c
    out += b[:, None]


def _gamma_grad_passes(x, g, eps, scratch) -> np.ndarray:
    """dgamma before summing to gamma's shape: the column sums of g * xhat,
    as inv_std @ (g * c), c = x - mean: one pass and a BLAS vector-matrix product."""
    c = kept(scratch, "centered", x.shape, x.dtype)
    inv_std = _centered_rows(x, eps, c, scratch)
    c *= g
    return inv_std @ c


# ------------------------------------- compiled loops (numba backend)


def _loop_fits(layout: _Layout, x: np.ndarray, *others: np.ndarray) -> bool:
    """True when the row loops can run: layer norm layout, float32 or float64."""
    return (layout.mode == "cols" and x.dtype in (np.float32, np.float64)
            and all(a.dtype == x.dtype for a in others))


def _row_param(layout: _Layout, p: np.ndarray, x: np.ndarray) -> np.ndarray:
    """gamma or beta as one value per column, in x's dtype."""
    return np.ascontiguousarray(layout.param(p), dtype=x.dtype)


def _statistics(x: np.ndarray, eps: float) -> tuple:
    """(mean, 1 / sqrt(var + eps)) of each row of the matrix `x`."""
    mean, inv_std = np.empty(x.shape[0], x.dtype), np.empty(x.shape[0], x.dtype)
    _row_statistics(x, x.dtype.type(eps), mean, inv_std)
    return mean, inv_std


# Row values are read into scalars before the inner loops, so that the
# compiler need not reload them after every store (and can vectorize).


@loop
def _row_statistics(x, eps, mean, inv_std):
    inv_n = x.dtype.type(1) / x.dtype.type(x.shape[1])
    for i in range(x.shape[0]):
        total = x.dtype.type(0)
        for j in range(x.shape[1]):
            total += x[i, j]
        m = total * inv_n
        squares = x.dtype.type(0)   # a second pass, while the row is in cache: accurate
        for j in range(x.shape[1]):
            squares += (x[i, j] - m) * (x[i, j] - m)
        mean[i], inv_std[i] = m, x.dtype.type(1) / np.sqrt(squares * inv_n + eps)


@loop
def _normalize_rows(x, mean, inv_std, gamma, beta, out):
    for i in range(x.shape[0]):
        m, r = mean[i], inv_std[i]
        for j in range(x.shape[1]):
            out[i, j] = (x[i, j] - m) * r * gamma[j] + beta[j]


@loop
def _normalize_grad_rows(x, mean, inv_std, gamma, g, out):
    """dx = inv_std * (h - mean(h) - xhat * mean(h * xhat)), h = g * gamma."""
    inv_n = x.dtype.type(1) / x.dtype.type(x.shape[1])
    for i in range(x.shape[0]):
        m, r = mean[i], inv_std[i]
        h_sum = h_xhat_sum = x.dtype.type(0)
        for j in range(x.shape[1]):
            h = g[i, j] * gamma[j]
            h_sum += h
            h_xhat_sum += h * ((x[i, j] - m) * r)
        h_mean, h_xhat = h_sum * inv_n, h_xhat_sum * inv_n
        for j in range(x.shape[1]):
            out[i, j] = r * (g[i, j] * gamma[j] - h_mean - (x[i, j] - m) * r * h_xhat)


@loop
def _gamma_grad_rows(x, mean, inv_std, g, total):
    """total[j] += g * xhat over the rows."""
    for i in range(x.shape[0]):
        m, r = mean[i], inv_std[i]
        for j in range(x.shape[1]):
            total[j] += g[i, j] * ((x[i, j] - m) * r)


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

    view = True   # forward returns its input

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
        channels_last = tuple(range(x.ndim - 1))   # per-channel vectors are tiled
        layout = _layout(x.shape, channels_last, (mu.shape, scale.shape, beta.shape))
        y = layout.view(x) - layout.param(mu)
        y *= layout.param(scale)
        y += layout.param(beta)
        return layout.back(y).astype(x.dtype, copy=False)

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
