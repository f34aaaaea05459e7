"""BERT-family encoders from Hugging Face folders: load, tokenize, encode, fine-tune.

    enc = gn.models.bert.from_pretrained(folder)       # config.json, model.safetensors,
    batch = enc.tokenize(["a sentence", "another"])      # tokenizer.json
    h = enc.hidden_states(batch["input_ids"], batch["attention_mask"])  # (b, seq, hidden)
    e = enc.encode(["a sentence", "another"])            # (n, hidden), mean-pooled, unit length

The encoder is BERT's (post-LayerNorm): word, position and token-type
embeddings summed and normalised, then `num_hidden_layers` blocks of
multi-head self-attention over the unpadded tokens and an exact-erf GELU
feed-forward, each added to its input and normalised; an optional pooler
(tanh of a dense layer on the first token). It is a `gn.Model` from token ids
to hidden states: padding (the config's pad_token_id) is masked out, token
types are 0; `hidden_states` takes an explicit mask and token types.

`from_pretrained` reads the checkpoint with the safetensors package's NumPy
API and maps its tensor names onto the graph's variables by an explicit
table (`checkpoint_names`); missing, unexpected and mis-shaped tensors are
reported by name before any weight is set. No torch is needed.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, fields

import numpy as np

from graphnet import nn, ops
from graphnet.errors import ShapeError
from graphnet.graph import Node, placeholder, root_scope
from graphnet.io.checkpoint import CheckpointError
from graphnet.layers import Dense, Embedding, LayerNormalization
from graphnet.layers.base import Layer
from graphnet.models.model import Input, Model

SUPPORTED = ("bert",)
#: Buffers some checkpoints carry that are not parameters.
IGNORED = ("embeddings.position_ids",)


@dataclass(frozen=True)
class BertConfig:
    """The fields of a Hugging Face BERT `config.json` that the encoder uses."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    hidden_dropout_prob: float = 0.1

    @classmethod
    def from_json(cls, path) -> BertConfig:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        kind = data.get("model_type", "bert")
        if kind not in SUPPORTED:
            raise ValueError(f"{path}: model_type {kind!r} is not supported; graphnet loads "
                             f"{', '.join(SUPPORTED)} checkpoints")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: position_embedding_type "
                             f"{data['position_embedding_type']!r} is not supported (absolute)")
        if data.get("hidden_act", "gelu") not in ("gelu", "gelu_new", "relu"):
            raise ValueError(f"{path}: hidden_act {data['hidden_act']!r} is not supported")
        names = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in data.items() if k in names})
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"{path}: hidden_size {config.hidden_size} is not a multiple of "
                             f"num_attention_heads {config.num_attention_heads}")
        return config


class BertLayer(Layer):
    """One post-LN encoder block: LN(x + attention(x)), then LN(h + ffn(h))."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float,
                 activation: str = "gelu", dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.heads, self.intermediate = int(hidden), int(heads), int(intermediate)
        self.eps, self.activation, self.dropout = float(eps), activation, float(dropout)
        self.uses_training = self.dropout > 0

    def __call__(self, x, mask=None, training=False):
        return self.call_with_inputs([x], training=training, mask=mask)

    def build(self, input_shape):
        h, name = self.hidden, self.name
        dense = {"dtype": self.dtype}
        self.query, self.key, self.value = (Dense(h, name=f"{name}/attention/self/{n}", **dense)
                                            for n in ("query", "key", "value"))
        self.attention_output = Dense(h, name=f"{name}/attention/output/dense", **dense)
        self.attention_norm = LayerNormalization(epsilon=self.eps, dtype=self.dtype,
                                                 name=f"{name}/attention/output/LayerNorm")
        self.intermediate_dense = Dense(self.intermediate, name=f"{name}/intermediate/dense",
                                        **dense)
        self.output_dense = Dense(h, name=f"{name}/output/dense", **dense)
        self.output_norm = LayerNormalization(epsilon=self.eps, dtype=self.dtype,
                                              name=f"{name}/output/LayerNorm")
        for layer, width in ((self.query, h), (self.key, h), (self.value, h),
                             (self.attention_output, h), (self.attention_norm, h),
                             (self.intermediate_dense, h), (self.output_dense, self.intermediate),
                             (self.output_norm, h)):
            layer.build((None, None, width))
            layer.built = True
            self.weights += layer.weights

    def call(self, x, training=False, mask=None):
        depth = self.hidden // self.heads
        q, k, v = (ops.transpose(ops.unflatten(layer(x), 2, (self.heads, depth)), (0, 2, 1, 3))
                   for layer in (self.query, self.key, self.value))
        context = nn.attention(q, k, v, mask=mask)
        context = ops.flatten(ops.transpose(context, (0, 2, 1, 3)), 2)
        h = self.attention_norm(x + self._drop(self.attention_output(context), training))
        inner = self.intermediate_dense(h)
        inner = ops.relu(inner) if self.activation == "relu" else \
            ops.gelu(inner, approximate=self.activation == "gelu_new")
        return self.output_norm(h + self._drop(self.output_dense(inner), training))

    def _drop(self, x, training):
        return nn.dropout(x, self.dropout, training=training) if self.dropout else x


class BertEncoder(Model):
    """Token ids (batch, seq) -> last hidden states (batch, seq, hidden_size).

    Built from a BertConfig (or a config.json's fields); `from_pretrained`
    also loads weights and the tokenizer. `dropout` is the hidden dropout
    used when fine-tuning (0 by default: the outputs are deterministic).
    """

    def __init__(self, vocab_size: int, hidden_size: int = 768, num_hidden_layers: int = 12,
                 num_attention_heads: int = 12, intermediate_size: int = 3072,
                 hidden_act: str = "gelu", max_position_embeddings: int = 512,
                 type_vocab_size: int = 2, layer_norm_eps: float = 1e-12,
                 pad_token_id: int = 0, pooler: bool = True, dropout: float = 0.0, name=None):
        super().__init__(name=name or "bert")
        self.config = BertConfig(vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
                                 intermediate_size, hidden_act, max_position_embeddings,
                                 type_vocab_size, layer_norm_eps, pad_token_id, dropout)
        c, n = self.config, self.name
        self.dropout = float(dropout)
        self.word_embeddings = Embedding(c.vocab_size, c.hidden_size, "normal",
                                         name=f"{n}/embeddings/word_embeddings")
        self.position_embeddings = Embedding(c.max_position_embeddings, c.hidden_size, "normal",
                                             name=f"{n}/embeddings/position_embeddings")
        self.token_type_embeddings = Embedding(c.type_vocab_size, c.hidden_size, "normal",
                                               name=f"{n}/embeddings/token_type_embeddings")
        self.embeddings_norm = LayerNormalization(epsilon=c.layer_norm_eps,
                                                  name=f"{n}/embeddings/LayerNorm")
        self.blocks = [BertLayer(c.hidden_size, c.num_attention_heads, c.intermediate_size,
                                 c.layer_norm_eps, c.hidden_act, self.dropout,
                                 name=f"{n}/encoder/layer_{i}")
                       for i in range(c.num_hidden_layers)]
        self.pooler = Dense(c.hidden_size, activation="tanh", name=f"{n}/pooler/dense") \
            if pooler else None
        self.tokenizer = None          # a tokenizers.Tokenizer, set by from_pretrained
        self.max_length = c.max_position_embeddings
        self.inputs = Input((None,), "int64", name="input_ids")
        self.outputs = self.call(self.inputs)
        if self.pooler is not None:
            self.pooler(self.outputs[:, 0])
        self._hidden_graph = None

    @property
    def layers(self) -> list:
        pooler = [] if self.pooler is None else [self.pooler]
        return [self.word_embeddings, self.position_embeddings, self.token_type_embeddings,
                self.embeddings_norm, *self.blocks, *pooler]

    @property
    def uses_training(self) -> bool:
        return self.dropout > 0

    def check_input(self, ids):
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ShapeError(f"BertEncoder '{self.name}' takes (batch, seq) integer token ids, "
                             f"got {ids.dtype.name} {ids.shape}")

    def call(self, input_ids, training=False, attention_mask=None, token_type_ids=None):
        """Hidden states; the mask defaults to `input_ids != pad_token_id`."""
        self.check_input(input_ids)
        if attention_mask is None:
            attention_mask = ops.not_equal(input_ids, self.config.pad_token_id)
        types = ops.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = (self.word_embeddings(input_ids) + self.position_embeddings(ops.positions(input_ids))
             + self.token_type_embeddings(types))
        x = self.embeddings_norm(x)
        if self.dropout:
            x = nn.dropout(x, self.dropout, training=training)
        keep = ops.expand_dims(ops.expand_dims(ops.not_equal(attention_mask, 0), 1), 1)
        for block in self.blocks:
            x = block(x, mask=keep, training=training)
        return x

    def pooled(self, hidden: Node) -> Node:
        """The pooler's output for hidden states: tanh(dense(first token))."""
        if self.pooler is None:
            raise ValueError(f"{self.name} has no pooler (its checkpoint had none)")
        return self.pooler(hidden[:, 0])

    # ------------------------------------------------------------ running

    def tokenize(self, texts) -> dict:
        """`input_ids`, `attention_mask`, `token_type_ids` (int64, padded to the
        longest text; texts longer than `max_length` tokens are cut, with a warning)."""
        if self.tokenizer is None:
            raise ValueError(f"{self.name} has no tokenizer: load it with from_pretrained")
        texts = _check_texts(texts, "tokenize")
        encodings = self.tokenizer.encode_batch(texts)
        cut = [i for i, e in enumerate(encodings) if e.overflowing]
        if cut:
            warnings.warn(f"tokenize: {len(cut)} text(s) (the first is item {cut[0]}) are longer "
                          f"than {self.max_length} tokens and were truncated", stacklevel=2)
        return {"input_ids": np.array([e.ids for e in encodings], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], np.int64)}

    def hidden_states(self, input_ids, attention_mask=None, token_type_ids=None) -> np.ndarray:
        """Last hidden states (batch, seq, hidden) float32 for token ids."""
        ids = np.asarray(input_ids, np.int64)
        if ids.ndim != 2:
            raise ValueError(f"hidden_states: input_ids must be (batch, seq), got {ids.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.config.vocab_size):
            raise ValueError(f"hidden_states: token id {ids.max()} is outside the vocabulary "
                             f"(0 to {self.config.vocab_size - 1})")
        if ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"hidden_states: {ids.shape[1]} tokens exceed the model's "
                             f"{self.config.max_position_embeddings} positions")
        mask = (ids != self.config.pad_token_id) if attention_mask is None else attention_mask
        types = np.zeros_like(ids) if token_type_ids is None else token_type_ids
        graph = self._hidden()
        return self.session.run(graph["out"], {graph["ids"]: ids,
                                               graph["mask"]: np.asarray(mask, np.int64),
                                               graph["types"]: np.asarray(types, np.int64)})

    def _hidden(self) -> dict:
        if self._hidden_graph is None:
            with root_scope():
                ids = placeholder((None, None), "int64", name=f"{self.name}_input_ids")
                mask = placeholder((None, None), "int64", name=f"{self.name}_attention_mask")
                types = placeholder((None, None), "int64", name=f"{self.name}_token_type_ids")
            out = self.call(ids, attention_mask=mask, token_type_ids=types)
            self._hidden_graph = {"ids": ids, "mask": mask, "types": types, "out": out}
        return self._hidden_graph

    def encode(self, texts, batch_size: int = 32) -> np.ndarray:
        """Sentence embeddings (n, hidden): hidden states averaged over each text's
        tokens (padding excluded), then scaled to unit length."""
        texts = _check_texts(texts, "encode")
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenize(texts[start:start + batch_size])
            # NOTE: padded to a multiple of 16 tokens, so a few compiled plans serve
            # every batch; the mask keeps the padding out of every result.
            extra = -batch["input_ids"].shape[1] % 16
            batch = {k: np.pad(v, ((0, 0), (0, extra)),
                               constant_values=self.config.pad_token_id if k == "input_ids"
                               else 0) for k, v in batch.items()}
            hidden = self.hidden_states(batch["input_ids"], batch["attention_mask"],
                                        batch["token_type_ids"])
            mask = batch["attention_mask"][..., None].astype(np.float32)
            mean = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            parts.append(mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12))
        return np.concatenate(parts)

    def get_config(self) -> dict:
        config = Layer.get_config(self)
        config.pop("tokenizer", None)
        return config

    @classmethod
    def from_config(cls, config: dict):
        return Layer.from_config.__func__(cls, config)


class Classifier(Model):
    """An encoder with a classification head: token ids -> class probabilities.

        enc = gn.models.bert.from_pretrained(folder)
        model = gn.models.bert.Classifier(enc, num_classes=2)
        enc.trainable = False                      # or unfreeze_top(enc, 2)
        model.compile(optimizer=gn.optim.AdamW(2e-5), loss="sparse_categorical_crossentropy")
        model.fit(batch["input_ids"], labels)

    The texts' hidden states are averaged over their tokens (padding left out,
    as `encode` does) and fed to a softmax Dense layer.
    """

    def __init__(self, encoder: BertEncoder, num_classes: int, name=None):
        super().__init__(name=name or "bert_classifier")
        self.encoder, self.num_classes = encoder, int(num_classes)
        self.head = Dense(self.num_classes, activation="softmax", name=f"{self.name}/head")
        self.inputs = Input((None,), "int64", name="input_ids")
        self.outputs = self.call(self.inputs)

    @property
    def layers(self) -> list:
        return [self.encoder, self.head]

    @property
    def uses_training(self) -> bool:
        return self.encoder.uses_training

    def get_config(self) -> dict:
        return Layer.get_config(self)

    @classmethod
    def from_config(cls, config: dict):
        return Layer.from_config.__func__(cls, config)

    def call(self, input_ids, training=False):
        hidden = self.encoder(input_ids, training=training)
        keep = ops.cast(ops.not_equal(input_ids, self.encoder.config.pad_token_id), hidden.dtype)
        keep = ops.expand_dims(keep, -1)
        mean = ops.sum(hidden * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), 1e-9)
        return self.head(mean)


def unfreeze_top(encoder: BertEncoder, blocks: int):
    """Freeze the encoder but its top `blocks` blocks (and pooler): fine-tune those."""
    encoder.trainable = True
    top = encoder.blocks[len(encoder.blocks) - blocks:] if blocks else []
    for layer in encoder.layers:
        layer.trainable = layer in top or (bool(blocks) and layer is encoder.pooler)


def _check_texts(texts, what: str) -> list:
    if isinstance(texts, str):
        raise TypeError(f"{what} takes a list of strings; wrap one text in a list: [text]")
    texts = list(texts)
    if not texts:
        raise ValueError(f"{what}: the list of texts is empty")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{what}: item {bad} is {type(texts[bad]).__name__} "
                        f"({texts[bad]!r:.40}), not a string")
    return texts


# ------------------------------------------------------------ loading


def checkpoint_names(encoder: BertEncoder) -> dict:
    """Hugging Face tensor name -> (variable, transposed?): Linear weights are
    stored (out, in), graphnet's Dense kernels (in, out)."""
    names = {
        "embeddings.word_embeddings.weight": (encoder.word_embeddings.embeddings, False),
        "embeddings.position_embeddings.weight": (encoder.position_embeddings.embeddings, False),
        "embeddings.token_type_embeddings.weight": (encoder.token_type_embeddings.embeddings,
                                                    False),
        "embeddings.LayerNorm.weight": (encoder.embeddings_norm.gamma, False),
        "embeddings.LayerNorm.bias": (encoder.embeddings_norm.beta, False),
    }

    def dense(prefix, layer):
        names[f"{prefix}.weight"] = (layer.kernel, True)
        names[f"{prefix}.bias"] = (layer.bias, False)

    def norm(prefix, layer):
        names[f"{prefix}.weight"] = (layer.gamma, False)
        names[f"{prefix}.bias"] = (layer.beta, False)

    for i, block in enumerate(encoder.blocks):
        p = f"encoder.layer.{i}"
        dense(f"{p}.attention.self.query", block.query)
        dense(f"{p}.attention.self.key", block.key)
        dense(f"{p}.attention.self.value", block.value)
        dense(f"{p}.attention.output.dense", block.attention_output)
        norm(f"{p}.attention.output.LayerNorm", block.attention_norm)
        dense(f"{p}.intermediate.dense", block.intermediate_dense)
        dense(f"{p}.output.dense", block.output_dense)
        norm(f"{p}.output.LayerNorm", block.output_norm)
    if encoder.pooler is not None:
        dense("pooler.dense", encoder.pooler)
    return names


def from_pretrained(folder, strict: bool = True, dropout: float = 0.0) -> BertEncoder:
    """A BertEncoder with the weights and tokenizer of a Hugging Face folder
    (config.json, model.safetensors, tokenizer.json).

    Every tensor is checked before any is set: a missing, unexpected or
    mis-shaped tensor is an error naming it; `strict=False` allows a missing
    pooler (the encoder is built without one) and ignores unexpected tensors
    (a task head, say).
    """
    folder = os.fspath(folder)
    paths = {name: os.path.join(folder, name) for name in
             ("config.json", "model.safetensors", "tokenizer.json")}
    missing = [name for name, path in paths.items() if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"{folder} is not a Hugging Face BERT folder: it lacks "
                                f"{', '.join(missing)}")
    config = BertConfig.from_json(paths["config.json"])
    from safetensors import safe_open
    with safe_open(paths["model.safetensors"], framework="np") as f:
        keys = [k for k in f.keys() if k not in IGNORED]
        prefix = "bert." if any(k.startswith("bert.") for k in keys) else ""
        names = {k[len(prefix):]: k for k in keys if k.startswith(prefix)}
        has_pooler = "pooler.dense.weight" in names
        if not has_pooler and strict:
            raise CheckpointError(f"{paths['model.safetensors']}: the tensor "
                                  f"'{prefix}pooler.dense.weight' is missing; pass strict=False "
                                  "to load an encoder without a pooler")
        fields_ = {f.name: getattr(config, f.name) for f in fields(BertConfig)}
        fields_.pop("hidden_dropout_prob")
        encoder = BertEncoder(**fields_, pooler=has_pooler, dropout=dropout)
        table = checkpoint_names(encoder)
        absent = [n for n in table if n not in names]
        if absent:
            raise CheckpointError(f"{paths['model.safetensors']}: tensor '{prefix}{absent[0]}' "
                                  f"is missing ({len(absent)} missing in all) for a "
                                  f"{config.num_hidden_layers}-layer BERT of hidden size "
                                  f"{config.hidden_size}")
        extra = sorted(n for n in names if n not in table)
        if extra and strict:
            raise CheckpointError(f"{paths['model.safetensors']}: unexpected tensor "
                                  f"'{names[extra[0]]}' ({len(extra)} in all); pass "
                                  "strict=False to ignore them")
        values = []
        for name, (var, transposed) in table.items():
            value = f.get_tensor(names[name])
            value = value.T if transposed else value
            if value.shape != var.shape:
                raise CheckpointError(f"{paths['model.safetensors']}: tensor '{names[name]}' has "
                                      f"shape {value.shape}, but config.json makes it "
                                      f"{var.shape}")
            values.append((var, value))
    for var, value in values:
        encoder.session.set(var, value)
    encoder.tokenizer, encoder.max_length = _tokenizer(folder, paths["tokenizer.json"], config)
    return encoder


def _tokenizer(folder: str, path: str, config: BertConfig):
    """(tokenizer, length): the folder's tokenizer, padding to the longest text
    of a batch and truncating at `length` (sentence_bert_config.json's
    max_seq_length when present, else max_position_embeddings)."""
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(path)
    length = config.max_position_embeddings
    sbert = os.path.join(folder, "sentence_bert_config.json")
    if os.path.isfile(sbert):
        with open(sbert, encoding="utf-8") as f:
            length = min(length, int(json.load(f).get("max_seq_length", length)))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    pad = tokenizer.id_to_token(config.pad_token_id) or "[PAD]"
    tokenizer.enable_padding(pad_id=config.pad_token_id, pad_token=pad)
    tokenizer.enable_truncation(max_length=length)
    return tokenizer, length

