"""fuse_cross_entropy (graphnet/compiler/passes/patterns.py): a sparse softmax
cross-entropy and its gradient as one step, on both kernel backends, equal to
the composite it replaces."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.compiler.ops import FusedOutput
from graphnet.nn.cross_entropy import SparseSoftmaxCrossEntropyWithGrad
from graphnet.testing import numeric_gradient

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not gn.compiler.kernels.numba_available(), reason="needs numba"))]


def fused_steps(plan) -> list:
    return [n for n in plan.graph if isinstance(n.op, SparseSoftmaxCrossEntropyWithGrad)]


def loss_and_grad(shape=(6, 5), dtype="float32", weighted=False, labels=None, seed=0):
    """(fetches, feed): a mean (or weighted sum) of sparse softmax
    cross-entropies of logits `x @ w`, with d/dw and d/dlogits."""
    rng = np.random.default_rng(seed)
    x = gn.placeholder(shape[:-1] + (3,), dtype, name="x")
    y = gn.placeholder(shape[:-1], "int64", name="y")
    w = gn.variable(rng.normal(size=(3, shape[-1])).astype(dtype), name="w")
    logits = x @ w
    losses = gn.nn.sparse_softmax_cross_entropy(logits, y)
    feed = {x: rng.normal(size=shape[:-1] + (3,)).astype(dtype),
            y: rng.integers(0, shape[-1], shape[:-1]) if labels is None else labels}
    if weighted:   # per-example weights fed at run time: the scale is not a constant
        weights = gn.placeholder(shape[:-1], dtype, name="weights")
        feed[weights] = rng.random(shape[:-1]).astype(dtype)
        loss = gn.sum(losses * weights)
    else:
        loss = gn.mean(losses)
    return [loss, *gn.gradients(loss, [w, logits])], feed


def run(fetches, feed, backend, **options):
    plan = gn.compile(fetches, feed_shapes={p: np.shape(v) for p, v in feed.items()},
                      backend=backend, verify=True, **options)
    return plan, gn.Session().run(plan, feed)


CASES = {
    "mean": {},
    "weighted": {"weighted": True},
    "sequence": {"shape": (2, 3, 4)},
    "float64": {"dtype": "float64"},
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_step_agrees_with_the_composite(case, backend):
    fetches, feed = loss_and_grad(**CASES[case])
    plan, got = run(fetches, feed, backend)
    _, expected = run(fetches, feed, backend, disable=["fuse_cross_entropy"])
    assert len(fused_steps(plan)) == 1
    assert "sparse softmax cross-entropy gradient in one step" in plan.explain()
    kinds = {s.kernel for s in plan.steps if isinstance(s.nodes[-1].op,
                                                         SparseSoftmaxCrossEntropyWithGrad)}
    assert kinds == {backend}
    for a, b in zip(got, expected, strict=True):
        if backend == "numpy":   # the same arithmetic, shared steps done once
            np.testing.assert_array_equal(a, b)
        else:                    # one loop a row: another order of the sums, libm's exp
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_gradient_of_the_fused_step_matches_finite_differences(backend):
    rng = np.random.default_rng(1)
    logits = gn.placeholder((5, 4), "float64", name="logits")
    y = gn.placeholder((5,), "int64", name="y")
    weights = rng.normal(size=5)
    loss = gn.sum(gn.nn.sparse_softmax_cross_entropy(logits, y) * weights)
    (grad,) = gn.gradients(loss, [logits])
    feed = {logits: rng.normal(size=(5, 4)) * 3, y: np.array([0, 3, 1, 1, 2])}
    plan, (value, got) = run([loss, grad], feed, backend)
    assert len(fused_steps(plan)) == 1

    def reference(z):
        shifted = z - z.max(axis=1, keepdims=True)
        picked = shifted[np.arange(5), feed[y]]
        return float(np.sum((np.log(np.exp(shifted).sum(axis=1)) - picked) * weights))

    assert value == pytest.approx(reference(feed[logits]), rel=1e-12)
    np.testing.assert_allclose(got, numeric_gradient(reference, feed[logits]), rtol=1e-7,
                               atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_scale_computed_from_the_loss_keeps_the_loss_apart(backend):
    """d/dlogits of sum(loss ** 2) scales by 2 * loss: the gradient is fused,
    the loss stays its own step (else the step would wait on itself)."""
    logits = gn.placeholder((4, 3), "float32", name="logits")
    y = gn.placeholder((4,), "int64", name="y")
    loss = gn.sum(gn.square(gn.nn.sparse_softmax_cross_entropy(logits, y)))
    fetches = [loss, *gn.gradients(loss, [logits])]
    feed = {logits: np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32),
            y: np.array([0, 2, 1, 0])}
    plan, got = run(fetches, feed, backend)
    _, expected = run(fetches, feed, backend, disable=["fuse_cross_entropy"])
    assert len(fused_steps(plan)) == 1
    losses = [n for n in plan.graph if isinstance(n.op, FusedOutput) and n.op.index == 0
              and isinstance(n.inputs[0].op, SparseSoftmaxCrossEntropyWithGrad)]
    assert losses == []
    assert "computed from the loss" in plan.explain(history=True)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_labels_out_of_range_behave_as_before(backend):
    """-1 wraps in the loss and has no one-hot, as the composite does; a
    label past the classes fails as it did."""
    fetches, feed = loss_and_grad(labels=np.array([0, -1, 4, 2, 1, 3]))
    plan, got = run(fetches, feed, backend)
    _, expected = run(fetches, feed, backend, disable=["fuse_cross_entropy"])
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-6)
    feed[next(p for p in feed if p.name == "y")] = np.array([0, 5, 4, 2, 1, 3])
    with pytest.raises(IndexError):
        gn.Session().run(plan, feed)


def test_nan_logits_give_nan_on_both_backends():
    fetches, feed = loss_and_grad()
    x = next(p for p in feed if p.name == "x")
    feed[x][1, 0] = np.nan
    for backend in ("numpy", "numba") if gn.compiler.kernels.numba_available() else ("numpy",):
        _, (loss, dw, dlogits) = run(fetches, feed, backend)
        assert np.isnan(loss) and np.isnan(dlogits[1]).all() and np.isfinite(dlogits[0]).all()


def test_a_softmax_fetched_too_stays_and_the_rest_fuses():
    fetches, feed = loss_and_grad()
    logits = next(n for n in gn.Graph(fetches).nodes if n.op.kind == "matmul")
    fetches.append(gn.softmax(logits))
    plan, got = run(fetches, feed, "numpy")
    assert len(fused_steps(plan)) == 1
    _, expected = run(fetches, feed, "numpy", disable=["fuse_cross_entropy"])
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)
