"""Hypothesis builds random graphs; every pass must keep their values.

Graphs mix broadcasting arithmetic, bounded math, reductions, shape ops and
the patterns the simplifier rewrites (x * 1, x + 0, -(-x), log(exp(x)),
double transposes, reshape chains, casts, stop_gradient, ...) over a
placeholder with an unknown batch size, a static placeholder, a variable
and constants; some also take gradients and update the variable.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphnet as gn
from graphnet.compiler import PASS_NAMES

from .graphs import assert_same_results, only


def _reshape_round_trip(a):
    back = [-1 if d is None else d for d in a.shape]
    return gn.reshape(gn.reshape(a, (-1,)), back)


def _transpose_twice(a):
    return gn.transpose(gn.transpose(a)) if a.ndim else a


def _reduce(kind, a):
    if not a.ndim:
        return a
    return kind(a, axis=-1, keepdims=True)


# name -> (arity, builder); every result broadcasts against shape (2, 3).
OPS = {
    "add": (2, lambda a, b: a + b),
    "sub": (2, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b),
    "div": (2, lambda a, b: a / (gn.square(b) + 1.0)),
    "maximum": (2, gn.maximum),
    "where": (2, lambda a, b: gn.where(a > b, a, b)),
    "tanh": (1, gn.tanh),
    "sigmoid": (1, gn.sigmoid),
    "neg_neg": (1, lambda a: gn.neg(-a)),
    "times_one": (1, lambda a: a * 1.0),
    "plus_zero": (1, lambda a: 0.0 + a),
    "minus_neg": (2, lambda a, b: a - (-b)),
    "times_zero_float": (1, lambda a: a * 0.0),
    "times_zero_mask": (2, lambda a, b: gn.cast(a > b, "float32") * 0.0 + a),
    "log_exp": (1, lambda a: gn.log(gn.exp(gn.tanh(a)))),
    "exp_log": (1, lambda a: gn.exp(gn.log(gn.sigmoid(a)))),
    "power": (1, lambda a: gn.tanh(a) ** 2 + a ** 1),
    "transpose_twice": (1, _transpose_twice),
    "reshape_round_trip": (1, _reshape_round_trip),
    "squeeze_expand": (1, lambda a: gn.squeeze(gn.expand_dims(a, 0), 0)),
    "cast_round_trip": (1, lambda a: gn.cast(gn.cast(a, "float64"), "float32")),
    "stop_gradient": (1, gn.stop_gradient),
    "sum_last": (1, lambda a: _reduce(gn.sum, a)),
    "mean_last": (1, lambda a: _reduce(gn.mean, a)),
    "max_last": (1, lambda a: _reduce(gn.max, a)),
    "broadcast_scalar": (1, lambda a: a * gn.broadcast_to(gn.constant(2.0), (2, 3))),
}


@st.composite
def random_graphs(draw):
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = gn.placeholder((None, 3), "float32", name="x")
    p = gn.placeholder((3,), "float32", name="p")
    v = gn.variable(rng.normal(size=(2, 3)).astype(np.float32), name="v")
    pool = [x, p, v, gn.constant(rng.normal(size=(2, 1)).astype(np.float32), name="c"),
            gn.constant(1.0), gn.constant(0.0)]
    for _ in range(draw(st.integers(3, 14))):
        arity, build = OPS[draw(st.sampled_from(sorted(OPS)))]
        args = [draw(st.sampled_from(pool)) for _ in range(arity)]
        pool.append(build(*args))
    out = pool[-1]
    fetches = [out, draw(st.sampled_from(pool[6:]))]
    if draw(st.booleans()):
        grads = gn.gradients(gn.sum(out), [x, p, v])
        fetches += grads + [gn.assign_sub(v, 0.1 * grads[2])]
    feed = {x: rng.normal(size=(2, 3)).astype(np.float32),
            p: rng.normal(size=3).astype(np.float32)}
    return fetches, feed


@given(random_graphs())
def test_whole_pipeline_keeps_values(case):
    fetches, feed = case
    assert_same_results(fetches, feed, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", PASS_NAMES)
@given(case=random_graphs())
def test_each_pass_alone_keeps_values(name, case):
    fetches, feed = case
    assert_same_results(fetches, feed, rtol=1e-4, atol=1e-5, disable=only("specialize", name))


@given(random_graphs())
def test_generic_plan_keeps_values(case):
    fetches, feed = case
    assert_same_results(fetches, feed, rtol=1e-4, atol=1e-5, feed_shapes=None)
