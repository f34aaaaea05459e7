"""Configs: saved objects as JSON-friendly dicts, rebuilt by registered name, never as code.

Layers, models, optimizers, schedules, losses, metrics and regularizers
derive from `Configurable`. Each records the arguments its constructor was
called with, so `get_config()` returns them (defaults filled in) without
every class writing its own; a class whose state is not its constructor
arguments overrides `get_config` (and `from_config`).

A saved object is `{"class_name": "Dense", "config": {...}}`. Loading looks
the class up by kind and name in a registry: graphnet's own classes are
registered when they are defined, a user's with `@gn.register_layer` or by
passing `custom_objects=`. Nothing in a checkpoint is ever imported or run.
"""

from __future__ import annotations

import inspect

import numpy as np

from graphnet.errors import GraphnetError


class SerializationError(GraphnetError, ValueError):
    """A value that cannot be written into a config, or a config that cannot be rebuilt."""


#: (kind, class name) -> class, e.g. ("layers", "Dense") -> gn.layers.Dense.
_registry: dict = {}


class Configurable:
    """Base of objects that can be saved in a config and rebuilt from it."""

    #: Which registry namespace subclasses live in ("layers", "optimizers", ...).
    config_kind = "objects"

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._init_arguments = (args, kwargs)
        return self

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("graphnet.") and not cls.__name__.startswith("_"):
            _registry.setdefault((cls.config_kind, cls.__name__), cls)

    def get_config(self) -> dict:
        """The constructor's arguments, defaults included: `type(self)(**config)` rebuilds it."""
        args, kwargs = getattr(self, "_init_arguments", ((), {}))
        signature = inspect.signature(type(self).__init__)
        try:
            bound = signature.bind(None, *args, **kwargs)
        except TypeError as err:
            raise SerializationError(f"{type(self).__name__}: cannot record its constructor "
                                     f"arguments ({err}); override get_config()") from None
        bound.apply_defaults()
        config = {}
        for name, value in list(bound.arguments.items())[1:]:   # [0] is self
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                config.update(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise SerializationError(
                        f"{type(self).__name__} was given positional *{name}; override "
                        "get_config() to save it")
            else:
                config[name] = value
        return config

    @classmethod
    def from_config(cls, config: dict):
        """Rebuild from `get_config()`'s dict (values already deserialized)."""
        return cls(**config)


def register(cls=None, *, kind: str | None = None, name: str | None = None):
    """Register a class so checkpoints that name it can be loaded:

        @gn.register_layer
        class Scale(gn.layers.Layer): ...

    The name is the class name unless `name=` is given; registering another
    class under a taken name is an error.
    """
    def decorate(klass):
        if not (isinstance(klass, type) and issubclass(klass, Configurable)):
            raise TypeError(f"register: {klass!r} is not a graphnet layer, model, optimizer, "
                            "loss, metric, schedule or regularizer class")
        key = (kind or klass.config_kind, name or klass.__name__)
        if _registry.get(key, klass) is not klass:
            raise SerializationError(f"register: {key[0]} name {key[1]!r} is taken by "
                                     f"{_registry[key].__module__}.{_registry[key].__qualname__}; "
                                     "pass name= to register under another name")
        _registry[key] = klass
        return klass
    return decorate if cls is None else decorate(cls)


def register_layer(cls=None, *, name: str | None = None):
    """Register a custom layer (or model) class by name: `@gn.register_layer`."""
    return register(cls, name=name)


# ------------------------------------------------------------------ values


def _function_tables() -> dict:
    """Named functions a config may refer to, by table: "activations:relu"."""
    from graphnet import activations, init, losses
    return {"activations": activations._BY_NAME, "init": init._BY_NAME,
            "losses": losses.FUNCTIONS}


def serialize(value, where: str = "value"):
    """`value` as JSON-friendly data; `where` names it in errors."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, tuple):
        return {"__tuple__": [serialize(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [serialize(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise SerializationError(f"{where}: dict keys must be strings to be saved, "
                                     f"found {bad[0]!r}")
        return {k: serialize(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, np.dtype):
        return {"__dtype__": value.name}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise SerializationError(f"{where}: only numeric arrays can be saved in a config, "
                                     f"found {value.dtype}")
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, Configurable):
        return serialize_object(value, where)
    if callable(value):
        for table, functions in _function_tables().items():
            for name, fn in functions.items():
                if fn is value:
                    return {"__function__": f"{table}:{name}"}
    raise SerializationError(
        f"{where}: cannot save {value!r} ({type(value).__name__}) in a config; use a name "
        "(e.g. activation='relu'), a registered class (@gn.register_layer), or override "
        "get_config()")


def serialize_object(obj: Configurable, where: str = "object") -> dict:
    """{"class_name", "config"} for a registered Configurable."""
    cls = type(obj)
    key = (cls.config_kind, cls.__name__)
    registered = [k for k, c in _registry.items() if c is cls]
    if not registered:
        raise SerializationError(
            f"{where}: class {cls.__qualname__} is not registered, so a checkpoint could not "
            f"load it; decorate it with @gn.register_layer (or gn.serialization.register)")
    key = key if key in registered else registered[0]
    config = obj.get_config()
    return {"kind": key[0], "class_name": key[1],
            "config": serialize(config, f"{where} ({key[1]})")}


def deserialize(data, custom_objects: dict | None = None, where: str = "config"):
    """The inverse of `serialize`: objects are rebuilt from registered classes only."""
    if isinstance(data, list):
        return [deserialize(v, custom_objects, where) for v in data]
    if not isinstance(data, dict):
        return data
    if "__tuple__" in data:
        return tuple(deserialize(v, custom_objects, where) for v in data["__tuple__"])
    if "__dtype__" in data:
        return np.dtype(data["__dtype__"])
    if "__ndarray__" in data:
        return np.array(data["__ndarray__"], dtype=np.dtype(data["dtype"]))
    if "__function__" in data:
        table, _, name = str(data["__function__"]).partition(":")
        try:
            return _function_tables()[table][name]
        except KeyError:
            raise SerializationError(f"{where}: unknown function {data['__function__']!r}") \
                from None
    if "class_name" in data and "config" in data:
        return deserialize_object(data, None, custom_objects, where)
    return {k: deserialize(v, custom_objects, where) for k, v in data.items()}


def lookup(kind: str, class_name: str, custom_objects: dict | None = None,
           where: str = "config") -> type:
    """The class registered as `class_name` (custom_objects first); a helpful error if none."""
    custom = dict(custom_objects or {})
    if class_name in custom:
        return custom[class_name]
    cls = _registry.get((kind, class_name))
    if cls is None:
        raise SerializationError(
            f"{where}: unknown {kind} class {class_name!r}. "
            f"A checkpoint names classes, it never stores code: register the class with "
            f"@gn.register_layer (class {class_name}(gn.layers.Layer): ...) before loading, or "
            f"pass custom_objects={{{class_name!r}: {class_name}}}")
    return cls


def deserialize_object(data: dict, kind: str | None = None, custom_objects=None,
                       where: str = "config"):
    """Rebuild one object from {"class_name", "config"}."""
    if not isinstance(data, dict) or "class_name" not in data or "config" not in data:
        raise SerializationError(f"{where}: expected {{'class_name': ..., 'config': ...}}, "
                                 f"found {str(data)[:80]}")
    cls = lookup(data.get("kind", kind or "layers"), data["class_name"], custom_objects, where)
    config = deserialize(data["config"], custom_objects, f"{where} ({data['class_name']})")
    try:
        return cls.from_config(config)
    except TypeError as err:
        raise SerializationError(f"{where}: cannot rebuild {data['class_name']} from its "
                                 f"config: {err}") from None
