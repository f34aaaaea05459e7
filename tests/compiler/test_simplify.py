"""Each algebraic rule fires on the pattern it names, and not where it would
change values, shapes or dtypes; the simplified plan agrees with the
unoptimized one on the fired cases."""

from collections import Counter

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.passes.simplify import RULES, simplify
from graphnet.compiler.rewrite import apply_rules, recording
from graphnet.graph import apply
from graphnet.ops.shape import Cast

from .graphs import assert_same_results


def _inputs():
    """Placeholders of several shapes and dtypes (d is float64, k int32)."""
    return dict(
        x=gn.placeholder((None, 3), "float32", name="x"),
        s=gn.placeholder((2, 3), "float32", name="s"),
        k=gn.placeholder((None, 3), "int32", name="k"),
        t=gn.placeholder((2, 3, 4), "float32", name="t"),
        col=gn.placeholder((None, 1), "float32", name="col"),
        d=gn.placeholder((None, 3), "float64", name="d"),
    )


def _feed(nodes):
    rng = np.random.default_rng(0)
    shapes = {"x": (2, 3), "s": (2, 3), "k": (2, 3), "t": (2, 3, 4), "col": (2, 1), "d": (2, 3)}
    return {node: (rng.random(shapes[key]) + 0.5).astype(node.dtype)
            for key, node in nodes.items()}


FIRES = [
    ("times_one", lambda n: n["x"] * 1.0),
    ("times_one", lambda n: 1.0 * n["x"]),
    ("times_one", lambda n: n["x"] * gn.constant(np.ones(3, np.float32))),
    ("times_zero", lambda n: n["k"] * 0),
    ("times_zero", lambda n: gn.cast(n["x"] > 1.0, "float32") * 0.0),
    ("over_one", lambda n: n["x"] / 1.0),
    ("plus_zero", lambda n: n["x"] + 0.0),
    ("plus_zero", lambda n: 0.0 + n["x"]),
    ("minus_zero", lambda n: n["x"] - 0.0),
    ("zero_minus", lambda n: 0.0 - n["x"]),
    ("plus_neg", lambda n: n["x"] + (-n["s"])),
    ("plus_neg", lambda n: (-n["x"]) + n["s"]),
    ("minus_neg", lambda n: n["x"] - (-n["s"])),
    ("neg_neg", lambda n: gn.neg(-n["x"])),
    ("power_one", lambda n: n["x"] ** 1),
    ("power_two", lambda n: n["x"] ** 2),
    ("log_exp", lambda n: gn.log(gn.exp(n["x"]))),
    ("exp_log", lambda n: gn.exp(gn.log(gn.sigmoid(n["x"])))),
    ("exp_log", lambda n: gn.exp(gn.log(gn.square(n["x"]) * 2.0 + 1.0))),
    ("exp_log", lambda n: gn.exp(gn.log(gn.constant([1.0, 2.0, 0.5])))),
    ("transpose_identity", lambda n: gn.transpose(n["x"], (0, 1))),
    ("transpose_transpose", lambda n: gn.transpose(gn.transpose(n["x"]))),
    ("transpose_transpose", lambda n: gn.transpose(gn.transpose(n["t"], (1, 2, 0)), (0, 2, 1))),
    ("reshape_noop", lambda n: gn.reshape(n["s"], (2, 3))),
    ("reshape_noop", lambda n: gn.reshape(n["x"], (-1, 3))),
    ("reshape_reshape", lambda n: gn.reshape(gn.reshape(n["x"], (-1,)), (-1, 3))),
    ("reshape_reshape", lambda n: gn.squeeze(gn.expand_dims(n["x"], 1), 1)),
    ("reduce_size_one", lambda n: gn.sum(n["col"], axis=1)),
    ("reduce_size_one", lambda n: gn.mean(n["col"], axis=1, keepdims=True)),
    ("reduce_size_one", lambda n: gn.max(n["col"], axis=-1)),
    ("broadcast_noop", lambda n: gn.broadcast_to(n["s"], (2, 3))),
    ("broadcast_broadcast",
     lambda n: gn.broadcast_to(gn.broadcast_to(n["col"] * 0 + 1.0, (2, 1)), (2, 3))),
    ("drop_broadcast", lambda n: n["s"] + gn.broadcast_to(gn.constant(2.0), (2, 3))),
    ("drop_broadcast", lambda n: gn.maximum(gn.broadcast_to(n["col"][:2], (2, 3)), n["s"])),
    ("broadcast_later", lambda n: gn.broadcast_to(n["s"][:, :1], (2, 3)) / 4.0 * n["s"]),
    ("broadcast_later", lambda n: gn.broadcast_to(gn.constant(2.0), (2, 3)) * n["s"][0]),
    ("cast_identity", lambda n: apply(Cast(np.dtype("float32")), n["x"])),
    ("cast_round_trip", lambda n: gn.cast(gn.cast(n["x"], "float64"), "float32")),
    ("cast_round_trip", lambda n: gn.cast(gn.cast(n["k"], "int64"), "int32")),
    ("stop_gradient_forward", lambda n: gn.stop_gradient(n["x"]) * 3.0),
    ("where_same", lambda n: gn.where(n["x"] > 1.0, n["s"], n["s"])),
]

DOES_NOT_FIRE = [
    # a 1 that broadcasts x to a larger shape: x alone has the wrong shape
    ("times_one", lambda n: n["x"][0] * gn.constant(np.ones((2, 3), np.float32))),
    # an int times a float 1 is a float: x alone has the wrong dtype
    ("times_one", lambda n: n["k"] * 1.0),
    ("times_one", lambda n: n["x"] * gn.constant([1.0, 2.0, 1.0])),
    # a float x may be inf or NaN, and inf * 0 is NaN
    ("times_zero", lambda n: n["x"] * 0.0),
    # log of a possibly negative x is NaN, which exp does not undo
    ("exp_log", lambda n: gn.exp(gn.log(n["x"]))),
    ("exp_log", lambda n: gn.exp(gn.log(n["x"] - 1.0))),
    ("exp_log", lambda n: gn.exp(gn.log(gn.constant([1.0, -2.0])))),
    # float64 -> float32 -> float64 rounds, and so does int64 -> float64 -> int64
    ("cast_round_trip", lambda n: gn.cast(gn.cast(n["d"], "float32"), "float64")),
    ("cast_round_trip", lambda n: gn.cast(gn.cast(n["x"], "float16"), "float32")),
    ("cast_round_trip", lambda n: gn.cast(gn.cast(gn.cast(n["k"], "int64"), "float64"), "int64")),
    # the size along axis 0 is not known to be 1
    ("reduce_size_one", lambda n: gn.sum(n["x"], axis=0)),
    # a broadcast that the other operand's shape does not repeat
    ("drop_broadcast", lambda n: n["x"][0] + gn.broadcast_to(gn.constant(2.0), (2, 3))),
    # the other operand is as large as the broadcast
    ("broadcast_later", lambda n: gn.broadcast_to(gn.constant(2.0), (2, 3)) * n["s"]),
    ("transpose_identity", lambda n: gn.transpose(n["s"], (1, 0))),
    ("neg_neg", lambda n: -n["x"]),
]


def _fired(out) -> Counter:
    counts = Counter()
    apply_rules(gn.Graph([out]), RULES, counts).verify()
    return counts


@pytest.mark.parametrize("rule, build", FIRES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(FIRES)])
def test_rule_fires_and_keeps_values(rule, build):
    nodes = _inputs()
    out = build(nodes)
    assert _fired(out)[rule] >= 1
    feed = {p: v for p, v in _feed(nodes).items() if p in gn.Graph([out]).nodes}
    assert_same_results([out], feed, disable=["fold_constants"])


@pytest.mark.parametrize("rule, build", DOES_NOT_FIRE,
                         ids=[f"{r}-{i}" for i, (r, _) in enumerate(DOES_NOT_FIRE)])
def test_rule_does_not_fire_where_unsafe(rule, build):
    assert _fired(build(_inputs()))[rule] == 0


def test_every_rule_has_a_firing_case():
    assert {rule.__name__ for _, rule in RULES} <= {name for name, _ in FIRES}


def test_no_rule_makes_a_read_alias_an_assigned_variable():
    """`(v + 0) -> v` would hand out v's buffer, which the update then changes."""
    v = gn.variable(np.array([1.0, 2.0], np.float32), name="v")
    before = v + 0.0
    update = gn.assign_add(v, 1.0)
    counts = Counter()
    apply_rules(gn.Graph([before, update]), RULES, counts)
    assert counts["plus_zero"] == 0
    got, _ = gn.Session().run([before, update])
    np.testing.assert_array_equal(got, [1.0, 2.0])
    assert _fired(v + 0.0)["plus_zero"] == 1  # without the update it is fine


def test_simplified_mlp_gradient_has_no_identity_arithmetic():
    x = gn.placeholder((4, 3), "float32", name="x")
    w = gn.variable(np.ones((3, 2), np.float32), name="w")
    loss = gn.sum(gn.tanh(x @ w))
    plan = gn.compile(gn.gradients(loss, w))
    kinds = [node.op.kind for node in plan.graph]
    assert "fill_like" not in kinds and "broadcast_like" not in kinds


def test_explain_lists_rule_counts():
    x = gn.placeholder((None, 3), name="x")
    with recording() as notes:
        simplify(gn.Graph([gn.neg(-(x * 1.0)) + 0.0]))
    assert len(notes) == 1
    assert sorted(notes[0].split(", ")) == ["neg_neg x1", "plus_zero x1", "times_one x1"]
