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
import re
from dataclasses import dataclass, fields

import numpy as np

from graphnet import nn, ops
from graphnet.errors import ShapeError
from graphnet.graph import Node, name_scope, placeholder, root_scope
from graphnet.io.checkpoint import CheckpointError
from graphnet.layers import Dense, Embedding, LayerNormalization
from graphnet.layers.base import Layer
from graphnet.models.architecture import Architecture
from graphnet.models.model import Input
from graphnet.text.wordpiece import WordPieceTokenizer, check_texts

SUPPORTED = ("bert",)
#: Buffers some checkpoints carry that are not parameters.
IGNORED = ("embeddings.position_ids",)
#: The files from_pretrained reads from a folder.
FILES = ("config.json", "model.safetensors", "tokenizer.json")
#: What a Hugging Face Hub id looks like ("sentence-transformers/all-MiniLM-L6-v2").
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
#: The name scopes of the encoder blocks (also inside a model that holds the encoder),
#: which diagrams fold into one box each.
BLOCKS = "*encoder/layer_*"


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
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a JSON file ({err})") from None
        if not isinstance(data, dict) or "vocab_size" not in data:
            raise ValueError(f"{path} is not a model config: expected a JSON object with "
                             "vocab_size, hidden_size, num_hidden_layers, ...")
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


class BertEncoder(Architecture):
    """Token ids (batch, seq) -> last hidden states (batch, seq, hidden_size).

    Built from a BertConfig (or a config.json's fields); `from_pretrained`
    also loads weights and the tokenizer. `dropout` is the hidden dropout
    used when fine-tuning (0 by default: the outputs are deterministic).
    `tokenizer` (a gn.text.WordPieceTokenizer) is saved with the model.
    """

    def __init__(self, vocab_size: int, hidden_size: int = 768, num_hidden_layers: int = 12,
                 num_attention_heads: int = 12, intermediate_size: int = 3072,
                 hidden_act: str = "gelu", max_position_embeddings: int = 512,
                 type_vocab_size: int = 2, layer_norm_eps: float = 1e-12,
                 pad_token_id: int = 0, pooler: bool = True, dropout: float = 0.0,
                 tokenizer: WordPieceTokenizer | None = None, name=None):
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
        self.tokenizer = tokenizer
        if tokenizer is not None and tokenizer.max_length > c.max_position_embeddings:
            raise ValueError(f"{self.name}: the tokenizer's max_length {tokenizer.max_length} "
                             f"exceeds the model's {c.max_position_embeddings} positions")
        self.inputs = Input((None,), "int64", name="input_ids")
        self.outputs = self.call(self.inputs)
        if self.pooler is not None:
            self.pooler(self.outputs[:, 0])
        self._hidden_graph = None

    @property
    def max_length(self) -> int:
        """The most tokens a text keeps (the tokenizer's limit, else the positions')."""
        if self.tokenizer is not None:
            return self.tokenizer.max_length
        return self.config.max_position_embeddings

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
        # NOTE: the layers' names are full paths ("bert/encoder/layer_0"), so they run
        # outside any enclosing scope, and the glue between them joins their scopes:
        # a diagram then has one cluster per layer, wherever the encoder is used.
        embeddings, encoder = f"{self.name}/embeddings", f"{self.name}/encoder"
        with root_scope():
            with name_scope(embeddings, unique=False):
                positions = ops.positions(input_ids)
                types = ops.zeros_like(input_ids) if token_type_ids is None else token_type_ids
            parts = (self.word_embeddings(input_ids), self.position_embeddings(positions),
                     self.token_type_embeddings(types))
            with name_scope(embeddings, unique=False):
                x = parts[0] + parts[1] + parts[2]
            x = self.embeddings_norm(x)
            with name_scope(encoder, unique=False):
                if self.dropout:
                    x = nn.dropout(x, self.dropout, training=training)
                keep = ops.not_equal(input_ids, self.config.pad_token_id) \
                    if attention_mask is None else ops.not_equal(attention_mask, 0)
                keep = ops.expand_dims(ops.expand_dims(keep, 1), 1)   # (batch, 1, 1, keys)
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
            raise ValueError(f"{self.name} has no tokenizer: load it with from_pretrained, or "
                             "pass tokenizer=gn.text.WordPieceTokenizer.from_file(...)")
        return self.tokenizer.encode_batch(check_texts(texts, "tokenize"), stacklevel=3)

    def hidden_states(self, input_ids, attention_mask=None, token_type_ids=None) -> np.ndarray:
        """Last hidden states (batch, seq, hidden) float32 for token ids."""
        ids = np.asarray(input_ids, np.int64)
        if ids.ndim != 2:
            raise ValueError(f"hidden_states: input_ids must be (batch, seq), got {ids.shape}")
        if ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(f"hidden_states: {ids.shape[1]} tokens exceed the model's "
                             f"{self.config.max_position_embeddings} positions")
        mask = (ids != self.config.pad_token_id) if attention_mask is None else attention_mask
        types = np.zeros_like(ids) if token_type_ids is None else token_type_ids
        feeds = {"input_ids": (ids, self.config.vocab_size),
                 "attention_mask": (np.asarray(mask, np.int64), None),
                 "token_type_ids": (np.asarray(types, np.int64), self.config.type_vocab_size)}
        for what, (value, size) in feeds.items():
            if value.shape != ids.shape:
                raise ValueError(f"hidden_states: {what} has shape {value.shape}, expected "
                                 f"input_ids' shape {ids.shape}")
            bad = value[(value < 0) | (value >= size)] if size and value.size else ()
            if len(bad):
                raise ValueError(f"hidden_states: {what} holds {bad[0]}, outside 0 to "
                                 f"{size - 1}")
        graph = self._hidden()
        return self.session.run(graph["out"], {graph[k]: feeds[name][0] for k, name in
                                               (("ids", "input_ids"), ("mask", "attention_mask"),
                                                ("types", "token_type_ids"))})

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
        texts = check_texts(texts, "encode")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"encode: batch_size must be a whole number >= 1, "
                             f"got {batch_size!r}")
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenize(texts[start:start + batch_size])
            length = batch["input_ids"].shape[1]
            extra = _bucket(length, self.config.max_position_embeddings) - length
            batch = {k: np.pad(v, ((0, 0), (0, extra)),
                               constant_values=self.config.pad_token_id if k == "input_ids"
                               else 0) for k, v in batch.items()}
            hidden = self.hidden_states(batch["input_ids"], batch["attention_mask"],
                                        batch["token_type_ids"])
            mask = batch["attention_mask"][..., None].astype(np.float32)
            mean = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            parts.append(mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12))
        return np.concatenate(parts)


    def to_dot(self, show_grads: bool = False, **options):
        """The model's diagram with each encoder block folded into one box,
        unless `collapse` or `depth` says otherwise."""
        return super().to_dot(show_grads=show_grads, **_fold_blocks(self, options))

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.to_dot()._repr_mimebundle_(include, exclude)


class Classifier(Architecture):
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


    def call(self, input_ids, training=False):
        with root_scope():      # as in BertEncoder.call: the layers' names are full paths
            hidden = self.encoder(input_ids, training=training)
            with name_scope(f"{self.name}/mean_pool", unique=False):
                keep = ops.not_equal(input_ids, self.encoder.config.pad_token_id)
                keep = ops.expand_dims(ops.cast(keep, hidden.dtype), -1)
                mean = ops.sum(hidden * keep, axis=1) / ops.maximum(ops.sum(keep, axis=1), 1e-9)
            return self.head(mean)

    def to_dot(self, show_grads: bool = False, **options):
        """The model's diagram with each encoder block folded into one box,
        unless `collapse` or `depth` says otherwise."""
        return super().to_dot(show_grads=show_grads, **_fold_blocks(self.encoder, options))

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.to_dot()._repr_mimebundle_(include, exclude)


def _fold_blocks(encoder: BertEncoder, options: dict) -> dict:
    """Diagram options that fold each of the encoder's blocks into one box
    when the caller chose no folding of their own."""
    if options.get("collapse") or options.get("depth") is not None or not encoder.blocks:
        return options
    return {**options, "collapse": BLOCKS}


def _bucket(length: int, limit: int) -> int:
    """The length a batch of `length` tokens is padded to: a multiple of 4 up to 32
    tokens, of 8 up to 64, else of 16 (at most `limit`)."""
    # NOTE: plans are compiled per shape, so padding bounds their number (about 24 up
    # to 256 tokens) at a cost of at most an eighth of the tokens past 32.
    step = 4 if length <= 32 else 8 if length <= 64 else 16
    return min(-(-length // step) * step, max(limit, length))


def unfreeze_top(encoder: BertEncoder, blocks: int):
    """Freeze the encoder but its top `blocks` blocks (and pooler): fine-tune those."""
    encoder.trainable = True
    top = encoder.blocks[len(encoder.blocks) - blocks:] if blocks else []
    for layer in encoder.layers:
        layer.trainable = layer in top or (bool(blocks) and layer is encoder.pooler)


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
    (config.json, model.safetensors, tokenizer.json), or of a Hub id such as
    "sentence-transformers/all-MiniLM-L6-v2" (downloaded once into graphnet's
    cache by the huggingface_hub package).

    Every tensor is checked before any is set: a missing, unexpected or
    mis-shaped tensor is an error naming it; `strict=False` allows a missing
    pooler (the encoder is built without one) and ignores unexpected tensors
    (a task head, say).
    """
    folder = _local_folder(folder)
    paths = {name: os.path.join(folder, name) for name in FILES}
    missing = [name for name, path in paths.items() if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(f"{folder} is not a Hugging Face BERT folder: it lacks "
                                f"{', '.join(missing)}")
    config = BertConfig.from_json(paths["config.json"])
    tokenizer = _tokenizer(folder, paths["tokenizer.json"], config)
    from safetensors import SafetensorError, safe_open
    try:
        checkpoint = safe_open(paths["model.safetensors"], framework="np")
    except SafetensorError as err:
        raise CheckpointError(f"{paths['model.safetensors']} is not a readable safetensors "
                              f"file ({err})") from None
    with checkpoint as f:
        keys = list(f.keys())
        # A task model's checkpoint (BertForSequenceClassification, ...) holds the
        # encoder under "bert." and its head outside it.
        prefix = "bert." if any(k.startswith("bert.") for k in keys) else ""
        names = {k[len(prefix):]: k for k in keys
                 if k.startswith(prefix) and k[len(prefix):] not in IGNORED}
        outside = sorted(k for k in keys if not k.startswith(prefix))
        has_pooler = "pooler.dense.weight" in names
        if not has_pooler and strict:
            raise CheckpointError(f"{paths['model.safetensors']}: the tensor "
                                  f"'{prefix}pooler.dense.weight' is missing; pass strict=False "
                                  "to load an encoder without a pooler")
        fields_ = {f.name: getattr(config, f.name) for f in fields(BertConfig)}
        fields_.pop("hidden_dropout_prob")
        encoder = BertEncoder(**fields_, pooler=has_pooler, dropout=dropout, tokenizer=tokenizer)
        table = checkpoint_names(encoder)
        absent = [prefix + n for n in table if n not in names]
        if absent:
            raise CheckpointError(f"{paths['model.safetensors']}: {len(absent)} tensor(s) "
                                  f"missing for a {config.num_hidden_layers}-layer BERT of "
                                  f"hidden size {config.hidden_size} (config.json): "
                                  f"{_listed(absent)}")
        extra = sorted(names[n] for n in names if n not in table) + outside
        if extra and strict:
            raise CheckpointError(f"{paths['model.safetensors']}: {len(extra)} unexpected "
                                  f"tensor(s): {_listed(extra)}; pass strict=False to ignore "
                                  "them")
        values, wrong = [], []
        for name, (var, transposed) in table.items():
            value = f.get_tensor(names[name])
            value = value.T if transposed else value
            if value.shape != var.shape:
                # NOTE: shapes are reported as stored; a Linear weight is (out, in).
                stored = value.T.shape if transposed else value.shape
                expected = var.shape[::-1] if transposed else var.shape
                wrong.append(f"'{names[name]}' has shape {stored}, config.json makes it "
                             f"{expected}")
            values.append((var, value))
        if wrong:
            more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
            raise CheckpointError(f"{paths['model.safetensors']}: tensors do not match "
                                  f"config.json: {'; '.join(wrong[:3])}{more}")
    for var, value in values:
        encoder.session.set(var, value)
    return encoder


def _listed(names: list) -> str:
    """"'a', 'b', 'c', 'd' and 5 more": the first few of a list of tensor names."""
    more = f" and {len(names) - 4} more" if len(names) > 4 else ""
    return ", ".join(f"'{n}'" for n in names[:4]) + more


def _tokenizer(folder: str, path: str, config: BertConfig) -> WordPieceTokenizer:
    """The folder's tokenizer, padding to the longest text of a batch and
    truncating at sentence_bert_config.json's max_seq_length when the folder
    has one (sentence-transformers' limit), else at max_position_embeddings."""
    length = config.max_position_embeddings
    sbert = os.path.join(folder, "sentence_bert_config.json")
    if os.path.isfile(sbert):
        with open(sbert, encoding="utf-8") as f:
            length = min(length, int(json.load(f).get("max_seq_length", length)))
    tokenizer = WordPieceTokenizer.from_file(path, max_length=length, pad_id=config.pad_token_id)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"{path} has {tokenizer.vocab_size} tokens, more than config.json's "
                         f"vocab_size {config.vocab_size}")
    return tokenizer


def _local_folder(source) -> str:
    """`source` itself when it is a folder here, else the download of a Hub id."""
    folder = os.fspath(source)
    if os.path.isdir(folder) or not HUB_ID.fullmatch(folder):
        return folder
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise FileNotFoundError(f"{folder} is not a folder here; to download it as a Hugging "
                                "Face Hub id, pip install huggingface_hub") from None
    from graphnet.datasets.download import cache_dir
    try:
        return snapshot_download(folder, cache_dir=os.fspath(cache_dir() / "hub"),
                                 allow_patterns=[*FILES, "sentence_bert_config.json"])
    except Exception as err:    # offline, unknown id, refused: the package's own errors
        raise FileNotFoundError(f"{folder} is not a folder here, and downloading it from the "
                                f"Hugging Face Hub failed ({type(err).__name__}: {err}); pass "
                                f"a folder that holds {', '.join(FILES)}") from None

