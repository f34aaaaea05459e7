"""Optimizers against NumPy references of their published (Keras 3) rules,
convergence, clipping, state variables, schedules and ReduceLROnPlateau."""

import math

import numpy as np
import pytest

import graphnet as gn
from graphnet.optim import schedules

# Learning rates exactly representable in float32, so the float32 learning-rate
# variable introduces no rounding and float64 runs match the references tightly.
LR = 0.0625


# ------------------------------------------------------------ the problem


def objective(w, c, d):
    """A smooth non-quadratic loss: sum(c w**2 / 2 + d w + w**4 / 4)."""
    return gn.sum(c * w ** 2 * 0.5 + d * w + w ** 4 * 0.25)


def objective_grad(w, c, d):
    return c * w + d + w ** 3


def problem(seed=0):
    """Two parameters of different shapes with fixed coefficients."""
    rng = np.random.default_rng(seed)
    shapes = [(3, 2), (4,)]
    params = [rng.uniform(-1, 1, s) for s in shapes]
    coeffs = [(rng.uniform(0.5, 2.0, s), rng.uniform(-1, 1, s)) for s in shapes]
    return params, coeffs


def run_graph(optimizer, steps, seed=0):
    """The parameters after each of `steps` runs of `optimizer.minimize`."""
    params, coeffs = problem(seed)
    ws = [gn.variable(p, name=f"w{i}") for i, p in enumerate(params)]
    loss = gn.add(*[objective(w, c, d) for w, (c, d) in zip(ws, coeffs)])
    train = optimizer.minimize(loss)
    sess = gn.Session()
    history = []
    for _ in range(steps):
        assert sess.run(train) is None
        history.append([sess.get(w) for w in ws])
    return history


def run_reference(rule, steps, seed=0, clip=None):
    """The same trajectory from a NumPy `rule(w, g, state, t)` (t counts from 1)."""
    params, coeffs = problem(seed)
    params = [p.copy() for p in params]
    states = [{} for _ in params]
    history = []
    for t in range(1, steps + 1):
        grads = [objective_grad(w, c, d) for w, (c, d) in zip(params, coeffs)]
        if clip is not None:
            grads = clip(grads)
        params = [rule(w, g, s, t) for w, g, s in zip(params, grads, states)]
        history.append([p.copy() for p in params])
    return history


# ------------------------------------------------- references (Keras 3 rules)


def sgd_ref(lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    def step(w, g, s, t):
        w = w - lr * weight_decay * w
        if not momentum:
            return w - lr * g
        v = momentum * s.get("v", 0.0) - lr * g
        s["v"] = v
        return w + momentum * v - lr * g if nesterov else w + v
    return step


def rmsprop_ref(lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    def step(w, g, s, t):
        v = rho * s.get("v", 0.0) + (1 - rho) * g ** 2
        s["v"] = v
        if centered:
            a = rho * s.get("a", 0.0) + (1 - rho) * g
            s["a"] = a
            increment = lr * g / np.sqrt(v - a ** 2 + eps)
        else:
            increment = lr * g / np.sqrt(v + eps)
        if momentum:
            s["m"] = momentum * s.get("m", 0.0) + increment
            return w - s["m"]
        return w - increment
    return step


def adagrad_ref(lr, initial=0.1, eps=1e-7):
    def step(w, g, s, t):
        s["acc"] = s.get("acc", initial) + g ** 2
        return w - lr * g / np.sqrt(s["acc"] + eps)
    return step


def adam_ref(lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, weight_decay=0.0):
    def step(w, g, s, t):
        w = w - w * weight_decay * lr
        m = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - b1)
        v = s.get("v", 0.0) + (g ** 2 - s.get("v", 0.0)) * (1 - b2)
        s["m"], s["v"] = m, v
        if amsgrad:
            v = s["vhat"] = np.maximum(s.get("vhat", 0.0), v)
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return w - alpha * m / (np.sqrt(v) + eps)
    return step


def clip_value_ref(c):
    return lambda grads: [np.clip(g, -c, c) for g in grads]


def clip_norm_ref(c):
    return lambda grads: [g * c / max(np.linalg.norm(g), c) for g in grads]


def clip_global_ref(c):
    def clip(grads):
        norm = math.sqrt(sum(float(np.sum(g ** 2)) for g in grads))
        return [g * c / max(norm, c) for g in grads]
    return clip


CASES = {
    "sgd": (lambda: gn.optim.SGD(LR), sgd_ref(LR)),
    "sgd_momentum": (lambda: gn.optim.SGD(LR, momentum=0.9), sgd_ref(LR, 0.9)),
    "momentum": (lambda: gn.optim.Momentum(LR, momentum=0.8), sgd_ref(LR, 0.8)),
    "momentum_nesterov": (lambda: gn.optim.Momentum(LR, nesterov=True),
                          sgd_ref(LR, 0.9, nesterov=True)),
    "nesterov": (lambda: gn.optim.Nesterov(LR, momentum=0.7), sgd_ref(LR, 0.7, nesterov=True)),
    "sgd_weight_decay": (lambda: gn.optim.SGD(LR, weight_decay=0.5),
                         sgd_ref(LR, weight_decay=0.5)),
    "rmsprop": (lambda: gn.optim.RMSprop(LR), rmsprop_ref(LR)),
    "rmsprop_momentum_centered": (
        lambda: gn.optim.RMSprop(LR, rho=0.8, momentum=0.5, epsilon=1e-6, centered=True),
        rmsprop_ref(LR, 0.8, 0.5, 1e-6, centered=True)),
    "adagrad": (lambda: gn.optim.Adagrad(0.25), adagrad_ref(0.25)),
    "adagrad_zero_start": (lambda: gn.optim.Adagrad(0.25, initial_accumulator_value=0.0,
                                                    epsilon=1e-3),
                           adagrad_ref(0.25, 0.0, 1e-3)),
    "adam": (lambda: gn.optim.Adam(LR), adam_ref(LR)),
    "adam_betas": (lambda: gn.optim.Adam(LR, beta_1=0.5, beta_2=0.75, epsilon=1e-3),
                   adam_ref(LR, 0.5, 0.75, 1e-3)),
    "adam_amsgrad": (lambda: gn.optim.Adam(LR, amsgrad=True), adam_ref(LR, amsgrad=True)),
    "adamw": (lambda: gn.optim.AdamW(LR, weight_decay=0.25),
              adam_ref(LR, weight_decay=0.25)),
    "adamw_default_decay": (lambda: gn.optim.AdamW(LR), adam_ref(LR, weight_decay=0.004)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_reference(case):
    make, rule = CASES[case]
    steps = 8
    got = run_graph(make(), steps)
    expected = run_reference(rule, steps)
    for t, (g_step, e_step) in enumerate(zip(got, expected)):
        for g, e in zip(g_step, e_step):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-13, err_msg=f"{case} step {t}")


CLIP_CASES = {
    "clipvalue": ({"clipvalue": 0.5}, clip_value_ref(0.5)),
    "clipnorm": ({"clipnorm": 0.75}, clip_norm_ref(0.75)),
    "global_clipnorm": ({"global_clipnorm": 1.25}, clip_global_ref(1.25)),
}


@pytest.mark.parametrize("case", sorted(CLIP_CASES))
@pytest.mark.parametrize("which", ["sgd", "adam"])
def test_clipping_matches_reference(case, which):
    options, clip = CLIP_CASES[case]
    params, coeffs = problem()
    first = [objective_grad(w, c, d) for w, (c, d) in zip(params, coeffs)]
    assert any(np.any(a != b) for a, b in zip(first, clip(first))), "clipping must bite"
    make = {"sgd": lambda: gn.optim.SGD(LR, momentum=0.5, **options),
            "adam": lambda: gn.optim.Adam(LR, **options)}[which]
    rule = sgd_ref(LR, 0.5) if which == "sgd" else adam_ref(LR)
    got = run_graph(make(), 6)
    expected = run_reference(rule, 6, clip=clip)
    for g_step, e_step in zip(got, expected):
        for g, e in zip(g_step, e_step):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-13)


def test_clip_by_global_norm_of_zero_gradients_is_zero():
    grads = [gn.constant(np.zeros(3)), gn.constant(np.zeros((2, 2)))]
    values = gn.Session().run(gn.optim.clip_by_global_norm(grads, 1.0))
    assert all(np.all(v == 0) for v in values)


def test_at_most_one_clipping_option():
    with pytest.raises(ValueError, match="at most one of clipnorm, clipvalue"):
        gn.optim.Adam(clipnorm=1.0, clipvalue=0.5)
    with pytest.raises(ValueError, match="clipnorm must be > 0"):
        gn.optim.SGD(clipnorm=-1.0)


# ------------------------------------------------------------ convergence

CONVERGENCE = {
    "sgd": lambda: gn.optim.SGD(0.1),
    "momentum": lambda: gn.optim.Momentum(0.05),
    "nesterov": lambda: gn.optim.Nesterov(0.05),
    "rmsprop": lambda: gn.optim.RMSprop(0.02),
    "adagrad": lambda: gn.optim.Adagrad(0.5),
    "adam": lambda: gn.optim.Adam(0.05),
    "adamw": lambda: gn.optim.AdamW(0.05, weight_decay=1e-4),
}


def _train(optimizer_factory, loss_fn, start, steps):
    w = gn.variable(np.array(start, dtype=np.float64), name="w")
    loss = loss_fn(w)
    train = optimizer_factory().minimize(loss)
    sess = gn.Session()
    for _ in range(steps):
        sess.run(train)
    return sess.get(w), float(sess.run(loss))


@pytest.mark.parametrize("name", sorted(CONVERGENCE))
def test_converges_on_a_quadratic(name):
    a = np.array([[3.0, 0.5], [0.5, 1.0]])
    target = np.array([1.0, -2.0])

    def quadratic(w):
        diff = w - target
        return gn.sum(diff * gn.matmul(gn.constant(a), diff)) * 0.5

    w, loss = _train(CONVERGENCE[name], quadratic, [4.0, 3.0], 400)
    np.testing.assert_allclose(w, target, atol=2e-2)
    assert loss < 1e-3


ROSENBROCK = {
    "sgd": (lambda: gn.optim.SGD(2e-3), 4000),
    "momentum": (lambda: gn.optim.Momentum(1e-3), 1000),
    "nesterov": (lambda: gn.optim.Nesterov(1e-3), 1000),
    "rmsprop": (lambda: gn.optim.RMSprop(1e-3, momentum=0.9), 1000),
    "adagrad": (lambda: gn.optim.Adagrad(1.0), 4000),
    "adam": (lambda: gn.optim.Adam(0.05), 2000),
    "adamw": (lambda: gn.optim.AdamW(0.05, weight_decay=1e-4), 2000),
}


@pytest.mark.parametrize("name", sorted(ROSENBROCK))
def test_converges_on_rosenbrock(name):
    def rosenbrock(w):
        x, y = w[0], w[1]
        return (1.0 - x) ** 2 + (y - x ** 2) ** 2 * 100.0

    factory, steps = ROSENBROCK[name]
    w, loss = _train(factory, rosenbrock, [-1.2, 1.0], steps)
    np.testing.assert_allclose(w, [1.0, 1.0], atol=5e-2)
    assert loss < 1e-3


# ---------------------------------------------------- state and the API


def _dense(dtype="float64"):
    kernel = gn.variable(np.ones((2, 3), dtype), name="dense/kernel")
    bias = gn.variable(np.zeros(3, dtype), name="dense/bias")
    x = gn.constant(np.array([[1.0, 2.0]], dtype))
    loss = gn.sum(gn.square(gn.matmul(x, kernel) + bias - 1.0))
    return kernel, bias, loss


def test_state_variables_have_readable_names_and_update_in_the_same_run():
    kernel, _, loss = _dense()
    opt = gn.optim.Adam(LR)
    train = opt.minimize(loss)
    names = [v.name for v in opt.variables()]
    assert names == ["adam/iterations", "adam/learning_rate", "dense/kernel/adam_m",
                     "dense/kernel/adam_v", "dense/bias/adam_m", "dense/bias/adam_v"]
    assert not any(v.op.trainable for v in opt.variables())
    m = opt.get_slot(kernel, "m")
    assert m.shape == kernel.shape and m.dtype == kernel.dtype

    sess = gn.Session()
    g0 = sess.run(gn.gradients(loss, kernel))
    sess.run(train)
    np.testing.assert_allclose(sess.get(m), 0.1 * g0, rtol=1e-12)
    np.testing.assert_allclose(sess.get(opt.get_slot(kernel, "v")), 0.001 * g0 ** 2, rtol=1e-12)
    assert sess.get(opt.iterations) == 1
    assert not np.allclose(sess.get(kernel), 1.0)
    sess.run(train)
    assert sess.get(opt.iterations) == 2


def test_two_layer_step_reads_every_weight_before_updating_it():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    w1_0, w2_0 = rng.normal(size=(3, 5)), rng.normal(size=(5, 2))
    w1, w2 = gn.variable(w1_0, name="w1"), gn.variable(w2_0, name="w2")
    loss = gn.sum(gn.square(gn.matmul(gn.tanh(gn.matmul(gn.constant(x), w1)), w2) - y))
    sess = gn.Session()
    sess.run(gn.optim.Momentum(LR, nesterov=True).minimize(loss))
    h = np.tanh(x @ w1_0)
    d_out = 2 * (h @ w2_0 - y)
    d_w2 = h.T @ d_out
    d_w1 = x.T @ ((d_out @ w2_0.T) * (1 - h ** 2))
    for var, w0, g in [(w1, w1_0, d_w1), (w2, w2_0, d_w2)]:
        np.testing.assert_allclose(sess.get(var), w0 - LR * g - 0.9 * LR * g, rtol=1e-12)


def test_slots_are_not_trainable_so_a_second_minimize_ignores_them():
    kernel, bias, loss = _dense()
    opt = gn.optim.Momentum(LR)
    opt.minimize(loss)
    assert gn.optim.trainable_variables(loss) == [kernel, bias]
    with pytest.raises(KeyError, match="its slots are \\['velocity'\\]"):
        opt.get_slot(kernel, "m")


def test_slot_names_ignore_the_callers_name_scope_and_stay_unique():
    kernel, _, loss = _dense()
    with gn.name_scope("training"):
        first = gn.optim.Adam()
        first.minimize(loss)
    second = gn.optim.Adam()
    second.minimize(loss)
    assert first.get_slot(kernel, "m").name == "dense/kernel/adam_m"
    assert second.name == "adam_1"
    assert second.get_slot(kernel, "m").name == "dense/kernel/adam_1_m"


def test_float32_parameters_keep_their_dtype():
    kernel, _, loss = _dense("float32")
    train = gn.optim.AdamW(1e-2).minimize(loss)
    sess = gn.Session()
    for _ in range(3):
        sess.run(train)
    assert sess.get(kernel).dtype == np.float32
    assert np.isfinite(sess.get(kernel)).all()


def test_compute_and_apply_gradients_split_like_tf1():
    kernel, bias, loss = _dense()
    opt = gn.optim.SGD(LR)
    pairs = opt.compute_gradients(loss)
    assert [v for _, v in pairs] == [kernel, bias]
    train = opt.apply_gradients([(g * 2.0, v) for g, v in pairs])
    sess = gn.Session()
    g_kernel = sess.run(pairs[0][0])
    sess.run(train)
    np.testing.assert_allclose(sess.get(kernel), 1.0 - LR * 2.0 * g_kernel)


def test_var_list_limits_the_update_and_unconnected_variables_are_skipped():
    kernel, bias, loss = _dense()
    unused = gn.variable(np.ones(2), name="unused")
    opt = gn.optim.SGD(LR)
    train = opt.minimize(loss, var_list=[kernel, unused])
    sess = gn.Session()
    sess.run(train)
    np.testing.assert_array_equal(sess.get(bias), 0.0)
    np.testing.assert_array_equal(sess.get(unused), 1.0)
    assert not np.allclose(sess.get(kernel), 1.0)
    with pytest.raises(ValueError, match="no gradients"):
        opt.minimize(loss, var_list=[unused])


def test_bad_inputs_name_the_problem():
    kernel, _, loss = _dense()
    counter = gn.variable(np.int64(0), name="counter")
    with pytest.raises(TypeError, match="only floating-point variables"):
        gn.optim.SGD().minimize(loss, var_list=[counter])
    with pytest.raises(TypeError, match="can only update variables"):
        gn.optim.SGD().minimize(loss, var_list=[loss])
    with pytest.raises(gn.ShapeError, match="does not match variable 'dense/kernel'"):
        gn.optim.SGD().apply_gradients([(gn.constant(np.ones(3)), kernel)])
    with pytest.raises(ValueError, match="depends on no trainable variable"):
        gn.optim.SGD().minimize(gn.sum(gn.constant(np.ones(2))))


def test_weight_decay_can_exclude_variables_by_name():
    kernel, bias, _ = _dense()
    loss = gn.sum(kernel * 0.0) + gn.sum(bias * 0.0)
    opt = gn.optim.SGD(0.5, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    sess = gn.Session()
    sess.set(bias, np.ones(3))
    sess.run(opt.minimize(loss))
    np.testing.assert_allclose(sess.get(kernel), 0.75)
    np.testing.assert_allclose(sess.get(bias), 1.0)


def test_learning_rate_is_a_node_that_can_be_fetched_and_set():
    kernel, _, loss = _dense()
    opt = gn.optim.SGD(0.25)
    train = opt.minimize(loss, var_list=[kernel])
    sess = gn.Session()
    assert sess.run(opt.learning_rate) == np.float32(0.25)
    opt.set_learning_rate(sess, 0.0)
    assert opt.get_learning_rate(sess) == 0.0
    sess.run(train)
    np.testing.assert_array_equal(sess.get(kernel), 1.0)


def test_learning_rate_may_be_a_fed_node():
    kernel, _, loss = _dense()
    lr = gn.placeholder((), "float32", name="lr")
    opt = gn.optim.SGD(lr)
    assert opt.learning_rate is lr
    sess = gn.Session()
    g = sess.run(gn.gradients(loss, kernel))
    sess.run(opt.minimize(loss, var_list=[kernel]), {lr: 0.125})
    np.testing.assert_allclose(sess.get(kernel), 1.0 - 0.125 * g)
    with pytest.raises(TypeError, match="not held in a variable"):
        opt.set_learning_rate(sess, 0.1)
    with pytest.raises(gn.ShapeError, match="scalar float node"):
        gn.optim.SGD(gn.placeholder((2,), "float32"))


def test_get_by_name():
    assert isinstance(gn.optim.get("adam"), gn.optim.Adam)
    assert isinstance(gn.optim.get("AdamW"), gn.optim.AdamW)
    assert gn.optim.get("sgd", learning_rate=0.5).learning_rate.op.initial_value == 0.5
    opt = gn.optim.RMSprop()
    assert gn.optim.get(opt) is opt
    with pytest.raises(ValueError, match="did you mean 'adam'.*valid names are: adagrad, "
                                         "adam, adamw, momentum, nesterov, rmsprop, sgd"):
        gn.optim.get("adm")


# -------------------------------------------------------------- schedules


def schedule_values(schedule, steps):
    step = gn.placeholder((), "int64", name="step")
    lr = schedule(step)
    sess = gn.Session()
    return np.array([sess.run(lr, {step: s}) for s in steps], dtype=np.float64)


STEPS = [0, 1, 5, 9, 10, 11, 25, 99, 100, 150]


def cosine(step, lr, decay_steps, alpha):
    fraction = min(step, decay_steps) / decay_steps
    return lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * fraction)) + alpha)


def warmup_cosine(step, start, peak, warmup, decay_steps, alpha):
    if step < warmup:
        return start + (peak - start) * step / warmup
    return cosine(step - warmup, peak, decay_steps, alpha)


SCHEDULES = {
    "constant": (schedules.Constant(0.3), lambda s: 0.3),
    "step": (schedules.StepDecay(0.5, step_size=10, gamma=0.5),
             lambda s: 0.5 * 0.5 ** (s // 10)),
    "piecewise": (schedules.PiecewiseConstantDecay([10, 25], [1.0, 0.5, 0.1]),
                  lambda s: 1.0 if s <= 10 else 0.5 if s <= 25 else 0.1),
    "exponential": (schedules.ExponentialDecay(0.1, decay_steps=20, decay_rate=0.5),
                    lambda s: 0.1 * 0.5 ** (s / 20)),
    "exponential_staircase": (
        schedules.ExponentialDecay(0.1, decay_steps=20, decay_rate=0.5, staircase=True),
        lambda s: 0.1 * 0.5 ** (s // 20)),
    "cosine": (schedules.CosineDecay(0.2, decay_steps=100), lambda s: cosine(s, 0.2, 100, 0.0)),
    "cosine_alpha": (schedules.CosineDecay(0.2, decay_steps=50, alpha=0.1),
                     lambda s: cosine(s, 0.2, 50, 0.1)),
    "warmup_cosine": (schedules.WarmupCosineDecay(0.4, warmup_steps=10, decay_steps=80,
                                                  alpha=0.05, initial_learning_rate=0.01),
                      lambda s: warmup_cosine(s, 0.01, 0.4, 10, 80, 0.05)),
    "keras_cosine_warmup": (schedules.CosineDecay(0.0, 90, warmup_target=1.0, warmup_steps=10),
                            lambda s: warmup_cosine(s, 0.0, 1.0, 10, 90, 0.0)),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_values_match_closed_forms(name):
    schedule, closed_form = SCHEDULES[name]
    got = schedule_values(schedule, STEPS)
    np.testing.assert_allclose(got, [closed_form(s) for s in STEPS], rtol=2e-6, atol=1e-7)


def test_schedule_drives_the_optimizer_from_its_step_counter():
    w = gn.variable(np.array([1.0, -1.0]), name="w")
    loss = gn.sum(w * w) * 0.5  # gradient w
    schedule = schedules.ExponentialDecay(0.5, decay_steps=2, decay_rate=0.5)
    opt = gn.optim.SGD(schedule)
    train = opt.minimize(loss)
    sess = gn.Session()
    expected = np.array([1.0, -1.0])
    for step in range(5):
        lr = float(np.float32(0.5 * 0.5 ** (step / 2)))
        assert sess.run(opt.learning_rate) == pytest.approx(lr, rel=1e-6)
        sess.run(train)
        expected = expected - np.float32(lr) * expected
        np.testing.assert_allclose(sess.get(w), expected, rtol=1e-6)
    assert opt.learning_rate not in opt.variables()


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match="decay_steps must be > 0"):
        schedules.CosineDecay(0.1, 0)
    with pytest.raises(ValueError, match="one more value than boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0])


def test_reduce_on_plateau_lowers_a_float_learning_rate():
    w = gn.variable(np.ones(2), name="w")
    opt = gn.optim.SGD(1.0)
    opt.minimize(gn.sum(w * w))
    plateau = schedules.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=2,
                                          min_lr=0.2)
    sess = gn.Session()
    metrics = [5.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    rates = [plateau.update(sess, m) for m in metrics]
    # Keras' counting: two epochs without improvement halve the rate; the two
    # cooldown epochs after it reset the count (the second also counts as a wait).
    assert rates == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2,
                                   0.2, 0.2, 0.2, 0.2])
    assert opt.get_learning_rate(sess) == pytest.approx(0.2)


def test_reduce_on_plateau_in_max_mode_and_with_a_schedule():
    opt = gn.optim.Adam(0.1)
    plateau = schedules.ReduceLROnPlateau(opt, factor=0.1, patience=1, mode="max")
    sess = gn.Session()
    assert plateau.update(sess, 0.5) == pytest.approx(0.1)
    assert plateau.update(sess, 0.6) == pytest.approx(0.1)
    assert plateau.update(sess, 0.6) == pytest.approx(0.01)
    with pytest.raises(TypeError, match="not held in a variable"):
        schedules.ReduceLROnPlateau(gn.optim.SGD(schedules.Constant(0.1)))
