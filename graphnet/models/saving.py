"""Whole-model checkpoints, and weights matched by structure or by name.

A checkpoint is written by `gn.io.checkpoint` (npz, safetensors or a
folder) as arrays plus JSON metadata:

    kind       "model" (model.save) or "weights" (model.save_weights)
    model      the architecture: {"class_name", "config"} from the registry
    compile    optimizer, loss and metrics as configs (model.save only)
    layers     the top-level layers in order, each with its weights'
               array keys, shapes and dtypes: what loading matches on
    optimizer  the optimizer's state: state key -> array key

Loading reads and checks everything first, then assigns, so a failure
changes no weight.
"""

from __future__ import annotations

import warnings

import numpy as np

from graphnet.io import checkpoint
from graphnet.io.checkpoint import CheckpointError
from graphnet.serialization import deserialize, deserialize_object, serialize, serialize_object
from graphnet.shapes import format_shape

# --------------------------------------------------------- architectures


def functional_config(model) -> dict:
    """A functional model's layers and which call feeds which (-1: the input)."""
    _require_built(model, "get_config")
    layers = model.layers
    position = {layer: i for i, layer in enumerate(layers)}
    made_by = {model.inputs: -1}
    calls = []
    for k, (layer, source, out) in enumerate(model._calls):
        calls.append([position[layer], made_by[source]])
        made_by[out] = k
    return {"name": model.name, "trainable": model.trainable,
            "input": {"shape": model.inputs.shape[1:], "dtype": model.inputs.dtype.name},
            "layers": layers, "calls": calls, "output": made_by[model.outputs]}


def functional_from_config(cls, config: dict):
    from graphnet.models.model import Input
    inputs = Input(tuple(config["input"]["shape"]), config["input"]["dtype"])
    outputs = []
    for layer_index, source in config["calls"]:
        outputs.append(config["layers"][layer_index](inputs if source < 0 else outputs[source]))
    return cls(inputs, outputs[config["output"]], name=config["name"],
               trainable=config["trainable"])


def sequential_config(model) -> dict:
    inputs = model.inputs
    return {"name": model.name, "trainable": model.trainable, "layers": model.layers,
            "input_shape": None if inputs is None else inputs.shape[1:],
            "input_dtype": None if inputs is None else inputs.dtype.name}


def sequential_from_config(cls, config: dict):
    model = cls(config["layers"], name=config["name"], trainable=config["trainable"])
    if model.inputs is None and config.get("input_shape") is not None:
        model.build((None,) + tuple(config["input_shape"]), config["input_dtype"])
    return model


# ------------------------------------------------------------------ save


def save_model(model, path):
    """Architecture, compile settings, weights and optimizer state to `path`."""
    _require_built(model, "save")
    arrays, metadata = _weights_entries(model)
    metadata.update(kind="model", model=serialize_object(model, f"model '{model.name}'"))
    if model._compiled is not None:
        compiled = model._compiled
        metadata["compile"] = {
            "optimizer": serialize_object(compiled["optimizer"], "the optimizer"),
            "loss": serialize(compiled["loss_arg"], "the loss"),
            "metrics": serialize(compiled["metric_args"], "the metrics"),
        }
        state = optimizer_state(model)
        metadata["optimizer"] = {key: f"optimizer/{key}" for key in state}
        arrays.update({f"optimizer/{key}": model.session.get(var) for key, var in state.items()})
    checkpoint.write(path, arrays, metadata)


def save_weights(model, path):
    _require_built(model, "save_weights")
    arrays, metadata = _weights_entries(model)
    metadata["kind"] = "weights"
    checkpoint.write(path, arrays, metadata)


def _weights_entries(model) -> tuple[dict, dict]:
    """Every weight's array, keyed by its variable name, and the layer structure."""
    arrays, layers = {}, []
    for layer in model.layers:
        entries = []
        for w in layer.weights:
            arrays[w.name] = model.session.get(w)
            entries.append({"key": w.name, "shape": list(w.shape), "dtype": w.dtype.name})
        layers.append({"name": layer.name, "class_name": type(layer).__name__,
                       "weights": entries})
    return arrays, {"layers": layers}


def optimizer_state(model) -> dict:
    """The compiled optimizer's state variables, slots created if still missing."""
    optimizer = model._require_compiled()["optimizer"]
    if hasattr(optimizer, "bind"):
        optimizer.bind(model)
    optimizer._build_missing(model.trainable_weights)
    return optimizer.state_variables(model.weights)


# ------------------------------------------------------------------ load


def load_model(path, custom_objects: dict | None = None, compile: bool = True,
               strict: bool = False):
    """Rebuild a model written by `model.save`: architecture, weights and, with
    `compile`, its compile settings and optimizer state, so `fit` resumes exactly.

        model = gn.load_model("run.safetensors")
        model.fit(x, y, epochs=4, initial_epoch=2, seed=0)

    Layer classes are looked up by name (graphnet's own, those registered with
    `@gn.register_layer`, and `custom_objects`); no code is read from the file.
    """
    arrays, metadata = checkpoint.read(path)
    if metadata.get("kind") != "model":
        raise CheckpointError(f"{path} holds weights only (written by save_weights); build the "
                              "model in code and call model.load_weights(path)")
    model = deserialize_object(metadata["model"], "layers", custom_objects, where=str(path))
    assignments = _match_by_structure(model, arrays, metadata, path, skip_mismatch=False)
    settings = metadata.get("compile")
    if compile and settings:
        model.compile(
            optimizer=deserialize_object(settings["optimizer"], "optimizers", custom_objects,
                                         where=f"{path} (optimizer)"),
            loss=deserialize(settings["loss"], custom_objects, where=f"{path} (loss)"),
            metrics=deserialize(settings["metrics"], custom_objects, where=f"{path} (metrics)"))
        assignments += _match_optimizer(model, arrays, metadata, path, strict)
    _assign(model, assignments)
    return model


def load_weights(model, path, by_name: bool = False, skip_mismatch: bool = False,
                 strict: bool = False):
    """Weights (and, for a compiled model and a `save` file, the optimizer state)."""
    _require_built(model, "load_weights")
    arrays, metadata = checkpoint.read(path)
    match = _match_by_name if by_name else _match_by_structure
    assignments = match(model, arrays, metadata, path, skip_mismatch=skip_mismatch)
    if model._compiled is not None and metadata.get("optimizer"):
        assignments += _match_optimizer(model, arrays, metadata, path, strict)
    _assign(model, assignments)


def _assign(model, assignments: list):
    for var, value in assignments:
        model.session.set(var, value)


def _weighted(layers) -> list:
    return [layer for layer in layers if layer["weights"]]


def _model_layers(model) -> list:
    return [{"name": layer.name, "class_name": type(layer).__name__, "layer": layer,
             "weights": layer.weights} for layer in model.layers]


def _listing(layers) -> str:
    return "[" + ", ".join(f"{layer['name']} ({layer['class_name']})" for layer in layers) + "]"


def _match_by_structure(model, arrays, metadata, path, skip_mismatch) -> list:
    """Pair the model's layers that have weights with the file's, in order."""
    ours, theirs = _weighted(_model_layers(model)), _weighted(_file_layers(metadata, path))
    both = (f"the model's layers with weights: {_listing(ours)}; the file's: "
            f"{_listing(theirs)}")
    if len(ours) != len(theirs):
        raise CheckpointError(f"cannot load {path} into '{model.name}': the model has "
                              f"{len(ours)} layers with weights, the file {len(theirs)}; "
                              f"{both}")
    assignments = []
    for mine, saved in zip(ours, theirs):
        assignments += _match_layer(model, mine, saved, arrays, path, skip_mismatch, both)
    return assignments


def _match_by_name(model, arrays, metadata, path, skip_mismatch) -> list:
    """Pair layers by name; layers of the model the file lacks keep their weights."""
    theirs = {layer["name"]: layer for layer in _file_layers(metadata, path)}
    ours = _model_layers(model)
    both = (f"the model's layers: {_listing(ours)}; the file's: "
            f"{_listing(list(theirs.values()))}")
    assignments = []
    for mine in _weighted(ours):
        if mine["name"] in theirs:
            assignments += _match_layer(model, mine, theirs[mine["name"]], arrays, path,
                                        skip_mismatch, both)
    if not assignments and not skip_mismatch:
        raise CheckpointError(f"{path}: no layer of '{model.name}' matches a layer of the file "
                              f"by name; {both}")
    return assignments


def _match_layer(model, mine, saved, arrays, path, skip_mismatch, both) -> list:
    where = (f"layer '{mine['name']}' ({mine['class_name']}) against the file's "
             f"'{saved['name']}' ({saved['class_name']})")
    if len(mine["weights"]) != len(saved["weights"]):
        if skip_mismatch:
            _skip(f"{where}: {len(mine['weights'])} weights against {len(saved['weights'])}")
            return []
        raise CheckpointError(f"cannot load {path} into '{model.name}': {where}: the layer has "
                              f"{len(mine['weights'])} weights, the file's "
                              f"{len(saved['weights'])}; {both}")
    pairs = []
    for var, entry in zip(mine["weights"], saved["weights"]):
        value = arrays[entry["key"]]
        if tuple(value.shape) != tuple(var.shape):
            message = (f"{where}: weight '{_short(var.name)}' has shape "
                       f"{format_shape(var.shape)} in the model and "
                       f"{format_shape(value.shape)} in the file ('{entry['key']}')")
            if skip_mismatch:
                _skip(message)
                continue
            raise CheckpointError(f"cannot load {path} into '{model.name}': {message}; {both}")
        if not np.can_cast(value.dtype, var.dtype, "same_kind"):
            raise CheckpointError(f"cannot load {path} into '{model.name}': {where}: weight "
                                  f"'{_short(var.name)}' is {var.dtype.name}, the file's "
                                  f"'{entry['key']}' is {value.dtype.name}")
        pairs.append((var, value))
    return pairs


def _match_optimizer(model, arrays, metadata, path, strict) -> list:
    """The optimizer's state variables paired with the file's; a mismatch warns
    and leaves the optimizer fresh, or raises under `strict`."""
    saved = metadata.get("optimizer") or {}
    state = optimizer_state(model)
    problem = None
    if set(saved) != set(state):
        missing, extra = sorted(set(state) - set(saved)), sorted(set(saved) - set(state))
        problem = (f"the compiled optimizer's state {missing[:3] or extra[:3]} "
                   f"{'is missing from' if missing else 'is not in'} the file's "
                   f"({len(saved)} entries against {len(state)})")
    else:
        for key, var in state.items():
            if tuple(arrays[saved[key]].shape) != tuple(var.shape):
                problem = (f"optimizer state {key!r} has shape {format_shape(var.shape)}, the "
                           f"file's {format_shape(arrays[saved[key]].shape)}")
                break
    if problem is None:
        return [(var, arrays[saved[key]]) for key, var in state.items()]
    message = f"{path}: {problem}"
    if strict:
        raise CheckpointError(message + "; not loading (strict=True)")
    warnings.warn(message + "; the weights are loaded and the optimizer starts fresh",
                  stacklevel=3)
    return []


def _file_layers(metadata, path) -> list:
    layers = metadata.get("layers")
    if not isinstance(layers, list):
        raise CheckpointError(f"{path} has no layer structure: it was not written by "
                              "model.save or model.save_weights (use Session.restore for "
                              "Session.save files)")
    return layers


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _skip(message: str):
    warnings.warn(f"skip_mismatch: {message}; skipped", stacklevel=4)


def _require_built(model, what: str):
    if not model.built or model.inputs is None:
        raise ValueError(f"model '{model.name}' is not built yet, so {what}() has nothing to "
                         "write: give the first layer an input_shape, call "
                         "model.build(input_shape), or train it first")
