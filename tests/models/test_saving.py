"""Whole-model checkpoints and weights (graphnet/models/saving.py)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import graphnet as gn
from graphnet.io import CheckpointError
from graphnet.serialization import SerializationError, serialize

FORMATS = ["run.npz", "run.safetensors", "run"]


def _data(n=192, features=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def _mlp(compile=True):
    model = gn.Sequential([
        gn.layers.Dense(16, activation="relu", input_shape=(6,)),
        gn.layers.BatchNormalization(),
        gn.layers.Dense(2, activation="softmax", kernel_regularizer=gn.regularizers.L2(1e-3)),
    ])
    if compile:
        schedule = gn.optim.schedules.CosineDecay(1e-2, 60)
        model.compile(optimizer=gn.optim.Adam(schedule), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    return model


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(p, q) for p, q in zip(a, b))


# ------------------------------------------------------- exact resumption


@pytest.mark.parametrize("name", FORMATS)
def test_save_load_and_resume_equals_training_straight_through(tmp_path, name):
    x, y = _data()
    straight = _mlp()
    start = straight.get_weights()
    straight.fit(x, y, epochs=4, batch_size=32, verbose=0, seed=3)

    first = _mlp()
    first.set_weights(start)
    first.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=3)
    first.save(tmp_path / name)
    resumed = gn.load_model(tmp_path / name)
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=32, verbose=0, seed=3)
    assert _same(resumed.get_weights(), straight.get_weights())
    assert resumed.session.run(resumed.optimizer.iterations) == 4 * 6


def test_resume_in_a_fresh_process(tmp_path):
    x, y = _data()
    np.savez(tmp_path / "data.npz", x=x, y=y)
    straight = _mlp()
    start = straight.get_weights()
    straight.fit(x, y, epochs=3, batch_size=32, verbose=0, seed=1)
    first = _mlp()
    first.set_weights(start)
    first.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=1)
    first.save(tmp_path / "run.safetensors")
    script = textwrap.dedent(f"""
        import numpy as np, graphnet as gn
        data = np.load({str(tmp_path / "data.npz")!r})
        model = gn.load_model({str(tmp_path / "run.safetensors")!r})
        model.fit(data["x"], data["y"], epochs=3, initial_epoch=1, batch_size=32, verbose=0,
                  seed=1)
        model.save_weights({str(tmp_path / "after.npz")!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    check = _mlp(compile=False)
    check.load_weights(tmp_path / "after.npz")
    assert _same(check.get_weights(), straight.get_weights())


def test_a_loaded_model_keeps_its_architecture_and_compile_settings(tmp_path):
    model = _mlp()
    model.save(tmp_path / "run.npz")
    loaded = gn.load_model(tmp_path / "run.npz")
    assert [type(layer).__name__ for layer in loaded.layers] == \
        ["Dense", "BatchNormalization", "Dense"]
    assert [serialize(layer.get_config()) for layer in loaded.layers] == \
        [serialize(layer.get_config()) for layer in model.layers]
    assert type(loaded.optimizer) is gn.optim.Adam
    assert loaded._compiled["loss_name"] == "sparse_categorical_crossentropy"
    assert [m.name for m in loaded._compiled["metrics"]] == ["accuracy"]
    x, _ = _data(8)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_functional_model_with_a_shared_layer_round_trips(tmp_path):
    inputs = gn.Input((6,))
    shared = gn.layers.Dense(6, activation="tanh", name="shared")
    h = shared(shared(inputs))
    outputs = gn.layers.Dense(3, name="out")(h)
    model = gn.Model(inputs, outputs, name="twice")
    model.save(tmp_path / "f.npz")
    loaded = gn.load_model(tmp_path / "f.npz")
    assert [layer.name for layer in loaded.layers] == ["shared", "out"]
    assert len(loaded.weights) == 4
    x, _ = _data(5)
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), rtol=1e-6)


def test_load_model_compile_false_gives_an_uncompiled_model(tmp_path):
    _mlp().save(tmp_path / "run.npz")
    loaded = gn.load_model(tmp_path / "run.npz", compile=False)
    with pytest.raises(RuntimeError, match="must be compiled first"):
        _ = loaded.optimizer


# ------------------------------------------- weights by structure or name


def test_load_weights_matches_by_structure_not_by_global_names(tmp_path):
    """The defect: a model built later in the same process has other variable
    names (dense_2/kernel, ...) but the same structure, and must load."""
    first = _mlp(compile=False)
    first.save_weights(tmp_path / "w.npz")
    later = _mlp(compile=False)
    assert later.weights[0].name != first.weights[0].name
    later.load_weights(tmp_path / "w.npz")
    assert _same(later.get_weights(), first.get_weights())


def test_a_different_architecture_is_named_and_changes_nothing(tmp_path):
    _mlp(compile=False).save_weights(tmp_path / "w.npz")
    other = gn.Sequential([
        gn.layers.Dense(16, activation="relu", input_shape=(6,)),
        gn.layers.BatchNormalization(),
        gn.layers.Dense(3, activation="softmax", name="wider"),
    ])
    before = other.get_weights()
    with pytest.raises(CheckpointError) as error:
        other.load_weights(tmp_path / "w.npz")
    message = str(error.value)
    assert "layer 'wider' (Dense)" in message and "weight 'kernel'" in message
    assert "(16, 3) in the model and (16, 2) in the file" in message
    assert "the model's layers with weights: [dense_2 (Dense)" in message
    assert "the file's: [dense (Dense), batch_normalization (BatchNormalization)" in message
    assert _same(other.get_weights(), before)


def test_a_different_number_of_layers_is_named(tmp_path):
    _mlp(compile=False).save_weights(tmp_path / "w.npz")
    small = gn.Sequential([gn.layers.Dense(2, input_shape=(6,))])
    with pytest.raises(CheckpointError, match="the model has 1 layers with weights, the file 3"):
        small.load_weights(tmp_path / "w.npz")


def test_by_name_and_skip_mismatch(tmp_path):
    source = gn.Sequential([gn.layers.Dense(8, input_shape=(6,), name="features"),
                            gn.layers.Dense(2, name="head")])
    source.save_weights(tmp_path / "w.safetensors")
    target = gn.Sequential([gn.layers.Dense(8, input_shape=(6,), name="features"),
                            gn.layers.Dense(4, name="extra"),
                            gn.layers.Dense(5, name="head")])
    head_before = target.get_layer("head").weights
    before = {w: target.session.get(w) for w in head_before}
    with pytest.raises(CheckpointError, match="layer 'head'.*\\(4, 5\\) in the model and "
                                              "\\(8, 2\\) in the file"):
        target.load_weights(tmp_path / "w.safetensors", by_name=True)
    with pytest.warns(UserWarning, match="skip_mismatch: layer 'head'"):
        target.load_weights(tmp_path / "w.safetensors", by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(target.session.get(target.get_layer("features").weights[0]),
                                  source.session.get(source.get_layer("features").weights[0]))
    for w, value in before.items():
        np.testing.assert_array_equal(target.session.get(w), value)


def test_optimizer_state_mismatch_warns_or_refuses_under_strict(tmp_path):
    x, y = _data(64)
    trained = _mlp()
    trained.fit(x, y, epochs=1, verbose=0, seed=0)
    trained.save(tmp_path / "run.npz")
    other = _mlp(compile=False)
    other.compile(optimizer=gn.optim.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    before = other.get_weights()
    with pytest.raises(CheckpointError, match="strict=True"):
        other.load_weights(tmp_path / "run.npz", strict=True)
    assert _same(other.get_weights(), before)
    with pytest.warns(UserWarning, match="the optimizer starts fresh"):
        other.load_weights(tmp_path / "run.npz")
    assert _same(other.get_weights(), trained.get_weights())
    assert other.session.run(other.optimizer.iterations) == 0


def test_load_weights_into_a_compiled_model_restores_its_optimizer(tmp_path):
    x, y = _data(64)
    trained = _mlp()
    trained.fit(x, y, epochs=1, verbose=0, seed=0)
    trained.save(tmp_path / "run.npz")
    again = _mlp()
    again.load_weights(tmp_path / "run.npz")
    assert again.session.run(again.optimizer.iterations) == 2


# ------------------------------------------------------------- bad input


def test_saving_a_model_that_was_never_built(tmp_path):
    model = gn.Sequential([gn.layers.Dense(2)])
    with pytest.raises(ValueError, match="is not built yet, so save\\(\\) has nothing"):
        model.save(tmp_path / "run.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_model_refuses_a_weights_file(tmp_path):
    _mlp(compile=False).save_weights(tmp_path / "w.npz")
    with pytest.raises(CheckpointError, match="holds weights only"):
        gn.load_model(tmp_path / "w.npz")


class Scale(gn.layers.Layer):
    """A custom layer: x * a learned per-feature scale."""

    def __init__(self, init=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.scale = self.add_weight("scale", (input_shape[-1],), "ones")

    def call(self, x, training=False):
        return x * self.scale * self.init


def test_custom_layers_load_by_registered_name_only(tmp_path):
    model = gn.Sequential([Scale(2.0, input_shape=(3,))])
    with pytest.raises(SerializationError, match="@gn.register_layer"):
        model.save(tmp_path / "run.npz")
    registered = gn.register_layer(Scale)
    model.save(tmp_path / "run.npz")
    loaded = gn.load_model(tmp_path / "run.npz")
    assert type(loaded.layers[0]) is registered and loaded.layers[0].init == 2.0


def test_an_unknown_class_says_how_to_register_it(tmp_path):
    @gn.register_layer(name="Scale2")
    class Scale2(Scale):
        pass
    gn.Sequential([Scale2(input_shape=(3,))]).save(tmp_path / "run.npz")
    from graphnet import serialization
    del serialization._registry[("layers", "Scale2")]
    with pytest.raises(SerializationError, match=r"unknown layers class 'Scale2'.*"
                                                 r"@gn.register_layer.*custom_objects="):
        gn.load_model(tmp_path / "run.npz")
    loaded = gn.load_model(tmp_path / "run.npz", custom_objects={"Scale2": Scale2})
    assert type(loaded.layers[0]) is Scale2


def test_a_custom_layer_whose_init_takes_no_base_options(tmp_path):
    @gn.register_layer
    class Double(gn.layers.Layer):
        def __init__(self, factor=2.0):
            super().__init__()
            self.factor = factor

        def call(self, x, training=False):
            return x * self.factor

    layer = Double(3.0)
    layer.name, layer.trainable = "triple", False
    model = gn.Sequential([gn.layers.Dense(2, input_shape=(2,)), layer])
    model.save(tmp_path / "run.npz")
    loaded = gn.load_model(tmp_path / "run.npz").layers[1]
    assert (loaded.name, loaded.trainable, loaded.factor) == ("triple", False, 3.0)


# ------------------------------------------------------------- session


@pytest.mark.parametrize("name", FORMATS)
def test_session_save_and_restore(tmp_path, name):
    w = gn.variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
    step = gn.variable(np.int64(0), name="step", trainable=False)
    sess = gn.Session()
    sess.run(gn.group(gn.assign_add(w, 1.0), gn.assign_add(step, 1)))
    sess.save(tmp_path / name)
    other = gn.Session()
    other.restore(tmp_path / name)
    np.testing.assert_array_equal(other.get(w), np.arange(6).reshape(2, 3) + 1)
    assert other.get(step) == 1
    just_w = gn.Session()
    just_w.restore(tmp_path / name, var_list=[w])
    assert just_w.get(step) == 0


def test_session_restore_checks_everything_first(tmp_path):
    a = gn.variable(np.zeros(2, np.float32), name="a")
    b = gn.variable(np.zeros(3, np.float32), name="b")
    sess = gn.Session()
    sess.run(gn.group(gn.assign(a, np.ones(2, np.float32)), gn.assign(b, np.ones(3, np.float32))))
    sess.save(tmp_path / "v.npz")
    c = gn.variable(np.zeros(4, np.float32), name="c")
    fresh = gn.Session()
    with pytest.raises(CheckpointError, match="has no value for variable 'c'"):
        fresh.restore(tmp_path / "v.npz", var_list=[a, c])
    np.testing.assert_array_equal(fresh.get(a), np.zeros(2))
    with pytest.raises(ValueError, match="holds no variable values yet"):
        gn.Session().save(tmp_path / "empty.npz")
