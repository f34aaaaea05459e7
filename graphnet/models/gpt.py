"""A GPT-style language model (decoder-only transformer), with cached generation.

    gpt = gn.models.gpt.GPT(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    gpt.compile(optimizer=gn.optim.AdamW(1e-3),
                loss=gn.losses.SparseCategoricalCrossentropy(from_logits=True))
    gpt.train_on_batch(xb, yb)        # (b, T) ids -> (b, T, vocab) logits, every position
    ids = gpt.generate(prompt, max_new_tokens=200, temperature=0.8, top_k=40, seed=0)

The architecture is GPT-2's, as nanoGPT writes it: token and learned
position embeddings, `n_layer` pre-LayerNorm blocks (causal multi-head
self-attention, then a GELU MLP of width 4 * n_embd, each added to the
residual stream), a final LayerNorm and a projection to the vocabulary,
tied to the token embedding by default. Weights start as in GPT-2: normal
with std 0.02, biases zero, and the two residual projections of each block
scaled by 1 / sqrt(2 * n_layer).

Generation runs one graph, `step(tokens, offset)`, in two compiled plans: a
prefill over the prompt and a one-token decode step. Each layer keeps its
keys and values in cache variables of shape (batch, heads, block_size,
head_dim); a step writes its new keys and values at `offset` (fed at run
time, so the decode plan never recompiles) and attends to the positions up
to its own. When the context is full the window slides: the last
block_size tokens are run again from position 0, as nanoGPT does.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from graphnet import init, nn, ops
from graphnet import random as gn_random
from graphnet.errors import ShapeError
from graphnet.graph import name_scope, placeholder, root_scope, variable
from graphnet.layers import Dense, Embedding, LayerNormalization
from graphnet.layers.attention import _attention_with_dropout
from graphnet.layers.base import Layer
from graphnet.models.architecture import Architecture
from graphnet.models.model import Input


def _normal(stddev: float):
    return functools.partial(init.normal, stddev=stddev)


class CausalSelfAttention(Layer):
    """Multi-head self-attention where position i sees positions <= i.

    `call(x, cache=(keys, values), offset=p)` treats x as the tokens at
    positions p, p+1, ...: it writes their keys and values into the cache
    variables (returned in `self.cache_updates`) and attends over the cache.
    """

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 residual_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if n_embd % n_head:
            raise ValueError(f"CausalSelfAttention: n_embd {n_embd} is not a multiple of "
                             f"n_head {n_head}")
        self.n_embd, self.n_head, self.dropout = int(n_embd), int(n_head), float(dropout)
        self.bias, self.residual_scale = bias, float(residual_scale)
        self.cache_updates: list = []

    def __call__(self, x, training=False, cache=None, offset=None):
        return self.call_with_inputs([x], training=training, cache=cache, offset=offset)

    def build(self, input_shape):
        c = self.n_embd
        same = {"use_bias": self.bias, "dtype": self.dtype}
        self.c_attn = Dense(3 * c, kernel_initializer=_normal(0.02), name=f"{self.name}/c_attn",
                            **same)
        self.c_proj = Dense(c, kernel_initializer=_normal(0.02 * self.residual_scale),
                            name=f"{self.name}/c_proj", **same)
        self.weights += _build(self.c_attn, c) + _build(self.c_proj, c)

    def call(self, x, training=False, cache=None, offset=None):
        heads, depth, c = self.n_head, self.n_embd // self.n_head, self.n_embd
        # NOTE: three products with column blocks of c_attn, not one product split in
        # three: the split's gradient would write three zero-padded copies and add them.
        kernel, bias = self.c_attn.kernel, self.c_attn.bias
        q, k, v = (ops.transpose(ops.unflatten(
            _affine(x, kernel[:, i * c:(i + 1) * c], None if bias is None else
                    bias[i * c:(i + 1) * c]), 2, (heads, depth)), (0, 2, 1, 3))
            for i in range(3))
        if cache is not None:
            keys, values = cache
            k, v = ops.write_at(keys, k, offset, axis=2), ops.write_at(values, v, offset, axis=2)
            self.cache_updates = [ops.assign(keys, k), ops.assign(values, v)]
        # key j is visible from query i when position(j) <= position(i)
        query_at = ops.positions(x, axis=1, offset=offset)
        key_at = ops.positions(k, axis=2)
        mask = ops.less_equal(ops.expand_dims(key_at, 0), ops.expand_dims(query_at, 1))
        if self.dropout and training:
            y = _attention_with_dropout(q, k, v, mask, self.dropout, None)
        else:
            y = nn.attention(q, k, v, mask=mask)
        y = ops.flatten(ops.transpose(y, (0, 2, 1, 3)), 2)
        with root_scope():      # c_proj's name is a full path ("gpt/h_0/attn/c_proj")
            y = self.c_proj(y)
        return nn.dropout(y, self.dropout, training=training) if self.dropout else y


def _affine(x, kernel, bias):
    y = ops.matmul(x, kernel)
    return y if bias is None else y + bias


def _build(layer: Layer, width: int) -> list:
    """Build a sublayer for inputs of `width` features now; its weights."""
    layer.build((None, None, width))
    layer.built = True
    return layer.weights


class Block(Layer):
    """x + attention(ln_1(x)), then x + mlp(ln_2(x)): one pre-LN transformer block."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 residual_scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.n_embd, self.n_head, self.dropout = int(n_embd), int(n_head), float(dropout)
        self.bias, self.residual_scale = bias, float(residual_scale)
        self.uses_training = self.dropout > 0

    def __call__(self, x, training=False, cache=None, offset=None):
        return self.call_with_inputs([x], training=training, cache=cache, offset=offset)

    def build(self, input_shape):
        c, name, dtype = self.n_embd, self.name, self.dtype
        norm = {"epsilon": 1e-5, "center": self.bias, "dtype": dtype}
        dense = {"use_bias": self.bias, "dtype": dtype}
        self.ln_1 = LayerNormalization(name=f"{name}/ln_1", **norm)
        self.attn = CausalSelfAttention(c, self.n_head, self.dropout, self.bias,
                                        self.residual_scale, name=f"{name}/attn", dtype=dtype)
        self.ln_2 = LayerNormalization(name=f"{name}/ln_2", **norm)
        self.c_fc = Dense(4 * c, kernel_initializer=_normal(0.02), name=f"{name}/mlp/c_fc",
                          **dense)
        self.c_proj = Dense(c, kernel_initializer=_normal(0.02 * self.residual_scale),
                            name=f"{name}/mlp/c_proj", **dense)
        for layer, width in ((self.ln_1, c), (self.attn, c), (self.ln_2, c), (self.c_fc, c),
                             (self.c_proj, 4 * c)):
            self.weights += _build(layer, width)

    def call(self, x, training=False, cache=None, offset=None):
        # NOTE: the sublayers' names are full paths ("gpt/h_0/ln_1"), so they run
        # outside the block's scope and the glue between them joins it again: a
        # diagram then has one cluster per layer, wherever the model is used.
        with root_scope():
            a = self.attn(self.ln_1(x), training=training, cache=cache, offset=offset)
            with name_scope(self.name, unique=False):
                x = x + a
            h = self.c_fc(self.ln_2(x))
            with name_scope(f"{self.name}/mlp", unique=False):
                h = ops.gelu(h)
            h = self.c_proj(h)
            with name_scope(self.name, unique=False):
                return x + (nn.dropout(h, self.dropout, training=training) if self.dropout
                            else h)


class GPT(Architecture):
    """A decoder-only transformer language model: (batch, T) int token ids ->
    (batch, T, vocab_size) logits, T <= block_size. See the module docstring.

    `tokenizer` (optional, e.g. a gn.text.CharTokenizer) is saved with the
    model, so `gn.load_model` gives back both.
    """

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int,
                 n_embd: int, dropout: float = 0.0, bias: bool = True,
                 tie_weights: bool = True, tokenizer=None, name=None):
        super().__init__(name=name or "gpt")
        for label, value in (("vocab_size", vocab_size), ("block_size", block_size),
                             ("n_layer", n_layer), ("n_head", n_head), ("n_embd", n_embd)):
            if int(value) < 1:
                raise ValueError(f"GPT: {label} must be at least 1, got {value}")
        self.vocab_size, self.block_size = int(vocab_size), int(block_size)
        self.n_layer, self.n_head, self.n_embd = int(n_layer), int(n_head), int(n_embd)
        self.dropout, self.bias, self.tie_weights = float(dropout), bool(bias), bool(tie_weights)
        self.tokenizer = tokenizer
        scale = 1 / math.sqrt(2 * self.n_layer)
        self.wte = Embedding(self.vocab_size, self.n_embd, _normal(0.02), name=f"{self.name}/wte")
        self.wpe = Embedding(self.block_size, self.n_embd, _normal(0.02),
                             name=f"{self.name}/wpe")
        self.blocks = [Block(self.n_embd, self.n_head, self.dropout, self.bias, scale,
                             name=f"{self.name}/h_{i}") for i in range(self.n_layer)]
        self.ln_f = LayerNormalization(epsilon=1e-5, center=self.bias, name=f"{self.name}/ln_f")
        self.lm_head = None if self.tie_weights else Dense(
            self.vocab_size, use_bias=False, kernel_initializer=_normal(0.02),
            name=f"{self.name}/lm_head")
        self.inputs = Input((None,), "int64", name="idx")
        self.outputs = self.call(self.inputs)
        self._decoders: dict = {}

    # ------------------------------------------------------------ the graph

    @property
    def layers(self) -> list:
        head = [] if self.lm_head is None else [self.lm_head]
        return [self.wte, self.wpe, *self.blocks, self.ln_f, *head]

    @property
    def uses_training(self) -> bool:
        return self.dropout > 0

    def check_input(self, idx):
        if idx.ndim != 2 or idx.dtype.kind not in "iu":
            raise ShapeError(f"GPT '{self.name}' takes (batch, T) integer token ids, got "
                             f"{idx.dtype.name} {idx.shape}")
        if idx.shape[1] is not None and idx.shape[1] > self.block_size:
            raise ShapeError(f"GPT '{self.name}': sequences of {idx.shape[1]} tokens do not fit "
                             f"its context of block_size={self.block_size}")

    def call(self, idx, training=False, caches=None, offset=None):
        """Logits for token ids `idx` at positions offset, offset+1, ... (0 by default)."""
        self.check_input(idx)
        with root_scope():      # as in Block.call: the layers' names are full paths
            with name_scope(self.name, unique=False):
                positions = ops.positions(idx, axis=1, offset=offset)
            tokens, places = self.wte(idx), self.wpe(positions)
            with name_scope(self.name, unique=False):
                x = tokens + places
                if self.dropout:
                    x = nn.dropout(x, self.dropout, training=training)
            for i, block in enumerate(self.blocks):
                x = block(x, training=training, cache=None if caches is None else caches[i],
                          offset=offset)
            x = self.ln_f(x)
            if self.lm_head is not None:
                return self.lm_head(x)
            with name_scope(f"{self.name}/lm_head", unique=False):   # tied to wte
                return ops.matmul(x, ops.transpose(self.wte.embeddings))


    # ------------------------------------------------------------ generation

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed=None) -> np.ndarray:
        """Extend each row of `idx` ((batch, T0) or (T0,) token ids) by
        `max_new_tokens` sampled tokens: (batch, T0 + max_new_tokens).

        Logits are divided by `temperature`, cut to the `top_k` most likely
        tokens and/or the smallest set whose probability reaches `top_p`, then
        sampled from a generator seeded with `seed` (graphnet's global one when
        None). `top_k=1` decodes greedily.
        """
        idx = self._check_prompt(idx, max_new_tokens, temperature, top_k, top_p)
        rng = gn_random.generator(seed)
        batch = idx.shape[0]
        tokens = np.empty((batch, idx.shape[1] + max_new_tokens), np.int64)
        tokens[:, :idx.shape[1]] = idx
        length = idx.shape[1]
        logits = self._step(idx, 0)
        for i in range(max_new_tokens):
            tokens[:, length] = _sample(logits, temperature, top_k, top_p, rng)
            length += 1
            if i == max_new_tokens - 1:
                break
            if length <= self.block_size:
                logits = self._step(tokens[:, length - 1:length], length - 1)
            else:   # the context is full: slide the window and start again at position 0
                logits = self._step(tokens[:, length - self.block_size:length], 0)
        return tokens

    def _step(self, tokens: np.ndarray, offset: int) -> np.ndarray:
        """Run tokens at positions offset.. through the cached graph; the last logits."""
        decoder = self._decoder(tokens.shape[0])
        out = self.session.run(decoder["fetches"], {decoder["tokens"]: tokens,
                                                    decoder["offset"]: np.int64(offset)})
        return out[0]

    def _decoder(self, batch: int) -> dict:
        """The cached step graph for `batch` rows: tokens and offset placeholders,
        key/value cache variables, and the fetches (last logits, cache updates)."""
        if batch in self._decoders:
            return self._decoders[batch]
        depth = self.n_embd // self.n_head
        shape = (batch, self.n_head, self.block_size, depth)
        with root_scope():
            tokens = placeholder((batch, None), "int64", name=f"{self.name}_decode_tokens")
            offset = placeholder((), "int64", name=f"{self.name}_decode_offset")
            caches = [tuple(variable(np.zeros(shape, self.dtype), trainable=False,
                                     name=f"{self.name}/cache/{i}/{kind}")
                            for kind in ("keys", "values")) for i in range(self.n_layer)]
        logits = self.call(tokens, caches=caches, offset=offset)
        last = ops.getitem(logits, (slice(None), -1))
        updates = [u for block in self.blocks for u in block.attn.cache_updates]
        decoder = {"tokens": tokens, "offset": offset, "caches": caches,
                   "fetches": [last, ops.group(*updates, name="update_cache")]}
        self._decoders[batch] = decoder
        return decoder

    def _check_prompt(self, idx, max_new_tokens, temperature, top_k, top_p) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.ndim == 1:
            idx = idx[None]
        if idx.ndim != 2 or idx.shape[1] == 0 or idx.dtype.kind not in "iu":
            raise ValueError(f"generate: idx must be (batch, T) integer token ids with T >= 1, "
                             f"got {idx.dtype} {idx.shape}")
        if idx.min() < 0 or idx.max() >= self.vocab_size:
            bad = idx[(idx < 0) | (idx >= self.vocab_size)][0]
            raise ValueError(f"generate: token id {bad} is outside the vocabulary "
                             f"(0 to {self.vocab_size - 1})")
        if idx.shape[1] > self.block_size:
            raise ValueError(f"generate: the prompt has {idx.shape[1]} tokens, more than the "
                             f"context of block_size={self.block_size}; keep its last "
                             f"{self.block_size} tokens")
        if int(max_new_tokens) != max_new_tokens or max_new_tokens < 0:
            raise ValueError(f"generate: max_new_tokens must be a whole number >= 0, got "
                             f"{max_new_tokens}")
        if not temperature > 0:
            raise ValueError(f"generate: temperature must be > 0, got {temperature}; use "
                             "top_k=1 for greedy decoding")
        if top_k is not None and not 1 <= top_k <= self.vocab_size:
            raise ValueError(f"generate: top_k must be between 1 and the vocabulary size "
                             f"{self.vocab_size}, got {top_k}")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"generate: top_p must be in (0, 1], got {top_p}")
        return idx.astype(np.int64)


def _sample(logits: np.ndarray, temperature, top_k, top_p, rng) -> np.ndarray:
    """One token per row of (batch, vocab) logits."""
    logits = logits.astype(np.float64) / temperature
    if top_k is not None:
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None:
        order = np.argsort(-probs, axis=-1)
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        keep_sorted = np.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=-1, keepdims=True)
    if top_k == 1:
        return probs.argmax(axis=-1)
    draws = rng.random((probs.shape[0], 1))
    return np.minimum((np.cumsum(probs, axis=-1) < draws).sum(axis=-1), probs.shape[1] - 1)
