"""graphnet op -> ONNX nodes: one small converter per op class.

Each converter takes the Exporter, the graphnet node and the ONNX names of
its inputs, and returns the name of the tensor that holds the node's value
(usually from `ex.emit_out`). graphnet is NHWC with (kh, kw, in, out)
kernels; ONNX is NCHW with (out, in, kh, kw): convolution and pooling are
wrapped in transposes, which runtimes cancel between layers.
"""

from __future__ import annotations

import numpy as np

from graphnet.io.onnx import dynamic
from graphnet.nn import conv, normalization, pooling
from graphnet.nn.windows import same_padding
from graphnet.ops import activations, elementwise, indexing, linalg, reductions, shape, slicing
from graphnet.ops.shape import Slice

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
CONVERTERS: dict = {}


def converts(*op_classes):
    """Register the decorated function as the converter of `op_classes`."""
    def register(fn):
        for cls in op_classes:
            CONVERTERS[cls] = fn
        return fn
    return register


def used_inputs(node) -> int:
    """How many of the node's inputs its converter reads (Conv2D's optional
    im2col cache, input 2, is not part of the ONNX graph)."""
    return 2 if isinstance(node.op, conv.Conv2D) else len(node.inputs)


def _typed(ex, node, names, dtype=None):
    """The inputs cast to one dtype (the node's by default): ONNX does not promote."""
    dtype = node.dtype if dtype is None else dtype
    return [ex.cast(n, i.dtype, dtype) for n, i in zip(names, node.inputs)]


# ------------------------------------------------------------ elementwise

BINARY = {elementwise.Add: "Add", elementwise.Sub: "Sub", elementwise.Mul: "Mul",
          elementwise.Div: "Div", elementwise.Pow: "Pow", elementwise.Maximum: "Max",
          elementwise.Minimum: "Min", linalg.Matmul: "MatMul"}
UNARY = {elementwise.Neg: "Neg", elementwise.Exp: "Exp", elementwise.Log: "Log",
         elementwise.Cos: "Cos", elementwise.Sin: "Sin", elementwise.Floor: "Floor",
         elementwise.Sqrt: "Sqrt", elementwise.Abs: "Abs", elementwise.Sign: "Sign",
         elementwise.Erf: "Erf", activations.Sigmoid: "Sigmoid", activations.Tanh: "Tanh",
         activations.Relu: "Relu", activations.Softplus: "Softplus",
         elementwise.LogicalNot: "Not", shape.StopGradient: "Identity"}
COMPARE = {elementwise.Equal: "Equal", elementwise.Less: "Less",
           elementwise.LessEqual: "LessOrEqual", elementwise.Greater: "Greater",
           elementwise.GreaterEqual: "GreaterOrEqual", elementwise.LogicalAnd: "And",
           elementwise.LogicalOr: "Or"}


@converts(*BINARY)
def binary(ex, node, a, b):
    return ex.emit_out(BINARY[type(node.op)], _typed(ex, node, [a, b]))


@converts(*UNARY)
def unary(ex, node, x):
    return ex.emit_out(UNARY[type(node.op)], [x])


@converts(*COMPARE)
def compare(ex, node, a, b):
    common = np.result_type(*(i.dtype for i in node.inputs))
    return ex.emit_out(COMPARE[type(node.op)], _typed(ex, node, [a, b], common))


@converts(elementwise.NotEqual)
def not_equal(ex, node, a, b):
    common = np.result_type(*(i.dtype for i in node.inputs))
    return ex.emit_out("Not", [ex.emit("Equal", _typed(ex, node, [a, b], common))])


@converts(elementwise.Square)
def square(ex, node, x):
    return ex.emit_out("Mul", [x, x])  # x * x


@converts(elementwise.Log1p)
def log1p(ex, node, x):
    return ex.emit_out("Log", [ex.emit("Add", [x, ex.const(1, node.dtype)])])  # log(1 + x)


@converts(elementwise.Where)
def where(ex, node, cond, a, b):
    return ex.emit_out("Where", [cond] + _typed(ex, node, [a, b]))


@converts(elementwise.Clip)
def clip(ex, node, x):
    low, high = (ex.const(v, node.dtype) for v in (node.op.low, node.op.high))
    return ex.emit_out("Clip", [x, low, high])


@converts(activations.LeakyRelu)
def leaky_relu(ex, node, x):
    return ex.emit_out("LeakyRelu", [x], alpha=node.op.alpha)


@converts(activations.Softmax, activations.LogSoftmax)
def softmax(ex, node, x):
    kind = "Softmax" if isinstance(node.op, activations.Softmax) else "LogSoftmax"
    return ex.emit_out(kind, [x], axis=node.op.axis)


@converts(shape.Cast)
def cast(ex, node, x):
    return ex.emit_out("Cast", [x], to=_code(node.dtype))


def _code(dtype) -> int:
    from graphnet.io.onnx.common import onnx_dtype
    return onnx_dtype(dtype)


# ------------------------------------------------------------- reductions

REDUCE = {reductions.Sum: "ReduceSum", reductions.Mean: "ReduceMean",
          reductions.Max: "ReduceMax", reductions.Min: "ReduceMin",
          reductions.Prod: "ReduceProd"}


@converts(*REDUCE)
def reduce(ex, node, x):
    x = ex.cast(x, node.inputs[0].dtype, node.dtype)   # sum of bools or ints: int64
    if not node.op.axis:
        return ex.emit_out("Identity", [x])   # ONNX reads no axes as "all axes"
    return reduce_axes(ex, REDUCE[type(node.op)], x, node.op.axis, node.op.keepdims, out=True)


def reduce_axes(ex, kind, x, axes, keepdims, out=False):
    """A Reduce* node: axes as an input (ReduceSum from 13, the others from 18)."""
    emit = ex.emit_out if out else ex.emit
    if kind == "ReduceSum" or ex.opset >= 18:
        return emit(kind, [x, ex.ints(axes)], keepdims=int(keepdims))
    return emit(kind, [x], axes=list(axes), keepdims=int(keepdims))


@converts(reductions.ReducedSize)
def reduced_size(ex, node, x):
    sizes = ex.emit("Gather", [ex.shape(x), ex.ints(node.op.axis)], axis=0)
    count = reduce_axes(ex, "ReduceProd", sizes, (0,), False)
    return ex.emit_out("Cast", [count], to=_code(node.dtype))


@converts(indexing.ArgMax, indexing.ArgMin)
def argmax(ex, node, x):
    kind = "ArgMax" if isinstance(node.op, indexing.ArgMax) else "ArgMin"
    return ex.emit_out(kind, [x], axis=node.op.axis, keepdims=0)


# ------------------------------------------------------------------ shapes


def shape_vector(ex, node, x_name, x_node, before: int, middle, after: int):
    """Concat(x.shape[:before], middle, x.shape[after:]) as an int64 vector,
    constant when those sizes are known."""
    head, tail = x_node.shape[:before], x_node.shape[after:] if after < x_node.ndim else ()
    if None not in head + tuple(tail):
        return ex.ints(list(head) + list(middle) + list(tail))
    parts = []
    if before:
        parts.append(ex.shape(x_name, 0, before))
    if len(middle):
        parts.append(ex.ints(middle))
    if after < x_node.ndim:
        parts.append(ex.shape(x_name, after))
    return parts[0] if len(parts) == 1 else ex.emit("Concat", parts, axis=0)


def _reshape(ex, node, x, target):
    return ex.emit_out("Reshape", [x, target], allowzero=1 if 0 in node.shape else None)


@converts(shape.Reshape)
def reshape(ex, node, x):
    return _reshape(ex, node, x, ex.ints(node.op.shape))


@converts(shape.Unflatten)
def unflatten(ex, node, x):
    axis = node.op.axis
    if None not in node.shape:
        return _reshape(ex, node, x, ex.ints(node.shape))
    return _reshape(ex, node, x, shape_vector(ex, node, x, node.inputs[0], axis,
                                              node.op.sizes, axis + 1))


@converts(shape.Flatten)
def flatten(ex, node, x):
    if None not in node.shape:
        return _reshape(ex, node, x, ex.ints(node.shape))
    return _reshape(ex, node, x, shape_vector(ex, node, x, node.inputs[0], node.op.start,
                                              [-1], node.op.end + 1))


@converts(shape.ReshapeLike)
def reshape_like(ex, node, x, like):
    return _reshape(ex, node, x, ex.shape(like))


@converts(linalg.LeadingAxesLike)
def leading_axes_like(ex, node, x, like):
    if None not in node.shape:
        return _reshape(ex, node, x, ex.ints(node.shape))
    target = ex.emit("Concat", [ex.shape(like, 0, -1), ex.shape(x, -1)], axis=0)
    return _reshape(ex, node, x, target)


@converts(shape.Transpose)
def transpose(ex, node, x):
    return ex.emit_out("Transpose", [x], perm=list(node.op.perm))


@converts(shape.ExpandDims)
def expand_dims(ex, node, x):
    return ex.emit_out("Unsqueeze", [x, ex.ints(node.op.axes)])


@converts(shape.Squeeze)
def squeeze(ex, node, x):
    if not node.op.axes:
        return ex.emit_out("Identity", [x])
    return ex.emit_out("Squeeze", [x, ex.ints(node.op.axes)])


@converts(shape.BroadcastTo)
def broadcast_to(ex, node, x):
    return ex.emit_out("Expand", [x, ex.ints(node.op.shape)])


@converts(shape.BroadcastLike)
def broadcast_like(ex, node, x, like):
    return ex.emit_out("Expand", [x, ex.shape(like)])


@converts(shape.FillLike)
def fill_like(ex, node, like):
    value = ex.onnx.numpy_helper.from_array(np.full(1, node.op.value, node.dtype))
    return ex.emit_out("ConstantOfShape", [ex.shape(like)], value=value)


@converts(shape.Concat)
def concat(ex, node, *xs):
    return ex.emit_out("Concat", _typed(ex, node, list(xs)), axis=node.op.axis)


@converts(shape.Gather)
def gather(ex, node, x, indices):
    return ex.emit_out("Gather", [x, indices], axis=node.op.axis)


@converts(shape.TakeAlongAxis)
def take_along_axis(ex, node, x, indices):
    return ex.emit_out("GatherElements", [x, indices], axis=node.op.axis)


@converts(shape.OneHot)
def one_hot(ex, node, indices):
    # (indices[..., None] == arange(depth)): all zeros out of range, as NumPy
    column = ex.emit("Unsqueeze", [indices, ex.ints([-1])])
    dtype = node.inputs[0].dtype
    hits = ex.emit("Equal", [column, ex.const(np.arange(node.op.depth, dtype=dtype))])
    return ex.emit_out("Cast", [hits], to=_code(node.dtype))


@converts(shape.GetItem)
def getitem(ex, node, x):
    """Slice the sliced axes, Squeeze the integer-indexed ones, Unsqueeze for None."""
    items = _expand_ellipsis(node.op.index, node.inputs[0].ndim)
    starts, ends, axes, steps, drop, new = [], [], [], [], [], []
    axis = out_axis = 0
    for item in items:
        if item is None:
            new.append(out_axis)
            out_axis += 1
            continue
        if isinstance(item, Slice):
            step = 1 if item.step is None else item.step
            if (item.start, item.stop, step) != (None, None, 1):
                starts.append(item.start if item.start is not None else
                              (0 if step > 0 else INT64_MAX))
                ends.append(item.stop if item.stop is not None else
                            (INT64_MAX if step > 0 else INT64_MIN))
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:
            starts.append(item)
            ends.append(item + 1 if item != -1 else INT64_MAX)
            axes.append(axis)
            steps.append(1)
            drop.append(axis)
        axis += 1
    result = x
    if axes:
        result = ex.emit("Slice", [x, ex.ints(starts), ex.ints(ends), ex.ints(axes),
                                   ex.ints(steps)])
    if drop:
        result = ex.emit("Squeeze", [result, ex.ints(drop)])
    if new:
        result = ex.emit("Unsqueeze", [result, ex.ints(new)])
    return ex.emit_out("Identity", [result])


def _expand_ellipsis(index: tuple, rank: int) -> list:
    """The index with `...` replaced by full slices, and trailing axes filled."""
    used = sum(i is not None and i is not Ellipsis for i in index)
    full = Slice(None, None, None)
    items = []
    for item in index:
        items += [full] * (rank - used) if item is Ellipsis else [item]
    if Ellipsis not in index:
        items += [full] * (rank - used)
    return items


@converts(slicing.Positions)
def positions(ex, node, x, offset=None):
    size = ex.emit("Squeeze", [ex.shape(x, node.op.axis, node.op.axis + 1), ex.ints([0])])
    steps = ex.emit("Range", [ex.const(0, np.int64), size, ex.const(1, np.int64)])
    if offset is None:
        return ex.emit_out("Identity", [steps])
    return ex.emit_out("Add", [steps, ex.cast(offset, node.inputs[1].dtype, np.int64)])


# ------------------------------------------------------------ neural nets

NHWC_TO_NCHW, NCHW_TO_NHWC, HWIO_TO_OIHW = [0, 3, 1, 2], [0, 2, 3, 1], [3, 2, 0, 1]


def _pads(ex, op, x_node, window) -> dict:
    """ONNX padding attributes for graphnet's "same" or explicit pads."""
    if op.padding == "same":
        hw = x_node.shape[1:3]
        if None in hw:
            return {"auto_pad": "SAME_UPPER"}   # TensorFlow's "same": extra at the end
        (top, bottom), (left, right) = (same_padding(n, k, s) for n, k, s in
                                        zip(hw, window, op.strides, strict=True))
    else:
        (top, bottom), (left, right) = op.padding
    return {"pads": [top, left, bottom, right]}


@converts(conv.Conv2D)
def conv2d(ex, node, x, w):
    op, (kh, kw) = node.op, node.inputs[1].shape[:2]
    x, w = _typed(ex, node, [x, w])
    nchw = ex.emit("Transpose", [x], perm=NHWC_TO_NCHW)
    oihw = ex.emit("Transpose", [w], perm=HWIO_TO_OIHW)
    y = ex.emit("Conv", [nchw, oihw], kernel_shape=[kh, kw], strides=list(op.strides),
                dilations=list(op.dilation), group=op.groups,
                **_pads(ex, op, node.inputs[0], op.window((kh, kw))))
    return ex.emit_out("Transpose", [y], perm=NCHW_TO_NHWC)


@converts(pooling.MaxPool2D, pooling.AvgPool2D)
def pool2d(ex, node, x):
    op = node.op
    kind, extra = ("MaxPool", {}) if isinstance(op, pooling.MaxPool2D) else \
        ("AveragePool", {"count_include_pad": 0})   # padding excluded, as graphnet
    nchw = ex.emit("Transpose", [x], perm=NHWC_TO_NCHW)
    y = ex.emit(kind, [nchw], kernel_shape=list(op.pool), strides=list(op.strides),
                **_pads(ex, op, node.inputs[0], op.pool), **extra)
    return ex.emit_out("Transpose", [y], perm=NCHW_TO_NHWC)


@converts(normalization.Normalize)
def normalize(ex, node, x, gamma, beta):
    """LayerNormalization when the statistics span the trailing axes and gamma
    and beta have their shape; else the formula with primitive ops."""
    op, (x_node, g_node, b_node) = node.op, node.inputs
    first = x_node.ndim - len(op.axis)
    inner = x_node.shape[first:]
    if op.axis == tuple(range(first, x_node.ndim)) and g_node.shape == inner == b_node.shape:
        return ex.emit_out("LayerNormalization", [x, gamma, beta], axis=first,
                           epsilon=op.eps)
    mean = reduce_axes(ex, "ReduceMean", x, op.axis, True)
    centered = ex.emit("Sub", [x, mean])
    var = reduce_axes(ex, "ReduceMean", ex.emit("Mul", [centered, centered]), op.axis, True)
    std = ex.emit("Sqrt", [ex.emit("Add", [var, ex.const(op.eps, node.dtype)])])
    scaled = ex.emit("Mul", [ex.emit("Div", [centered, std]), gamma])
    return ex.emit_out("Add", [scaled, beta])   # (x - mean) / sqrt(var + eps) * gamma + beta


@converts(normalization.BatchNorm)
def batch_norm(ex, node, x, mean, var, gamma, beta):
    # (x - mean) * (gamma / sqrt(var + eps)) + beta: graphnet's kernel, step by step
    x, mean, var, gamma, beta = _typed(ex, node, [x, mean, var, gamma, beta])
    std = ex.emit("Sqrt", [ex.emit("Add", [var, ex.const(node.op.eps, node.dtype)])])
    scale = ex.emit("Div", [gamma, std])
    return ex.emit_out("Add", [ex.emit("Mul", [ex.emit("Sub", [x, mean]), scale]), beta])


# --------------------------------------- run-time shapes (imported graphs)


@converts(dynamic.ShapeOf)
def shape_of(ex, node, x):
    return ex.emit_out("Shape", [x], start=node.op.start, end=node.op.end)


@converts(dynamic.DynamicReshape)
def dynamic_reshape(ex, node, x, target):
    return ex.emit_out("Reshape", [x, target], allowzero=int(node.op.allowzero))


@converts(dynamic.DynamicExpand)
def dynamic_expand(ex, node, x, target):
    return ex.emit_out("Expand", [x, target])


@converts(dynamic.Fill)
def fill(ex, node, target):
    value = ex.onnx.numpy_helper.from_array(np.full(1, node.op.value, node.dtype))
    return ex.emit_out("ConstantOfShape", [target], value=value)


@converts(dynamic.Arange)
def arange(ex, node, start, limit, delta):
    return ex.emit_out("Range", _typed(ex, node, [start, limit, delta]))


@converts(dynamic.DynamicSlice)
def dynamic_slice(ex, node, x, starts, ends, axes, steps):
    return ex.emit_out("Slice", [x, starts, ends, axes, steps])
