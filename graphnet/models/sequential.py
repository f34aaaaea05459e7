"""Sequential: a stack of layers, each feeding the next."""

from __future__ import annotations

import numpy as np

from graphnet.graph import Node
from graphnet.layers.base import Layer
from graphnet.models.model import Input, Model


class Sequential(Model):
    """A stack of layers, each feeding the next:

        model = gn.Sequential([gn.layers.Flatten(input_shape=(28, 28)),
                               gn.layers.Dense(10, activation="softmax")])

    The model is built (its input placeholder made and every layer called on
    it, in inference mode) as soon as the input shape is known: from the
    first layer's `input_shape` (or a first layer that is a built model), from
    `build(input_shape)`, or from the first batch given to fit or predict.
    """

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._layers: list = []
        for layer in layers or []:
            self.add(layer)

    def add(self, layer: Layer):
        """Append a layer; the first one's `input_shape` builds the model at once."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes layers, got {type(layer).__name__}")
        if layer is self or (isinstance(layer, Model) and self in _nested_models(layer)):
            raise ValueError(f"Sequential '{self.name}' cannot contain itself")
        self._layers.append(layer)
        self._graphs = None
        if self.inputs is None and len(self._layers) == 1:
            shape = _declared_input_shape(layer)
            if shape is not None:
                dtype = layer.inputs.dtype if isinstance(layer, Model) else "float32"
                self.inputs = self.outputs = Input(shape, dtype, name="input")
        if self.inputs is not None:
            self.outputs = layer(self.outputs)
            layer.output_shape = self.outputs.shape

    def build(self, input_shape, dtype="float32"):
        """Make the input placeholder for batches of `input_shape` (batch axis
        first, may be None) and call every layer on it."""
        if self.inputs is not None:
            return
        self.inputs = Input(tuple(input_shape)[1:], dtype, name="input")
        self.outputs = self.inputs
        for layer in self._layers:
            self.outputs = layer(self.outputs)
            layer.output_shape = self.outputs.shape

    @property
    def layers(self) -> list:
        return list(self._layers)

    def call(self, x: Node, training: bool = False) -> Node:
        for layer in self._layers:
            x = layer(x, training=training)
            layer.output_shape = x.shape
        return x

    def _input_placeholder(self, x: np.ndarray) -> Node:
        if self.inputs is None:
            self.build((None,) + x.shape[1:])
        return self.inputs

    def get_config(self) -> dict:
        from graphnet.models import saving
        return saving.sequential_config(self)

    @classmethod
    def from_config(cls, config: dict):
        from graphnet.models import saving
        return saving.sequential_from_config(cls, config)


def _declared_input_shape(layer: Layer):
    if isinstance(layer, Model):
        return None if layer.inputs is None else layer.inputs.shape[1:]
    return layer.input_shape


def _nested_models(model: Model) -> list:
    found = []
    for layer in model.layers:
        if isinstance(layer, Model):
            found += [layer] + _nested_models(layer)
    return found
