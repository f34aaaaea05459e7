"""MultiHeadAttention and TransformerEncoderLayer.

Both take several inputs or call options (a second sequence, masks), so they
define their own `__call__` on `Layer.call_with_inputs`. A plain
self-attention call, `layer(x, training=...)`, is recorded for functional
models; calls with masks or a second sequence are not, because a functional
model rebuilds each call from its one input.

Masks follow Keras: bool, True = attend. `attention_mask` is
(batch, seq_q, seq_k), or (batch, seq_k) to mask padded keys;
`use_causal_mask=True` lets position i attend only to positions <= i.
"""

from __future__ import annotations

import math

import numpy as np

from graphnet import nn, ops
from graphnet.errors import ShapeError
from graphnet.graph import as_node, constant
from graphnet.layers.base import Layer
from graphnet.layers.core import Dense, Dropout
from graphnet.layers.normalization import LayerNormalization
from graphnet.shapes import format_shape


class MultiHeadAttention(Layer):
    """Keras' MultiHeadAttention: project query, key and value into `num_heads`
    heads, attend (softmax(q k^T / sqrt(key_dim)) v per head), and project the
    joined heads back to the query's width (or `output_dim`).

        mha = MultiHeadAttention(num_heads=4, key_dim=32)
        y = mha(x)                                   # self-attention
        y = mha(x, context, attention_mask=pad)      # cross-attention

    Weights are 2-D: `query/kernel` (d_query, heads * key_dim), `key/kernel`,
    `value/kernel` alike, `attention_output/kernel` (heads * value_dim, d_out),
    so each projection is one matmul. `dropout` drops attention probabilities
    in training.
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 dropout: float = 0.0, use_bias: bool = True, output_dim: int | None = None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim or key_dim)
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiHeadAttention dropout must be in [0, 1), got {dropout}")
        self.dropout, self.use_bias, self.output_dim = float(dropout), use_bias, output_dim
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.seed = seed
        self.uses_training = self.dropout > 0

    def __call__(self, query, value=None, key=None, attention_mask=None,
                 use_causal_mask: bool = False, training: bool = False):
        """Attend from `query` to `value` (default: query) keyed by `key`
        (default: value); all (batch, seq, features)."""
        plain = value is None and key is None and attention_mask is None and not use_causal_mask
        return self.call_with_inputs([query, value, key], replay=query if plain else None,
                                     attention_mask=attention_mask,
                                     use_causal_mask=use_causal_mask, training=training)

    def check_input(self, query, value=None, key=None):
        for label, t in (("query", query), ("value", value), ("key", key)):
            if t is not None and (t.ndim != 3 or t.shape[-1] is None):
                raise ShapeError(f"MultiHeadAttention '{self.name}' expects a 3-D {label} "
                                 f"(batch, seq, features) with known features, got "
                                 f"{format_shape(t.shape)}")
        if value is not None and key is not None and \
                None not in (value.shape[1], key.shape[1]) and value.shape[1] != key.shape[1]:
            raise ShapeError(f"MultiHeadAttention '{self.name}': key {format_shape(key.shape)} "
                             f"and value {format_shape(value.shape)} differ in length")

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        heads = self.num_heads
        self.query_kernel, self.query_bias = self._dense("query", query_shape[-1],
                                                         heads * self.key_dim)
        self.key_kernel, self.key_bias = self._dense("key", key_shape[-1], heads * self.key_dim)
        self.value_kernel, self.value_bias = self._dense("value", value_shape[-1],
                                                         heads * self.value_dim)
        self.output_kernel, self.output_bias = self._dense(
            "attention_output", heads * self.value_dim, self.output_dim or query_shape[-1])

    def _dense(self, name, fan_in, fan_out):
        kernel = self.add_weight(f"{name}/kernel", (fan_in, fan_out), self.kernel_initializer)
        bias = self.add_weight(f"{name}/bias", (fan_out,), self.bias_initializer) \
            if self.use_bias else None
        return kernel, bias

    def call(self, query, value=None, key=None, attention_mask=None, use_causal_mask=False,
             training=False):
        value = query if value is None else value
        key = value if key is None else key
        q = _split_heads(_affine(query, self.query_kernel, self.query_bias), self.num_heads)
        k = _split_heads(_affine(key, self.key_kernel, self.key_bias), self.num_heads)
        v = _split_heads(_affine(value, self.value_kernel, self.value_bias), self.num_heads)
        mask = self._mask(attention_mask, use_causal_mask, query.shape[1], key.shape[1])
        if training and self.dropout > 0:
            heads = _attention_with_dropout(q, k, v, mask, self.dropout, self.seed)
        else:
            heads = nn.attention(q, k, v, mask)
        return _affine(_merge_heads(heads), self.output_kernel, self.output_bias)

    def _mask(self, attention_mask, causal, seq_q, seq_k):
        """A bool mask broadcastable to (batch, heads, seq_q, seq_k), or None."""
        mask = None
        if attention_mask is not None:
            mask = as_node(attention_mask)
            if mask.dtype != np.bool_:
                mask = ops.not_equal(mask, 0)
            if mask.ndim == 2:      # (batch, seq_k): padded keys
                mask = ops.expand_dims(mask, (1, 2))
            elif mask.ndim == 3:    # (batch, seq_q, seq_k), as Keras
                mask = ops.expand_dims(mask, 1)
            else:
                raise ShapeError(f"MultiHeadAttention '{self.name}': attention_mask must be "
                                 f"(batch, seq_q, seq_k) or (batch, seq_k), got "
                                 f"{format_shape(mask.shape)}")
        if causal:
            if seq_q is None or seq_k is None:
                raise ShapeError(f"MultiHeadAttention '{self.name}': use_causal_mask needs "
                                 f"known sequence lengths, got {seq_q} and {seq_k}")
            lower = nn.causal_mask(seq_q) if seq_q == seq_k else \
                constant(np.tril(np.ones((seq_q, seq_k), bool)), name="causal_mask")
            mask = lower if mask is None else ops.logical_and(mask, lower)
        return mask


def _affine(x, kernel, bias):
    y = ops.matmul(x, kernel)
    return y if bias is None else ops.add(y, bias)


def _split_heads(x, heads: int):
    """(batch, seq, heads * depth) -> (batch, heads, seq, depth)."""
    seq, depth = x.shape[1], x.shape[2] // heads
    if seq is not None:
        return ops.transpose(ops.reshape(x, (-1, seq, heads, depth)), (0, 2, 1, 3))
    # NOTE: reshape allows one unknown size; with two (batch and seq) slice per head.
    return ops.stack([x[:, :, h * depth:(h + 1) * depth] for h in range(heads)], axis=1)


def _merge_heads(x):
    """(batch, heads, seq, depth) -> (batch, seq, heads * depth)."""
    heads, seq, depth = x.shape[1:]
    if seq is not None:
        return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (-1, seq, heads * depth))
    return ops.concat([x[:, h] for h in range(heads)], axis=-1)


def _attention_with_dropout(q, k, v, mask, rate, seed):
    """gn.nn.attention with dropout on the attention probabilities (training only)."""
    logits = ops.matmul(ops.multiply(q, 1 / math.sqrt(q.shape[-1])),
                        ops.transpose(k, (0, 1, 3, 2)))
    if mask is not None:
        logits = ops.where(mask, logits, constant(-1e9, dtype=logits.dtype))
    probs = nn.dropout(ops.softmax(logits, axis=-1), rate, training=True, seed=seed)
    return ops.matmul(probs, v, name="attention")


class TransformerEncoderLayer(Layer):
    """One Transformer encoder block: self-attention, then a position-wise
    feed-forward network (Dense(ffn_dim, activation), Dense(d_model)), each
    with dropout, a residual connection and layer normalization.

        norm_first=True  (pre-LN):  x = x + attn(norm1(x));  x = x + ffn(norm2(x))
        norm_first=False (post-LN): x = norm1(x + attn(x));  x = norm2(x + ffn(x))

    Pre-LN trains stably without learning-rate warmup; post-LN is the
    original Transformer (and BERT). Call as `layer(x, attention_mask=None,
    use_causal_mask=False, training=False)` on (batch, seq, d_model) input.
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float = 0.0,
                 activation="gelu", norm_first: bool = True, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if d_model % num_heads:
            raise ValueError(f"TransformerEncoderLayer '{self.name}': d_model {d_model} is not "
                             f"divisible by num_heads {num_heads}")
        self.d_model, self.num_heads, self.ffn_dim = int(d_model), int(num_heads), int(ffn_dim)
        self.norm_first, self.uses_training = norm_first, dropout > 0
        common = {"dtype": self.dtype.name, "trainable": self.trainable}
        self.attention = MultiHeadAttention(num_heads, d_model // num_heads, dropout=dropout,
                                            name="attention", **common)
        self.norm1 = LayerNormalization(epsilon=epsilon, name="norm1", **common)
        self.norm2 = LayerNormalization(epsilon=epsilon, name="norm2", **common)
        self.ffn1 = Dense(ffn_dim, activation=activation, name="ffn1", **common)
        self.ffn2 = Dense(d_model, name="ffn2", **common)
        self.drop = Dropout(dropout, name="dropout", **common)
        self.sublayers = [self.attention, self.norm1, self.ffn1, self.ffn2, self.norm2]

    def __call__(self, x, attention_mask=None, use_causal_mask: bool = False,
                 training: bool = False):
        plain = attention_mask is None and not use_causal_mask
        out = self.call_with_inputs([x], replay=x if plain else None,
                                    attention_mask=attention_mask,
                                    use_causal_mask=use_causal_mask, training=training)
        # Sublayers build on first use; their weights are this layer's weights.
        self.weights = [w for layer in self.sublayers for w in layer.weights]
        self.losses = [p for layer in self.sublayers for p in layer.losses]
        return out

    def check_input(self, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ShapeError(f"TransformerEncoderLayer '{self.name}' expects 3-D input (batch, "
                             f"seq, d_model={self.d_model}), got {format_shape(x.shape)}")

    def call(self, x, attention_mask=None, use_causal_mask=False, training=False):
        def attend(h):
            h = self.attention(h, attention_mask=attention_mask,
                               use_causal_mask=use_causal_mask, training=training)
            return self.drop(h, training=training)

        def feed_forward(h):
            h = self.drop(self.ffn1(h), training=training)
            return self.drop(self.ffn2(h), training=training)

        if self.norm_first:
            x = ops.add(x, attend(self.norm1(x)))
            return ops.add(x, feed_forward(self.norm2(x)))
        x = self.norm1(ops.add(x, attend(x)))
        return self.norm2(ops.add(x, feed_forward(x)))
