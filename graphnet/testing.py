"""Helpers for testing ops, graphs and models: numerical gradients checked
against `gn.gradients` (in the spirit of PyTensor's `verify_grad`).

    >>> import numpy as np, graphnet as gn
    >>> from graphnet.testing import check_gradients, check_layer
    >>> _ = check_gradients(lambda x, y: gn.tanh(x) * y, [np.ones((3, 1)), np.ones(4)])
    >>> _ = check_layer(lambda dtype: gn.layers.Dense(2, dtype=dtype), np.ones((3, 4)))
"""

from __future__ import annotations

import os

import numpy as np

from graphnet.autodiff import gradients
from graphnet.compiler import compile
from graphnet.graph import Node, constant, placeholder
from graphnet.session import Session
from graphnet.shapes import format_shape


def max_examples(default: int) -> int:
    """Hypothesis examples per property test: `default`, or the number in the
    HYPOTHESIS_MAX_EXAMPLES environment variable for a thorough run
    (`HYPOTHESIS_MAX_EXAMPLES=2000 python -m pytest`)."""
    return int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", default))


def numeric_gradient(f, x, eps: float = 1e-6) -> np.ndarray:
    """d f(x) / dx of a scalar function `f` by float64 central differences."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = f(x.copy())
        x[index] = original - eps
        minus = f(x.copy())
        x[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(build, inputs, wrt=None, eps: float = 1e-6, rtol: float = 1e-5,
                    atol: float = 1e-7, dynamic: bool = False, seed: int = 0,
                    name: str | None = None) -> list:
    """Check `gn.gradients` of `build(*nodes)` against central differences.

    Each array in `inputs` becomes a placeholder of its shape and dtype (every
    size None when `dynamic`); `build` returns a float node or a list of them,
    whose elements are weighted by fixed random numbers so none can hide.
    `wrt` holds the indices of the inputs to check (default: every float64
    one). Raises AssertionError naming the op, the input and the errors;
    returns the symbolic gradients.
    """
    arrays = [np.asarray(a) for a in inputs]
    nodes = [placeholder((None,) * a.ndim if dynamic else a.shape, a.dtype, name=f"input{i}")
             for i, a in enumerate(arrays)]
    built = build(*nodes)
    outs = list(built) if isinstance(built, (list, tuple)) else [built]
    label = name or ", ".join(f"{o.op.kind} '{o.name}'" for o in outs)
    wrt = [i for i, a in enumerate(arrays) if a.dtype == np.float64] if wrt is None else list(wrt)
    for i in wrt:
        if arrays[i].dtype != np.float64:
            raise TypeError(f"{label}: input {i} is {arrays[i].dtype.name}; check float64 inputs")
    for out in outs:
        if not isinstance(out, Node) or out.dtype is None or out.dtype.kind != "f":
            raise TypeError(f"{label}: build must return float nodes, got {out!r}")

    session = Session()
    feed = dict(zip(nodes, arrays, strict=True))
    forward = compile(outs)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(np.shape(v)) for v in session.run(forward, feed)]
    grad_ys = [constant(w, dtype=o.dtype) for w, o in zip(weights, outs, strict=True)]
    symbolic = session.run(gradients(outs, [nodes[i] for i in wrt], grad_ys=grad_ys), feed)

    def objective(i, x):
        values = session.run(forward, {**feed, nodes[i]: x})
        return sum(float(np.sum(np.asarray(v, np.float64) * w))
                   for v, w in zip(values, weights, strict=True))

    for i, got in zip(wrt, symbolic, strict=True):
        where = f"gradient check of {label}, input {i} {arrays[i].shape}"
        got = np.asarray(got)
        if got.shape != arrays[i].shape or got.dtype != arrays[i].dtype:
            raise AssertionError(f"{where}: gradient is {got.dtype.name}{got.shape}, expected "
                                 f"{arrays[i].dtype.name}{arrays[i].shape}")
        expected = numeric_gradient(lambda x, i=i: objective(i, x), arrays[i], eps)
        _compare(where, got, expected, rtol, atol)
    return [np.asarray(g) for g in symbolic]


def check_layer(layer_factory, inputs, training: bool = False, call_kwargs=None,
                weights=None, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-7,
                seed: int = 0) -> tuple:
    """Check a layer as `run_layer_test` does in Keras, in float64.

    `layer_factory(dtype="float64")` makes the layer (a class works via
    functools.partial); it is called as `layer(*placeholders, training=...,
    **call_kwargs)` on placeholders for `inputs` (one array or a list) whose
    batch axis is None; array values in `call_kwargs` (masks) are fed
    through placeholders too. Checks that each output's static shape agrees with
    the value computed, and that `gn.gradients` of the outputs (weighted by
    fixed random numbers) match central differences with respect to every
    float input and every trainable weight. `weights` maps weight names, or
    their last parts (`"moving_variance"`), to values set first. Random
    layers (dropout) need training=False or a zero rate: each run would draw
    a new mask. Returns (layer, output values).
    """
    arrays = [np.asarray(a) for a in (inputs if isinstance(inputs, (list, tuple)) else [inputs])]
    nodes = [placeholder((None,) + a.shape[1:], a.dtype, name=f"input{i}")
             for i, a in enumerate(arrays)]
    feed = dict(zip(nodes, arrays, strict=True))
    options = dict(call_kwargs or {})
    for key, value in options.items():
        if isinstance(value, np.ndarray):
            options[key] = placeholder((None,) + value.shape[1:], value.dtype, name=key)
            feed[options[key]] = value
    layer = layer_factory(dtype="float64")
    built = layer(*nodes, training=training, **options)
    outs = list(built) if isinstance(built, (list, tuple)) else [built]
    label = f"{type(layer).__name__} '{layer.name}'"
    if any(w.dtype != np.float64 for w in layer.weights):
        raise TypeError(f"{label}: weights must be float64; pass dtype to every sublayer")

    session = Session()
    for key, value in (weights or {}).items():
        session.set(_weight_named(layer, key), value)
    values = session.run(outs, feed)
    for out, value in zip(outs, values, strict=True):
        if len(out.shape) != value.ndim or any(
                s is not None and s != v for s, v in zip(out.shape, value.shape, strict=True)):
            raise AssertionError(f"{label}: shape rule gives {format_shape(out.shape)} for "
                                 f"'{out.name}', the run gives {format_shape(value.shape)}")

    wrt = [n for n in feed if n.dtype == np.float64] + layer.trainable_weights
    rng = np.random.default_rng(seed)
    out_weights = [rng.standard_normal(np.shape(v)) for v in values]
    grad_ys = [constant(w, dtype=o.dtype) for w, o in zip(out_weights, outs, strict=True)]
    symbolic = session.run(gradients(outs, wrt, grad_ys=grad_ys), feed)

    def objective(run_feed):
        return sum(float(np.sum(v * w)) for v, w in
                   zip(session.run(outs, run_feed), out_weights, strict=True))

    def objective_at(var, value):
        session.set(var, value)
        return objective(feed)

    for node, got in zip(wrt, symbolic, strict=True):
        if node in feed:
            expected = numeric_gradient(lambda v, n=node: objective({**feed, n: v}), feed[node],
                                        eps)
        else:
            original = session.get(node)
            expected = numeric_gradient(lambda v, n=node: objective_at(n, v), original, eps)
            session.set(node, original)
        _compare(f"gradient check of {label} w.r.t. '{node.name}' {format_shape(node.shape)}",
                 np.asarray(got), expected, rtol, atol)
    return layer, values


def _weight_named(layer, key: str):
    """The layer's weight called `key` or ending in `/key`."""
    found = [w for w in layer.weights if w.name == key or w.name.endswith("/" + key)]
    if len(found) != 1:
        raise KeyError(f"{type(layer).__name__} '{layer.name}' has {len(found)} weights named "
                       f"{key!r}; weights: {[w.name for w in layer.weights]}")
    return found[0]


def _compare(where: str, got: np.ndarray, expected: np.ndarray, rtol: float, atol: float):
    """Raise an AssertionError with the largest errors unless got ~ expected."""
    error = np.abs(got - expected)
    bad = ~np.isfinite(got) | (error > atol + rtol * np.abs(expected))
    if not bad.any():
        return
    relative = error / np.maximum(np.maximum(np.abs(got), np.abs(expected)), 1e-12)
    worst = np.unravel_index(np.argmax(np.where(bad, error, -1)), got.shape)
    raise AssertionError(
        f"{where}: symbolic and numeric gradients differ at {int(bad.sum())} of {got.size} "
        f"entries; max abs error {np.nanmax(error):.3g}, max rel error "
        f"{np.nanmax(relative):.3g} (rtol={rtol}, atol={atol}); worst at index "
        f"{tuple(int(i) for i in worst)}: symbolic {float(got[worst]):.6g}, "
        f"numeric {float(expected[worst]):.6g}")
