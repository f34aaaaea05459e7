"""Optimizers and learning-rate schedules that emit update nodes.

    train = gn.optim.Adam(1e-3).minimize(loss)   # one node: slot, parameter
    sess.run(train, {x: xb, y: yb})              # and step-counter updates

`gn.optim.get("adam")` builds an optimizer from its name; schedules live in
`gn.optim.schedules` and are passed as `learning_rate`.
"""

from __future__ import annotations

import difflib

from graphnet.optim import schedules
from graphnet.optim.multi import MultiOptimizer
from graphnet.optim.optimizer import (
    Optimizer,
    clip_by_global_norm,
    clip_by_norm,
    global_norm,
    trainable_variables,
)
from graphnet.optim.optimizers import SGD, Adagrad, Adam, AdamW, Momentum, Nesterov, RMSprop
from graphnet.optim.schedules import LearningRateSchedule, ReduceLROnPlateau

OPTIMIZERS = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "rmsprop": RMSprop,
    "adagrad": Adagrad, "adam": Adam, "adamw": AdamW,
}


def get(identifier, **kwargs) -> Optimizer:
    """An optimizer from its name (`"adam"`, any case) with `kwargs`; instances pass through."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in OPTIMIZERS:
        return OPTIMIZERS[identifier.lower()](**kwargs)
    valid = ", ".join(sorted(OPTIMIZERS))
    hint = difflib.get_close_matches(str(identifier).lower(), OPTIMIZERS, n=1)
    maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ValueError(f"unknown optimizer {identifier!r}{maybe}; valid names are: {valid}")


__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "LearningRateSchedule",
    "Momentum",
    "MultiOptimizer",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "clip_by_global_norm",
    "clip_by_norm",
    "get",
    "global_norm",
    "schedules",
    "trainable_variables",
]
