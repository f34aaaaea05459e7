"""Configs of every registered class round-trip (graphnet/serialization.py)."""

import json

import numpy as np
import pytest

import graphnet as gn
from graphnet import serialization
from graphnet.models.bert import BertEncoder, BertLayer, Classifier
from graphnet.models.gpt import GPT, Block, CausalSelfAttention
from graphnet.serialization import SerializationError, deserialize, serialize

#: One construction per registered layer class; a new layer class must add one.
LAYERS = {
    "Activation": lambda: gn.layers.Activation("tanh"),
    "AvgPool2D": lambda: gn.layers.AvgPool2D(2, strides=1, padding="same"),
    "BatchNormalization": lambda: gn.layers.BatchNormalization(momentum=0.9),
    "Conv2D": lambda: gn.layers.Conv2D(4, (3, 5), strides=2, padding="same",
                                       activation="relu", name="conv"),
    "Dense": lambda: gn.layers.Dense(3, activation="softmax", use_bias=False,
                                     kernel_regularizer=gn.regularizers.L1L2(1e-3, 1e-4),
                                     input_shape=(5,)),
    "Dropout": lambda: gn.layers.Dropout(0.25, seed=3),
    "Embedding": lambda: gn.layers.Embedding(10, 4),
    "Flatten": lambda: gn.layers.Flatten(trainable=False),
    "GRU": lambda: gn.layers.GRU(4, return_sequences=True),
    "GlobalAveragePooling2D": lambda: gn.layers.GlobalAveragePooling2D(),
    "LSTM": lambda: gn.layers.LSTM(4),
    "LayerNormalization": lambda: gn.layers.LayerNormalization(epsilon=1e-5),
    "MaxPool2D": lambda: gn.layers.MaxPool2D((2, 2)),
    "MultiHeadAttention": lambda: gn.layers.MultiHeadAttention(2, 4),
    "Reshape": lambda: gn.layers.Reshape((2, -1)),
    "SimpleRNN": lambda: gn.layers.SimpleRNN(3, activation="relu"),
    "TransformerEncoderLayer": lambda: gn.layers.TransformerEncoderLayer(8, 2, 16),
    "Normalization": lambda: gn.layers.Normalization(axis=-1, mean=[0.5, 1.0],
                                                     variance=[1.0, 4.0]),
    "Rescaling": lambda: gn.layers.Rescaling(1 / 255, offset=-0.5),
    "RandomTranslation": lambda: gn.layers.RandomTranslation(0.1, (-0.2, 0.1), seed=1,
                                                             fill_mode="constant"),
    "RandomRotation": lambda: gn.layers.RandomRotation(0.05, interpolation="nearest"),
    "RandomZoom": lambda: gn.layers.RandomZoom(0.2, (-0.1, 0.1)),
    "RandomCrop": lambda: gn.layers.RandomCrop(24, 24, padding=4, seed=0),
    "RandomFlip": lambda: gn.layers.RandomFlip("vertical"),
    "GaussianNoise": lambda: gn.layers.GaussianNoise(0.1, seed=2),
    "RandomErasing": lambda: gn.layers.RandomErasing(0.25, scale=(0.05, 0.2), value=0.5),
    "CausalSelfAttention": lambda: CausalSelfAttention(8, 2, residual_scale=0.5),
    "Block": lambda: Block(8, 2, dropout=0.1),
    "GPT": lambda: GPT(11, 8, 1, 2, 8, tokenizer=gn.text.CharTokenizer("abc")),
    "BertLayer": lambda: BertLayer(8, 2, 16, 1e-12, activation="gelu"),
    "BertEncoder": lambda: BertEncoder(20, 8, 1, 2, 16, max_position_embeddings=16),
    "Classifier": lambda: Classifier(BertEncoder(20, 8, 1, 2, 16, max_position_embeddings=16),
                                     num_classes=3),
    "Sequential": lambda: gn.Sequential([gn.layers.Dense(2, input_shape=(3,))]),
    "Model": lambda: gn.Model(gn.Input((3,)), gn.layers.Dense(2)(gn.Input((3,)))),
}
#: Abstract bases, and ONNX imports (gn.io.onnx.load), which save only back to ONNX.
SKIP = {"Layer", "Architecture", "OnnxGraph", "OnnxModel"}


def _registered(kind):
    """graphnet's own classes of `kind` (tests may register classes of their own)."""
    return sorted(name for (k, name), cls in serialization._registry.items()
                  if k == kind and cls.__module__.startswith("graphnet."))


def test_every_registered_layer_class_has_an_example():
    missing = sorted(set(_registered("layers")) - set(LAYERS) - SKIP)
    assert not missing, f"add a construction to LAYERS for {missing}"


def _round_trip(obj):
    data = json.loads(json.dumps(serialization.serialize_object(obj)))
    return serialization.deserialize_object(data)


@pytest.mark.parametrize("name", sorted(set(LAYERS) - {"Model", "Sequential", "GPT"}))
def test_layer_configs_round_trip(name):
    layer = LAYERS[name]()
    copy = _round_trip(layer)
    assert type(copy) is type(layer)
    assert serialize(copy.get_config()) == serialize(layer.get_config())
    assert copy.name == layer.name


def test_a_gpt_config_round_trips_with_its_tokenizer():
    copy = _round_trip(LAYERS["GPT"]())
    assert (copy.vocab_size, copy.block_size, copy.n_embd) == (11, 8, 8)
    assert copy.tokenizer.chars == "abc"


def test_a_model_config_round_trips_through_json():
    inputs = gn.Input((3,))
    model = gn.Model(inputs, gn.layers.Dense(2, name="out")(gn.layers.Dense(4)(inputs)))
    copy = _round_trip(model)
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    assert copy.inputs.shape == (None, 3) and copy.outputs.shape == (None, 2)


@pytest.mark.parametrize("obj", [
    gn.optim.Adam(gn.optim.schedules.WarmupCosineDecay(1e-3, 10, 100), clipnorm=1.0),
    gn.optim.SGD(0.1, momentum=0.5, nesterov=True),
    gn.optim.AdamW(3e-4, weight_decay=0.1),
    gn.losses.SparseCategoricalCrossentropy(from_logits=True),
    gn.losses.Huber(delta=2.0),
    gn.metrics.SparseTopKCategoricalAccuracy(k=3),
    gn.metrics.F1Score(num_classes=3, average="macro"),
    gn.regularizers.L2(0.5),
    gn.optim.schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
], ids=lambda o: type(o).__name__)
def test_other_configs_round_trip(obj):
    copy = _round_trip(obj)
    assert type(copy) is type(obj)
    assert serialize(copy.get_config()) == serialize(obj.get_config())


def test_values_round_trip():
    value = {"t": (1, (2, None)), "l": [1.5, "a"], "d": np.dtype("int64"),
             "a": np.arange(4, dtype=np.int32).reshape(2, 2), "f": gn.relu, "n": np.float32(2)}
    back = deserialize(json.loads(json.dumps(serialize(value))))
    assert back["t"] == (1, (2, None)) and back["l"] == [1.5, "a"] and back["n"] == 2.0
    assert back["d"] == np.dtype("int64") and back["f"] is gn.relu
    np.testing.assert_array_equal(back["a"], value["a"])
    assert back["a"].dtype == np.int32


def test_what_cannot_be_saved_is_named():
    layer = gn.layers.Dense(2, activation=lambda x: x * 2)
    with pytest.raises(SerializationError, match=r"\['activation'\]: cannot save <function"):
        serialize(layer.get_config(), "config")
    with pytest.raises(SerializationError, match="keys must be strings"):
        serialize({1: 2})


def test_register_refuses_a_taken_name():
    with pytest.raises(SerializationError, match="'Dense' is taken by graphnet.layers.core.Dense"):
        @gn.register_layer
        class Dense(gn.layers.Layer):
            pass
    with pytest.raises(TypeError, match="is not a graphnet layer"):
        gn.register_layer(int)
