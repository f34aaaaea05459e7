"""Models as layers, feature extractors, freezing and per-part optimizers."""

import numpy as np
import pytest

import graphnet as gn

layers = gn.layers


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def _base(norm=True):
    return gn.Sequential([
        layers.Dense(8, activation="relu", input_shape=(6,), name="hidden"),
        *([layers.BatchNormalization(name="norm")] if norm else []),
        layers.Dense(4, activation="relu", name="features"),
        layers.Dense(2, activation="softmax", name="old_head"),
    ], name="base")


def _trained_base():
    base = _base()
    base.compile(optimizer=gn.optim.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x, y = _data()
    base.fit(x, y, epochs=2, batch_size=16, verbose=0, seed=0)
    return base


def test_get_layer_by_name_and_index():
    base = _base()
    assert base.get_layer("features") is base.layers[2]
    assert base.get_layer(index=-1).name == "old_head"
    with pytest.raises(ValueError, match="no layer named 'feature'.*'features'"):
        base.get_layer("feature")
    with pytest.raises(IndexError, match="has 4 layers; no index 4"):
        base.get_layer(index=4)
    with pytest.raises(ValueError, match="either name= or index="):
        base.get_layer()


def test_a_feature_extractor_shares_the_trained_weights():
    base = _trained_base()
    features = gn.Model(base.inputs, base.get_layer("features").output, name="extractor")
    assert [layer.name for layer in features.layers] == ["hidden", "norm", "features"]
    x, _ = _data(10, seed=1)
    h = features.predict(x)
    # the same numbers by hand, from the base's trained weights
    w = {v.name: base.session.get(v) for v in base.weights}
    z = np.maximum(x @ w["hidden/kernel"] + w["hidden/bias"], 0)
    z = (z - w["norm/moving_mean"]) / np.sqrt(w["norm/moving_variance"] + 1e-3)
    z = z * w["norm/gamma"] + w["norm/beta"]
    expected = np.maximum(z @ w["features/kernel"] + w["features/bias"], 0)
    np.testing.assert_allclose(h, expected, rtol=1e-5, atol=1e-6)


def test_layer_input_and_output_need_a_call():
    dense = layers.Dense(2)
    with pytest.raises(ValueError, match="has not been called .* no output"):
        _ = dense.output
    inputs = gn.Input((3,))
    out = dense(inputs)
    assert dense.input is inputs and dense.output is out


def test_a_model_is_a_layer_of_another_model():
    base = _trained_base()
    features = gn.Model(base.inputs, base.get_layer("features").output)
    head = gn.Sequential([features, layers.Dense(3, activation="softmax", name="new_head")])
    assert head.inputs.shape == (None, 6) and head.outputs.shape == (None, 3)
    assert len(head.weights) == len(features.weights) + 2
    x, _ = _data(7, seed=2)
    h = features.predict(x)
    w = head.get_layer("new_head").weights
    logits = h @ head.session.get(w[0]) + head.session.get(w[1])
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(head.predict(x), expected, rtol=1e-5, atol=1e-6)
    # functional style too
    inputs = gn.Input((6,))
    functional = gn.Model(inputs, layers.Dense(3, name="other")(features(inputs)))
    assert functional.layers[0] is features


def test_a_nested_model_saves_and_loads(tmp_path):
    base = _trained_base()
    features = gn.Model(base.inputs, base.get_layer("features").output, name="extractor")
    head = gn.Sequential([features, layers.Dense(3, activation="softmax", name="new_head")])
    head.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    head.save(tmp_path / "nested.npz")
    loaded = gn.load_model(tmp_path / "nested.npz")
    assert type(loaded.layers[0]) is gn.Model and loaded.layers[0].name == "extractor"
    x, _ = _data(5, seed=3)
    np.testing.assert_allclose(loaded.predict(x), head.predict(x), rtol=1e-6)


def _train_graph(model, x, y):
    model.train_on_batch(x, y)
    return model._graphs["train"]


def test_freezing_removes_the_frozen_parts_backward_and_its_updates():
    """Frozen base: the training graph loses exactly the backward nodes only the
    base's weights need, and the optimizer's nodes for them (SGD: 2 per weight).
    (No batch norm here: frozen, it would also change the forward graph.)"""
    x, y = _data(16)
    unfrozen = gn.Sequential([_base(norm=False), layers.Dense(2, activation="softmax")])
    unfrozen.compile(optimizer=gn.optim.SGD(0.1), loss="sparse_categorical_crossentropy")
    full = len(gn.Graph([_train_graph(unfrozen, x, y)["update"]]).nodes)

    base = _base(norm=False)
    frozen = gn.Sequential([base, layers.Dense(2, activation="softmax")])
    base.trainable = False
    frozen.compile(optimizer=gn.optim.SGD(0.1), loss="sparse_categorical_crossentropy")
    graph = _train_graph(frozen, x, y)
    reduced = len(gn.Graph([graph["update"]]).nodes)

    head = frozen.layers[1].weights
    base_weights = base.weights
    loss = graph["loss"]
    backward_all = len(gn.Graph(gn.gradients(loss, head + base_weights)).nodes)
    backward_head = len(gn.Graph(gn.gradients(loss, head)).nodes)
    assert backward_all > backward_head
    assert full - reduced == (backward_all - backward_head) + 2 * len(base_weights)
    # and the optimizer keeps no state for frozen weights
    assert frozen.trainable_weights == head


def test_frozen_weights_do_not_change_and_get_no_slots():
    x, y = _data()
    base = _trained_base()
    before = base.get_weights()
    base.trainable = False
    model = gn.Sequential([base, layers.Dense(2, activation="softmax")])
    opt = gn.optim.Adam(1e-2)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=0)
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)     # moving averages too: BN runs in inference
    assert set(opt._slots) == set(model.layers[1].weights)
    assert base.get_layer("norm").updates == []
    # unfreeze the top block and compile again: now it trains
    base.get_layer("old_head").trainable = True
    base.trainable = True
    model.compile(optimizer=gn.optim.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=0)
    assert not np.array_equal(before[0], base.get_weights()[0])


def test_a_layer_frozen_at_construction_can_be_unfrozen():
    dense = layers.Dense(2, trainable=False, input_shape=(3,))
    model = gn.Sequential([dense])
    assert model.trainable_weights == [] and len(model.weights) == 2
    dense.trainable = True
    assert model.trainable_weights == dense.weights


def test_everything_frozen_is_a_clear_error():
    model = _base()
    model.trainable = False
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = _data(8)
    with pytest.raises(ValueError, match="every weight is frozen"):
        model.train_on_batch(x, y)


def test_summary_counts_frozen_weights_as_non_trainable():
    model = _base()
    model.get_layer("hidden").trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    # 134 in all: hidden 56 (frozen), norm 16 + 16 moving averages, features 36, old_head 10
    assert "Total params: 134" in text and "Trainable params: 62" in text
    assert "Non-trainable params: 72" in text


def test_multi_optimizer_uses_each_rule_for_its_layers():
    x, y = _data(32)
    model = _base()
    slow, fast = gn.optim.SGD(0.0), gn.optim.SGD(0.1)
    bottom = [model.get_layer("hidden"), model.get_layer("norm")]
    top = ["features", "old_head"]       # names work too
    model.compile(optimizer=gn.optim.MultiOptimizer([(slow, bottom), (fast, top)]),
                  loss="sparse_categorical_crossentropy")
    before = model.get_weights()
    model.train_on_batch(x, y)
    after = model.get_weights()
    np.testing.assert_array_equal(before[0], after[0])      # hidden: rate 0
    assert not np.array_equal(before[-2], after[-2])          # old_head: rate 0.1
    assert model.session.run(slow.iterations) == 1 and model.session.run(fast.iterations) == 1
    slow.set_learning_rate(model.session, 0.01)
    model.learning_rate = 0.02          # scales both, keeping their ratio
    assert slow.get_learning_rate(model.session) == pytest.approx(0.02)
    assert fast.get_learning_rate(model.session) == pytest.approx(0.2)


def test_multi_optimizer_state_saves_and_resumes(tmp_path):
    x, y = _data(64)
    model = _base()
    pairs = [(gn.optim.Adam(1e-3), ["hidden", "norm"]), (gn.optim.Adam(1e-2), ["features",
                                                                              "old_head"])]
    model.compile(optimizer=gn.optim.MultiOptimizer(pairs), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, seed=0)
    model.save(tmp_path / "multi.npz")
    loaded = gn.load_model(tmp_path / "multi.npz")
    assert isinstance(loaded.optimizer, gn.optim.MultiOptimizer)
    model.fit(x, y, epochs=2, initial_epoch=1, batch_size=16, verbose=0, seed=0)
    loaded.fit(x, y, epochs=2, initial_epoch=1, batch_size=16, verbose=0, seed=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_multi_optimizer_needs_every_weight_covered():
    model = _base()
    model.compile(optimizer=gn.optim.MultiOptimizer([(gn.optim.SGD(), ["hidden"])]),
                  loss="sparse_categorical_crossentropy")
    x, y = _data(8)
    with pytest.raises(ValueError, match="weight 'norm/gamma' belongs to none of the layers"):
        model.train_on_batch(x, y)
