"""The Embedding layer: integer ids to learned vectors."""

from __future__ import annotations

from graphnet import nn
from graphnet.errors import ShapeError
from graphnet.layers.base import Layer


class Embedding(Layer):
    """Row `id` of an (input_dim, output_dim) table for each integer id."""

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform",
                 embeddings_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = embeddings_regularizer

    def check_input(self, x):
        if x.dtype.kind not in "iu":
            raise ShapeError(f"Embedding '{self.name}' takes integer ids, got {x.dtype.name}; "
                             "give the Input an integer dtype")

    def build(self, input_shape):
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim),
                                          self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer)

    def call(self, x, training=False):
        return nn.embedding_lookup(self.embeddings, x)
