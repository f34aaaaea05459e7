"""2-D convolution (NHWC input, (kh, kw, in, out) kernel, TensorFlow's conventions).

Three ops, each the adjoint of the others, so gradients of any order are
built from the same three kernels:

    Conv2D(x, w[, cols])                  y = conv(x, w)                 im2col + one matmul
    Conv2DBackpropInput(g, w, x)          dx = conv^T(g, w)  (x: shape)  one matmul + col2im
    Conv2DBackpropFilter(x, g, w[, cols]) dw                 (w: shape)  one matmul over im2col

With one group, `conv2d` builds the patch matrix of x once, as an Im2Col node
(adjoint: Col2Im), and passes it as the optional `cols` input to Conv2D and,
through Conv2D's gradient, to Conv2DBackpropFilter: a training step copies
the windows of x once. `cols` is a cache of x, not a separate argument: the
ops give x its whole gradient and `cols` none.

Under the numba backend, Conv2DBackpropInput and Col2Im scatter the patch
matrix back onto the image with a compiled loop (graphnet/jit.py; one per
im2col layout) instead of kh*kw strided NumPy adds, a cache-sized chunk of
images at a time; the matmuls stay BLAS calls (loops measured no faster).
For a stride-1 convolution of an input with one channel into a few
(`direct_convolution`), the compiler's `direct_convolutions` pass drops the
Im2Col input under numba: Conv2D and Conv2DBackpropFilter then run direct
loops over a zero-padded channels-first copy of x (`_conv_direct`,
`_filter_direct`) instead of skinny matmuls over a patch matrix: forward and
kernel gradient together about 1.8x faster than im2col and the two matmuls
for LeNet's first convolution. Without Im2Col any other convolution makes
its patches in its own kernels.

Like TensorFlow, the kernel is applied as a cross-correlation (no flip).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from graphnet.errors import ShapeError
from graphnet.graph import Node, Op, apply, as_node
from graphnet.jit import loop
from graphnet.nn.windows import (
    canonical_padding,
    check_nhwc,
    crop_hw,
    pad_hw,
    pair,
    patches,
    run_geometry,
    static_output_hw,
    tap,
)
from graphnet.scratch import kept
from graphnet.shapes import format_shape


@dataclass(frozen=True)
class ConvAttributes(Op):
    """What the three convolution ops share: geometry and groups."""

    strides: tuple
    padding: object   # "same" or ((top, bottom), (left, right))
    dilation: tuple
    groups: int = 1

    def window(self, kernel_hw: tuple) -> tuple:
        """The effective (dilated) window: d * (k - 1) + 1 per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(kernel_hw, self.dilation, strict=True))

    def geometry(self, x_shape: tuple, kernel_hw: tuple) -> tuple:
        """(pads, out_hw) for a run-time input shape (worked out once per shape:
        every run of a plan asks again)."""
        return run_geometry(self.padding, tuple(x_shape[1:3]), self.window(kernel_hw),
                            self.strides)

    def like(self, op_class) -> Op:
        """The op of class `op_class` with these same attributes."""
        return op_class(**self.attributes())

    def direct_operands(self, x, kernel_shape: tuple, scratch: dict | None) -> tuple:
        """What the direct loops (`direct_convolution`) read: (x padded and
        channels first, where each kernel tap reads in it, the output's
        (height, width), the output channels rounded up to even: the loops
        make two at a time)."""
        kh, kw, _, cout = kernel_shape
        pads, out_hw = self.geometry(x.shape, (kh, kw))
        xp = _padded_channels_first(x, pads, scratch)
        return xp, _taps(xp.shape, (kh, kw), self.dilation), out_hw, cout + cout % 2

    def patches(self, xp, kernel_hw: tuple, out_hw: tuple, rows: bool, scratch: dict | None):
        """The patch matrix of padded xp (one group), made by a kernel that
        has no Im2Col input: into a buffer kept in `scratch` when given."""
        if scratch is None:
            return patches(xp, kernel_hw, out_hw, self.strides, self.dilation, rows)
        m, k = xp.shape[0] * out_hw[0] * out_hw[1], kernel_hw[0] * kernel_hw[1] * xp.shape[3]
        buffer = kept(scratch, "patches", (m, k) if rows else (k, m), xp.dtype)
        return patches(xp, kernel_hw, out_hw, self.strides, self.dilation, rows, buffer)


def _rows_layout(channels: int, kw: int, out_w: int) -> bool:
    """Im2col layout: one row per output pixel unless the windows' contiguous
    runs (kw * channels values) are shorter than an output row (measured:
    3x faster for LeNet's 1-channel input, 3x slower for its 6-channel one)."""
    return channels * kw >= out_w


def _group_slices(groups: int, cin: int, cout: int):
    """(input-channel slice, output-channel slice) per group."""
    cg, og = cin // groups, cout // groups
    return [(slice(i * cg, (i + 1) * cg), slice(i * og, (i + 1) * og)) for i in range(groups)]


def _zeroed(out, shape: tuple, dtype) -> np.ndarray:
    """`out` (the plan's buffer) filled with zeros, or a new array of zeros."""
    if out is None:
        return np.zeros(shape, dtype)
    out.fill(0)
    return out


#: Values of the patch matrix that Conv2DBackpropInput's loop makes at a time
#: (512 KiB of float32): the scatter then reads them from cache.
CHUNK = 1 << 17


@loop
def _col2im(cols, strides, dilation, offsets, c0, out):
    """out[n, s*i + d*a - top, s*j + d*b - left, c0 + c] += cols[n, i, j, a, b, c]
    for every tap inside out: the adjoint of im2col (cols and out C-contiguous).

    With dilation 1 along W and all channels in one group, a window row's
    kw*C values are contiguous in out as in cols: one slice add each. Slices,
    not an index loop: Numba wraps negative indices, and with that select in
    the addresses LLVM vectorizes the loop with slow gathers and scatters."""
    nb, ho, wo, kh, kw, cg = cols.shape
    _, h, w, channels = out.shape
    runs = cols.reshape(nb, ho, wo, kh, kw * cg)
    rows = out.reshape(nb, h, w * channels)
    contiguous = dilation[1] == 1 and cg == channels
    for n in range(nb):
        for i in range(ho):
            for a in range(kh):
                r = i * strides[0] + a * dilation[0] - offsets[0]
                if r < 0 or r >= h:
                    continue
                for j in range(wo):
                    q0 = j * strides[1] - offsets[1]   # the column of tap b = 0
                    if contiguous:
                        lo, hi = max(0, -q0), min(kw, w - q0)
                        if lo < hi:
                            run = rows[n, r, (q0 + lo) * cg:(q0 + hi) * cg]
                            run += runs[n, i, j, a, lo * cg:hi * cg]
                        continue
                    for b in range(kw):
                        q = q0 + b * dilation[1]
                        if 0 <= q < w:
                            pixel = out[n, r, q, c0:c0 + cg]
                            pixel += cols[n, i, j, a, b]


@loop
def _col2im_channels_first(cols, strides, dilation, offsets, c0, out):
    """`_col2im` for cols laid out (kh, kw, C, N, Ho, Wo), the layout for few
    channels: each (a, b, c, n, i) adds a run of Wo values to a row of out
    (contiguous for one channel and stride 1)."""
    kh, kw, cg, nb, ho, wo = cols.shape
    _, h, w, _ = out.shape
    for a in range(kh):
        for b in range(kw):
            q0 = b * dilation[1] - offsets[1]   # the column of window j = 0
            j_lo = max(0, (strides[1] - 1 - q0) // strides[1])
            j_hi = min(wo, (w - 1 - q0) // strides[1] + 1)
            if j_lo >= j_hi:
                continue
            q_lo, q_hi = q0 + j_lo * strides[1], q0 + (j_hi - 1) * strides[1] + 1
            for c in range(cg):
                for n in range(nb):
                    for i in range(ho):
                        r = i * strides[0] + a * dilation[0] - offsets[0]
                        if 0 <= r < h:
                            run = out[n, r, q_lo:q_hi:strides[1], c0 + c]
                            run += cols[a, b, c, n, i, j_lo:j_hi]


#: The most input and output channels of a convolution that skips im2col
#: (`direct_convolution`). Measured, 64 images of 28x28, one thread: direct loops took
#: 0.6-0.8x the time of im2col and the two matmuls for 5x5 kernels with 4 to
#: 12 output channels, 0.9x for 3x3 with 8, 1.5x for 3x3 with 16, and
#: 1.3-1.5x with 2 or 3 input channels.
DIRECT_CHANNELS, DIRECT_OUTPUTS = 1, 8


def direct_convolution(op: ConvAttributes, channels, outputs) -> bool:
    """Whether a convolution runs direct loops under numba instead of a
    matmul over its patch matrix: one group, stride 1, few input and output
    channels, where the matmul is skinny (K = kh*kw*C, N = out) and the
    patch matrix costs about as much to copy as the product."""
    return (op.groups == 1 and op.strides == (1, 1) and None not in (channels, outputs)
            and channels <= DIRECT_CHANNELS and outputs <= DIRECT_OUTPUTS)


def _padded_channels_first(x: np.ndarray, pads: tuple, scratch: dict | None) -> np.ndarray:
    """x zero-padded along H and W, channels first: (N, C, Hp, Wp). Kept in
    `scratch`: its border stays zero, each run copies x into the middle."""
    (top, bottom), (left, right) = pads
    n, h, w, c = x.shape
    xp = kept(scratch, "channels first", (n, c, h + top + bottom, w + left + right), x.dtype)
    np.copyto(xp[:, :, top:top + h, left:left + w], x.transpose(0, 3, 1, 2))
    return xp


@functools.lru_cache(maxsize=256)
def _taps(xp_shape: tuple, kernel_hw: tuple, dilation: tuple) -> np.ndarray:
    """Where tap (c, a, b) of a stride-1 window reads, relative to the
    window's first pixel, in one image of xp flattened: (C*kh*kw,) offsets
    (read-only, cached: every run asks again)."""
    _, c, hp, wp = xp_shape
    channel, row, column = np.ogrid[:c, :kernel_hw[0], :kernel_hw[1]]
    offsets = (channel * hp * wp + row * dilation[0] * wp + column * dilation[1]).ravel()
    offsets.flags.writeable = False
    return offsets


@loop
def _conv_direct(xp, weights, offsets, rows, out):
    """out[n, i, j, o] = sum_t weights[o, t] * xp[n, offsets[t] + i*Wp + j]:
    a stride-1 convolution, xp the padded input channels first (`_taps`,
    weights[o] the kernel's column o in the same tap order).

    An image of xp is one row of C*Hp*Wp values; output pixel (i, j) sits at
    p = i*Wp + j of a channels-first image Wp wide (`rows`, an even number
    of channels, the last one spare when Cout is odd), so each tap is one
    long contiguous multiply-add over p (the columns between Wo and Wp are
    computed and dropped). Two output channels and four taps a pass use each
    value of x read eight times."""
    nb, ho, wo, cout = out.shape
    wp = rows.shape[1] // ho
    m = (ho - 1) * wp + wo
    taps = len(offsets)
    full = taps - taps % 4
    images = xp.reshape(nb, -1)
    for n in range(nb):
        image = images[n]
        rows[:] = 0
        for o in range(0, rows.shape[0], 2):
            y0, y1 = rows[o, :m], rows[o + 1, :m]
            for t in range(0, full, 4):
                x0 = image[offsets[t]:offsets[t] + m]
                x1 = image[offsets[t + 1]:offsets[t + 1] + m]
                x2 = image[offsets[t + 2]:offsets[t + 2] + m]
                x3 = image[offsets[t + 3]:offsets[t + 3] + m]
                a0, a1 = weights[o, t], weights[o, t + 1]
                a2, a3 = weights[o, t + 2], weights[o, t + 3]
                b0, b1 = weights[o + 1, t], weights[o + 1, t + 1]
                b2, b3 = weights[o + 1, t + 2], weights[o + 1, t + 3]
                for p in range(m):
                    y0[p] += a0 * x0[p] + a1 * x1[p] + a2 * x2[p] + a3 * x3[p]
                    y1[p] += b0 * x0[p] + b1 * x1[p] + b2 * x2[p] + b3 * x3[p]
            for t in range(full, taps):
                x0 = image[offsets[t]:offsets[t] + m]
                a0, b0 = weights[o, t], weights[o + 1, t]
                for p in range(m):
                    y0[p] += a0 * x0[p]
                    y1[p] += b0 * x0[p]
        for i in range(ho):
            for j in range(wo):
                for o in range(cout):
                    out[n, i, j, o] = rows[o, i * wp + j]


@loop
def _channels_first(g, rows):
    """rows[n, o, i*Wp + j] = g[n, i, j, o]: g's pixels channels first, on
    rows Wp wide (the rest of `rows` is left as it is)."""
    nb, ho, wo, cout = g.shape
    wp = rows.shape[2] // ho
    for n in range(nb):
        for i in range(ho):
            for j in range(wo):
                for o in range(cout):
                    rows[n, o, i * wp + j] = g[n, i, j, o]


@loop
def _filter_direct(xp, rows, offsets, wo, sums):
    """sums[o, t] = sum_{n, p} rows[n, o, p] * xp[n, offsets[t] + p]: the
    kernel gradient of `_conv_direct`'s convolution, rows its output
    gradient channels first on rows Wp wide (`_channels_first`; zero past
    column Wo, and in the spare last channel when Cout is odd).

    Each (channel, tap) is a dot product over one contiguous run per image;
    two channels and four taps a pass keep eight sums in registers."""
    nb, channels, size = rows.shape
    wp = xp.shape[3]
    m = size - wp + wo   # up to the last output pixel
    taps = len(offsets)
    full = taps - taps % 4
    images = xp.reshape(nb, -1)
    zero = sums.dtype.type(0)
    sums[:] = 0
    for n in range(nb):
        image = images[n]
        for o in range(0, channels, 2):
            g0, g1 = rows[n, o], rows[n, o + 1]
            for t in range(0, full, 4):
                x0 = image[offsets[t]:offsets[t] + m]
                x1 = image[offsets[t + 1]:offsets[t + 1] + m]
                x2 = image[offsets[t + 2]:offsets[t + 2] + m]
                x3 = image[offsets[t + 3]:offsets[t + 3] + m]
                a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
                for p in range(m):
                    u, v = g0[p], g1[p]
                    a0 += u * x0[p]
                    a1 += u * x1[p]
                    a2 += u * x2[p]
                    a3 += u * x3[p]
                    b0 += v * x0[p]
                    b1 += v * x1[p]
                    b2 += v * x2[p]
                    b3 += v * x3[p]
                sums[o, t] += a0
                sums[o, t + 1] += a1
                sums[o, t + 2] += a2
                sums[o, t + 3] += a3
                sums[o + 1, t] += b0
                sums[o + 1, t + 1] += b1
                sums[o + 1, t + 2] += b2
                sums[o + 1, t + 3] += b3
            for t in range(full, taps):
                x0 = image[offsets[t]:offsets[t] + m]
                a0 = b0 = zero
                for p in range(m):
                    a0 += g0[p] * x0[p]
                    b0 += g1[p] * x0[p]
                sums[o, t] += a0
                sums[o + 1, t] += b0


# ------------------------------------------------------------- forward


@dataclass(frozen=True)
class Conv2D(ConvAttributes):
    """y[n, i, j, o] = sum_{a, b, c} xpad[n, s*i + d*a, s*j + d*b, c] * w[a, b, c, o].

    `cols`, when given, is Im2Col(x, w): the patch matrix, shared with the
    kernel gradient (one group only). Without it, under numba, a
    `direct_convolution` runs `_conv_direct`; any other makes its patches."""

    writes_out = True
    backends = ("numba",)

    def infer(self, x, w, cols=None):
        check_nhwc(x)
        if w.ndim != 4:
            raise ShapeError(f"expects a 4-D kernel (kh, kw, in, out), got {format_shape(w.shape)}")
        if w.dtype.kind != "f":
            raise ShapeError(f"expects a floating-point kernel, got {w.dtype.name}")
        kh, kw, cin, cout = w.shape
        channels = x.shape[3]
        if None not in (channels, cin) and channels != cin * self.groups:
            per_group = f" per group x {self.groups} groups" if self.groups > 1 else ""
            raise ShapeError(f"input {format_shape(x.shape)} has {channels} channels but the "
                             f"kernel {format_shape(w.shape)} takes {cin}{per_group}")
        if cout is not None and cout % self.groups:
            raise ShapeError(f"kernel {format_shape(w.shape)}: {cout} output channels do not split "
                             f"into {self.groups} groups")
        if None in (kh, kw):  # a kernel fed at run time: the output size is too
            out_hw = (None, None)
        else:
            out_hw = static_output_hw(x.shape, self.padding, self.window((kh, kw)), self.strides,
                                      "kernel window")
        return (x.shape[0], *out_hw, cout), np.result_type(x.dtype, w.dtype)

    def forward(self, x, w, cols=None, out=None, scratch=None):
        dtype = np.result_type(x, w)
        x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
        kh, kw, _, cout = w.shape
        pads, (ho, wo) = self.geometry(x.shape, (kh, kw))
        out2 = None if out is None else out.reshape(-1, cout)
        rows = _rows_layout(x.shape[3], kw, wo)
        if cols is None and self.groups == 1:
            cols = self.patches(pad_hw(x, pads, scratch=scratch), (kh, kw), (ho, wo), rows, scratch)
        if cols is not None:  # one group
            w2 = w.reshape(-1, cout)
            y = np.matmul(cols if rows else cols.T, w2, out=out2)
            return y.reshape(x.shape[0], ho, wo, cout) if out is None else out
        xp = pad_hw(x, pads, scratch=scratch)
        parts = []
        for cs, os in _group_slices(self.groups, x.shape[3], cout):
            xg, wg = xp[..., cs], w[..., os]
            rows = _rows_layout(xg.shape[3], kw, wo)
            cols = self.patches(xg, (kh, kw), (ho, wo), rows, scratch)
            w2 = wg.reshape(-1, wg.shape[3])
            parts.append(cols @ w2 if rows else cols.T @ w2)
        if out is None:
            y = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            return y.reshape(x.shape[0], ho, wo, cout)
        np.concatenate(parts, axis=1, out=out2)
        return out

    def forward_loop(self, x, w, cols=None, out=None, scratch=None):
        if cols is not None or not direct_convolution(self, x.shape[3], w.shape[3]):
            return self.forward(x, w, cols, out, scratch)
        dtype = np.result_type(x, w)
        x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
        xp, taps, (ho, wo), channels = self.direct_operands(x, w.shape, scratch)
        cout = w.shape[3]
        weights = kept(scratch, "weights", (channels, len(taps)), dtype)
        np.copyto(weights[:cout], w.transpose(3, 2, 0, 1).reshape(cout, -1))
        rows = kept(scratch, "rows", (channels, ho * xp.shape[3]), dtype)
        out = np.empty((x.shape[0], ho, wo, cout), dtype) if out is None else out
        _conv_direct(xp, weights, taps, rows, out)
        return out

    def grad(self, node, g):
        x, w, *cols = node.inputs  # cols: a cache of x, which takes the whole gradient
        return [apply(self.like(Conv2DBackpropInput), g, w, x),
                apply(self.like(Conv2DBackpropFilter), x, g, w, *cols), *[None] * len(cols)]


def conv2d(x, w, strides=1, padding="valid", dilation=1, groups: int = 1, name=None) -> Node:
    """2-D convolution of NHWC `x` with a (kh, kw, in, out) kernel `w`.

    `padding` is "valid", "same" (output ceil(size / stride), as in
    TensorFlow), an int, a pair of ints or ((top, bottom), (left, right)).
    `groups` splits the channels: `w` then has in = channels / groups.

        >>> x = gn.placeholder((None, 28, 28, 1))
        >>> w = gn.variable(np.zeros((5, 5, 1, 6), np.float32))
        >>> gn.nn.conv2d(x, w, padding="same").shape
        (None, 28, 28, 6)
    """
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    op = Conv2D(pair(strides, "strides"), canonical_padding(padding), pair(dilation, "dilation"),
                int(groups))
    x, w = as_node(x), as_node(w)
    if op.groups > 1:
        return apply(op, x, w, name=name)
    return apply(op, x, w, apply(op.like(Im2Col), x, w), name=name)


# ------------------------------------------------------------ gradients


@dataclass(frozen=True)
class Conv2DBackpropInput(ConvAttributes):
    """dx of Conv2D for output gradient g and kernel w: the transposed
    convolution, as g @ w^T (one batched matmul) scattered back window by
    window (col2im: a loop over the kh*kw taps). Input 2 only gives x's shape.
    At stride 1, NumPy's kernel instead folds the kw taps of each kernel row
    into the matmul and scatters with kh adds (`_backprop_input_stride1`).
    Under numba, the matmul runs a chunk of images at a time, each scattered
    by a loop while in cache."""

    writes_out = True
    backends = ("numba",)

    def infer(self, g, w, x):
        return x.shape, np.result_type(g.dtype, w.dtype)

    def forward(self, g, w, x, out=None, scratch=None):
        dtype = np.result_type(g, w)
        g, w = g.astype(dtype, copy=False), w.astype(dtype, copy=False)
        kh, kw, cg, cout = w.shape
        if self.strides == (1, 1) and kh * kw > 1:
            return _backprop_input_stride1(self, g, w, x, out, {} if scratch is None else scratch)
        n, h, width, cin = x.shape
        pads, (ho, wo) = self.geometry(x.shape, (kh, kw))
        hp, wp = h + sum(pads[0]), width + sum(pads[1])
        rows = _rows_layout(cg, kw, wo)
        # Scatter into NHWC, or channels-first (C, N, H, W) when channels are
        # few, so each tap's add runs over contiguous image rows.
        if out is not None and rows and (hp, wp) == (h, width):  # scatter straight into out
            dxp = out
            dxp.fill(0)
        else:
            dxp = np.zeros((n, hp, wp, cin) if rows else (cin, n, hp, wp), dtype)
        for cs, os in _group_slices(self.groups, cin, cout):
            g2 = g[..., os].reshape(-1, os.stop - os.start)
            if rows:  # (M, out) @ (kh, kw, out, in) -> (kh, kw, M, in)
                cols = np.matmul(g2, np.ascontiguousarray(w[..., os].transpose(0, 1, 3, 2)))
                cols, target = cols.reshape(kh, kw, n, ho, wo, cg), dxp[..., cs]
            else:     # (kh*kw*in, out) @ (out, M) -> (kh, kw, in, M)
                cols = w[..., os].reshape(-1, os.stop - os.start) @ g2.T
                cols, target = cols.reshape(kh, kw, cg, n, ho, wo), dxp[cs].transpose(1, 2, 3, 0)
            for a in range(kh):
                for b in range(kw):
                    index = tap(a, b, (ho, wo), self.strides, self.dilation)
                    target[index] += cols[a, b] if rows else cols[a, b].transpose(1, 2, 3, 0)
        if not rows:
            dxp = dxp.transpose(1, 2, 3, 0)
        dx = crop_hw(dxp, pads, (h, width))
        if out is None:
            return dx if rows else np.ascontiguousarray(dx)
        if dx is not out:
            np.copyto(out, dx)
        return out

    def forward_loop(self, g, w, x, out=None, scratch=None):
        dtype = np.result_type(g, w)
        g, w = g.astype(dtype, copy=False), w.astype(dtype, copy=False)
        kh, kw, cg, cout = w.shape
        n = x.shape[0]
        pads, (ho, wo) = self.geometry(x.shape, (kh, kw))
        out = _zeroed(out, x.shape, dtype)
        offsets = (pads[0][0], pads[1][0])
        rows = _rows_layout(cg, kw, wo)
        images = max(1, CHUNK // (ho * wo * kh * kw * cg))   # per matmul
        size = images * ho * wo * kh * kw * cg
        scratch = {} if scratch is None else scratch
        buffer = scratch.get((size, dtype))
        if buffer is None:
            buffer = scratch[(size, dtype)] = np.empty(size, dtype)
        for cs, os in _group_slices(self.groups, x.shape[3], cout):
            w2 = w[..., os].reshape(-1, os.stop - os.start)   # (kh*kw*in, out)
            for start in range(0, n, images):
                g2 = g[start:start + images, ..., os].reshape(-1, os.stop - os.start)
                cols = buffer[:len(g2) * len(w2)]
                target = out[start:start + images]
                if rows:    # (M, out) @ (out, kh*kw*in) -> (n, ho, wo, kh, kw, in)
                    np.matmul(g2, w2.T, out=cols.reshape(len(g2), -1))
                    _col2im(cols.reshape(-1, ho, wo, kh, kw, cg), self.strides, self.dilation,
                            offsets, cs.start, target)
                else:       # (kh*kw*in, out) @ (out, M) -> (kh, kw, in, n, ho, wo)
                    np.matmul(w2, g2.T, out=cols.reshape(len(w2), -1))
                    _col2im_channels_first(cols.reshape(kh, kw, cg, -1, ho, wo), self.strides,
                                           self.dilation, offsets, cs.start, target)
        return out

    def grad(self, node, gg):
        # <conv^T(g, w), z> = <g, conv(z, w)>: linear in g and in w.
        g, w, _ = node.inputs
        return [apply(self.like(Conv2D), gg, w),
                apply(self.like(Conv2DBackpropFilter), gg, g, w), None]


#: Values of the shifted copies of g, and of the matmul's output, that
#: Conv2DBackpropInput's NumPy kernel makes at a time at stride 1 (4 MiB of
#: float32 each at most): bounds the buffers it keeps.
BLOCK = 1 << 20


def _backprop_input_stride1(op, g, w, x, out, scratch):
    """Conv2DBackpropInput at stride 1, a block of images at a time: one
    matmul whose output needs only kh adds of whole images to scatter,
    instead of kh*kw adds over runs of W*C values (measured 1.4x faster in
    LeNet's training step, and no temporaries).

    The kw taps of a kernel row become part of the matmul's inner dimension:
    g, channels first, its rows padded with zeros to the padded width wp of
    dx, is copied kw times, the copy for tap b shifted right by b*dw pixels.
    With p a pixel of those padded rows, for each kernel row a:

        rows[a, c, p] = sum_{b, o} w[a, b, c, o] * gs[b, o, p]    one matmul
        dxp[c, p + a*dh*wp] += rows[a, c, p]                      kh adds

    The kept `gpad` is zeroed once: each run writes only g's own pixels.
    """
    kh, kw, cg, cout = w.shape
    n, h, width, cin = x.shape
    pads, (ho, wo) = op.geometry(x.shape, (kh, kw))
    (top, _), (left, _) = pads
    dh, dw = op.dilation
    hp, wp = h + sum(pads[0]), width + sum(pads[1])
    og, front = cout // op.groups, dw * (kw - 1)
    images = max(1, min(n, BLOCK // (max(kw * og, kh * cg) * ho * wp)))
    gpad = kept(scratch, "g", (og, front + images * ho * wp), g.dtype)
    gs = kept(scratch, "shifted", (kw, og, images * ho * wp), g.dtype)
    rows = kept(scratch, "rows", (kh * cg, images * ho * wp), g.dtype)
    dxp = kept(scratch, "dxp", (cg, images, hp * wp), g.dtype)
    out = np.empty(x.shape, g.dtype) if out is None else out
    for cs, os in _group_slices(op.groups, cin, cout):
        w2 = kept(scratch, "w", (kh * cg, kw * og), g.dtype)
        np.copyto(w2.reshape(kh, cg, kw, og), w[..., os].transpose(0, 2, 1, 3))
        for start in range(0, n, images):
            nb = min(images, n - start)
            m = nb * ho * wp
            np.copyto(gpad[:, front:front + m].reshape(og, nb, ho, wp)[..., :wo],
                      g[start:start + nb, ..., os].transpose(3, 0, 1, 2))
            for b in range(kw):
                np.copyto(gs[b, :, :m], gpad[:, front - b * dw:front - b * dw + m])
            summed = np.matmul(w2, gs[..., :m].reshape(kw * og, m), out=rows[:, :m])
            summed = summed.reshape(kh, cg, nb, ho * wp)
            d = dxp[:, :nb]
            d.fill(0)
            for a in range(kh):
                d[..., a * dh * wp:(a * dh + ho) * wp] += summed[a]
            d = d.reshape(cg, nb, hp, wp)[:, :, top:top + h, left:left + width]
            np.copyto(out[start:start + nb, ..., cs], d.transpose(1, 2, 3, 0))
    return out


@dataclass(frozen=True)
class Conv2DBackpropFilter(ConvAttributes):
    """dw of Conv2D for input x and output gradient g: im2col(x)^T @ g, one
    matmul over the windows of x. Input 2 only gives the kernel's shape;
    input 3, when given, is Im2Col(x, w), the patches Conv2D already made.
    Without it, under numba, a `direct_convolution` runs `_filter_direct`."""

    backends = ("numba",)

    def infer(self, x, g, w, cols=None):
        return w.shape, np.result_type(x.dtype, g.dtype)

    def forward(self, x, g, w, cols=None, scratch=None):
        dtype = np.result_type(x, g)
        x, g = x.astype(dtype, copy=False), g.astype(dtype, copy=False)
        kh, kw, _, cout = w.shape
        pads, out_hw = self.geometry(x.shape, (kh, kw))
        rows = _rows_layout(x.shape[3], kw, out_hw[1])
        if cols is None and self.groups == 1:
            cols = self.patches(pad_hw(x, pads, scratch=scratch), (kh, kw), out_hw, rows, scratch)
        if cols is not None:  # one group
            g2 = g.reshape(-1, cout)
            return (cols.T @ g2 if rows else cols @ g2).reshape(w.shape)
        xp = pad_hw(x, pads, scratch=scratch)
        parts = []
        for cs, os in _group_slices(self.groups, x.shape[3], cout):
            xg = xp[..., cs]
            rows = _rows_layout(xg.shape[3], kw, out_hw[1])
            cols = self.patches(xg, (kh, kw), out_hw, rows, scratch)
            g2 = g[..., os].reshape(-1, os.stop - os.start)
            parts.append((cols.T @ g2 if rows else cols @ g2).reshape(kh, kw, xg.shape[3], -1))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=3)

    def forward_loop(self, x, g, w, cols=None, scratch=None):
        if cols is not None or not direct_convolution(self, x.shape[3], w.shape[3]):
            return self.forward(x, g, w, cols, scratch)
        dtype = np.result_type(x, g)
        x, g = x.astype(dtype, copy=False), g.astype(dtype, copy=False)
        xp, taps, (ho, wo), channels = self.direct_operands(x, w.shape, scratch)
        kh, kw, cin, cout = w.shape
        rows = kept(scratch, "g", (x.shape[0], channels, ho * xp.shape[3]), dtype)
        _channels_first(g, rows)
        sums = kept(scratch, "sums", (channels, len(taps)), dtype)
        _filter_direct(xp, rows, taps, wo, sums)
        return np.ascontiguousarray(sums[:cout].reshape(cout, cin, kh, kw).transpose(2, 3, 1, 0))

    def grad(self, node, gg):
        # <dw(x, g), v> = <g, conv(x, v)>: linear in x and in g.
        x, g, _, *cols = node.inputs  # cols: a cache of x, which takes the whole gradient
        return [apply(self.like(Conv2DBackpropInput), g, gg, x),
                apply(self.like(Conv2D), x, gg, *cols), None, *[None] * len(cols)]


# -------------------------------------------------------------- im2col


@dataclass(frozen=True)
class Im2Col(ConvAttributes):
    """The patch matrix of x for a kernel shaped like w (one group): one row
    per output pixel, (N*Ho*Wo, kh*kw*C), or its transpose when
    `_rows_layout` picks channels-first. Input 1 only gives the kernel's shape."""

    writes_out = True

    def infer(self, x, w):
        # Lenient: Conv2D, built on this node, reports bad shapes under its own name.
        dtype = np.result_type(x.dtype, w.dtype)
        if x.ndim != 4 or w.ndim != 4 or None in (*w.shape[:2], x.shape[3]):
            return (None, None), dtype
        (n, _, _, c), (kh, kw) = x.shape, w.shape[:2]
        try:
            ho, wo = static_output_hw(x.shape, self.padding, self.window((kh, kw)),
                                      self.strides, "kernel window")
        except ShapeError:
            return (None, None), dtype
        if wo is None:  # the layout depends on the output width
            return (None, None), dtype
        m, k = (None if None in (n, ho) else n * ho * wo), kh * kw * c
        return ((m, k) if _rows_layout(c, kw, wo) else (k, m)), dtype

    def forward(self, x, w, out=None, scratch=None):
        x = x.astype(np.result_type(x, w), copy=False)
        kh, kw = w.shape[:2]
        pads, out_hw = self.geometry(x.shape, (kh, kw))
        rows = _rows_layout(x.shape[3], kw, out_hw[1])
        xp = pad_hw(x, pads, scratch=scratch)
        return patches(xp, (kh, kw), out_hw, self.strides, self.dilation, rows, out)

    def grad(self, node, g):
        x, w = node.inputs
        return [apply(self.like(Col2Im), g, w, x), None]


@dataclass(frozen=True)
class Col2Im(ConvAttributes):
    """The adjoint of Im2Col: each patch-matrix entry added back to the pixel
    of x it was copied from. Inputs 1 and 2 only give the kernel's and x's
    shapes. Under numba, one of the two scatter loops, by layout."""

    writes_out = True
    backends = ("numba",)

    def infer(self, cols, w, x):
        return x.shape, np.result_type(cols.dtype, x.dtype)

    def forward(self, cols, w, x, out=None):
        kh, kw = w.shape[:2]
        n, h, width, c = x.shape
        pads, (ho, wo) = self.geometry(x.shape, (kh, kw))
        rows = _rows_layout(c, kw, wo)
        dtype = np.result_type(cols, x)
        padded = any(pads[0] + pads[1])
        if out is None or padded:
            dxp = np.zeros((n, h + sum(pads[0]), width + sum(pads[1]), c), dtype)
        else:
            dxp = out
            dxp.fill(0)
        taps = (cols.reshape(n, ho, wo, kh, kw, c) if rows else
                cols.reshape(kh, kw, c, n, ho, wo).transpose(3, 4, 5, 0, 1, 2))
        for a in range(kh):
            for b in range(kw):
                dxp[tap(a, b, (ho, wo), self.strides, self.dilation)] += taps[:, :, :, a, b]
        dx = crop_hw(dxp, pads, (h, width))
        if out is not None and dx is not out:
            np.copyto(out, dx)
            return out
        return dx

    def forward_loop(self, cols, w, x, out=None):
        kh, kw = w.shape[:2]
        n, _, _, c = x.shape
        pads, (ho, wo) = self.geometry(x.shape, (kh, kw))
        cols = np.ascontiguousarray(cols, np.result_type(cols, x))
        out = _zeroed(out, x.shape, cols.dtype)
        offsets = (pads[0][0], pads[1][0])
        if _rows_layout(c, kw, wo):
            _col2im(cols.reshape(n, ho, wo, kh, kw, c), self.strides, self.dilation, offsets, 0,
                    out)
        else:
            _col2im_channels_first(cols.reshape(kh, kw, c, n, ho, wo), self.strides,
                                   self.dilation, offsets, 0, out)
        return out

    def grad(self, node, gg):
        _, w, x = node.inputs
        return [apply(self.like(Im2Col), gg, w), None, None]
