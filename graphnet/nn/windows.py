"""Sliding-window geometry shared by convolution and pooling (NHWC).

Padding is kept in one canonical, hashable form: the string "same" (resolved
from the run-time input size, as TensorFlow does) or explicit
`((top, bottom), (left, right))`. Windows are read through strided views, so
no Python loop ever runs over pixels; kernels loop at most over the few
taps (kernel positions) of a window.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import as_strided

from graphnet.errors import ShapeError
from graphnet.shapes import format_shape


def pair(value, what: str) -> tuple:
    """An int or a pair of ints as a pair of positive ints: `2 -> (2, 2)`."""
    items = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(items) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in items):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def canonical_padding(padding):
    """"same", or ((top, bottom), (left, right)) from "valid", an int, a pair
    of ints (one per axis) or the explicit pairs."""
    if isinstance(padding, str):
        if padding.lower() not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid', 'same', an int or ((top, bottom), "
                             f"(left, right)), got {padding!r}")
        return "same" if padding.lower() == "same" else ((0, 0), (0, 0))
    if isinstance(padding, (int, np.integer)):
        padding = ((padding, padding), (padding, padding))
    items = tuple(padding)
    if len(items) == 2 and all(isinstance(p, (int, np.integer)) for p in items):
        items = ((items[0], items[0]), (items[1], items[1]))
    try:
        (top, bottom), (left, right) = items
        out = ((int(top), int(bottom)), (int(left), int(right)))
    except (TypeError, ValueError):
        raise ValueError(f"padding must be 'valid', 'same', an int or ((top, bottom), "
                         f"(left, right)), got {padding!r}") from None
    if min(out[0] + out[1]) < 0:
        raise ValueError(f"padding must not be negative, got {padding!r}")
    return out


def same_padding(size: int, window: int, stride: int) -> tuple:
    """TensorFlow's "same": output ceil(size / stride), extra padding at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, hw: tuple, window: tuple, strides: tuple) -> tuple:
    """Explicit ((top, bottom), (left, right)) for a run-time input size `hw`;
    `window` is the effective (dilated) window size."""
    if padding != "same":
        return padding
    return tuple(same_padding(n, k, s) for n, k, s in zip(hw, window, strides, strict=True))


@functools.lru_cache(maxsize=4096)
def run_geometry(padding, hw: tuple, window: tuple, strides: tuple) -> tuple:
    """(pads, out_hw) for a run-time input size `hw`: explicit padding and the
    output size. Cached: every run of a plan's window ops asks again."""
    pads = resolve_padding(padding, hw, window, strides)
    out_hw = tuple((n + p[0] + p[1] - k) // s + 1 for n, p, k, s in
                   zip(hw, pads, window, strides, strict=True))
    return pads, out_hw


def output_size(size, window: int, stride: int, pads, same: bool):
    """Static output length along one axis (None when the input size is)."""
    if size is None:
        return None
    if same:
        return -(-size // stride)
    span = size + pads[0] + pads[1] - window
    return None if span < 0 else span // stride + 1


def static_output_hw(x_shape: tuple, padding, window: tuple, strides: tuple, what: str) -> tuple:
    """(Ho, Wo) for an NHWC shape, or a ShapeError when the window does not fit."""
    same = padding == "same"
    out = []
    for axis, (size, k, s) in enumerate(zip(x_shape[1:3], window, strides, strict=True)):
        pads = (0, 0) if same else padding[axis]
        n = output_size(size, k, s, pads, same)
        if size is not None and n is None:
            raise ShapeError(
                f"{what} {window[0]}x{window[1]} is larger than the padded input "
                f"{size + pads[0] + pads[1]} along {'HW'[axis]} of {format_shape(x_shape)}")
        out.append(n)
    return tuple(out)


def check_nhwc(x, what: str = "input"):
    """A ShapeError unless x is a 4-D floating-point NHWC node."""
    if x.ndim != 4:
        raise ShapeError(f"expects 4-D NHWC {what}, got {format_shape(x.shape)}")
    if x.dtype.kind != "f":
        raise ShapeError(f"expects a floating-point {what}, got {x.dtype.name}")


def pad_hw(x: np.ndarray, pads: tuple, value=0, scratch: dict | None = None,
           name: str = "padded") -> np.ndarray:
    """x padded along H and W with `value` (x itself when no padding is
    needed). With a plan step's `scratch` dict, into an array kept there
    for x's shape and pads: its border keeps `value`, so each run only
    copies x into the middle (graphnet/scratch.py)."""
    (top, bottom), (left, right) = pads
    if not (top or bottom or left or right):
        return x
    if scratch is None:
        return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)
    n, h, w, c = x.shape
    key = (name, x.shape, pads, x.dtype)
    if key not in scratch:
        scratch[key] = np.full((n, h + top + bottom, w + left + right, c), value, x.dtype)
    xp = scratch[key]
    xp[:, top:top + h, left:left + w] = x
    return xp


def crop_hw(xp: np.ndarray, pads: tuple, hw: tuple) -> np.ndarray:
    """The inverse of `pad_hw`: the H x W block at offset (top, left)."""
    (top, _), (left, _) = pads
    if xp.shape[1:3] == tuple(hw):
        return xp
    return xp[:, top:top + hw[0], left:left + hw[1]]


def tap(a: int, b: int, out_hw: tuple, strides: tuple, dilation: tuple = (1, 1)) -> tuple:
    """Index of the (a, b) tap of every window: an (N, Ho, Wo, C) strided slice."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, strides, dilation
    return (slice(None), slice(a * dh, a * dh + sh * (ho - 1) + 1, sh),
            slice(b * dw, b * dw + sw * (wo - 1) + 1, sw))


def strided_view(x: np.ndarray, shape: tuple, strides: tuple) -> np.ndarray:
    """A read-only view of x's memory with these shape and strides. For a
    C-contiguous x it is made directly over x's buffer: numpy's as_strided
    takes microseconds a call, which a batch-1 step pays at every window op."""
    if not x.flags.c_contiguous:
        return as_strided(x, shape, strides, writeable=False)
    view = np.ndarray(shape, x.dtype, x, 0, strides)
    view.flags.writeable = False
    return view


def patches(xp: np.ndarray, window: tuple, out_hw: tuple, strides: tuple, dilation: tuple,
            rows: bool, out: np.ndarray | None = None) -> np.ndarray:
    """Im2col: every window of the padded input as a read-only strided view,
    copied into a 2-D matrix (into `out`, a C-contiguous buffer, when given).

    `rows=True` gives (N*Ho*Wo, kh*kw*C), one row per output pixel; False
    gives its transpose (kh*kw*C, N*Ho*Wo), which copies faster when C*kw is
    small (the contiguous runs are image rows instead of window rows).
    """
    n, _, _, c = xp.shape
    (kh, kw), (ho, wo), (sh, sw), (dh, dw) = window, out_hw, strides, dilation
    s_n, s_h, s_w, s_c = xp.strides
    if rows:
        view = strided_view(xp, (n, ho, wo, kh, kw, c),
                            (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c))
        shape = (n * ho * wo, kh * kw * c)
    else:
        view = strided_view(xp, (kh, kw, c, n, ho, wo),
                            (s_h * dh, s_w * dw, s_c, s_n, s_h * sh, s_w * sw))
        shape = (kh * kw * c, n * ho * wo)
    if out is None:
        return np.ascontiguousarray(view).reshape(shape)
    np.copyto(out.reshape(view.shape), view)
    return out
