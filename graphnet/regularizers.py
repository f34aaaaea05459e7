"""Weight penalties: `gn.regularizers.L2(1e-4)(W)` is a scalar node to add to the loss.

As in Keras, L1 is l1 * sum(|w|) and L2 is l2 * sum(w**2) (no factor 1/2).
Layers will attach them to their kernels and biases and collect the
penalties; until then `add_penalties(loss, penalties)` adds any list of them.
"""

from __future__ import annotations

import difflib

from graphnet.graph import Node, as_node, name_scope
from graphnet.ops import abs, add, cast, square, sum
from graphnet.serialization import Configurable


class Regularizer(Configurable):
    """Base class: `regularizer(weight) -> scalar penalty node`."""

    config_kind = "regularizers"

    def __call__(self, weight) -> Node:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(weight)")

    def get_config(self) -> dict:
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2)."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        if l1 < 0 or l2 < 0:
            raise ValueError(f"regularization factors must be >= 0; got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight) -> Node:
        weight = as_node(weight)
        with name_scope(_scope_name(self)):
            penalty = None
            if self.l1:
                penalty = sum(abs(weight)) * self.l1
            if self.l2:
                term = sum(square(weight)) * self.l2
                penalty = term if penalty is None else add(penalty, term)
            return penalty if penalty is not None else sum(weight) * 0.0

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|w|)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w**2)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


def _scope_name(regularizer) -> str:
    return type(regularizer).__name__.lower() + "_penalty"


def apply_regularization(regularizer, weights) -> Node:
    """The sum of `regularizer(w)` over `weights`."""
    return add_penalties(None, [regularizer(w) for w in weights])


def add_penalties(loss, penalties) -> Node:
    """loss + the sum of `penalties` (each cast to the loss's dtype); loss may be None."""
    total = None if loss is None else as_node(loss)
    for penalty in penalties:
        penalty = as_node(penalty)
        if total is not None:
            penalty = cast(penalty, total.dtype)
        total = penalty if total is None else add(total, penalty)
    if total is None:
        raise ValueError("add_penalties: no loss and no penalties to add")
    return total


REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2}


def get(identifier, **kwargs):
    """A regularizer from "l1", "l2" or "l1_l2" (with `kwargs`); None and
    instances pass through."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in REGULARIZERS:
        return REGULARIZERS[identifier.lower()](**kwargs)
    if callable(identifier) and not isinstance(identifier, type):
        return identifier
    hint = difflib.get_close_matches(str(identifier).lower(), REGULARIZERS, n=1)
    maybe = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ValueError(f"unknown regularizer {identifier!r}{maybe}; valid names are: "
                     f"{', '.join(sorted(REGULARIZERS))}")


__all__ = ["L1", "L1L2", "L2", "REGULARIZERS", "Regularizer", "add_penalties",
           "apply_regularization", "get"]
