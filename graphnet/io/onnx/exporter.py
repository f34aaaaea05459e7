"""Export: walk a graphnet graph and emit one or a few ONNX nodes per graph node.

Placeholders become graph inputs (None sizes become symbolic dimensions:
"batch" for axis 0, "sequence" for axis 1 of integer token inputs), variables
initializers holding their current values, constants Constant nodes. Each
op's converter (export_ops.CONVERTERS) names its last ONNX node and output
tensor after the graphnet node, so scopes (`dense_1/matmul`) survive, and
helper nodes after it (`dense_1/matmul_Transpose`).
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from graphnet.graph import Constant, Graph, Node, Placeholder, Variable
from graphnet.io.onnx.common import EXPORT_OPSETS, FROZEN_KEY, OnnxError, need_onnx, onnx_dtype


class Exporter:
    """The ONNX graph being written: nodes, initializers and unique tensor names.

    Converters call `emit` (a helper node, named after the current graphnet
    node) and `emit_out` (the node that produces the graphnet node's value).
    """

    def __init__(self, opset: int):
        import onnx
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.nodes: list = []
        self.initializers: list = []
        self.tensor: dict = {}      # graphnet node -> ONNX tensor name
        self.taken: set = set()
        self.current: Node | None = None
        self._shapes: dict = {}     # (tensor, start, end) -> Shape output, shared
        self._constants: dict = {}  # (dtype, shape, bytes) -> tensor name

    def fresh(self, base: str) -> str:
        """`base`, or `base_1`, `base_2`, ... when taken."""
        name, count = base, 0
        while name in self.taken:
            count += 1
            name = f"{base}_{count}"
        self.taken.add(name)
        return name

    def emit(self, op_type: str, inputs: list, **attrs) -> str:
        """A helper ONNX node for the current graphnet node; its output's name."""
        name = self.fresh(f"{self.current.name}_{op_type}")
        self._add(op_type, inputs, name, name, attrs)
        return name

    def emit_out(self, op_type: str, inputs: list, **attrs) -> str:
        """The ONNX node that computes the current graphnet node, named after it."""
        name = self.fresh(self.current.name)
        self._add(op_type, inputs, name, name, attrs)
        return name

    def _add(self, op_type, inputs, node_name, output, attrs):
        node = self.helper.make_node(op_type, list(inputs), [output], name=node_name,
                                     **{k: v for k, v in attrs.items() if v is not None})
        if self.current is not None and self.current.origin:
            node.doc_string = f"created at {self.current.origin}"
        self.nodes.append(node)

    def const(self, value, dtype=None) -> str:
        """A Constant node holding `value` (shared between identical values)."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._constants:
            base = self.current.name if self.current is not None else "const"
            name = self.fresh(f"{base}_const")
            tensor = self.onnx.numpy_helper.from_array(array, name)
            self.nodes.append(self.helper.make_node("Constant", [], [name], name=name,
                                                    value=tensor))
            self._constants[key] = name
        return self._constants[key]

    def ints(self, values) -> str:
        """An int64 vector constant (axes, shapes, slice bounds)."""
        return self.const(np.asarray(list(values), np.int64).reshape(-1))

    def shape(self, tensor: str, start: int | None = None, end: int | None = None) -> str:
        """Shape(tensor)[start:end] as an int64 vector (opset 15's start/end)."""
        key = (tensor, start, end)
        if key not in self._shapes:
            self._shapes[key] = self.emit("Shape", [tensor], start=start, end=end)
        return self._shapes[key]

    def cast(self, tensor: str, have, want) -> str:
        """`tensor` cast from dtype `have` to `want` (itself when they agree)."""
        if np.dtype(have) == np.dtype(want):
            return tensor
        return self.emit("Cast", [tensor], to=onnx_dtype(want))


def export_model(target, path, feeds=None, opset=None, session=None):
    """See gn.io.onnx.export."""
    onnx = need_onnx("gn.io.onnx.export")
    from graphnet.io.onnx.export_ops import CONVERTERS, used_inputs
    opset = EXPORT_OPSETS[0] if opset is None else int(opset)
    if opset not in EXPORT_OPSETS:
        raise OnnxError(f"export to {path}: opset {opset} is outside the supported range "
                        f"{EXPORT_OPSETS[0]}-{EXPORT_OPSETS[-1]}")
    inputs, outputs, session, graph_name = _targets(target, feeds, session)
    preferred = _io_names(target, inputs, outputs)
    nodes = _needed(outputs, used_inputs)
    _check_feeds(nodes, inputs, path)
    unsupported = sorted({type(n.op).__name__ for n in nodes if not _is_source(n)
                          and type(n.op) not in CONVERTERS})
    if unsupported:
        names = {k: [n.name for n in nodes if type(n.op).__name__ == k] for k in unsupported}
        listed = "; ".join(f"{k} ({len(v)}: '{v[0]}'{', ...' if len(v) > 1 else ''})"
                           for k, v in names.items())
        raise OnnxError(f"export to {path}: no ONNX form for {listed}. Export the inference "
                        "graph (training-only ops such as dropout masks, gradients and "
                        "updates have none)")
    ex = Exporter(opset)
    graph_inputs, frozen = [], []
    for node in nodes:
        ex.current = node
        if isinstance(node.op, Placeholder):
            ex.tensor[node] = ex.fresh(preferred.get(node, node.name))
            graph_inputs.append(_value_info(ex, ex.tensor[node], node, _dim_names(node)))
        elif isinstance(node.op, Variable):
            name = ex.tensor[node] = ex.fresh(node.name)
            value = np.asarray(session.get(node))
            ex.initializers.append(onnx.numpy_helper.from_array(value, name))
            if not node.op.trainable:
                frozen.append(name)
        elif isinstance(node.op, Constant):
            ex.tensor[node] = ex.const(node.op.value)
        else:
            args = [ex.tensor[i] for i in node.inputs[:used_inputs(node)]]
            ex.tensor[node] = CONVERTERS[type(node.op)](ex, node, *args)
    ex.current = None
    graph_outputs = []
    for out in outputs:
        name = ex.tensor[out]
        want = preferred.get(out)
        if want is not None and want != name and want not in ex.taken:
            ex.current = out   # the output name an imported model had
            ex.taken.add(want)
            ex._add("Identity", [name], want, want, {})
            name = want
        elif name in [o.name for o in graph_outputs] or name not in _produced(ex):
            ex.current = out   # a fed or repeated value, or a constant: copy it out
            name = ex.emit("Identity", [name])
        graph_outputs.append(_value_info(ex, name, out, {}))
    graph = onnx.helper.make_graph(ex.nodes, graph_name, graph_inputs, graph_outputs,
                                   initializer=ex.initializers)
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="graphnet",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    if frozen:
        onnx.helper.set_model_props(model, {FROZEN_KEY: json.dumps(frozen)})
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise OnnxError(f"export to {path}: the ONNX graph graphnet wrote does not pass "
                        f"onnx.checker ({err}); please report this") from None
    _write_atomic(model, path)
    return path


def _targets(target, feeds, session):
    """(feeds, outputs, session, graph name) for a model or fetches."""
    from graphnet.models.model import Model
    from graphnet.session import Session, model_values
    if isinstance(target, Model):
        if target.outputs is None:
            raise OnnxError(f"model '{target.name}' is not built yet: call it on data "
                            "(predict) or give its first layer an input_shape, then export")
        outputs = target.outputs if isinstance(target.outputs, (list, tuple)) \
            else [target.outputs]
        inputs = target.inputs if isinstance(target.inputs, (list, tuple)) else [target.inputs]
        return (list(inputs) if feeds is None else _as_list(feeds), list(outputs),
                session or target.session, target.name)
    outputs = _as_list(target)
    for out in outputs:
        if not isinstance(out, Node):
            raise TypeError(f"gn.io.onnx.export takes a gn.Model or graph nodes, got "
                            f"{type(out).__name__}")
    inputs = None if feeds is None else _as_list(feeds)
    return inputs, outputs, session or Session(values=model_values), "graphnet"


def _io_names(target, inputs, outputs) -> dict:
    """Graph input and output names a model asks for (an imported model keeps
    its file's names), by node."""
    names = {}
    for attr, nodes in (("input_names", inputs), ("output_names", outputs)):
        wanted = getattr(target, attr, None)
        if wanted and nodes and len(wanted) == len(nodes):
            names.update(zip(nodes, wanted))
    return names


def _as_list(items) -> list:
    if isinstance(items, dict):
        return list(items.values())
    return list(items) if isinstance(items, (list, tuple)) else [items]


def _needed(outputs, used_inputs) -> list:
    """The outputs' ancestors in graph order, following only the inputs each
    converter reads (a convolution's im2col cache is not exported)."""
    keep, stack = set(), list(outputs)
    while stack:
        node = stack.pop()
        if node not in keep:
            keep.add(node)
            stack.extend(node.inputs[:used_inputs(node)])
    return [n for n in Graph(outputs).nodes if n in keep]


def _is_source(node) -> bool:
    return isinstance(node.op, (Placeholder, Variable, Constant))


def _check_feeds(nodes, inputs, path):
    placeholders = [n for n in nodes if isinstance(n.op, Placeholder)]
    if inputs is None:
        return
    for feed in inputs:
        if not isinstance(feed, Node) or not isinstance(feed.op, Placeholder):
            raise OnnxError(f"export to {path}: feeds must be placeholders, got {feed!r}")
    missing = [p for p in placeholders if p not in inputs]
    if missing:
        raise OnnxError(f"export to {path}: the outputs need placeholder(s) "
                        f"{', '.join(repr(p.name) for p in missing)}, which are not among "
                        "the feeds")


def _dim_names(node: Node) -> dict:
    """Symbolic names for the placeholder's None sizes."""
    names = {}
    for axis, size in enumerate(node.shape):
        if size is None:
            if axis == 0:
                names[axis] = "batch"
            elif axis == 1 and node.dtype.kind in "iu":
                names[axis] = "sequence"
            else:
                names[axis] = f"{node.name}_{axis}"
    return names


def _value_info(ex, name, node, dim_names):
    dims = [dim_names.get(axis, size) for axis, size in enumerate(node.shape)]
    return ex.helper.make_tensor_value_info(name, onnx_dtype(node.dtype), dims)


def _produced(ex) -> set:
    return {out for node in ex.nodes if node.op_type != "Constant" for out in node.output}


def _write_atomic(model, path):
    """Serialize, then rename over `path`: a failed write leaves no half file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".onnx-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

