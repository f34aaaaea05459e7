"""Sequential and functional models: compile, fit, evaluate, predict (graphnet/models.py)."""

import numpy as np
import pytest

import graphnet as gn


def blobs(n=240, classes=3, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    centers = 4 * np.eye(classes, dim)
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 1, (n, dim))
    return x.astype(np.float32), y.astype(np.uint8)


def mlp(**compile_args):
    model = gn.Sequential([
        gn.layers.Dense(16, activation="relu", input_shape=(6,)),
        gn.layers.Dense(3, activation="softmax"),
    ])
    model.compile(**{"optimizer": gn.optim.Adam(0.02), "loss": "sparse_categorical_crossentropy",
                     "metrics": ["accuracy"], **compile_args})
    return model


def test_fit_evaluate_predict_on_separable_data():
    x, y = blobs()
    model = mlp()
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0, validation_split=0.25)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 15
    assert history.history["loss"][-1] < history.history["loss"][0] / 2
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert accuracy >= 0.95
    probs = model.predict(x[:7])
    assert probs.shape == (7, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)


def test_predict_agrees_batch_by_batch_and_keeps_a_plan_per_batch_shape():
    x, _ = blobs(70)
    model = mlp()
    whole = model.predict(x, batch_size=70)
    for batch_size in (1, 32):   # views of x, batch by batch, and the last one shorter
        np.testing.assert_allclose(model.predict(x, batch_size=batch_size), whole, rtol=1e-6)
    data = gn.data.Dataset.from_arrays(x).batch(32)
    np.testing.assert_allclose(model.predict(data), whole, rtol=1e-6)
    compiled = len(model.session.cache_info())
    for row in x[:5]:
        model.predict(row[None])
    assert len(model.session.cache_info()) == compiled   # batch 1's plan, kept
    first = model.predict(x[:1])
    first[...] = 0   # a copy: the next call is not changed
    assert model.predict(x[:1]).any()
    with pytest.raises(ValueError, match="no data"):
        model.predict(x[:0])


def test_functional_model_matches_its_layers():
    x, y = blobs()
    inputs = gn.Input((6,))
    hidden = gn.layers.Dense(16, activation="tanh")(inputs)
    outputs = gn.layers.Dense(3, activation="softmax")(hidden)
    model = gn.Model(inputs, outputs)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=15, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] >= 0.95


def test_training_step_compiles_once_plus_once_for_the_last_batch():
    x, y = blobs(100)
    model = mlp()
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)  # batches of 32, 32, 32, 4
    assert len(model.session._plans) == 2


def test_summary_lists_layers_shapes_and_parameters():
    lines = []
    mlp().summary(print_fn=lines.append)
    text = lines[0]
    assert "(None, 16)" in text and "112" in text and "51" in text
    assert "Total params: 163" in text


def test_the_tutorials_missing_flatten_fails_at_compile_time_with_advice():
    images = np.zeros((8, 28, 28, 1), np.float32)
    labels = np.zeros(8, np.uint8)
    model = gn.Sequential([
        gn.layers.Dense(128, activation="relu", input_shape=(28, 28, 1)),
        gn.layers.Dense(10, activation="softmax"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    with pytest.raises(gn.ShapeError) as err:
        model.fit(images, labels, verbose=0)
    message = str(err.value)
    assert "(None, 28, 28, 10)" in message and "(None,)" in message
    assert "Flatten()" in message


INFINITIES_AND_A_NAN = np.tile([np.inf, -np.inf], (3, 3))
INFINITIES_AND_A_NAN[1, 2] = np.nan


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((5, 6)), np.zeros(4), "different lengths \\(5 and 4\\)"),
    (np.zeros((0, 6)), np.zeros(0), "no data"),
    (np.full((3, 6), np.nan), np.zeros(3), "contains NaN"),
    (INFINITIES_AND_A_NAN, np.zeros(3), "contains NaN \\(first at index \\[1, 2\\]\\)"),
])
def test_bad_training_data_is_refused_clearly(x, y, message):
    model = mlp()
    before = model.get_weights()
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("labels, message", [
    (np.full(8, 0.5), "takes integer class ids as labels; y is float64"),
    (np.full(8, 3), "labels run from 3 to 3, but the model has 3 output classes"),
    (np.full(8, -1), "labels run from -1 to -1"),
])
def test_bad_sparse_labels_are_refused_before_training(labels, message):
    x, _ = blobs(8)
    with pytest.raises(ValueError, match=message):
        mlp().fit(x, labels, verbose=0)


def test_wrong_label_shape_for_the_loss_is_a_shape_error():
    x, y = blobs(20)
    with pytest.raises(gn.ShapeError, match="does not fit labels"):
        mlp().fit(x, np.eye(3)[y][:, :, None], verbose=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "adamm"}, "unknown optimizer 'adamm'.*valid names"),
    ({"loss": "sparse_categorical"}, "unknown loss 'sparse_categorical'.*valid names"),
    ({"metrics": ["acuracy"]}, "unknown metric 'acuracy'; valid names"),
])
def test_unknown_names_list_the_valid_ones(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mlp(**kwargs)


def test_unknown_activation_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'rleu'; valid names: elu, gelu"):
        gn.layers.Dense(3, activation="rleu")


def test_train_and_test_on_batch():
    x, y = blobs(64)
    model = mlp()
    first = model.test_on_batch(x, y)
    for _ in range(30):
        model.train_on_batch(x, y)
    last = model.test_on_batch(x, y)
    assert last[0] < first[0] and 0 <= last[1] <= 1


def test_weights_round_trip_through_lists_and_files(tmp_path):
    x, y = blobs(64)
    model = mlp()
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "weights.npz"
    model.save_weights(path)
    saved = model.get_weights()
    predictions = model.predict(x)
    model.set_weights([np.zeros_like(w) for w in saved])
    assert not np.allclose(model.predict(x), predictions)
    model.load_weights(path)
    np.testing.assert_allclose(model.predict(x), predictions, rtol=1e-6)


def test_fit_accepts_a_dataset():
    x, y = blobs()
    data = gn.data.Dataset.from_arrays(x, y).shuffle(0).batch(16)
    model = mlp()
    history = model.fit(data, epochs=10, verbose=0)
    assert history.history["accuracy"][-1] >= 0.9


def test_verbose_modes(capsys):
    x, y = blobs(64)
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=2, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 2/2" in out and "loss:" in out and "accuracy:" in out
    model.fit(x, y, epochs=1, verbose=1)
    captured = capsys.readouterr()
    assert "Epoch 1/1" in captured.err + captured.out and "step" in captured.err + captured.out


def test_one_hot_labels_for_a_sparse_loss_say_what_to_change():
    model = gn.Sequential([gn.layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.zeros((100, 4), np.float32)
    y = np.eye(3)[np.arange(100) % 3]
    with pytest.raises(ValueError, match=r"labels look one-hot \(shape \(100, 3\)\).*"
                                         r"loss='categorical_crossentropy'.*class ids"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="labels look one-hot"):
        model.evaluate(x, y, verbose=0)
