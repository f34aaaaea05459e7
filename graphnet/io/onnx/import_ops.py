"""ONNX operator -> graphnet ops: one small converter per operator.

A converter takes the import context, the node's attributes (a dict with
ONNX's defaults not filled in) and its inputs as graphnet nodes (None for an
omitted optional input), and returns a node or a list of nodes, one per
output. Inputs that ONNX passes as tensors but graphnet needs as attributes
(axes, shapes, slice bounds) are read with `ctx.const`, which knows every
value the importer could work out when it built the graph; shapes known only
at run time go through the ops in `dynamic.py`.

ONNX is NCHW with (out, in, kh, kw) kernels; graphnet is NHWC with
(kh, kw, in, out): Conv and the pools transpose around graphnet's ops, and
kernels stay in ONNX's layout as variables (so a re-export keeps them).
"""

from __future__ import annotations

import math

import numpy as np

from graphnet import nn, ops
from graphnet.graph import apply, constant
from graphnet.io.onnx import dynamic

IMPORTERS: dict = {}


def imports(*op_types):
    """Register the decorated function as the converter of `op_types`."""
    def register(fn):
        for op_type in op_types:
            IMPORTERS[op_type] = fn
        return fn
    return register


# ------------------------------------------------------------ elementwise

BINARY = {"Add": ops.add, "Sub": ops.subtract, "Mul": ops.multiply, "MatMul": ops.matmul,
          "Equal": ops.equal, "Less": ops.less, "LessOrEqual": ops.less_equal,
          "Greater": ops.greater, "GreaterOrEqual": ops.greater_equal,
          "And": ops.logical_and, "Or": ops.logical_or}
UNARY = {"Neg": ops.neg, "Abs": ops.abs, "Exp": ops.exp, "Log": ops.log, "Sqrt": ops.sqrt,
         "Floor": ops.floor, "Sin": ops.sin, "Cos": ops.cos, "Erf": ops.erf,
         "Sign": ops.sign, "Tanh": ops.tanh, "Sigmoid": ops.sigmoid, "Relu": ops.relu,
         "Softplus": ops.softplus, "Not": ops.logical_not}


@imports(*BINARY)
def binary(ctx, attrs, a, b):
    return BINARY[ctx.op_type](a, b)


@imports(*UNARY)
def unary(ctx, attrs, x):
    return UNARY[ctx.op_type](x)


@imports("Identity", "Dropout")
def identity(ctx, attrs, x, *rest):
    return x   # Dropout is the identity in inference, as runtimes run it


@imports("Div")
def divide(ctx, attrs, a, b):
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":   # integer division truncates
        q = ops.divide(a, b)
        return ops.cast(ops.multiply(ops.sign(q), ops.floor(ops.abs(q))), a.dtype)
    return ops.divide(a, b)


@imports("Pow")
def power(ctx, attrs, a, b):
    return ops.power(a, ops.cast(b, a.dtype))   # the result has the base's type


@imports("Reciprocal")
def reciprocal(ctx, attrs, x):
    return ops.divide(constant(1, x.dtype), x)


@imports("Ceil")
def ceil(ctx, attrs, x):
    return ops.neg(ops.floor(ops.neg(x)))   # ceil(x) = -floor(-x)


@imports("LeakyRelu")
def leaky_relu(ctx, attrs, x):
    return ops.leaky_relu(x, attrs.get("alpha", 0.01))


@imports("Gelu")
def gelu(ctx, attrs, x):
    return ops.gelu(x, approximate=attrs.get("approximate", "none") == "tanh")


@imports("Where")
def where(ctx, attrs, cond, a, b):
    return ops.where(cond, a, b)


@imports("Clip")
def clip(ctx, attrs, x, low=None, high=None):
    low = attrs.get("min") if low is None else ctx.maybe_const(low, low)
    high = attrs.get("max") if high is None else ctx.maybe_const(high, high)
    if low is None or high is None or all(np.ndim(v) == 0 and not hasattr(v, "op")
                                          for v in (low, high)):
        low = -math.inf if low is None else float(low)
        high = math.inf if high is None else float(high)
        return ops.clip(x, low, high)
    return ops.minimum(ops.maximum(x, low), high)


@imports("Max", "Min", "Sum", "Mean")
def variadic(ctx, attrs, *xs):
    fold = {"Max": ops.maximum, "Min": ops.minimum, "Sum": ops.add, "Mean": ops.add}
    out = xs[0]
    for x in xs[1:]:
        out = fold[ctx.op_type](out, x)
    return ops.divide(out, constant(len(xs), out.dtype)) if ctx.op_type == "Mean" else out


@imports("Cast")
def cast(ctx, attrs, x):
    from graphnet.io.onnx.common import numpy_dtype
    return ops.cast(x, numpy_dtype(attrs["to"]))


@imports("Constant")
def constant_op(ctx, attrs):
    from onnx import numpy_helper
    if "value" in attrs:
        return constant(numpy_helper.to_array(attrs["value"]))
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return constant(np.asarray(attrs[key], dtype))
    ctx.fail(f"has none of the attributes graphnet reads ({', '.join(sorted(attrs))})")


# -------------------------------------------------------- activations etc.


@imports("Softmax", "LogSoftmax")
def softmax(ctx, attrs, x):
    fn = ops.softmax if ctx.op_type == "Softmax" else ops.log_softmax
    return fn(x, axis=attrs.get("axis", -1))


@imports("Gemm")
def gemm(ctx, attrs, a, b, c=None):
    a = ops.transpose(a) if attrs.get("transA", 0) else a
    b = ops.transpose(b) if attrs.get("transB", 0) else b
    y = ops.matmul(a, b)
    if attrs.get("alpha", 1.0) != 1.0:
        y = ops.multiply(y, attrs["alpha"])
    if c is None:
        return y
    beta = attrs.get("beta", 1.0)
    return ops.add(y, c if beta == 1.0 else ops.multiply(c, beta))   # alpha A B + beta C


# -------------------------------------------------------------- reductions

REDUCE = {"ReduceSum": ops.sum, "ReduceMean": ops.mean, "ReduceMax": ops.max,
          "ReduceMin": ops.min, "ReduceProd": ops.prod}


@imports(*REDUCE)
def reduce(ctx, attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else ctx.const(axes, "axes")
    keepdims = bool(attrs.get("keepdims", 1))
    if axes is None or len(np.ravel(axes)) == 0:
        if attrs.get("noop_with_empty_axes", 0):
            return x
        axes = None
    else:
        axes = tuple(int(a) for a in np.ravel(axes))
    return REDUCE[ctx.op_type](x, axis=axes, keepdims=keepdims)


@imports("ArgMax", "ArgMin")
def argmax(ctx, attrs, x):
    if attrs.get("select_last_index", 0):
        ctx.fail("select_last_index=1 is not supported")
    fn = ops.argmax if ctx.op_type == "ArgMax" else ops.argmin
    out = fn(x, axis=attrs.get("axis", 0))
    return ops.expand_dims(out, attrs.get("axis", 0)) if attrs.get("keepdims", 1) else out


# ------------------------------------------------------------------ shapes


@imports("Shape")
def shape(ctx, attrs, x):
    start, end = attrs.get("start", 0), attrs.get("end")
    sizes = x.shape[start:end]
    if None not in sizes:
        return constant(np.asarray(sizes, np.int64))
    return apply(dynamic.ShapeOf(start, end), x)


@imports("Reshape")
def reshape(ctx, attrs, x, target):
    allowzero = bool(attrs.get("allowzero", 0))
    wanted = ctx.partial(target)
    if not allowzero:   # 0 copies x's size at that axis
        wanted = [x.shape[i] if d == 0 else d for i, d in enumerate(wanted)]
    unknown = sum(d is None for d in wanted) + sum(d == -1 for d in wanted)
    if unknown <= 1:
        return ops.reshape(x, [-1 if d is None else d for d in wanted])
    known = [d for d in wanted if d is not None and d != -1]
    hint = list(wanted)
    if -1 in hint and None not in x.shape and None not in hint:
        hint[hint.index(-1)] = int(np.prod(x.shape)) // int(np.prod(known))
    hint = tuple(None if d in (None, -1) else int(d) for d in hint)
    return apply(dynamic.DynamicReshape(hint, allowzero), x, target)


@imports("Flatten")
def flatten(ctx, attrs, x):
    rank = x.ndim
    axis = attrs.get("axis", 1) % (rank + 1) if rank else 0
    if axis == 0:
        return ops.expand_dims(ops.flatten(x, 0, rank - 1), 0)
    if axis == rank:
        return ops.expand_dims(ops.flatten(x, 0, rank - 1), -1)
    y = ops.flatten(x, axis, rank - 1) if axis < rank - 1 else x
    return ops.flatten(y, 0, axis - 1) if axis > 1 else y


@imports("Transpose")
def transpose(ctx, attrs, x):
    return ops.transpose(x, attrs.get("perm"))


@imports("Squeeze")
def squeeze(ctx, attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else ctx.const(axes, "axes")
    return ops.squeeze(x, None if axes is None else tuple(int(a) for a in np.ravel(axes)))


@imports("Unsqueeze")
def unsqueeze(ctx, attrs, x, axes=None):
    axes = attrs.get("axes") if axes is None else ctx.const(axes, "axes")
    return ops.expand_dims(x, tuple(int(a) for a in np.ravel(axes)))


@imports("Concat")
def concat(ctx, attrs, *xs):
    return ops.concat([x for x in xs if x is not None], axis=attrs["axis"])


@imports("Split")
def split(ctx, attrs, x, sizes=None):
    axis = attrs.get("axis", 0)
    sizes = attrs.get("split") if sizes is None else ctx.const(sizes, "split")
    if sizes is None:
        sizes = attrs.get("num_outputs", ctx.num_outputs)
        size = x.shape[axis]
        if size is not None and size % sizes:   # opset 18: the last part is smaller
            part = -(-size // sizes)
            sizes = [part] * (size // part) + [size % part]
    return ops.split(x, sizes if isinstance(sizes, int) else [int(s) for s in np.ravel(sizes)],
                     axis=axis)


@imports("Gather")
def gather(ctx, attrs, x, indices):
    return ops.gather(x, indices, axis=attrs.get("axis", 0))


@imports("GatherElements")
def gather_elements(ctx, attrs, x, indices):
    return ops.take_along_axis(x, indices, axis=attrs.get("axis", 0))


@imports("Slice")
def slice_(ctx, attrs, x, starts, ends, axes=None, steps=None):
    count = ctx.partial(starts)
    axes = constant(np.arange(len(count), dtype=np.int64)) if axes is None else axes
    steps = constant(np.ones(len(count), np.int64)) if steps is None else steps
    values = [ctx.maybe_const(v) for v in (starts, ends, axes, steps)]
    axis_list = values[2]
    if axis_list is None:
        ctx.fail("its axes must be known when the graph is built")
    axis_list = [int(a) % x.ndim for a in np.ravel(axis_list)]
    if all(v is not None for v in values):
        index = [slice(None)] * x.ndim
        for start, end, axis, step in zip(*(np.ravel(v) for v in values[:2]), axis_list,
                                          np.ravel(values[3])):
            index[axis] = slice(int(start), int(end), int(step))
        return ops.getitem(x, tuple(index))
    hint = tuple(None if i in axis_list else d for i, d in enumerate(x.shape))
    return apply(dynamic.DynamicSlice(hint), x, starts, ends, constant(np.asarray(
        axis_list, np.int64)), steps)


@imports("Expand")
def expand(ctx, attrs, x, target):
    wanted = ctx.partial(target)
    rank = max(x.ndim, len(wanted))
    have = (1,) * (rank - x.ndim) + tuple(x.shape)
    want = (1,) * (rank - len(wanted)) + tuple(wanted)
    hint = tuple(a if b == 1 else b if a == 1 else (a if a == b else None)
                 for a, b in zip(have, want))
    if None not in hint:
        return ops.broadcast_to(x, hint)
    return apply(dynamic.DynamicExpand(hint), x, target)


@imports("ConstantOfShape")
def constant_of_shape(ctx, attrs, target):
    from onnx import numpy_helper
    value = numpy_helper.to_array(attrs["value"]).reshape(-1) if "value" in attrs \
        else np.zeros(1, np.float32)
    wanted = ctx.partial(target)
    if None not in wanted:
        return constant(np.full(wanted, value[0], value.dtype))
    return apply(dynamic.Fill(tuple(wanted), value[0].item(), value.dtype), target)


@imports("Range")
def range_(ctx, attrs, start, limit, delta):
    values = [ctx.maybe_const(v) for v in (start, limit, delta)]
    if None not in [v if v is None else 0 for v in values]:
        return constant(np.arange(*values, dtype=start.dtype))
    return apply(dynamic.Arange(), start, limit, delta)


# ------------------------------------------------------------ neural nets

NCHW_TO_NHWC, NHWC_TO_NCHW, OIHW_TO_HWIO = (0, 2, 3, 1), (0, 3, 1, 2), (2, 3, 1, 0)


def _padding(ctx, attrs, rank: int):
    """graphnet padding for ONNX's auto_pad / pads (2-D windows only)."""
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        return "same"   # TensorFlow's "same": the extra row and column at the end
    if auto == "SAME_LOWER":
        ctx.fail("auto_pad=SAME_LOWER is not supported (SAME_UPPER and explicit pads are)")
    if auto == "VALID":
        return "valid"
    top, left, bottom, right = attrs.get("pads", [0] * 2 * rank)
    return ((top, bottom), (left, right))


def _check_2d(ctx, x, attrs):
    if x.ndim != 4:
        ctx.fail(f"only 2-D windows (4-D NCHW input) are supported, got rank {x.ndim}")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])) and ctx.op_type != "Conv":
        ctx.fail("dilated pooling is not supported")
    if attrs.get("ceil_mode", 0):
        ctx.fail("ceil_mode=1 is not supported")


@imports("Conv")
def conv(ctx, attrs, x, w, bias=None):
    _check_2d(ctx, x, attrs)
    hwio = ops.transpose(w, OIHW_TO_HWIO)
    y = nn.conv2d(ops.transpose(x, NCHW_TO_NHWC), hwio, strides=attrs.get("strides", 1),
                  padding=_padding(ctx, attrs, 2), dilation=attrs.get("dilations", 1),
                  groups=attrs.get("group", 1))
    if bias is not None:
        y = ops.add(y, bias)
    return ops.transpose(y, NHWC_TO_NCHW)


@imports("MaxPool", "AveragePool")
def pool(ctx, attrs, x):
    _check_2d(ctx, x, attrs)
    padding = _padding(ctx, attrs, 2)
    if ctx.op_type == "AveragePool" and attrs.get("count_include_pad", 0) and \
            padding != ((0, 0), (0, 0)):
        ctx.fail("count_include_pad=1 with padding is not supported")
    fn = nn.max_pool2d if ctx.op_type == "MaxPool" else nn.avg_pool2d
    y = fn(ops.transpose(x, NCHW_TO_NHWC), attrs["kernel_shape"],
           strides=attrs.get("strides", 1), padding=padding)
    return ops.transpose(y, NHWC_TO_NCHW)


@imports("GlobalAveragePool", "GlobalMaxPool")
def global_pool(ctx, attrs, x):
    fn = ops.mean if ctx.op_type == "GlobalAveragePool" else ops.max
    return fn(x, axis=tuple(range(2, x.ndim)), keepdims=True)


@imports("BatchNormalization")
def batch_norm(ctx, attrs, x, scale, bias, mean, var):
    if attrs.get("training_mode", 0):
        ctx.fail("training_mode=1 is not supported; export the model in inference mode")
    if x.ndim > 2:   # (C,) parameters broadcast over NCHW's channel axis 1
        scale, bias, mean, var = (ops.reshape(p, (-1,) + (1,) * (x.ndim - 2))
                                  for p in (scale, bias, mean, var))
    return nn.batch_norm(x, mean, var, scale, bias, eps=attrs.get("epsilon", 1e-5))


@imports("LayerNormalization")
def layer_norm(ctx, attrs, x, scale, bias=None):
    if attrs.get("stash_type", 1) != 1:
        ctx.fail("stash_type other than 1 (float32 statistics) is not supported")
    axis = attrs.get("axis", -1) % x.ndim
    return nn.layer_norm(x, scale, bias, axis=tuple(range(axis, x.ndim)),
                         eps=attrs.get("epsilon", 1e-5))
