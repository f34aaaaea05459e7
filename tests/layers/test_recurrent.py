"""SimpleRNN, LSTM and GRU (graphnet/layers/recurrent.py): float64 gradient
checks over several steps, Keras' equations against NumPy, masking, the
unrolled graph's size, rank errors, and a small model that learns."""

import functools

import numpy as np
import pytest

import graphnet as gn
from graphnet import layers
from graphnet.testing import check_layer

RECURRENT = {
    "simple_rnn": functools.partial(layers.SimpleRNN, 3),
    "lstm": functools.partial(layers.LSTM, 3),
    "gru": functools.partial(layers.GRU, 3),
    "gru-reset-before": functools.partial(layers.GRU, 3, reset_after=False),
}


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def numpy_rnn(kind, x, kernel, recurrent, bias, mask=None):
    """Keras' equations step by step; returns (outputs per step, final states)."""
    units = recurrent.shape[0]
    h = c = np.zeros((x.shape[0], units))
    outputs = []
    for t in range(x.shape[1]):
        xt, old = x[:, t], (h, c)
        if kind == "simple_rnn":
            h = np.tanh(xt @ kernel + h @ recurrent + bias)
        elif kind == "lstm":
            i, f, g, o = np.split(xt @ kernel + h @ recurrent + bias, 4, axis=-1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        elif kind == "gru":   # reset_after=True: bias rows are (input, recurrent)
            xz, xr, xh = np.split(xt @ kernel + bias[0], 3, axis=-1)
            hz, hr, hh = np.split(h @ recurrent + bias[1], 3, axis=-1)
            z, r = sigmoid(xz + hz), sigmoid(xr + hr)
            h = z * h + (1 - z) * np.tanh(xh + r * hh)
        else:                 # reset_after=False
            xz, xr, xh = np.split(xt @ kernel + bias, 3, axis=-1)
            hz, hr = np.split(h @ recurrent[:, :2 * units], 2, axis=-1)
            z, r = sigmoid(xz + hz), sigmoid(xr + hr)
            h = z * h + (1 - z) * np.tanh(xh + (r * h) @ recurrent[:, 2 * units:])
        if mask is not None:
            keep = mask[:, t:t + 1]
            h, c = np.where(keep, h, old[0]), np.where(keep, c, old[1])
        outputs.append(h)
    return np.stack(outputs, axis=1), ((h, c) if kind == "lstm" else (h,))


@pytest.mark.parametrize("kind", RECURRENT)
@pytest.mark.parametrize("options", [
    {}, {"return_sequences": True}, {"return_sequences": True, "return_state": True}],
    ids=["last", "sequences", "sequences-and-state"])
def test_gradients_over_several_steps(kind, options, rng):
    x = rng.standard_normal((2, 4, 2))
    check_layer(functools.partial(RECURRENT[kind], **options), x)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradients_with_a_mask(kind, rng):
    x, mask = rng.standard_normal((2, 3, 2)), np.array([[1, 1, 0], [1, 0, 1]], bool)
    check_layer(functools.partial(RECURRENT[kind], return_sequences=True), x,
                call_kwargs={"mask": mask})


def run_layer(rng, kind, x, mask=None, **options):
    """The layer's outputs and the NumPy reference's, with a random bias."""
    layer = RECURRENT[kind](return_sequences=True, return_state=True, dtype="float64", **options)
    inp = gn.placeholder((None,) + x.shape[1:], "float64")
    outs = layer(inp, mask=None if mask is None else gn.constant(mask))
    sess = gn.Session()
    bias = rng.standard_normal(layer.bias.shape)
    sess.set(layer.bias, bias)
    got = sess.run(outs, {inp: x})
    expected = numpy_rnn(kind, x, sess.get(layer.kernel), sess.get(layer.recurrent_kernel), bias,
                         mask)
    return got, expected


@pytest.mark.parametrize("kind", RECURRENT)
def test_matches_keras_equations_in_numpy(kind, rng):
    x = rng.standard_normal((3, 4, 2))
    (sequence, *states), (expected_sequence, expected_states) = run_layer(rng, kind, x)
    np.testing.assert_allclose(sequence, expected_sequence, rtol=1e-10, atol=1e-12)
    assert len(states) == len(expected_states)
    for got, expected in zip(states, expected_states, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", RECURRENT)
def test_masked_steps_carry_the_state_on(kind, rng):
    x = rng.standard_normal((2, 4, 2))
    mask = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], bool)
    (sequence, *states), (expected_sequence, expected_states) = run_layer(rng, kind, x, mask)
    np.testing.assert_allclose(sequence, expected_sequence, rtol=1e-10, atol=1e-12)
    # right padding: the final state is the state after the last real step
    np.testing.assert_allclose(states[0][0], sequence[0, 1])
    np.testing.assert_allclose(sequence[0, 2], sequence[0, 1])


def test_lstm_starts_with_a_forget_bias_of_one():
    lstm = layers.LSTM(2)
    lstm(gn.placeholder((None, 3, 1)))
    np.testing.assert_array_equal(gn.Session().get(lstm.bias), [0, 0, 1, 1, 0, 0, 0, 0])
    assert [w.name for w in lstm.weights] == ["lstm/kernel", "lstm/recurrent_kernel", "lstm/bias"]
    assert [w.shape for w in lstm.weights] == [(1, 8), (2, 8), (8,)]


def test_gru_reset_after_keeps_two_bias_rows():
    gru = layers.GRU(4)
    gru(gn.placeholder((None, 3, 2)))
    assert gru.bias.shape == (2, 12) and gru.count_params() == 2 * 12 + 4 * 12 + 24


def test_unrolled_graph_has_one_input_matmul_and_one_per_later_step():
    x = gn.placeholder((None, 6, 3))
    out = layers.LSTM(4)(x)
    matmuls = [n for n in gn.Graph([out]) if n.op.kind == "matmul"]
    assert len(matmuls) == 6   # x @ kernel once, then h @ recurrent_kernel for steps 2..6


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.LSTM, layers.GRU])
def test_two_dimensional_input_names_the_expected_layout(cls):
    name = cls.__name__
    with pytest.raises(gn.ShapeError, match=rf"{name} '\w+' expects 3-D input \(batch, time, "
                                            rf"features\), got \(None, 20\); add "
                                            rf"Reshape\(\(20, 1\)\)"):
        cls(4)(gn.placeholder((None, 20)))


def test_unknown_number_of_steps_is_refused():
    with pytest.raises(gn.ShapeError, match=r"LSTM 'lstm' unrolls a fixed number of steps.*"
                                            r"\(None, None, 3\)"):
        layers.LSTM(4)(gn.placeholder((None, None, 3)))


def test_mask_of_the_wrong_shape():
    with pytest.raises(gn.ShapeError, match=r"mask must be \(batch, time\) = \(None, 5\), got "
                                            r"\(None, 4\)"):
        layers.GRU(2)(gn.placeholder((None, 5, 1)), mask=gn.placeholder((None, 4), "bool"))


def test_functional_model_replays_an_unmasked_call():
    inputs = gn.Input((5, 2))
    outputs = layers.Dense(1)(layers.GRU(3, return_sequences=True)(inputs))
    model = gn.Model(inputs, outputs)
    assert [type(layer).__name__ for layer in model.layers] == ["GRU", "Dense"]
    assert model.predict(np.ones((2, 5, 2), np.float32)).shape == (2, 5, 1)


@pytest.mark.parametrize("cls", [layers.LSTM, layers.GRU])
def test_learns_the_sign_of_a_sequence_sum(cls, rng):
    """A tiny recurrent model learns whether x_1 + ... + x_6 > 0 (about 97% here)."""
    x = rng.standard_normal((768, 6, 1)).astype(np.float32)
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    model = gn.Sequential([cls(8, input_shape=(6, 1)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=gn.optim.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x[:512], y[:512], batch_size=32, epochs=15, verbose=0, seed=0)
    _, accuracy = model.evaluate(x[512:], y[512:], verbose=0)
    assert accuracy >= 0.93
