"""MultiOptimizer: different optimizers (or learning rates) for different parts of a model."""

from __future__ import annotations

from graphnet.autodiff import gradients
from graphnet.graph import unique_name
from graphnet.ops import group
from graphnet.optim.optimizer import Optimizer, _check_parameter


class MultiOptimizer(Optimizer):
    """Each optimizer updates the weights of its layers:

        opt = gn.optim.MultiOptimizer([
            (gn.optim.Adam(1e-4), [base]),        # a pretrained base, fine-tuned gently
            (gn.optim.Adam(1e-3), [head]),        # a new head, at the usual rate
        ])
        model.compile(optimizer=opt, loss=...)

    Layers are layer objects (a model counts as one layer) or layer names,
    which `compile`d models resolve among their layers and nested models'
    layers. A weight of the model that no pair covers is an error. The
    gradients are computed once for all weights; each optimizer then applies
    its own rule, slots and step counter. `learning_rate` reads the first
    optimizer's rate; setting it (ReduceLROnPlateau) scales every optimizer's
    rate by the same factor, keeping their ratios (while the first rate is 0,
    only the first is set).
    """

    default_name = "multi_optimizer"

    def __init__(self, optimizers_and_layers, name=None):
        # Not Optimizer.__init__: the state lives in the optimizers given.
        self.name = unique_name(name or self.default_name, scoped=False)
        pairs = list(optimizers_and_layers)
        if not pairs:
            raise ValueError("MultiOptimizer needs at least one (optimizer, layers) pair")
        self.pairs = []
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2
                    and isinstance(pair[0], Optimizer)):
                raise TypeError(f"MultiOptimizer: entry {i} must be (optimizer, layers), got "
                                f"{pair!r}")
            optimizer, layers = pair
            layers = list(layers) if isinstance(layers, (list, tuple)) else [layers]
            self.pairs.append((optimizer, layers))
        self._owners = None  # variable -> optimizer, once the layers are known

    @property
    def optimizers(self) -> list:
        return [optimizer for optimizer, _ in self.pairs]

    @property
    def iterations(self):
        return self.optimizers[0].iterations

    @property
    def learning_rate(self):
        return self.optimizers[0].learning_rate

    def get_learning_rate(self, sess) -> float:
        return self.optimizers[0].get_learning_rate(sess)

    def set_learning_rate(self, sess, value: float):
        current = self.get_learning_rate(sess)
        if current == 0:   # no ratio to keep: only the first optimizer's rate is set
            self.optimizers[0].set_learning_rate(sess, value)
            return
        factor = float(value) / current
        for optimizer in self.optimizers:
            optimizer.set_learning_rate(sess, optimizer.get_learning_rate(sess) * factor)

    # ------------------------------------------------------------ layers

    def bind(self, model):
        """Resolve layer names among `model`'s layers (nested models searched too)."""
        self._owners = {}
        for optimizer, layers in self.pairs:
            for layer in layers:
                found = _find_layer(model, layer) if isinstance(layer, str) else layer
                for var in found.weights:
                    self._owners.setdefault(var, optimizer)

    def _owner(self, var):
        if self._owners is None:
            self._owners = {}
            for optimizer, layers in self.pairs:
                for layer in layers:
                    if isinstance(layer, str):
                        raise ValueError(f"{self.name}: layer {layer!r} is given by name; "
                                         "use the MultiOptimizer through model.compile, or "
                                         "pass layer objects")
                    for w in layer.weights:
                        self._owners.setdefault(w, optimizer)
        optimizer = self._owners.get(var)
        if optimizer is None:
            raise ValueError(f"{self.name}: weight '{var.name}' belongs to none of the layers "
                             "given; add its layer to one of the (optimizer, layers) pairs")
        return optimizer

    # ------------------------------------------------------------ updates

    def minimize(self, loss, var_list=None, name=None):
        if var_list is None:
            var_list = [w for _, layers in self.pairs for layer in layers
                        if not isinstance(layer, str) for w in layer.trainable_weights]
        var_list = [_check_parameter(v, self.name) for v in var_list]
        grads = gradients(loss, var_list, unconnected="none")
        return self.apply_gradients(list(zip(grads, var_list)), name=name)

    def apply_gradients(self, grads_and_vars, name=None):
        groups = {}
        for g, var in grads_and_vars:
            groups.setdefault(self._owner(var), []).append((g, var))
        updates = [optimizer.apply_gradients(pairs) for optimizer, pairs in groups.items()
                   if any(g is not None for g, _ in pairs)]
        if not updates:
            raise ValueError(f"{self.name}: no gradients given for any variable")
        return group(updates, name=name or f"{self.name}_step")

    def _build_missing(self, var_list):
        for optimizer in self.optimizers:
            optimizer._build_missing([v for v in var_list if self._owner(v) is optimizer])

    def variables(self) -> list:
        return [v for optimizer in self.optimizers for v in optimizer.variables()]

    def state_variables(self, var_list) -> dict:
        return {f"{k}/{key}": var for k, optimizer in enumerate(self.optimizers)
                for key, var in optimizer.state_variables(var_list).items()}

    def get_config(self) -> dict:
        names = [[layer if isinstance(layer, str) else layer.name for layer in layers]
                 for _, layers in self.pairs]
        return {"optimizers_and_layers": [(optimizer, layer_names) for (optimizer, _), layer_names
                                          in zip(self.pairs, names)],
                "name": None}

    def __repr__(self):
        parts = ", ".join(f"{type(o).__name__}: {len(layers)} layers" for o, layers in self.pairs)
        return f"<MultiOptimizer {parts}>"


def _find_layer(model, name: str):
    for layer in model.layers:
        if layer.name == name:
            return layer
        if hasattr(layer, "layers"):
            try:
                return _find_layer(layer, name)
            except ValueError:
                pass
    raise ValueError(f"MultiOptimizer: model '{model.name}' has no layer named {name!r}; its "
                     f"layers are {[layer.name for layer in model.layers]}")

