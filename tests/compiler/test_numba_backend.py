"""The Numba backend of fused kernels: loops agree with the NumPy backend.

Skipped when Numba is not installed. Each distinct loop costs about a
second to compile the first time, so the tests share a few graphs; the
kernel cache is a temporary folder per test session (or $GRAPHNET_CACHE).
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

import graphnet as gn
from graphnet.compiler.kernels import loops, numba_backend
from graphnet.compiler.ops import Fused
from graphnet.testing import max_examples

from .graphs import GRAPHS, assert_nested_close, shapes_of
from .test_random_graphs import random_graphs

numba = pytest.importorskip("numba")

RTOL, ATOL = 2e-5, 1e-6  # float32 loops versus NumPy's ufuncs


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory):
    """Generated kernels go to a temporary cache unless GRAPHNET_CACHE is set."""
    saved = os.environ.get("GRAPHNET_CACHE")
    if saved is None:
        os.environ["GRAPHNET_CACHE"] = str(tmp_path_factory.mktemp("graphnet-cache"))
    yield numba_backend.kernel_dir()
    if saved is None:
        del os.environ["GRAPHNET_CACHE"]


def assert_backends_agree(fetches, feed, steps: int = 3, **options):
    """The numba plan and the numpy plan agree over several runs, values and
    variables. Returns the numba plan."""
    options.setdefault("feed_shapes", shapes_of(feed))
    fast = gn.compile(fetches, verify=True, backend="numba", **options)
    plain = gn.compile(fetches, backend="numpy", **options)
    sess, ref = gn.Session(), gn.Session()
    for _ in range(steps):
        assert_nested_close(sess.run(fast, feed), ref.run(plain, feed), RTOL, ATOL)
    for var in plain.variables:
        np.testing.assert_allclose(sess.get(var), ref.get(var), RTOL, ATOL, err_msg=var.name)
    return fast


def numba_steps(plan) -> list:
    return [s for s in plan.steps if s.kernel == "numba"]


def every_op(x, y):
    """One kernel that uses every loop form once (x, y float; y > 0)."""
    mask, z = x > y, gn.abs(x) + y  # z > 0, of x's shape
    terms = [x + y, x - y, x * y, x / y, -x, z ** 1.5, gn.maximum(x, y), gn.minimum(x, y),
             gn.exp(x), gn.log(z), gn.log1p(z), gn.sqrt(z), gn.cos(x), gn.sin(x), gn.tanh(x),
             gn.erf(x), gn.floor(x), gn.square(x), gn.abs(x), gn.sign(x), gn.relu(x),
             gn.leaky_relu(x, 0.1), gn.sigmoid(x), gn.softplus(x), gn.clip(x, -0.5, 0.5),
             gn.cast(x < y, x.dtype), gn.cast(x <= y, x.dtype), gn.cast(gn.equal(x, y), x.dtype),
             gn.cast(gn.not_equal(x, y), x.dtype), gn.cast(x >= y, x.dtype),
             gn.where(gn.logical_and(mask, gn.logical_not(gn.logical_or(mask, x < 0.0))),
                      x, y),
             gn.cast(gn.cast(x * 10.0, "int32"), x.dtype)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_loop_form_agrees_with_numpy(dtype):
    rng = np.random.default_rng(0)
    x, y = gn.placeholder((6, 7), dtype, name="x"), gn.placeholder((7,), dtype, name="y")
    feed = {x: rng.normal(size=(6, 7)).astype(dtype),
            y: rng.uniform(0.5, 2, 7).astype(dtype)}
    plan = assert_backends_agree(every_op(x, y), feed, steps=1)
    [step] = numba_steps(plan)
    assert len(step.nodes) > 60  # one kernel for all of it
    assert plan.outputs[0].dtype == dtype


@pytest.mark.parametrize("name", ["mlp_momentum", "broadcasting"])
def test_test_graphs_agree(name):
    fetches, feed = GRAPHS[name]()
    plan = assert_backends_agree(fetches, feed)
    assert numba_steps(plan)


@settings(max_examples=max_examples(6), derandomize=True)  # each program compiles a loop
@given(random_graphs())
def test_random_graphs_agree(case):
    fetches, feed = case
    assert_backends_agree(fetches, feed, steps=2)


def test_an_adam_step_agrees_and_compiles_one_loop_for_every_variable():
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 5), name="x")
    y = gn.placeholder((None,), "int64", name="y")
    w0 = gn.variable(rng.normal(0, 0.5, (5, 4)).astype(np.float32), name="w0")
    b0 = gn.variable(np.zeros(4, np.float32), name="b0")
    w1 = gn.variable(rng.normal(0, 0.5, (4, 3)).astype(np.float32), name="w1")
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(gn.relu(x @ w0 + b0) @ w1, y))
    train = gn.optim.Adam(0.01).minimize(loss)
    feed = {x: rng.normal(size=(8, 5)).astype(np.float32),
            y: rng.integers(0, 3, 8).astype(np.int64)}
    plan = assert_backends_agree([loss, train], feed, steps=5, arenas=False)
    updates = [s for s in numba_steps(plan) if s.nodes[-1].op.stateful]
    assert len(updates) == 3
    sources = {numba_backend.prepare(s.nodes[-1].op).source for s in updates}
    assert len(sources) == 1  # shapes are arguments: one loop serves all three
    assert "numba loops:" in plan.explain()
    # by default the three run as one arena kernel, the same loop over the arenas
    plan = assert_backends_agree([loss, train], feed, steps=5)
    [update] = [s for s in numba_steps(plan) if s.nodes[-1].op.stateful]
    assert update.nodes[-1].op.kind == "arena_update"


@pytest.mark.parametrize("shapes, patterns", [
    (((4, 3), (4, 1)), ("full", "column")),
    (((4, 3), ()), ("full", "scalar")),
    (((2, 4, 3), (4, 1), (3,)), None),  # a column and a row of different axes
])
def test_broadcast_patterns(shapes, patterns):
    rng = np.random.default_rng(1)
    nodes = [gn.placeholder(s, name=f"p{i}") for i, s in enumerate(shapes)]
    out = nodes[0] * 2.0
    for node in nodes[1:]:
        out = gn.tanh(out + node)
    feed = {n: rng.normal(size=s).astype(np.float32) for n, s in zip(nodes, shapes, strict=True)}
    plan = assert_backends_agree(out, feed, steps=1)
    step = next(s for s in plan.steps if isinstance(s.nodes[-1].op, Fused))
    if patterns is None:
        assert step.kernel == "fused-numpy" and "numpy, since inputs broadcast" in plan.explain()
    else:
        assert step.kernel == "numba"
        assert loops.loop_source(step.nodes[-1].op)[3] == patterns


def test_unusual_arrays_fall_back_to_numpy():
    x = gn.placeholder((3, 4), name="x")
    out = gn.exp(x * 0.5) - 1.0
    plan = gn.compile(out, backend="numba")
    [node] = [n for n in plan.graph if isinstance(n.op, Fused)]
    kernel = node.op.kernel()
    value = np.arange(12, dtype=np.float32).reshape(4, 3).T   # not contiguous: copied
    np.testing.assert_allclose(kernel(value), np.exp(value * 0.5) - 1.0, rtol=RTOL)
    out_buffer = np.empty((4, 3), np.float32).T                 # not contiguous: NumPy
    result = kernel(value, out=out_buffer)
    assert result is out_buffer and kernel.kernel.fallback is not None
    np.testing.assert_allclose(result, np.exp(value * 0.5) - 1.0, rtol=RTOL)


def test_loops_compile_once_per_machine(kernel_cache):
    """A second process finds the machine code on disk."""
    script = (
        "import numpy as np, graphnet as gn\n"
        "x = gn.placeholder((3, 4), name='x')\n"
        "plan = gn.compile(gn.exp(x * 0.5) - 1.0, backend='numba')\n"
        "print(plan.explain())\n")
    env = {**os.environ, "GRAPHNET_CACHE": str(kernel_cache.parent)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           text=True, check=True).stdout for _ in range(2)]
    assert "loaded from the disk cache" in runs[1] or "loaded from the disk cache" in runs[0]
    assert list(kernel_cache.glob("gn_*.py"))


def test_gradients_through_numba_kernels(monkeypatch):
    from graphnet.testing import check_gradients
    monkeypatch.setenv("GRAPHNET_BACKEND", "numba")
    rng = np.random.default_rng(2)
    check_gradients(lambda x, b: gn.sigmoid(x * 2.0 + b) * gn.tanh(x),
                    [rng.normal(size=(3, 4)), rng.normal(size=4)])


def test_large_kernels_of_slow_loop_functions_stay_on_numpy():
    x = gn.placeholder((256, 256), name="x")
    plan = gn.compile(gn.tanh(gn.exp(x * 0.5) + 1.0), backend="numba")
    [step] = [s for s in plan.steps if isinstance(s.nodes[-1].op, Fused)]
    assert step.kernel == "fused-numpy"
    assert "numpy, since tanh run faster as NumPy ufuncs" in plan.explain()
    small = gn.placeholder((4, 4), name="small")
    plan = gn.compile(gn.tanh(gn.exp(small * 0.5) + 1.0), backend="numba")
    assert [s.kernel for s in plan.steps if isinstance(s.nodes[-1].op, Fused)] == ["numba"]


# ------------------------------------------- float32 exp and erf in the loops


def loop_values(function, values: np.ndarray) -> np.ndarray:
    """function(values), float32, as one Numba loop: the program is
    function(-x) fed -values (negation is exact; a lone op is not fused)."""
    x = gn.placeholder(values.shape, "float32", name="x")
    plan = gn.compile(function(-x), backend="numba")
    assert [s.kernel for s in plan.steps if isinstance(s.nodes[-1].op, Fused)] == ["numba"]
    return gn.Session().run(plan, {x: -values})


def ulps(got: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|got - exact| in float32 units in the last place of `exact`."""
    _, exponent = np.frexp(np.abs(exact))
    unit = np.ldexp(1.0, np.maximum(exponent - 24, -149))  # subnormals: 2**-149
    return np.abs(got.astype(np.float64) - exact) / unit


def float32_grid(low: float, high: float) -> np.ndarray:
    """A dense grid over [low, high] and magnitudes from subnormal to huge."""
    magnitudes = np.geomspace(1e-45, 3e38, 20_001).astype(np.float32)
    return np.concatenate([np.linspace(low, high, 400_001, dtype=np.float32),
                           magnitudes, -magnitudes])


def test_float32_erf_in_loops_is_within_2_ulp():
    x = float32_grid(-10, 10)
    exact = np.array([math.erf(v) for v in x.astype(np.float64).tolist()])
    got = loop_values(gn.erf, x)
    assert got.dtype == np.float32
    assert ulps(got, exact).max() <= 2
    assert np.abs(got - exact).max() <= 1.2e-7


def test_float32_exp_in_loops_is_within_2_ulp():
    x = float32_grid(-110, 95)
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
    got = loop_values(gn.exp, x)
    finite = exact < np.finfo(np.float32).max
    assert ulps(got[finite], exact[finite]).max() <= 2
    assert np.all(got[~finite] == np.inf)


def test_float32_exp_and_erf_special_values():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 1e38, -1e38,
                  88.72, 88.73, -103.0, -104.0], np.float32)
    with np.errstate(over="ignore"):
        exact_exp = np.exp(x.astype(np.float64)).astype(np.float32)
    exact_erf = np.array([math.erf(v) if not math.isnan(v) else v
                          for v in x.astype(np.float64).tolist()], np.float32)
    np.testing.assert_array_equal(loop_values(gn.exp, x), exact_exp)
    got = loop_values(gn.erf, x)
    np.testing.assert_array_equal(got, exact_erf)
    assert np.signbit(got[4]) and got[5] > 0 and got[6] < 0  # erf(-0.0), subnormal inputs
    # the cases covered: the largest finite exp, overflow, a subnormal exp, underflow
    assert np.isfinite(exact_exp[9]) and exact_exp[10] == np.inf
    assert 0 < exact_exp[11] < np.finfo(np.float32).tiny and exact_exp[12] == 0


def gelu_forward_and_backward(shape):
    """GELU (exact) of x + bias, and its gradient: the Transformer's programs."""
    x = gn.placeholder(shape, name="x")
    bias = gn.variable(np.linspace(-1, 1, shape[-1], dtype=np.float32), name="bias")
    y = gn.gelu(x + bias)
    dx, = gn.gradients(gn.sum(y * y), [x])
    return x, [y, dx]


def test_gelu_in_loops_agrees_with_numpy():
    x, fetches = gelu_forward_and_backward((16, 256))
    feed = {x: np.random.default_rng(3).normal(0, 3, (16, 256)).astype(np.float32)}
    plan = assert_backends_agree(fetches, feed, steps=1)
    assert all(s.kernel != "fused-numpy" for s in plan.steps)


def test_cost_rule_runs_gelu_as_a_loop_at_transformer_size():
    from graphnet.compiler.kernels import cost
    x, fetches = gelu_forward_and_backward((32, 64, 512))
    plan = gn.compile(fetches, backend="numpy")
    fused = [s.nodes[-1].op for s in plan.steps if isinstance(s.nodes[-1].op, Fused)]
    programs = {type(i.op).__name__ for op in fused for i in op.program}
    assert {"Erf", "Exp"} <= programs
    for op in fused:
        assert cost.slower_as_loop(op) is None, op.expression()
