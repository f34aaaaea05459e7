"""plan.explain(history=True): every rewrite, and every fusion refused with its reason."""

import inspect
import os

import numpy as np

import graphnet as gn

FILE = os.path.basename(__file__)


def _line(offset=0) -> int:
    return inspect.currentframe().f_back.f_lineno + offset


def test_rewrites_are_listed_in_order_with_rules_and_lines():
    x = gn.placeholder((None, 4), "float32", name="x")
    w = gn.variable(np.ones((4, 3), np.float32), name="w")
    line = _line(1)
    h = (x @ w) * 1.0 + 0.0
    plan = gn.compile(gn.sum(h), backend="numpy")
    text = plan.explain(history=True)
    history = text.split("history:\n", 1)[1].splitlines()
    assert f"  simplify rewrite: times_one: mul 'mul' ({FILE}:{line}) -> matmul 'matmul' " \
           f"({FILE}:{line})" in history
    assert f"  simplify rewrite: plus_zero: add 'add' ({FILE}:{line})" in history[1]
    records = [r for r in plan.applied if r.history]
    assert [r.name for r in records] == ["simplify"]
    assert "history:" not in plan.explain()


def test_refused_fusions_carry_a_reason_in_user_terms():
    x = gn.placeholder((8, 4), "float32", name="x")
    line = _line(1)
    h = gn.relu(x * 2.0)
    loss = gn.mean(gn.square(h)) + gn.sum(h * 3.0)
    plan = gn.compile(loss, backend="numpy")
    refused = [str(e) for r in plan.applied for e in r.history if type(e).__name__ == "Refusal"]
    assert any(f"mul 'mul_1' ({FILE}:{line + 1}) not fused with relu 'relu' ({FILE}:{line}): "
               f"'mean' ({FILE}:{line + 1}) also reads that kernel and runs first" in r
               for r in refused), refused
    assert any("mean is not an elementwise op" in r for r in refused)
    fused = [str(e) for r in plan.applied for e in r.history if str(e).startswith("fused: ")]
    assert fused and f"relu 'relu' ({FILE}:{line})" in fused[0]


def test_a_random_op_is_refused_as_random():
    x = gn.placeholder((8, 4), "float32", name="x")
    h = gn.nn.dropout(gn.tanh(x) * 2.0, 0.5, training=True)
    plan = gn.compile(gn.sum(h), backend="numpy")
    assert "dropout_mask is random" in plan.explain(history=True)
