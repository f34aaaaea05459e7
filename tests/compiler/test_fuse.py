"""fuse_elementwise on the NumPy backend: which groups form, and that
fused plans compute exactly what unfused plans do.

The NumPy backend runs the absorbed ops' own kernels, so its results must
equal the unfused plan's bit for bit; tests/compiler/test_numba_backend.py
checks the Numba loops (to float32 precision).
"""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given

import graphnet as gn
from graphnet.compiler.kernels import loops, numpy_backend
from graphnet.compiler.kernels.program import Instr, render
from graphnet.compiler.ops import Fused, FusedOutput
from graphnet.compiler.passes.fuse import find_groups
from graphnet.ops.activations import Relu
from graphnet.ops.elementwise import Add
from graphnet.testing import check_gradients

from .graphs import GRAPHS, assert_nested_close, assert_same_results, shapes_of
from .test_random_graphs import random_graphs

NO_FUSION = ["fuse_elementwise"]


def fused_steps(plan) -> list:
    return [s for s in plan.steps if isinstance(s.nodes[-1].op, Fused)]


def assert_fusion_changes_nothing(fetches, feed, steps: int = 3, **options):
    """The fused plan and the same pipeline without fusion agree exactly,
    values and variables, over several runs. Returns the fused plan."""
    options.setdefault("feed_shapes", shapes_of(feed))
    fused = gn.compile(fetches, verify=True, backend="numpy", **options)
    plain = gn.compile(fetches, disable=NO_FUSION, **options)
    sess, ref = gn.Session(), gn.Session()
    for _ in range(steps):
        assert_nested_close(sess.run(fused, feed), ref.run(plain, feed), rtol=0, atol=0)
    for var in plain.variables:
        np.testing.assert_array_equal(sess.get(var), ref.get(var), err_msg=var.name)
    return fused


# ------------------------------------------------------ meaning is kept


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_fusion_gives_identical_results_on_every_test_graph(name):
    fetches, feed = GRAPHS[name]()
    plan = assert_fusion_changes_nothing(fetches, feed)
    assert fused_steps(plan), "nothing was fused"


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_fusion_alone_and_generic_plans_keep_values(name):
    fetches, feed = GRAPHS[name]()
    assert_same_results(fetches, feed, disable=["cse", "simplify", "fold_constants"])
    assert_same_results(fetches, feed, feed_shapes=None)


@given(random_graphs())
def test_random_graphs_fused_equal_unfused(case):
    fetches, feed = case
    assert_fusion_changes_nothing(fetches, feed, steps=2)
    assert_fusion_changes_nothing(fetches, feed, steps=1, feed_shapes=None)


# ------------------------------------------------------- groups formed


def dense_relu(batch=4):
    x = gn.placeholder((None, 3), name="x")
    w = gn.variable(np.arange(6, dtype=np.float32).reshape(3, 2) / 10, name="w")
    b = gn.variable(np.array([0.5, -1.0], np.float32), name="b")
    out = gn.relu(x @ w + b, name="out")
    feed = {x: np.linspace(-1, 1, batch * 3, dtype=np.float32).reshape(batch, 3)}
    return out, feed


def test_bias_add_and_relu_become_one_kernel():
    out, feed = dense_relu()
    plan = assert_fusion_changes_nothing(out, feed)
    [step] = fused_steps(plan)
    op = step.nodes[-1].op
    assert [type(i.op) for i in op.program] == [Add, Relu]
    assert op.label() == "Fused{relu(x0 + x1)}"
    assert step.kernel == "fused-numpy" and [n.name for n in step.nodes[:-1]] == ["add", "out"]
    line = next(line for line in plan.source.splitlines() if line.lstrip().startswith(
        step.target + " = "))
    assert f"{step.target} = fused_" in line and "# f32[4,2] relu(matmul + b)" in line
    assert "fuse_elementwise" in plan.explain() and "out: relu(matmul + b)" in plan.explain()


def adam_mlp(batch=4):
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 5), name="x")
    y = gn.placeholder((None,), "int64", name="y")
    w0 = gn.variable(rng.normal(0, 0.5, (5, 4)).astype(np.float32), name="w0")
    b0 = gn.variable(np.zeros(4, np.float32), name="b0")
    w1 = gn.variable(rng.normal(0, 0.5, (4, 3)).astype(np.float32), name="w1")
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(gn.relu(x @ w0 + b0) @ w1, y))
    optimizer = gn.optim.Adam(0.01)
    train = optimizer.minimize(loss)
    feed = {x: rng.normal(size=(batch, 5)).astype(np.float32),
            y: rng.integers(0, 3, batch).astype(np.int64)}
    return loss, train, optimizer, [w0, b0, w1], feed


def test_an_adam_update_is_one_kernel_per_variable_writing_m_v_and_w():
    # what fuse_elementwise makes; arena_updates then merges them (test_arena.py)
    loss, train, optimizer, params, feed = adam_mlp()
    plan = assert_fusion_changes_nothing([loss, train], feed, steps=4, arenas=False)
    updates = [n for n in plan.graph if isinstance(n.op, Fused) and n.op.stateful]
    assert len(updates) == len(params)
    for var in params:
        [node] = [n for n in updates if var in n.op.targets(n)]
        slots = {optimizer.get_slot(var, "m"), optimizer.get_slot(var, "v")}
        assert set(node.op.targets(node)) == slots | {var}
        assert node.shape is None  # only the step group uses it: no value leaves
        assert "+=" in node.op.label() and "-=" in node.op.label()
    # the scalar part (bias corrections, learning rate) is one kernel for all
    scalars = [n for n in plan.graph if isinstance(n.op, Fused) and n.op.shape == ()]
    assert len(scalars) == 1


@pytest.mark.parametrize("optimizer, slots", [
    (lambda: gn.optim.SGD(0.1), 0),
    (lambda: gn.optim.SGD(0.1, momentum=0.9, nesterov=True), 1),
    (lambda: gn.optim.RMSprop(0.01, momentum=0.5, centered=True), 3),
    (lambda: gn.optim.Adagrad(0.1), 1),
    (lambda: gn.optim.Adam(0.01, amsgrad=True), 3),
    (lambda: gn.optim.AdamW(0.01, clipnorm=1.0), 2),
    (lambda: gn.optim.Adam(0.01, global_clipnorm=1.0), 2),
], ids=["sgd", "nesterov", "rmsprop", "adagrad", "amsgrad", "adamw_clipnorm", "global_clip"])
def test_every_optimizer_updates_each_variable_in_one_kernel(optimizer, slots):
    rng = np.random.default_rng(0)
    x, y = gn.placeholder((6, 5), name="x"), gn.placeholder((6,), "int64", name="y")
    w = gn.variable(rng.normal(size=(5, 3)).astype(np.float32), name="w")
    b = gn.variable(np.zeros(3, np.float32), name="b")
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(x @ w + b, y))
    train = optimizer().minimize(loss)
    feed = {x: rng.normal(size=(6, 5)).astype(np.float32), y: np.arange(6) % 3}
    plan = assert_fusion_changes_nothing([loss, train], feed, arenas=False)
    updates = [n for n in plan.graph if isinstance(n.op, Fused) and n.op.stateful]
    assert sorted(len(n.op.targets(n)) for n in updates) == [1 + slots] * 2


def test_fused_updates_write_in_place_and_readers_see_old_values():
    loss, train, optimizer, params, feed = adam_mlp()
    m = optimizer.get_slot(params[0], "m")
    before = gn.sum(m) + gn.sum(params[0])  # read in the same run as the update
    sess = gn.Session(backend="numpy")
    w_array = None
    for _ in range(3):
        expected = sess.get(m).sum() + sess.get(params[0]).sum()
        got, _ = sess.run([before, train], feed)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        w_array = sess._value(params[0]) if w_array is None else w_array
    # updated in place (the first run moved it into its arena, once)
    assert sess._value(params[0]) is w_array


def test_an_update_reading_another_updated_variable_sees_its_old_value():
    a = gn.variable(np.ones(3, np.float32), name="a")
    b = gn.variable(np.full(3, 10, np.float32), name="b")
    step = gn.group(gn.assign(a, b * 2.0 + 1.0), gn.assign_add(b, a * 0.5 + 1.0))
    sess = gn.Session(backend="numpy")
    sess.run(step)
    np.testing.assert_array_equal(sess.get(a), [21, 21, 21])
    np.testing.assert_array_equal(sess.get(b), [11.5, 11.5, 11.5])
    assert len([n for n in gn.compile(step).graph if isinstance(n.op, Fused)]) == 2


def test_no_fusion_across_random_ops():
    x = gn.placeholder((8, 8), name="x")
    h = gn.nn.dropout(gn.exp(x * 0.5), rate=0.5, seed=3)  # exp(x * 0.5) * random mask
    out = gn.tanh(h * 2.0 + 1.0)
    plan = gn.compile(out, feed_shapes={x: (8, 8)}, backend="numpy")
    kinds = [[s.nodes[-1].op.kind] if len(s.nodes) == 1 else
             [i.op.kind for i in s.nodes[-1].op.program] for s in plan.steps[1:]]
    assert kinds == [["mul", "exp"], ["dropout_mask"], ["mul", "mul", "add", "tanh"]]


def test_a_value_used_before_the_group_ends_is_not_absorbed():
    x = gn.placeholder((3, 4), name="x")
    a = x + 1.0
    total = gn.sum(a, axis=1, keepdims=True)     # needs `a` before `c` runs
    c = gn.exp(a * total)
    groups = find_groups(gn.Graph([c]))
    assert all(not (a in g.members and c in g.members) for g in groups)
    assert_fusion_changes_nothing(c, {x: np.ones((3, 4), np.float32)})


def test_values_used_after_the_group_leave_it_as_outputs():
    x = gn.placeholder((3, 4), name="x")
    a = x * 2.0 - 1.0
    r = gn.relu(a)
    later = gn.sum(a) + gn.sum(r * 3.0)          # `a` is needed after the kernel
    plan = assert_fusion_changes_nothing([later, r], {x: np.eye(3, 4, dtype=np.float32)})
    outputs = [n for n in plan.graph if isinstance(n.op, FusedOutput)]
    assert {n.name for n in outputs} >= {a.name, r.name}


def test_cheap_values_are_recomputed_by_the_gradient_kernel_not_stored():
    """GELU's forward kernel hands its gradient kernel erf(...) and the
    activation only: h + b, h * 0.5, h * 0.707 and erf + 1 are recomputed
    there, reading the bias (updated after every read) and the matmul output."""
    rng = np.random.default_rng(0)
    x = gn.placeholder((16, 8), "float32", name="x")
    w = gn.variable(rng.standard_normal((8, 64)).astype(np.float32), name="w")
    b = gn.variable(rng.standard_normal(64).astype(np.float32), name="b")
    loss = gn.mean(gn.square(gn.gelu(x @ w + b)))
    train = gn.optim.SGD(0.1).minimize(loss)
    feed = {x: rng.standard_normal((16, 8)).astype(np.float32)}
    plan = assert_fusion_changes_nothing([loss, train], feed)
    exported = {n.name.rsplit("/", 1)[-1] for n in plan.graph if isinstance(n.op, FusedOutput)}
    assert exported == {"erf", "gelu", "square"}  # the mean reads the square
    assert "cheap values recomputed where read" in plan.explain()


def test_a_cheap_value_of_unknown_size_is_stored_not_recomputed():
    x = gn.placeholder((None, 4), name="x")
    h = x * 0.5
    out = gn.sum(gn.exp(h) + h)
    (dx,) = gn.gradients(out, [x])
    plan = assert_fusion_changes_nothing([out, dx], {x: np.ones((3, 4), np.float32)},
                                         feed_shapes=None)
    assert "recomputed" not in plan.explain()


def test_views_of_an_assigned_variable_keep_its_update_out_of_the_kernel():
    v = gn.variable(np.arange(4, dtype=np.float32).reshape(2, 2), name="v")
    update = gn.assign(v, gn.transpose(v) * 2.0 + 1.0)  # must read v whole first
    sess = gn.Session(backend="numpy")
    sess.run(update)
    np.testing.assert_array_equal(sess.get(v), [[1, 5], [3, 7]])
    [node] = [n for n in gn.compile(update).graph if isinstance(n.op, Fused)]
    assert not node.op.stateful


def test_dtypes_are_kept_exactly():
    x = gn.placeholder((5,), "float32", name="x")
    i = gn.placeholder((5,), "int32", name="i")
    mask = x > 0.0
    out = gn.where(mask, x * 0.5, gn.cast(i, "float32") / 3.0)
    counted = gn.cast(mask, "int64") + 1
    feed = {x: np.linspace(-2, 2, 5, dtype=np.float32), i: np.arange(5, dtype=np.int32)}
    plan = assert_fusion_changes_nothing([out, counted, gn.cast(x, "float64") * 2.0], feed)
    values = gn.Session().run(plan, feed)
    assert [v.dtype.name for v in values] == ["float32", "int64", "float64"]
    for step in fused_steps(plan):
        op = step.nodes[-1].op
        for instr, node in zip(op.program, step.nodes[:-1], strict=True):
            assert instr.dtype == node.dtype


def test_program_text_inlines_single_uses_and_names_shared_values():
    program = (Instr(Add(), ("x0", "x1"), np.dtype("float32")),
               Instr(Relu(), ("t0",), np.dtype("float32")))
    assert render(program, (), ("t1",), lambda i: f"x{i}") == "relu(x0 + x1)"
    assert render(program, (), ("t0", "t1"), lambda i: f"x{i}") == "t0 = x0 + x1; relu(t0)"


# ------------------------------------------------- the Numba loop's source
# (generating it needs no Numba; test_numba_backend.py runs the loops)


def test_the_loop_source_is_readable_and_typed():
    x = gn.placeholder((32, 128), name="x")
    b = gn.variable(np.zeros(128, np.float32), name="b")
    op = gn.compile(gn.relu(x * 0.5 + b), backend="numpy").graph.outputs[0].op
    source, rows, cols, patterns = loops.loop_source(op)
    assert (rows, cols, patterns) == (32, 128, ("full", "row"))
    assert "k0 = np.float32(0.5)" in source and "a1 = x1[c]" in source
    assert "for r in range(rows):" in source and "parallel" not in source
    assert 'error_model="numpy"' in source
    compile(source, "loop", "exec")


@pytest.mark.parametrize("value", [np.float32(0.1), np.float32(-0.0), np.float32(np.inf),
                                   np.float64(1 / 3), np.int64(-3), np.bool_(True),
                                   np.float32(1e-7), np.uint8(255)])
def test_loop_constants_are_typed_and_exact(value):
    text = loops._typed_literal(value)
    back = eval(text, {"np": np})  # noqa: S307 - our own generated text
    assert back.dtype == value.dtype and back == value
    assert np.signbit(back) == np.signbit(value)


# ---------------------------------------------------------------- chunks


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunk arrays above 64 elements, 16 elements (64 bytes of float32) a chunk."""
    monkeypatch.setattr(numpy_backend, "CHUNK_ABOVE", 64)
    monkeypatch.setattr(numpy_backend, "CHUNK_BYTES", 64)


def test_chunked_kernels_equal_unchunked_ones(small_chunks):
    rng = np.random.default_rng(0)
    x = gn.placeholder((37, 5), name="x")            # 185 elements: a short last chunk
    b = gn.placeholder((5,), name="b")               # broadcast over rows: row blocks
    w = gn.variable(rng.normal(size=(37, 5)).astype(np.float32), name="w")
    a = gn.tanh(x * 0.5 + 1.0)                       # flat chunks, an output...
    update = gn.assign_sub(w, 0.1 * (w - a))         # ...and an update in place
    r = gn.relu(x + b)                               # blocks of rows
    s = gn.sum(r)
    feed = {x: rng.normal(size=(37, 5)).astype(np.float32),
            b: rng.normal(size=5).astype(np.float32)}
    plan = assert_fusion_changes_nothing([a, r, s, update], feed)
    kernels = [numpy_backend.NumpyKernel(s.nodes[-1].op) for s in fused_steps(plan)]
    assert [(len(k._fixed.chunks), k._fixed.flat) for k in kernels] == [(12, True), (13, False)]


def test_chunked_kernels_accept_non_contiguous_inputs(small_chunks):
    x = gn.placeholder((20, 10), name="x")
    y = gn.exp(gn.transpose(x) * 0.1) - 1.0            # a transposed view feeds the kernel
    value = np.arange(200, dtype=np.float32).reshape(20, 10)
    assert_fusion_changes_nothing(y, {x: value})


# ---------------------------------------------------- gradients, memory


@pytest.mark.parametrize("build", [
    lambda x, b: gn.sigmoid(x * 2.0 + b) * gn.tanh(x),
    lambda x, b: gn.softplus(gn.where(x > 0.0, x, b)) / (gn.square(b) + 1.0),
    lambda x, b: gn.leaky_relu(x - b, 0.1) + gn.clip(x, -0.5, 0.5) ** 2,
], ids=["sigmoid_tanh", "softplus_where", "leaky_clip_pow"])
def test_gradients_checked_numerically_through_fused_plans(build):
    rng = np.random.default_rng(1)
    x, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    check_gradients(build, [x, b])  # Session compiles with fusion on
    plan = gn.compile(build(gn.placeholder((3, 4), "float64"), gn.placeholder((4,), "float64")))
    assert fused_steps(plan)


def test_a_fused_training_step_allocates_no_arrays():
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 256), name="x")
    y = gn.placeholder((None,), "int64", name="y")
    w0 = gn.variable(rng.normal(0, 0.05, (256, 256)).astype(np.float32))
    w1 = gn.variable(rng.normal(0, 0.05, (256, 10)).astype(np.float32))
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(gn.relu(x @ w0) @ w1, y))
    train = gn.optim.Adam(1e-3).minimize(loss)
    feed = {x: rng.random((128, 256), dtype=np.float32), y: rng.integers(0, 10, 128)}
    sess = gn.Session(backend="numpy")
    for _ in range(2):
        sess.run([loss, train], feed)
    tracemalloc.start()
    try:
        for _ in range(3):
            sess.run([loss, train], feed)
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    activation = 128 * 256 * 4  # bytes: nothing this large is allocated per step
    assert peak < activation / 4 and retained < 16_384


def test_a_layer_norm_and_gelu_training_step_allocates_no_arrays():
    """Layer norm's NumPy kernels keep scratch per plan step, and the fused
    GELU's erf writes into the kernel's buffers."""
    rng = np.random.default_rng(0)
    x = gn.placeholder((None, 16, 64), name="x")
    t = gn.placeholder((None, 16, 64), name="t")
    w = [gn.variable(rng.normal(0, 0.1, shape).astype(np.float32))
         for shape in [(64, 64), (64, 128), (128, 64)]]
    gamma, beta = gn.variable(np.ones(64, np.float32)), gn.variable(np.zeros(64, np.float32))
    bias = gn.variable(np.zeros(128, np.float32))
    z = x @ w[0]    # so that layer norm's dx runs too
    out = z + gn.gelu(gn.nn.layer_norm(z, gamma, beta) @ w[1] + bias) @ w[2]
    loss = gn.mean(gn.square(out - t))
    train = gn.optim.Adam(1e-3).minimize(loss)
    feed = {x: rng.standard_normal((64, 16, 64), np.float32),
            t: rng.standard_normal((64, 16, 64), np.float32)}
    plan = gn.compile([loss, train], feeds=[x, t], backend="numpy",
                      feed_shapes={x: (64, 16, 64), t: (64, 16, 64)})
    kinds = {n.op.kind for step in plan.steps for n in step.nodes}
    assert {"normalize", "normalize_grad", "normalize_gamma_grad", "erf"} <= kinds
    sess = gn.Session()
    for _ in range(2):
        sess.run(plan, feed)
    tracemalloc.start()
    try:
        for _ in range(3):
            sess.run(plan, feed)
        retained, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    activation = 64 * 16 * 64 * 4  # bytes: nothing this large is allocated per step
    assert peak < activation / 4 and retained < 16_384


def test_fusion_can_be_disabled():
    out, feed = dense_relu()
    plan = gn.compile(out, feed_shapes=shapes_of(feed), disable=NO_FUSION)
    assert not fused_steps(plan) and "fuse_elementwise" not in plan.explain()


def test_a_cheap_value_read_by_a_larger_op_is_stored_not_recomputed():
    """A reader that broadcasts the value into a larger shape cannot take a
    clone into its kernel: the value stays one export."""
    x = gn.placeholder((64, 1), "float32", name="x")
    z = gn.placeholder((64, 5), "float32", name="z")
    half = x * 0.5
    out = [gn.sum(gn.exp(half) + x), gn.sum(half + z)]
    feed = {x: np.arange(64, dtype=np.float32).reshape(64, 1) / 64,
            z: np.ones((64, 5), np.float32)}
    plan = assert_fusion_changes_nothing(out, feed)
    assert "recomputed" not in plan.explain()
