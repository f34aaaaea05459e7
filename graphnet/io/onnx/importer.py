"""Import: an ONNX file as a gn.Model whose variables are its initializers.

    m = gn.io.onnx.load("m.onnx")
    m.predict(x); m.summary(); gn.viz.draw(m, "m.svg", depth=2)
    m.compile("adam", "sparse_categorical_crossentropy"); m.fit(x, y)

The file is checked before anything is built: it must parse as an ONNX
model, pass onnx.checker, use a default-domain opset in IMPORT_OPSETS, have
no control flow, and use only operators in import_ops.IMPORTERS (every
other operator is reported at once, with counts). Nodes are named after the
ONNX nodes ("/encoder/layer.0/attention/MatMul" -> scope
"encoder/layer.0/attention"), so diagrams fold by the exporter's scopes.

Initializers: float tensors with at least one axis become variables,
trainable except batch norm statistics and those the file marks frozen
(graphnet's export records them); integer and scalar ones are constants.
Models with one input fit and evaluate like any gn.Model; with several
inputs, `predict` takes a dict of arrays by input name (or a list in order).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter

import numpy as np

from graphnet.graph import (
    Constant,
    Node,
    Placeholder,
    Variable,
    constant,
    name_scope,
    placeholder,
    root_scope,
    variable,
)
from graphnet.io.onnx.common import (
    CONTROL_FLOW,
    FROZEN_KEY,
    IMPORT_OPSETS,
    OnnxError,
    need_onnx,
    numpy_dtype,
)
from graphnet.layers.base import Layer
from graphnet.models.model import Model

#: BatchNormalization inputs that hold statistics, not trainable parameters.
STATISTICS = {"BatchNormalization": (3, 4)}


def load_model(path, name=None) -> OnnxModel:
    """See gn.io.onnx.load."""
    need_onnx("gn.io.onnx.load")
    path = os.fspath(path)
    proto = read(path)
    return OnnxModel(proto, path, name=name)


def read(path: str):
    """The checked ModelProto of `path`, or an OnnxError naming the file."""
    import onnx
    from google.protobuf.message import DecodeError
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no ONNX file at {path}")
    try:
        proto = onnx.load(path)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise OnnxError(f"{path} is not a readable ONNX file: it is truncated or not ONNX "
                        f"({type(err).__name__}: {err})") from None
    if proto.ir_version == 0 or not proto.HasField("graph") or not proto.graph.output:
        raise OnnxError(f"{path} is not an ONNX model: expected a ModelProto with an IR "
                        f"version and a graph with outputs, found ir_version="
                        f"{proto.ir_version} and {len(proto.graph.output)} outputs "
                        "(truncated, or another kind of file)")
    check_opset(proto, path)
    check_operators(proto.graph, path)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0]
        raise OnnxError(f"{path} is not a valid ONNX model (onnx.checker: {first})") from None
    return proto


def check_opset(proto, path: str) -> int:
    """The default-domain opset, or an OnnxError when it is out of range."""
    versions = {o.domain: o.version for o in proto.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None:
        raise OnnxError(f"{path} imports no default ONNX opset (found domains "
                        f"{sorted(versions)})")
    if opset not in IMPORT_OPSETS:
        raise OnnxError(f"{path} uses opset {opset}, outside the range graphnet imports "
                        f"({IMPORT_OPSETS[0]}-{IMPORT_OPSETS[-1]}); convert it with "
                        "onnx.version_converter.convert_version(model, 17)")
    return opset


def check_operators(graph, path: str):
    """Raise one OnnxError for control flow, or one listing every unsupported
    operator with its count and first node."""
    from graphnet.io.onnx.import_ops import IMPORTERS
    flow = [n for n in graph.node if n.op_type in CONTROL_FLOW]
    if flow:
        listed = ", ".join(f"'{n.name}' ({n.op_type})" for n in flow)
        raise OnnxError(f"{path}: control flow is not supported (graphnet imports static "
                        f"graphs; {', '.join(CONTROL_FLOW)} carry subgraphs): node(s) {listed}")
    missing = Counter()
    first = {}
    for node in graph.node:
        kind = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if kind not in IMPORTERS:
            missing[kind] += 1
            first.setdefault(kind, node.name)
    if missing:
        listed = ", ".join(f"{kind} x{count} (first: '{first[kind]}')"
                           for kind, count in sorted(missing.items()))
        raise OnnxError(f"{path}: {len(missing)} unsupported operator(s): {listed}")


# --------------------------------------------------------------- the layer


class Context:
    """What converters see of the graph being imported: the current ONNX node,
    values known when the graph is built, and error reporting."""

    def __init__(self, path: str, opset: int):
        self.path, self.opset = path, opset
        self.node = None
        self._static: dict = {}

    @property
    def op_type(self) -> str:
        return self.node.op_type

    @property
    def num_outputs(self) -> int:
        return len(self.node.output)

    def fail(self, message: str):
        raise OnnxError(f"{self.path}: node '{self.node.name}' ({self.node.op_type}): {message}")

    def static(self, node: Node):
        """The value of `node` when it depends on constants only, else None."""
        if node in self._static:
            return self._static[node]
        op = node.op
        if isinstance(op, Constant):
            value = op.value
        elif isinstance(op, (Placeholder, Variable)) or op.random or op.stateful:
            value = None
        else:
            inputs = [self.static(i) for i in node.inputs]
            value = None if any(v is None for v in inputs) else \
                np.asarray(op.kernel("numpy")(*inputs))
        self._static[node] = value
        return value

    def maybe_const(self, node: Node, default=None):
        value = self.static(node)
        return default if value is None else value

    def const(self, node: Node, what: str) -> np.ndarray:
        """The value of an input graphnet needs when it builds the graph."""
        value = self.static(node)
        if value is None:
            self.fail(f"its {what} ('{node.name}') must be known when the graph is built, "
                      "but depends on a graph input")
        return value

    def partial(self, node: Node) -> list:
        """A 1-D integer tensor (a shape) as a list of ints, None where only
        the run time knows: shapes of tensors with known sizes, gathered,
        concatenated, squeezed and cast."""
        value = self.static(node)
        if value is not None:
            return [int(v) for v in np.ravel(value)]
        op, inputs = node.op, node.inputs
        from graphnet.io.onnx import dynamic
        from graphnet.ops import shape as shape_ops
        if isinstance(op, dynamic.ShapeOf):
            return list(inputs[0].shape[op.start:op.end])
        if isinstance(op, shape_ops.Gather) and op.axis == 0 and inputs[0].ndim == 1:
            index = self.static(inputs[1])
            if index is not None:
                known = self.partial(inputs[0])
                return [known[int(i)] for i in np.ravel(index)]
        if isinstance(op, shape_ops.Concat) and op.axis == 0:
            return [d for i in inputs for d in self.partial(i)]
        if isinstance(op, (shape_ops.ExpandDims, shape_ops.Squeeze, shape_ops.Reshape,
                           shape_ops.Cast, dynamic.DynamicReshape)):
            return self.partial(inputs[0])
        length = 1 if node.ndim == 0 else node.shape[0]
        if node.ndim > 1 or length is None:
            self.fail(f"'{node.name}' must be a 1-D shape of known length, got "
                      f"{node.shape}")
        return [None] * length


class OnnxGraph(Layer):
    """The imported graph as one layer: its weights are the ONNX initializers,
    and calling it converts the ONNX nodes into graphnet nodes."""

    def __init__(self, proto, path: str, **kwargs):
        super().__init__(**kwargs)
        self.proto, self.path = proto, path
        self.opset = check_opset(proto, path)
        initializers = {t.name for t in proto.graph.initializer}
        self.input_specs = [_spec(i) for i in proto.graph.input if i.name not in initializers]
        self.output_names = [o.name for o in proto.graph.output]
        self.variables: dict = {}    # initializer name -> variable node
        self.constants: dict = {}    # initializer name -> constant node
        self.tensors: dict = {}      # ONNX tensor name -> graphnet node (latest call)

    def check_input(self, *inputs):
        if len(inputs) != len(self.input_specs):
            raise OnnxError(f"{self.path} takes {len(self.input_specs)} inputs "
                            f"({', '.join(s[0] for s in self.input_specs)}), got {len(inputs)}")

    def build(self, *input_shapes):
        from onnx import numpy_helper
        graph = self.proto.graph
        frozen = _frozen(self.proto)
        for node in graph.node:
            for index in STATISTICS.get(node.op_type, ()):
                if index < len(node.input):
                    frozen.add(node.input[index])
        first_use = _first_users(graph)
        with root_scope():
            for tensor in graph.initializer:
                value = numpy_helper.to_array(tensor)
                if value.dtype.kind == "f" and value.ndim > 0:
                    name = tensor.name if "/" in tensor.name else \
                        _scoped(first_use.get(tensor.name, ""), tensor.name)
                    var = variable(value, name=name, trainable=tensor.name not in frozen)
                    self.variables[tensor.name] = var
                    self.weights.append(var)
                else:
                    self.constants[tensor.name] = constant(value, name=_clean(tensor.name))

    def call(self, *inputs, training=False) -> list:
        import onnx

        from graphnet.io.onnx.import_ops import IMPORTERS
        ctx = Context(self.path, self.opset)
        tensors = {**self.constants, **self.variables}
        tensors.update({spec[0]: x for spec, x in zip(self.input_specs, inputs)})
        with root_scope():
            for node in self.proto.graph.node:
                ctx.node = node
                args = [None if not name else _lookup(ctx, tensors, name) for name in node.input]
                while args and args[-1] is None:
                    args.pop()
                attrs = {a.name: _attribute(onnx.helper.get_attribute_value(a))
                         for a in node.attribute}
                scope = _scope(node.name)
                with name_scope(scope, unique=False) if scope else contextlib.nullcontext():
                    try:
                        out = IMPORTERS[node.op_type](ctx, attrs, *args)
                    except OnnxError:
                        raise
                    except (TypeError, ValueError, KeyError, IndexError) as err:
                        ctx.fail(f"{type(err).__name__}: {err}")
                outs = out if isinstance(out, list) else [out]
                for name, value in zip(node.output, outs):
                    if name:
                        tensors[name] = self._folded(ctx, value, node)
                used = [n for n in node.output[len(outs):] if n]
                if used:
                    ctx.fail(f"only its first {len(outs)} output(s) are supported, but "
                             f"{', '.join(used)} is used")
        ctx.node = None
        self.tensors = tensors   # ONNX tensor name -> node, of the latest call
        return [tensors[name] for name in self.output_names]

    def _folded(self, ctx, value: Node, onnx_node) -> Node:
        """`value`, or a constant holding it when it depends on constants only."""
        if isinstance(value.op, (Constant, Placeholder, Variable)):
            return value
        known = ctx.static(value)
        if known is None:
            return value
        folded = constant(known, name=_clean(onnx_node.name) or "const")
        ctx._static[folded] = folded.op.value
        return folded

    def get_config(self) -> dict:
        raise OnnxError(f"a model imported from {self.path} is saved as ONNX: "
                        "gn.io.onnx.export(model, path)")


class OnnxModel(Model):
    """A gn.Model around an imported ONNX graph (see the module docstring)."""

    def __init__(self, proto, path: str, name=None):
        stem = os.path.splitext(os.path.basename(path))[0]
        super().__init__(name=name or _clean(stem).replace("/", "_") or "onnx_model")
        self.path = path
        self.graph_layer = OnnxGraph(proto, path, name=f"{self.name}_graph")
        with root_scope():
            feeds = [placeholder(shape, dtype, name=_clean(input_name))
                     for input_name, shape, dtype in self.graph_layer.input_specs]
        outputs = self.graph_layer.call_with_inputs(feeds)
        self.graph_layer.output_shape = outputs[0].shape
        self.input_names = [s[0] for s in self.graph_layer.input_specs]
        self.output_names = list(self.graph_layer.output_names)
        self.inputs = feeds[0] if len(feeds) == 1 else feeds
        self.outputs = outputs[0] if len(outputs) == 1 else outputs

    @property
    def layers(self) -> list:
        return [self.graph_layer]

    def call(self, x, training: bool = False):
        """The outputs for input node(s) x: the built graph for the model's own
        inputs, else a new copy of the graph on x."""
        inputs = list(x) if isinstance(x, (list, tuple)) else [x]
        own = self.inputs if isinstance(self.inputs, list) else [self.inputs]
        if len(inputs) == len(own) and all(a is b for a, b in zip(inputs, own)):
            return self.outputs
        outputs = self.graph_layer.call_with_inputs(inputs)
        return outputs[0] if len(outputs) == 1 else outputs

    def check_input(self, x):
        if not isinstance(self.inputs, list):
            super().check_input(x)

    def _input_placeholder(self, x):
        if isinstance(self.inputs, list):
            raise OnnxError(f"{self.path} has {len(self.inputs)} inputs "
                            f"({', '.join(self.input_names)}); fit, evaluate and "
                            "train_on_batch take models with one input; predict takes a dict "
                            "of arrays by input name")
        return self.inputs

    def predict(self, x, batch_size=32, verbose=0):
        """Outputs for x: an array (one input), or a dict by input name / a list
        in input order (several). Several outputs come back as a list."""
        if not isinstance(self.inputs, list) and not isinstance(self.outputs, list):
            return super().predict(x, batch_size=batch_size, verbose=verbose)
        feeds = self._feed_arrays(x)
        size = len(next(iter(feeds.values())))
        parts = []
        for start in range(0, size, batch_size):
            batch = {node: value[start:start + batch_size] for node, value in feeds.items()}
            parts.append(self.session.run(self.outputs, batch))
        if isinstance(self.outputs, list):
            return [np.concatenate([p[i] for p in parts]) for i in range(len(self.outputs))]
        return np.concatenate(parts)

    def _feed_arrays(self, x) -> dict:
        nodes = self.inputs if isinstance(self.inputs, list) else [self.inputs]
        if isinstance(x, dict):
            unknown = sorted(set(x) - set(self.input_names))
            missing = [n for n in self.input_names if n not in x]
            if unknown or missing:
                raise ValueError(f"predict: {self.path} takes inputs {self.input_names}; "
                                 f"missing {missing}, unknown {unknown}")
            values = [x[n] for n in self.input_names]
        else:
            values = list(x) if isinstance(x, (list, tuple)) else [x]
            if len(values) != len(nodes):
                raise ValueError(f"predict: {self.path} takes {len(nodes)} inputs "
                                 f"{self.input_names}, got {len(values)} arrays")
        return {node: np.asarray(v) for node, v in zip(nodes, values)}

    def get_config(self) -> dict:
        return self.graph_layer.get_config()


# ----------------------------------------------------------------- helpers


def _spec(value_info) -> tuple:
    """(name, shape with None for symbolic sizes, dtype) of a graph input."""
    tensor = value_info.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in tensor.shape.dim)
    return value_info.name, dims, numpy_dtype(tensor.elem_type)


def _frozen(proto) -> set:
    for prop in proto.metadata_props:
        if prop.key == FROZEN_KEY:
            return set(json.loads(prop.value))
    return set()


def _first_users(graph) -> dict:
    """Initializer name -> name of the first node that reads it."""
    users = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, node.name)
    return users


def _clean(name: str) -> str:
    """An ONNX name as a graphnet node name: no leading slash, no ':'."""
    return name.strip("/").replace(":", "_")


def _scope(node_name: str) -> str:
    """"/encoder/layer.0/MatMul" -> "encoder/layer.0": the name scope of a node."""
    return "/".join(_clean(node_name).split("/")[:-1])


def _scoped(user: str, name: str) -> str:
    scope = _scope(user)
    return f"{scope}/{_clean(name)}" if scope else _clean(name)


def _lookup(ctx, tensors: dict, name: str) -> Node:
    if name not in tensors:
        ctx.fail(f"input '{name}' is not produced by any earlier node, initializer or "
                 "graph input")
    return tensors[name]


def _attribute(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, list):
        return [_attribute(v) for v in value]
    return value

