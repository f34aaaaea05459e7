"""Reverse-mode differentiation that emits the backward pass as graph nodes."""

from __future__ import annotations

from graphnet.errors import GradientError
from graphnet.graph import SOURCE_OPS, Graph, Node, name_scope
from graphnet.ops.elementwise import add
from graphnet.ops.shape import cast, ones_like, sum_to, zeros_like


def gradients(ys, xs, grad_ys=None, unconnected: str = "zero"):
    """d(sum of ys)/d(xs) as new nodes: `dW, db = gn.gradients(loss, [W, b])`.

    `grad_ys` weights each y (default: ones). An x that ys do not depend on
    gets zeros of its shape, or None with `unconnected="none"`. A single x
    gives a single node; a list gives a list.
    """
    if unconnected not in ("zero", "none"):
        raise ValueError(f"unconnected must be 'zero' or 'none', not {unconnected!r}")
    single = isinstance(xs, Node)
    xs = [xs] if single else list(xs)
    ys = [ys] if isinstance(ys, Node) else list(ys)
    grad_ys = [None] * len(ys) if grad_ys is None else (
        [grad_ys] if isinstance(grad_ys, Node) else list(grad_ys))
    for node in ys + xs:
        if not isinstance(node, Node):
            raise TypeError(f"gradients() takes graph nodes, got {type(node).__name__}")
        if node.dtype is None or node.dtype.kind != "f":
            raise GradientError(
                f"'{node.name}' is {getattr(node.dtype, 'name', 'valueless')}: only floating-point "
                "values have gradients")

    order = Graph(ys).nodes
    flows = _float_descendants(order, set(xs))
    with name_scope("gradients"):
        return _backward(order, flows, ys, xs, grad_ys, unconnected, single)


def _backward(order, flows, ys, xs, grad_ys, unconnected, single):
    """Walk `order` in reverse, asking each op for its inputs' gradients."""
    grads: dict = {}
    for y, gy in zip(ys, grad_ys):
        if y in flows:
            _accumulate(grads, y, ones_like(y) if gy is None else gy)
    for node in reversed(order):
        g = grads.get(node)
        if g is None or isinstance(node.op, SOURCE_OPS):
            continue
        for inp, gi in zip(node.inputs, node.op.grad(node, g)):
            if gi is not None and inp in flows:
                _accumulate(grads, inp, _fit(gi, inp))

    results = []
    for x in xs:
        g = grads.get(x)
        if g is None:
            _check_integer_path(order, x, ys)
            g = zeros_like(x) if unconnected == "zero" else None
        results.append(g)
    return results[0] if single else results


def _float_descendants(order: list, xs: set) -> set:
    """The xs and every float node that depends on one through float nodes."""
    flows = set()
    for node in order:
        if node in xs or (node.dtype is not None and node.dtype.kind == "f"
                          and any(i in flows for i in node.inputs)):
            flows.add(node)
    return flows


def _fit(g: Node, like: Node) -> Node:
    """g summed over broadcast axes and cast to like's dtype."""
    g = sum_to(g, like)
    return g if g.dtype == like.dtype else cast(g, like.dtype)


def _accumulate(grads: dict, node: Node, g: Node):
    grads[node] = g if node not in grads else add(grads[node], g)


def _check_integer_path(order: list, x: Node, ys: list):
    """Raise when ys depend on x, but not once integer-valued nodes are removed."""
    reach, non_integer = {x}, {x}
    for node in order:
        if any(i in reach for i in node.inputs):
            reach.add(node)
            if any(i in non_integer for i in node.inputs) and not _is_integer(node):
                non_integer.add(node)
    if not any(y in reach for y in ys) or any(y in non_integer for y in ys):
        return
    blocker = next(n for n in order if n in reach and _is_integer(n))
    raise GradientError(
        f"'{ys[0].name}' depends on '{x.name}' only through integer-valued "
        f"'{blocker.name}' ({blocker.op.kind}, {blocker.dtype.name}, created at "
        f"{blocker.origin}), which has no gradient")


def _is_integer(node: Node) -> bool:
    return node.dtype is not None and node.dtype.kind in "iu"
