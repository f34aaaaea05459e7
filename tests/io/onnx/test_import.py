"""gn.io.onnx.load: operators against ONNX Runtime, round trips, a torch-exported
CNN, training and gradients through an imported graph, diagrams and bad files."""

from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import assert_close, onnx, run_ort

import graphnet as gn
from graphnet.io.onnx import OnnxError

L = gn.layers
helper = onnx.helper
FIXTURES = Path(__file__).with_name("fixtures")
F32, I64 = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64


def model_of(nodes, inputs, outputs, initializers=(), opset=17):
    """A ModelProto from helper nodes, (name, type, shape) inputs, output names
    (types inferred) and {name: array} initializers."""
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info(*i) for i in inputs],
        [helper.make_empty_tensor_value_info(o[0]) for o in outputs],
        initializer=[onnx.numpy_helper.from_array(v, k) for k, v in dict(initializers).items()])
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets))
    return onnx.shape_inference.infer_shapes(proto)


def save(proto, tmp_path, name="m.onnx") -> Path:
    path = tmp_path / name
    onnx.save(proto, path)
    return path


def node(op, inputs, outputs="y", **attrs):
    """A node named after its operator and first output, in scope "block"."""
    outputs = [outputs] if isinstance(outputs, str) else outputs
    return helper.make_node(op, inputs, outputs, name=f"block/{op}_{outputs[0]}", **attrs)


R = np.random.default_rng(1)
W34 = R.standard_normal((3, 4)).astype(np.float32)
IMG = ("x", F32, ["batch", 3, 6, 6])
VEC = ("x", F32, ["batch", 3])
SEQ = ("x", F32, ["batch", "seq", 4])
OUT = ("y", F32, None)

#: name -> (nodes, inputs, initializers, opset): one or a few operators each.
OPERATOR_CASES = {
    "gemm": ([node("Gemm", ["x", "w", "b"], transB=1, alpha=0.5, beta=2.0)], [VEC],
             {"w": W34.T.copy(), "b": R.standard_normal(4).astype(np.float32)}, 17),
    "matmul_add_mul_sub_div": ([node("MatMul", ["x", "w"], "h"), node("Add", ["h", "c"], "a"),
                                node("Mul", ["a", "h"], "m"), node("Sub", ["m", "c"], "s"),
                                node("Div", ["s", "c"], "y")], [VEC],
                               {"w": W34, "c": np.full(4, 1.5, np.float32)}, 17),
    "conv_pools": ([node("Conv", ["x", "w", "b"], "c", pads=[1, 1, 1, 1], strides=[2, 1]),
                    node("MaxPool", ["c"], "p", kernel_shape=[2, 2], strides=[1, 1]),
                    node("AveragePool", ["p"], "q", kernel_shape=[2, 2], pads=[0, 0, 1, 1],
                         strides=[2, 2]),
                    node("GlobalAveragePool", ["q"], "y")], [IMG],
                   {"w": R.standard_normal((5, 3, 3, 3)).astype(np.float32),
                    "b": R.standard_normal(5).astype(np.float32)}, 17),
    "grouped_conv_same": ([node("Conv", ["x", "w"], "y", auto_pad="SAME_UPPER", group=3,
                                strides=[2, 2])], [IMG],
                          {"w": R.standard_normal((6, 1, 3, 3)).astype(np.float32)}, 17),
    "batch_norm": ([node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)],
                   [IMG], {"s": R.random(3).astype(np.float32) + 0.5,
                           "b": R.random(3).astype(np.float32),
                           "m": R.random(3).astype(np.float32),
                           "v": R.random(3).astype(np.float32) + 0.5}, 17),
    "activations": ([node("Relu", ["x"], "r"), node("Sigmoid", ["x"], "s"),
                     node("Tanh", ["x"], "t"), node("Erf", ["x"], "e"),
                     node("Sqrt", ["s"], "q"), node("Pow", ["t", "two"], "p"),
                     node("Concat", ["r", "s", "t", "e", "q", "p"], "c", axis=1),
                     node("Softmax", ["c"], "y", axis=1)], [VEC],
                    {"two": np.array(2.0, np.float32)}, 17),
    "gelu": ([node("Gelu", ["x"], "g"), node("Gelu", ["x"], "h", approximate="tanh"),
              node("Add", ["g", "h"], "y")], [VEC], {}, 20),
    "layer_norm_reduce_mean": ([node("LayerNormalization", ["x", "s", "b"], "n", epsilon=1e-5),
                                node("ReduceMean", ["n"], "y", axes=[1], keepdims=0)], [SEQ],
                               {"s": R.random(4).astype(np.float32),
                                "b": R.random(4).astype(np.float32)}, 17),
    "shape_chain_reshape_transpose": (  # torch's Reshape(x, Concat(Shape(x)[:2], [2, 2]))
        [node("Shape", ["x"], "sh"), node("Gather", ["sh", "i0"], "d0", axis=0),
         node("Gather", ["sh", "i1"], "d1", axis=0),
         node("Unsqueeze", ["d0", "ax"], "u0"), node("Unsqueeze", ["d1", "ax"], "u1"),
         node("Concat", ["u0", "u1", "two2"], "target", axis=0),
         node("Reshape", ["x", "target"], "r"), node("Transpose", ["r"], "t", perm=[0, 2, 1, 3]),
         node("Flatten", ["t"], "y", axis=2)], [SEQ],
        {"i0": np.array(0), "i1": np.array(1), "ax": np.array([0]),
         "two2": np.array([2, 2])}, 17),
    "gather_slice_squeeze_cast": (
        [node("Gather", ["table", "x"], "g", axis=0),
         node("Slice", ["g", "st", "en", "axs", "stp"], "s"),
         node("Squeeze", ["s", "ax2"], "q"), node("Cast", ["x"], "xf", to=F32),
         node("Unsqueeze", ["xf", "ax2"], "u"), node("Mul", ["q", "u"], "y")],
        [("x", I64, ["batch"])],
        {"table": R.standard_normal((7, 5, 3)).astype(np.float32),
         "st": np.array([1, 2]), "en": np.array([2, 100]), "axs": np.array([1, 2]),
         "stp": np.array([1, -1]), "ax2": np.array([1])}, 17),
    "where_equal_expand_constant": (
        [helper.make_node("Constant", [], ["k"], name="k",
                          value=onnx.numpy_helper.from_array(np.array([0.0], np.float32))),
         node("Shape", ["x"], "sh"), node("Expand", ["k", "sh"], "z"),
         node("Equal", ["x", "z"], "eq"), node("Where", ["eq", "x", "z"], "w"),
         node("Add", ["w", "x"], "y")], [VEC], {}, 17),
    "dynamic_slice_expand_range": (   # a slice and a mask sized at run time
        [node("Shape", ["x"], "sh"), node("Gather", ["sh", "i1"], "n", axis=0),
         node("Unsqueeze", ["n", "ax"], "nn"), node("Slice", ["pos", "zero", "nn"], "p"),
         node("Cast", ["p"], "pf", to=F32), node("Unsqueeze", ["pf", "ax1"], "pc"),
         node("Expand", ["pc", "sh"], "e"), node("Range", ["i0", "n", "i1"], "r"),
         node("ConstantOfShape", ["sh"], "ones",
              value=onnx.numpy_helper.from_array(np.ones(1, np.float32))),
         node("Mul", ["e", "x"], "m"), node("Add", ["m", "ones"], "y")], [SEQ],
        {"pos": np.arange(10, dtype=np.int64), "zero": np.array([0]), "i0": np.array(0),
         "i1": np.array(1), "ax": np.array([0]), "ax1": np.array([1])}, 17),
}


@pytest.mark.parametrize("case", sorted(OPERATOR_CASES))
def test_operators_match_onnxruntime(case, tmp_path, rng):
    nodes, inputs, initializers, opset = OPERATOR_CASES[case]
    proto = model_of(nodes, inputs, [OUT], initializers, opset)
    onnx.checker.check_model(proto)
    name, dtype, dims = inputs[0]
    shape = [d if isinstance(d, int) else (3 if i == 0 else 5) for i, d in enumerate(dims)]
    x = rng.integers(0, 7, shape) if dtype == I64 else \
        rng.standard_normal(shape).astype(np.float32)
    model = gn.io.onnx.load(save(proto, tmp_path))
    assert_close(model.predict(x), run_ort(proto, {name: x})[0])


ROUND_TRIPS = {
    "cnn": (lambda: gn.Sequential([
        L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(8, 8, 2)),
        L.BatchNormalization(), L.MaxPool2D(2), L.Flatten(), L.Dense(3)]), (3, 8, 8, 2)),
    "lstm": (lambda: gn.Sequential([L.LSTM(4, input_shape=(3, 2)), L.Dense(2)]), (2, 3, 2)),
    "transformer": (lambda: gn.Sequential([L.TransformerEncoderLayer(
        8, 2, 16, input_shape=(None, 8))]), (2, 5, 8)),
}


@pytest.mark.parametrize("case", sorted(ROUND_TRIPS))
def test_round_trip_gives_the_same_outputs(case, tmp_path, rng):
    build, shape = ROUND_TRIPS[case]
    original = build()
    x = rng.standard_normal(shape).astype(np.float32)
    gn.io.onnx.export(original, tmp_path / "m.onnx")
    imported = gn.io.onnx.load(tmp_path / "m.onnx")
    assert_close(imported.predict(x), original.predict(x))
    assert sorted(w.shape for w in imported.weights) == \
        sorted(w.shape for w in original.weights)
    if case == "cnn":   # batch norm statistics stay frozen
        frozen = [w.name for w in imported.weights if not w.op.trainable]
        assert len(frozen) == 2 and all("moving" in n for n in frozen)
    gn.io.onnx.export(imported, tmp_path / "again.onnx")   # and out again
    assert_close(run_ort(tmp_path / "again.onnx", {imported.input_names[0]: x})[0],
                 original.predict(x))


def test_torch_exported_cnn_matches_onnxruntime(rng):
    path = FIXTURES / "small_cnn.onnx"
    model = gn.io.onnx.load(path)
    ops = [n.op_type for n in onnx.load(path).graph.node]
    assert "BatchNormalization" in ops and "Gemm" in ops and "Flatten" in ops
    for batch in (1, 4):
        x = rng.standard_normal((batch, 1, 12, 12)).astype(np.float32)
        assert_close(model.predict(x), run_ort(path, {"images": x})[0])
    assert model.inputs.shape == (None, 1, 12, 12)


def test_imported_model_fine_tunes_and_summarises(rng):
    model = gn.io.onnx.load(FIXTURES / "small_cnn.onnx")
    lines = []
    model.summary(print_fn=lines.append)
    assert "OnnxGraph" in lines[0] and "(None, 5)" in lines[0]
    x = rng.standard_normal((32, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 5, 32)
    model.compile(optimizer=gn.optim.Adam(1e-2), loss="sparse_categorical_crossentropy")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=8, verbose=0, shuffle=False)
    assert model.evaluate(x, y, verbose=0) < before
    running = [w for w in model.weights if not w.op.trainable]
    assert len(running) == 2   # batch norm's running mean and variance


def test_gradients_through_an_imported_graph(tmp_path):
    nodes = [node("Gemm", ["x", "w", "b"], "h", transB=1), node("Tanh", ["h"], "t"),
             node("Shape", ["t"], "sh"), node("Gather", ["sh", "i0"], "n", axis=0),
             node("Unsqueeze", ["n", "ax"], "nn"), node("Concat", ["nn", "two"], "tg", axis=0),
             node("Reshape", ["t", "tg"], "r"), node("Slice", ["r", "zero", "nn"], "s"),
             node("LayerNormalization", ["s", "g", "beta"], "y", axis=-1)]
    inits = {"w": R.standard_normal((4, 3)), "b": R.standard_normal(4), "g": R.random(2) + 0.5,
             "beta": R.random(2), "i0": np.array(0), "ax": np.array([0]),
             "zero": np.array([0]), "two": np.array([2, 2])}
    inits = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in inits.items()}
    proto = model_of(nodes, [("x", onnx.TensorProto.DOUBLE, ["batch", 3])],
                     [("y", onnx.TensorProto.DOUBLE, None)], inits)
    model = gn.io.onnx.load(save(proto, tmp_path))
    x = R.standard_normal((3, 3))
    gn.testing.check_gradients(lambda node_: model.call(node_), [x], rtol=1e-5, atol=1e-7)
    loss = gn.sum(gn.square(model.outputs))
    grads = gn.gradients(loss, model.weights)
    assert [g.shape for g in grads] == [w.shape for w in model.weights]


def test_diagram_folds_by_scope(tmp_path):
    model = gn.io.onnx.load(FIXTURES / "small_cnn.onnx")
    source = gn.viz.to_dot(model).source
    assert "Conv" in source or "conv" in source
    gn.io.onnx.export(gn.Sequential([L.Dense(3, input_shape=(2,), name="first"),
                                     L.Dense(2, name="second")]), tmp_path / "m.onnx")
    imported = gn.io.onnx.load(tmp_path / "m.onnx")
    folded = gn.viz.to_dot(imported, depth=1).source
    assert "cluster" not in folded and "first" in folded and "second" in folded
    gn.viz.draw(imported, tmp_path / "m.dot", collapse="first*")
    assert (tmp_path / "m.dot").read_text().count("first") >= 1


def test_bad_files_say_what_and_where(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n" * 20)
    with pytest.raises(OnnxError, match=r"notes\.onnx"):
        gn.io.onnx.load(text)
    data = (FIXTURES / "small_cnn.onnx").read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(OnnxError, match=r"cut\.onnx.*(truncated|not)"):
        gn.io.onnx.load(cut)
    with pytest.raises(FileNotFoundError):
        gn.io.onnx.load(tmp_path / "absent.onnx")


def test_opset_out_of_range(tmp_path):
    proto = model_of([node("Relu", ["x"])], [VEC], [OUT], opset=11)
    with pytest.raises(OnnxError, match=r"old\.onnx uses opset 11, outside .* \(13-22\)"):
        gn.io.onnx.load(save(proto, tmp_path, "old.onnx"))


def test_control_flow_is_refused(tmp_path):
    branch = helper.make_graph([node("Relu", ["x"], "r")], "branch", [],
                               [helper.make_tensor_value_info("r", F32, None)])
    flow = helper.make_node("If", ["c"], ["y"], name="choose", then_branch=branch,
                            else_branch=branch)
    proto = model_of([flow], [VEC, ("c", onnx.TensorProto.BOOL, [])], [OUT])
    with pytest.raises(OnnxError, match=r"flow\.onnx: control flow .*'choose' \(If\)"):
        gn.io.onnx.load(save(proto, tmp_path, "flow.onnx"))


def test_unsupported_operators_are_listed_with_counts(tmp_path):
    nodes = [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="top1"),
             helper.make_node("Relu", ["v"], ["r"], name="relu"),
             helper.make_node("TopK", ["r", "k"], ["v2", "i2"], name="top2"),
             helper.make_node("Einsum", ["v2"], ["y"], name="sum", equation="ij->i")]
    proto = model_of(nodes, [VEC], [OUT], {"k": np.array([2])})
    with pytest.raises(OnnxError, match=r"ops\.onnx: 2 unsupported operator\(s\): "
                                        r"Einsum x1 \(first: 'sum'\), TopK x2 \(first: 'top1'\)"):
        gn.io.onnx.load(save(proto, tmp_path, "ops.onnx"))


def test_unsupported_attribute_names_node_and_operator(tmp_path):
    proto = model_of([node("MaxPool", ["x"], kernel_shape=[2, 2], ceil_mode=1)], [IMG], [OUT])
    assert proto.graph.output[0].type.tensor_type.elem_type == F32
    with pytest.raises(OnnxError, match=r"p\.onnx: node 'block/MaxPool_y' \(MaxPool\): ceil_mode"):
        gn.io.onnx.load(save(proto, tmp_path, "p.onnx"))


def test_several_inputs_predict_by_name(tmp_path, rng):
    proto = model_of([node("Add", ["a", "b"], "s"), node("Mul", ["s", "a"], "y")],
                     [("a", F32, ["batch", 2]), ("b", F32, ["batch", 2])], [OUT])
    model = gn.io.onnx.load(save(proto, tmp_path))
    a, b = rng.standard_normal((2, 3, 2)).astype(np.float32)
    assert_close(model.predict({"a": a, "b": b}), (a + b) * a)
    assert_close(model.predict([a, b]), (a + b) * a)
    model.compile("sgd", "mse")
    with pytest.raises(OnnxError, match="2 inputs"):
        model.fit(a, b, verbose=0)
