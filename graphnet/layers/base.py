"""The Layer base class: config in __init__, weights in build, graph in call."""

from __future__ import annotations

import inspect
import weakref

import numpy as np

from graphnet import init
from graphnet.errors import ShapeError
from graphnet.graph import Node, name_scope, reserve_name, snake_case, unique_name, variable
from graphnet.serialization import Configurable
from graphnet.shapes import format_shape

#: Which layer call produced each symbolic output, for functional models.
call_history: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class Layer(Configurable):
    """A reusable piece of a model that builds graph nodes.

    Subclasses take their configuration in `__init__`, create weights with
    `add_weight` in `build(input_shape)`, and build nodes in
    `call(x, training)`. Calling a layer builds it once, checks the input
    (`expected_rank`), and puts its nodes under its name scope.
    """

    config_kind = "layers"

    #: Required input rank (None: any); `rank_hint` is added to the error.
    expected_rank: int | None = None
    rank_hint: str = ""
    #: True for layers that behave differently in training (dropout, batch norm).
    uses_training = False

    def __init__(self, name: str | None = None, input_shape=None, trainable: bool = True,
                 dtype="float32"):
        self.name = layer_name(name, type(self).__name__)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.trainable = trainable
        self.dtype = np.dtype(dtype)
        self.built = False
        self.weights: list = []
        self.losses: list = []  # regularization penalties, added to the model's loss
        self._first_call = None  # (input node, output node) of the first call

    # ------------------------------------------------------------ config

    def get_config(self) -> dict:
        """The constructor's arguments (see gn.serialization), with the layer's
        actual name, trainable flag and dtype."""
        config = super().get_config()
        config.update(name=self.name, trainable=self.trainable, dtype=self.dtype.name)
        return config

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild from `get_config()`; name, trainable and dtype are set after
        construction when the subclass's `__init__` does not take them."""
        config = dict(config)
        parameters = inspect.signature(cls.__init__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            return cls(**config)
        base = {k: config.pop(k) for k in ("name", "trainable", "dtype")
                if k in config and k not in parameters}
        layer = cls(**config)
        if "name" in base:
            layer.name = layer_name(base["name"], cls.__name__)
        if "trainable" in base:
            layer.trainable = base["trainable"]
        if "dtype" in base:
            layer.dtype = np.dtype(base["dtype"])
        return layer

    # --------------------------------------------------------- trainable

    @property
    def trainable(self) -> bool:
        """False freezes the layer's weights: compile() again and the optimizer
        skips them (no update, no slots, no gradient computed for them only)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool):
        self._trainable = bool(value)

    def add_weight(self, name: str, shape, initializer="glorot_uniform", trainable=True,
                   regularizer=None, dtype=None) -> Node:
        """A variable `layer_name/name`, initialised by name or callable."""
        value = init.get(initializer)(tuple(shape), dtype=dtype or self.dtype)
        with name_scope(self.name, unique=False):
            weight = variable(value, name=name, trainable=trainable)
            if regularizer is not None:
                self.losses.append(regularizer(weight))
        self.weights.append(weight)
        return weight

    def build(self, input_shape: tuple):
        """Create weights for inputs of `input_shape` (batch axis included)."""

    def call(self, x: Node, training: bool = False) -> Node:
        raise NotImplementedError

    def __call__(self, x, training: bool = False) -> Node:
        return self.call_with_inputs([x], replay=x, training=training)

    def call_with_inputs(self, inputs: list, replay: Node | None = None, **options):
        """Check `inputs` (nodes, or None after the first), build once on their
        shapes, and run `call(*inputs, **options)` under the layer's name scope.

        Layers with several inputs or call options (attention, masked RNNs)
        define their own `__call__` on top of this. `replay` is recorded as
        the call's source for functional models, which rebuild the call as
        `layer(replay, training=...)`; pass None when that would not give the
        same graph (a mask or a second input would be lost).
        """
        for i, x in enumerate(inputs):
            if not isinstance(x, Node) and (i == 0 or x is not None):
                raise TypeError(f"{type(self).__name__} '{self.name}' is called on graph nodes "
                                f"(e.g. gn.Input(...)), got {type(x).__name__}")
        self.check_input(*inputs)
        if not self.built:
            self.build(*(None if x is None else x.shape for x in inputs))
            self.built = True
        with name_scope(self.name, unique=False):
            out = self.call(*inputs, **options)
        if isinstance(out, Node) and getattr(self, "output_shape", None) is None:
            self.output_shape = out.shape       # what summary() shows
        if replay is not None and isinstance(out, Node):
            call_history[out] = (self, replay)
            if self._first_call is None:
                self._first_call = (replay, out)
        return out

    @property
    def input(self) -> Node:
        """The input node of the layer's first call (in a model: its place in the graph)."""
        return self._call_node(0, "input")

    @property
    def output(self) -> Node:
        """The output node of the layer's first call: `gn.Model(m.inputs, layer.output)`."""
        return self._call_node(1, "output")

    def _call_node(self, index: int, what: str) -> Node:
        if self._first_call is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' has not been called on a "
                             f"graph node yet, so it has no {what}; build the model first "
                             "(give the first layer input_shape, or use gn.Input)")
        return self._first_call[index]

    def check_input(self, x: Node):
        """Raise a ShapeError naming the layer when x has the wrong rank."""
        if self.expected_rank is not None and x.ndim != self.expected_rank:
            raise ShapeError(
                f"{type(self).__name__} '{self.name}' expects {self.expected_rank}-D input, "
                f"got {format_shape(x.shape)}{self.rank_hint}")

    @property
    def trainable_weights(self) -> list:
        """Weights the optimizer updates: none while the layer is frozen."""
        return [w for w in self.weights if w.op.trainable] if self.trainable else []

    @property
    def non_trainable_weights(self) -> list:
        trainable = set(self.trainable_weights)
        return [w for w in self.weights if w not in trainable]

    def count_params(self) -> int:
        return int(sum(np.prod(w.shape, dtype=np.int64) for w in self.weights))

    def __repr__(self):
        return f"<{type(self).__name__} '{self.name}'>"


def layer_name(name: str | None, class_name: str) -> str:
    """A name given by the user is kept as it is (so a loaded model keeps its
    layer names); otherwise the snake-cased class name, made unique: dense, dense_1."""
    if name:
        reserve_name(name)
        return name
    return unique_name(snake_case(class_name), scoped=False)
