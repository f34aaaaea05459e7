"""graphnet: a deep-learning framework you can read, on NumPy.

Build a static graph of placeholders, variables and ops; `gn.gradients`
adds the backward pass as more nodes; a Session compiles and runs it.
"""

from graphnet import (
    activations,
    callbacks,
    data,
    datasets,
    distributed,
    init,
    io,
    layers,
    losses,
    metrics,
    models,
    nn,
    optim,
    random,
    regularizers,
    serialization,
    text,
    viz,
)
from graphnet.autodiff import gradients
from graphnet.compiler import compile
from graphnet.compiler.plan import Plan
from graphnet.errors import FeedError, GradientError, GraphError, GraphnetError, ShapeError
from graphnet.graph import Graph, Node, Op, constant, name_scope, placeholder, reset_names, variable
from graphnet.models import Input, Model, Sequential, load_model
from graphnet.ops import *  # noqa: F403 - the math namespace is the top level
from graphnet.ops import __all__ as _ops_all
from graphnet.serialization import register_layer
from graphnet.session import Session

__version__ = "0.1.0"

__all__ = [
    "FeedError", "GradientError", "Graph", "GraphError", "GraphnetError", "Input", "Model",
    "Node", "Op", "Plan", "Sequential", "Session", "ShapeError", "activations", "callbacks",
    "compile", "constant", "data", "datasets", "gradients", "init", "io", "layers", "load_model",
    "losses", "metrics", "models", "name_scope", "nn", "optim", "placeholder", "random",
    "register_layer", "regularizers", "reset_names", "serialization", "text", "variable", "viz",
    "distributed",
    *_ops_all,
]
